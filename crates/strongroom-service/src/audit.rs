//! The audit log: every API call, allowed or denied, becomes a record in a hash chain kept
//! in the keystore. Each record's hash is HMAC-SHA-256 under a node audit key over the
//! previous hash and the record's canonical encoding, so a changed, inserted or removed
//! record breaks the chain, and the chain cannot be recomputed without the node key.
//!
//! Records are written by one task in batches (group commit). A request that changed
//! something completes only after its record is committed; requests that changed nothing
//! (reads, wrap/unwrap, refusals) complete once their record is queued, unless
//! `audit_sync_all` is set. If the log cannot be written, every request fails until it
//! can (fail closed). Records never contain key material.

use crate::action::Action;
use std::sync::Arc;

use strongroom_engine::{CryptoProvider, HmacSha256Key};
use strongroom_keystore::{AuditRecord, KeyStore};
use strongroom_model::{InstanceId, UnixMillis};
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::error::{ErrorKind, Result, ServiceError, StatusClass};

/// How a call ended, as an audit record tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The call succeeded.
    Success,
    /// The call failed with this kind of error.
    Failed(ErrorKind),
}

impl Outcome {
    /// The outcome of `result`.
    pub fn of<T>(result: &Result<T>) -> Self {
        match result {
            Ok(_) => Outcome::Success,
            Err(e) => Outcome::Failed(e.kind),
        }
    }

    /// The recorded outcome: `success` or the error kind's code.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed(kind) => kind.code(),
        }
    }

    /// The recorded status class.
    pub fn status_class(self) -> StatusClass {
        match self {
            Outcome::Success => StatusClass::Success,
            Outcome::Failed(kind) => kind.status_class(),
        }
    }
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Instance concerned.
    pub instance: Option<InstanceId>,
    /// Who.
    pub principal: String,
    /// Action name (`kms.secrets.wrap`).
    pub action: Action,
    /// Key id or alias as given.
    pub key: Option<String>,
    /// How the call ended.
    pub outcome: Outcome,
    /// Correlation id.
    pub correlation_id: String,
}

type Pending = (AuditEvent, UnixMillis, oneshot::Sender<Result<()>>);

/// Handle on the audit writer.
#[derive(Clone)]
pub(crate) struct AuditLog {
    tx: mpsc::Sender<Pending>,
    clock: Arc<dyn Clock>,
    healthy: Arc<std::sync::atomic::AtomicBool>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The canonical encoding hashed into the chain (documented in docs/formats.md).
pub fn canonical(r: &AuditRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"strongroom/audit/v1");
    out.extend_from_slice(&r.seq.to_be_bytes());
    out.extend_from_slice(&r.at.0.to_be_bytes());
    put_str(
        &mut out,
        &r.instance.map(|i| i.to_string()).unwrap_or_default(),
    );
    put_str(&mut out, &r.principal);
    put_str(&mut out, &r.action);
    put_str(&mut out, r.key.as_deref().unwrap_or(""));
    put_str(&mut out, &r.outcome);
    out.extend_from_slice(&r.status.to_be_bytes());
    put_str(&mut out, &r.correlation_id);
    out
}

/// The chain hash of `r` (its `prev_hash` must be set), under the audit key prepared by
/// [`CryptoProvider::hmac_sha256_key`].
pub fn chain_hash(key: &dyn HmacSha256Key, r: &AuditRecord) -> [u8; 32] {
    key.sign(&[&r.prev_hash, &canonical(r)])
}

