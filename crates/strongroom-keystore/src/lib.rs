//! The keystore seam: where an instance's keys, API keys and audit log live. Backends
//! (SQLite, later PostgreSQL) implement [`KeyStore`] and must pass [`conformance`].
//!
//! The store never sees plaintext: key material arrives as sealed blobs. Every write is
//! durable before the call returns. Updates of a key use optimistic concurrency: the
//! caller passes the `row_version` it read, and a write based on a stale read fails with
//! [`StoreError::Conflict`], so two concurrent rotations cannot both win.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "conformance")]
pub mod conformance;
mod kmip;
#[cfg(feature = "memory")]
mod memory;
#[cfg(feature = "sql")]
pub mod sql;
mod token_objects;

pub use kmip::*;
#[cfg(feature = "memory")]
pub use memory::MemoryStore;
pub use token_objects::*;

use async_trait::async_trait;
use strongroom_model::{
    InstanceId, KeyId, KeyKind, KeyState, Roles, UnitId, UnixMillis, VersionId,
};

/// Result of store calls.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Store failures, by condition.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist (or belongs to another instance).
    #[error("not found")]
    NotFound,
    /// The record changed since it was read (optimistic concurrency).
    #[error("concurrent modification")]
    Conflict,
    /// A unique value is taken.
    #[error("{0} already exists")]
    AlreadyExists(Unique),
    /// The instance still holds keys.
    #[error("instance still holds {0} keys")]
    InstanceNotEmpty(u64),
    /// The instance already holds the most keys allowed.
    #[error("the instance holds {0} keys, the most allowed")]
    QuotaExceeded(u64),
    /// The key ring still holds keys (any state without `force`, non-destroyed with it).
    #[error("key ring still holds {0} keys")]
    RingNotEmpty(u64),
    /// The KMIP adapter still holds objects that are not destroyed.
    #[error("KMIP adapter still holds {0} objects")]
    AdapterNotEmpty(u64),
    /// The stored data is not what this version of Strongroom wrote.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A row cannot be read as what this version of Strongroom wrote.
    #[error("stored data is corrupt: a row cannot be read")]
    Undecodable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A column cannot be read as what this version of Strongroom wrote.
    #[error("stored data is corrupt: column {column} cannot be read")]
    Unreadable {
        /// The column.
        column: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend failed (I/O, database down). Retryable.
    #[error("keystore unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub use strongroom_model::{
    DeletionAuthorization, DualAuthPolicy, KeyFilter, Page, RotationPolicy, SortField,
};

/// Which unique value a write collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    /// An instance of that name.
    Instance,
    /// An alias, within the instance.
    Alias,
    /// A key ring, within the instance.
    KeyRing,
    /// An API key id.
    ApiKey,
    /// A service ID.
    ServiceId,
    /// A key id.
    Key,
    /// A key version id.
    KeyVersion,
    /// A KMIP adapter name, within the instance.
    KmipAdapter,
    /// A KMIP client certificate (name within the adapter, or the certificate itself).
    KmipCertificate,
    /// A KMIP object id.
    KmipObject,
    /// A PKCS#11 token object id, within its keystore.
    TokenObject,
}

impl std::fmt::Display for Unique {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unique::Instance => "instance",
            Unique::Alias => "alias",
            Unique::KeyRing => "key ring",
            Unique::ApiKey => "api key",
            Unique::ServiceId => "service ID",
            Unique::Key => "key",
            Unique::KeyVersion => "key version",
            Unique::KmipAdapter => "KMIP adapter",
            Unique::KmipCertificate => "KMIP certificate",
            Unique::KmipObject => "KMIP object",
            Unique::TokenObject => "token object",
        })
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    /// The instance id.
    pub id: InstanceId,
    /// A human name, unique on the node.
    pub name: String,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// A key's metadata (no material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Owning instance.
    pub instance: InstanceId,
    /// Key id.
    pub id: KeyId,
    /// Name (not unique).
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Aliases, unique within the instance.
    pub aliases: Vec<String>,
    /// Root or standard.
    pub kind: KeyKind,
    /// Whether the material was imported.
    pub imported: bool,
    /// Length of the key material in bits.
    pub bits: u32,
    /// Lifecycle state.
    pub state: KeyState,
    /// Key ring (`default` unless set).
    pub key_ring: String,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Creating principal.
    pub created_by: String,
    /// Last change of any kind.
    pub updated_at: UnixMillis,
    /// Last change of state (cool-downs are measured from it).
    pub state_changed_at: UnixMillis,
    /// Optional expiration.
    pub expiration: Option<UnixMillis>,
    /// Last rotation.
    pub last_rotated_at: Option<UnixMillis>,
    /// Deletion time (state 5).
    pub deleted_at: Option<UnixMillis>,
    /// Deleting principal.
    pub deleted_by: Option<String>,
    /// The newest version's id.
    pub current_version: VersionId,
    /// The newest version's creation time.
    pub current_version_at: UnixMillis,
    /// Number of versions.
    pub version_count: u32,
    /// Optimistic concurrency token; incremented by every write.
    pub row_version: i64,
    /// Rotation policy, if one was set.
    pub rotation: Option<RotationPolicy>,
    /// Dual authorization delete policy, if one was set.
    pub dual_auth: Option<DualAuthPolicy>,
    /// A pending authorization to delete (dual authorization), if any.
    pub deletion_auth: Option<DeletionAuthorization>,
}

