//! Items to bytes.

use super::{Ttlv, Value};

/// The encoded length of an item, header and padding included.
pub fn encoded_len(item: &Ttlv) -> usize {
    8 + padded(body_len(item))
}

fn padded(n: usize) -> usize {
    (n + 7) & !7
}

fn body_len(item: &Ttlv) -> usize {
    match &item.value {
        Value::Structure(items) => items.iter().map(encoded_len).sum(),
        Value::Integer(_) | Value::Enumeration(_) | Value::Interval(_) => 4,
        Value::LongInteger(_)
        | Value::DateTime(_)
        | Value::DateTimeExtended(_)
        | Value::Boolean(_) => 8,
        Value::BigInteger(b) => padded(b.len().max(1)),
        Value::TextString(s) => s.len(),
        Value::ByteString(b) => b.len(),
    }
}

/// Appends the encoding of `item` to `out`. A big integer is sign-extended to a multiple of
/// 8 bytes, as KMIP requires.
pub fn encode(item: &Ttlv, out: &mut Vec<u8>) {
    let len = body_len(item);
    let tag = item.tag.0.to_be_bytes();
    out.extend_from_slice(&tag[1..4]);
    out.push(item.value.item_type() as u8);
    // Lengths over u32::MAX cannot be built from a decoded message (1 MiB limit); the
    // service never answers with one.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    let start = out.len();
    match &item.value {
        Value::Structure(items) => items.iter().for_each(|i| encode(i, out)),
        Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Enumeration(v) | Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::LongInteger(v) | Value::DateTime(v) | Value::DateTimeExtended(v) => {
            out.extend_from_slice(&v.to_be_bytes())
        }
        Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
        Value::BigInteger(b) => {
            let fill = if b.first().is_some_and(|&x| x & 0x80 != 0) {
                0xFF
            } else {
                0
            };
            out.resize(out.len() + (len - b.len()), fill);
            out.extend_from_slice(b);
        }
        Value::TextString(s) => out.extend_from_slice(s.as_bytes()),
        Value::ByteString(b) => out.extend_from_slice(b),
    }
    let written = out.len() - start;
    out.resize(start + padded(written), 0);
}
