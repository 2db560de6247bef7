//! The domain model shared by every layer: identifiers, key kinds and states, roles and
//! time stamps. Nothing here performs I/O or cryptography; values that are persisted carry
//! explicit numeric codes that must never be renumbered.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod pkcs11;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random (v4) identifier.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }
            /// The 16 raw bytes, as bound into key blobs.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // Only the canonical hyphenated form is accepted on the wire.
                if s.len() != 36 {
                    return Uuid::parse_str("!").map(Self);
                }
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// An instance (tenant) identifier: the `Bluemix-Instance` header.
    InstanceId
);
uuid_id!(
    /// A key identifier.
    KeyId
);
uuid_id!(
    /// A crypto unit identifier.
    UnitId
);
uuid_id!(
    /// A key version identifier. The first version of a key has the key's own id.
    VersionId
);

impl From<KeyId> for VersionId {
    fn from(k: KeyId) -> Self {
        VersionId(k.0)
    }
}

/// Milliseconds since the Unix epoch (UTC). Time always comes from a clock passed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// This time plus a number of seconds (saturating).
    pub fn plus_secs(self, secs: i64) -> Self {
        UnixMillis(self.0.saturating_add(secs.saturating_mul(1000)))
    }
    /// Seconds elapsed from `earlier` to `self` (negative if `earlier` is later).
    pub fn secs_since(self, earlier: UnixMillis) -> i64 {
        (self.0 - earlier.0).div_euclid(1000)
    }
}

/// Key states as NIST SP 800-57 and the Key Protect API number them. The numbers are
/// persisted and appear on the wire; they must never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum KeyState {
    /// 0: defined but not yet usable (not produced by Strongroom today).
    PreActivation = 0,
    /// 1: usable for every operation its kind allows.
    Active = 1,
    /// 2: disabled by a user; only read, delete and enable.
    Suspended = 2,
    /// 3: expired; only read, unwrap, rewrap and delete (Key Protect refuses rotation).
    Deactivated = 3,
    /// 5: deleted; restorable for 30 days, purgeable after 4 hours.
    Destroyed = 5,
}

impl KeyState {
    /// The persisted / wire code.
    pub fn code(self) -> u8 {
        self as u8
    }
    /// Parses a persisted / wire code.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::PreActivation,
            1 => Self::Active,
            2 => Self::Suspended,
            3 => Self::Deactivated,
            5 => Self::Destroyed,
            _ => return None,
        })
    }
    /// Every state, in code order.
    pub const ALL: [KeyState; 5] = [
        Self::PreActivation,
        Self::Active,
        Self::Suspended,
        Self::Deactivated,
        Self::Destroyed,
    ];

    /// The single place where a lifecycle event changes a state. Timing rules (cool-downs,
    /// restore windows) are checked by the service, which owns the clock.
    pub fn transition(self, event: LifecycleEvent) -> Result<KeyState, TransitionError> {
        use KeyState::*;
        use LifecycleEvent::*;
        let next = match (self, event) {
            (Active, Disable) => Suspended,
            (Suspended, Enable) => Active,
            (Active, Expire) => Deactivated,
            (Active | Suspended | Deactivated | PreActivation, Delete) => Destroyed,
            (Destroyed, Restore { expired: false }) => Active,
            (Destroyed, Restore { expired: true }) => Deactivated,
            (Destroyed, Delete) => return Err(TransitionError::AlreadyDeleted),
            _ => return Err(TransitionError::NotAllowed { from: self, event }),
        };
        Ok(next)
    }
}

/// An event that changes a key's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// `disable` action.
    Disable,
    /// `enable` action.
    Enable,
    /// The expiration date passed.
    Expire,
    /// `DELETE /keys/{id}`.
    Delete,
    /// `restore`; `expired` says whether the key's expiration date has passed.
    Restore {
        /// Whether the key's expiration date has passed.
        expired: bool,
    },
}

/// Why a lifecycle event was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransitionError {
    /// The key is already deleted.
    AlreadyDeleted,
    /// The event is not allowed from the key's state.
    NotAllowed {
        /// The current state.
        from: KeyState,
        /// The refused event.
        event: LifecycleEvent,
    },
}

/// Root keys wrap other keys and never leave the service; standard keys are stored secrets
/// that can be read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum KeyKind {
    /// A root key (`extractable: false`).
    Root = 1,
    /// A standard key (`extractable: true`).
    Standard = 2,
    /// The private transport key of an import token (never a user key).
    TransportKey = 3,
}

impl KeyKind {
    /// The persisted code.
    pub fn code(self) -> u8 {
        self as u8
    }
    /// Parses a persisted code.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(Self::Root),
            2 => Some(Self::Standard),
            3 => Some(Self::TransportKey),
            _ => None,
        }
    }
    /// `extractable` as the Key Protect API says it.
    pub fn extractable(self) -> bool {
        matches!(self, Self::Standard)
    }
}

