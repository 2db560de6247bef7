//! Crypto units hosted by this node: their administrative state (persisted through the
//! [`UnitVault`](crate::UnitVault), sealed under the node's key), the signed command API the
//! `strongroom tke` commands drive, the data-plane unit each instance serves from, and the
//! online re-encryption of an instance's key blobs during a master key rotation.

use crate::action::Action;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use strongroom_engine::admin::{
    Cmd, CommandBody, RefusalKind, SignedCommand, SignedResponse, UnitKind, UnitState,
};
use strongroom_engine::{BlobBinding, MasterKey};
use strongroom_keystore::BlobUpdate;
use strongroom_model::{InstanceId, Role, UnitId};
use zeroize::Zeroizing;

use crate::{Ctx, ErrorKind, Result, Service, ServiceError};

/// Most operational units of one instance on one node.
pub const MAX_OPERATIONAL_UNITS: usize = 3;
/// Most recovery units of one instance on one node.
pub const MAX_RECOVERY_UNITS: usize = 2;

/// The units an instance is created with on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitLayout {
    /// Operational units (1–3).
    pub operational: u8,
    /// Recovery units (0–2).
    pub recovery: u8,
    /// Development only: one operational unit holding a random master key, no ceremony.
    pub dev_master_key: bool,
    /// Accept several operational units on this one node (one zone): they fail together,
    /// so this is for test set-ups; in production each node adds its own unit.
    pub allow_same_zone: bool,
}

impl UnitLayout {
    /// One operational unit in imprint mode, awaiting its ceremony.
    pub fn ceremony(operational: u8, recovery: u8) -> Self {
        UnitLayout {
            operational,
            recovery,
            dev_master_key: false,
            allow_same_zone: false,
        }
    }
    /// The `serve --dev` layout.
    pub fn dev() -> Self {
        UnitLayout {
            operational: 1,
            recovery: 0,
            dev_master_key: true,
            allow_same_zone: false,
        }
    }
}

/// Progress of re-encrypting an instance's key blobs under the new master key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reencryption {
    /// Blobs re-encrypted by this call.
    pub rewrapped: u64,
    /// Blobs still sealed under another master key.
    pub remaining: u64,
    /// Blobs sealed under a master key this unit does not hold (cannot be re-encrypted).
    pub unreadable: u64,
}

fn refusal(r: strongroom_engine::admin::Refusal) -> ServiceError {
    let kind = match r.kind {
        RefusalKind::Malformed => ErrorKind::UnitCommandMalformed,
        RefusalKind::WrongTarget | RefusalKind::Replay => ErrorKind::UnitReplay,
        RefusalKind::Signatures => ErrorKind::UnitSignatures,
        RefusalKind::State => ErrorKind::UnitState,
        RefusalKind::Roster => ErrorKind::UnitRoster,
    };
    ServiceError::new(kind, r.message)
}

fn unit_not_found(unit: UnitId) -> ServiceError {
    ServiceError::new(
        ErrorKind::UnitNotFound,
        format!("crypto unit {unit} is not hosted by this node for this instance"),
    )
}

fn internal(what: &str) -> ServiceError {
    ServiceError::new(ErrorKind::Internal, what.to_string())
}

/// The hosted units, by id.
pub(crate) type Hosted = BTreeMap<UnitId, UnitState>;

impl Service {
    /// Loads every unit this node hosts and builds the data planes.
    pub(crate) async fn load_units(&self) -> Result<()> {
        let stored = self.vault.load_all().await.map_err(|e| {
            tracing::error!(error = %e, "cannot read the crypto unit states");
            ServiceError::new(ErrorKind::Unavailable, "cannot read the crypto unit states")
        })?;
        let mut hosted = self.hosted.lock().await;
        for bytes in stored {
            let u = UnitState::from_persisted(self.provider.as_ref(), &bytes).map_err(|e| {
                tracing::error!(error = %e, "a crypto unit state cannot be decoded");
                ServiceError::new(ErrorKind::Internal, format!("crypto unit state: {e}"))
            })?;
            tracing::info!(unit = %u.id(), instance = %u.instance(), kind = ?u.kind(), mode = ?u.mode(), current = ?u.current_vp().map(|v| v.mk_id()), "crypto unit loaded");
            hosted.insert(u.id(), u);
        }
        let instances: Vec<InstanceId> = hosted.values().map(|u| u.instance()).collect();
        for i in instances {
            self.refresh_data_plane(&hosted, i)?;
        }
        let units: Vec<(InstanceId, UnitId, bool)> = hosted
            .values()
            .map(|u| (u.instance(), u.id(), u.kind() == UnitKind::Recovery))
            .collect();
        drop(hosted);
        self.replace_hosted(&units).await;
        Ok(())
    }

