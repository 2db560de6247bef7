"""The refusal side of every public method of IBM's `keyprotect` 3.0.1 client (except the
KMIP adapter family) that the other modules only call successfully. Each call must fail with
the documented status and reason code, in the Key Protect error envelope."""
import pytest
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import IAMAuthenticator

from test_keyprotect_client import body, client, data, error_code, key_body

MISSING = "9b2ae0a2-0e0e-4c3f-9f37-3f8e3c1c9c01"


def refused(call, status, code):
    with pytest.raises(ApiException) as e:
        call()
    env = e.value.http_response.json()
    assert env["metadata"]["collectionType"] == "application/vnd.ibm.kms.error+json"
    assert (e.value.status_code, error_code(e.value)) == (status, code), e.value.http_response.text


def test_every_method_refuses_bad_calls(server):
    kp = client(server)
    inst = server.instance
    key = data(kp.create_key(inst, key_body(name="py-neg", extractable=False)))["resources"][0]["id"]
    w = data(kp.wrap_key(key, inst, key_action_wrap_body=body({"aad": ["a"]})))

    with pytest.raises(ApiException) as e:
        kp.get_key_collection_metadata(inst, state=[4])
    assert e.value.status_code == 400, "HEAD answers have no body: the status tells"
    refused(lambda: kp.get_key_metadata(MISSING, inst), 404, "KEY_NOT_FOUND_ERR")
    refused(lambda: kp.action_on_key(key, inst, "explode", body({})), 400, "INVALID_QUERY_PARAM_ERR")
    refused(lambda: kp.patch_key(key, inst, key_patch_body=body({"keyRingID": "no-such-ring"})), 404, "KEY_RING_NOT_FOUND_ERR")
    refused(lambda: kp.rewrap_key(key, inst, body({"ciphertext": w["ciphertext"], "aad": ["b"]})), 400, "INVALID_FIELD_ERR")
    refused(lambda: kp.unset_key_for_deletion(key, inst), 409, "NOT_DUAL_AUTH_ERR")
    refused(lambda: kp.get_policy(key, inst, policy="colour"), 400, "INVALID_QUERY_PARAM_ERR")
    refused(lambda: kp.get_instance_policy(inst, policy="colour"), 400, "INVALID_QUERY_PARAM_ERR")
    refused(lambda: kp.get_registrations(MISSING, inst), 404, "KEY_NOT_FOUND_ERR")
    refused(lambda: kp.delete_key_alias(key, "never-added", inst), 404, "KEY_NOT_FOUND_ERR")
    refused(lambda: kp.list_key_rings(inst, limit=6000), 400, "INVALID_QUERY_PARAM_ERR")
    refused(lambda: kp.delete_key_ring("default", inst), 400, "INVALID_FIELD_ERR")
    refused(lambda: kp.restore_key(key, inst), 409, "KEY_ACTION_INVALID_STATE_ERR")
    refused(lambda: kp.purge_key(MISSING, inst), 401, "UNAUTHORIZED_ERR")  # Manager lacks KeyPurge
    kp.disable_key(key, inst)
    refused(lambda: kp.get_key_versions(key, inst), 409, "KEY_ACTION_INVALID_STATE_ERR")
    assert data(kp.get_key_versions(key, inst, all_key_states=True))["resources"][0]["id"] == key
    refused(lambda: kp.disable_key(key, inst), 409, "KEY_ACTION_INVALID_STATE_ERR")
    refused(lambda: kp.rotate_key(key, inst, key_action_rotate_body=body({})), 409, "KEY_ACTION_INVALID_STATE_ERR")

    reader = client(server, IAMAuthenticator(apikey=server.api_key("Reader"), url=server.url))
    refused(lambda: reader.get_allowed_ip_port(inst), 401, "UNAUTHORIZED_ERR")
    refused(lambda: reader.put_instance_policy(inst, {"metadata": {"collectionTotal": 1}, "resources": [
        {"policy_type": "metrics", "policy_data": {"enabled": True}}]}), 401, "UNAUTHORIZED_ERR")
    refused(lambda: reader.post_import_token(inst), 401, "UNAUTHORIZED_ERR")
    refused(lambda: reader.create_key_ring("py-neg-ring", inst), 401, "UNAUTHORIZED_ERR")
    refused(lambda: reader.set_key_for_deletion(key, inst), 401, "UNAUTHORIZED_ERR")
    refused(lambda: reader.create_key_alias(key, "py-neg-alias", inst), 401, "UNAUTHORIZED_ERR")
    refused(lambda: reader.sync_associated_resources(key, inst), 401, "UNAUTHORIZED_ERR")
    refused(lambda: reader.put_policy(key, inst, {"metadata": {"collectionTotal": 1}, "resources": [
        {"type": "application/vnd.ibm.kms.policy+json", "dualAuthDelete": {"enabled": True}}]}), 401, "UNAUTHORIZED_ERR")