/// Access roles of an instance, as Key Protect (IAM service roles) defines them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Role {
    /// List keys, read metadata, wrap.
    Reader = 1,
    /// Reader plus reading a standard key's payload (Key Protect's ReaderPlus): for
    /// services that fetch a secret but must not create, unwrap or change keys.
    ReaderPlus = 16,
    /// Reader plus create, read standard key payloads, unwrap, rewrap, rotate.
    Writer = 2,
    /// Writer plus disable, enable, delete, restore.
    Manager = 4,
    /// Purge deleted keys (and nothing else).
    KeyPurge = 8,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Reader,
        Role::ReaderPlus,
        Role::Writer,
        Role::Manager,
        Role::KeyPurge,
    ];
    /// The role's name as the CLI and tokens spell it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "Reader",
            Role::ReaderPlus => "ReaderPlus",
            Role::Writer => "Writer",
            Role::Manager => "Manager",
            Role::KeyPurge => "KeyPurge",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown role '{s}' (expected Reader, ReaderPlus, Writer, Manager or KeyPurge)"
                )
            })
    }
}

/// A set of roles, persisted as a bit mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Roles(pub u8);

impl Roles {
    /// The set holding the given roles.
    pub fn of(roles: &[Role]) -> Self {
        Roles(roles.iter().fold(0, |m, r| m | *r as u8))
    }
    /// Whether the set contains `role`.
    pub fn contains(self, role: Role) -> bool {
        self.0 & role as u8 != 0
    }
    /// Whether the set holds any role that grants `needed`. Higher service roles include
    /// the lower ones (Manager ⊃ Writer ⊃ ReaderPlus ⊃ Reader); KeyPurge stands alone.
    pub fn grants(self, needed: Role) -> bool {
        match needed {
            Role::Reader => self.contains(Role::Reader) || self.grants(Role::ReaderPlus),
            Role::ReaderPlus => self.contains(Role::ReaderPlus) || self.grants(Role::Writer),
            Role::Writer => self.contains(Role::Writer) || self.contains(Role::Manager),
            Role::Manager => self.contains(Role::Manager),
            Role::KeyPurge => self.contains(Role::KeyPurge),
        }
    }
    /// The role names, for display.
    pub fn names(self) -> Vec<&'static str> {
        Role::ALL
            .into_iter()
            .filter(|r| self.contains(*r))
            .map(Role::name)
            .collect()
    }
    /// Whether the set is empty or holds unknown bits.
    pub fn is_valid(self) -> bool {
        self.0 != 0 && self.0 & !0x1f == 0
    }
}

#[cfg(test)]
mod tests;

// ---------------------------------------------------------------- key policies and listing

/// A key's rotation policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Whether automatic rotation is on.
    pub enabled: bool,
    /// Interval in months of 30 days (1–12).
    pub interval_month: u8,
    /// Last change of the policy.
    pub updated_at: UnixMillis,
    /// Who changed it.
    pub updated_by: String,
}

/// A key's dual authorization delete policy (once enabled, never disabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DualAuthPolicy {
    /// Whether deletion needs a prior authorization by another user.
    pub enabled: bool,
    /// Last change of the policy.
    pub updated_at: UnixMillis,
    /// Who changed it.
    pub updated_by: String,
}

/// A first authorization to delete a dual-auth key (`setKeyForDeletion`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionAuthorization {
    /// Who authorized.
    pub by: String,
    /// When (valid for 7 days).
    pub at: UnixMillis,
}

/// Which keys a list or count covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// States to include (empty = all).
    pub states: Vec<KeyState>,
    /// Only standard (`true`) or root (`false`) keys.
    pub extractable: Option<bool>,
    /// Only keys of this ring.
    pub key_ring: Option<String>,
    /// Only keys of these rings (a caller's access); `None` for every ring.
    pub within_rings: Option<Vec<String>>,
}

/// A property keys can be sorted by (the list API's `sort`). Dates that are not set sort
/// first in ascending order; ties are broken by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// Key id.
    Id,
    /// State code.
    State,
    /// Standard (true) or root.
    Extractable,
    /// Imported or generated.
    Imported,
    /// Creation time.
    CreationDate,
    /// Last update.
    LastUpdateDate,
    /// Last rotation.
    LastRotateDate,
    /// Deletion time.
    DeletionDate,
    /// Expiration.
    ExpirationDate,
}

/// A page of results (keys are ordered by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Maximum number of records.
    pub limit: u32,
    /// Records to skip.
    pub offset: u32,
}
