"""IBM's special mechanisms over GREP11, checked by independent implementations:
- CKM_IBM_BTC_DERIVE against bip-utils: the same seed gives the same chain codes and public
  keys along a wallet path, for BIP32 on secp256k1 and SLIP-0010 on secp256k1, P-256 and
  Ed25519; a key derived here signs, and the signature verifies with bip-utils' key;
- CKM_IBM_ECDSA_OTHER with BIP340 Schnorr against coincurve (libsecp256k1), both ways;
- CKM_IBM_ECDSA_OTHER with IBM's two EC-SDSA forms on secp256k1, recomputed with
  libsecp256k1's point arithmetic (coincurve), both ways, in IBM's example flow (6 KiB of data);
- CKM_IBM_EC_X25519 against `cryptography`'s X25519."""
import hashlib
import os

import grpc
import pytest
from bip_utils import Bip32Slip10Ed25519, Bip32Slip10Nist256p1, Bip32Slip10Secp256k1
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from test_grep11 import call, grep11_code, stubs  # noqa: F401  (the stubs fixture)
from test_grep11_pq import i, spki, tf

CKM_AES_KEY_GEN, CKM_AES_CBC_PAD, CKM_ECDSA = 0x1080, 0x1085, 0x1041
CKM_IBM_ED25519_SHA512, CKM_IBM_BTC_DERIVE = 0x8001001C, 0x80070001
CKA_CLASS, CKA_KEY_TYPE, CKA_VALUE_LEN, CKA_EC_PARAMS = 0x0, 0x100, 0x161, 0x180
CKA_ENCRYPT, CKA_UNWRAP, CKA_SIGN, CKA_VERIFY, CKA_DERIVE = 0x104, 0x107, 0x108, 0x10A, 0x10C
CKA_EXTRACTABLE, CKA_IBM_USE_AS_DATA = 0x162, 0x80010008
CKO_SECRET_KEY, CKK_GENERIC_SECRET, CKK_EC = 4, 0x10, 0x3
BIP32_PRV2PRV, BIP32_PRV2PUB, BIP32_PUB2PUB, BIP32_MASTERK = 1, 2, 3, 4
SLIP10_PRV2PRV, SLIP10_PRV2PUB, SLIP10_MASTERK = 5, 6, 8
HARDENED = 0x80000000
# DER OIDs of the curves (CKA_EC_PARAMS).
SECP256K1 = bytes.fromhex("06052b8104000a")
P256 = bytes.fromhex("06082a8648ce3d030107")
ED25519 = bytes.fromhex("06032b6570")


def import_seed(server, stubs, seed):
    pb = stubs["server_pb2"]
    kek = call(server, stubs, "GenerateKey", pb.GenerateKeyRequest(
        Mech=pb.Mechanism(Mechanism=CKM_AES_KEY_GEN),
        Template={CKA_VALUE_LEN: i(pb, 32), CKA_ENCRYPT: tf(pb, True), CKA_UNWRAP: tf(pb, True)})).KeyBytes
    mech = pb.Mechanism(Mechanism=CKM_AES_CBC_PAD, ParameterB=bytes(16))
    wrapped = call(server, stubs, "EncryptSingle", pb.EncryptSingleRequest(
        Mech=mech, Key=pb.KeyBlob(KeyBlobs=[kek]), Plain=seed)).Ciphered
    return call(server, stubs, "UnwrapKey", pb.UnwrapKeyRequest(
        Wrapped=wrapped, Mech=mech, KeK=pb.KeyBlob(KeyBlobs=[kek]),
        Template={CKA_CLASS: i(pb, CKO_SECRET_KEY), CKA_KEY_TYPE: i(pb, CKK_GENERIC_SECRET),
                  CKA_DERIVE: tf(pb, True), CKA_IBM_USE_AS_DATA: tf(pb, True)})).UnwrappedBytes


