//! The little DER this library reads and writes: the public values of a
//! SubjectPublicKeyInfo (RSA modulus and exponent, EC parameters and point), and the SPKI
//! of a public key an application imports.

/// One TLV: tag, contents, and what follows it.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, x| (a << 8) | usize::from(*x));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The public values of an SPKI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Public {
    /// RSA: modulus and public exponent (unsigned big-endian).
    Rsa {
        /// n.
        modulus: Vec<u8>,
        /// e.
        exponent: Vec<u8>,
    },
    /// EC: the curve's parameters (a DER OID) and the point as PKCS#11's CKA_EC_POINT
    /// (a DER OCTET STRING of the uncompressed point).
    Ec {
        /// CKA_EC_PARAMS.
        params: Vec<u8>,
        /// CKA_EC_POINT.
        point: Vec<u8>,
    },
    /// ML-DSA or ML-KEM (NIST OIDs 2.16.840.1.101.3.4.3.17-19 and .4.4.1-3): the raw key,
    /// PKCS#11 3.2's CKA_VALUE of the public key.
    PostQuantum {
        /// CKA_VALUE.
        value: Vec<u8>,
    },
}

const RSA_OID: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const EC_OID: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// 2.16.840.1.101.3.4: NIST's algorithm arc; .3.17-19 are ML-DSA, .4.1-3 ML-KEM.
const NIST_ALG: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04];

fn unsigned(i: &[u8]) -> Vec<u8> {
    let mut i = i;
    while i.len() > 1 && i[0] == 0 {
        i = &i[1..];
    }
    i.to_vec()
}

/// Reads an SPKI at the start of `b` (an EP11 public key blob is the SPKI and a MAC).
pub fn public_of_spki(b: &[u8]) -> Option<Public> {
    let (0x30, spki, _) = tlv(b)? else {
        return None;
    };
    let (0x30, alg, rest) = tlv(spki)? else {
        return None;
    };
    let (0x03, bits, _) = tlv(rest)? else {
        return None;
    };
    let (&0, key) = bits.split_first()? else {
        return None;
    };
    let (0x06, oid, params) = tlv(alg)? else {
        return None;
    };
    if oid == RSA_OID {
        let (0x30, seq, _) = tlv(key)? else {
            return None;
        };
        let (0x02, n, rest) = tlv(seq)? else {
            return None;
        };
        let (0x02, e, _) = tlv(rest)? else {
            return None;
        };
        return Some(Public::Rsa {
            modulus: unsigned(n),
            exponent: unsigned(e),
        });
    }
    if oid == EC_OID {
        let (0x06, curve, _) = tlv(params)? else {
            return None;
        };
        return Some(Public::Ec {
            params: encode(0x06, curve),
            point: encode(0x04, key),
        });
    }
    if let Some([3, 17..=19] | [4, 1..=3]) = oid.strip_prefix(NIST_ALG) {
        return Some(Public::PostQuantum {
            value: key.to_vec(),
        });
    }
    None
}

fn integer(v: &[u8]) -> Vec<u8> {
    let v = unsigned(v);
    let mut c = Vec::with_capacity(v.len() + 1);
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        c.push(0);
    }
    c.extend(v);
    encode(0x02, &c)
}

/// The SPKI of an RSA public key.
pub fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let alg = encode(0x30, &[encode(0x06, RSA_OID), vec![0x05, 0x00]].concat());
    let key = encode(0x30, &[integer(modulus), integer(exponent)].concat());
    let bits = encode(0x03, &[&[0u8][..], &key].concat());
    encode(0x30, &[alg, bits].concat())
}

/// The SPKI of an EC public key from CKA_EC_PARAMS (a DER OID) and CKA_EC_POINT (a DER
/// OCTET STRING, or the raw point as some applications send it).
pub fn ec_spki(params: &[u8], point: &[u8]) -> Option<Vec<u8>> {
    let (0x06, _, _) = tlv(params)? else {
        return None;
    };
    let raw = match tlv(point) {
        Some((0x04, inner, rest)) if rest.is_empty() && inner.first() == Some(&0x04) => inner,
        _ => point,
    };
    let alg = encode(0x30, &[encode(0x06, EC_OID), params.to_vec()].concat());
    let bits = encode(0x03, &[&[0u8][..], raw].concat());
    Some(encode(0x30, &[alg, bits].concat()))
}

