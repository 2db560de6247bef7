"""ML-DSA and ML-KEM over GREP11, checked by independent implementations: dilithium-py
verifies Strongroom's ML-DSA signatures and signs for Strongroom to verify; kyber-py
encapsulates to Strongroom's ML-KEM keys and Strongroom decapsulates to the same secret."""
import os

import grpc
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from dilithium_py.ml_dsa import ML_DSA_44, ML_DSA_65, ML_DSA_87
from kyber_py.ml_kem import ML_KEM_512, ML_KEM_768, ML_KEM_1024

from test_grep11 import call, grep11_code, stubs  # noqa: F401  (the stubs fixture)

CKM_ML_DSA_KEY_PAIR_GEN, CKM_ML_DSA = 0x1C, 0x1D
CKM_ML_KEM_KEY_PAIR_GEN, CKM_ML_KEM = 0x0F, 0x17
CKM_AES_ECB = 0x1081
CKA_CLASS, CKA_KEY_TYPE, CKA_VALUE_LEN = 0x0, 0x100, 0x161
CKA_ENCRYPT, CKA_SIGN, CKA_VERIFY, CKA_DERIVE = 0x104, 0x108, 0x10A, 0x10C
CKA_PUBLIC_KEY_INFO, CKA_PARAMETER_SET = 0x129, 0x61D
CKO_SECRET_KEY, CKK_AES = 4, 0x1F


def tf(pb, v):
    return pb.AttributeValue(AttributeTF=v)


def i(pb, v):
    return pb.AttributeValue(AttributeI=v)


def pair(server, stubs, mech, pset, pub_usage, priv_usage):
    pb = stubs["server_pb2"]
    r = call(server, stubs, "GenerateKeyPair", pb.GenerateKeyPairRequest(
        Mech=pb.Mechanism(Mechanism=mech),
        PubKeyTemplate={CKA_PARAMETER_SET: i(pb, pset), pub_usage: tf(pb, True)},
        PrivKeyTemplate={priv_usage: tf(pb, True)}))
    return r.PubKeyBytes, r.PrivKeyBytes


def spki(server, stubs, public):
    pb = stubs["server_pb2"]
    r = call(server, stubs, "GetAttributeValue", pb.GetAttributeValueRequest(
        Object=public, Attributes={CKA_PUBLIC_KEY_INFO: pb.AttributeValue(AttributeB=b"")}))
    v = r.AttributesBytes.get(CKA_PUBLIC_KEY_INFO) or r.Attributes[CKA_PUBLIC_KEY_INFO].AttributeB
    return bytes(v)


@pytest.mark.parametrize("pset,impl", [(1, ML_DSA_44), (2, ML_DSA_65), (3, ML_DSA_87)])
def test_ml_dsa_signatures_cross_check_with_dilithium_py(server, stubs, pset, impl):
    pb = stubs["server_pb2"]
    public, private = pair(server, stubs, CKM_ML_DSA_KEY_PAIR_GEN, pset, CKA_VERIFY, CKA_SIGN)
    der = spki(server, stubs, public)
    pk = der[-len(impl.keygen()[0]):]
    prefix = der[:-len(pk)]
    msg = os.urandom(200)
    for ctx in (b"", b"strongroom context"):
        mech = pb.Mechanism(Mechanism=CKM_ML_DSA, ParameterB=ctx) if ctx else pb.Mechanism(Mechanism=CKM_ML_DSA)
        sig = call(server, stubs, "SignSingle", pb.SignSingleRequest(
            Mech=mech, PrivKey=pb.KeyBlob(KeyBlobs=[private]), Data=msg)).Signature
        assert impl.verify(pk, msg, sig, ctx=ctx), "dilithium-py verifies Strongroom's signature"
        assert not impl.verify(pk, msg, sig, ctx=ctx + b"x")
        # dilithium-py signs with its own key; Strongroom verifies through a plain SPKI.
        their_pk, their_sk = impl.keygen()
        their_sig = impl.sign(their_sk, msg, ctx=ctx)
        call(server, stubs, "VerifySingle", pb.VerifySingleRequest(
            Mech=mech, PubKey=pb.KeyBlob(KeyBlobs=[prefix + their_pk]), Data=msg, Signature=their_sig))
        with pytest.raises(grpc.RpcError) as e:
            call(server, stubs, "VerifySingle", pb.VerifySingleRequest(
                Mech=mech, PubKey=pb.KeyBlob(KeyBlobs=[prefix + their_pk]), Data=msg + b"!", Signature=their_sig))
        assert grep11_code(stubs, e.value) == 0xC0  # CKR_SIGNATURE_INVALID


@pytest.mark.parametrize("pset,impl", [(1, ML_KEM_512), (2, ML_KEM_768), (3, ML_KEM_1024)])
def test_kyber_py_encapsulations_decapsulate_in_strongroom(server, stubs, pset, impl):
    pb = stubs["server_pb2"]
    public, private = pair(server, stubs, CKM_ML_KEM_KEY_PAIR_GEN, pset, CKA_DERIVE, CKA_DERIVE)
    der = spki(server, stubs, public)
    ek = der[-len(impl.keygen()[0]):]
    for _ in range(3):
        shared, ct = impl.encaps(ek)
        key = call(server, stubs, "DeriveKey", pb.DeriveKeyRequest(
            Mech=pb.Mechanism(Mechanism=CKM_ML_KEM, ParameterB=ct),
            Template={CKA_CLASS: i(pb, CKO_SECRET_KEY), CKA_KEY_TYPE: i(pb, CKK_AES),
                      CKA_VALUE_LEN: i(pb, 32), CKA_ENCRYPT: tf(pb, True)},
            BaseKey=pb.KeyBlob(KeyBlobs=[private]))).NewKeyBytes
        block = os.urandom(16)
        ours = call(server, stubs, "EncryptSingle", pb.EncryptSingleRequest(
            Mech=pb.Mechanism(Mechanism=CKM_AES_ECB), Key=pb.KeyBlob(KeyBlobs=[key]), Plain=block)).Ciphered
        enc = Cipher(algorithms.AES(shared), modes.ECB()).encryptor()
        assert ours == enc.update(block) + enc.finalize(), "the same 32-byte shared secret"
    with pytest.raises(grpc.RpcError) as e:
        call(server, stubs, "DeriveKey", pb.DeriveKeyRequest(
            Mech=pb.Mechanism(Mechanism=CKM_ML_KEM, ParameterB=ct[:-1]),
            Template={CKA_CLASS: i(pb, CKO_SECRET_KEY), CKA_KEY_TYPE: i(pb, CKK_AES), CKA_VALUE_LEN: i(pb, 32)},
            BaseKey=pb.KeyBlob(KeyBlobs=[private])))
    assert grep11_code(stubs, e.value) == 0x41  # CKR_ENCRYPTED_DATA_LEN_RANGE
