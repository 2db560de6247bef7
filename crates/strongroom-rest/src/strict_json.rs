//! JSON bodies parsed strictly: an object that names the same field twice is refused at
//! every depth. `serde_json::Value` keeps the last occurrence, so
//! `{"extractable": false, …, "extractable": true}` would mean whatever a proxy or log
//! reader did not see.

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `body` as JSON, refusing duplicate object fields.
pub fn from_slice(body: &[u8]) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let v = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(A::Error::custom(format!("field \"{k}\" appears twice")));
            }
            let v = map.next_value_seed(Strict)?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_fields_are_refused_at_every_depth() {
        for dup in [
            r#"{"a": 1, "a": 2}"#,
            r#"{"resources": [{"extractable": false, "name": "k", "extractable": true}]}"#,
            r#"[{"x": {"y": 1, "y": 1}}]"#,
        ] {
            let e = from_slice(dup.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("appears twice"), "{dup}: {e}");
        }
    }

    #[test]
    fn accepts_what_serde_json_accepts_and_gives_the_same_value() {
        for ok in [
            r#"{"a": [1, -2, 3.5, "s", null, true, {"b": {}}], "A": 1}"#,
            "  [ ]  ",
            r#""\u00e9""#,
            "18446744073709551615",
        ] {
            let want: Value = serde_json::from_str(ok).unwrap();
            assert_eq!(from_slice(ok.as_bytes()).unwrap(), want, "{ok}");
        }
        assert!(from_slice(b"{} trailing").is_err());
        assert!(from_slice(b"{\"a\":").is_err());
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert!(
            from_slice(deep.as_bytes()).is_err(),
            "the recursion limit holds"
        );
    }
}
