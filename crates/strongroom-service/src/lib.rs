//! The service core: instances and their crypto units, keys and versions, lifecycle rules,
//! access control and audit. Front ends (REST, later gRPC and KMIP) are thin adapters over
//! [`Service`]; they convert protocol types and map [`ErrorKind`] in one table each.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod action;
pub mod activity;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod backups;
mod cache;
pub mod clock;
mod credentials;
mod crypto_ops;
pub mod error;
mod import;
mod instance_policies;
mod instances;
mod keys;
pub mod kmip;
mod lifecycle;
mod mutation;
mod placement;
mod policies;
mod registrations;
mod rings;
mod search;
mod service_ids;
#[cfg(any(test, feature = "test-support", feature = "test-memory"))]
pub mod testing;
pub mod text;
pub mod token_objects;
mod units;
pub mod views;
mod wrapping;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use strongroom_engine::{CryptoProvider, CryptoUnit};
use strongroom_keystore::KeyStore;
use strongroom_model::{InstanceId, Role, Roles, UnitId, UnixMillis};

pub use action::Action;
pub use activity::{ActivityEvent, ActivityQuery, MAX_ACTIVITY_PAGE};
pub use audit::{verify_chain, AuditEvent, Outcome, VerifyReport};
pub use auth::{Ctx, Principal, TokenSigner};
pub use clock::{Clock, OffsetClock, SystemClock};
pub use crypto_ops::{Ep11Cost, MAX_DATA, MAX_RANDOM};
pub use error::{ErrorKind, Result, ServiceError, StatusClass};
pub use import::*;
pub use instance_policies::*;
pub use instances::{AdminCtx, ApiKeyCreated, InstanceUsage, IssuedToken};
pub use keys::*;
pub use placement::{Placement, UnitPlacement, RECOVERY_UNITS_WANTED};
pub use policies::*;
pub use registrations::*;
pub use rings::*;
pub use search::*;
pub use strongroom_engine::admin::{SignedCommand, SignedResponse, UnitKind};
pub use strongroom_engine::DigestAlg;
pub use strongroom_engine::OaepHash;
pub use units::*;
pub use views::*;

/// Where a node keeps the state of the crypto units it hosts, sealed at rest (the server
/// seals it under the node's unit-seal key). Never in the shared keystore.
#[async_trait]
pub trait UnitVault: Send + Sync + 'static {
    /// Persists a unit's state (the engine's persisted bytes), durably, before returning.
    async fn save(&self, unit: UnitId, state: &[u8]) -> std::io::Result<()>;
    /// Every unit state this node holds.
    async fn load_all(&self) -> std::io::Result<Vec<zeroize::Zeroizing<Vec<u8>>>>;
    /// Destroys a unit's state (crypto-shredding every blob sealed under its keys, once no
    /// other unit holds them).
    async fn destroy(&self, unit: UnitId) -> std::io::Result<()>;
}

/// Operational counters of this node, for metrics.
#[derive(Default)]
pub(crate) struct Stats {
    pub cache_hits: std::sync::atomic::AtomicU64,
    pub cache_misses: std::sync::atomic::AtomicU64,
    pub reencrypted: std::sync::atomic::AtomicU64,
    pub reencrypt_remaining: std::sync::atomic::AtomicU64,
    pub last_backup_ms: std::sync::atomic::AtomicI64,
    pub last_backup_keys: std::sync::atomic::AtomicU64,
}

/// What one run of the background jobs did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobsRun {
    /// Keys rotated by their rotation policy.
    pub rotated: usize,
    /// Keys moved to state 3 at their expiration date.
    pub expired: usize,
    /// Deleted keys purged at their `purgeScheduledOn`.
    pub purged: usize,
    /// KMIP objects whose Activation or Deactivation Date came, written in their new state.
    pub kmip_dates: usize,
}

/// A snapshot of this node's operational counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpsStats {
    /// Key loads answered from the cache of unwrapped keys.
    pub cache_hits: u64,
    /// Key loads that read and opened the key from the keystore.
    pub cache_misses: u64,
    /// Key blobs re-encrypted under a new master key by this node.
    pub reencrypted: u64,
    /// Blobs still to re-encrypt, as of this node's last re-encryption batch.
    pub reencrypt_remaining: u64,
    /// When this node last wrote a scheduled backup (Unix ms; 0: never).
    pub last_backup_ms: i64,
    /// Keys in that backup.
    pub last_backup_keys: u64,
}

