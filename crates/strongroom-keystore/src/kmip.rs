//! What the keystore holds for KMIP: adapters (an instance's KMIP endpoints, each bound to
//! a root key), the client certificates registered to them, and KMIP managed objects. An
//! object's material is stored only as the service sealed it (wrapped under the adapter's
//! root key); its attributes are the service's own encoding, opaque here.

use async_trait::async_trait;
use strongroom_model::{InstanceId, KeyId, UnixMillis};
use uuid::Uuid;

use crate::Result;

/// A KMIP adapter: one KMIP endpoint of an instance, bound to a root key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmipAdapterRecord {
    /// Owning instance.
    pub instance: InstanceId,
    /// Adapter id.
    pub id: Uuid,
    /// Unique within the instance.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Key Protect's profile name (`native_1.0`).
    pub profile: String,
    /// The root key its objects are wrapped under.
    pub crk_id: KeyId,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Who created it.
    pub created_by: String,
    /// Last change.
    pub updated_at: UnixMillis,
    /// Who changed it last.
    pub updated_by: String,
}

/// A client certificate registered to an adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmipCertificateRecord {
    /// Owning instance.
    pub instance: InstanceId,
    /// The adapter.
    pub adapter: Uuid,
    /// Certificate id.
    pub id: Uuid,
    /// Unique within the adapter.
    pub name: String,
    /// The certificate, PEM.
    pub pem: String,
    /// SHA-256 of the DER certificate, lowercase hex; unique on the node.
    pub fingerprint: String,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Who added it.
    pub created_by: String,
}

/// A KMIP managed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmipObjectRecord {
    /// Owning instance.
    pub instance: InstanceId,
    /// The adapter it was made through.
    pub adapter: Uuid,
    /// The object's Unique Identifier.
    pub id: Uuid,
    /// KMIP Object Type (its enumeration value).
    pub object_type: u32,
    /// KMIP State (1 Pre-Active … 6 Destroyed Compromised).
    pub state: u32,
    /// The first Name, for Locate.
    pub name: Option<String>,
    /// KMIP Cryptographic Algorithm, for Locate.
    pub algorithm: Option<u32>,
    /// Optimistic concurrency counter.
    pub row_version: i64,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Who created it.
    pub created_by: String,
    /// Last change.
    pub updated_at: UnixMillis,
    /// When it was destroyed.
    pub destroyed_at: Option<UnixMillis>,
    /// The attributes, in the service's encoding.
    pub attributes: Vec<u8>,
    /// The material, sealed by the service; `None` once destroyed.
    pub material: Option<Vec<u8>>,
}

/// The states of a live object (Pre-Active, Active, Deactivated, Compromised): the ones
/// the instance's key quota counts and an adapter must not hold when it is deleted.
pub const LIVE_STATES: [u32; 4] = [1, 2, 3, 4];

impl KmipObjectFilter {
    /// Every live object (see [`LIVE_STATES`]).
    pub fn live() -> Self {
        KmipObjectFilter {
            states: LIVE_STATES.to_vec(),
            ..KmipObjectFilter::default()
        }
    }
}

/// Which objects a listing wants. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KmipObjectFilter {
    /// Only this adapter's objects.
    pub adapter: Option<Uuid>,
    /// Only objects in one of these states.
    pub states: Vec<u32>,
    /// Only this object type.
    pub object_type: Option<u32>,
    /// Only objects with this first Name.
    pub name: Option<String>,
    /// Only this algorithm.
    pub algorithm: Option<u32>,
}

/// KMIP's part of the keystore. Every call is scoped by instance, except the certificate
/// lookup that authenticates a connection.
#[async_trait]
pub trait KmipStore: Send + Sync {
    /// Creates an adapter unless the instance holds `max` already (`QuotaExceeded`) or
    /// the name is taken (`AlreadyExists(KmipAdapter)`).
    async fn create_kmip_adapter(&self, a: &KmipAdapterRecord, max: u32) -> Result<()>;
    /// The instance's adapters, oldest first.
    async fn list_kmip_adapters(&self, instance: InstanceId) -> Result<Vec<KmipAdapterRecord>>;
    /// Deletes an adapter and its certificates. Refused with `AdapterNotEmpty` while it
    /// holds objects that are not destroyed.
    async fn delete_kmip_adapter(&self, instance: InstanceId, id: Uuid) -> Result<()>;
    /// Registers a certificate unless the adapter holds `max` already or the name or the
    /// certificate is taken.
    async fn add_kmip_certificate(&self, c: &KmipCertificateRecord, max: u32) -> Result<()>;
    /// An adapter's certificates, oldest first.
    async fn list_kmip_certificates(
        &self,
        instance: InstanceId,
        adapter: Uuid,
    ) -> Result<Vec<KmipCertificateRecord>>;
    /// Removes a certificate.
    async fn delete_kmip_certificate(
        &self,
        instance: InstanceId,
        adapter: Uuid,
        id: Uuid,
    ) -> Result<()>;
    /// The certificate with this fingerprint, in any instance (authenticates a connection).
    async fn kmip_certificate_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<KmipCertificateRecord>;
    /// The fingerprints of every registered certificate on the node (what the KMIP
    /// listener admits at the TLS handshake).
    async fn kmip_fingerprints(&self) -> Result<Vec<String>>;
    /// Reads an object.
    async fn get_kmip_object(&self, instance: InstanceId, id: Uuid) -> Result<KmipObjectRecord>;
    /// Replaces an object if its stored `row_version` is `o.row_version`; returns the new
    /// one. `Conflict` if it changed, `NotFound` if it is gone.
    async fn update_kmip_object(&self, o: &KmipObjectRecord) -> Result<i64>;
    /// Stores the `new` objects and replaces the `replaced` ones (each if its stored
    /// `row_version` is the one given) in one transaction: all of them or none.
    /// - The new objects must fit beside the instance's live objects within `max_live`
    ///   (`u64::MAX` for no bound), else `QuotaExceeded(max_live)`. The count is part of
    ///   the transaction: concurrent writers cannot both pass it.
    /// - An object of `new` that exists is `AlreadyExists(KmipObject)`.
    /// - An object of `replaced` that changed is `Conflict`, one that is gone `NotFound`.
    async fn write_kmip_objects(
        &self,
        new: &[KmipObjectRecord],
        replaced: &[KmipObjectRecord],
        max_live: u64,
    ) -> Result<()>;
    /// Objects matching `filter`, oldest first, from `offset`, at most `limit`.
    async fn list_kmip_objects(
        &self,
        instance: InstanceId,
        filter: &KmipObjectFilter,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<KmipObjectRecord>>;
    /// How many objects match `filter`.
    async fn count_kmip_objects(
        &self,
        instance: InstanceId,
        filter: &KmipObjectFilter,
    ) -> Result<u64>;
}
