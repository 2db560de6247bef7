//! Names and descriptions that people read: in lists, logs, the console and audit
//! events. They refuse what would make them lie to a reader: control characters (a
//! newline forges a log line) and the invisible formatting characters of bidirectional
//! text (U+202E turns `exe.txt` into `txt.exe` on screen).

use crate::error::{ErrorKind, Result, ServiceError};

/// Whether `c` reorders or hides text when displayed: the bidirectional embeddings,
/// overrides and isolates, the directional marks, and the zero-width characters.
pub fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'                // ARABIC LETTER MARK
            | '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // LRE, RLE, PDF, LRO, RLO
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // LRI, RLI, FSI, PDI
            | '\u{FEFF}' // zero-width no-break space
    )
}

/// Checks a human-readable `field`: at most `max` characters (and at least one when
/// `required`), none of them a control character or a deceptive formatting character.
pub fn check_display_text(field: &'static str, s: &str, max: usize, required: bool) -> Result<()> {
    let n = s.chars().count();
    if (required && n == 0) || n > max {
        let least = if required { 1 } else { 0 };
        return Err(ServiceError::field(
            ErrorKind::InvalidField,
            field,
            format!("The field '{field}' must be {least} to {max} characters"),
        ));
    }
    if let Some(c) = s.chars().find(|&c| c.is_control() || is_deceptive(c)) {
        return Err(ServiceError::field(
            ErrorKind::InvalidField,
            field,
            format!(
                "The field '{field}' must not contain control or bidirectional formatting characters (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_controls_and_bidi_overrides_and_keeps_ordinary_text() {
        for ok in [
            "payments-root",
            "clé de paiement",
            "مفتاح",
            "鍵 2026",
            "a b",
        ] {
            assert!(check_display_text("name", ok, 90, true).is_ok(), "{ok}");
        }
        for bad in [
            "evil\u{202E}txt.exe",
            "line\nforged",
            "tab\there",
            "nul\0",
            "\u{2066}isolate",
            "zero\u{200B}width",
            "\u{FEFF}bom",
            "esc\u{1b}[31m",
        ] {
            let e = check_display_text("name", bad, 90, true).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidField, "{bad:?}");
        }
        assert!(check_display_text("name", "", 90, true).is_err());
        assert!(check_display_text("description", "", 240, false).is_ok());
        assert!(check_display_text("name", &"x".repeat(91), 90, true).is_err());
    }
}
