//! The few DER facts the engine needs: reading the algorithm of a SubjectPublicKeyInfo or a
//! PKCS#8 PrivateKeyInfo, splitting a MACed SPKI into the SPKI and its trailer, and writing
//! OCTET STRINGs. This is structure only; no cryptography and no big numbers. Every reader
//! checks lengths and refuses indefinite or non-minimal length forms.

/// DER tags used here.
pub mod tag {
    /// INTEGER
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER
    pub const OID: u8 = 0x06;
    /// SEQUENCE
    pub const SEQUENCE: u8 = 0x30;
}

/// Object identifiers (content bytes, without tag and length).
pub mod oid {
    /// rsaEncryption 1.2.840.113549.1.1.1
    pub const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    /// id-ecPublicKey 1.2.840.10045.2.1
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// dhKeyAgreement 1.2.840.113549.1.3.1 (PKCS #3)
    pub const DH: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x03, 0x01];
    /// id-dsa 1.2.840.10040.4.1
    pub const DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
    /// id-Ed25519 1.3.101.112 (RFC 8410)
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    /// IBM's BLS12-381 curve, 1.3.6.1.4.1.2.267.999.3.2.
    pub const BLS12_381: &[u8] = &[
        0x2b, 0x06, 0x01, 0x04, 0x01, 0x02, 0x82, 0x0b, 0x87, 0x67, 0x03, 0x02,
    ];
    /// id-X25519 (RFC 8410), 1.3.101.110.
    pub const X25519: &[u8] = &[0x2b, 0x65, 0x6e];
    /// prime256v1 1.2.840.10045.3.1.7
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// secp384r1 1.3.132.0.34
    pub const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    /// secp521r1 1.3.132.0.35
    pub const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
    /// secp256k1 1.3.132.0.10
    pub const SECP256K1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
    /// id-ml-dsa-44 (2.16.840.1.101.3.4.3.17), FIPS 204 keys in X.509 and PKCS#8.
    pub const ML_DSA_44: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x11];
    /// id-ml-dsa-65 (2.16.840.1.101.3.4.3.18).
    pub const ML_DSA_65: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12];
    /// id-ml-dsa-87 (2.16.840.1.101.3.4.3.19).
    pub const ML_DSA_87: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x13];
    /// id-alg-ml-kem-512 (2.16.840.1.101.3.4.4.1), FIPS 203 keys.
    pub const ML_KEM_512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, 0x01];
    /// id-alg-ml-kem-768 (2.16.840.1.101.3.4.4.2).
    pub const ML_KEM_768: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, 0x02];
    /// id-alg-ml-kem-1024 (2.16.840.1.101.3.4.4.3).
    pub const ML_KEM_1024: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, 0x03];
}

/// One TLV: its tag, its content and the bytes after it.
pub fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        if bytes[0] == 0 {
            return None;
        }
        let len = bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
        if len < 0x80 {
            return None;
        }
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, after) = rest.split_at(len);
    Some((tag, content, after))
}

/// Reads a TLV with the expected tag.
pub fn expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (t, c, r) = read_tlv(input)?;
    (t == want).then_some((c, r))
}

/// The length of the first TLV of `input` (header and content), if it is well formed.
pub fn tlv_len(input: &[u8]) -> Option<usize> {
    let (_, _, after) = read_tlv(input)?;
    Some(input.len() - after.len())
}

/// Appends a TLV.
pub fn write_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

/// Appends a non-negative INTEGER from unsigned big-endian bytes.
pub fn write_uint(out: &mut Vec<u8>, be: &[u8]) {
    let skip = be.iter().take_while(|b| **b == 0).count();
    let mut v = Vec::with_capacity(be.len() + 1);
    if be[skip..].first().is_none_or(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(&be[skip..]);
    write_tlv(out, tag::INTEGER, &v);
}

/// The unsigned big-endian value of a non-negative INTEGER's content.
pub fn uint_value(content: &[u8]) -> Option<&[u8]> {
    match content {
        [] => None,
        [first, ..] if first & 0x80 != 0 => None,
        [0] => Some(content),
        [0, rest @ ..] if rest[0] & 0x80 == 0 => None,
        [0, rest @ ..] => Some(rest),
        _ => Some(content),
    }
}

/// A PKCS #3 Diffie-Hellman key in DER: the DHParameter TLV and the key value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhKey<'a> {
    /// The whole DHParameter SEQUENCE (tag and length included).
    pub params: &'a [u8],
    /// The key value, unsigned big-endian.
    pub value: &'a [u8],
}

