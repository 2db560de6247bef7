"""Post-quantum secure import (Strongroom's extension of Key Protect's import token), done by
an independent client: kyber-py encapsulates to the token's ML-KEM public key, `cryptography`
wraps the key material with AES-KWP (RFC 5649) under the shared secret and seals the nonce
with AES-GCM, and IBM's official client carries the result."""
import base64
import os

import pytest
import requests
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from ibm_cloud_sdk_core import ApiException
from kyber_py.ml_kem import ML_KEM_768, ML_KEM_1024

from test_keyprotect_client import b64, body, client, data, error_code, key_body
from test_keyprotect_secure_import import wrap_opens_with

# (transportKeyAlgorithm, kyber-py parameter set, encapsulation key bytes, ciphertext bytes)
SETS = [("ML_KEM_768", ML_KEM_768, 1184, 1088), ("ML_KEM_1024", ML_KEM_1024, 1568, 1568)]


def post_token(server, **fields):
    """POST /api/v2/import_token with the extension field (IBM's client does not send it)."""
    return requests.post(
        f"{server.url}/api/v2/import_token",
        json=fields,
        headers={"Authorization": f"Bearer {server.token}", "bluemix-instance": server.instance},
        timeout=30,
    )


def ml_kem_token(server, kp, name, ek_len):
    r = post_token(server, expiration=600, maxAllowedRetrievals=2, transportKeyAlgorithm=name)
    assert r.status_code == 200, r.text
    assert r.json()["transportKeyAlgorithm"] == name
    got = data(kp.get_import_token(server.instance))
    assert got["transportKeyAlgorithm"] == name
    pem = base64.b64decode(got["payload"]).decode()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    spki = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
    # SubjectPublicKeyInfo: the BIT STRING's content (after its unused-bits byte) is the raw key.
    return spki[-ek_len:], base64.b64decode(got["nonce"])


def seal(impl, ek, material, nonce, nonce_key=None):
    secret, ct = impl.encaps(ek)
    iv = os.urandom(12)
    return {
        "payload": b64(ct + aes_key_wrap_with_padding(secret, material)),
        "encryptedNonce": b64(AESGCM(nonce_key or material).encrypt(iv, nonce, None)),
        "iv": b64(iv),
        "encryptionAlgorithm": "ML_KEM_AES_256_KWP",
    }


@pytest.mark.parametrize("name,impl,ek_len,ct_len", SETS)
def test_ml_kem_import_token_imports_and_rotates(server, name, impl, ek_len, ct_len):
    kp = client(server)
    inst = server.instance
    ek, nonce = ml_kem_token(server, kp, name, ek_len)
    material = os.urandom(32)
    r = kp.create_key(inst, key_body(name=f"pq-{name}", extractable=False, **seal(impl, ek, material, nonce)))
    key = data(r)["resources"][0]
    assert r.get_status_code() == 201 and key["imported"] is True
    w = wrap_opens_with(kp, inst, key["id"], material)
    # Rotation with new material through the same token (its second retrieval is unused).
    r = kp.rotate_key(key["id"], inst, key_action_rotate_body=body(seal(impl, ek, os.urandom(16), nonce)))
    assert r.get_status_code() == 204
    u = data(kp.unwrap_key(key["id"], inst, body({"ciphertext": w["ciphertext"]})))
    assert base64.b64decode(u["plaintext"]) == b"dek" and "rewrappedKeyVersion" in u


def test_ml_kem_import_refusals_change_nothing(server):
    kp = client(server)
    inst = server.instance
    before = int(kp.get_key_collection_metadata(inst, state=[0, 1, 2, 3, 5]).get_headers()["Key-Total"])

    def refused(fields, status, code):
        with pytest.raises(ApiException) as e:
            kp.create_key(inst, key_body(name="pq-refused", extractable=False, **fields))
        assert (e.value.status_code, error_code(e.value)) == (status, code), e.value.http_response.text
        return e.value.http_response.json()["resources"][0]["reasons"][0]["message"]

    r = post_token(server, transportKeyAlgorithm="KYBER_768")
    assert r.status_code == 400 and r.json()["resources"][0]["reasons"][0]["code"] == "INVALID_FIELD_ERR"
    assert "ML_KEM_1024" in r.text

    ek, nonce = ml_kem_token(server, kp, "ML_KEM_768", 1184)
    material = os.urandom(32)
    good = seal(ML_KEM_768, ek, material, nonce)
    payload = base64.b64decode(good["payload"])
    # A truncated ciphertext, a ciphertext with one bit flipped (implicit rejection: a wrong
    # secret, caught by the key wrap's integrity check), a tampered wrapped key.
    refused(dict(good, payload=b64(payload[:1000])), 400, "INVALID_FIELD_ERR")
    refused(dict(good, payload=b64(bytes([payload[0] ^ 1]) + payload[1:])), 400, "INVALID_FIELD_ERR")
    refused(dict(good, payload=b64(payload[:-1] + bytes([payload[-1] ^ 1]))), 400, "INVALID_FIELD_ERR")
    # The RSA algorithm names against an ML-KEM token, with a message that says so.
    msg = refused(dict(good, encryptionAlgorithm="RSAES_OAEP_SHA_256"), 400, "INVALID_FIELD_ERR")
    assert "ML_KEM_768" in msg, msg
    refused(seal(ML_KEM_768, ek, material, os.urandom(12)), 400, "INCORRECT_NONCE_ERR")
    # Key material of a size AES keys do not have.
    refused(seal(ML_KEM_768, ek, os.urandom(20), nonce, nonce_key=material), 400, "INVALID_FIELD_ERR")

    # The ML-KEM algorithm against Key Protect's RSA token.
    assert post_token(server).json()["transportKeyAlgorithm"] == "RSA_4096"
    refused(good, 400, "INVALID_FIELD_ERR")

    after = int(kp.get_key_collection_metadata(inst, state=[0, 1, 2, 3, 5]).get_headers()["Key-Total"])
    assert after == before, "no refused import created a key"
