//! The library's state in Rust types: slots (one per configured token), sessions, login,
//! and objects. Every public method answers `Result<_, Ckr>`; the FFI layer only converts
//! C arguments and copies results out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use strongroom_client::grep11::keystore as ks;
use strongroom_client::grep11::pb;
use strongroom_model::pkcs11::{cka, ckm, cko, ckr, Cka, Ckm, Cko, Ckr};
use zeroize::Zeroizing;

use crate::config::{Config, Token};
use crate::object::{self, Home, Object, Stored, Template, Value};
use crate::ops::Ops;
use crate::remote::{CallError, Remote, Who};
use crate::sealed::Spaces;

/// One GREP11 call (or one call of the token-object keystore) on a token's remote, run on
/// the calling thread's engine: `rpc!(library, remote, request)`.
macro_rules! rpc {
    ($lib:expr, $remote:expr, $req:expr) => {
        $lib.block_on($remote.call($req))
    };
}
pub(crate) use rpc;

/// Results of library calls.
pub type Result<T, E = Ckr> = std::result::Result<T, E>;

/// `CKU_SO`.
pub const CKU_SO: u64 = 0;
/// `CKU_USER`.
pub const CKU_USER: u64 = 1;
/// `CKU_CONTEXT_SPECIFIC`: the PIN again, for one use of a key with
/// `CKA_ALWAYS_AUTHENTICATE`.
pub const CKU_CONTEXT_SPECIFIC: u64 = 2;

/// A mechanism with its parameter, in GREP11's form.
pub type Mechanism = pb::Mechanism;

/// One slot: a token's server and what the library cached of it.
pub struct Slot {
    /// The slot id.
    pub id: u64,
    /// The server.
    pub remote: Remote,
    /// Its keystores' passwords, and what they give.
    spaces: Spaces,
    mechs: Mutex<Option<Vec<Ckm>>>,
}

/// A session.
pub struct Session {
    /// Its slot.
    pub slot: u64,
    /// Read/write.
    pub rw: bool,
    /// The objects a C_FindObjects run has left to return.
    pub found: Option<Vec<u64>>,
    /// Cryptographic operations in progress.
    pub ops: Ops,
}

#[derive(Default)]
struct State {
    next: u64,
    sessions: HashMap<u64, Arc<Mutex<Session>>>,
    objects: HashMap<u64, (u64, Arc<Object>)>,
    /// Slots whose token objects are loaded, and as whom.
    loaded: HashMap<u64, Who>,
}

