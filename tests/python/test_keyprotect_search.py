"""Search, sort and filter on key lists through IBM's official Python client."""
import pytest
from ibm_cloud_sdk_core import ApiException

from test_keyprotect_client import client, data, error_code, key_body
from test_keyprotect_instance_policies import own_instance


def names(resp):
    return [k["name"] for k in data(resp)["resources"]]


def test_search_sort_filter(server):
    inst, kp = own_instance(server)
    made = {}
    for name, alias, std in [("alpha-payments", "pay-root", False), ("beta-orders", None, False),
                             ("gamma-payments", None, True), ("delta", "ALPHA-alias", False)]:
        fields = {"name": name, "extractable": std}
        if alias:
            fields["aliases"] = [alias]
        made[name] = data(kp.create_key(inst, key_body(**fields)))["resources"][0]
    kp.delete_key(made["delta"]["id"], inst)

    assert sorted(names(kp.get_keys(inst, search="payments"))) == ["alpha-payments", "gamma-payments"]
    assert names(kp.get_keys(inst, search="name:alpha")) == ["alpha-payments"]
    r = data(kp.get_keys(inst, search="alias:alpha", state=[1, 5]))
    assert [k["name"] for k in r["resources"]] == ["delta"], "alias search is case-insensitive"
    assert r["metadata"]["searchQuery"] == {"query": "alpha", "scopes": ["alias"], "not": False, "exact": False}
    assert r["metadata"]["incompleteSearch"] is False
    assert sorted(names(kp.get_keys(inst, search="not:payments"))) == ["beta-orders"]
    assert names(kp.get_keys(inst, search="exact:beta")) == []
    assert names(kp.get_keys(inst, search="exact:beta-orders")) == ["beta-orders"]
    assert names(kp.get_keys(inst, search="pay-root"))[0] == "alpha-payments", "an alias is looked up directly"
    assert names(kp.get_keys(inst, search=made["beta-orders"]["id"]))[0] == "beta-orders"

    assert names(kp.get_keys(inst, sort="-creationDate")) == ["gamma-payments", "beta-orders", "alpha-payments"]
    assert names(kp.get_keys(inst, sort="extractable,creationDate")) == ["alpha-payments", "beta-orders", "gamma-payments"]
    assert names(kp.get_keys(inst, filter="extractable=true")) == ["gamma-payments"]
    assert names(kp.get_keys(inst, filter="state=5")) == ["delta"]
    assert sorted(names(kp.get_keys(inst, filter='deletionDate=none'))) == ["alpha-payments", "beta-orders", "gamma-payments"]
    assert len(names(kp.get_keys(inst, filter='creationDate=gt:"2001-01-01T00:00:00Z" lastRotateDate=none'))) == 3
    assert names(kp.get_keys(inst, filter='creationDate=lt:"2001-01-01T00:00:00Z"')) == []
    head = kp.get_key_collection_metadata(inst, filter="extractable=false")
    assert head.get_headers()["Key-Total"] == "2"

    for kwargs in ({"sort": "colour"}, {"filter": "colour=red"}, {"filter": "creationDate=gt:yesterday"},
                   {"filter": "state=1", "state": [1]}, {"search": "not:"},
                   {"filter": "state=1 state=2 state=3 state=5"}):
        with pytest.raises(ApiException) as e:
            kp.get_keys(inst, **kwargs)
        assert (e.value.status_code, error_code(e.value)) == (400, "INVALID_QUERY_PARAM_ERR"), kwargs
