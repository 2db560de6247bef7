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
    /// id-dsa 1.2.840.10040.4.1
    pub const DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
    /// id-Ed25519 1.3.101.112 (RFC 8410)
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    /// prime256v1 1.2.840.10045.3.1.7
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// secp384r1 1.3.132.0.34
    pub const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    /// secp521r1 1.3.132.0.35
    pub const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
    /// secp256k1 1.3.132.0.10
    pub const SECP256K1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
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