impl State {
    fn handle(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

/// The library.
pub struct Library {
    slots: Vec<Slot>,
    engines: crate::engines::Engines,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Locks a session (a panic in another thread does not make it unusable).
pub fn lock_session(s: &Mutex<Session>) -> MutexGuard<'_, Session> {
    lock(s)
}

/// Logs a failed call (never a secret: details come from the server's refusals and the
/// transport) and answers its CK_RV.
pub fn fail(e: CallError) -> Ckr {
    crate::log::warn(&format!("{:#x}: {}", e.ckr.0, e.detail));
    e.ckr
}

/// GREP11 mechanisms this library cannot carry: BLS aggregation signs and derives without a
/// key, which C_SignInit and C_DeriveKey cannot express. It is left out of
/// C_GetMechanismList rather than listed and then refused.
const NOT_CARRIED: [Ckm; 1] = [ckm::IBM_EC_AGGREGATE];

impl Library {
    /// A library for `cfg`; nothing is connected yet.
    pub fn new(cfg: Config) -> std::result::Result<Library, String> {
        let slots = cfg
            .tokens
            .into_iter()
            .map(|t: Token| {
                Ok(Slot {
                    id: t.slot,
                    spaces: Spaces::of(&t),
                    remote: Remote::new(t)?,
                    mechs: Mutex::new(None),
                })
            })
            .collect::<std::result::Result<_, String>>()?;
        Ok(Library {
            slots,
            engines: crate::engines::Engines::default(),
            state: Mutex::new(State::default()),
        })
    }

    /// Runs a call on an engine that the calling thread drives (see [`crate::engines`]).
    pub fn block_on<T, F>(&self, f: F) -> std::result::Result<T, CallError>
    where
        F: std::future::Future<Output = std::result::Result<T, CallError>>,
    {
        self.engines.run(f).map_err(CallError::device)?
    }

    /// The slot ids.
    pub fn slot_ids(&self) -> Vec<u64> {
        self.slots.iter().map(|s| s.id).collect()
    }

    /// A slot.
    pub fn slot(&self, id: u64) -> Result<&Slot> {
        self.slots
            .iter()
            .find(|s| s.id == id)
            .ok_or(ckr::SLOT_ID_INVALID)
    }

    /// The mechanisms the server implements and this library can pass parameters for.
    pub fn mechanisms(&self, slot: u64) -> Result<Vec<Ckm>> {
        let s = self.slot(slot)?;
        if let Some(m) = lock(&s.mechs).clone() {
            return Ok(m);
        }
        let r = rpc!(self, s.remote, pb::GetMechanismListRequest {}).map_err(fail)?;
        let list: Vec<Ckm> = r
            .mechs
            .into_iter()
            .map(Ckm)
            .filter(|m| !NOT_CARRIED.contains(m))
            .collect();
        *lock(&s.mechs) = Some(list.clone());
        Ok(list)
    }

    /// A mechanism's key sizes and flags, as the server states them.
    pub fn mechanism_info(&self, slot: u64, m: Ckm) -> Result<pb::MechanismInfo> {
        let s = self.slot(slot)?;
        if NOT_CARRIED.contains(&m) {
            return Err(ckr::MECHANISM_INVALID);
        }
        let r = rpc!(self, s.remote, pb::GetMechanismInfoRequest { mech: m.0 }).map_err(
            |e| match e.ckr {
                ckr::MECHANISM_INVALID => ckr::MECHANISM_INVALID,
                _ => fail(e),
            },
        )?;
        r.mech_info.ok_or(ckr::DEVICE_ERROR)
    }

    // ---- sessions -------------------------------------------------------------------

    /// Opens a session.
    pub fn open_session(&self, slot: u64, rw: bool) -> Result<u64> {
        self.slot(slot)?;
        let mut st = lock(&self.state);
        let h = st.handle();
        st.sessions.insert(
            h,
            Arc::new(Mutex::new(Session {
                slot,
                rw,
                found: None,
                ops: Ops::default(),
            })),
        );
        Ok(h)
    }

    /// A session.
    pub fn session(&self, h: u64) -> Result<Arc<Mutex<Session>>> {
        lock(&self.state)
            .sessions
            .get(&h)
            .cloned()
            .ok_or(ckr::SESSION_HANDLE_INVALID)
    }

    /// The slot and read/write flag of a session.
    pub fn session_slot(&self, h: u64) -> Result<(u64, bool)> {
        let s = self.session(h)?;
        let s = lock(&s);
        Ok((s.slot, s.rw))
    }

    /// Closes a session and destroys its session objects.
    pub fn close_session(&self, h: u64) -> Result<()> {
        let mut st = lock(&self.state);
        let s = st.sessions.remove(&h).ok_or(ckr::SESSION_HANDLE_INVALID)?;
        let slot = lock(&s).slot;
        st.objects.retain(|_, (_, o)| o.home != Home::Session(h));
        if !st.sessions.values().any(|s| lock(s).slot == slot) {
            // The last session of a slot closed: the login ends (PKCS#11 §5.6).
            drop(st);
            if let Ok(sl) = self.slot(slot) {
                sl.remote.logout();
            }
        }
        Ok(())
    }

    /// Closes every session of a slot.
    pub fn close_all(&self, slot: u64) -> Result<()> {
        self.slot(slot)?;
        let hs: Vec<u64> = lock(&self.state)
            .sessions
            .iter()
            .filter(|(_, s)| lock(s).slot == slot)
            .map(|(h, _)| *h)
            .collect();
        for h in hs {
            self.close_session(h)?;
        }
        Ok(())
    }

    /// Who is logged in on a slot.
    pub fn who(&self, slot: u64) -> Result<Who> {
        Ok(self.slot(slot)?.remote.who())
    }

    /// `C_Login`: the PIN is the API key of the user (`CKU_USER`) or the security officer.
    pub fn login(&self, h: u64, user: u64, pin: Zeroizing<String>) -> Result<()> {
        let (slot, rw) = self.session_slot(h)?;
        if user == CKU_CONTEXT_SPECIFIC {
            return self.login_for_use(h, slot, &pin);
        }
        let who = match user {
            CKU_SO => Who::SecurityOfficer,
            CKU_USER => Who::User,
            _ => return Err(ckr::USER_TYPE_INVALID),
        };
        let remote = &self.slot(slot)?.remote;
        match (remote.who(), who) {
            (Who::Anonymous, _) => {}
            (w, x) if w == x => return Err(ckr::USER_ALREADY_LOGGED_IN),
            _ => return Err(ckr::USER_ANOTHER_ALREADY_LOGGED_IN),
        }
        if who == Who::SecurityOfficer {
            let st = lock(&self.state);
            let ro = st
                .sessions
                .values()
                .any(|s| matches!(&*lock(s), Session { slot: sl, rw: false, .. } if *sl == slot));
            if ro || !rw {
                return Err(ckr::SESSION_READ_ONLY_EXISTS);
            }
        }
        if pin.is_empty() {
            return Err(ckr::PIN_INCORRECT);
        }
        self.block_on(remote.login(who, pin)).map_err(fail)?;
        lock(&self.state).loaded.remove(&slot);
        // A password-protected keystore is opened now, so that a wrong password is
        // CKR_PIN_INCORRECT here rather than at the first search.
        if who == Who::User && self.slot(slot)?.spaces.protected(true) {
            if let Err(e) = self.load_token_objects(slot) {
                remote.logout();
                return Err(e);
            }
        }
        Ok(())
    }

    /// `C_Login` with `CKU_CONTEXT_SPECIFIC`: the logged-in user's PIN again, which lets
    /// the session's pending use of a `CKA_ALWAYS_AUTHENTICATE` key go ahead (once).
    fn login_for_use(&self, h: u64, slot: u64, pin: &str) -> Result<()> {
        let remote = &self.slot(slot)?.remote;
        if remote.who() != Who::User {
            return Err(ckr::USER_NOT_LOGGED_IN);
        }
        let sess = self.session(h)?;
        let mut s = lock(&sess);
        let waiting = crate::ops::ASKS_PIN_AGAIN
            .into_iter()
            .any(|k| s.ops.slot(k).as_ref().is_some_and(|op| op.reauth));
        if !waiting {
            return Err(ckr::OPERATION_NOT_INITIALIZED);
        }
        if !remote.pin_matches(pin) {
            return Err(ckr::PIN_INCORRECT);
        }
        for k in crate::ops::ASKS_PIN_AGAIN {
            if let Some(op) = s.ops.slot(k).as_mut() {
                op.reauth = false;
            }
        }
        Ok(())
    }

    /// `C_Logout`.
    pub fn logout(&self, h: u64) -> Result<()> {
        let (slot, _) = self.session_slot(h)?;
        let remote = &self.slot(slot)?.remote;
        if remote.who() == Who::Anonymous {
            return Err(ckr::USER_NOT_LOGGED_IN);
        }
        remote.logout();
        let mut st = lock(&self.state);
        st.loaded.remove(&slot);
        // Private objects are no longer visible: token objects are reloaded on next use,
        // private session objects are dropped.
        st.objects
            .retain(|_, (s, o)| *s != slot || (!o.token() && !o.private()));
        for s in st.sessions.values() {
            let mut s = lock(s);
            if s.slot == slot {
                s.found = None;
                s.ops = Ops::default();
            }
        }
        Ok(())
    }

    /// `C_InitToken` by the security officer: empties both keystores of the token.
    pub fn init_token(&self, slot: u64, pin: Zeroizing<String>) -> Result<()> {
        let s = self.slot(slot)?;
        if lock(&self.state)
            .sessions
            .values()
            .any(|x| lock(x).slot == slot)
        {
            return Err(ckr::SESSION_EXISTS);
        }
        self.block_on(s.remote.login(Who::SecurityOfficer, pin))
            .map_err(fail)?;
        let r = self.clear_spaces(s);
        s.remote.logout();
        r?;
        let mut st = lock(&self.state);
        st.loaded.remove(&slot);
        st.objects.retain(|_, (sl, _)| *sl != slot);
        Ok(())
    }

    fn clear_spaces(&self, s: &Slot) -> Result<()> {
        let cfg = s.remote.config();
        for (space, private) in [
            (cfg.user.tokenspace, true),
            (cfg.anonymous.tokenspace, false),
        ] {
            let Some(space) = space else { continue };
            let req = ks::ClearSpaceRequest {
                space: space.to_string(),
                private,
            };
            rpc!(self, s.remote, req).map_err(fail)?;
        }
        Ok(())
    }

    // ---- objects --------------------------------------------------------------------

    /// The keystore a token object with `private` goes to.
    fn space_of(&self, slot: u64, private: bool) -> Result<(String, bool)> {
        let s = self.slot(slot)?;
        let cfg = s.remote.config();
        if !cfg.remotestore {
            return Err(ckr::ATTRIBUTE_VALUE_INVALID);
        }
        let space = if private {
            if s.remote.who() != Who::User {
                return Err(ckr::USER_NOT_LOGGED_IN);
            }
            cfg.user.tokenspace
        } else {
            cfg.anonymous.tokenspace
        };
        space
            .map(|u| (u.to_string(), private))
            .ok_or(ckr::TEMPLATE_INCONSISTENT)
    }

    /// Loads the token objects this login may see, once per login.
    fn load_token_objects(&self, slot: u64) -> Result<()> {
        let s = self.slot(slot)?;
        let who = s.remote.who();
        if lock(&self.state).loaded.get(&slot) == Some(&who) {
            return Ok(());
        }
        let cfg = s.remote.config();
        let mut found = Vec::new();
        if cfg.remotestore {
            let mut spaces = vec![(cfg.anonymous.tokenspace, false)];
            if who == Who::User {
                spaces.push((cfg.user.tokenspace, true));
            }
            for (space, private) in spaces {
                let Some(space) = space else { continue };
                let req = ks::ListObjectsRequest {
                    space: space.to_string(),
                    private,
                    auth: s.spaces.proof(private)?,
                };
                let r = rpc!(self, s.remote, req).map_err(fail)?;
                for o in r.objects {
                    let Some(data) = s.spaces.decode(private, &o.id, o.data) else {
                        crate::log::error(&format!(
                            "token object {} of password-protected keystore {space} is not sealed under its password (changed outside this library?); skipped",
                            o.id
                        ));
                        continue;
                    };
                    let home = Home::Token {
                        id: o.id.clone(),
                        version: o.version,
                    };
                    match serde_json::from_slice::<Stored>(&data)
                        .ok()
                        .and_then(|x| x.object(home))
                    {
                        Some(obj) => found.push(obj),
                        None => crate::log::warn(&format!(
                            "token object {} is not in a format this library reads; skipped",
                            o.id
                        )),
                    }
                }
            }
        }
        // A token object keeps its handle for as long as the application has it open
        // (PKCS#11 §2.4): known ids get their old handles back.
        let mut st = lock(&self.state);
        let mut known: HashMap<String, u64> = st
            .objects
            .iter()
            .filter_map(|(h, (sl, o))| match &o.home {
                Home::Token { id, .. } if *sl == slot => Some((id.clone(), *h)),
                _ => None,
            })
            .collect();
        st.objects.retain(|_, (sl, o)| *sl != slot || !o.token());
        for o in found {
            let h = match &o.home {
                Home::Token { id, .. } => known.remove(id),
                Home::Session(_) => None,
            };
            let h = h.unwrap_or_else(|| st.handle());
            st.objects.insert(h, (slot, Arc::new(o)));
        }
        st.loaded.insert(slot, who);
        Ok(())
    }

    /// An object the session may use (shared: keys are read on every operation).
    pub fn object(&self, h: u64, obj: u64) -> Result<Arc<Object>> {
        let (slot, _) = self.session_slot(h)?;
        let who = self.who(slot)?;
        let st = lock(&self.state);
        match st.objects.get(&obj) {
            Some((s, o)) if *s == slot && (!o.private() || who == Who::User) => Ok(o.clone()),
            _ => Err(ckr::OBJECT_HANDLE_INVALID),
        }
    }

    /// Stores a new object (a token object goes to the server first) and returns its handle.
    pub fn add_object(&self, h: u64, mut o: Object, token: bool) -> Result<u64> {
        let (slot, rw) = self.session_slot(h)?;
        if o.private() && self.who(slot)? != Who::User {
            return Err(ckr::USER_NOT_LOGGED_IN);
        }
        o.attrs.remove(&cka::TOKEN);
        if token {
            if !rw {
                return Err(ckr::SESSION_READ_ONLY);
            }
            self.load_token_objects(slot)?;
            let (space, private) = self.space_of(slot, o.private())?;
            let id = uuid::Uuid::new_v4().to_string();
            let version = self.put_stored(slot, &space, private, &id, &o, 0)?;
            o.home = Home::Token { id, version };
        } else {
            o.home = Home::Session(h);
        }
        let mut st = lock(&self.state);
        let handle = st.handle();
        st.objects.insert(handle, (slot, Arc::new(o)));
        Ok(handle)
    }

    fn put_stored(
        &self,
        slot: u64,
        space: &str,
        private: bool,
        id: &str,
        o: &Object,
        expected: i64,
    ) -> Result<i64> {
        let s = self.slot(slot)?;
        let data = serde_json::to_vec(&Stored::of(o)).map_err(|_| ckr::GENERAL_ERROR)?;
        let req = ks::PutObjectRequest {
            space: space.to_string(),
            private,
            id: id.to_string(),
            data: s.spaces.encode(private, id, data)?,
            expected_version: expected,
            auth: s.spaces.proof(private)?,
        };
        let r = rpc!(self, s.remote, req).map_err(fail)?;
        Ok(r.version)
    }

    /// Replaces an object's attributes (and blob), on the server for a token object.
    pub fn update_object(&self, h: u64, obj: u64, mut o: Object) -> Result<()> {
        let (slot, rw) = self.session_slot(h)?;
        if let Home::Token { id, version } = &o.home {
            if !rw {
                return Err(ckr::SESSION_READ_ONLY);
            }
            let (space, private) = self.space_of(slot, o.private())?;
            let v = self.put_stored(slot, &space, private, id, &o, *version)?;
            o.home = Home::Token {
                id: id.clone(),
                version: v,
            };
        }
        lock(&self.state).objects.insert(obj, (slot, Arc::new(o)));
        Ok(())
    }

    /// `C_DestroyObject`.
    pub fn destroy_object(&self, h: u64, obj: u64) -> Result<()> {
        let o = self.object(h, obj)?;
        let (slot, rw) = self.session_slot(h)?;
        if !o.flag(cka::DESTROYABLE, true) {
            return Err(ckr::ACTION_PROHIBITED);
        }
        if let Home::Token { id, .. } = &o.home {
            if !rw {
                return Err(ckr::SESSION_READ_ONLY);
            }
            let (space, private) = self.space_of(slot, o.private())?;
            let s = self.slot(slot)?;
            let req = ks::DeleteObjectRequest {
                space,
                private,
                id: id.clone(),
                auth: s.spaces.proof(private)?,
            };
            rpc!(self, s.remote, req).map_err(fail)?;
        }
        lock(&self.state).objects.remove(&obj);
        Ok(())
    }

    /// `C_FindObjectsInit`.
    pub fn find_init(&self, h: u64, t: &Template) -> Result<()> {
        let (slot, _) = self.session_slot(h)?;
        let sess = self.session(h)?;
        if lock(&sess).found.is_some() {
            return Err(ckr::OPERATION_ACTIVE);
        }
        self.load_token_objects(slot)?;
        let who = self.who(slot)?;
        let mut hs: Vec<u64> = lock(&self.state)
            .objects
            .iter()
            .filter(|(_, (s, o))| *s == slot && (!o.private() || who == Who::User) && o.matches(t))
            .map(|(h, _)| *h)
            .collect();
        hs.sort_unstable();
        hs.reverse();
        lock(&sess).found = Some(hs);
        Ok(())
    }

    /// `C_FindObjects`: up to `max` more handles.
    pub fn find(&self, h: u64, max: usize) -> Result<Vec<u64>> {
        let sess = self.session(h)?;
        let mut s = lock(&sess);
        let found = s.found.as_mut().ok_or(ckr::OPERATION_NOT_INITIALIZED)?;
        let mut out = Vec::new();
        while out.len() < max {
            match found.pop() {
                Some(x) => out.push(x),
                None => break,
            }
        }
        Ok(out)
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&self, h: u64) -> Result<()> {
        let sess = self.session(h)?;
        let mut s = lock(&sess);
        s.found
            .take()
            .map(drop)
            .ok_or(ckr::OPERATION_NOT_INITIALIZED)
    }

    /// An attribute's value: `Ok(None)` when the object has no such attribute,
    /// `Err(CKR_ATTRIBUTE_SENSITIVE)` when it may not be read.
    pub fn attribute(&self, o: &Object, a: Cka) -> Result<Option<Value>> {
        if a == cka::TOKEN {
            return Ok(Some(Value::Bool(o.token())));
        }
        if object::secret_valued(a) && matches!(o.class(), cko::SECRET_KEY | cko::PRIVATE_KEY) {
            return Err(ckr::ATTRIBUTE_SENSITIVE);
        }
        Ok(o.attrs.get(&a).cloned())
    }

    /// `C_SetAttributeValue`: key attributes the blob binds go through the server.
    pub fn set_attributes(&self, h: u64, obj: u64, t: &Template) -> Result<()> {
        let mut o = Object::clone(&*self.object(h, obj)?);
        if !o.flag(cka::MODIFIABLE, true) {
            return Err(ckr::ACTION_PROHIBITED);
        }
        if let Some(a) = t.keys().find(|a| object::fixed(**a)) {
            crate::log::warn(&format!("attribute {:#x} cannot be changed", a.0));
            return Err(ckr::ATTRIBUTE_READ_ONLY);
        }
        // Like CKA_SENSITIVE on the server: once the PIN is asked for each use, always.
        if o.flag(object::ALWAYS_AUTHENTICATE, false)
            && matches!(
                t.get(&object::ALWAYS_AUTHENTICATE),
                Some(Value::Bool(false))
            )
        {
            crate::log::warn("CKA_ALWAYS_AUTHENTICATE can only be turned on");
            return Err(ckr::ATTRIBUTE_READ_ONLY);
        }
        let (slot, _) = self.session_slot(h)?;
        let bound: Template = t
            .iter()
            .filter(|(a, _)| object::server_side(**a) && !matches!(**a, cka::LABEL | cka::ID))
            .map(|(a, v)| (*a, v.clone()))
            .collect();
        if let (false, Some(blob)) = (bound.is_empty(), o.blob.clone()) {
            let req = pb::SetAttributeValueRequest {
                object: blob,
                attributes: object::to_pb(&bound),
            };
            let s = self.slot(slot)?;
            let r = rpc!(self, s.remote, req).map_err(fail)?;
            o.blob = Some(r.object);
        }
        for (a, v) in t {
            o.attrs.insert(*a, v.clone());
        }
        self.update_object(h, obj, o)
    }

    /// `C_CopyObject`.
    pub fn copy_object(&self, h: u64, obj: u64, t: &Template) -> Result<u64> {
        let o = self.object(h, obj)?;
        if !o.flag(cka::COPYABLE, true) {
            return Err(ckr::ACTION_PROHIBITED);
        }
        let token = match t.get(&cka::TOKEN) {
            Some(Value::Bool(b)) => *b,
            _ => o.token(),
        };
        let new = self.add_object(
            h,
            Object {
                home: Home::Session(h),
                ..Object::clone(&o)
            },
            token,
        )?;
        let rest: Template = t
            .iter()
            .filter(|(a, _)| **a != cka::TOKEN)
            .map(|(a, v)| (*a, v.clone()))
            .collect();
        if !rest.is_empty() {
            if let Err(e) = self.set_attributes(h, new, &rest) {
                let _ = self.destroy_object(h, new);
                return Err(e);
            }
        }
        Ok(new)
    }

    /// `C_CreateObject`: data objects and certificates are kept as given; keys are
    /// imported through the server (see `crypto::import`).
    pub fn create_object(&self, h: u64, t: &Template) -> Result<u64> {
        let class = match t.get(&cka::CLASS) {
            Some(Value::Ulong(c)) => Cko(*c),
            _ => return Err(ckr::TEMPLATE_INCOMPLETE),
        };
        let token = matches!(t.get(&cka::TOKEN), Some(Value::Bool(true)));
        match class {
            cko::DATA | cko::CERTIFICATE => {
                let o = Object {
                    attrs: t.clone().into(),
                    blob: None,
                    home: Home::Session(h),
                };
                self.add_object(h, o, token)
            }
            cko::SECRET_KEY | cko::PUBLIC_KEY | cko::PRIVATE_KEY => self.import(h, t, token),
            _ => Err(ckr::ATTRIBUTE_VALUE_INVALID),
        }
    }

    /// The slot of a session, and its remote.
    pub fn remote_of(&self, h: u64) -> Result<&Remote> {
        let (slot, _) = self.session_slot(h)?;
        Ok(&self.slot(slot)?.remote)
    }

    /// Checks that a session may create an object of this template (login for private
    /// objects, a read/write session for token objects).
    pub fn may_create(&self, h: u64, t: &Template, class: Cko) -> Result<()> {
        let (slot, rw) = self.session_slot(h)?;
        let token = matches!(t.get(&cka::TOKEN), Some(Value::Bool(true)));
        if token && !rw {
            return Err(ckr::SESSION_READ_ONLY);
        }
        let private = match t.get(&cka::PRIVATE) {
            Some(Value::Bool(b)) => *b,
            _ => matches!(class, cko::PRIVATE_KEY | cko::SECRET_KEY),
        };
        if private && self.who(slot)? != Who::User {
            return Err(ckr::USER_NOT_LOGGED_IN);
        }
        Ok(())
    }
}

/// Whether a CK_RV is an error of the kind "the server is gone" (the library recovers
/// from these by itself on the next call).
pub fn is_outage(rv: Ckr) -> bool {
    rv == ckr::DEVICE_ERROR
}