def derive(server, stubs, kind, base, curve, index=0, chain=b""):
    """One BTC derivation with IBM's example template; (new key blob, chain code)."""
    pb = stubs["server_pb2"]
    r = call(server, stubs, "DeriveKey", pb.DeriveKeyRequest(
        Mech=pb.Mechanism(Mechanism=CKM_IBM_BTC_DERIVE, BTCDeriveParameter=pb.BTCDeriveParm(
            Type=kind, ChildKeyIndex=index, ChainCode=chain, Version=1)),
        Template={CKA_KEY_TYPE: i(pb, CKK_EC), CKA_EC_PARAMS: pb.AttributeValue(AttributeB=curve),
                  CKA_DERIVE: tf(pb, True), CKA_SIGN: tf(pb, True), CKA_VERIFY: tf(pb, True),
                  CKA_EXTRACTABLE: tf(pb, False), CKA_VALUE_LEN: i(pb, 0),
                  CKA_IBM_USE_AS_DATA: tf(pb, True)},
        BaseKey=pb.KeyBlob(KeyBlobs=[base])))
    return r.NewKeyBytes, r.CheckSum


def compressed(der, curve):
    if curve == ED25519:
        return b"\x00" + der[-32:]
    point = der[-65:]
    return bytes([2 + (point[64] & 1)]) + point[1:33]


# A wallet path: purpose, coin type and account hardened, then change and address normal.
PATH = [44 + HARDENED, 0 + HARDENED, 0 + HARDENED, 0, 5]
CASES = [
    ("BIP32 secp256k1", Bip32Slip10Secp256k1, SECP256K1, (BIP32_MASTERK, BIP32_PRV2PRV, BIP32_PRV2PUB), PATH),
    ("SLIP-0010 secp256k1", Bip32Slip10Secp256k1, SECP256K1, (SLIP10_MASTERK, SLIP10_PRV2PRV, SLIP10_PRV2PUB), PATH),
    ("SLIP-0010 P-256", Bip32Slip10Nist256p1, P256, (SLIP10_MASTERK, SLIP10_PRV2PRV, SLIP10_PRV2PUB), PATH),
    ("SLIP-0010 Ed25519", Bip32Slip10Ed25519, ED25519, (SLIP10_MASTERK, SLIP10_PRV2PRV, SLIP10_PRV2PUB),
     [44 + HARDENED, 501 + HARDENED, 0 + HARDENED, 0 + HARDENED]),
]


@pytest.mark.parametrize("name,impl,curve,kinds,path", CASES, ids=[c[0] for c in CASES])
def test_derivations_match_bip_utils(server, stubs, name, impl, curve, kinds, path):
    pb = stubs["server_pb2"]
    master_k, prv2prv, prv2pub = kinds
    seed = os.urandom(64)
    ours, chain = derive(server, stubs, master_k, import_seed(server, stubs, seed), curve)
    theirs = impl.FromSeed(seed)
    assert chain == theirs.ChainCode().ToBytes(), f"{name}: master chain code"
    for index in path:
        public, pub_chain = derive(server, stubs, prv2pub, ours, curve, index, chain)
        ours, chain = derive(server, stubs, prv2prv, ours, curve, index, chain)
        theirs = theirs.ChildKey(index)
        assert chain == pub_chain == theirs.ChainCode().ToBytes(), f"{name}: chain code of {index:#x}"
        der = spki(server, stubs, public)
        assert compressed(der, curve) == theirs.PublicKey().RawCompressed().ToBytes(), f"{name}: key {index:#x}"
    # The last key signs here; the signature verifies under bip-utils' public key.
    msg = b"pay 1 BTC to ..."
    if curve == ED25519:
        sig = call(server, stubs, "SignSingle", pb.SignSingleRequest(
            Mech=pb.Mechanism(Mechanism=CKM_IBM_ED25519_SHA512), PrivKey=pb.KeyBlob(KeyBlobs=[ours]),
            Data=msg)).Signature
        ed25519.Ed25519PublicKey.from_public_bytes(theirs.PublicKey().RawCompressed().ToBytes()[1:]).verify(sig, msg)
    else:
        digest = hashlib.sha256(msg).digest()
        sig = call(server, stubs, "SignSingle", pb.SignSingleRequest(
            Mech=pb.Mechanism(Mechanism=CKM_ECDSA), PrivKey=pb.KeyBlob(KeyBlobs=[ours]), Data=digest)).Signature
        der_sig = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        crv = ec.SECP256K1() if curve == SECP256K1 else ec.SECP256R1()
        key = ec.EllipticCurvePublicKey.from_encoded_point(crv, theirs.PublicKey().RawCompressed().ToBytes())
        key.verify(der_sig, msg, ec.ECDSA(hashes.SHA256()))


