//! What the service shows its callers: view types of its own, so that no front end sees a
//! storage record (row versions, secret hashes) or depends on the keystore crate. Each view
//! is built from the record in one place, here.

use strongroom_keystore::{
    ApiKeyRecord, InstancePolicyRecord, InstanceRecord, KeyRecord, KeyRingRecord, ServiceIdRecord,
};
use strongroom_model::{
    DeletionAuthorization, DualAuthPolicy, InstanceId, KeyId, KeyKind, KeyState, Roles,
    RotationPolicy, UnixMillis, VersionId,
};

/// A key's metadata as callers see it (never material). `state` is the effective state
/// where the service says so (an expired key shows Deactivated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMetadata {
    /// Owning instance.
    pub instance: InstanceId,
    /// Key id.
    pub id: KeyId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Aliases.
    pub aliases: Vec<String>,
    /// Root or standard.
    pub kind: KeyKind,
    /// Whether the material was imported.
    pub imported: bool,
    /// Size of the material in bits.
    pub bits: u32,
    /// State.
    pub state: KeyState,
    /// Key ring.
    pub key_ring: String,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Creator.
    pub created_by: String,
    /// Last change.
    pub updated_at: UnixMillis,
    /// Last state change.
    pub state_changed_at: UnixMillis,
    /// Expiration date.
    pub expiration: Option<UnixMillis>,
    /// Last rotation.
    pub last_rotated_at: Option<UnixMillis>,
    /// Deletion time.
    pub deleted_at: Option<UnixMillis>,
    /// Who deleted it.
    pub deleted_by: Option<String>,
    /// Current version.
    pub current_version: VersionId,
    /// When the current version was made.
    pub current_version_at: UnixMillis,
    /// Number of versions.
    pub version_count: u32,
    /// Rotation policy.
    pub rotation: Option<RotationPolicy>,
    /// Dual authorization delete policy.
    pub dual_auth: Option<DualAuthPolicy>,
    /// A pending deletion authorization.
    pub deletion_auth: Option<DeletionAuthorization>,
}

impl KeyMetadata {
    /// The view of `rec`, showing `state`.
    pub(crate) fn of(rec: &KeyRecord, state: KeyState) -> Self {
        KeyMetadata {
            instance: rec.instance,
            id: rec.id,
            name: rec.name.clone(),
            description: rec.description.clone(),
            aliases: rec.aliases.clone(),
            kind: rec.kind,
            imported: rec.imported,
            bits: rec.bits,
            state,
            key_ring: rec.key_ring.clone(),
            created_at: rec.created_at,
            created_by: rec.created_by.clone(),
            updated_at: rec.updated_at,
            state_changed_at: rec.state_changed_at,
            expiration: rec.expiration,
            last_rotated_at: rec.last_rotated_at,
            deleted_at: rec.deleted_at,
            deleted_by: rec.deleted_by.clone(),
            current_version: rec.current_version,
            current_version_at: rec.current_version_at,
            version_count: rec.version_count,
            rotation: rec.rotation.clone(),
            dual_auth: rec.dual_auth.clone(),
            deletion_auth: rec.deletion_auth.clone(),
        }
    }
}

impl From<&KeyRecord> for KeyMetadata {
    fn from(rec: &KeyRecord) -> Self {
        KeyMetadata::of(rec, rec.state)
    }
}

/// An instance (tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    /// The instance id.
    pub id: InstanceId,
    /// Its name, unique on the node.
    pub name: String,
    /// Creation time.
    pub created_at: UnixMillis,
}

impl From<InstanceRecord> for InstanceInfo {
    fn from(r: InstanceRecord) -> Self {
        InstanceInfo {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

/// A key ring. The `default` ring always exists and has no creation record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRing {
    /// Ring id.
    pub id: String,
    /// When and by whom it was created (`None` for `default`).
    pub created: Option<(UnixMillis, String)>,
}

impl From<KeyRingRecord> for KeyRing {
    fn from(r: KeyRingRecord) -> Self {
        KeyRing {
            id: r.id,
            created: Some((r.created_at, r.created_by)),
        }
    }
}

/// An API key as the administrator sees it: never its secret, nor the secret's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// Public id (part of the API key string).
    pub id: String,
    /// Owning instance.
    pub instance: InstanceId,
    /// Its label.
    pub name: String,
    /// What the key grants: its own roles, or its service ID's.
    pub access: Access,
    /// Creation time.
    pub created_at: UnixMillis,
}

impl From<&ApiKeyRecord> for ApiKeyInfo {
    fn from(r: &ApiKeyRecord) -> Self {
        ApiKeyInfo {
            id: r.id.clone(),
            instance: r.instance,
            name: r.name.clone(),
            access: match &r.service_id {
                Some(sid) => Access::ServiceId(sid.clone()),
                None => Access::Roles(Grant {
                    roles: r.roles,
                    key_rings: r.key_rings.clone(),
                }),
            },
            created_at: r.created_at,
        }
    }
}

/// Roles, over the whole instance or over some of its key rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Granted roles.
    pub roles: Roles,
    /// The key rings the roles apply to; `None` for the whole instance.
    pub key_rings: Option<Vec<String>>,
}

/// What an API key grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Its own roles.
    Roles(Grant),
    /// Whatever its service ID is granted at the time of each token exchange.
    ServiceId(String),
}

/// A service ID: an identity whose API keys share one grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIdInfo {
    /// `ServiceId-<uuid>`.
    pub id: String,
    /// Owning instance.
    pub instance: InstanceId,
    /// Its label.
    pub name: String,
    /// What its API keys grant.
    pub grant: Grant,
    /// Creation time.
    pub created_at: UnixMillis,
}

impl From<&ServiceIdRecord> for ServiceIdInfo {
    fn from(r: &ServiceIdRecord) -> Self {
        ServiceIdInfo {
            id: r.id.clone(),
            instance: r.instance,
            name: r.name.clone(),
            grant: Grant {
                roles: r.roles,
                key_rings: r.key_rings.clone(),
            },
            created_at: r.created_at,
        }
    }
}

/// One instance policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePolicy {
    /// The type (one of [`crate::INSTANCE_POLICY_TYPES`]).
    pub policy_type: String,
    /// On or off.
    pub enabled: bool,
    /// Attributes, as a JSON object.
    pub attributes: String,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Creator.
    pub created_by: String,
    /// Last change.
    pub updated_at: UnixMillis,
    /// Who changed it last.
    pub updated_by: String,
}

impl From<InstancePolicyRecord> for InstancePolicy {
    fn from(r: InstancePolicyRecord) -> Self {
        InstancePolicy {
            policy_type: r.policy_type,
            enabled: r.enabled,
            attributes: r.attributes,
            created_at: r.created_at,
            created_by: r.created_by,
            updated_at: r.updated_at,
            updated_by: r.updated_by,
        }
    }
}
