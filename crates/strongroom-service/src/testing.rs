//! Test support, for this crate's tests and, behind features, for the front ends' tests: a
//! service with crypto units kept in memory and a clock the test moves, over
//! - `test-support`: a SQLite keystore in a temporary directory and the production
//!   crypto provider (aws-lc), as a node runs ([`TestNode::start`]);
//! - `test-memory`: the in-memory keystore and the RustCrypto test provider, so that a
//!   test of service or adapter logic builds neither SQLite nor aws-lc
//!   ([`TestNode::in_memory`]).
//!
//! Front ends test their adapters against it in-process, without a server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use strongroom_engine::provider::CryptoProvider;
use strongroom_keystore::KeyStore;
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
    /// What the keystore needs kept until the node is dropped (its temporary directory).
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

impl TestNode {
    /// A node with `config` over SQLite in a temporary directory and aws-lc.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn start(config: ServiceConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = strongroom_keystore_sqlite::SqliteStore::open(&dir.path().join("ks.db"))
            .await
            .unwrap();
        let provider = Arc::new(strongroom_crypto_awslc::AwsLcProvider);
        Self::start_with(Arc::new(store), provider, config, Box::new(dir)).await
    }

    /// A node with `config` over the in-memory keystore and the test provider: neither
    /// SQLite nor aws-lc. Mechanisms the test provider lacks (RSA, ECDSA, …) fail.
    #[cfg(any(test, feature = "test-memory"))]
    pub async fn in_memory(config: ServiceConfig) -> Self {
        let store = Arc::new(strongroom_keystore::MemoryStore::new());
        let provider = Arc::new(strongroom_engine::test_provider::TestProvider);
        Self::start_with(store, provider, config, Box::new(())).await
    }

    /// [`TestNode::dev`] over the in-memory keystore and the test provider.
    #[cfg(any(test, feature = "test-memory"))]
    pub async fn dev_in_memory() -> Self {
        Self::in_memory(Self::dev_config()).await
    }

    async fn start_with(
        store: Arc<dyn KeyStore>,
        provider: Arc<dyn CryptoProvider>,
        config: ServiceConfig,
        keep: Box<dyn std::any::Any + Send + Sync>,
    ) -> Self {
        let clock = Arc::new(OffsetClock::default());
        let vault = Arc::new(MemVault::default());
        let secrets = NodeSecrets {
            token_key: [1; 32],
            audit_key: AUDIT_KEY,
            admin_token: ADMIN_TOKEN.into(),
        };
        let (svc, _task) = Service::start(
            Arc::clone(&store),
            provider,
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
            _keep: keep,
        }
    }

    /// Development mode, with audit records committed before each answer.
    fn dev_config() -> ServiceConfig {
        ServiceConfig {
            audit_sync_all: true,
            dev: true,
            ..Default::default()
        }
    }

    /// A node in development mode (SQLite and aws-lc) whose audit records are committed
    /// before each answer.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn dev() -> Self {
        Self::start(Self::dev_config()).await
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