/// An instance's import token: an RSA transport key and a nonce for secure import.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportTokenRecord {
    /// Token id (binds the sealed private key).
    pub id: KeyId,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Expiry.
    pub expires_at: UnixMillis,
    /// Allowed retrievals of the public key.
    pub max_retrievals: u32,
    /// Retrievals left.
    pub remaining: u32,
    /// SubjectPublicKeyInfo DER of the transport key.
    pub public_key: Vec<u8>,
    /// The PKCS#8 private key sealed as a key blob.
    pub private_blob: Vec<u8>,
    /// The nonce the importer must encrypt with the key material.
    pub nonce: Vec<u8>,
}

impl std::fmt::Debug for ImportTokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportTokenRecord")
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// One instance policy. `attributes` is JSON text, validated and read by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePolicyRecord {
    /// `dualAuthDelete`, `rotation`, `keyCreateImportAccess`, `allowedNetwork`, `allowedIP`, `metrics`.
    pub policy_type: String,
    /// Whether it is on.
    pub enabled: bool,
    /// Attributes as JSON (an object, possibly empty).
    pub attributes: String,
    /// First set.
    pub created_at: UnixMillis,
    /// First set by.
    pub created_by: String,
    /// Last changed.
    pub updated_at: UnixMillis,
    /// Last changed by.
    pub updated_by: String,
}

/// A registration: a cloud resource that uses a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationRecord {
    /// The key.
    pub key: KeyId,
    /// The resource's CRN.
    pub resource_crn: String,
    /// Free text.
    pub description: Option<String>,
    /// Free text from the registering service.
    pub metadata: Option<String>,
    /// Whether the resource forbids deleting the key (even with force).
    pub prevent_deletion: bool,
    /// The key version the resource uses.
    pub key_version: VersionId,
    /// Created.
    pub created_at: UnixMillis,
    /// Created by.
    pub created_by: String,
    /// Updated.
    pub updated_at: UnixMillis,
    /// Updated by.
    pub updated_by: String,
}

/// A change made by any node, announced by stores that several nodes share, so that every
/// node drops what it cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A key's metadata, versions or aliases changed.
    Key(InstanceId, KeyId),
    /// A KMIP object changed.
    KmipObject(InstanceId, uuid::Uuid),
    /// Something instance-wide changed (instance policies).
    Instance(InstanceId),
    /// An API key or service ID of the instance changed or was deleted.
    Credentials(InstanceId),
    /// Changes may have been missed (the feed reconnected): drop every cached entry.
    All,
}

/// Changes made through any node, in order. A feed that fell behind or reconnected yields
/// [`Change::All`] (changes may have been missed); `None` once it has ended.
#[async_trait]
pub trait ChangeFeed: Send {
    /// The next change.
    async fn next(&mut self) -> Option<Change>;
}

/// A key ring of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRingRecord {
    /// Ring id (2–100 characters; `default` always exists).
    pub id: String,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Creator.
    pub created_by: String,
}

/// One version of a key's material, sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyVersionRecord {
    /// Version id (the first version's id is the key id).
    pub id: VersionId,
    /// 0-based sequence number.
    pub seq: u32,
    /// Creation time.
    pub created_at: UnixMillis,
    /// The sealed key blob (see `docs/formats.md`).
    pub blob: Vec<u8>,
}