impl AuditLog {
    pub async fn start(
        store: Arc<dyn KeyStore>,
        provider: Arc<dyn CryptoProvider>,
        key: zeroize::Zeroizing<[u8; 32]>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, tokio::task::JoinHandle<()>)> {
        let (mut seq, mut prev) = store.audit_head().await?.unwrap_or((0, [0u8; 32]));
        let (tx, mut rx) = mpsc::channel::<Pending>(16_384);
        let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let health = Arc::clone(&healthy);
        // Every record is signed under the one key: its pads are hashed once, here.
        let signer = provider.hmac_sha256_key(key.as_ref());
        drop(key);
        let handle = tokio::spawn(async move {
            let mut batch: Vec<Pending> = Vec::with_capacity(1024);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                drain(&mut rx, &mut batch);
                // When no request waits for this batch (queued records of read-only calls,
                // such as GREP11 operations), let more records gather before committing:
                // one commit and one wake-up for many records instead of one per handful.
                if batch.len() < MAX_BATCH && batch.iter().all(|(_, _, done)| done.is_closed()) {
                    tokio::time::sleep(LINGER).await;
                    drain(&mut rx, &mut batch);
                }
                let mut records = Vec::with_capacity(batch.len());
                let mut waiters = Vec::with_capacity(batch.len());
                let (mut s, mut h) = (seq, prev);
                for (ev, at, done) in batch.drain(..) {
                    s += 1;
                    waiters.push(done);
                    let mut r = AuditRecord {
                        seq: s,
                        at,
                        instance: ev.instance,
                        principal: ev.principal,
                        action: ev.action.to_string(),
                        key: ev.key,
                        outcome: ev.outcome.code().to_string(),
                        status: ev.outcome.status_class().code(),
                        correlation_id: ev.correlation_id,
                        prev_hash: h,
                        hash: [0; 32],
                    };
                    r.hash = chain_hash(signer.as_ref(), &r);
                    h = r.hash;
                    records.push(r);
                }
                // Nodes sharing a keystore append to one chain: when another node appended
                // first, continue the chain from its head and try again.
                let mut result = store.append_audit(&records).await;
                let mut attempts = 0;
                while matches!(result, Err(strongroom_keystore::StoreError::Conflict))
                    && attempts < 20
                {
                    attempts += 1;
                    let (head_seq, head_hash) = match store.audit_head().await {
                        Ok(h) => h.unwrap_or((0, [0u8; 32])),
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    };
                    let (mut s2, mut h2) = (head_seq, head_hash);
                    for r in records.iter_mut() {
                        s2 += 1;
                        r.seq = s2;
                        r.prev_hash = h2;
                        r.hash = chain_hash(signer.as_ref(), r);
                        h2 = r.hash;
                    }
                    s = s2;
                    h = h2;
                    result = store.append_audit(&records).await;
                }
                let reply = match result {
                    Ok(()) => {
                        seq = s;
                        prev = h;
                        health.store(true, std::sync::atomic::Ordering::SeqCst);
                        Ok(())
                    }
                    Err(e) => {
                        health.store(false, std::sync::atomic::Ordering::SeqCst);
                        tracing::error!(error = %e, records = records.len(), "audit log write failed; requests fail until it recovers");
                        // Re-read the head in case another writer appended (cluster) or the
                        // batch partially landed (it cannot: append is one transaction). Not
                        // while the keystore is away: that read would wait for it too, and
                        // the next append finds a moved head as a conflict and re-reads then.
                        if !matches!(e, strongroom_keystore::StoreError::Unavailable(_)) {
                            if let Ok(Some((s2, h2))) = store.audit_head().await {
                                seq = s2;
                                prev = h2;
                            }
                        }
                        Err(ServiceError::new(
                            ErrorKind::Unavailable,
                            "the audit log is unavailable; retry later",
                        ))
                    }
                };
                for done in waiters {
                    let _ = done.send(reply.clone());
                }
            }
        });
        Ok((AuditLog { tx, clock, healthy }, handle))
    }

    /// Records an event. With `wait`, returns once the record is committed; otherwise once
    /// it is queued (the bounded queue applies back-pressure).
    pub async fn record(&self, ev: AuditEvent, wait: bool) -> Result<()> {
        // While the log cannot be written, every request waits for its own record, so
        // requests fail (closed) until a commit succeeds again.
        if wait || !self.healthy.load(std::sync::atomic::Ordering::SeqCst) {
            return self.record_waiting(ev).await;
        }
        let (done, _) = oneshot::channel();
        self.tx
            .send((ev, self.clock.now(), done))
            .await
            .map_err(|_| {
                ServiceError::new(ErrorKind::Unavailable, "the audit log is shutting down")
            })
    }

    async fn record_waiting(&self, ev: AuditEvent) -> Result<()> {
        let (done, wait) = oneshot::channel();
        let unavailable =
            || ServiceError::new(ErrorKind::Unavailable, "the audit log is shutting down");
        self.tx
            .send((ev, self.clock.now(), done))
            .await
            .map_err(|_| unavailable())?;
        wait.await.map_err(|_| unavailable())?
    }
}