def test_public_derivation_matches_and_hardened_from_public_is_refused(server, stubs):
    seed = os.urandom(32)
    master, chain = derive(server, stubs, BIP32_MASTERK, import_seed(server, stubs, seed), SECP256K1)
    account, account_chain = derive(server, stubs, BIP32_PRV2PUB, master, SECP256K1, 0 + HARDENED, chain)
    theirs = Bip32Slip10Secp256k1.FromSeed(seed).ChildKey(0 + HARDENED)
    # Watch-only: addresses from the account's public key alone.
    for index in (0, 1, 7):
        child, _ = derive(server, stubs, BIP32_PUB2PUB, account, SECP256K1, index, account_chain)
        want = theirs.ChildKey(index).PublicKey().RawCompressed().ToBytes()
        assert compressed(spki(server, stubs, child), SECP256K1) == want
    with pytest.raises(grpc.RpcError) as e:
        derive(server, stubs, BIP32_PUB2PUB, account, SECP256K1, 1 + HARDENED, account_chain)
    assert grep11_code(stubs, e.value) == 0x71  # CKR_MECHANISM_PARAM_INVALID


CKM_EC_KEY_PAIR_GEN, CKM_IBM_ECDSA_OTHER = 0x1040, 0x80010031
ECSG_BIP340 = 256  # CkEcsgStrongroomBip340


def test_bip340_schnorr_cross_checks_with_coincurve(server, stubs):
    """BIP340 signatures made here verify in libsecp256k1 (coincurve), libsecp256k1's verify
    here, and a tampered one is refused. Keys may come from a BIP32 tree as well."""
    from coincurve import PrivateKey, PublicKeyXOnly

    pb = stubs["server_pb2"]
    mech = pb.Mechanism(Mechanism=CKM_IBM_ECDSA_OTHER, ECSGParameter=pb.ECSGParm(Type=ECSG_BIP340))
    r = call(server, stubs, "GenerateKeyPair", pb.GenerateKeyPairRequest(
        Mech=pb.Mechanism(Mechanism=CKM_EC_KEY_PAIR_GEN),
        PubKeyTemplate={CKA_EC_PARAMS: pb.AttributeValue(AttributeB=SECP256K1), CKA_VERIFY: tf(pb, True)},
        PrivKeyTemplate={CKA_SIGN: tf(pb, True)}))
    generated = (r.PubKeyBytes, r.PrivKeyBytes)
    seed = import_seed(server, stubs, os.urandom(32))
    master, chain = derive(server, stubs, BIP32_MASTERK, seed, SECP256K1)
    child, _ = derive(server, stubs, BIP32_PRV2PRV, master, SECP256K1, 86 + HARDENED, chain)
    child_pub, _ = derive(server, stubs, BIP32_PRV2PUB, master, SECP256K1, 86 + HARDENED, chain)
    for public, private in (generated, (child_pub, child)):
        x = spki(server, stubs, public)[-64:-32]
        for msg in (os.urandom(32), b"", b"a taproot message of another length"):
            sig = call(server, stubs, "SignSingle", pb.SignSingleRequest(
                Mech=mech, PrivKey=pb.KeyBlob(KeyBlobs=[private]), Data=msg)).Signature
            assert len(sig) == 64
            if len(msg) == 32:  # coincurve's verify takes 32-byte messages
                assert PublicKeyXOnly(x).verify(sig, msg)
                assert not PublicKeyXOnly(x).verify(sig[:63] + bytes([sig[63] ^ 1]), msg)
            call(server, stubs, "VerifySingle", pb.VerifySingleRequest(
                Mech=mech, PubKey=pb.KeyBlob(KeyBlobs=[public]), Data=msg, Signature=sig))
    # libsecp256k1 signs; Strongroom verifies under the x-only key with the even y.
    theirs = PrivateKey()
    msg = os.urandom(32)
    sig = theirs.sign_schnorr(msg)
    xonly = PublicKeyXOnly.from_secret(theirs.secret).format()
    der = bytes.fromhex("3036301006072a8648ce3d020106052b8104000a03220002") + xonly
    call(server, stubs, "VerifySingle", pb.VerifySingleRequest(
        Mech=mech, PubKey=pb.KeyBlob(KeyBlobs=[der]), Data=msg, Signature=sig))
    with pytest.raises(grpc.RpcError) as e:
        call(server, stubs, "VerifySingle", pb.VerifySingleRequest(
            Mech=mech, PubKey=pb.KeyBlob(KeyBlobs=[der]), Data=msg, Signature=sig[:32] + bytes(32)))
    assert grep11_code(stubs, e.value) == 0xC0  # CKR_SIGNATURE_INVALID
    with pytest.raises(grpc.RpcError) as e:
        call(server, stubs, "VerifySingle", pb.VerifySingleRequest(
            Mech=mech, PubKey=pb.KeyBlob(KeyBlobs=[der]), Data=msg, Signature=sig[:-1]))
    assert grep11_code(stubs, e.value) == 0xC1  # CKR_SIGNATURE_LEN_RANGE


