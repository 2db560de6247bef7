"""Secure import with import tokens through IBM's official Python client: the client side
(RSA-OAEP to the token's key, nonce encrypted with the key material) is done with the
`cryptography` package, exactly as IBM documents it; both the Key Protect variant
(RSAES_OAEP_SHA_256 + AES-GCM) and the HPCS variant (RSAES_OAEP_SHA_1 + AES-CBC-PAD)."""
import base64
import os

import pytest
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from ibm_cloud_sdk_core import ApiException

from test_keyprotect_client import b64, body, client, data, error_code, key_body


def fetch_token(kp, inst, **kw):
    r = kp.post_import_token(inst, **kw)
    assert r.get_status_code() == 200
    created = data(r)
    got = data(kp.get_import_token(inst))
    pem = base64.b64decode(got["payload"])
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    public = serialization.load_pem_public_key(pem)
    assert public.key_size == 4096
    return created, got, public, base64.b64decode(got["nonce"])


def seal(public, material, nonce, hpcs=False):
    if hpcs:
        payload = public.encrypt(material, asym.OAEP(mgf=asym.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        enc = Cipher(algorithms.AES(material), modes.CBC(iv)).encryptor()
        encrypted_nonce = enc.update(padder.update(nonce) + padder.finalize()) + enc.finalize()
        alg = "RSAES_OAEP_SHA_1"
    else:
        payload = public.encrypt(material, asym.OAEP(mgf=asym.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
        iv = os.urandom(12)
        encrypted_nonce = AESGCM(material).encrypt(iv, nonce, None)
        alg = "RSAES_OAEP_SHA_256"
    return {"payload": b64(payload), "encryptedNonce": b64(encrypted_nonce), "iv": b64(iv), "encryptionAlgorithm": alg}


def wrap_opens_with(kp, inst, key_id, material):
    """The imported material really is the key: a DEK wrapped by Strongroom opens with it.
    Returns the wrap's answer."""
    w = data(kp.wrap_key(key_id, inst, key_action_wrap_body=body({"plaintext": b64(b"dek")})))
    raw = base64.b64decode(w["ciphertext"])
    aad = b"strongroom/wdek/v1" + raw[:29] + (0).to_bytes(4, "big")
    assert AESGCM(material).decrypt(raw[17:29], raw[29:], aad) == b"dek"
    return w


def test_secure_import_and_rotation(server):
    kp = client(server)
    inst = server.instance
    created, got, public, nonce = fetch_token(kp, inst, expiration=900, max_allowed_retrievals=3)
    assert created["maxAllowedRetrievals"] == 3 and created["remainingRetrievals"] == 3
    assert got["remainingRetrievals"] == 2 and len(nonce) == 12

    material = os.urandom(32)
    r = kp.create_key(inst, key_body(name="py-secure", extractable=False, **seal(public, material, nonce)))
    key = data(r)["resources"][0]
    assert r.get_status_code() == 201 and key["imported"] is True
    w = wrap_opens_with(kp, inst, key["id"], material)

    hpcs_material = os.urandom(32)
    r = kp.rotate_key(key["id"], inst, key_action_rotate_body=body(seal(public, hpcs_material, nonce, hpcs=True)))
    assert r.get_status_code() == 204
    u = data(kp.unwrap_key(key["id"], inst, body({"ciphertext": w["ciphertext"]})))
    assert base64.b64decode(u["plaintext"]) == b"dek" and "rewrappedKeyVersion" in u


def test_secure_import_refusals_change_nothing(server):
    kp = client(server)
    inst = server.instance
    _, _, public, nonce = fetch_token(kp, inst, expiration=300)
    before = int(kp.get_key_collection_metadata(inst, state=[0, 1, 2, 3, 5]).get_headers()["Key-Total"])

    def refused(fields, status, code):
        with pytest.raises(ApiException) as e:
            kp.create_key(inst, key_body(name="py-refused", extractable=False, **fields))
        assert (e.value.status_code, error_code(e.value)) == (status, code), e.value.http_response.text

    material = os.urandom(32)
    good = seal(public, material, nonce)
    tampered = dict(good, encryptedNonce=b64(bytes([base64.b64decode(good["encryptedNonce"])[0] ^ 1]) + base64.b64decode(good["encryptedNonce"])[1:]))
    refused(tampered, 400, "INCORRECT_NONCE_IV_ERR")
    refused(seal(public, material, os.urandom(12)), 400, "INCORRECT_NONCE_ERR")
    refused(dict(good, encryptionAlgorithm="RSAES_OAEP_SHA_1"), 400, "INVALID_FIELD_ERR")
    refused(dict(good, encryptionAlgorithm="ROT13"), 400, "INVALID_FIELD_ERR")
    refused(dict(good, payload=b64(b"\x00" * 512)), 400, "INVALID_FIELD_ERR")
    refused({k: v for k, v in good.items() if k != "iv"}, 400, "INVALID_FIELD_ERR")
    with pytest.raises(ApiException) as e:
        kp.create_key(inst, key_body(name="py-std-secure", extractable=True, **good))
    assert e.value.status_code == 400

    # Over-used token: only one retrieval was allowed.
    with pytest.raises(ApiException) as e:
        kp.get_import_token(inst)
    assert (e.value.status_code, error_code(e.value)) == (409, "IMPORT_TOKEN_EXPIRED_ERR")
    # A payload made for a token that was since replaced.
    fetch_token(kp, inst)
    refused(good, 400, "INVALID_FIELD_ERR")
    # Expired token.
    _, _, public, nonce = fetch_token(kp, inst, expiration=300)
    late = seal(public, material, nonce)
    server.advance(301)
    refused(late, 409, "IMPORT_TOKEN_EXPIRED_ERR")
    kp = client(server)
    with pytest.raises(ApiException) as e:
        kp.post_import_token(inst, expiration=10)
    assert error_code(e.value) == "INVALID_FIELD_ERR"
    with pytest.raises(ApiException) as e:
        kp.post_import_token(inst, max_allowed_retrievals=501)
    assert error_code(e.value) == "INVALID_FIELD_ERR"
    after = int(kp.get_key_collection_metadata(inst, state=[0, 1, 2, 3, 5]).get_headers()["Key-Total"])
    assert after == before, "no refused import created a key"