/// Records per commit at most.
const MAX_BATCH: usize = 4096;

/// Moves what is queued into `batch`, up to [`MAX_BATCH`] records.
fn drain(rx: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(p) => batch.push(p),
            Err(_) => break,
        }
    }
}

/// How long a batch of records that nobody waits for gathers more records.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// The first problem found, if any: (seq, description).
    pub problem: Option<(i64, String)>,
    /// No record verifies under the key given, though the records link to each other:
    /// the key is wrong (a missing or different cluster key), not the log.
    pub wrong_key: bool,
}

/// How many records from the start of the chain are checked before a failure of the first
/// one is put down to a wrong key: a changed record breaks only itself, a wrong key breaks
/// every record.
const WRONG_KEY_PROBE: u32 = 16;

/// Walks the whole chain and checks sequence numbers, links and HMACs.
pub async fn verify_chain(
    store: &dyn KeyStore,
    p: &dyn CryptoProvider,
    key: &[u8],
) -> Result<VerifyReport> {
    let signer = p.hmac_sha256_key(key);
    let mut expected_seq = 1i64;
    let mut prev = [0u8; 32];
    let mut count = 0u64;
    loop {
        let page = store.read_audit(expected_seq, 10_000).await?;
        if page.is_empty() {
            break;
        }
        for r in page {
            if r.seq != expected_seq {
                return Ok(VerifyReport {
                    records: count,
                    problem: Some((
                        expected_seq,
                        format!("record {expected_seq} is missing (next is {})", r.seq),
                    )),
                    wrong_key: false,
                });
            }
            if !p.ct_eq(&r.prev_hash, &prev) {
                return Ok(VerifyReport {
                    records: count,
                    problem: Some((r.seq, "link to the previous record is broken".into())),
                    wrong_key: false,
                });
            }
            if !p.ct_eq(&chain_hash(signer.as_ref(), &r), &r.hash) {
                if count == 0 && no_record_verifies(store, p, signer.as_ref()).await? {
                    return Ok(VerifyReport {
                        records: 0,
                        problem: Some((
                            r.seq,
                            "no record verifies under this audit key, though the records link to each other: the key is wrong, not the log. Give the cluster key file the nodes run with (--cluster-key-file, or --config with the nodes' configuration file) and this node's data directory".into(),
                        )),
                        wrong_key: true,
                    });
                }
                return Ok(VerifyReport {
                    records: count,
                    problem: Some((r.seq, "record content was changed".into())),
                    wrong_key: false,
                });
            }
            prev = r.hash;
            expected_seq += 1;
            count += 1;
        }
    }
    Ok(VerifyReport {
        records: count,
        problem: None,
        wrong_key: false,
    })
}

/// Whether none of the first records verifies under `key` while they link to each other.
async fn no_record_verifies(
    store: &dyn KeyStore,
    p: &dyn CryptoProvider,
    key: &dyn HmacSha256Key,
) -> Result<bool> {
    let head = store.read_audit(1, WRONG_KEY_PROBE).await?;
    let linked = head
        .windows(2)
        .all(|w| p.ct_eq(&w[1].prev_hash, &w[0].hash));
    let none_verifies = head.iter().all(|r| !p.ct_eq(&chain_hash(key, r), &r.hash));
    Ok(head.len() > 1 && linked && none_verifies)
}

#[cfg(test)]
mod tests_chain;
