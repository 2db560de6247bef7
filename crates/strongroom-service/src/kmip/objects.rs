//! KMIP managed objects: creation, registration, retrieval, attributes, Locate and the
//! KMIP state machine (KMIP 1.4 §3.22). Each operation is one audited service call
//! (`kmip.<operation>`); a change is a compare-and-swap on the stored object.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use strongroom_keystore::{KmipObjectFilter, KmipObjectRecord, StoreError};
use strongroom_model::{KeyId, Role, UnixMillis};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::admin::object_not_found;
use super::model::*;
use super::usage::{admit, check_export, check_flag_change, check_limits_unused};
use crate::action::Action;
use crate::auth::Ctx;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::keys::invalid;
use crate::Service;

/// How long a connection's certificate is trusted before it is looked up again (a
/// certificate deleted through the API stops working within this time).
const RECHECK_EVERY: Duration = Duration::from_secs(5);

/// How many times a change of an object is tried before the client is told to retry: each
/// loss of the compare-and-swap to another node is followed by a longer random wait
/// ([`Service::kmip_backoff`]; about 0.4 s in all at the most).
pub(crate) const CHANGE_TRIES: u32 = 16;

/// Objects read from the keystore per page while Locate matches the criteria the
/// keystore cannot filter on (small in tests, so that they cross pages).
const LOCATE_PAGE: u32 = if cfg!(test) { 3 } else { 10_000 };

/// Most identifiers one Locate returns. Located Items still counts every match, so that a
/// client can page through the rest with Offset Items.
const LOCATE_RETURN_LIMIT: u32 = 100_000;

/// An authenticated KMIP connection: the instance, adapter and certificate it acts for.
#[derive(Debug)]
pub struct KmipSession {
    /// The caller (the certificate) and its instance.
    pub ctx: Ctx,
    /// The adapter.
    pub adapter: Uuid,
    /// The certificate.
    pub certificate: Uuid,
    /// The adapter's root key.
    pub crk: KeyId,
    checked: Mutex<Instant>,
}

impl KmipSession {
    pub(crate) fn new(ctx: Ctx, adapter: Uuid, certificate: Uuid, crk: KeyId) -> KmipSession {
        KmipSession {
            ctx,
            adapter,
            certificate,
            crk,
            checked: Mutex::new(Instant::now()),
        }
    }
}

/// A managed object's material and what the server knows of it.
pub struct KmipManaged {
    /// Object id.
    pub id: Uuid,
    /// KMIP Object Type.
    pub object_type: u32,
    /// State.
    pub state: KmipState,
    /// The format the material is in (see [`key_format`]).
    pub format: u32,
    /// Cryptographic Algorithm.
    pub algorithm: Option<u32>,
    /// Cryptographic Length.
    pub length: Option<i32>,
    /// Secret Data Type, Certificate Type or Opaque Data Type.
    pub subtype: Option<u32>,
    /// The format Get answers in by default (the registered one).
    pub presented: u32,
    /// The material.
    pub material: Zeroizing<Vec<u8>>,
    /// Its Protect Stop Date has come: it protects nothing more (encrypt, sign, MAC).
    pub protect_stopped: bool,
    /// Its Process Start Date is still to come: it processes nothing yet (decrypt,
    /// verify).
    pub process_pending: bool,
    /// Its Cryptographic Usage Mask, if it has one.
    pub usage_mask: Option<u32>,
    /// It has Usage Limits: each protection it applies draws on them.
    pub limited: bool,
}

/// What a new object holds.
pub struct NewKmipObject {
    /// KMIP Object Type.
    pub object_type: u32,
    /// Format of `material`.
    pub format: u32,
    /// Cryptographic Algorithm.
    pub algorithm: Option<u32>,
    /// Cryptographic Length.
    pub length: Option<i32>,
    /// Secret Data Type, Certificate Type or Opaque Data Type.
    pub subtype: Option<u32>,
    /// The format the client sent the material in, when the server stores it converted.
    pub presented: Option<u32>,
    /// The material.
    pub material: Zeroizing<Vec<u8>>,
    /// Client attributes from the template.
    pub attributes: Vec<Attribute>,
}

