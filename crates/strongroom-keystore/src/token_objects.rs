//! PKCS#11 token objects: what the PKCS#11 library keeps in an instance's keystores
//! ("spaces", named by the library's tokenspaceIDs). The data is opaque here: a key blob
//! sealed by the instance's crypto units and the object's attributes, in the library's
//! own encoding.

use async_trait::async_trait;
use strongroom_model::{InstanceId, UnixMillis};

use crate::Result;

/// The first character of the ids of the service's own records in a keystore, which no
/// client may use and the quota does not count.
pub const CONTROL_PREFIX: char = '#';

/// One token object.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenObjectRecord {
    /// Owning instance.
    pub instance: InstanceId,
    /// The keystore (a tokenspaceID).
    pub space: String,
    /// The object's id, chosen by the library.
    pub id: String,
    /// Whether the keystore is the private one (readable by users who may write keys).
    pub private: bool,
    /// The library's encoding of the object.
    pub data: Vec<u8>,
    /// Counts the writes; a replacement names the version it read.
    pub version: i64,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Last change.
    pub updated_at: UnixMillis,
}

impl std::fmt::Debug for TokenObjectRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenObjectRecord")
            .field("instance", &self.instance)
            .field("space", &self.space)
            .field("id", &self.id)
            .field("version", &self.version)
            .field("data_len", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// Storage of token objects.
#[async_trait]
pub trait TokenObjectStore: Send + Sync {
    /// The objects of one keystore, by id.
    async fn list_token_objects(
        &self,
        instance: InstanceId,
        space: &str,
    ) -> Result<Vec<TokenObjectRecord>>;
    /// One object of a keystore (`NotFound` if there is none).
    async fn get_token_object(
        &self,
        instance: InstanceId,
        space: &str,
        id: &str,
    ) -> Result<TokenObjectRecord>;
    /// Every token object of an instance (backups).
    async fn all_token_objects(&self, instance: InstanceId) -> Result<Vec<TokenObjectRecord>>;
    /// Writes an object. With `expected` 0 it creates it (`AlreadyExists` if the id is
    /// taken, `QuotaExceeded` when the instance holds `max` objects); otherwise it
    /// replaces the object only while its version is `expected` (`Conflict`, or
    /// `NotFound`). Returns the new version. Ids that begin with [`CONTROL_PREFIX`] are the
    /// service's own records (a keystore's password verifier): the quota neither counts
    /// nor refuses them.
    async fn put_token_object(
        &self,
        rec: &TokenObjectRecord,
        expected: i64,
        max: u64,
    ) -> Result<i64>;
    /// Deletes an object (`NotFound` if there is none).
    async fn delete_token_object(&self, instance: InstanceId, space: &str, id: &str) -> Result<()>;
    /// Deletes every object of a keystore; returns how many.
    async fn clear_token_space(&self, instance: InstanceId, space: &str) -> Result<u64>;
}