/// The PKCS#8 encoding of an RSA private key from its components
/// (n, e, d, p, q, dp, dq, qinv).
pub fn rsa_pkcs8(parts: &[&[u8]; 8]) -> Vec<u8> {
    let mut body = integer(&[0]);
    for p in parts {
        body.extend(integer(p));
    }
    let key = encode(0x30, &body);
    let alg = encode(0x30, &[encode(0x06, RSA_OID), vec![0x05, 0x00]].concat());
    encode(0x30, &[integer(&[0]), alg, encode(0x04, &key)].concat())
}

/// The PKCS#8 encoding of an EC private key from CKA_EC_PARAMS (a DER OID of P-256,
/// P-384, P-521 or secp256k1) and the private value.
pub fn ec_pkcs8(params: &[u8], d: &[u8]) -> Option<Vec<u8>> {
    let (0x06, oid, _) = tlv(params)? else {
        return None;
    };
    let len = match oid {
        [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07] => 32,
        [0x2B, 0x81, 0x04, 0x00, 0x0A] => 32,
        [0x2B, 0x81, 0x04, 0x00, 0x22] => 48,
        [0x2B, 0x81, 0x04, 0x00, 0x23] => 66,
        _ => return None,
    };
    let d = unsigned(d);
    if d.len() > len {
        return None;
    }
    let mut padded = vec![0u8; len - d.len()];
    padded.extend(d);
    let key = encode(0x30, &[integer(&[1]), encode(0x04, &padded)].concat());
    let alg = encode(0x30, &[encode(0x06, EC_OID), params.to_vec()].concat());
    Some(encode(
        0x30,
        &[integer(&[0]), alg, encode(0x04, &key)].concat(),
    ))
}

/// A DER SEQUENCE of INTEGERs (Dss-Parms `p, q, g`; DHParameter `p, g`).
pub fn integers(values: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = values.iter().flat_map(|v| integer(v)).collect();
    encode(0x30, &body)
}

/// The unsigned values of a DER SEQUENCE of INTEGERs.
pub fn integers_of(der: &[u8]) -> Option<Vec<Vec<u8>>> {
    let (0x30, mut body, _) = tlv(der)? else {
        return None;
    };
    let mut out = Vec::new();
    while !body.is_empty() {
        let (0x02, v, rest) = tlv(body)? else {
            return None;
        };
        out.push(unsigned(v));
        body = rest;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_spki_round_trips() {
        let n = [0xC3u8; 256];
        let spki = rsa_spki(&n, &[1, 0, 1]);
        assert_eq!(
            public_of_spki(&[spki.as_slice(), b"trailing MAC"].concat()),
            Some(Public::Rsa {
                modulus: n.to_vec(),
                exponent: vec![1, 0, 1]
            })
        );
    }

    #[test]
    fn ec_spki_round_trips_with_either_point_form() {
        let p256 = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
        let mut raw = vec![4u8];
        raw.extend([7u8; 64]);
        let der_point = encode(0x04, &raw);
        for point in [raw.clone(), der_point.clone()] {
            let spki = ec_spki(&p256, &point).unwrap();
            assert_eq!(
                public_of_spki(&spki),
                Some(Public::Ec {
                    params: p256.to_vec(),
                    point: der_point.clone()
                })
            );
        }
    }

    #[test]
    fn integer_sequences_round_trip() {
        let seq = integers(&[&[0x80, 1], &[0, 0, 5], &[7]]);
        assert_eq!(
            integers_of(&seq),
            Some(vec![vec![0x80, 1], vec![5], vec![7]])
        );
        assert_eq!(integers_of(&[0x30, 0x02, 0x04, 0x00]), None);
    }

    #[test]
    fn garbage_is_none() {
        for b in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x31, 0x00],
            &[0x30, 0x02, 0x30, 0x00],
        ] {
            assert_eq!(public_of_spki(b), None);
        }
    }
}