/// What Locate looks for. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct KmipLocate {
    /// Object Type.
    pub object_type: Option<u32>,
    /// State; without it, destroyed objects are not returned.
    pub state: Option<u32>,
    /// Cryptographic Algorithm.
    pub algorithm: Option<u32>,
    /// Name Value.
    pub name: Option<String>,
    /// Other attributes that must be present with these values.
    pub attributes: Vec<Attribute>,
    /// Skip this many matches.
    pub offset: u64,
    /// Return at most this many.
    pub max_items: Option<u32>,
}

/// The outcome of a revocation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// Key Compromise or CA Compromise: the object becomes Compromised.
    Compromise,
    /// Any other reason (its KMIP code): the object becomes Deactivated.
    Other(u32),
}

pub(crate) fn stored(r: &KmipObjectRecord) -> Result<StoredAttributes> {
    match serde_json::from_slice::<StoredAttributes>(&r.attributes) {
        Ok(st) if st.v == 1 => Ok(st),
        Ok(st) => {
            tracing::error!(object = %r.id, version = st.v, "KMIP object attributes are in a format version this Strongroom does not read");
            Err(ServiceError::new(
                ErrorKind::Internal,
                format!("stored KMIP object is in attribute format version {}, which this Strongroom does not read (it reads version 1)", st.v),
            ))
        }
        Err(_) => {
            tracing::error!(object = %r.id, "KMIP object attributes are corrupt");
            Err(ServiceError::new(
                ErrorKind::Internal,
                "stored KMIP object is corrupt",
            ))
        }
    }
}

fn encode(s: &StoredAttributes) -> Result<Vec<u8>> {
    serde_json::to_vec(s)
        .map_err(|_| ServiceError::new(ErrorKind::Internal, "cannot encode KMIP attributes"))
}

/// `r`'s state at `now` (seconds): its stored state moved on by its dates.
pub(crate) fn state_now(
    r: &KmipObjectRecord,
    st: &StoredAttributes,
    now: i64,
) -> Result<KmipState> {
    Ok(st.state_at(state_of(r)?, now))
}

pub(crate) fn state_of(r: &KmipObjectRecord) -> Result<KmipState> {
    KmipState::from_code(r.state)
        .ok_or_else(|| ServiceError::new(ErrorKind::Internal, "stored KMIP state is corrupt"))
}

fn wrong_state(what: &str, s: KmipState) -> ServiceError {
    ServiceError::new(
        ErrorKind::InvalidKeyState,
        format!("The object is {s:?}: it cannot be {what}"),
    )
}

fn secs(t: UnixMillis) -> i64 {
    t.0.div_euclid(1000)
}

/// The associated data that binds wrapped material to its object.
fn binding(id: Uuid) -> Vec<String> {
    vec![format!("kmip-object:{id}")]
}

/// The instance holds as many live KMIP objects as the server allows.
pub(crate) fn kmip_quota_reached(max: u64) -> ServiceError {
    ServiceError::new(
        ErrorKind::LimitReached,
        format!("The instance holds {max} live KMIP objects, the most this server allows (--max-keys-per-instance); destroy some first"),
    )
}

/// The service's answer to a store error of a KMIP write.
pub(crate) fn kmip_write_error(e: StoreError) -> ServiceError {
    match e {
        StoreError::QuotaExceeded(max) => kmip_quota_reached(max),
        StoreError::NotFound => object_not_found(),
        other => other.into(),
    }
}

fn first_name(attrs: &[Attribute]) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.name == names::NAME)
        .and_then(|a| a.value.field(field::NAME_VALUE))
        .and_then(AttrValue::text)
        .map(str::to_string)
}

pub(crate) fn check_settable(a: &Attribute) -> Result<()> {
    settable(&a.name)
}

fn settable(name: &str) -> Result<()> {
    if names::SERVER_MAINTAINED.contains(&name) {
        return Err(ServiceError::new(
            ErrorKind::KmipAttributeReadOnly,
            format!("The attribute '{name}' is set by the server"),
        ));
    }
    if name.is_empty() || name.len() > 200 {
        return Err(invalid(
            "attribute",
            "an attribute name must be 1 to 200 bytes",
        ));
    }
    Ok(())
}