fn dh_algorithm(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (alg, rest) = expect(input, tag::SEQUENCE)?;
    let (o, params) = expect(alg, tag::OID)?;
    if o != oid::DH {
        return None;
    }
    let n = tlv_len(params)?;
    (n == params.len() && params.first() == Some(&tag::SEQUENCE)).then_some((params, rest))
}

/// Parses a PKCS#8 PrivateKeyInfo of a PKCS #3 DH key.
pub fn dh_pkcs8(der: &[u8]) -> Option<DhKey<'_>> {
    let (body, after) = expect(der, tag::SEQUENCE)?;
    let (_v, rest) = expect(body, tag::INTEGER)?;
    let (params, rest) = dh_algorithm(rest)?;
    let (octets, rest) = expect(rest, tag::OCTET_STRING)?;
    let (x, tail) = expect(octets, tag::INTEGER)?;
    (after.is_empty() && rest.is_empty() && tail.is_empty()).then_some(())?;
    Some(DhKey {
        params,
        value: uint_value(x)?,
    })
}

/// Parses a SubjectPublicKeyInfo of a PKCS #3 DH key.
pub fn dh_spki(der: &[u8]) -> Option<DhKey<'_>> {
    let (body, after) = expect(der, tag::SEQUENCE)?;
    let (params, rest) = dh_algorithm(body)?;
    let (bits, rest) = expect(rest, tag::BIT_STRING)?;
    let (&unused, key) = bits.split_first()?;
    let (y, tail) = expect(key, tag::INTEGER)?;
    (after.is_empty() && rest.is_empty() && tail.is_empty() && unused == 0).then_some(())?;
    Some(DhKey {
        params,
        value: uint_value(y)?,
    })
}

/// Builds the PKCS#8 PrivateKeyInfo and the SubjectPublicKeyInfo of a DH key pair.
pub fn dh_encode(params: &[u8], x: &[u8], y: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut alg = Vec::new();
    write_tlv(&mut alg, tag::OID, oid::DH);
    alg.extend_from_slice(params);
    let mut alg_seq = Vec::new();
    write_tlv(&mut alg_seq, tag::SEQUENCE, &alg);
    let mut xi = Vec::new();
    write_uint(&mut xi, x);
    let mut body = Vec::new();
    write_uint(&mut body, &[0]);
    body.extend_from_slice(&alg_seq);
    write_tlv(&mut body, tag::OCTET_STRING, &xi);
    let mut pkcs8 = Vec::new();
    write_tlv(&mut pkcs8, tag::SEQUENCE, &body);
    let mut yi = vec![0u8];
    write_uint(&mut yi, y);
    let mut sbody = alg_seq;
    write_tlv(&mut sbody, tag::BIT_STRING, &yi);
    let mut spki = Vec::new();
    write_tlv(&mut spki, tag::SEQUENCE, &sbody);
    zeroize::Zeroize::zeroize(&mut xi);
    zeroize::Zeroize::zeroize(&mut body);
    (pkcs8, spki)
}

/// The algorithm identifier of a key: the algorithm OID and the parameters TLV content
/// (for EC the named curve OID content; empty when absent or NULL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAlgorithm<'a> {
    /// Algorithm OID content bytes.
    pub oid: &'a [u8],
    /// Named-curve OID content bytes (EC), else empty.
    pub curve: &'a [u8],
}

fn algorithm(input: &[u8]) -> Option<(KeyAlgorithm<'_>, &[u8])> {
    let (alg, rest) = expect(input, tag::SEQUENCE)?;
    let (oid, params) = expect(alg, tag::OID)?;
    let curve = match read_tlv(params) {
        Some((tag::OID, c, _)) => c,
        _ => &[],
    };
    Some((KeyAlgorithm { oid, curve }, rest))
}

/// Parses a SubjectPublicKeyInfo that is exactly `spki` long: its algorithm and the
/// subjectPublicKey bits (without the unused-bits byte).
pub fn spki(spki: &[u8]) -> Option<(KeyAlgorithm<'_>, &[u8])> {
    let (body, after) = expect(spki, tag::SEQUENCE)?;
    if !after.is_empty() {
        return None;
    }
    let (alg, rest) = algorithm(body)?;
    let (bits, rest) = expect(rest, tag::BIT_STRING)?;
    if !rest.is_empty() {
        return None;
    }
    let (&unused, key) = bits.split_first()?;
    (unused == 0).then_some((alg, key))
}