impl std::fmt::Debug for KeyVersionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersionRecord")
            .field("id", &self.id)
            .field("seq", &self.seq)
            .field("created_at", &self.created_at)
            .field("blob_len", &self.blob.len())
            .finish()
    }
}

/// A key version's blob with what it is bound to (master key rotation reads these).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedVersion {
    /// The key.
    pub key: KeyId,
    /// Root or standard.
    pub kind: KeyKind,
    /// Whether the material was imported.
    pub imported: bool,
    /// The version's sequence number.
    pub seq: u32,
    /// The version id.
    pub version: VersionId,
    /// The sealed blob.
    pub blob: Vec<u8>,
}

impl std::fmt::Debug for SealedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedVersion")
            .field("key", &self.key)
            .field("seq", &self.seq)
            .field("blob_len", &self.blob.len())
            .finish_non_exhaustive()
    }
}

/// Replace one version's blob, if it still holds `old` (compare-and-swap).
#[derive(Clone, PartialEq, Eq)]
pub struct BlobUpdate {
    /// The key.
    pub key: KeyId,
    /// The version's sequence number.
    pub seq: u32,
    /// The blob expected in the store.
    pub old: Vec<u8>,
    /// The replacement.
    pub new: Vec<u8>,
}

/// API calls served by one crypto unit for one instance in one calendar month (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitUsage {
    /// The instance.
    pub instance: InstanceId,
    /// The crypto unit that served the calls.
    pub unit: UnitId,
    /// `YYYY-MM`.
    pub month: String,
    /// Number of calls.
    pub calls: u64,
}

/// Where a crypto unit runs: its node's zone and region, as the node was configured when it
/// created the unit. Every node reads them to place an instance's units apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementRecord {
    /// The crypto unit.
    pub unit: UnitId,
    /// Its instance.
    pub instance: InstanceId,
    /// A recovery unit (`false`: operational).
    pub recovery: bool,
    /// The node's zone (`serve --zone`), if it has one.
    pub zone: Option<String>,
    /// The node's region (`serve --region`), if it has one.
    pub region: Option<String>,
    /// When the unit was created.
    pub created_at: UnixMillis,
}

/// Bytes 1..17 of a v1 blob: the id of the master key it is sealed under.
pub const BLOB_MK_ID_OFFSET: usize = 1;

/// An API key: a secret exchanged for bearer tokens. Only a hash of the secret is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public id (part of the API key string).
    pub id: String,
    /// Owning instance.
    pub instance: InstanceId,
    /// A label.
    pub name: String,
    /// Granted roles.
    pub roles: Roles,
    /// SHA-256 of the secret part.
    pub secret_hash: [u8; 32],
    /// Creation time.
    pub created_at: UnixMillis,
    /// The service ID the key belongs to: its roles and key rings then come from the
    /// service ID, and `roles` and `key_rings` here are unused.
    pub service_id: Option<String>,
    /// The key rings `roles` apply to; `None` for the whole instance.
    pub key_rings: Option<Vec<String>>,
}

/// A service ID: an identity of an instance with one set of roles, optionally limited to
/// some key rings, shared by all the API keys that belong to it (Key Protect's service
/// IDs, whose API keys are rotated without changing the access).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIdRecord {
    /// Public id (`ServiceId-<uuid>`).
    pub id: String,
    /// Owning instance.
    pub instance: InstanceId,
    /// A label.
    pub name: String,
    /// Granted roles.
    pub roles: Roles,
    /// The key rings the roles apply to; `None` for the whole instance.
    pub key_rings: Option<Vec<String>>,
    /// Creation time.
    pub created_at: UnixMillis,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("instance", &self.instance)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("service_id", &self.service_id)
            .field("key_rings", &self.key_rings)
            .finish_non_exhaustive()
    }
}

/// Which audit records of one instance to read ([`KeyStore::read_instance_audit`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records with `seq` greater than this (a cursor; 0 reads from the start).
    pub after: i64,
    /// Only records at or after this time.
    pub from: Option<UnixMillis>,
    /// Only records before this time.
    pub to: Option<UnixMillis>,
    /// Only records of this action (`kms.secrets.wrap`).
    pub action: Option<String>,
    /// Only records with this outcome (`success` or an error code).
    pub outcome: Option<String>,
    /// Only failed calls (any outcome but `success`).
    pub failures: bool,
    /// Only records naming this key (id or alias as given).
    pub key: Option<String>,
    /// At most this many records.
    pub limit: u32,
}

