//! The SQL keystore, written once. SQLite and PostgreSQL store the same columns with the
//! same meaning (texts for ids, 64-bit integers for times, codes and counts, booleans,
//! byte strings for hashes and blobs), so every query and every row decoder lives here and
//! runs through [`SqlExec`]; a backend implements that seam with its own connections and
//! keeps only what its dialect needs ([`SqlExec::BYTE_ORDER`],
//! [`SqlExec::INSTANCE_LOCK`], the audit append). A column that cannot be read keeps its
//! driver error as the source.

mod exec;
mod keys;
mod kmip;
mod store;
mod token_objects;

pub use exec::{bind_all, to_completion, Arg, SqlExec, SqlRow, Stmt};

use sqlx::{ColumnIndex, Decode, Row, Type};
use strongroom_model::{
    DeletionAuthorization, DualAuthPolicy, InstanceId, KeyId, KeyKind, KeyState, Roles,
    RotationPolicy, UnitId, UnixMillis, VersionId,
};
use uuid::Uuid;

use crate::{
    ApiKeyRecord, AuditRecord, ImportTokenRecord, InstancePolicyRecord, InstanceRecord, KeyRecord,
    KeyRingRecord, KeyVersionRecord, PlacementRecord, RegistrationRecord, Result, SealedVersion,
    ServiceIdRecord, StoreError, UnitUsage,
};

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

fn uuid_of(s: String, what: &str) -> Result<Uuid> {
    Uuid::parse_str(&s).map_err(|_| StoreError::Corrupt(format!("{what} is not a UUID")))
}

fn u32_of(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range")))
}

fn hash32(v: Vec<u8>, what: &str) -> Result<[u8; 32]> {
    v.try_into().map_err(|_| corrupt(what))
}

fn ms(v: Option<i64>) -> Option<UnixMillis> {
    v.map(UnixMillis)
}

fn text(v: impl ToString) -> Arg {
    Arg::text(v)
}

/// The count a `SELECT COUNT(*) AS n` answered.
fn count_of(rows: &[impl SqlRow]) -> Result<u64> {
    let n = rows.first().map(|r| r.int("n")).transpose()?.unwrap_or(0);
    u64::try_from(n).map_err(|_| corrupt("negative count"))
}

/// The one row a lookup answered, or `NotFound`.
fn one<R>(rows: Vec<R>) -> Result<R> {
    rows.into_iter().next().ok_or(StoreError::NotFound)
}

fn instance_id(r: &impl SqlRow, c: &'static str) -> Result<InstanceId> {
    Ok(InstanceId(uuid_of(r.text(c)?, "instance id")?))
}

fn key_id(r: &impl SqlRow, c: &'static str) -> Result<KeyId> {
    Ok(KeyId(uuid_of(r.text(c)?, "key id")?))
}

fn version_id(r: &impl SqlRow, c: &'static str) -> Result<VersionId> {
    Ok(VersionId(uuid_of(r.text(c)?, "version id")?))
}

fn kind_of(r: &impl SqlRow) -> Result<KeyKind> {
    KeyKind::from_code(r.int("kind")?).ok_or_else(|| corrupt("kind"))
}