/// The calendar month (UTC) of a time, `YYYY-MM`.
pub fn month_of(t: UnixMillis) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t.0.div_euclid(1000)) {
        Ok(d) => format!("{:04}-{:02}", d.year(), u8::from(d.month())),
        Err(_) => "0000-00".into(),
    }
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Maximum number of keys whose material is kept unwrapped in memory.
    pub key_cache_capacity: usize,
    /// Lifetime of tokens issued at `/identity/token`, in seconds.
    pub token_ttl_secs: i64,
    /// Wait for the audit commit on every request, not only on those that change state.
    pub audit_sync_all: bool,
    /// Most keys (in any state) an instance may hold; `None` for no limit.
    pub max_keys_per_instance: Option<u64>,
    /// Requests per second one instance may make on this node (bursts up to twice that);
    /// `None` for no limit.
    pub rate_limit_per_instance: Option<u32>,
    /// Development mode: instances may be created with a random master key (no ceremony).
    pub dev: bool,
    /// This node's availability zone (`serve --zone`), shown with its crypto units.
    pub zone: Option<String>,
    /// This node's region (`serve --region`).
    pub region: Option<String>,
    /// Whether `CKM_RSA_PKCS` decrypts and unwraps (`serve --rsa-pkcs1-decryption`).
    pub rsa_pkcs1_decryption: bool,
    /// Offer and serve only what FIPS 140-3 approves, even when the crypto provider is not a
    /// FIPS build (`serve --fips-policy`; a FIPS build always does).
    pub fips_policy: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            key_cache_capacity: 10_000,
            token_ttl_secs: 3600,
            audit_sync_all: false,
            max_keys_per_instance: None,
            rate_limit_per_instance: None,
            dev: false,
            zone: None,
            region: None,
            rsa_pkcs1_decryption: true,
            fips_policy: false,
        }
    }
}

/// Secrets of the node, derived from its node key by the server.
pub struct NodeSecrets {
    /// Signs bearer tokens.
    pub token_key: [u8; 32],
    /// Keys the audit chain.
    pub audit_key: [u8; 32],
    /// The node administrator token (service-administrator API).
    pub admin_token: String,
}

