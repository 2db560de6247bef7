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
