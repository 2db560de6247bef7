//! Bytes to items. Every length is checked against what remains of its parent before it
//! is used, so a lying length can never make the decoder read past its input or allocate
//! more than the input's size; nesting and the number of items are bounded.

use super::{ItemType, Tag, Ttlv, Value};

/// Bounds on what one message may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes in one message, header included.
    pub max_message: usize,
    /// Deepest nesting of structures (the message itself is depth 1).
    pub max_depth: usize,
    /// Most items in one message.
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 1 << 20,
            max_depth: 16,
            max_items: 100_000,
        }
    }
}

/// What is wrong with the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The input ends inside an item.
    Truncated,
    /// A type byte that KMIP does not define.
    UnknownType(u8),
    /// A length that does not fit the type (or a structure length not a multiple of 8).
    BadLength,
    /// A padding byte that is not zero.
    BadPadding,
    /// A boolean other than 0 or 1.
    BadBoolean,
    /// A text string that is not UTF-8.
    BadUtf8,
    /// Structures nested deeper than the limit.
    TooDeep,
    /// A message larger than the limit.
    TooLarge,
    /// More items than the limit.
    TooManyItems,
    /// Bytes after the end of the message.
    Trailing,
    /// The message is not a structure.
    NotStructure,
}

/// A decoding failure: what, and where (the byte offset of the item's header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("TTLV: {kind:?} at byte {offset}")]
pub struct DecodeError {
    /// What is wrong.
    pub kind: DecodeErrorKind,
    /// The offset of the item whose encoding is wrong.
    pub offset: usize,
    /// Its tag, when the header was read.
    pub tag: Option<Tag>,
}

fn err(kind: DecodeErrorKind, offset: usize, tag: Option<Tag>) -> DecodeError {
    DecodeError { kind, offset, tag }
}

/// The total length of the message whose first 8 bytes are `header`, checked against the
/// limit before anything else is read. The listener reads exactly this many bytes.
pub fn message_len(header: &[u8; 8], limits: &Limits) -> Result<usize, DecodeError> {
    let tag = Tag(u32::from_be_bytes([0, header[0], header[1], header[2]]));
    if header[3] != ItemType::Structure as u8 {
        return Err(err(DecodeErrorKind::NotStructure, 0, Some(tag)));
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let total = len
        .checked_add(8)
        .ok_or(err(DecodeErrorKind::TooLarge, 0, Some(tag)))?;
    if total > limits.max_message {
        return Err(err(DecodeErrorKind::TooLarge, 0, Some(tag)));
    }
    if !len.is_multiple_of(8) {
        return Err(err(DecodeErrorKind::BadLength, 0, Some(tag)));
    }
    Ok(total)
}

/// Decodes one message: a structure that is exactly `input`.
pub fn decode(input: &[u8], limits: &Limits) -> Result<Ttlv, DecodeError> {
    if input.len() > limits.max_message {
        return Err(err(DecodeErrorKind::TooLarge, 0, None));
    }
    let mut d = Decoder {
        input,
        limits,
        items: 0,
    };
    let (item, end) = d.item(0, 1)?;
    if !matches!(item.value, Value::Structure(_)) {
        return Err(err(DecodeErrorKind::NotStructure, 0, Some(item.tag)));
    }
    if end != input.len() {
        return Err(err(DecodeErrorKind::Trailing, end, None));
    }
    Ok(item)
}

struct Decoder<'a> {
    input: &'a [u8],
    limits: &'a Limits,
    items: usize,
}

fn padded(len: usize) -> Option<usize> {
    len.checked_add(7).map(|l| l & !7)
}

impl Decoder<'_> {
    /// Reads the item at `at`; returns it and the offset just past its padding.
    fn item(&mut self, at: usize, depth: usize) -> Result<(Ttlv, usize), DecodeError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(err(DecodeErrorKind::TooManyItems, at, None));
        }
        let header = self
            .input
            .get(at..at + 8)
            .ok_or(err(DecodeErrorKind::Truncated, at, None))?;
        let tag = Tag(u32::from_be_bytes([0, header[0], header[1], header[2]]));
        let fail = |kind| err(kind, at, Some(tag));
        let ty =
            ItemType::from_byte(header[3]).ok_or(fail(DecodeErrorKind::UnknownType(header[3])))?;
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let start = at + 8;
        let end = start
            .checked_add(len)
            .ok_or(fail(DecodeErrorKind::BadLength))?;
        let next = padded(end).ok_or(fail(DecodeErrorKind::BadLength))?;
        if next > self.input.len() {
            return Err(fail(DecodeErrorKind::Truncated));
        }
        let body = &self.input[start..end];
        if self.input[end..next].iter().any(|&b| b != 0) {
            return Err(fail(DecodeErrorKind::BadPadding));
        }
        let fixed = |n: usize| -> Result<(), DecodeError> {
            if len == n {
                Ok(())
            } else {
                Err(fail(DecodeErrorKind::BadLength))
            }
        };
        let value = match ty {
            ItemType::Structure => {
                if depth > self.limits.max_depth {
                    return Err(fail(DecodeErrorKind::TooDeep));
                }
                if !len.is_multiple_of(8) {
                    return Err(fail(DecodeErrorKind::BadLength));
                }
                let mut children = Vec::new();
                let mut p = start;
                while p < end {
                    let (child, after) = self.item(p, depth + 1)?;
                    if after > end {
                        return Err(err(DecodeErrorKind::BadLength, p, Some(child.tag)));
                    }
                    children.push(child);
                    p = after;
                }
                Value::Structure(children)
            }
            ItemType::Integer => {
                fixed(4)?;
                Value::Integer(i32::from_be_bytes(arr4(body)))
            }
            ItemType::Enumeration => {
                fixed(4)?;
                Value::Enumeration(u32::from_be_bytes(arr4(body)))
            }
            ItemType::Interval => {
                fixed(4)?;
                Value::Interval(u32::from_be_bytes(arr4(body)))
            }
            ItemType::LongInteger => {
                fixed(8)?;
                Value::LongInteger(i64::from_be_bytes(arr8(body)))
            }
            ItemType::DateTime => {
                fixed(8)?;
                Value::DateTime(i64::from_be_bytes(arr8(body)))
            }
            ItemType::DateTimeExtended => {
                fixed(8)?;
                Value::DateTimeExtended(i64::from_be_bytes(arr8(body)))
            }
            ItemType::Boolean => {
                fixed(8)?;
                match u64::from_be_bytes(arr8(body)) {
                    0 => Value::Boolean(false),
                    1 => Value::Boolean(true),
                    _ => return Err(fail(DecodeErrorKind::BadBoolean)),
                }
            }
            ItemType::BigInteger => {
                if len == 0 || !len.is_multiple_of(8) {
                    return Err(fail(DecodeErrorKind::BadLength));
                }
                Value::BigInteger(body.to_vec())
            }
            ItemType::TextString => Value::TextString(
                std::str::from_utf8(body)
                    .map_err(|_| fail(DecodeErrorKind::BadUtf8))?
                    .to_owned(),
            ),
            ItemType::ByteString => Value::ByteString(body.to_vec()),
        };
        Ok((Ttlv { tag, value }, next))
    }
}

fn arr4(b: &[u8]) -> [u8; 4] {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    a
}

fn arr8(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    a
}
