"""Every key operation of the foundation, driven through IBM's official Python client
(`keyprotect` 3.0.1 from PyPI, unmodified), with a static bearer token and with the IAM
API-key authenticator against our /identity/token."""
import base64
import io
import json

import pytest
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator, IAMAuthenticator
from keyprotect.ibm_key_protect_api_v2 import IbmKeyProtectApiV2

KEY_JSON = "application/vnd.ibm.kms.key+json"


def data(resp):
    """The SDK returns a dict for application/json and a Response for vendor types."""
    r = resp.get_result()
    return r.json() if hasattr(r, "json") else r


def body(obj) -> io.BytesIO:
    return io.BytesIO(json.dumps(obj).encode())


def key_body(**fields):
    res = {"type": KEY_JSON, **fields}
    return body({"metadata": {"collectionType": KEY_JSON, "collectionTotal": 1}, "resources": [res]})


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def error_code(exc: ApiException) -> str:
    return exc.http_response.json()["resources"][0]["reasons"][0]["code"]


def client(server, auth=None):
    kp = IbmKeyProtectApiV2(authenticator=auth or BearerTokenAuthenticator(server.token))
    kp.set_service_url(server.url)
    return kp


def test_create_list_get_count(server):
    kp = client(server)
    inst = server.instance
    r = kp.create_key(inst, key_body(name="py-root", description="from python", aliases=["py-root-alias"],
                                     expirationDate="2099-01-01T00:00:00Z", extractable=False),
                      prefer="return=representation")
    assert r.get_status_code() == 201
    root = data(r)["resources"][0]
    assert root["state"] == 1 and root["extractable"] is False and "payload" not in root
    assert root["aliases"] == ["py-root-alias"] and root["expirationDate"] == "2099-01-01T00:00:00Z"

    r = kp.create_key(inst, key_body(name="py-std", extractable=True, payload=b64(b"standard secret")),
                      prefer="return=representation")
    std = data(r)["resources"][0]
    assert std["payload"] == b64(b"standard secret") and std["imported"] is True
    r = kp.create_key(inst, key_body(name="py-min", extractable=True), prefer="return=minimal")
    assert r.get_status_code() == 201 and "payload" not in data(r)["resources"][0]
    for n in (16, 24, 32):
        r = kp.create_key(inst, key_body(name=f"py-imp-{n}", extractable=False, payload=b64(bytes([n]) * n)))
        assert data(r)["resources"][0]["algorithmBitSize"] == n * 8

    got = data(kp.get_key(root["id"], inst))["resources"][0]
    assert got["id"] == root["id"] and got["name"] == "py-root"
    by_alias = data(kp.get_key("py-root-alias", inst))["resources"][0]
    assert by_alias["id"] == root["id"]
    assert data(kp.get_key(std["id"], inst))["resources"][0]["payload"] == b64(b"standard secret")
    meta = data(kp.get_key_metadata(std["id"], inst))["resources"][0]
    assert "payload" not in meta

    listed = data(kp.get_keys(inst, limit=2, offset=1))
    assert listed["metadata"]["collectionTotal"] == 2 and len(listed["resources"]) == 2
    roots = data(kp.get_keys(inst, extractable=False))["resources"]
    assert all(k["extractable"] is False for k in roots) and len(roots) >= 4
    active = data(kp.get_keys(inst, state=[1]))["resources"]
    assert all(k["state"] == 1 for k in active)

    head = kp.get_key_collection_metadata(inst)
    assert head.get_status_code() == 200
    total = int(head.get_headers()["Key-Total"])
    assert total == len(data(kp.get_keys(inst))["resources"])
    assert int(kp.get_key_collection_metadata(inst, extractable=True).get_headers()["Key-Total"]) == 2