/// Whether a client may add, change or delete attribute `name` of `r`, whose state is
/// brought up to date: a settable attribute of an object not destroyed, and, as KMIP's
/// attribute rules say, the Activation Date only while Pre-Active, and the Deactivation,
/// Process Start and Protect Stop Dates only while Pre-Active or Active. A date that has
/// come cannot be moved back to undo its transition.
fn check_change(r: &KmipObjectRecord, name: &str) -> Result<()> {
    settable(name)?;
    let state = state_of(r)?;
    let allowed = match name {
        names::ACTIVATION_DATE => state == KmipState::PreActive,
        names::DEACTIVATION_DATE | names::PROCESS_START_DATE | names::PROTECT_STOP_DATE => {
            matches!(state, KmipState::PreActive | KmipState::Active)
        }
        _ => !state.is_destroyed(),
    };
    if allowed {
        Ok(())
    } else {
        Err(ServiceError::new(
            ErrorKind::InvalidKeyState,
            format!("The object is {state:?}: its '{name}' can no longer be changed"),
        ))
    }
}

impl Service {
    /// Now, in KMIP's seconds.
    pub(crate) fn kmip_now(&self) -> i64 {
        secs(self.clock.now())
    }

    /// Starts one KMIP request on a connection: the instance's rate limit, and, every few
    /// seconds, a check that the certificate is still registered.
    pub async fn kmip_begin(&self, s: &KmipSession) -> Result<()> {
        let due = s
            .checked
            .lock()
            .map(|t| t.elapsed() >= RECHECK_EVERY)
            .unwrap_or(true);
        if due {
            let still = self
                .store
                .list_kmip_certificates(s.ctx.instance, s.adapter)
                .await?
                .iter()
                .any(|c| c.id == s.certificate);
            if !still {
                return Err(ServiceError::new(
                    ErrorKind::Unauthenticated,
                    "the client certificate is no longer registered",
                ));
            }
            if let Ok(mut t) = s.checked.lock() {
                *t = Instant::now();
            }
        }
        self.take_rate_token(s.ctx.instance)
    }

    /// Wraps material under the adapter's root key, bound to the object id.
    async fn seal_kmip(&self, s: &KmipSession, id: Uuid, material: &[u8]) -> Result<Vec<u8>> {
        let k = self.load(&s.ctx, s.crk).await?;
        Self::root_for(&k)?;
        self.usable_for(
            &k,
            &[strongroom_model::KeyState::Active],
            "protect KMIP objects",
        )?;
        Ok(self.wrap_with(&s.ctx, &k, material, &binding(id))?.0)
    }

    pub(crate) async fn open_kmip_material(
        &self,
        s: &KmipSession,
        r: &KmipObjectRecord,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let sealed = r.material.as_deref().ok_or_else(|| {
            ServiceError::new(
                ErrorKind::InvalidKeyState,
                "The object is destroyed: it has no key value",
            )
        })?;
        let k = self.load(&s.ctx, s.crk).await?;
        Self::root_for(&k)?;
        self.usable_for(
            &k,
            &[
                strongroom_model::KeyState::Active,
                strongroom_model::KeyState::Deactivated,
            ],
            "open KMIP objects",
        )?;
        Ok(Self::open_wdek(&k, sealed, &binding(r.id))?.0)
    }

    /// Reads an object of this connection's adapter.
    pub(crate) async fn kmip_record(&self, s: &KmipSession, id: &str) -> Result<KmipObjectRecord> {
        self.adapter_object(s.ctx.instance, s.adapter, id).await
    }

