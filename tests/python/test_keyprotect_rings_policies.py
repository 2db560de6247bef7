"""Aliases, key rings, key policies and dual authorization delete through IBM's official
Python client (`keyprotect` 3.0.1, unmodified)."""
import pytest
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import IAMAuthenticator

from test_keyprotect_client import body, client, data, error_code, key_body

POLICY = "application/vnd.ibm.kms.policy+json"


def policy_body(*resources):
    return {"metadata": {"collectionType": POLICY, "collectionTotal": len(resources)},
            "resources": [{"type": POLICY, **r} for r in resources]}


def test_aliases(server):
    kp = client(server)
    inst = server.instance
    kid = data(kp.create_key(inst, key_body(name="py-alias", extractable=False)))["resources"][0]["id"]
    r = kp.create_key_alias(kid, "py-first-alias", inst)
    assert r.get_status_code() == 201
    a = data(r)["resources"][0]
    assert a["keyId"] == kid and a["alias"] == "py-first-alias" and "creationDate" in a
    assert data(kp.get_key_metadata("py-first-alias", inst))["resources"][0]["aliases"] == ["py-first-alias"]
    with pytest.raises(ApiException) as e:
        kp.create_key_alias(kid, "py-first-alias", inst)
    assert e.value.status_code == 409
    with pytest.raises(ApiException) as e:
        kp.create_key_alias(kid, "wrap", inst)
    assert e.value.status_code == 400 and error_code(e.value) == "INVALID_FIELD_ERR"
    assert kp.delete_key_alias(kid, "py-first-alias", inst).get_status_code() == 204
    with pytest.raises(ApiException) as e:
        kp.get_key("py-first-alias", inst)
    assert e.value.status_code == 404


def test_key_rings_and_patch(server):
    kp = client(server)
    inst = server.instance
    assert kp.create_key_ring("py-ring", inst).get_status_code() == 201
    with pytest.raises(ApiException) as e:
        kp.create_key_ring("py-ring", inst)
    assert e.value.status_code == 409
    rings = data(kp.list_key_rings(inst, total_count=True))
    ids = [r["id"] for r in rings["resources"]]
    assert ids[0] == "default" and "py-ring" in ids and rings["metadata"]["totalCount"] == len(ids)

    r = kp.create_key(inst, key_body(name="py-ringed", extractable=False), x_kms_key_ring="py-ring")
    key = data(r)["resources"][0]
    assert key["keyRingID"] == "py-ring"
    listed = data(kp.get_keys(inst, x_kms_key_ring="py-ring"))["resources"]
    assert [k["id"] for k in listed] == [key["id"]]
    with pytest.raises(ApiException) as e:
        kp.delete_key_ring("py-ring", inst)
    assert e.value.status_code == 409 and error_code(e.value) == "KEY_RING_NOT_EMPTY_ERR"
    with pytest.raises(ApiException) as e:
        kp.create_key(inst, key_body(name="nowhere"), x_kms_key_ring="no-such-ring")
    assert e.value.status_code == 404 and error_code(e.value) == "KEY_RING_NOT_FOUND_ERR"

    moved = kp.patch_key(key["id"], inst, key_patch_body=body({"keyRingID": "default"}), x_kms_key_ring="py-ring")
    assert moved.get_status_code() == 200 and data(moved)["resources"][0]["keyRingID"] == "default"
    # The Go client sends the field name capitalised.
    back = kp.patch_key(key["id"], inst, key_patch_body=body({"KeyRingID": "py-ring"}))
    assert data(back)["resources"][0]["keyRingID"] == "py-ring"
    kp.delete_key(key["id"], inst)
    with pytest.raises(ApiException):
        kp.delete_key_ring("py-ring", inst)
    r = kp.delete_key_ring("py-ring", inst, force=True)
    assert r.get_status_code() == 204, "force moves destroyed keys to default"
    assert data(kp.get_key_metadata(key["id"], inst))["resources"][0]["keyRingID"] == "default"


def test_key_policies(server):
    kp = client(server)
    inst = server.instance
    kid = data(kp.create_key(inst, key_body(name="py-policy", extractable=False)))["resources"][0]["id"]
    none = data(kp.get_policy(kid, inst))
    assert none["metadata"]["collectionTotal"] == 0 and "resources" not in none

    r = kp.put_policy(kid, inst, policy_body({"rotation": {"enabled": True, "interval_month": 3}}), policy="rotation")
    assert r.get_status_code() == 200
    got = data(kp.get_policy(kid, inst, policy="rotation"))["resources"][0]
    assert got["rotation"] == {"enabled": True, "interval_month": 3} and got["type"] == POLICY
    # Enabling without an interval keeps the stored one (the Go client's EnableRotationPolicy).
    kp.put_policy(kid, inst, policy_body({"rotation": {"enabled": True}}))
    assert data(kp.get_policy(kid, inst))["resources"][0]["rotation"]["interval_month"] == 3
    with pytest.raises(ApiException) as e:
        kp.put_policy(kid, inst, policy_body({"rotation": {"enabled": True, "interval_month": -1}}))
    assert e.value.status_code == 400 and error_code(e.value) == "INVALID_FIELD_ERR"
    with pytest.raises(ApiException) as e:
        kp.put_policy(kid, inst, policy_body({"dualAuthDelete": {"enabled": True}}), policy="rotation")
    assert e.value.status_code == 400
    meta = data(kp.get_key_metadata(kid, inst))["resources"][0]
    assert meta["rotation"] == {"enabled": True, "interval_month": 3}

    # The official integration test's shape: dualAuthDelete false on a key without it.
    assert kp.put_policy(kid, inst, policy_body({"dualAuthDelete": {"enabled": False}}), policy="dualAuthDelete").get_status_code() == 200
    with pytest.raises(ApiException) as e:
        kp.set_key_for_deletion(kid, inst)
    assert e.value.status_code == 409 and error_code(e.value) == "NOT_DUAL_AUTH_ERR"


def test_dual_authorization_delete(server):
    inst = server.instance
    first = client(server, IAMAuthenticator(apikey=server.api_key("Manager"), url=server.url))
    second = client(server, IAMAuthenticator(apikey=server.api_key("Manager"), url=server.url))
    kid = data(first.create_key(inst, key_body(name="py-dual", extractable=False)))["resources"][0]["id"]
    first.put_policy(kid, inst, policy_body({"dualAuthDelete": {"enabled": True}}))
    with pytest.raises(ApiException) as e:
        first.delete_key(kid, inst)
    assert e.value.status_code == 409 and error_code(e.value) == "AUTHORIZATIONS_NOT_MET"
    assert first.set_key_for_deletion(kid, inst).get_status_code() == 204
    meta = data(first.get_key_metadata(kid, inst))["resources"][0]
    assert meta["dualAuthDelete"]["enabled"] is True and meta["dualAuthDelete"]["keySetForDeletion"] is True
    with pytest.raises(ApiException) as e:
        first.delete_key(kid, inst)
    assert error_code(e.value) == "AUTHORIZATIONS_NOT_MET", "the same user cannot approve its own deletion"
    assert second.unset_key_for_deletion(kid, inst).get_status_code() == 204
    with pytest.raises(ApiException):
        second.delete_key(kid, inst)
    first.set_key_for_deletion(kid, inst)
    r = second.delete_key(kid, inst, prefer="return=representation")
    assert r.get_status_code() == 200 and data(r)["resources"][0]["state"] == 5
    with pytest.raises(ApiException) as e:
        first.put_policy(kid, inst, policy_body({"dualAuthDelete": {"enabled": False}}))
    assert e.value.status_code == 409