ECSG_ECSDSA_S256, ECSG_ECSDSA_COMPR_MULTI = 3, 5
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def ecsdsa_challenge(form, w, p, msg):
    """The hash of IBM's EC-SDSA forms: over x ‖ y of W (type 3), or over the compressed W,
    the signer's compressed key and the message (type 5), reduced modulo n for type 5."""
    if form == ECSG_ECSDSA_S256:
        return hashlib.sha256(w.format(compressed=False)[1:] + msg).digest()
    h = hashlib.sha256(w.format(compressed=True) + p.format(compressed=True) + msg).digest()
    return (int.from_bytes(h, "big") % SECP256K1_N).to_bytes(32, "big")


def ecsdsa_verify(form, p, msg, sig):
    """EC-SDSA verification with libsecp256k1's point arithmetic: W' = s·G − e·P (type 3) or
    s·G + r·P (type 5), then the challenge again."""
    from coincurve import PublicKey

    r, s = sig[:32], sig[32:]
    e = int.from_bytes(r, "big") % SECP256K1_N
    if form == ECSG_ECSDSA_S256:
        e = SECP256K1_N - e
    w = PublicKey.combine_keys([PublicKey.from_secret(s), p.multiply(e.to_bytes(32, "big"))])
    return ecsdsa_challenge(form, w, p, msg) == r


def ecsdsa_sign(form, d, msg):
    """EC-SDSA signing in Python integers and libsecp256k1 points (the other way round)."""
    from coincurve import PrivateKey, PublicKey

    k = PrivateKey()
    p = PublicKey.from_secret(d.to_bytes(32, "big"))
    r = ecsdsa_challenge(form, k.public_key, p, msg)
    e = int.from_bytes(r, "big") % SECP256K1_N
    kk = int.from_bytes(k.secret, "big")
    s = (kk + e * d) % SECP256K1_N if form == ECSG_ECSDSA_S256 else (kk - e * d) % SECP256K1_N
    return r + s.to_bytes(32, "big")