/// The algorithm of a PKCS#8 PrivateKeyInfo (v1 or v2).
pub fn pkcs8_algorithm(pkcs8: &[u8]) -> Option<KeyAlgorithm<'_>> {
    let (body, after) = expect(pkcs8, tag::SEQUENCE)?;
    if !after.is_empty() {
        return None;
    }
    let (_version, rest) = expect(body, tag::INTEGER)?;
    let (alg, _) = algorithm(rest)?;
    Some(alg)
}

/// Builds a SubjectPublicKeyInfo from an algorithm OID, optional curve OID and key bits.
pub fn build_spki(alg_oid: &[u8], curve_oid: Option<&[u8]>, key: &[u8]) -> Vec<u8> {
    let mut alg = Vec::new();
    write_tlv(&mut alg, tag::OID, alg_oid);
    if let Some(c) = curve_oid {
        write_tlv(&mut alg, tag::OID, c);
    }
    let mut body = Vec::new();
    write_tlv(&mut body, tag::SEQUENCE, &alg);
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0);
    bits.extend_from_slice(key);
    write_tlv(&mut body, tag::BIT_STRING, &bits);
    let mut out = Vec::new();
    write_tlv(&mut out, tag::SEQUENCE, &body);
    out
}

/// An RSA SubjectPublicKeyInfo (rsaEncryption, NULL parameters) from the big-endian
/// modulus and public exponent.
pub fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let mut ints = Vec::new();
    write_uint(&mut ints, modulus);
    write_uint(&mut ints, exponent);
    let mut key = Vec::new();
    write_tlv(&mut key, tag::SEQUENCE, &ints);
    let mut alg = Vec::new();
    write_tlv(&mut alg, tag::OID, oid::RSA);
    write_tlv(&mut alg, tag::NULL, &[]);
    let mut body = Vec::new();
    write_tlv(&mut body, tag::SEQUENCE, &alg);
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0);
    bits.extend_from_slice(&key);
    write_tlv(&mut body, tag::BIT_STRING, &bits);
    let mut out = Vec::new();
    write_tlv(&mut out, tag::SEQUENCE, &body);
    out
}

/// The (modulus, public exponent) of an RSA SubjectPublicKeyInfo, big-endian without
/// leading zeros.
pub fn rsa_spki_parts(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (alg, key) = spki(der)?;
    if alg.oid != oid::RSA {
        return None;
    }
    let (ints, after) = expect(key, tag::SEQUENCE)?;
    if !after.is_empty() {
        return None;
    }
    let (n, rest) = expect(ints, tag::INTEGER)?;
    let (e, rest) = expect(rest, tag::INTEGER)?;
    rest.is_empty()
        .then_some(())
        .and_then(|()| Some((uint_value(n)?, uint_value(e)?)))
}

/// Builds a PKCS#8 PrivateKeyInfo (v1) whose privateKey OCTET STRING holds `private_key`
/// (already DER: for ML-KEM the `expandedKey` OCTET STRING of its CHOICE).
pub fn build_pkcs8(alg_oid: &[u8], private_key: &[u8]) -> Vec<u8> {
    let mut alg = Vec::new();
    write_tlv(&mut alg, tag::OID, alg_oid);
    let mut body = Vec::new();
    write_tlv(&mut body, tag::INTEGER, &[0]);
    write_tlv(&mut body, tag::SEQUENCE, &alg);
    write_tlv(&mut body, tag::OCTET_STRING, private_key);
    let mut out = Vec::new();
    write_tlv(&mut out, tag::SEQUENCE, &body);
    out
}

