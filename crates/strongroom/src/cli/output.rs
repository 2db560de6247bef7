//! How a command prints: human text by default, `--output json` for scripts.

use clap::ValueEnum;
use serde_json::Value;

/// The output format (`--output`).
#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// Text for people.
    Human,
    /// JSON for scripts.
    Json,
}

/// Prints `human` or `value`, as `output` asks.
pub(crate) fn print(output: Output, human: String, value: &Value) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Human => println!("{human}"),
    }
}

/// Percent-encodes a path segment (RFC 3986 unreserved characters stay).
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
