"""Instance policies and per-key policy overrides through IBM's official Python client.
Each test works on its own instance (created with the administrator API), because these
policies change what the whole instance accepts."""
import base64
import io
import json
import uuid

import pytest
import requests
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import IAMAuthenticator

from test_keyprotect_client import client, data, error_code, key_body

POLICY = "application/vnd.ibm.kms.policy+json"


def new_instance(server):
    """A fresh instance with a random dev master key, and a Manager API key for it."""
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    inst = requests.post(f"{server.admin_url}/admin/v1/instances", headers=admin, json={"name": f"py-{uuid.uuid4()}", "dev_master_key": True}).json()["id"]
    key = requests.post(f"{server.admin_url}/admin/v1/instances/{inst}/api_keys", headers=admin,
                        json={"name": "t", "roles": ["Manager"]}).json()["apikey"]
    return inst, key


def own_instance(server):
    inst, key = new_instance(server)
    return inst, client(server, IAMAuthenticator(apikey=key, url=server.url))


def policies(*items):
    res = [{"policy_type": t, "policy_data": d} for t, d in items]
    return {"metadata": {"collectionType": POLICY, "collectionTotal": len(res)}, "resources": res}


def test_instance_policies_apply_to_new_keys(server):
    inst, kp = own_instance(server)
    r = kp.put_instance_policy(inst, policies(("allowedNetwork", {"enabled": True, "attributes": {"allowed_network": "public-and-private"}})),
                               policy="allowedNetwork")
    assert r.get_status_code() == 204
    kp.put_instance_policy(inst, policies(
        ("rotation", {"enabled": True, "attributes": {"interval_month": 2}}),
        ("dualAuthDelete", {"enabled": True}),
        ("metrics", {"enabled": False}),
    ))
    got = data(kp.get_instance_policy(inst))["resources"]
    by_type = {p["policy_type"]: p for p in got}
    assert set(by_type) == {"allowedNetwork", "rotation", "dualAuthDelete", "metrics"}
    assert by_type["rotation"]["policy_data"] == {"enabled": True, "attributes": {"interval_month": 2}}
    assert "lastUpdated" in by_type["rotation"] and "createdBy" in by_type["rotation"]
    only = data(kp.get_instance_policy(inst, policy="rotation"))["resources"]
    assert [p["policy_type"] for p in only] == ["rotation"]

    # New keys inherit rotation and dual-auth; imported keys get no rotation policy.
    key = data(kp.create_key(inst, key_body(name="inherits", extractable=False)))["resources"][0]
    assert key["rotation"] == {"enabled": True, "interval_month": 2} and key["dualAuthDelete"]["enabled"] is True
    imported = data(kp.create_key(inst, key_body(name="imp", extractable=False, payload=base64.b64encode(b"\x01" * 16).decode())))["resources"][0]
    assert "rotation" not in imported
    # Overrides win over the instance policies.
    r = kp.create_key_with_policies_overrides(inst, io.BytesIO(json.dumps({
        "metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1},
        "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": "override", "extractable": False,
                       "rotation": {"enabled": True, "interval_month": 6}, "dualAuthDelete": {"enabled": False}}],
    }).encode()))
    assert r.get_status_code() == 201
    o = data(r)["resources"][0]
    assert o["rotation"] == {"enabled": True, "interval_month": 6} and o["dualAuthDelete"]["enabled"] is False
    with pytest.raises(ApiException) as e:
        kp.create_key_with_policies_overrides(inst, io.BytesIO(json.dumps({
            "metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1},
            "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": "bad", "rotation": {"enabled": True, "interval_month": -1}}],
        }).encode()))
    assert e.value.status_code == 400 and "between 1 to 12" in e.value.http_response.text
    assert data(kp.get_allowed_ip_port(inst))["resources"] == []


def test_wrong_instance_policy_values_are_refused(server):
    inst, kp = own_instance(server)
    cases = [
        (policies(("rotation", {"enabled": True})), None, "INVALID_FIELD_ERR"),
        (policies(("rotation", {"enabled": True, "attributes": {"interval_month": 13}})), None, "INVALID_FIELD_ERR"),
        (policies(("rotation", {"enabled": False, "attributes": {"interval_month": 3}})), None, "INVALID_FIELD_ERR"),
        (policies(("allowedNetwork", {"enabled": True, "attributes": {"allowed_network": "everywhere"}})), None, "INVALID_FIELD_ERR"),
        (policies(("allowedIP", {"enabled": True, "attributes": {"allowed_ip": ["300.1.1.1/8"]}})), None, "INVALID_FIELD_ERR"),
        (policies(("keyCreateImportAccess", {"enabled": True, "attributes": {"create_root_key": "yes"}})), None, "INVALID_FIELD_ERR"),
        (policies(("keyCreateImportAccess", {"enabled": True, "attributes": {"make_coffee": True}})), None, "BAD_BODY_ERR"),
        (policies(("dualAuthDelete", {"enabled": True})), "rotation", "BAD_BODY_ERR"),
        (policies(("dualAuthDelete", {"enabled": True}), ("metrics", {"enabled": True})), "metrics", "BAD_BODY_ERR"),
        ({"metadata": {"collectionTotal": 1}, "resources": [{"policy_type": "metrics", "policy_data": {"enabled": True}, "extra_field": 1}]}, None, "BAD_BODY_ERR"),
    ]
    for body, only, code in cases:
        with pytest.raises(ApiException) as e:
            kp.put_instance_policy(inst, body, policy=only)
        assert error_code(e.value) == code, (body, e.value.http_response.text)
    assert data(kp.get_instance_policy(inst))["resources"] == [], "nothing was stored"


def test_key_create_import_access(server):
    inst, kp = own_instance(server)
    kp.put_instance_policy(inst, policies(("keyCreateImportAccess", {"enabled": True, "attributes": {
        "create_root_key": False, "import_standard_key": False, "enforce_token": True}})), policy="keyCreateImportAccess")
    attrs = data(kp.get_instance_policy(inst))["resources"][0]["policy_data"]["attributes"]
    assert attrs == {"create_root_key": False, "create_standard_key": True, "import_root_key": True,
                     "import_standard_key": False, "enforce_token": True}, "omitted attributes take their defaults"
    for fields in ({"extractable": False}, {"extractable": True, "payload": "c2VjcmV0"},
                   {"extractable": False, "payload": base64.b64encode(b"\x02" * 32).decode()}):
        with pytest.raises(ApiException) as e:
            kp.create_key(inst, key_body(name="denied", **fields))
        assert (e.value.status_code, error_code(e.value)) == (409, "KEY_CREATE_IMPORT_ACCESS_ERR")
    assert kp.create_key(inst, key_body(name="allowed", extractable=True)).get_status_code() == 201
    # Disabling the policy lifts the restriction.
    kp.put_instance_policy(inst, policies(("keyCreateImportAccess", {"enabled": False})))
    assert kp.create_key(inst, key_body(name="root-now", extractable=False)).get_status_code() == 201


def test_allowed_ip_refuses_other_addresses(server):
    inst, kp = own_instance(server)
    kp.put_instance_policy(inst, policies(("allowedIP", {"enabled": True, "attributes": {"allowed_ip": ["127.0.0.0/8", "::1/128"]}})))
    assert kp.get_keys(inst).get_status_code() == 200, "loopback is allowed"
    kp.put_instance_policy(inst, policies(("allowedIP", {"enabled": True, "attributes": {"allowed_ip": ["10.0.0.0/8"]}})))
    with pytest.raises(ApiException) as e:
        kp.get_keys(inst)
    assert e.value.status_code == 401 and "allowedIP" in e.value.http_response.text
