//! Reading the vector files under `tests/vectors/` (sources in tests/vectors/SOURCE.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The JSON file `tests/vectors/<rel>`.
pub(crate) fn json(rel: &str) -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/");
    let text = std::fs::read_to_string(format!("{path}{rel}"))
        .unwrap_or_else(|e| panic!("tests/vectors/{rel}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A hex string of a vector as bytes.
pub(crate) fn hx(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}
