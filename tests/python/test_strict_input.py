"""Strict input: what a hostile newcomer tried, refused in the protocol's own error format,
with nothing written and nothing revealed."""
import json

import grpc
import pytest
import requests

from test_grep11 import G, grep11_code, stubs  # noqa: F401  (the stubs fixture)
from test_keyprotect_instance_policies import new_instance

KEY_JSON = "application/vnd.ibm.kms.key+json"


def headers(server, **extra):
    return {"Authorization": f"Bearer {server.token}", "Bluemix-Instance": server.instance,
            "Content-Type": KEY_JSON, **extra}


def reason(resp):
    body = resp.json()
    assert body["metadata"]["collectionType"] == "application/vnd.ibm.kms.error+json", resp.text
    return body["resources"][0]["reasons"][0]


def names(server):
    r = requests.get(f"{server.url}/api/v2/keys?limit=5000", headers=headers(server))
    return {k["name"] for k in r.json().get("resources", [])}


def create_raw(server, resource_json: str):
    body = ('{"metadata": {"collectionType": "%s", "collectionTotal": 1}, "resources": [%s]}'
            % (KEY_JSON, resource_json))
    return requests.post(f"{server.url}/api/v2/keys", headers=headers(server), data=body.encode())


def test_a_field_sent_twice_is_refused_and_creates_nothing(server):
    r = create_raw(server, '{"type": "%s", "name": "dup-field", "extractable": false, "extractable": true}' % KEY_JSON)
    assert r.status_code == 400, r.text
    assert reason(r)["code"] == "BAD_BODY_ERR" and "appears twice" in reason(r)["message"]
    assert "dup-field" not in names(server)
    # Nested and top-level duplicates too.
    body = '{"metadata": {"collectionTotal": 1, "collectionTotal": 1}, "resources": [{"name": "x"}]}'
    r = requests.post(f"{server.url}/api/v2/keys", headers=headers(server), data=body.encode())
    assert r.status_code == 400 and reason(r)["code"] == "BAD_BODY_ERR"


@pytest.mark.parametrize("field,value", [
    ("name", "invoice\u202Efdp.exe"),
    ("name", "two\nlines"),
    ("name", "isolate\u2066x"),
    ("name", "esc\u001b[31m"),
    ("description", "rtl \u202E override"),
    ("description", "null\u0000byte"),
])
def test_names_and_descriptions_refuse_control_and_bidi_characters(server, field, value):
    res = {"type": KEY_JSON, "name": "display-ok", "extractable": False, field: value}
    r = create_raw(server, json.dumps(res))
    assert r.status_code == 400, r.text
    got = reason(r)
    assert got["code"] == "INVALID_FIELD_ERR" and got["target"]["name"] == field
    assert value not in names(server)


def test_ordinary_non_ascii_names_are_kept(server):
    r = create_raw(server, json.dumps({"type": KEY_JSON, "name": "clé-مفتاح-鍵", "extractable": False}))
    assert r.status_code == 201, r.text


def test_undecodable_path_and_wrong_method_answer_in_the_key_protect_envelope(server):
    r = requests.get(f"{server.url}/api/v2/keys/%ff", headers=headers(server))
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    assert reason(r)["code"] == "INVALID_PATH_PARAM_ERR" and reason(r)["status"] == 400
    r = requests.post(f"{server.url}/api/v2/keys/%ff%fe/actions/wrap", headers=headers(server), data=b"{}")
    assert r.status_code == 400 and reason(r)["code"] == "INVALID_PATH_PARAM_ERR"
    r = requests.put(f"{server.url}/api/v2/keys", headers=headers(server), data=b"{}")
    assert r.status_code == 405
    got = reason(r)
    assert got["code"] == "METHOD_NOT_ALLOWED_ERR" and got["status"] == 405
    assert r.json()["resources"][0]["errorMsg"].startswith("Method Not Allowed")


def test_responses_with_key_material_are_not_cached(server):
    r = create_raw(server, json.dumps({"type": KEY_JSON, "name": "std-nostore", "extractable": True,
                                       "payload": "c2VjcmV0"}))
    assert r.status_code == 201
    std = r.json()["resources"][0]["id"]
    r = requests.get(f"{server.url}/api/v2/keys/{std}", headers=headers(server))
    assert r.json()["resources"][0]["payload"] == "c2VjcmV0"
    assert r.headers["cache-control"] == "no-store"
    root = create_raw(server, json.dumps({"type": KEY_JSON, "name": "root-nostore", "extractable": False})).json()["resources"][0]["id"]
    w = requests.post(f"{server.url}/api/v2/keys/{root}/actions/wrap", headers=headers(server), data=b"{}")
    assert "plaintext" in w.json() and w.headers["cache-control"] == "no-store"
    u = requests.post(f"{server.url}/api/v2/keys/{root}/actions/unwrap", headers=headers(server),
                      data=json.dumps({"ciphertext": w.json()["ciphertext"]}).encode())
    assert u.json()["plaintext"] == w.json()["plaintext"] and u.headers["cache-control"] == "no-store"
    # Errors, too (they may echo what was sent).
    assert requests.get(f"{server.url}/api/v2/keys/%ff", headers=headers(server)).headers["cache-control"] == "no-store"


def test_grep11_message_over_the_size_limit_gets_a_grep11_error(server, stubs):
    g = G(server, stubs)
    with pytest.raises(grpc.RpcError) as e:
        g("DigestSingle", Mech=g.mech(0x250), Data=b"\0" * (9 * 1024 * 1024))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert grep11_code(stubs, e.value) == 0x21  # CKR_DATA_LEN_RANGE
    assert len(g("GenerateRandom", Len=8).Rnd) == 8, "the server keeps serving"


def test_a_blob_of_another_instance_answers_as_documented_and_says_nothing_about_it(server, stubs):
    other_inst, apikey = new_instance(server)
    token = requests.post(f"{server.url}/identity/token",
                          data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": apikey}).json()["access_token"]
    theirs = G(server, stubs)
    theirs.md = [("authorization", f"Bearer {token}")]
    blob = theirs("GenerateKey", Mech=theirs.mech(0x1080),
                  Template=theirs.attrs(VALUE_LEN=32, ENCRYPT=True, DECRYPT=True)).KeyBytes
    mine = G(server, stubs)
    with pytest.raises(grpc.RpcError) as e:
        mine("EncryptSingle", Mech=mine.mech(0x1085, bytes(16)), Key=mine.kb(blob), Plain=b"x" * 16)
    # docs/compatibility.md: another instance's master key -> CKR_IBM_WKID_MISMATCH.
    assert grep11_code(stubs, e.value) == 0x80010001
    detail = e.value.details() + repr(e.value.trailing_metadata())
    assert other_inst not in detail and other_inst.replace("-", "") not in detail
    attrs_len = int.from_bytes(blob[2:4], "big")  # docs/formats.md, GREP11 key object v1
    mk_id = blob[4 + attrs_len + 1:4 + attrs_len + 17].hex()
    assert mk_id not in detail.lower(), "the detail does not echo the foreign master key id"
