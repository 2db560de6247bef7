//! Test support, for this crate's tests and, behind the `test-support` feature, for the
//! front ends' tests: a service over a SQLite keystore in a temporary directory, crypto
//! units kept in memory, and a clock the test moves. Front ends test their adapters
//! against it in-process, without a server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_keystore::KeyStore;
use strongroom_keystore_sqlite::SqliteStore;
use strongroom_model::{InstanceId, Role, Roles, UnitId};
use zeroize::Zeroizing;

use crate::{NodeSecrets, OffsetClock, Principal, Service, ServiceConfig, UnitVault};

/// The administrator token of a test node.
pub const ADMIN_TOKEN: &str = "admin-secret";
/// The audit key of a test node.
pub const AUDIT_KEY: [u8; 32] = [7; 32];

/// Crypto unit states kept in memory.
#[derive(Default)]
pub struct MemVault(Mutex<HashMap<UnitId, Vec<u8>>>);

impl MemVault {
    /// The instances whose units the vault holds.
    pub fn instances(&self) -> Vec<InstanceId> {
        self.0
            .lock()
            .unwrap()
            .values()
            .map(|b| {
                let v: serde_json::Value = serde_json::from_slice(b).unwrap();
                v["instance"].as_str().unwrap().parse().unwrap()
            })
            .collect()
    }
}

#[async_trait]
impl UnitVault for MemVault {
    async fn save(&self, u: UnitId, state: &[u8]) -> std::io::Result<()> {
        self.0.lock().unwrap().insert(u, state.to_vec());
        Ok(())
    }
    async fn load_all(&self) -> std::io::Result<Vec<Zeroizing<Vec<u8>>>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .values()
            .map(|b| Zeroizing::new(b.clone()))
            .collect())
    }
    async fn destroy(&self, u: UnitId) -> std::io::Result<()> {
        self.0.lock().unwrap().remove(&u);
        Ok(())
    }
}

/// A service as a node runs it, in a temporary directory.
pub struct TestNode {
    /// The service.
    pub svc: Arc<Service>,
    /// Its clock.
    pub clock: Arc<OffsetClock>,
    /// Its keystore.
    pub store: Arc<dyn KeyStore>,
    /// Its crypto units.
    pub vault: Arc<MemVault>,
    _dir: tempfile::TempDir,
}

impl TestNode {
    /// A node with `config`.
    pub async fn start(config: ServiceConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn KeyStore> =
            Arc::new(SqliteStore::open(&dir.path().join("ks.db")).await.unwrap());
        let clock = Arc::new(OffsetClock::default());
        let vault = Arc::new(MemVault::default());
        let secrets = NodeSecrets {
            token_key: [1; 32],
            audit_key: AUDIT_KEY,
            admin_token: ADMIN_TOKEN.into(),
        };
        let (svc, _task) = Service::start(
            Arc::clone(&store),
            Arc::new(AwsLcProvider),
            vault.clone(),
            clock.clone(),
            secrets,
            config,
        )
        .await
        .unwrap();
        TestNode {
            svc,
            clock,
            store,
            vault,
            _dir: dir,
        }
    }

    /// A node in development mode whose audit records are committed before each answer.
    pub async fn dev() -> Self {
        Self::start(ServiceConfig {
            audit_sync_all: true,
            dev: true,
            ..Default::default()
        })
        .await
    }

    /// A development instance (its unit holds a random master key) named `name`.
    pub async fn instance(&self, name: &str) -> InstanceId {
        self.svc.ensure_dev_instance(name).await.unwrap().id
    }

    /// A bearer token for `instance` with `roles`.
    pub fn token(&self, instance: InstanceId, roles: &[Role]) -> String {
        let principal =
            Principal::instance_wide(format!("test:{}", roles.len()), instance, Roles::of(roles));
        self.svc.token_for(&principal, 3600).unwrap().access_token
    }

    /// A bearer token for `instance` with `roles` limited to the key rings `rings`.
    pub fn token_in_rings(&self, instance: InstanceId, roles: &[Role], rings: &[&str]) -> String {
        let principal = Principal {
            key_rings: Some(rings.iter().map(|r| r.to_string()).collect()),
            ..Principal::instance_wide("test:rings", instance, Roles::of(roles))
        };
        self.svc.token_for(&principal, 3600).unwrap().access_token
    }
}