/// One audit event, as chained by the service. The store only keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When it happened.
    pub at: UnixMillis,
    /// The instance it concerns, if any.
    pub instance: Option<InstanceId>,
    /// Who (API key id, token subject, `admin`, `anonymous`).
    pub principal: String,
    /// What (`kms.secrets.wrap`, ...).
    pub action: String,
    /// Which key, if any (id or alias as given).
    pub key: Option<String>,
    /// `success`, or the reason code of the failure.
    pub outcome: String,
    /// HTTP status answered.
    pub status: u16,
    /// Correlation id of the request.
    pub correlation_id: String,
    /// Hash of the previous record (zeros for the first).
    pub prev_hash: [u8; 32],
    /// This record's chain hash.
    pub hash: [u8; 32],
}

/// The keystore. All methods are scoped by instance: a record of one instance is never
/// returned for another.
#[async_trait]
pub trait KeyStore: KmipStore + TokenObjectStore + Send + Sync + 'static {
    /// Backend name for logs.
    fn backend(&self) -> &'static str;

    /// Checks that the store answers (readiness).
    async fn ping(&self) -> Result<()>;

    /// Creates an instance. Fails with `AlreadyExists` on a duplicate id or name.
    async fn create_instance(&self, rec: &InstanceRecord) -> Result<()>;
    /// Reads an instance.
    async fn get_instance(&self, id: InstanceId) -> Result<InstanceRecord>;
    /// Lists instances by name.
    async fn list_instances(&self) -> Result<Vec<InstanceRecord>>;
    /// Deletes an instance. With `force == false` it is refused (`InstanceNotEmpty`) while
    /// any key remains in any state. With `force == true` every remaining record of the
    /// instance (keys, versions, API keys) is erased in one transaction.
    async fn delete_instance(&self, id: InstanceId, force: bool, now: UnixMillis) -> Result<()>;
    /// Whether `id` was deleted: [`KeyStore::delete_instance`] leaves a tombstone in the
    /// same transaction, so that every node destroys its crypto units of the instance.
    async fn instance_deleted(&self, id: InstanceId) -> Result<bool>;

    /// Creates a key with its first version. Fails with `AlreadyExists(Unique::Alias)` if an
    /// alias is taken in the instance; nothing is written then.
    async fn create_key(&self, key: &KeyRecord, first: &KeyVersionRecord) -> Result<()>;
    /// [`KeyStore::create_key`], refused with `QuotaExceeded` when the instance already holds
    /// `max_keys` keys (any state). The count and the insert are atomic across nodes.
    async fn create_key_within(
        &self,
        key: &KeyRecord,
        first: &KeyVersionRecord,
        max_keys: u64,
    ) -> Result<()>;
    /// Reads a key's metadata.
    async fn get_key(&self, instance: InstanceId, id: KeyId) -> Result<KeyRecord>;
    /// Resolves an alias to a key id.
    async fn key_id_by_alias(&self, instance: InstanceId, alias: &str) -> Result<KeyId>;
    /// Lists keys, ordered by id.
    async fn list_keys(
        &self,
        instance: InstanceId,
        filter: &KeyFilter,
        page: Page,
    ) -> Result<Vec<KeyRecord>> {
        self.list_keys_sorted(instance, filter, &[], page).await
    }
    /// Lists keys in the order of `sort` (each field ascending, or descending when its flag
    /// is set; unset dates first when ascending; ties by id), so that a page of a sorted
    /// list needs no more than that page.
    async fn list_keys_sorted(
        &self,
        instance: InstanceId,
        filter: &KeyFilter,
        sort: &[(SortField, bool)],
        page: Page,
    ) -> Result<Vec<KeyRecord>>;
    /// Counts keys.
    async fn count_keys(&self, instance: InstanceId, filter: &KeyFilter) -> Result<u64>;
    /// All versions of a key, newest first.
    async fn key_versions(&self, instance: InstanceId, id: KeyId) -> Result<Vec<KeyVersionRecord>>;
    /// Up to `limit` versions of `instance` whose blob is not stamped with master key id
    /// `mk_id` (blob bytes 1..17), in (key id, seq) order, strictly after `after`.
    async fn versions_not_under(
        &self,
        instance: InstanceId,
        mk_id: &[u8; 16],
        after: Option<(KeyId, u32)>,
        limit: u32,
    ) -> Result<Vec<SealedVersion>>;
    /// How many versions of `instance` are not stamped with `mk_id`.
    async fn count_versions_not_under(&self, instance: InstanceId, mk_id: &[u8; 16])
        -> Result<u64>;
    /// Replaces blobs that still hold their expected value, in one transaction; returns how
    /// many were replaced (a blob changed meanwhile is left alone).
    async fn replace_blobs(&self, instance: InstanceId, updates: &[BlobUpdate]) -> Result<u64>;
    /// Writes changed metadata. `key.row_version` must be the version that was read; the
    /// stored row_version becomes `key.row_version + 1`. Aliases are not changed here.
    async fn update_key(&self, key: &KeyRecord) -> Result<i64>;
    /// Adds a version and writes the metadata (which must name it as current) in one
    /// transaction, with the same concurrency rule as [`KeyStore::update_key`].
    async fn add_key_version(&self, key: &KeyRecord, version: &KeyVersionRecord) -> Result<i64>;
    /// Adds an alias to a key: `key` carries the new alias list and the row_version that was
    /// read (same rule as [`KeyStore::update_key`]). `AlreadyExists(Unique::Alias)` if taken.
    async fn add_alias(&self, key: &KeyRecord, alias: &str) -> Result<i64>;
    /// Removes an alias from a key (`key` carries the new list and the row_version read).
    async fn remove_alias(&self, key: &KeyRecord, alias: &str) -> Result<i64>;
    /// Keys whose rotation policy is enabled, of every instance, in active or deactivated
    /// state (for the rotation scheduler).
    async fn keys_with_rotation_policy(&self) -> Result<Vec<KeyRecord>>;

    /// Keys of every instance in state 1 or 2 whose expiration is at or before `now`.
    async fn keys_expired_by(&self, now: UnixMillis) -> Result<Vec<KeyRecord>>;

    /// Keys of every instance in state 5 (deleted) whose deletion is at or before `cutoff`:
    /// the keys due for automatic purging.
    async fn keys_deleted_by(&self, cutoff: UnixMillis) -> Result<Vec<KeyRecord>>;

    /// Creates a key ring. `AlreadyExists(Unique::KeyRing)` if it exists.
    async fn create_key_ring(&self, instance: InstanceId, ring: &KeyRingRecord) -> Result<()>;
    /// Lists an instance's key rings (not including the implicit `default`).
    async fn list_key_rings(&self, instance: InstanceId) -> Result<Vec<KeyRingRecord>>;
    /// Deletes a key ring. Without `force`, refused (`RingNotEmpty`) while any key is in it;
    /// with `force`, refused while a key that is not destroyed is in it, and destroyed keys
    /// move to `default`.
    async fn delete_key_ring(&self, instance: InstanceId, id: &str, force: bool) -> Result<()>;

    /// Stores the instance's import token, replacing any previous one.
    async fn put_import_token(&self, instance: InstanceId, token: &ImportTokenRecord)
        -> Result<()>;
    /// Reads the instance's import token.
    async fn get_import_token(&self, instance: InstanceId) -> Result<ImportTokenRecord>;
    /// Uses one retrieval of token `id`: `Conflict` when none is left (or the token was
    /// replaced), `NotFound` when there is no token.
    async fn take_import_token_retrieval(&self, instance: InstanceId, id: KeyId) -> Result<u32>;

    /// Writes instance policies (insert or replace each by type) in one transaction.
    async fn put_instance_policies(
        &self,
        instance: InstanceId,
        policies: &[InstancePolicyRecord],
    ) -> Result<()>;
    /// Reads an instance's policies, by type.
    async fn list_instance_policies(
        &self,
        instance: InstanceId,
    ) -> Result<Vec<InstancePolicyRecord>>;

    /// Creates or replaces a registration.
    async fn put_registration(&self, instance: InstanceId, reg: &RegistrationRecord) -> Result<()>;
    /// Deletes a registration.
    async fn delete_registration(
        &self,
        instance: InstanceId,
        key: KeyId,
        resource_crn: &str,
    ) -> Result<()>;
    /// Lists registrations of one key, or of every key of the instance.
    async fn list_registrations(
        &self,
        instance: InstanceId,
        key: Option<KeyId>,
    ) -> Result<Vec<RegistrationRecord>>;
    /// Records a `sync` of a key; `Conflict` if the previous one was after `not_after`.
    async fn mark_synced(
        &self,
        instance: InstanceId,
        key: KeyId,
        at: UnixMillis,
        not_after: UnixMillis,
    ) -> Result<()>;

    /// A feed of changes made through other nodes (and this one), for stores that several
    /// nodes share; `None` for single-node stores.
    fn changes(&self) -> Option<Box<dyn ChangeFeed>>;
    /// Takes or renews the lease of a cluster-wide background job for `lease_ms`; `false`
    /// when another holder's lease has not expired. Lets one node run each job.
    async fn claim_job(
        &self,
        job: &str,
        holder: &str,
        now: UnixMillis,
        lease_ms: i64,
    ) -> Result<bool>;

    /// Writes keys with all their versions and aliases exactly as given (restore from a
    /// backup), in one transaction: all or none. `AlreadyExists` if a key or an alias exists.
    async fn restore_keys(&self, keys: &[(KeyRecord, Vec<KeyVersionRecord>)]) -> Result<()>;

    /// Erases a key, its versions and aliases.
    async fn purge_key(
        &self,
        instance: InstanceId,
        id: KeyId,
        expected_row_version: i64,
    ) -> Result<()>;

    /// Stores an API key.
    async fn create_api_key(&self, rec: &ApiKeyRecord) -> Result<()>;
    /// Reads an API key by id.
    async fn get_api_key(&self, id: &str) -> Result<ApiKeyRecord>;
    /// Lists an instance's API keys.
    async fn list_api_keys(&self, instance: InstanceId) -> Result<Vec<ApiKeyRecord>>;
    /// Deletes an API key.
    async fn delete_api_key(&self, instance: InstanceId, id: &str) -> Result<()>;

    /// Stores a service ID.
    async fn create_service_id(&self, rec: &ServiceIdRecord) -> Result<()>;
    /// Reads a service ID.
    async fn get_service_id(&self, instance: InstanceId, id: &str) -> Result<ServiceIdRecord>;
    /// Lists an instance's service IDs.
    async fn list_service_ids(&self, instance: InstanceId) -> Result<Vec<ServiceIdRecord>>;
    /// Replaces a service ID's name, roles and key rings.
    async fn update_service_id(&self, rec: &ServiceIdRecord) -> Result<()>;
    /// Deletes a service ID and, in the same transaction, its API keys.
    async fn delete_service_id(&self, instance: InstanceId, id: &str) -> Result<()>;

    /// Appends audit records. Their `seq` must continue the stored chain without gaps
    /// (`Conflict` otherwise); the batch is durable when this returns.
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()>;
    /// The last audit record's seq and hash, if any.
    async fn audit_head(&self) -> Result<Option<(i64, [u8; 32])>>;
    /// Counts the audit records of `instance` (API calls, allowed or refused) with
    /// `from <= at < to`: the metering of an instance.
    async fn audit_usage(
        &self,
        instance: InstanceId,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<u64>;
    /// Records where a crypto unit runs (again: a unit already placed gets the zone and
    /// region given, and keeps its creation time).
    async fn put_placement(&self, rec: &PlacementRecord) -> Result<()>;
    /// Where the crypto units of `instance` run, oldest first.
    async fn list_placements(&self, instance: InstanceId) -> Result<Vec<PlacementRecord>>;
    /// The regions where any crypto unit runs, sorted.
    async fn placement_regions(&self) -> Result<Vec<String>>;
    /// Adds API call counts per crypto unit and month (summed with what is stored).
    async fn add_unit_usage(&self, counts: &[UnitUsage]) -> Result<()>;
    /// The counts of `instance` in `month` (`YYYY-MM`), by unit.
    async fn unit_usage(&self, instance: InstanceId, month: &str) -> Result<Vec<UnitUsage>>;
    /// Reads audit records with `seq >= from`, in order, at most `limit`.
    async fn read_audit(&self, from: i64, limit: u32) -> Result<Vec<AuditRecord>>;
    /// Reads the audit records of `instance` that match `q`, in `seq` order.
    async fn read_instance_audit(
        &self,
        instance: InstanceId,
        q: &AuditQuery,
    ) -> Result<Vec<AuditRecord>>;
}