    /// An object of `adapter` (in `instance`) by its id; another adapter's object, or an id
    /// that is not a UUID, is not found.
    pub(crate) async fn adapter_object(
        &self,
        instance: strongroom_model::InstanceId,
        adapter: Uuid,
        id: &str,
    ) -> Result<KmipObjectRecord> {
        let id = Uuid::parse_str(id).map_err(|_| object_not_found())?;
        match self.store.get_kmip_object(instance, id).await {
            Ok(o) if o.adapter == adapter => Ok(o),
            Ok(_) | Err(StoreError::NotFound) => Err(object_not_found()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a new object (state Pre-Active, or Active when the template's Activation
    /// Date has come).
    pub(crate) async fn kmip_store_new(&self, s: &KmipSession, new: NewKmipObject) -> Result<Uuid> {
        let rec = self.kmip_new_record(s, Uuid::new_v4(), new).await?;
        self.kmip_write(std::slice::from_ref(&rec), &[])
            .await
            .map_err(kmip_write_error)?;
        Ok(rec.id)
    }

    /// Stores `new` objects and replaces `replaced` ones in one transaction, within the
    /// instance's key quota, which bounds its live KMIP objects as well (destroyed ones hold
    /// no value and do not count). The store's error comes back as it is, for the caller to
    /// retry a `Conflict`; [`kmip_write_error`] says the others in the service's terms.
    pub(crate) async fn kmip_write(
        &self,
        new: &[KmipObjectRecord],
        replaced: &[KmipObjectRecord],
    ) -> std::result::Result<(), StoreError> {
        let max = self.config.max_keys_per_instance.unwrap_or(u64::MAX);
        let written = self.store.write_kmip_objects(new, replaced, max).await;
        for r in replaced {
            self.kmip_cache.remove(&(r.instance, r.id));
        }
        written
    }

    /// Refuses early, before any key is generated, to add `adding` objects beyond the
    /// instance's key quota. (The write checks it again, in its transaction.)
    pub(crate) async fn kmip_check_room(&self, s: &KmipSession, adding: u64) -> Result<()> {
        let Some(max) = self.config.max_keys_per_instance else {
            return Ok(());
        };
        let live = self
            .store
            .count_kmip_objects(s.ctx.instance, &KmipObjectFilter::live())
            .await?;
        if live.saturating_add(adding) > max {
            return Err(kmip_quota_reached(max));
        }
        Ok(())
    }

    /// The record of a new object `id`, its material sealed, not yet stored: its attributes
    /// checked, its state Pre-Active, or Active when the template's Activation Date has come.
    pub(crate) async fn kmip_new_record(
        &self,
        s: &KmipSession,
        id: Uuid,
        new: NewKmipObject,
    ) -> Result<KmipObjectRecord> {
        let attrs = new
            .attributes
            .into_iter()
            .map(admit)
            .collect::<Result<Vec<_>>>()?;
        let now = self.clock.now();
        let sealed = self.seal_kmip(s, id, &new.material).await?;
        let mut stored = StoredAttributes {
            v: 1,
            attrs,
            format: new.format,
            algorithm: new.algorithm,
            length: new.length,
            subtype: new.subtype,
            presented: new.presented,
            changed: secs(now),
            ..StoredAttributes::default()
        };
        stored.born_sensitive = stored.sensitive();
        stored.born_unextractable = !stored.extractable();
        // Dates that have already come make it Active, or Deactivated, from the start.
        let state = stored.state_at(KmipState::PreActive, secs(now));
        Ok(KmipObjectRecord {
            instance: s.ctx.instance,
            adapter: s.adapter,
            id,
            object_type: new.object_type,
            state: state.code(),
            name: first_name(&stored.attrs),
            algorithm: new.algorithm,
            row_version: 1,
            created_at: now,
            created_by: s.certificate.to_string(),
            updated_at: now,
            destroyed_at: None,
            attributes: encode(&stored)?,
            material: Some(sealed),
        })
    }

    /// Puts `st` into `r` as a change made now by the session's certificate.
    pub(crate) fn kmip_restamp(
        &self,
        s: &KmipSession,
        r: &mut KmipObjectRecord,
        st: &mut StoredAttributes,
    ) -> Result<()> {
        let now = self.clock.now();
        st.changed = secs(now);
        st.updated_by = Some(s.certificate);
        r.updated_at = now;
        r.name = first_name(&st.attrs);
        r.attributes = encode(st)?;
        Ok(())
    }

    /// Changes an object under compare-and-swap: `f` sees the stored record and its
    /// attributes and may refuse; a concurrent change (from another node: changes of one
    /// object on this node queue on its stripe lock) is retried.
    pub(crate) async fn kmip_change<T>(
        &self,
        s: &KmipSession,
        id: &str,
        mut f: impl FnMut(&mut KmipObjectRecord, &mut StoredAttributes) -> Result<T>,
    ) -> Result<T> {
        let uid = Uuid::parse_str(id).map_err(|_| object_not_found())?;
        let _queued = self.cache.stripe_of(uid.as_bytes()).lock().await;
        for attempt in 0..CHANGE_TRIES {
            if attempt > 0 {
                // Another node wrote the object between our read and our write. Uses of
                // one object on this node queue (above); across nodes, a random wait that
                // doubles with each loss lets the nodes' writes fall apart instead of
                // colliding again.
                self.kmip_backoff(attempt).await;
            }
            let mut r = self.kmip_record(s, id).await?;
            let mut st = stored(&r)?;
            // `f` sees, and the write keeps, the state that time has brought.
            r.state = state_now(&r, &st, self.kmip_now())?.code();
            let out = f(&mut r, &mut st)?;
            self.kmip_restamp(s, &mut r, &mut st)?;
            let written = self.store.update_kmip_object(&r).await;
            self.kmip_cache.remove(&(r.instance, r.id));
            match written {
                Ok(_) => return Ok(out),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(object_not_found()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::new(
            ErrorKind::Conflict,
            "the object was changed concurrently; retry",
        ))
    }

    /// Waits a random time of up to 2^`attempt` ms (at most 32 ms) after a lost
    /// compare-and-swap.
    pub(crate) async fn kmip_backoff(&self, attempt: u32) {
        let cap = 1u64 << attempt.min(5);
        let mut b = [0u8; 2];
        let jitter = match self.provider.fill_random(&mut b) {
            Ok(()) => u64::from(u16::from_le_bytes(b)) % (cap * 1000 + 1),
            Err(_) => cap * 500,
        };
        tokio::time::sleep(Duration::from_micros(jitter)).await;
    }

    /// Registers an object whose material the client supplies.
    pub async fn kmip_register(&self, s: &KmipSession, new: NewKmipObject) -> Result<Uuid> {
        let op = async {
            self.check_kmip_material(&new)?;
            // Public keys and certificates hold no secret: keyCreateImportAccess governs the
            // import of the rest.
            if !matches!(
                new.object_type,
                object_type::PUBLIC_KEY | object_type::CERTIFICATE
            ) {
                self.check_key_creation(&s.ctx, true).await?;
            }
            self.kmip_store_new(s, new).await
        };
        self.audited(&s.ctx, Action::KmipRegister, Role::Writer, None, op)
            .await
    }

    /// Reads an object with its material. Destroyed objects have none.
    pub async fn kmip_get(&self, s: &KmipSession, id: &str) -> Result<KmipManaged> {
        let op = async {
            let c = self.kmip_cached(s, id).await?;
            let managed = c.managed(self.kmip_now()).ok_or_else(|| {
                ServiceError::new(
                    ErrorKind::KmipObjectNotFound,
                    "The object is destroyed: its key value is gone",
                )
            })?;
            check_export(&c.stored)?;
            Ok(managed)
        };
        self.audited(&s.ctx, Action::KmipGet, Role::ReaderPlus, Some(id), op)
            .await
    }

    /// Every attribute of an object, the server-maintained ones included.
    pub async fn kmip_attributes(
        &self,
        s: &KmipSession,
        id: &str,
        action: Action,
    ) -> Result<Vec<Attribute>> {
        let op = async {
            let r = self.kmip_record(s, id).await?;
            all_attributes(&r, &stored(&r)?, self.kmip_now())
        };
        self.audited(&s.ctx, action, Role::Reader, Some(id), op)
            .await
    }

    /// Adds an attribute instance (a single-valued attribute only when absent).
    pub async fn kmip_add_attribute(&self, s: &KmipSession, id: &str, a: Attribute) -> Result<u32> {
        let a = admit(a);
        let op = self.kmip_change(s, id, |r, st| {
            let a = a.clone()?;
            check_change(r, &a.name)?;
            let count = st.attrs.iter().filter(|x| x.name == a.name).count();
            if count > 0 && names::SINGLE_VALUED.contains(&a.name.as_str()) {
                return Err(ServiceError::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "The object already has the single-valued attribute '{}'",
                        a.name
                    ),
                ));
            }
            st.attrs.push(a);
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        });
        self.audited(&s.ctx, Action::KmipAddAttribute, Role::Writer, Some(id), op)
            .await
    }

    /// Replaces attribute instance `index` (the first when `None`) of `a.name`; with
    /// `create`, an absent attribute is added (KMIP 2.x SetAttribute semantics).
    pub async fn kmip_modify_attribute(
        &self,
        s: &KmipSession,
        id: &str,
        a: Attribute,
        index: Option<u32>,
    ) -> Result<u32> {
        let a = admit(a);
        let op = self.kmip_change(s, id, |r, st| {
            let a = a.clone()?;
            check_change(r, &a.name)?;
            if a.name == names::USAGE_LIMITS {
                check_limits_unused(st)?;
            }
            check_flag_change(st, &a.name, Some(&a.value))?;
            let want = index.unwrap_or(0) as usize;
            let slot = st
                .attrs
                .iter_mut()
                .filter(|x| x.name == a.name)
                .nth(want)
                .ok_or_else(|| {
                    ServiceError::new(
                        ErrorKind::KmipObjectNotFound,
                        format!("The object has no attribute '{}' at index {want}", a.name),
                    )
                })?;
            slot.value = a.value;
            Ok(index.unwrap_or(0))
        });
        self.audited(
            &s.ctx,
            Action::KmipModifyAttribute,
            Role::Writer,
            Some(id),
            op,
        )
        .await
    }

    /// Deletes attribute instance `index` (the first when `None`) of `name`, returning it.
    pub async fn kmip_delete_attribute(
        &self,
        s: &KmipSession,
        id: &str,
        name: &str,
        index: Option<u32>,
    ) -> Result<Attribute> {
        let op = self.kmip_change(s, id, |r, st| {
            check_change(r, name)?;
            check_flag_change(st, name, None)?;
            let want = index.unwrap_or(0) as usize;
            let pos = st
                .attrs
                .iter()
                .enumerate()
                .filter(|(_, x)| x.name == name)
                .nth(want)
                .map(|(i, _)| i)
                .ok_or_else(|| {
                    ServiceError::new(
                        ErrorKind::KmipObjectNotFound,
                        format!("The object has no attribute '{name}' at index {want}"),
                    )
                })?;
            Ok(st.attrs.remove(pos))
        });
        self.audited(
            &s.ctx,
            Action::KmipDeleteAttribute,
            Role::Writer,
            Some(id),
            op,
        )
        .await
    }

    /// Pre-Active → Active.
    pub async fn kmip_activate(&self, s: &KmipSession, id: &str) -> Result<()> {
        let now = self.kmip_now();
        let op = self.kmip_change(s, id, |r, st| {
            let state = state_of(r)?;
            if state != KmipState::PreActive {
                return Err(wrong_state(
                    "activated (only a Pre-Active object can)",
                    state,
                ));
            }
            r.state = KmipState::Active.code();
            // Activate sets the Activation Date to now, over a later one the client set.
            st.attrs.retain(|a| a.name != names::ACTIVATION_DATE);
            st.activated = Some(now);
            Ok(())
        });
        self.audited(&s.ctx, Action::KmipActivate, Role::Writer, Some(id), op)
            .await
    }

    /// Revocation: compromise → Compromised (from any state but the destroyed ones);
    /// another reason → Deactivated (from Pre-Active or Active).
    pub async fn kmip_revoke(
        &self,
        s: &KmipSession,
        id: &str,
        reason: RevocationReason,
        code: u32,
        message: Option<String>,
        occurred: Option<i64>,
    ) -> Result<()> {
        let now = self.kmip_now();
        let op = self.kmip_change(s, id, |r, st| {
            let state = state_of(r)?;
            let next = match (reason, state) {
                (_, KmipState::Destroyed | KmipState::DestroyedCompromised) => {
                    return Err(wrong_state("revoked", state))
                }
                (RevocationReason::Compromise, _) => {
                    st.compromised = Some(now);
                    if let Some(t) = occurred {
                        st.attrs
                            .retain(|a| a.name != names::COMPROMISE_OCCURRENCE_DATE);
                        st.attrs.push(Attribute::new(
                            names::COMPROMISE_OCCURRENCE_DATE,
                            AttrValue::DateTime(t),
                        ));
                    }
                    KmipState::Compromised
                }
                (RevocationReason::Other(_), KmipState::PreActive | KmipState::Active) => {
                    st.attrs.retain(|a| a.name != names::DEACTIVATION_DATE);
                    st.deactivated = Some(now);
                    KmipState::Deactivated
                }
                (RevocationReason::Other(_), _) => return Err(wrong_state("revoked again", state)),
            };
            r.state = next.code();
            st.revocation = Some((code, message.clone()));
            Ok(())
        });
        self.audited(&s.ctx, Action::KmipRevoke, Role::Writer, Some(id), op)
            .await
    }

    /// Destroys an object: its material is erased. An Active object must be revoked
    /// first (the rule vCenter relies on).
    pub async fn kmip_destroy(&self, s: &KmipSession, id: &str) -> Result<()> {
        let op = async {
            let r = self.kmip_record(s, id).await?;
            self.destroy_kmip_record(r, false, Some(s.certificate))
                .await
        };
        self.audited(&s.ctx, Action::KmipDestroy, Role::Manager, Some(id), op)
            .await
    }

    /// The destroy rule shared by KMIP Destroy and the management API's delete.
    pub(crate) async fn destroy_kmip_record(
        &self,
        mut r: KmipObjectRecord,
        force: bool,
        by: Option<Uuid>,
    ) -> Result<()> {
        for attempt in 0..CHANGE_TRIES {
            if attempt > 0 {
                self.kmip_backoff(attempt).await;
            }
            let mut st = stored(&r)?;
            let now = self.clock.now();
            let state = state_now(&r, &st, secs(now))?;
            let next = match state {
                KmipState::Active if !force => {
                    return Err(wrong_state(
                        "destroyed while Active: revoke it first",
                        state,
                    ))
                }
                KmipState::Destroyed | KmipState::DestroyedCompromised => {
                    return Err(ServiceError::new(
                        ErrorKind::KmipObjectNotFound,
                        "The object is already destroyed",
                    ))
                }
                KmipState::Compromised => KmipState::DestroyedCompromised,
                _ => KmipState::Destroyed,
            };
            st.destroyed = Some(secs(now));
            st.destroyed_by = by;
            st.changed = secs(now);
            r.state = next.code();
            r.material = None;
            r.destroyed_at = Some(now);
            r.updated_at = now;
            r.attributes = encode(&st)?;
            let written = self.store.update_kmip_object(&r).await;
            self.kmip_cache.remove(&(r.instance, r.id));
            match written {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => {
                    r = match self.store.get_kmip_object(r.instance, r.id).await {
                        Ok(fresh) => fresh,
                        Err(StoreError::NotFound) => return Err(object_not_found()),
                        Err(e) => return Err(e.into()),
                    };
                }
                Err(StoreError::NotFound) => return Err(object_not_found()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::new(
            ErrorKind::Conflict,
            "the object was changed concurrently; retry",
        ))
    }

    /// Locate: object ids matching every criterion, oldest first, after `offset` and at
    /// most `max_items`; and how many match in all (KMIP's Located Items).
    pub async fn kmip_locate(&self, s: &KmipSession, q: KmipLocate) -> Result<(Vec<Uuid>, u64)> {
        let op = async {
            // A stored state may be behind the one time has brought (Pre-Active → Active
            // → Deactivated), never ahead: the states that can lead to the one asked for
            // are read, and each object's state at this moment decides.
            let wanted = q.state.and_then(KmipState::from_code);
            let filter = KmipObjectFilter {
                adapter: Some(s.adapter),
                states: match (q.state, wanted) {
                    (Some(_), Some(KmipState::Active)) => vec![1, 2],
                    (Some(_), Some(KmipState::Deactivated)) => vec![1, 2, 3],
                    (Some(st), _) => vec![st],
                    (None, _) => vec![1, 2, 3, 4],
                },
                object_type: q.object_type,
                name: q.name.clone(),
                algorithm: q.algorithm,
            };
            let cap = q
                .max_items
                .map_or(LOCATE_RETURN_LIMIT, |m| m.min(LOCATE_RETURN_LIMIT));
            let instance = s.ctx.instance;
            if wanted.is_none() && q.attributes.is_empty() {
                // The keystore's filter is the whole query: it counts and pages.
                let matched = self.store.count_kmip_objects(instance, &filter).await?;
                let rows = self
                    .store
                    .list_kmip_objects(instance, &filter, q.offset, cap)
                    .await?;
                return Ok((rows.iter().map(|r| r.id).collect(), matched));
            }
            // Every page of the keystore's matches, each object checked here.
            let now = self.kmip_now();
            let mut out = Vec::new();
            let mut matched = 0u64;
            let mut read = 0u64;
            loop {
                let rows = self
                    .store
                    .list_kmip_objects(instance, &filter, read, LOCATE_PAGE)
                    .await?;
                read += rows.len() as u64;
                for r in &rows {
                    let st = stored(r)?;
                    let state = state_now(r, &st, now)?;
                    if wanted.is_some_and(|w| state != w)
                        || !matches_all(&all_attributes(r, &st, now)?, &q.attributes)
                    {
                        continue;
                    }
                    matched += 1;
                    if matched > q.offset && out.len() < cap as usize {
                        out.push(r.id);
                    }
                }
                if rows.len() < LOCATE_PAGE as usize {
                    return Ok((out, matched));
                }
            }
        };
        self.audited(&s.ctx, Action::KmipLocate, Role::Reader, None, op)
            .await
    }
}

/// Whether an object's attributes meet Locate's criteria: each attribute asked for is
/// present with that value, except a date given twice, which is a range (KMIP: both
/// bounds inclusive).
fn matches_all(all: &[Attribute], wanted: &[Attribute]) -> bool {
    let mut seen: Vec<&str> = Vec::new();
    for w in wanted {
        if seen.contains(&w.name.as_str()) {
            continue;
        }
        seen.push(&w.name);
        let same: Vec<&AttrValue> = wanted
            .iter()
            .filter(|x| x.name == w.name)
            .map(|x| &x.value)
            .collect();
        let have = all.iter().filter(|a| a.name == w.name).map(|a| &a.value);
        let ok = match same.as_slice() {
            [AttrValue::DateTime(a), AttrValue::DateTime(b)] => {
                let (lo, hi) = ((*a).min(*b), (*a).max(*b));
                have.into_iter()
                    .any(|v| matches!(v, AttrValue::DateTime(t) if (lo..=hi).contains(t)))
            }
            _ => same
                .iter()
                .all(|want| all.iter().any(|a| a.name == w.name && &&a.value == want)),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The attribute list of an object: the stored client attributes and the ones the
/// server maintains.
pub(crate) fn all_attributes(
    r: &KmipObjectRecord,
    st: &StoredAttributes,
    now: i64,
) -> Result<Vec<Attribute>> {
    let state = state_now(r, st, now)?;
    let mut out = vec![
        Attribute::new(names::UNIQUE_IDENTIFIER, AttrValue::Text(r.id.to_string())),
        Attribute::new(names::OBJECT_TYPE, AttrValue::Enum(r.object_type)),
        Attribute::new(names::STATE, AttrValue::Enum(state.code())),
        Attribute::new(names::INITIAL_DATE, AttrValue::DateTime(secs(r.created_at))),
        Attribute::new(names::LAST_CHANGE_DATE, AttrValue::DateTime(st.changed)),
    ];
    if let Some(a) = st.algorithm {
        out.push(Attribute::new(
            names::CRYPTOGRAPHIC_ALGORITHM,
            AttrValue::Enum(a),
        ));
    }
    if let Some(l) = st.length {
        out.push(Attribute::new(
            names::CRYPTOGRAPHIC_LENGTH,
            AttrValue::Int(l),
        ));
    }
    let has = |n: &str| st.attrs.iter().any(|a| a.name == n);
    if r.object_type == object_type::CERTIFICATE && !has(names::CERTIFICATE_TYPE) {
        out.push(Attribute::new(
            names::CERTIFICATE_TYPE,
            AttrValue::Enum(st.subtype.unwrap_or(1)),
        ));
    }
    if st.has_export_flags() {
        out.push(Attribute::new(
            names::ALWAYS_SENSITIVE,
            AttrValue::Bool(st.born_sensitive && st.sensitive()),
        ));
        out.push(Attribute::new(
            names::NEVER_EXTRACTABLE,
            AttrValue::Bool(st.born_unextractable && !st.extractable()),
        ));
    }
    if let Some(t) = st.activated.filter(|_| !has(names::ACTIVATION_DATE)) {
        out.push(Attribute::new(
            names::ACTIVATION_DATE,
            AttrValue::DateTime(t),
        ));
    }
    if let Some(t) = st.deactivated.filter(|_| !has(names::DEACTIVATION_DATE)) {
        out.push(Attribute::new(
            names::DEACTIVATION_DATE,
            AttrValue::DateTime(t),
        ));
    }
    if let Some(t) = st.compromised {
        out.push(Attribute::new(
            names::COMPROMISE_DATE,
            AttrValue::DateTime(t),
        ));
    }
    if let Some(t) = st.destroyed {
        out.push(Attribute::new(names::DESTROY_DATE, AttrValue::DateTime(t)));
    }
    if let Some((code, msg)) = &st.revocation {
        let mut f = vec![(field::REVOCATION_REASON_CODE, AttrValue::Enum(*code))];
        if let Some(m) = msg {
            f.push((field::REVOCATION_MESSAGE, AttrValue::Text(m.clone())));
        }
        out.push(Attribute::new(
            names::REVOCATION_REASON,
            AttrValue::Struct(f),
        ));
    }
    // Objects stored before the server kept Always Sensitive and Never Extractable may
    // hold a client's value for them: the server's answer stands instead.
    out.extend(
        st.attrs
            .iter()
            .filter(|a| !names::SERVER_MAINTAINED.contains(&a.name.as_str()))
            .cloned(),
    );
    Ok(out)
}

#[cfg(test)]
mod tests_stored;