    /// Records again where this node's units run, as it is configured now: units created
    /// before placements were kept, a node given another zone, a keystore restored from a
    /// backup. Units of instances that no longer exist are left out. Best effort: a
    /// keystore that cannot be written now is tried again at the next start.
    async fn replace_hosted(&self, units: &[(InstanceId, UnitId, bool)]) {
        for &(instance, unit, recovery) in units {
            match self.store.get_instance(instance).await {
                Ok(_) => {}
                Err(strongroom_keystore::StoreError::NotFound) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record where this node's crypto units run");
                    return;
                }
            }
            if let Err(e) = self.place(instance, &[(unit, recovery)]).await {
                tracing::warn!(error = %e.message, "cannot record where this node's crypto units run");
                return;
            }
        }
    }

    /// Rebuilds the data-plane unit of `instance` from the hosted units: an operational
    /// unit with a valid current register, preferring one that is rotating (it reads both
    /// keys and seals under the new one).
    pub(crate) fn refresh_data_plane(&self, hosted: &Hosted, instance: InstanceId) -> Result<()> {
        let best = hosted
            .values()
            .filter(|u| u.instance() == instance && u.kind() == UnitKind::Operational)
            .filter(|u| u.current_vp().is_some())
            .max_by_key(|u| (u.rotating(), u.new_vp().is_some_and(|(_, c)| c)));
        let unit = match best {
            Some(u) => u
                .data_plane(Arc::clone(&self.provider))
                .map_err(|e| internal(&format!("crypto unit start failed: {e}")))?
                .map(|mut unit| {
                    if !self.config.rsa_pkcs1_decryption {
                        unit.refuse_rsa_pkcs1_decryption();
                    }
                    if self.config.fips_policy {
                        unit.enforce_fips_policy();
                    }
                    unit
                }),
            None => None,
        };
        let serving_id = best.map(|u| u.id());
        if let Ok(mut serving) = self.serving.write() {
            match serving_id {
                Some(id) => {
                    let counter = self
                        .unit_calls
                        .lock()
                        .map(|mut c| Arc::clone(c.entry((instance, id)).or_default()))
                        .unwrap_or_default();
                    serving.insert(instance, (id, counter));
                }
                None => {
                    serving.remove(&instance);
                }
            }
        }
        if let Ok(mut units) = self.units.write() {
            match unit {
                Some(u) => {
                    tracing::info!(%instance, serving = ?u.current_mk_id(), sealing = ?u.sealing_mk_id(), "crypto unit data plane ready");
                    units.insert(instance, Arc::new(u));
                }
                None => {
                    units.remove(&instance);
                }
            }
        }
        Ok(())
    }

    async fn persist(&self, u: &UnitState) -> Result<()> {
        let bytes = u
            .to_persisted()
            .map_err(|_| internal("cannot encode the crypto unit state"))?;
        self.vault.save(u.id(), &bytes).await.map_err(|e| {
            tracing::error!(unit = %u.id(), error = %e, "cannot persist the crypto unit state");
            ServiceError::new(
                ErrorKind::Unavailable,
                "cannot persist the crypto unit state; nothing was changed",
            )
        })
    }

    /// Creates the units of a new instance on this node (persisted before returning).
    pub(crate) async fn create_units(
        &self,
        instance: InstanceId,
        layout: UnitLayout,
    ) -> Result<Vec<UnitId>> {
        let mut made = Vec::new();
        let p = self.provider.as_ref();
        let mut states = Vec::new();
        if layout.dev_master_key {
            let mk = MasterKey::random(p).map_err(|_| internal("random generator failed"))?;
            states.push(
                UnitState::with_current(p, UnitId::random(), instance, mk, true)
                    .map_err(|_| internal("crypto unit creation failed"))?,
            );
        } else {
            for _ in 0..layout.operational {
                states.push(
                    UnitState::new(p, UnitId::random(), instance, UnitKind::Operational)
                        .map_err(|_| internal("crypto unit creation failed"))?,
                );
            }
            for _ in 0..layout.recovery {
                states.push(
                    UnitState::new(p, UnitId::random(), instance, UnitKind::Recovery)
                        .map_err(|_| internal("crypto unit creation failed"))?,
                );
            }
        }
        // Placed before they are persisted: a unit never runs unplaced, so no node misses it
        // when it checks an instance's zones.
        let placed: Vec<(UnitId, bool)> = states
            .iter()
            .map(|u| (u.id(), u.kind() == UnitKind::Recovery))
            .collect();
        self.place(instance, &placed).await?;
        let mut hosted = self.hosted.lock().await;
        for u in states {
            self.persist(&u).await?;
            made.push(u.id());
            hosted.insert(u.id(), u);
        }
        self.refresh_data_plane(&hosted, instance)?;
        Ok(made)
    }

    /// Adds one unit of an existing instance on this node (each node of a cluster hosts
    /// its own unit of the instance).
    pub async fn add_unit(
        &self,
        ctx: &crate::AdminCtx,
        instance: InstanceId,
        kind: UnitKind,
        allow_same_zone: bool,
    ) -> Result<UnitId> {
        let r = async {
            self.require_instance(instance).await?;
            if !allow_same_zone {
                match kind {
                    UnitKind::Operational => self.check_zone_free(instance).await?,
                    UnitKind::Recovery => self.check_recovery_region(instance, 1).await?,
                }
            }
            let hosted = self.hosted.lock().await;
            let here = hosted
                .values()
                .filter(|u| u.instance() == instance && u.kind() == kind)
                .count();
            let max = match kind {
                UnitKind::Operational => MAX_OPERATIONAL_UNITS,
                UnitKind::Recovery => MAX_RECOVERY_UNITS,
            };
            if here >= max {
                return Err(ServiceError::new(
                    ErrorKind::LimitReached,
                    format!("an instance has at most {max} {kind:?} units on one node")
                        .to_lowercase(),
                ));
            }
            drop(hosted);
            let layout = match kind {
                UnitKind::Operational => UnitLayout::ceremony(1, 0),
                UnitKind::Recovery => UnitLayout::ceremony(0, 1),
            };
            let ids = self.create_units(instance, layout).await?;
            ids.first()
                .copied()
                .ok_or_else(|| internal("no unit created"))
        }
        .await;
        let id = r.as_ref().ok().copied();
        let r = self
            .admin_audited(ctx, Action::AdminUnitsCreate, Some(instance), r)
            .await;
        if let Some(id) = id {
            tracing::info!(%instance, unit = %id, ?kind, "crypto unit created in imprint mode");
        }
        r
    }

    /// Destroys this node's units of every instance that was deleted, on whichever node took
    /// the request (its tombstone is in the shared keystore): at start-up, and when the
    /// change feed says an instance changed or that changes may have been missed. Only a
    /// tombstone shreds: a unit whose instance row is merely missing (a keystore URL that
    /// points at the wrong database, a creation that crashed half-way) is kept.
    pub async fn shred_deleted_instances(&self, only: Option<InstanceId>) -> Result<usize> {
        let hosted: Vec<InstanceId> = {
            let h = self.hosted.lock().await;
            let mut ids: Vec<InstanceId> = h
                .values()
                .map(|u| u.instance())
                .filter(|i| only.is_none_or(|o| o == *i))
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        let mut shredded = 0;
        for instance in hosted {
            if self.store.instance_deleted(instance).await? {
                self.cache.remove_instance(instance);
                self.kmip_cache.clear(Some(instance));
                self.destroy_units(instance).await?;
                tracing::warn!(%instance, "instance deleted on another node: this node's crypto units of it are destroyed");
                shredded += 1;
            }
        }
        Ok(shredded)
    }

    /// Destroys every unit of `instance` on this node (crypto-shredding).
    pub(crate) async fn destroy_units(&self, instance: InstanceId) -> Result<()> {
        let mut hosted = self.hosted.lock().await;
        let ids: Vec<UnitId> = hosted
            .values()
            .filter(|u| u.instance() == instance)
            .map(|u| u.id())
            .collect();
        for id in ids {
            self.vault.destroy(id).await.map_err(|e| {
                tracing::error!(unit = %id, error = %e, "cannot destroy a crypto unit state file");
                ServiceError::new(ErrorKind::Unavailable, "the instance's crypto unit state could not be destroyed; remove the unit files by hand")
            })?;
            hosted.remove(&id);
        }
        if let Ok(mut u) = self.units.write() {
            u.remove(&instance);
        }
        Ok(())
    }

    /// The signed status of every unit of the caller's instance hosted by this node.
    pub async fn list_units(&self, ctx: &Ctx) -> Result<Vec<SignedResponse>> {
        self.audited(ctx, Action::UnitsList, Role::Manager, None, async {
            let hosted = self.hosted.lock().await;
            hosted
                .values()
                .filter(|u| u.instance() == ctx.instance)
                .map(|u| {
                    u.query(self.provider.as_ref())
                        .map_err(|_| internal("cannot sign the unit status"))
                })
                .collect()
        })
        .await
    }

    /// One unit's signed status.
    pub async fn query_unit(&self, ctx: &Ctx, unit: UnitId) -> Result<SignedResponse> {
        let key = unit.to_string();
        self.audited(ctx, Action::UnitsRead, Role::Manager, Some(&key), async {
            let hosted = self.hosted.lock().await;
            let u = hosted
                .get(&unit)
                .filter(|u| u.instance() == ctx.instance)
                .ok_or_else(|| unit_not_found(unit))?;
            u.query(self.provider.as_ref())
                .map_err(|_| internal("cannot sign the unit status"))
        })
        .await
    }

    /// Executes a signed administrative command on a hosted unit. The new state is durable
    /// before the (signed) response is returned; a refused command changes nothing.
    pub async fn unit_command(
        &self,
        ctx: &Ctx,
        unit: UnitId,
        cmd: &SignedCommand,
    ) -> Result<SignedResponse> {
        let key = unit.to_string();
        self.audited(
            ctx,
            Action::UnitsCommand,
            Role::Manager,
            Some(&key),
            self.unit_command_inner(ctx, unit, cmd),
        )
        .await
    }

    async fn unit_command_inner(
        &self,
        ctx: &Ctx,
        unit: UnitId,
        cmd: &SignedCommand,
    ) -> Result<SignedResponse> {
        let mut hosted = self.hosted.lock().await;
        let u = hosted
            .get_mut(&unit)
            .filter(|u| u.instance() == ctx.instance)
            .ok_or_else(|| unit_not_found(unit))?;
        let (body, _, _) = u.check(self.provider.as_ref(), cmd).map_err(refusal)?;
        self.guard_finalize(u, &body).await?;
        let before: Zeroizing<Vec<u8>> = u
            .to_persisted()
            .map_err(|_| internal("cannot encode the crypto unit state"))?;
        let executed = match u.execute(self.provider.as_ref(), cmd) {
            Ok(e) => e,
            Err(r) => {
                // Refusals change nothing; a failure after the change (signing the response)
                // is undone here, so memory never runs ahead of the persisted state.
                if let Ok(old) = UnitState::from_persisted(self.provider.as_ref(), &before) {
                    *u = old;
                }
                return Err(refusal(r));
            }
        };
        if let Err(e) = self.persist(u).await {
            // Not durable: put the previous state back, as if the command never ran.
            match UnitState::from_persisted(self.provider.as_ref(), &before) {
                Ok(old) => *u = old,
                Err(_) => {
                    return Err(internal(
                        "crypto unit state lost in memory; restart the node",
                    ))
                }
            }
            return Err(e);
        }
        tracing::info!(%unit, instance = %ctx.instance, command = executed.command, signers = ?executed.signers, "crypto unit command executed");
        self.refresh_data_plane(&hosted, ctx.instance)?;
        Ok(executed.response)
    }

    /// Finalize makes the new register current: refused on an operational unit while any
    /// key blob of the instance is sealed under another master key (it would become
    /// unusable). Re-encrypt first (`cryptounit-mk-rotate`).
    async fn guard_finalize(&self, u: &UnitState, body: &CommandBody) -> Result<()> {
        let Cmd::Finalize { .. } = body.cmd else {
            return Ok(());
        };
        if u.kind() != UnitKind::Operational {
            return Ok(());
        }
        let Some((vp, true)) = u.new_vp() else {
            return Ok(()); // the unit refuses it with a clear message
        };
        let left = self
            .store
            .count_versions_not_under(u.instance(), &vp.mk_id().0)
            .await?;
        if left > 0 {
            return Err(ServiceError::new(
                ErrorKind::UnitState,
                format!(
                    "{left} key version(s) of the instance are still sealed under another master key; finalizing now would make them unusable. During a rotation, re-encrypt them first (strongroom tke cryptounit-mk-rotate); when initialising or restoring, the loaded key is not the one they were sealed under: check the key parts, then clear the new register (cryptounit-mk-clrnew)"
                ),
            ));
        }
        Ok(())
    }

    /// Re-encrypts up to `batch` key blobs of the caller's instance under the new master
    /// key, through this node's data plane (which must be rotating). Idempotent and
    /// resumable: blobs already under the new key are skipped, replacements are
    /// compare-and-swap, and a crash loses at most the batch in flight.
    pub async fn reencrypt(&self, ctx: &Ctx, batch: u32) -> Result<Reencryption> {
        self.audited(ctx, Action::UnitsReencrypt, Role::Manager, None, async {
            let unit = self.unit(ctx.instance)?;
            let Some(target) = unit.sealing_mk_id() else {
                return Err(ServiceError::new(ErrorKind::UnitNotInitialized, "crypto unit not initialized"));
            };
            if Some(target) == unit.current_mk_id() {
                return Err(ServiceError::new(
                    ErrorKind::UnitState,
                    "no rotation is in progress on this node's crypto unit: load and commit a new master key, then begin the rotation (strongroom tke cryptounit-mk-rotate)",
                ));
            }
            let batch = batch.clamp(1, 5_000);
            let mut after = None;
            let mut rewrapped = 0;
            let mut unreadable = 0;
            let mut seen = 0u32;
            while seen < batch {
                let rows = self
                    .store
                    .versions_not_under(ctx.instance, &target.0, after, (batch - seen).min(1_000))
                    .await?;
                if rows.is_empty() {
                    break;
                }
                seen += u32::try_from(rows.len()).unwrap_or(u32::MAX);
                after = rows.last().map(|v| (v.key, v.seq));
                let mut updates = Vec::with_capacity(rows.len());
                for v in rows {
                    let binding = BlobBinding {
                        instance: ctx.instance,
                        key: v.key,
                        version: v.version,
                        kind: v.kind,
                        imported: v.imported,
                    };
                    match unit.rewrap_blob(&binding, &v.blob) {
                        Ok(Some(new)) => updates.push(BlobUpdate { key: v.key, seq: v.seq, old: v.blob, new }),
                        Ok(None) => {}
                        Err(e) => {
                            unreadable += 1;
                            tracing::error!(key = %v.key, seq = v.seq, error = %e, "key blob cannot be re-encrypted");
                        }
                    }
                }
                rewrapped += self.store.replace_blobs(ctx.instance, &updates).await?;
            }
            let remaining = self
                .store
                .count_versions_not_under(ctx.instance, &target.0)
                .await?;
            self.stats
                .reencrypted
                .fetch_add(rewrapped, std::sync::atomic::Ordering::Relaxed);
            self.stats
                .reencrypt_remaining
                .store(remaining, std::sync::atomic::Ordering::Relaxed);
            Ok(Reencryption { rewrapped, remaining, unreadable })
        })
        .await
    }
}

