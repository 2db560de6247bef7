//! An administrative command as a unit receives it (JSON with a base64 body) and the
//! PKCS#11 library's configuration file (IBM's grep11client.yaml): arbitrary input must be
//! refused with an error, never a panic.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use strongroom_engine::admin::{CommandBody, SignedCommand};

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = serde_json::from_slice::<SignedCommand>(data) {
        if let Ok(body) = base64::engine::general_purpose::STANDARD.decode(cmd.body.as_bytes()) {
            let _ = serde_json::from_slice::<CommandBody>(&body);
        }
    }
    let _ = serde_json::from_slice::<CommandBody>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = strongroom_pkcs11::config::Config::parse(text);
    }
});