@pytest.mark.parametrize("form", [ECSG_ECSDSA_S256, ECSG_ECSDSA_COMPR_MULTI])
def test_ec_sdsa_cross_checks_with_libsecp256k1(server, stubs, form):
    """IBM's Schnorr example flow (a secp256k1 pair, 6 KiB of random data, SignSingle and
    VerifySingle with the ECSGParm type), the signature checked again outside with
    libsecp256k1's arithmetic as IBM's example checks type 5 with Zilliqa's SDK; a signature
    made outside verifies here; a tampered one, or one of the other form, is refused."""
    from coincurve import PublicKey

    pb = stubs["server_pb2"]
    mech = pb.Mechanism(Mechanism=CKM_IBM_ECDSA_OTHER, ECSGParameter=pb.ECSGParm(Type=form))
    r = call(server, stubs, "GenerateKeyPair", pb.GenerateKeyPairRequest(
        Mech=pb.Mechanism(Mechanism=CKM_EC_KEY_PAIR_GEN),
        PubKeyTemplate={CKA_EC_PARAMS: pb.AttributeValue(AttributeB=SECP256K1), CKA_VERIFY: tf(pb, True),
                        CKA_EXTRACTABLE: tf(pb, False)},
        PrivKeyTemplate={CKA_SIGN: tf(pb, True), CKA_EXTRACTABLE: tf(pb, False)}))
    p = PublicKey(spki(server, stubs, r.PubKeyBytes)[-65:])
    data = os.urandom(6 * 1024)
    sig = call(server, stubs, "SignSingle", pb.SignSingleRequest(
        Mech=mech, PrivKey=pb.KeyBlob(KeyBlobs=[r.PrivKeyBytes]), Data=data)).Signature
    assert len(sig) == 64
    call(server, stubs, "VerifySingle", pb.VerifySingleRequest(
        Mech=mech, PubKey=pb.KeyBlob(KeyBlobs=[r.PubKeyBytes]), Data=data, Signature=sig))
    assert ecsdsa_verify(form, p, data, sig)
    other = ECSG_ECSDSA_COMPR_MULTI if form == ECSG_ECSDSA_S256 else ECSG_ECSDSA_S256
    assert not ecsdsa_verify(other, p, data, sig)
    assert not ecsdsa_verify(form, p, data + b"!", sig)
    # Signed outside with a key Strongroom sees only as a public key blob.
    d = int.from_bytes(os.urandom(32), "big") % SECP256K1_N
    theirs = PublicKey.from_secret(d.to_bytes(32, "big")).format(compressed=False)
    der = bytes.fromhex("3056301006072a8648ce3d020106052b8104000a034200") + theirs
    msg = b"pay 1 BTC to bc1q..."
    outside = ecsdsa_sign(form, d, msg)
    call(server, stubs, "VerifySingle", pb.VerifySingleRequest(
        Mech=mech, PubKey=pb.KeyBlob(KeyBlobs=[der]), Data=msg, Signature=outside))
    for bad, code in ((outside[:32] + bytes([outside[32] ^ 1]) + outside[33:], 0xC0),  # SIGNATURE_INVALID
                      (outside[:-1], 0xC1)):  # SIGNATURE_LEN_RANGE
        with pytest.raises(grpc.RpcError) as e:
            call(server, stubs, "VerifySingle", pb.VerifySingleRequest(
                Mech=mech, PubKey=pb.KeyBlob(KeyBlobs=[der]), Data=msg, Signature=bad))
        assert grep11_code(stubs, e.value) == code
    with pytest.raises(grpc.RpcError) as e:
        call(server, stubs, "VerifySingle", pb.VerifySingleRequest(
            Mech=pb.Mechanism(Mechanism=CKM_IBM_ECDSA_OTHER, ECSGParameter=pb.ECSGParm(Type=other)),
            PubKey=pb.KeyBlob(KeyBlobs=[der]), Data=msg, Signature=outside))
    assert grep11_code(stubs, e.value) == 0xC0


CKM_IBM_EC_X25519, CKM_AES_ECB, CKK_AES = 0x8001001B, 0x1081, 0x1F
X25519 = bytes.fromhex("06032b656e")