/// The privateKey OCTET STRING content of a PKCS#8 PrivateKeyInfo.
pub fn pkcs8_private_key(pkcs8: &[u8]) -> Option<&[u8]> {
    let (body, after) = expect(pkcs8, tag::SEQUENCE)?;
    if !after.is_empty() {
        return None;
    }
    let (_version, rest) = expect(body, tag::INTEGER)?;
    let (_alg, rest) = expect(rest, tag::SEQUENCE)?;
    let (key, _) = expect(rest, tag::OCTET_STRING)?;
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_and_bad_forms_are_refused() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let mut out = Vec::new();
            write_tlv(&mut out, tag::OCTET_STRING, &vec![7u8; len]);
            let (t, c, r) = read_tlv(&out).unwrap();
            assert_eq!((t, c.len(), r.len()), (tag::OCTET_STRING, len, 0));
            assert_eq!(tlv_len(&out), Some(out.len()));
            // Truncation anywhere is refused.
            assert!(read_tlv(&out[..out.len() - 1]).is_none() || len == 0);
        }
        assert!(read_tlv(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).is_none()); // non-minimal
        assert!(read_tlv(&[0x04, 0x80]).is_none()); // indefinite
        assert!(read_tlv(&[0x04, 0x82, 0x00, 0x80]).is_none()); // leading zero
        assert!(read_tlv(&[0x04]).is_none());
    }

    #[test]
    fn dh_keys_round_trip_and_integers_are_minimal() {
        let params = {
            let mut p = Vec::new();
            let mut inner = Vec::new();
            write_uint(&mut inner, &[0xff, 0x01]);
            write_uint(&mut inner, &[2]);
            write_tlv(&mut p, tag::SEQUENCE, &inner);
            p
        };
        let (pkcs8, spki) = dh_encode(&params, &[0, 0x80, 1], &[0x7f]);
        let k = dh_pkcs8(&pkcs8).unwrap();
        assert_eq!((k.params, k.value), (&params[..], &[0x80, 1][..]));
        let p = dh_spki(&spki).unwrap();
        assert_eq!((p.params, p.value), (&params[..], &[0x7f][..]));
        assert_eq!(pkcs8_algorithm(&pkcs8).unwrap().oid, oid::DH);
        assert!(dh_pkcs8(&spki).is_none());
        assert!(dh_spki(&pkcs8[..pkcs8.len() - 1]).is_none());
        assert_eq!(uint_value(&[0x00, 0x7f]), None);
        assert_eq!(uint_value(&[0x80]), None);
        assert_eq!(uint_value(&[0]), Some(&[0u8][..]));
    }

    /// `v` as DER keeps it: unsigned, without leading zeros (zero is one zero byte).
    fn minimal(v: &[u8]) -> Vec<u8> {
        let first = v
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(v.len().saturating_sub(1));
        v[first..].to_vec()
    }

    proptest::proptest! {
        /// The DER key forms Strongroom builds itself (PKCS #3 DH keys, PKCS#8 around an
        /// ML-KEM expandedKey, SubjectPublicKeyInfo) parse back to what they were built
        /// from, and no proper prefix of one parses.
        #[test]
        fn built_key_forms_round_trip_and_no_prefix_parses(
            p in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..300),
            g in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..4),
            x in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..300),
            y in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..300),
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3200),
        ) {
            let params = {
                let mut inner = Vec::new();
                write_uint(&mut inner, &p);
                write_uint(&mut inner, &g);
                let mut out = Vec::new();
                write_tlv(&mut out, tag::SEQUENCE, &inner);
                out
            };
            let (pkcs8, spki_der) = dh_encode(&params, &x, &y);
            let k = dh_pkcs8(&pkcs8).unwrap();
            proptest::prop_assert_eq!((k.params, k.value.to_vec()), (&params[..], minimal(&x)));
            let pk = dh_spki(&spki_der).unwrap();
            proptest::prop_assert_eq!((pk.params, pk.value.to_vec()), (&params[..], minimal(&y)));
            for n in 0..pkcs8.len() {
                proptest::prop_assert!(dh_pkcs8(&pkcs8[..n]).is_none());
            }
            for n in 0..spki_der.len() {
                proptest::prop_assert!(dh_spki(&spki_der[..n]).is_none());
            }

            let mut expanded = Vec::new();
            write_tlv(&mut expanded, tag::OCTET_STRING, &key);
            let built = build_pkcs8(oid::DH, &expanded);
            proptest::prop_assert_eq!(pkcs8_private_key(&built), Some(&expanded[..]));
            proptest::prop_assert_eq!(pkcs8_algorithm(&built).unwrap().oid, oid::DH);
            for n in 0..built.len() {
                proptest::prop_assert!(pkcs8_private_key(&built[..n]).is_none());
            }
            let s = build_spki(oid::EC_PUBLIC_KEY, Some(oid::P256), &key);
            let (alg, back) = spki(&s).unwrap();
            proptest::prop_assert_eq!((alg.oid, alg.curve, back), (oid::EC_PUBLIC_KEY, oid::P256, &key[..]));
        }
    }

    #[test]
    fn spki_is_built_and_parsed() {
        let point = [4u8; 65];
        let s = build_spki(oid::EC_PUBLIC_KEY, Some(oid::P256), &point);
        let (alg, key) = spki(&s).unwrap();
        assert_eq!(alg.oid, oid::EC_PUBLIC_KEY);
        assert_eq!(alg.curve, oid::P256);
        assert_eq!(key, &point[..]);
        let mut trailing = s.clone();
        trailing.push(0);
        assert!(spki(&trailing).is_none());
    }
}
