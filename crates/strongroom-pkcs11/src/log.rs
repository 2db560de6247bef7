//! The library's log: `logging.loglevel` and `logging.logpath` of grep11client.yaml. Lines
//! carry CK_RV values and the server's refusal details, never PINs, API keys or key
//! material.

use std::io::Write;
use std::sync::Mutex;

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

struct Sink {
    level: u8,
    file: Option<std::fs::File>,
}

fn level_of(name: &str) -> u8 {
    match name.to_ascii_lowercase().as_str() {
        "panic" | "fatal" => 0,
        "error" => 1,
        "warning" | "warn" => 2,
        "info" => 3,
        "debug" => 4,
        "trace" => 5,
        _ => 2,
    }
}

/// Sets the log up from the configuration.
pub fn init(cfg: &crate::config::Logging) {
    let file = cfg.path.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    if let Ok(mut s) = SINK.lock() {
        *s = Some(Sink {
            level: level_of(&cfg.level),
            file,
        });
    }
}

fn write(level: u8, tag: &str, msg: &str) {
    let Ok(mut s) = SINK.lock() else { return };
    let Some(sink) = s.as_mut() else { return };
    if level > sink.level {
        return;
    }
    let line = format!("strongroom-pkcs11 {tag}: {msg}\n");
    match sink.file.as_mut() {
        Some(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// An error.
pub fn error(msg: &str) {
    write(1, "error", msg);
}

/// A warning: a refused or failed call.
pub fn warn(msg: &str) {
    write(2, "warning", msg);
}

/// Detail for debugging.
pub fn debug(msg: &str) {
    write(4, "debug", msg);
}