def test_wrap_unwrap_rewrap_rotate_versions(server):
    kp = client(server)
    inst = server.instance
    kid = data(kp.create_key(inst, key_body(name="py-wrap", extractable=False)))["resources"][0]["id"]

    gen = kp.wrap_key(kid, inst, key_action_wrap_body=body({}))
    assert gen.get_status_code() == 200
    g = data(gen)
    assert len(base64.b64decode(g["plaintext"])) == 32 and g["keyVersion"]["id"] == kid

    w = data(kp.wrap_key(kid, inst, key_action_wrap_body=body({"plaintext": b64(b"my data key"), "aad": ["tenant", "42"]})))
    assert "plaintext" not in w
    u = data(kp.unwrap_key(kid, inst, body({"ciphertext": w["ciphertext"], "aad": ["tenant", "42"]})))
    assert base64.b64decode(u["plaintext"]) == b"my data key" and "rewrappedKeyVersion" not in u

    r = kp.rotate_key(kid, inst, key_action_rotate_body=body({}), prefer="return=representation")
    assert r.get_status_code() == 204
    versions = data(kp.get_key_versions(kid, inst, total_count=True))
    assert versions["metadata"]["totalCount"] == 2
    newest = versions["resources"][0]["id"]
    assert newest != kid and versions["resources"][1]["id"] == kid

    u = data(kp.unwrap_key(kid, inst, body({"ciphertext": w["ciphertext"], "aad": ["tenant", "42"]})))
    assert base64.b64decode(u["plaintext"]) == b"my data key"
    assert u["keyVersion"]["id"] == kid and u["rewrappedKeyVersion"]["id"] == newest
    u2 = data(kp.unwrap_key(kid, inst, body({"ciphertext": u["ciphertext"], "aad": ["tenant", "42"]})))
    assert base64.b64decode(u2["plaintext"]) == b"my data key"

    rw = data(kp.rewrap_key(kid, inst, body({"ciphertext": g["ciphertext"]})))
    assert rw["rewrappedKeyVersion"]["id"] == newest
    assert data(kp.unwrap_key(kid, inst, body({"ciphertext": rw["ciphertext"]})))["plaintext"] == g["plaintext"]

    # The deprecated ?action= style through the SDK's action_on_key.
    legacy = data(kp.action_on_key(kid, inst, "wrap", body({"plaintext": b64(b"legacy")})))
    back = data(kp.action_on_key(kid, inst, "unwrap", body({"ciphertext": legacy["ciphertext"]})))
    assert base64.b64decode(back["plaintext"]) == b"legacy"

    with pytest.raises(ApiException) as e:
        kp.rotate_key(kid, inst, key_action_rotate_body=body({}))
    assert e.value.status_code == 409 and error_code(e.value) == "KEY_ROTATION_NOT_PERMITTED"
    with pytest.raises(ApiException) as e:
        kp.unwrap_key(kid, inst, body({"ciphertext": w["ciphertext"], "aad": ["tenant"]}))
    assert e.value.status_code == 400 and error_code(e.value) == "INVALID_FIELD_ERR"
    with pytest.raises(ApiException) as e:
        kp.unwrap_key(kid, inst, body({}))
    assert e.value.status_code == 400


def test_imported_root_key_rotation_needs_payload(server):
    kp = client(server)
    inst = server.instance
    kid = data(kp.create_key(inst, key_body(name="py-imported", extractable=False, payload=b64(b"\x01" * 32))))["resources"][0]["id"]
    w = data(kp.wrap_key(kid, inst, key_action_wrap_body=body({"plaintext": b64(b"dek")})))
    with pytest.raises(ApiException) as e:
        kp.rotate_key(kid, inst, key_action_rotate_body=body({}))
    assert error_code(e.value) == "KEY_PAYLOAD_REQ_ERR"
    assert kp.rotate_key(kid, inst, key_action_rotate_body=body({"payload": b64(b"\x02" * 32)})).get_status_code() == 204
    u = data(kp.unwrap_key(kid, inst, body({"ciphertext": w["ciphertext"]})))
    assert base64.b64decode(u["plaintext"]) == b"dek" and "rewrappedKeyVersion" in u