impl Service {
    /// The hosted units counted by (kind, mode, current state, new state, rotating), for
    /// metrics.
    pub async fn unit_states(&self) -> Vec<([String; 5], i64)> {
        let hosted = self.hosted.lock().await;
        let mut counts: BTreeMap<[String; 5], i64> = BTreeMap::new();
        for u in hosted.values() {
            let s = u.status();
            let key = [
                format!("{:?}", s.kind).to_lowercase(),
                format!("{:?}", s.mode).to_lowercase(),
                s.current.state,
                s.new.state,
                s.rotating.to_string(),
            ];
            *counts.entry(key).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    /// Counts one API call of `instance` against the unit serving it on this node.
    pub(crate) fn count_unit_call(&self, instance: InstanceId) {
        if let Ok(serving) = self.serving.read() {
            if let Some((_, c)) = serving.get(&instance) {
                c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Adds the per-unit call counts gathered since the last flush to the keystore (month
    /// of the flush, UTC). On failure the counts are kept for the next attempt.
    pub async fn flush_unit_usage(&self) -> Result<()> {
        let month = crate::month_of(self.clock.now());
        let counters: Vec<((InstanceId, UnitId), Arc<std::sync::atomic::AtomicU64>)> = self
            .unit_calls
            .lock()
            .map(|c| c.iter().map(|(k, v)| (*k, Arc::clone(v))).collect())
            .unwrap_or_default();
        let mut taken = Vec::new();
        for ((instance, unit), c) in counters {
            let calls = c.swap(0, std::sync::atomic::Ordering::Relaxed);
            if calls > 0 {
                taken.push((
                    c,
                    strongroom_keystore::UnitUsage {
                        instance,
                        unit,
                        month: month.clone(),
                        calls,
                    },
                ));
            }
        }
        if taken.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = taken.iter().map(|(_, u)| u.clone()).collect();
        if let Err(e) = self.store.add_unit_usage(&rows).await {
            for (c, u) in taken {
                c.fetch_add(u.calls, std::sync::atomic::Ordering::Relaxed);
            }
            return Err(e.into());
        }
        Ok(())
    }
}

/// Whether `kind` names a unit kind (`operational` | `recovery`).
pub fn parse_unit_kind(kind: &str) -> Option<UnitKind> {
    match kind.trim().to_ascii_lowercase().as_str() {
        "operational" => Some(UnitKind::Operational),
        "recovery" => Some(UnitKind::Recovery),
        _ => None,
    }
}
