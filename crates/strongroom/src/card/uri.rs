//! RFC 7512 `pkcs11:` URIs naming a card: the path attributes `token`, `manufacturer`,
//! `model`, `serial` (a card), `object` (which key part of the card; other keys are named
//! by the command) and `id` (ignored),
//! and the query attribute `module-path`. `pin-value` is refused: a PIN never goes on a
//! command line. Values are percent-decoded.

use std::path::PathBuf;

use crate::error::Error;

/// A card, as a `pkcs11:` URI names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardUri {
    text: String,
    /// `token`: the token label.
    pub token: Option<String>,
    /// `manufacturer`.
    pub manufacturer: Option<String>,
    /// `model`.
    pub model: Option<String>,
    /// `serial`.
    pub serial: Option<String>,
    /// `object`: the label of a key part on the card (without its `strongroom-part:`
    /// prefix).
    pub object: Option<String>,
    /// `module-path`.
    pub module_path: Option<PathBuf>,
}

impl std::fmt::Display for CardUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn decode(v: &str, uri: &str) -> Result<String, Error> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = v
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::usage(format!("{uri}: a bad %-escape")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::usage(format!("{uri}: not UTF-8 once decoded")))
}

/// `v` as a URI attribute value: unreserved characters as they are, others %-escaped.
pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl std::str::FromStr for CardUri {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let rest = s.strip_prefix("pkcs11:").ok_or_else(|| {
            Error::usage(format!(
                "'{s}' is not a pkcs11: URI (RFC 7512), for example pkcs11:token=alice-card"
            ))
        })?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = CardUri {
            text: s.to_string(),
            token: None,
            manufacturer: None,
            model: None,
            serial: None,
            object: None,
            module_path: None,
        };
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| Error::usage(format!("{s}: '{attr}' is not name=value")))?;
            let v = decode(v, s)?;
            match k {
                "token" => uri.token = Some(v),
                "manufacturer" => uri.manufacturer = Some(v),
                "model" => uri.model = Some(v),
                "serial" => uri.serial = Some(v),
                "object" => uri.object = Some(v),
                "id"
                | "type"
                | "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-id"
                | "slot-manufacturer" => {}
                other => return Err(Error::usage(format!("{s}: unknown attribute '{other}'"))),
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| Error::usage(format!("{s}: '{attr}' is not name=value")))?;
            match k {
                "module-path" => uri.module_path = Some(PathBuf::from(decode(v, s)?)),
                "pin-value" => {
                    return Err(Error::usage(
                        "a PIN never goes in a URI or on the command line: it is asked, or read from the passwords file ('<token label>.card: <PIN>')",
                    ))
                }
                "pin-source" | "module-name" => {}
                other => {
                    return Err(Error::usage(format!(
                        "{s}: unknown query attribute '{other}'"
                    )))
                }
            }
        }
        if uri.token.is_none() && uri.serial.is_none() {
            return Err(Error::usage(format!(
                "{s}: name the card with token= (its label) or serial="
            )));
        }
        // The URI is shown in messages: without its query, which may hold a path only.
        uri.text = format!("pkcs11:{path}");
        Ok(uri)
    }
}

impl CardUri {
    /// The URI of "any card of `module`", for messages about the module itself.
    pub fn any(module: &std::path::Path) -> CardUri {
        CardUri {
            text: format!("pkcs11:?module-path={}", module.display()),
            token: None,
            manufacturer: None,
            model: None,
            serial: None,
            object: None,
            module_path: Some(module.to_path_buf()),
        }
    }

    /// Whether a token with these (space-padded) fields is the card this URI names.
    pub fn matches(&self, label: &str, manufacturer: &str, model: &str, serial: &str) -> bool {
        let eq = |want: &Option<String>, have: &str| {
            want.as_deref()
                .is_none_or(|w| w.trim_end() == have.trim_end())
        };
        eq(&self.token, label)
            && eq(&self.manufacturer, manufacturer)
            && eq(&self.model, model)
            && eq(&self.serial, serial)
    }

    /// The name the passwords file knows the card by: its label, else its serial.
    pub fn token_name(&self) -> &str {
        self.token
            .as_deref()
            .or(self.serial.as_deref())
            .unwrap_or("card")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_7512_examples_and_refuses_pins() {
        let u: CardUri = "pkcs11:token=Alice%27s%20card;manufacturer=SoftHSM%20project?module-path=/usr/lib/softhsm/libsofthsm2.so"
            .parse()
            .unwrap();
        assert_eq!(u.token.as_deref(), Some("Alice's card"));
        assert_eq!(u.manufacturer.as_deref(), Some("SoftHSM project"));
        assert_eq!(
            u.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert!(u.matches(
            "Alice's card                    ",
            "SoftHSM project",
            "x",
            "1"
        ));
        assert!(!u.matches("Bob", "SoftHSM project", "x", "1"));
        assert_eq!(
            u.to_string(),
            "pkcs11:token=Alice%27s%20card;manufacturer=SoftHSM%20project"
        );
        for bad in [
            "token=a",
            "pkcs11:token=a?pin-value=1234",
            "pkcs11:object=k",
            "pkcs11:token=%zz",
            "pkcs11:colour=red;token=a",
        ] {
            assert!(bad.parse::<CardUri>().is_err(), "{bad}");
        }
        let label = "Alice's card";
        let round: CardUri = format!("pkcs11:token={}", encode(label)).parse().unwrap();
        assert_eq!(round.token.as_deref(), Some(label));
        let s: CardUri = "pkcs11:serial=0123;object=ignored".parse().unwrap();
        assert_eq!(s.token_name(), "0123");
    }
}