/// A row of `keys`.
fn key_from_row(r: &impl SqlRow) -> Result<KeyRecord> {
    Ok(KeyRecord {
        instance: instance_id(r, "instance_id")?,
        id: key_id(r, "id")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        aliases: r
            .text("aliases")?
            .split('\n')
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect(),
        kind: kind_of(r)?,
        imported: r.boolean("imported")?,
        bits: u32_of(r.int("bits")?, "bits")?,
        state: KeyState::from_code(r.int("state")?).ok_or_else(|| corrupt("state"))?,
        key_ring: r.text("key_ring")?,
        created_at: UnixMillis(r.int("created_at")?),
        created_by: r.text("created_by")?,
        updated_at: UnixMillis(r.int("updated_at")?),
        state_changed_at: UnixMillis(r.int("state_changed_at")?),
        expiration: ms(r.opt_int("expiration")?),
        last_rotated_at: ms(r.opt_int("last_rotated_at")?),
        deleted_at: ms(r.opt_int("deleted_at")?),
        deleted_by: r.opt_text("deleted_by")?,
        current_version: version_id(r, "current_version")?,
        current_version_at: UnixMillis(r.int("current_version_at")?),
        version_count: u32_of(r.int("version_count")?, "version_count")?,
        row_version: r.int("row_version")?,
        rotation: match r.opt_boolean("rotation_enabled")? {
            None => None,
            Some(enabled) => Some(RotationPolicy {
                enabled,
                interval_month: u8::try_from(r.int("rotation_interval_month")?)
                    .map_err(|_| corrupt("rotation interval"))?,
                updated_at: UnixMillis(r.int("rotation_policy_at")?),
                updated_by: r.text("rotation_policy_by")?,
            }),
        },
        dual_auth: match r.opt_boolean("dual_auth_enabled")? {
            None => None,
            Some(enabled) => Some(DualAuthPolicy {
                enabled,
                updated_at: UnixMillis(r.int("dual_auth_policy_at")?),
                updated_by: r.text("dual_auth_policy_by")?,
            }),
        },
        deletion_auth: match r.opt_text("deletion_authorized_by")? {
            None => None,
            Some(by) => Some(DeletionAuthorization {
                by,
                at: UnixMillis(r.int("deletion_authorized_at")?),
            }),
        },
    })
}

/// A row of `key_versions`.
fn version_from_row(r: &impl SqlRow) -> Result<KeyVersionRecord> {
    Ok(KeyVersionRecord {
        seq: u32_of(r.int("seq")?, "seq")?,
        id: version_id(r, "id")?,
        created_at: UnixMillis(r.int("created_at")?),
        blob: r.bytes("blob")?,
    })
}

/// A row of `key_versions` joined with its key's kind.
fn sealed_from_row(r: &impl SqlRow) -> Result<SealedVersion> {
    Ok(SealedVersion {
        key: key_id(r, "key_id")?,
        seq: u32_of(r.int("seq")?, "seq")?,
        version: version_id(r, "id")?,
        blob: r.bytes("blob")?,
        kind: kind_of(r)?,
        imported: r.boolean("imported")?,
    })
}

/// A row of `instances`.
fn instance_from_row(r: &impl SqlRow) -> Result<InstanceRecord> {
    Ok(InstanceRecord {
        id: instance_id(r, "id")?,
        name: r.text("name")?,
        created_at: UnixMillis(r.int("created_at")?),
    })
}

/// A row of `api_keys`.
fn api_key_from_row(r: &impl SqlRow) -> Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: r.text("id")?,
        instance: instance_id(r, "instance_id")?,
        name: r.text("name")?,
        roles: Roles(u8::try_from(r.int("roles")?).map_err(|_| corrupt("roles"))?),
        secret_hash: hash32(r.bytes("secret_hash")?, "secret hash")?,
        created_at: UnixMillis(r.int("created_at")?),
        service_id: r.opt_text("service_id")?,
        key_rings: key_rings_of(r)?,
    })
}

/// A row of `placements`.
fn placement_from_row(r: &impl SqlRow) -> Result<PlacementRecord> {
    Ok(PlacementRecord {
        unit: UnitId(uuid_of(r.text("unit_id")?, "unit id")?),
        instance: instance_id(r, "instance_id")?,
        recovery: r.boolean("recovery")?,
        zone: r.opt_text("zone")?,
        region: r.opt_text("region")?,
        created_at: UnixMillis(r.int("created_at")?),
    })
}

/// A row of `service_ids`.
fn service_id_from_row(r: &impl SqlRow) -> Result<ServiceIdRecord> {
    Ok(ServiceIdRecord {
        id: r.text("id")?,
        instance: instance_id(r, "instance_id")?,
        name: r.text("name")?,
        roles: Roles(u8::try_from(r.int("roles")?).map_err(|_| corrupt("roles"))?),
        key_rings: key_rings_of(r)?,
        created_at: UnixMillis(r.int("created_at")?),
    })
}