def test_lifecycle_disable_enable_delete_restore_purge(server):
    kp = client(server)
    inst = server.instance
    kid = data(kp.create_key(inst, key_body(name="py-life", extractable=False)))["resources"][0]["id"]
    assert kp.disable_key(kid, inst).get_status_code() == 204
    assert data(kp.get_key_metadata(kid, inst))["resources"][0]["state"] == 2
    with pytest.raises(ApiException) as e:
        kp.wrap_key(kid, inst, key_action_wrap_body=body({}))
    assert e.value.status_code == 409 and error_code(e.value) == "KEY_ACTION_INVALID_STATE_ERR"
    with pytest.raises(ApiException) as e:
        kp.enable_key(kid, inst)
    assert e.value.status_code == 409 and error_code(e.value) == "REQ_TOO_EARLY_ERR"
    server.advance(31)
    assert kp.enable_key(kid, inst).get_status_code() == 204

    d = kp.delete_key(kid, inst, prefer="return=representation")
    assert d.get_status_code() == 200
    deleted = data(d)["resources"][0]
    assert deleted["state"] == 5 and deleted["deleted"] is True and "purgeAllowedFrom" in deleted
    assert data(kp.get_key(kid, inst))["resources"][0]["state"] == 5, "deleted keys can still be read"
    with pytest.raises(ApiException) as e:
        kp.delete_key(kid, inst)
    assert e.value.status_code == 410 and error_code(e.value) == "KEY_DELETED_ERR"
    with pytest.raises(ApiException) as e:
        kp.restore_key(kid, inst)
    assert error_code(e.value) == "REQ_TOO_EARLY_ERR"
    server.advance(31)
    r = kp.restore_key(kid, inst)
    assert r.get_status_code() == 201 and data(r)["resources"][0]["state"] == 1

    assert kp.delete_key(kid, inst, force=True, prefer="return=minimal").get_status_code() == 204
    with pytest.raises(ApiException) as e:
        kp.purge_key(kid, inst)
    assert e.value.status_code == 401, "the Manager role cannot purge"

    purger = client(server, IAMAuthenticator(apikey=server.api_key("KeyPurge"), url=server.url))
    with pytest.raises(ApiException) as e:
        purger.purge_key(kid, inst)
    assert e.value.status_code == 409 and error_code(e.value) == "REQ_TOO_EARLY_ERR"
    server.advance(4 * 3600)
    purger = client(server, IAMAuthenticator(apikey=server.api_key("KeyPurge"), url=server.url))
    r = purger.purge_key(kid, inst)
    assert r.get_status_code() == 200 and data(r)["resources"][0]["id"] == kid
    with pytest.raises(ApiException) as e:
        kp.get_key(kid, inst)
    assert e.value.status_code == 404 and error_code(e.value) == "KEY_NOT_FOUND_ERR"


def test_iam_authenticator_and_roles(server):
    inst = server.instance
    writer = client(server, IAMAuthenticator(apikey=server.api_key("Writer"), url=server.url))
    kid = data(writer.create_key(inst, key_body(name="py-iam", extractable=False)))["resources"][0]["id"]
    w = data(writer.wrap_key(kid, inst, key_action_wrap_body=body({})))
    assert data(writer.unwrap_key(kid, inst, body({"ciphertext": w["ciphertext"]})))["plaintext"] == w["plaintext"]
    with pytest.raises(ApiException) as e:
        writer.disable_key(kid, inst)
    assert e.value.status_code == 401 and error_code(e.value) == "UNAUTHORIZED_ERR"

    reader = client(server, IAMAuthenticator(apikey=server.api_key("Reader"), url=server.url))
    assert reader.get_keys(inst).get_status_code() == 200
    assert reader.wrap_key(kid, inst, key_action_wrap_body=body({})).get_status_code() == 200
    with pytest.raises(ApiException) as e:
        reader.unwrap_key(kid, inst, body({"ciphertext": w["ciphertext"]}))
    assert e.value.status_code == 401, "readers cannot unwrap"

    bad = client(server, IAMAuthenticator(apikey="sr1.0000.not-a-key", url=server.url))
    with pytest.raises(Exception):
        bad.get_keys(inst)


def test_errors_and_isolation(server):
    kp = client(server)
    inst = server.instance
    with pytest.raises(ApiException) as e:
        kp.get_key("9b2ae0a2-0e0e-4c3f-9f37-3f8e3c1c9c01", inst)
    assert e.value.status_code == 404 and error_code(e.value) == "KEY_NOT_FOUND_ERR"
    env = e.value.http_response.json()
    assert env["metadata"]["collectionType"] == "application/vnd.ibm.kms.error+json"
    assert "KEY_NOT_FOUND_ERR" in env["resources"][0]["errorMsg"]
    with pytest.raises(ApiException) as e:
        kp.get_keys("9b2ae0a2-0e0e-4c3f-9f37-3f8e3c1c9c01")
    assert e.value.status_code == 401, "a token of one instance does not open another"
    with pytest.raises(ApiException) as e:
        kp.create_key(inst, body({"metadata": {"collectionTotal": 1}, "resources": [{"name": "x", "payload": "***"}]}))
    assert error_code(e.value) == "INVALID_FIELD_ERR"
    with pytest.raises(ApiException) as e:
        kp.create_key(inst, io.BytesIO(b"{not json"))
    assert error_code(e.value) == "BAD_BODY_ERR"
    std = data(kp.create_key(inst, key_body(name="py-std2", extractable=True)))["resources"][0]["id"]
    with pytest.raises(ApiException) as e:
        kp.wrap_key(std, inst, key_action_wrap_body=body({}))
    assert error_code(e.value) == "KEY_ROOT_REQ_ERR"
    nobody = client(server, BearerTokenAuthenticator("garbage"))
    with pytest.raises(ApiException) as e:
        nobody.get_keys(inst)
    assert e.value.status_code == 400 and error_code(e.value) == "BEARER_SUB_EXTRACTION_ERR"