/// The service. Cheap to share behind an `Arc`.
pub struct Service {
    store: Arc<dyn KeyStore>,
    provider: Arc<dyn CryptoProvider>,
    vault: Arc<dyn UnitVault>,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
    units: RwLock<HashMap<InstanceId, Arc<CryptoUnit>>>,
    /// The crypto units this node hosts (administrative state); one command at a time.
    hosted: tokio::sync::Mutex<units::Hosted>,
    /// The unit serving each instance on this node, with its API call counter.
    serving: RwLock<HashMap<InstanceId, (UnitId, Arc<std::sync::atomic::AtomicU64>)>>,
    /// Operational counters (metrics).
    stats: Stats,
    /// API call counters per (instance, unit) not yet added to the keystore.
    unit_calls: std::sync::Mutex<HashMap<(InstanceId, UnitId), Arc<std::sync::atomic::AtomicU64>>>,
    cache: cache::KeyCache,
    tokens: TokenSigner,
    /// What this node last read of the credentials behind tokens.
    credentials: credentials::Credentials,
    audit: audit::AuditLog,
    admin_token: zeroize::Zeroizing<String>,
    instance_policies: RwLock<HashMap<InstanceId, Arc<instance_policies::Effective>>>,
    /// Whether any instance of this node has an allowedIP policy (skips the check if not).
    allowed_ip_in_use: std::sync::atomic::AtomicBool,
    /// Token buckets of the per-instance rate limit: (tokens, last refill).
    buckets: std::sync::Mutex<HashMap<InstanceId, (f64, std::time::Instant)>>,
    /// Opened KMIP objects (Get and the cryptographic operations read them here).
    kmip_cache: kmip::KmipCache,
    /// Woken when a KMIP client certificate is added or removed on this node.
    kmip_certificates_changed: Arc<tokio::sync::Notify>,
    /// Where this node writes its backups (`serve --backup-dir`), for the backup list.
    backup_catalog: std::sync::OnceLock<Arc<dyn backups::BackupCatalog>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("store", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Whether the crypto provider runs a FIPS 140 module in its approved mode.
    pub fn fips_mode(&self) -> bool {
        self.provider.fips_mode()
    }

    /// Starts the service: runs the crypto self-tests, loads every instance's master key
    /// from the vault, and starts the audit writer (whose task is returned; it ends after
    /// the last `Service` reference is dropped, having flushed every record).
    pub async fn start(
        store: Arc<dyn KeyStore>,
        provider: Arc<dyn CryptoProvider>,
        vault: Arc<dyn UnitVault>,
        clock: Arc<dyn Clock>,
        secrets: NodeSecrets,
        config: ServiceConfig,
    ) -> Result<(Arc<Service>, tokio::task::JoinHandle<()>)> {
        strongroom_engine::run_self_tests(provider.as_ref()).map_err(|e| {
            tracing::error!(error = %e, "crypto self-test failed; refusing to serve");
            ServiceError::new(ErrorKind::Internal, format!("crypto self-test failed: {e}"))
        })?;
        tracing::info!(
            provider = provider.name(),
            fips = provider.fips_mode(),
            fips_policy = config.fips_policy || provider.fips_mode(),
            "crypto self-tests passed"
        );
        let (audit, handle) = audit::AuditLog::start(
            Arc::clone(&store),
            Arc::clone(&provider),
            zeroize::Zeroizing::new(secrets.audit_key),
            Arc::clone(&clock),
        )
        .await?;
        let kmip_capacity = config.key_cache_capacity;
        let svc = Service {
            cache: cache::KeyCache::new(config.key_cache_capacity),
            store,
            provider,
            vault,
            clock,
            config,
            units: RwLock::new(HashMap::new()),
            hosted: tokio::sync::Mutex::new(Default::default()),
            serving: RwLock::new(HashMap::new()),
            stats: Stats::default(),
            unit_calls: std::sync::Mutex::new(HashMap::new()),
            tokens: TokenSigner::new(secrets.token_key),
            credentials: Default::default(),
            audit,
            admin_token: zeroize::Zeroizing::new(secrets.admin_token),
            instance_policies: RwLock::new(HashMap::new()),
            allowed_ip_in_use: std::sync::atomic::AtomicBool::new(false),
            buckets: std::sync::Mutex::new(HashMap::new()),
            kmip_cache: kmip::KmipCache::new(kmip_capacity),
            kmip_certificates_changed: Arc::new(tokio::sync::Notify::new()),
            backup_catalog: std::sync::OnceLock::new(),
        };
        let svc = Arc::new(svc);
        if let Some(mut feed) = svc.store.changes() {
            // Another node changed something: drop what this node cached about it.
            let weak = Arc::downgrade(&svc);
            tokio::spawn(async move {
                while let Some(change) = feed.next().await {
                    let Some(svc) = weak.upgrade() else { break };
                    match change {
                        strongroom_keystore::Change::Key(i, k) => svc.cache.remove(&(i, k)),
                        strongroom_keystore::Change::KmipObject(i, o) => {
                            svc.kmip_cache.remove(&(i, o))
                        }
                        strongroom_keystore::Change::Instance(i) => {
                            svc.kmip_cache.clear(Some(i));
                            if let Ok(mut m) = svc.instance_policies.write() {
                                m.remove(&i);
                            }
                            svc.spawn_shredding(Some(i));
                            // Another node may have set an allowedIP policy: look it up
                            // on the next request instead of trusting this node's flag.
                            svc.allowed_ip_in_use
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        strongroom_keystore::Change::Credentials(i) => {
                            svc.credentials.forget(Some(i))
                        }
                        strongroom_keystore::Change::All => {
                            svc.credentials.forget(None);
                            svc.cache.clear();
                            svc.kmip_cache.clear(None);
                            if let Ok(mut m) = svc.instance_policies.write() {
                                m.clear();
                            }
                            svc.spawn_shredding(None);
                            svc.allowed_ip_in_use
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        svc.load_units().await?;
        // Instances deleted while this node was down lose their units here too.
        svc.shred_deleted_instances(None).await?;
        {
            // Per-unit API call counts reach the keystore every few seconds.
            let weak = Arc::downgrade(&svc);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    let Some(svc) = weak.upgrade() else { break };
                    if let Err(e) = svc.flush_unit_usage().await {
                        tracing::warn!(error = %e, "per-unit usage counts not written yet; retrying");
                    }
                }
            });
        }
        for inst in svc.store.list_instances().await? {
            // Loads instance policies, so that allowedIP applies from the first request.
            svc.effective_policies(inst.id).await?;
        }
        Ok((svc, handle))
    }

    /// Runs the cluster-wide background jobs (rotation policies, expiration, purges, KMIP
    /// dates) if this node holds their lease; with several nodes on one keystore, one node
    /// runs each job.
    pub async fn run_background_jobs(&self, node: &str, lease_ms: i64) -> Result<JobsRun> {
        let now = self.clock.now();
        let rotated = if self
            .store
            .claim_job("rotation-policies", node, now, lease_ms)
            .await?
        {
            self.rotate_due_keys().await?
        } else {
            0
        };
        let expired = if self
            .store
            .claim_job("expiration", node, now, lease_ms)
            .await?
        {
            self.deactivate_expired_keys().await?
        } else {
            0
        };
        let purged = if self.store.claim_job("purge", node, now, lease_ms).await? {
            self.purge_due_keys().await?
        } else {
            0
        };
        let kmip_dates = if self
            .store
            .claim_job("kmip-dates", node, now, lease_ms)
            .await?
        {
            self.apply_kmip_dates().await?
        } else {
            0
        };
        Ok(JobsRun {
            rotated,
            expired,
            purged,
            kmip_dates,
        })
    }

    /// Shreds this node's units of deleted instances in the background (the change feed's
    /// task must not wait on the keystore).
    fn spawn_shredding(self: &Arc<Self>, only: Option<InstanceId>) {
        let svc = Arc::downgrade(self);
        tokio::spawn(async move {
            let Some(svc) = svc.upgrade() else { return };
            if let Err(e) = svc.shred_deleted_instances(only).await {
                tracing::error!(error = %e, "cannot check for deleted instances; retried on the next change");
            }
        });
    }

    /// The keystore (for readiness checks).
    pub async fn ready(&self) -> Result<()> {
        self.store.ping().await.map_err(ServiceError::from)
    }

    /// Whether this node can serve `instance` now: the keystore answers and one of its
    /// operational crypto units holds the instance's current master key.
    pub async fn ready_for(&self, instance: InstanceId) -> Result<()> {
        self.ready().await?;
        self.unit(instance).map(drop)
    }

    /// This node's zone and region, as configured.
    pub fn placement(&self) -> (Option<&str>, Option<&str>) {
        (self.config.zone.as_deref(), self.config.region.as_deref())
    }

    /// What this node offers of the mechanism table, and so what it refuses: PKCS#1 v1.5
    /// decryption as configured, and only FIPS-approved uses in FIPS mode or under
    /// `--fips-policy`.
    pub fn mechanism_policy(&self) -> strongroom_engine::ep11::MechanismPolicy {
        strongroom_engine::ep11::MechanismPolicy {
            rsa_pkcs1_decryption: self.config.rsa_pkcs1_decryption,
            fips: self.config.fips_policy || self.fips_mode(),
        }
    }

    /// Now, by the service clock.
    pub fn now(&self) -> UnixMillis {
        self.clock.now()
    }

    /// This node's operational counters.
    pub fn ops_stats(&self) -> OpsStats {
        use std::sync::atomic::Ordering::Relaxed;
        OpsStats {
            cache_hits: self.stats.cache_hits.load(Relaxed),
            cache_misses: self.stats.cache_misses.load(Relaxed),
            reencrypted: self.stats.reencrypted.load(Relaxed),
            reencrypt_remaining: self.stats.reencrypt_remaining.load(Relaxed),
            last_backup_ms: self.stats.last_backup_ms.load(Relaxed),
            last_backup_keys: self.stats.last_backup_keys.load(Relaxed),
        }
    }

    /// Records a scheduled backup written by this node (metrics).
    pub fn record_backup(&self, keys: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.stats.last_backup_ms.store(self.clock.now().0, Relaxed);
        self.stats.last_backup_keys.store(keys, Relaxed);
    }

    /// Number of keys currently held unwrapped in memory.
    pub fn cached_keys(&self) -> usize {
        self.cache.len()
    }

    pub(crate) fn unit(&self, instance: InstanceId) -> Result<Arc<CryptoUnit>> {
        self.units
            .read()
            .ok()
            .and_then(|u| u.get(&instance).cloned())
            .ok_or_else(|| {
                ServiceError::new(
                    ErrorKind::UnitNotInitialized,
                    "crypto unit not initialized: the instance has no master key loaded",
                )
            })
    }

    /// Authenticates a bearer token for a request naming `instance`, recording denials in
    /// the audit log. `instance_header` is the raw header value.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        instance_header: Option<&str>,
        correlation_id: String,
        action: Action,
    ) -> Result<Ctx> {
        self.authenticate_with(authorization, instance_header, correlation_id, action, true)
            .await
    }

    /// As [`Service::authenticate`]; with `instance_required` false, a request without an
    /// instance header is for the instance its token names (GREP11 clients stopped sending
    /// `bluemix-instance` in 2021).
    pub async fn authenticate_with(
        &self,
        authorization: Option<&str>,
        instance_header: Option<&str>,
        correlation_id: String,
        action: Action,
        instance_required: bool,
    ) -> Result<Ctx> {
        let (mut principal, instance) =
            match self.authenticate_inner(authorization, instance_header, instance_required) {
                Ok(p) => p,
                Err(e) => {
                    let instance = instance_header.and_then(|h| h.trim().parse().ok());
                    self.audit_failure(instance, "anonymous", action, None, &e, &correlation_id)
                        .await?;
                    return Err(e);
                }
            };
        // The token is genuine: a refusal now (its API key deleted) names who it was.
        if let Err(e) = self.as_credential_stands(&mut principal, instance).await {
            self.audit_failure(
                Some(instance),
                &principal.subject,
                action,
                None,
                &e,
                &correlation_id,
            )
            .await?;
            return Err(e);
        }
        Ok(Ctx {
            principal,
            instance,
            correlation_id,
        })
    }

    fn authenticate_inner(
        &self,
        authorization: Option<&str>,
        instance_header: Option<&str>,
        instance_required: bool,
    ) -> Result<(Principal, InstanceId)> {
        let Some(auth) = authorization else {
            return Err(ServiceError::new(
                ErrorKind::Unauthenticated,
                "no Authorization header: send 'Authorization: Bearer <token>'",
            ));
        };
        let token = auth.trim();
        let token = token
            .strip_prefix("Bearer ")
            .or_else(|| token.strip_prefix("bearer "))
            .unwrap_or(token)
            .trim();
        let principal = self
            .tokens
            .verify(self.provider.as_ref(), token, self.clock.now())?;
        let instance_header = match (instance_header, instance_required) {
            (None, false) => {
                let i = principal.instance.ok_or_else(|| {
                    ServiceError::new(
                        ErrorKind::Forbidden,
                        "The user does not have access to the specified resource",
                    )
                })?;
                self.take_rate_token(i)?;
                return Ok((principal, i));
            }
            (h, _) => h,
        };
        let instance: InstanceId = instance_header
            .ok_or_else(|| {
                ServiceError::new(
                    ErrorKind::InvalidInstanceHeader,
                    "Request requires valid Bluemix-Instance Header containing a valid UUID",
                )
            })?
            .trim()
            .parse()
            .map_err(|_| {
                ServiceError::new(
                    ErrorKind::InvalidInstanceHeader,
                    "Request requires valid Bluemix-Instance Header containing a valid UUID",
                )
            })?;
        if principal.instance != Some(instance) {
            return Err(ServiceError::new(
                ErrorKind::Forbidden,
                "The user does not have access to the specified resource",
            ));
        }
        self.take_rate_token(instance)?;
        Ok((principal, instance))
    }

    /// Takes one request from the instance's token bucket (per node).
    pub(crate) fn take_rate_token(&self, instance: InstanceId) -> Result<()> {
        let Some(rate) = self.config.rate_limit_per_instance else {
            return Ok(());
        };
        let rate = f64::from(rate.max(1));
        let burst = rate * 2.0;
        let now = std::time::Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let (tokens, last) = buckets.entry(instance).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens < 1.0 {
            return Err(ServiceError::new(ErrorKind::RateLimited, format!("The instance exceeds its rate limit of {rate} requests per second; retry later")));
        }
        *tokens -= 1.0;
        Ok(())
    }

    /// Checks that the caller's roles grant `needed`, and that a caller limited to key
    /// rings takes only an action on keys.
    pub(crate) fn require(&self, ctx: &Ctx, action: Action, needed: Role) -> Result<()> {
        if !ctx.principal.roles.grants(needed) {
            return Err(ServiceError::new(
                ErrorKind::Forbidden,
                format!("The user does not have access to the specified resource: the action needs the {} role", needed.name()),
            ));
        }
        if ctx.principal.key_rings.is_some() && !action.within_key_rings() {
            return Err(ServiceError::new(
                ErrorKind::Forbidden,
                format!("The user does not have access to the specified resource: the user's access is limited to key rings, and {action} needs access to the whole instance"),
            ));
        }
        Ok(())
    }

    /// Checks that a caller limited to key rings may reach keys of `ring`.
    pub(crate) fn require_key_ring(&self, ctx: &Ctx, ring: &str) -> Result<()> {
        match &ctx.principal.key_rings {
            Some(rings) if !rings.iter().any(|r| r == ring) => Err(ServiceError::new(
                ErrorKind::Forbidden,
                format!("The user does not have access to the specified resource: the user's access does not include key ring '{ring}'"),
            )),
            _ => Ok(()),
        }
    }

    pub(crate) async fn audit_failure(
        &self,
        instance: Option<InstanceId>,
        principal: &str,
        action: Action,
        key: Option<String>,
        e: &ServiceError,
        correlation_id: &str,
    ) -> Result<()> {
        // A refused request changed nothing: its record need not be committed first.
        let wait = self.config.audit_sync_all;
        self.audit
            .record(
                AuditEvent {
                    instance,
                    principal: principal.to_string(),
                    action,
                    key,
                    outcome: Outcome::Failed(e.kind),
                    correlation_id: correlation_id.to_string(),
                },
                wait,
            )
            .await
    }

    /// Runs `op` for `ctx` after checking `role`, and records the outcome in the audit log.
    /// The caller sees the operation's result only once its audit record is durable.
    pub(crate) async fn audited<T, F>(
        &self,
        ctx: &Ctx,
        action: Action,
        role: Role,
        key: Option<&str>,
        op: F,
    ) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let result = match self.require(ctx, action, role) {
            Ok(()) => op.await,
            Err(e) => Err(e),
        };
        self.count_unit_call(ctx.instance);
        let outcome = Outcome::of(&result);
        let wait = self.config.audit_sync_all || (result.is_ok() && action.waits_for_commit());
        self.audit
            .record(
                AuditEvent {
                    instance: Some(ctx.instance),
                    principal: ctx.principal.subject.clone(),
                    action,
                    key: key.map(String::from),
                    outcome,
                    correlation_id: ctx.correlation_id.clone(),
                },
                wait,
            )
            .await?;
        result
    }

    /// Records a request that a front end refused before it reached the service (bad
    /// input), and returns the error to answer with (or the audit failure, if the record
    /// could not be written).
    pub async fn record_rejected(
        &self,
        ctx: &Ctx,
        action: Action,
        key: Option<&str>,
        e: ServiceError,
    ) -> ServiceError {
        match self
            .audit_failure(
                Some(ctx.instance),
                &ctx.principal.subject,
                action,
                key.map(String::from),
                &e,
                &ctx.correlation_id,
            )
            .await
        {
            Ok(()) => e,
            Err(audit_err) => audit_err,
        }
    }

    /// The roles a dev-mode token carries.
    pub fn dev_roles() -> Roles {
        Roles::of(&[Role::Manager])
    }
}

#[cfg(test)]
mod tests;