def test_x25519_agrees_with_cryptography(server, stubs):
    """An X25519 pair made here and one made by `cryptography` agree on the same secret,
    seen as the same AES-256 key; a point of small order is refused."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pb = stubs["server_pb2"]
    r = call(server, stubs, "GenerateKeyPair", pb.GenerateKeyPairRequest(
        Mech=pb.Mechanism(Mechanism=CKM_EC_KEY_PAIR_GEN),
        PubKeyTemplate={CKA_EC_PARAMS: pb.AttributeValue(AttributeB=X25519), CKA_DERIVE: tf(pb, True)},
        PrivKeyTemplate={CKA_DERIVE: tf(pb, True)}))
    ours = spki(server, stubs, r.PubKeyBytes)[-32:]
    theirs = X25519PrivateKey.generate()
    their_public = theirs.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = theirs.exchange(X25519PublicKey.from_public_bytes(ours))

    def aes_from(peer):
        return call(server, stubs, "DeriveKey", pb.DeriveKeyRequest(
            Mech=pb.Mechanism(Mechanism=CKM_IBM_EC_X25519, ParameterB=peer),
            Template={CKA_CLASS: i(pb, CKO_SECRET_KEY), CKA_KEY_TYPE: i(pb, CKK_AES),
                      CKA_VALUE_LEN: i(pb, 32), CKA_ENCRYPT: tf(pb, True)},
            BaseKey=pb.KeyBlob(KeyBlobs=[r.PrivKeyBytes]))).NewKeyBytes

    block = os.urandom(16)
    got = call(server, stubs, "EncryptSingle", pb.EncryptSingleRequest(
        Mech=pb.Mechanism(Mechanism=CKM_AES_ECB), Key=pb.KeyBlob(KeyBlobs=[aes_from(their_public)]),
        Plain=block)).Ciphered
    enc = Cipher(algorithms.AES(shared), modes.ECB()).encryptor()
    assert got == enc.update(block) + enc.finalize(), "the same 32-byte secret"
    with pytest.raises(grpc.RpcError) as e:
        aes_from(bytes(32))  # the point 0 has small order: an all-zero secret
    assert grep11_code(stubs, e.value) == 0x71  # CKR_MECHANISM_PARAM_INVALID


CKM_IBM_EC_AGGREGATE, ECSG_BLS = 0x80010034, 6
BLS12_381 = bytes.fromhex("060c2b0601040102820b87670302")


def test_bls_aggregation_as_ibms_example(server, stubs):
    """IBM's Test_bls12_Aggregation over gRPC: ten BLS12-381 key pairs sign one message; the
    signatures aggregate by SignSingle without a key and the public keys by DeriveKey without
    a base key; the aggregate verifies against the derived key and against a KeyBlob whose
    first blob is the ten public key blobs joined. With three keys and two signatures, both
    forms refuse (Test_bls12_AggregationWithVerificationFailure)."""
    pb = stubs["server_pb2"]
    bls = pb.Mechanism(Mechanism=CKM_IBM_ECDSA_OTHER, ECSGParameter=pb.ECSGParm(Type=ECSG_BLS))
    pairs = []
    for _ in range(10):
        r = call(server, stubs, "GenerateKeyPair", pb.GenerateKeyPairRequest(
            Mech=pb.Mechanism(Mechanism=CKM_EC_KEY_PAIR_GEN),
            PubKeyTemplate={CKA_EC_PARAMS: pb.AttributeValue(AttributeB=BLS12_381), CKA_VERIFY: tf(pb, True)},
            PrivKeyTemplate={CKA_SIGN: tf(pb, True)}))
        pairs.append((r.PubKeyBytes, r.PrivKeyBytes))
    msg = b"one block, ten validators"
    sigs = [call(server, stubs, "SignSingle", pb.SignSingleRequest(
        Mech=bls, PrivKey=pb.KeyBlob(KeyBlobs=[sk]), Data=msg)).Signature for _, sk in pairs]

    def agg_sig(s):
        return call(server, stubs, "SignSingle", pb.SignSingleRequest(Mech=pb.Mechanism(
            Mechanism=CKM_IBM_EC_AGGREGATE, ECAGGParameter=pb.ECAGGParm(
                Version=0, Mode=1, PerElementSize=96, Elements=b"".join(s))))).Signature

    def agg_key(pks):
        return call(server, stubs, "DeriveKey", pb.DeriveKeyRequest(
            Mech=pb.Mechanism(Mechanism=CKM_IBM_EC_AGGREGATE, ECAGGParameter=pb.ECAGGParm(
                Version=0, Mode=2, PerElementSize=len(pks[0]), Elements=b"".join(pks))),
            Template={CKA_VERIFY: tf(pb, True)})).NewKeyBytes

    def verify(key, sig):
        call(server, stubs, "VerifySingle", pb.VerifySingleRequest(
            Mech=bls, PubKey=pb.KeyBlob(KeyBlobs=[key]), Data=msg, Signature=sig))

    all_sig = agg_sig(sigs)
    public = [pk for pk, _ in pairs]
    verify(agg_key(public), all_sig)
    verify(b"".join(public), all_sig)
    two = agg_sig(sigs[:2])
    for key in (agg_key(public[:3]), b"".join(public[:3])):
        with pytest.raises(grpc.RpcError) as e:
            verify(key, two)
        assert grep11_code(stubs, e.value) == 0xC0  # CKR_SIGNATURE_INVALID
