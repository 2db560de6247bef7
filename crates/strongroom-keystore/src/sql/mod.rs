//! What the SQL keystores share: reading rows into records. Both backends store the same
//! columns with the same meaning (texts for ids, 64-bit integers for times, codes and
//! counts, booleans, byte strings for hashes and blobs), so each record is decoded here once
//! and the backends keep only what their SQL dialects need. A column that cannot be read
//! keeps its driver error as the source.

mod exec;
mod kmip;

pub use exec::{bind_all, Arg, SqlExec, SqlRow, Stmt};

use std::str::FromStr;

use sqlx::{ColumnIndex, Decode, Row, Type};
use strongroom_model::{
    DeletionAuthorization, DualAuthPolicy, InstanceId, KeyId, KeyKind, KeyState, Roles,
    RotationPolicy, UnixMillis, VersionId,
};

use crate::{
    ApiKeyRecord, AuditRecord, InstanceRecord, KeyRecord, RegistrationRecord, Result, StoreError,
};

/// The columns of `keys` in the order the backends write them.
pub const KEY_COLUMNS: &str = "instance_id, id, name, description, aliases, kind, imported, bits, state, key_ring, created_at, \
    created_by, updated_at, state_changed_at, expiration, last_rotated_at, deleted_at, deleted_by, current_version, \
    current_version_at, version_count, row_version, rotation_enabled, rotation_interval_month, rotation_policy_at, \
    rotation_policy_by, dual_auth_enabled, dual_auth_policy_at, dual_auth_policy_by, deletion_authorized_by, deletion_authorized_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Reads one column of a row as `T`, keeping the driver's error as the source.
pub fn col<'r, R, T>(row: &'r R, column: &'static str) -> Result<T>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(column).map_err(|e| StoreError::Unreadable {
        column,
        source: Box::new(e),
    })
}

/// A driver error met while reading rows, kept as the source.
pub fn undecodable(e: sqlx::Error) -> StoreError {
    StoreError::Undecodable(Box::new(e))
}

fn id(s: String, what: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::from_str(&s).map_err(|_| corrupt(what))
}

fn ms(v: Option<i64>) -> Option<UnixMillis> {
    v.map(UnixMillis)
}

fn u32_of(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| corrupt(what))
}

fn hash32(v: Vec<u8>, what: &str) -> Result<[u8; 32]> {
    v.try_into().map_err(|_| corrupt(what))
}

/// A row of `keys`.
pub fn key_from_row<'r, R>(r: &'r R) -> Result<KeyRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    Option<bool>: Decode<'r, R::Database> + Type<R::Database>,
{
    let aliases: String = col(r, "aliases")?;
    Ok(KeyRecord {
        instance: InstanceId(id(col(r, "instance_id")?, "instance id")?),
        id: KeyId(id(col(r, "id")?, "key id")?),
        name: col(r, "name")?,
        description: col(r, "description")?,
        aliases: aliases
            .split('\n')
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect(),
        kind: KeyKind::from_code(col(r, "kind")?).ok_or_else(|| corrupt("kind"))?,
        imported: col(r, "imported")?,
        bits: u32_of(col(r, "bits")?, "bits")?,
        state: KeyState::from_code(col(r, "state")?).ok_or_else(|| corrupt("state"))?,
        key_ring: col(r, "key_ring")?,
        created_at: UnixMillis(col(r, "created_at")?),
        created_by: col(r, "created_by")?,
        updated_at: UnixMillis(col(r, "updated_at")?),
        state_changed_at: UnixMillis(col(r, "state_changed_at")?),
        expiration: ms(col(r, "expiration")?),
        last_rotated_at: ms(col(r, "last_rotated_at")?),
        deleted_at: ms(col(r, "deleted_at")?),
        deleted_by: col(r, "deleted_by")?,
        current_version: VersionId(id(col(r, "current_version")?, "version id")?),
        current_version_at: UnixMillis(col(r, "current_version_at")?),
        version_count: u32_of(col(r, "version_count")?, "version_count")?,
        row_version: col(r, "row_version")?,
        rotation: match col::<_, Option<bool>>(r, "rotation_enabled")? {
            None => None,
            Some(enabled) => Some(RotationPolicy {
                enabled,
                interval_month: u8::try_from(col::<_, i64>(r, "rotation_interval_month")?)
                    .map_err(|_| corrupt("rotation interval"))?,
                updated_at: UnixMillis(col(r, "rotation_policy_at")?),
                updated_by: col(r, "rotation_policy_by")?,
            }),
        },
        dual_auth: match col::<_, Option<bool>>(r, "dual_auth_enabled")? {
            None => None,
            Some(enabled) => Some(DualAuthPolicy {
                enabled,
                updated_at: UnixMillis(col(r, "dual_auth_policy_at")?),
                updated_by: col(r, "dual_auth_policy_by")?,
            }),
        },
        deletion_auth: match col::<_, Option<String>>(r, "deletion_authorized_by")? {
            None => None,
            Some(by) => Some(DeletionAuthorization {
                by,
                at: UnixMillis(col(r, "deletion_authorized_at")?),
            }),
        },
    })
}

/// A row of `instances`.
pub fn instance_from_row<'r, R>(r: &'r R) -> Result<InstanceRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(InstanceRecord {
        id: InstanceId(id(col(r, "id")?, "instance id")?),
        name: col(r, "name")?,
        created_at: UnixMillis(col(r, "created_at")?),
    })
}

/// A row of `api_keys`.
pub fn api_key_from_row<'r, R>(r: &'r R) -> Result<ApiKeyRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(ApiKeyRecord {
        id: col(r, "id")?,
        instance: InstanceId(id(col(r, "instance_id")?, "instance id")?),
        name: col(r, "name")?,
        roles: Roles(u8::try_from(col::<_, i64>(r, "roles")?).map_err(|_| corrupt("roles"))?),
        secret_hash: hash32(col(r, "secret_hash")?, "secret hash")?,
        created_at: UnixMillis(col(r, "created_at")?),
    })
}

/// A row of the audit log.
pub fn audit_from_row<'r, R>(r: &'r R) -> Result<AuditRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    let instance: Option<String> = col(r, "instance_id")?;
    Ok(AuditRecord {
        seq: col(r, "seq")?,
        at: UnixMillis(col(r, "at")?),
        instance: instance
            .map(|s| id(s, "instance id").map(InstanceId))
            .transpose()?,
        principal: col(r, "principal")?,
        action: col(r, "action")?,
        key: col(r, "key")?,
        outcome: col(r, "outcome")?,
        status: u16::try_from(col::<_, i64>(r, "status")?).map_err(|_| corrupt("audit status"))?,
        correlation_id: col(r, "correlation_id")?,
        prev_hash: hash32(col(r, "prev_hash")?, "audit hash")?,
        hash: hash32(col(r, "hash")?, "audit hash")?,
    })
}

/// A row of `registrations`.
pub fn registration_from_row<'r, R>(r: &'r R) -> Result<RegistrationRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(RegistrationRecord {
        key: KeyId(id(col(r, "key_id")?, "key id")?),
        resource_crn: col(r, "resource_crn")?,
        description: col(r, "description")?,
        metadata: col(r, "metadata")?,
        prevent_deletion: col(r, "prevent_deletion")?,
        key_version: VersionId(id(col(r, "key_version_id")?, "version id")?),
        created_at: UnixMillis(col(r, "created_at")?),
        created_by: col(r, "created_by")?,
        updated_at: UnixMillis(col(r, "updated_at")?),
        updated_by: col(r, "updated_by")?,
    })
}