/// The `key_rings` column: ring ids one per line (as `keys.aliases`), or NULL for the
/// whole instance.
fn key_rings_of(r: &impl SqlRow) -> Result<Option<Vec<String>>> {
    Ok(r.opt_text("key_rings")?.map(|j| {
        j.split('\n')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }))
}

/// The `key_rings` column's parameter.
fn key_rings_arg(rings: &Option<Vec<String>>) -> Arg {
    Arg::OptText(rings.as_ref().map(|r| r.join("\n")))
}

/// A row of the audit log.
fn audit_from_row(r: &impl SqlRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.int("seq")?,
        at: UnixMillis(r.int("at")?),
        instance: r
            .opt_text("instance_id")?
            .map(|s| uuid_of(s, "instance id").map(InstanceId))
            .transpose()?,
        principal: r.text("principal")?,
        action: r.text("action")?,
        key: r.opt_text("key")?,
        outcome: r.text("outcome")?,
        status: u16::try_from(r.int("status")?).map_err(|_| corrupt("audit status"))?,
        correlation_id: r.text("correlation_id")?,
        prev_hash: hash32(r.bytes("prev_hash")?, "audit hash")?,
        hash: hash32(r.bytes("hash")?, "audit hash")?,
    })
}

/// A row of `registrations`.
fn registration_from_row(r: &impl SqlRow) -> Result<RegistrationRecord> {
    Ok(RegistrationRecord {
        key: key_id(r, "key_id")?,
        resource_crn: r.text("resource_crn")?,
        description: r.opt_text("description")?,
        metadata: r.opt_text("metadata")?,
        prevent_deletion: r.boolean("prevent_deletion")?,
        key_version: version_id(r, "key_version_id")?,
        created_at: UnixMillis(r.int("created_at")?),
        created_by: r.text("created_by")?,
        updated_at: UnixMillis(r.int("updated_at")?),
        updated_by: r.text("updated_by")?,
    })
}

/// A row of `import_tokens`.
fn import_token_from_row(r: &impl SqlRow) -> Result<ImportTokenRecord> {
    Ok(ImportTokenRecord {
        id: key_id(r, "id")?,
        created_at: UnixMillis(r.int("created_at")?),
        expires_at: UnixMillis(r.int("expires_at")?),
        max_retrievals: u32_of(r.int("max_retrievals")?, "max_retrievals")?,
        remaining: u32_of(r.int("remaining")?, "remaining")?,
        public_key: r.bytes("public_key")?,
        private_blob: r.bytes("private_blob")?,
        nonce: r.bytes("nonce")?,
    })
}

/// A row of `instance_policies`.
fn policy_from_row(r: &impl SqlRow) -> Result<InstancePolicyRecord> {
    Ok(InstancePolicyRecord {
        policy_type: r.text("policy_type")?,
        enabled: r.boolean("enabled")?,
        attributes: r.text("attributes")?,
        created_at: UnixMillis(r.int("created_at")?),
        created_by: r.text("created_by")?,
        updated_at: UnixMillis(r.int("updated_at")?),
        updated_by: r.text("updated_by")?,
    })
}

/// A row of `key_rings`.
fn ring_from_row(r: &impl SqlRow) -> Result<KeyRingRecord> {
    Ok(KeyRingRecord {
        id: r.text("id")?,
        created_at: UnixMillis(r.int("created_at")?),
        created_by: r.text("created_by")?,
    })
}

/// A row of `unit_usage` for `instance` and `month`.
fn usage_from_row(r: &impl SqlRow, instance: InstanceId, month: &str) -> Result<UnitUsage> {
    Ok(UnitUsage {
        instance,
        unit: UnitId(uuid_of(r.text("unit_id")?, "unit id")?),
        month: month.to_string(),
        calls: u64::try_from(r.int("calls")?).map_err(|_| corrupt("negative calls"))?,
    })
}
