//! Why a command is refused. A refused command changes nothing.

use super::*;

/// Why a command was refused. No state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The command cannot be decoded or a field is invalid.
    Malformed,
    /// Addressed to another instance, unit or epoch.
    WrongTarget,
    /// The counter is not stored + 1 (replay or stale command).
    Replay,
    /// Too few signatures, an unknown signer or a bad signature.
    Signatures,
    /// The unit's state does not allow the command.
    State,
    /// A roster or transfer check failed.
    Roster,
}

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The category.
    pub kind: RefusalKind,
    /// A message for the administrator (never key material).
    pub message: String,
}

pub(super) fn refuse<T>(kind: RefusalKind, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        kind,
        message: message.into(),
    })
}

pub(super) fn malformed(message: impl Into<String>) -> Refusal {
    Refusal {
        kind: RefusalKind::Malformed,
        message: message.into(),
    }
}

pub(super) fn state(message: impl Into<String>) -> Refusal {
    Refusal {
        kind: RefusalKind::State,
        message: message.into(),
    }
}

pub(super) fn b64(field: &str, s: &str) -> Result<Vec<u8>, Refusal> {
    B64.decode(s.trim())
        .map_err(|_| malformed(format!("{field} is not valid base64")))
}

pub(super) fn hex32(field: &str, s: &str) -> Result<[u8; 32], Refusal> {
    let v = hex::decode(s.trim()).map_err(|_| malformed(format!("{field} is not hex")))?;
    v.try_into()
        .map_err(|_| malformed(format!("{field} must be 32 bytes (64 hex digits)")))
}

pub(super) fn hex16(field: &str, s: &str) -> Result<[u8; 16], Refusal> {
    let v = hex::decode(s.trim()).map_err(|_| malformed(format!("{field} is not hex")))?;
    v.try_into()
        .map_err(|_| malformed(format!("{field} must be 16 bytes (32 hex digits)")))
}

pub(super) fn crypto(_: impl std::fmt::Debug) -> Refusal {
    Refusal {
        kind: RefusalKind::State,
        message: "a cryptographic operation of the unit failed".into(),
    }
}
