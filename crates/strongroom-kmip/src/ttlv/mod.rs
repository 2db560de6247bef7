//! TTLV, KMIP's binary encoding: Tag (3 bytes), Type (1 byte), Length (4 bytes, big endian),
//! Value, padded with zero bytes to a multiple of eight. This module does no I/O: it turns
//! bytes into a tree of [`Ttlv`] items and back, and checks every length, type, padding
//! byte and the nesting depth against [`Limits`] on the way in.

mod decode;
mod encode;
mod tags;

pub use decode::{decode, message_len, DecodeError, DecodeErrorKind, Limits};
pub use encode::{encode, encoded_len};
pub use tags::Tag;

/// The type byte of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ItemType {
    /// Holds a sequence of items.
    Structure = 0x01,
    /// Signed 32-bit integer (padded to 8 bytes).
    Integer = 0x02,
    /// Signed 64-bit integer.
    LongInteger = 0x03,
    /// Two's complement big-endian integer, a multiple of 8 bytes long.
    BigInteger = 0x04,
    /// Unsigned 32-bit enumeration value (padded to 8 bytes).
    Enumeration = 0x05,
    /// 64-bit 0 or 1.
    Boolean = 0x06,
    /// UTF-8 text.
    TextString = 0x07,
    /// Bytes.
    ByteString = 0x08,
    /// Seconds since the Unix epoch, signed 64-bit.
    DateTime = 0x09,
    /// Seconds, unsigned 32-bit (padded to 8 bytes).
    Interval = 0x0A,
    /// Microseconds since the Unix epoch, signed 64-bit (KMIP 2.0).
    DateTimeExtended = 0x0B,
}

impl ItemType {
    fn from_byte(b: u8) -> Option<ItemType> {
        Some(match b {
            0x01 => ItemType::Structure,
            0x02 => ItemType::Integer,
            0x03 => ItemType::LongInteger,
            0x04 => ItemType::BigInteger,
            0x05 => ItemType::Enumeration,
            0x06 => ItemType::Boolean,
            0x07 => ItemType::TextString,
            0x08 => ItemType::ByteString,
            0x09 => ItemType::DateTime,
            0x0A => ItemType::Interval,
            0x0B => ItemType::DateTimeExtended,
            _ => return None,
        })
    }
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Child items, in order.
    Structure(Vec<Ttlv>),
    /// Integer.
    Integer(i32),
    /// Long Integer.
    LongInteger(i64),
    /// Big Integer: two's complement, big endian, as sent (a multiple of 8 bytes).
    BigInteger(Vec<u8>),
    /// Enumeration.
    Enumeration(u32),
    /// Boolean.
    Boolean(bool),
    /// Text String.
    TextString(String),
    /// Byte String.
    ByteString(Vec<u8>),
    /// Date-Time (seconds).
    DateTime(i64),
    /// Interval (seconds).
    Interval(u32),
    /// Date-Time Extended (microseconds).
    DateTimeExtended(i64),
}

impl Value {
    /// The type byte this value is encoded with.
    pub fn item_type(&self) -> ItemType {
        match self {
            Value::Structure(_) => ItemType::Structure,
            Value::Integer(_) => ItemType::Integer,
            Value::LongInteger(_) => ItemType::LongInteger,
            Value::BigInteger(_) => ItemType::BigInteger,
            Value::Enumeration(_) => ItemType::Enumeration,
            Value::Boolean(_) => ItemType::Boolean,
            Value::TextString(_) => ItemType::TextString,
            Value::ByteString(_) => ItemType::ByteString,
            Value::DateTime(_) => ItemType::DateTime,
            Value::Interval(_) => ItemType::Interval,
            Value::DateTimeExtended(_) => ItemType::DateTimeExtended,
        }
    }
}

/// One item: a tag and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ttlv {
    /// What the item is.
    pub tag: Tag,
    /// Its value.
    pub value: Value,
}

impl Ttlv {
    /// An item.
    pub fn new(tag: Tag, value: Value) -> Ttlv {
        Ttlv { tag, value }
    }
    /// A structure.
    pub fn structure(tag: Tag, items: Vec<Ttlv>) -> Ttlv {
        Ttlv::new(tag, Value::Structure(items))
    }
    /// A KMIP 1.x Attribute structure: `name`, and the value of `value` under the Attribute
    /// Value tag (the tag `value` carries is not sent).
    pub fn attribute(name: impl Into<String>, value: Ttlv) -> Ttlv {
        Ttlv::structure(
            Tag::ATTRIBUTE,
            vec![
                Ttlv::text(Tag::ATTRIBUTE_NAME, name),
                Ttlv::new(Tag::ATTRIBUTE_VALUE, value.value),
            ],
        )
    }
    /// An enumeration.
    pub fn enumeration(tag: Tag, v: u32) -> Ttlv {
        Ttlv::new(tag, Value::Enumeration(v))
    }
    /// An integer.
    pub fn integer(tag: Tag, v: i32) -> Ttlv {
        Ttlv::new(tag, Value::Integer(v))
    }
    /// A text string.
    pub fn text(tag: Tag, v: impl Into<String>) -> Ttlv {
        Ttlv::new(tag, Value::TextString(v.into()))
    }
    /// A byte string.
    pub fn bytes(tag: Tag, v: impl Into<Vec<u8>>) -> Ttlv {
        Ttlv::new(tag, Value::ByteString(v.into()))
    }
    /// A boolean.
    pub fn boolean(tag: Tag, v: bool) -> Ttlv {
        Ttlv::new(tag, Value::Boolean(v))
    }
    /// A date-time (seconds).
    pub fn date_time(tag: Tag, secs: i64) -> Ttlv {
        Ttlv::new(tag, Value::DateTime(secs))
    }

    /// The children of a structure (none for any other type).
    pub fn items(&self) -> &[Ttlv] {
        match &self.value {
            Value::Structure(v) => v,
            _ => &[],
        }
    }
    /// The first child with `tag`.
    pub fn child(&self, tag: Tag) -> Option<&Ttlv> {
        self.items().iter().find(|i| i.tag == tag)
    }
    /// Every child with `tag`, in order.
    pub fn children(&self, tag: Tag) -> impl Iterator<Item = &Ttlv> {
        self.items().iter().filter(move |i| i.tag == tag)
    }
    /// The value as an enumeration.
    pub fn as_enum(&self) -> Option<u32> {
        match self.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        }
    }
    /// The value as an integer.
    pub fn as_int(&self) -> Option<i32> {
        match self.value {
            Value::Integer(v) => Some(v),
            _ => None,
        }
    }
    /// The value as a long integer.
    pub fn as_long(&self) -> Option<i64> {
        match self.value {
            Value::LongInteger(v) => Some(v),
            _ => None,
        }
    }
    /// The value as text.
    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::TextString(v) => Some(v),
            _ => None,
        }
    }
    /// The value as bytes (a byte string or a big integer).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::ByteString(v) | Value::BigInteger(v) => Some(v),
            _ => None,
        }
    }
    /// The value as a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Boolean(v) => Some(v),
            _ => None,
        }
    }
    /// The value as an interval (seconds).
    pub fn as_interval(&self) -> Option<u32> {
        match self.value {
            Value::Interval(v) => Some(v),
            _ => None,
        }
    }
    /// The value as a date-time in seconds (an extended one is truncated to seconds).
    pub fn as_date_time(&self) -> Option<i64> {
        match self.value {
            Value::DateTime(v) => Some(v),
            Value::DateTimeExtended(v) => Some(v.div_euclid(1_000_000)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
