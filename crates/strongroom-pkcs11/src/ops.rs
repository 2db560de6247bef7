//! Cryptographic operations in progress in a session (`C_*Init`, `C_*`, `C_*Update`,
//! `C_*Final`), and the rule PKCS#11 sets for outputs: a call without a buffer (or with
//! one too small) learns the length, and the next call returns the same bytes without
//! doing the work again. Single-part operations use the `*Single` calls (one round
//! trip); a multi-part operation gets the server's state at its first update.

use strongroom_client::grep11::pb;
use strongroom_model::pkcs11::{ckr, Ckm};

use crate::crypto::{kb, usage, CHUNK};
use crate::library::{fail, rpc, Library, Mechanism, Result};
use crate::object;

/// Which operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// C_Encrypt*.
    Encrypt,
    /// C_Decrypt*.
    Decrypt,
    /// C_Digest*.
    Digest,
    /// C_Sign*.
    Sign,
    /// C_Verify*.
    Verify,
}

/// The operations that a key with `CKA_ALWAYS_AUTHENTICATE` holds until the user gives the
/// PIN again (`C_Login` with `CKU_CONTEXT_SPECIFIC`).
pub const ASKS_PIN_AGAIN: [Kind; 2] = [Kind::Sign, Kind::Decrypt];

/// Which call of the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// C_Encrypt, C_Sign, … (the whole input at once).
    Single,
    /// C_EncryptUpdate, …
    Update,
    /// C_EncryptFinal, …
    Final,
}

/// An operation in progress.
#[derive(Debug, Clone)]
pub struct Op {
    /// The mechanism.
    pub mech: Mechanism,
    /// The key blob (none for digests).
    pub key: Option<Vec<u8>>,
    /// The server's state, once a multi-part operation started.
    pub state: Option<Vec<u8>>,
    /// The output of a call whose caller asked for the length first.
    pub pending: Option<(Step, Vec<u8>)>,
    /// The key has `CKA_ALWAYS_AUTHENTICATE`: the operation waits for the user's PIN
    /// (`C_Login` with `CKU_CONTEXT_SPECIFIC`) before it may run.
    pub reauth: bool,
}

/// The operations of a session, one of each kind at most.
#[derive(Debug, Default)]
pub struct Ops {
    encrypt: Option<Op>,
    decrypt: Option<Op>,
    digest: Option<Op>,
    sign: Option<Op>,
    verify: Option<Op>,
}

impl Ops {
    /// The slot of an operation kind.
    pub fn slot(&mut self, k: Kind) -> &mut Option<Op> {
        match k {
            Kind::Encrypt => &mut self.encrypt,
            Kind::Decrypt => &mut self.decrypt,
            Kind::Digest => &mut self.digest,
            Kind::Sign => &mut self.sign,
            Kind::Verify => &mut self.verify,
        }
    }
}

/// What an output call gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// The caller asked for the length.
    Len(usize),
    /// The caller's buffer is too small; this is the length needed.
    TooSmall(usize),
    /// The output.
    Done(Vec<u8>),
}

/// Applies the length rule to a computed output: keeps it in `op` for the next call when
/// the caller did not take it.
pub fn deliver(op: &mut Op, step: Step, out: Vec<u8>, cap: Option<usize>) -> Out {
    match cap {
        None => {
            let n = out.len();
            op.pending = Some((step, out));
            Out::Len(n)
        }
        Some(c) if c < out.len() => {
            let n = out.len();
            op.pending = Some((step, out));
            Out::TooSmall(n)
        }
        Some(_) => Out::Done(out),
    }
}

impl Library {
    /// `C_*Init`.
    pub fn op_init(&self, h: u64, kind: Kind, m: Mechanism, key: Option<u64>) -> Result<()> {
        let (slot, _) = self.session_slot(h)?;
        let sess = self.session(h)?;
        if crate::library::lock_session(&sess).ops.slot(kind).is_some() {
            return Err(ckr::OPERATION_ACTIVE);
        }
        self.checked_mech(slot, &m)?;
        let (blob, reauth) = match (usage(kind), key) {
            (Some((attr, _)), Some(k)) => {
                let (o, blob) = self.key_for(h, k, attr, Ckm(m.mechanism))?;
                let reauth =
                    ASKS_PIN_AGAIN.contains(&kind) && o.flag(object::ALWAYS_AUTHENTICATE, false);
                (Some(blob), reauth)
            }
            (None, None) => (None, false),
            _ => return Err(ckr::KEY_HANDLE_INVALID),
        };
        *crate::library::lock_session(&sess).ops.slot(kind) = Some(Op {
            mech: m,
            key: blob,
            state: None,
            pending: None,
            reauth,
        });
        Ok(())
    }

    /// Ends an operation.
    pub fn op_cancel(&self, h: u64, kind: Kind) -> Result<()> {
        let sess = self.session(h)?;
        *crate::library::lock_session(&sess).ops.slot(kind) = None;
        Ok(())
    }

    /// One output call of an operation (`C_Encrypt`, `C_EncryptUpdate`, `C_EncryptFinal`,
    /// and the same of decrypt, digest and sign). `cap` is the caller's buffer size, or
    /// `None` when it asks for the length.
    pub fn op_run(
        &self,
        h: u64,
        kind: Kind,
        step: Step,
        data: &[u8],
        cap: Option<usize>,
    ) -> Result<Out> {
        let sess = self.session(h)?;
        let mut op = crate::library::lock_session(&sess)
            .ops
            .slot(kind)
            .clone()
            .ok_or(ckr::OPERATION_NOT_INITIALIZED)?;
        if op.reauth {
            // As SoftHSM2: the use without the PIN ends the operation.
            *crate::library::lock_session(&sess).ops.slot(kind) = None;
            return Err(ckr::USER_NOT_LOGGED_IN);
        }
        let out = match op.pending.take() {
            Some((s, out)) if s == step => out,
            _ => match self.op_call(h, kind, step, data, &mut op) {
                Ok(out) => out,
                Err(e) => {
                    *crate::library::lock_session(&sess).ops.slot(kind) = None;
                    return Err(e);
                }
            },
        };
        let result = deliver(&mut op, step, out, cap);
        let mut s = crate::library::lock_session(&sess);
        let slot = s.ops.slot(kind);
        *slot = match (&result, step) {
            (Out::Done(_), Step::Single | Step::Final) => None,
            _ => Some(op),
        };
        Ok(result)
    }

    /// `C_Verify` (`Single`), `C_VerifyUpdate` and `C_VerifyFinal`.
    pub fn verify(&self, h: u64, step: Step, data: &[u8], signature: &[u8]) -> Result<()> {
        let sess = self.session(h)?;
        let mut op = crate::library::lock_session(&sess)
            .ops
            .slot(Kind::Verify)
            .clone()
            .ok_or(ckr::OPERATION_NOT_INITIALIZED)?;
        let remote = self.remote_of(h)?;
        let r: Result<()> = match step {
            Step::Single if data.len() > CHUNK => (|| {
                for part in data.chunks(CHUNK) {
                    let state = self.ensure_state(h, Kind::Verify, &mut op)?;
                    let req = pb::VerifyUpdateRequest {
                        state,
                        data: part.to_vec(),
                    };
                    let r = rpc!(self, remote, req).map_err(fail)?;
                    op.state = Some(r.state);
                }
                let state = self.ensure_state(h, Kind::Verify, &mut op)?;
                let req = pb::VerifyFinalRequest {
                    state,
                    signature: signature.to_vec(),
                };
                rpc!(self, remote, req).map(drop).map_err(fail)
            })(),
            Step::Single => {
                let req = pb::VerifySingleRequest {
                    mech: Some(op.mech.clone()),
                    data: data.to_vec(),
                    signature: signature.to_vec(),
                    pub_key: op.key.as_deref().and_then(kb),
                    ..Default::default()
                };
                rpc!(self, remote, req).map(drop).map_err(fail)
            }
            Step::Update => self
                .ensure_state(h, Kind::Verify, &mut op)
                .and_then(|state| {
                    let req = pb::VerifyUpdateRequest {
                        state,
                        data: data.to_vec(),
                    };
                    let r = rpc!(self, remote, req).map_err(fail)?;
                    op.state = Some(r.state);
                    Ok(())
                }),
            Step::Final => self
                .ensure_state(h, Kind::Verify, &mut op)
                .and_then(|state| {
                    let req = pb::VerifyFinalRequest {
                        state,
                        signature: signature.to_vec(),
                    };
                    rpc!(self, remote, req).map(drop).map_err(fail)
                }),
        };
        let keep = step == Step::Update && r.is_ok();
        *crate::library::lock_session(&sess).ops.slot(Kind::Verify) = keep.then_some(op);
        r
    }

    /// `C_DigestKey`.
    pub fn digest_key(&self, h: u64, key: u64) -> Result<()> {
        let sess = self.session(h)?;
        let mut op = crate::library::lock_session(&sess)
            .ops
            .slot(Kind::Digest)
            .clone()
            .ok_or(ckr::OPERATION_NOT_INITIALIZED)?;
        let o = self.object(h, key).map_err(|_| ckr::KEY_HANDLE_INVALID)?;
        let blob = o.blob.clone().ok_or(ckr::KEY_HANDLE_INVALID)?;
        let r = self
            .ensure_state(h, Kind::Digest, &mut op)
            .and_then(|state| {
                let req = pb::DigestKeyRequest {
                    state,
                    key: kb(&blob),
                    ..Default::default()
                };
                let r = rpc!(self, self.remote_of(h)?, req).map_err(fail)?;
                op.state = Some(r.state);
                Ok(())
            });
        *crate::library::lock_session(&sess).ops.slot(Kind::Digest) = r.is_ok().then_some(op);
        r
    }

    /// The server's state of a multi-part operation, started on first use.
    fn ensure_state(&self, h: u64, kind: Kind, op: &mut Op) -> Result<Vec<u8>> {
        if let Some(s) = &op.state {
            return Ok(s.clone());
        }
        let remote = self.remote_of(h)?;
        let mech = Some(op.mech.clone());
        let key = op.key.as_deref().and_then(kb);
        let state = match kind {
            Kind::Encrypt => {
                let req = pb::EncryptInitRequest {
                    mech,
                    key,
                    ..Default::default()
                };
                rpc!(self, remote, req).map(|r| r.state)
            }
            Kind::Decrypt => {
                let req = pb::DecryptInitRequest {
                    mech,
                    key,
                    ..Default::default()
                };
                rpc!(self, remote, req).map(|r| r.state)
            }
            Kind::Digest => {
                let req = pb::DigestInitRequest { mech };
                rpc!(self, remote, req).map(|r| r.state)
            }
            Kind::Sign => {
                let req = pb::SignInitRequest {
                    mech,
                    priv_key: key,
                    ..Default::default()
                };
                rpc!(self, remote, req).map(|r| r.state)
            }
            Kind::Verify => {
                let req = pb::VerifyInitRequest {
                    mech,
                    pub_key: key,
                    ..Default::default()
                };
                rpc!(self, remote, req).map(|r| r.state)
            }
        }
        .map_err(fail)?;
        op.state = Some(state.clone());
        Ok(state)
    }

    fn op_call(&self, h: u64, kind: Kind, step: Step, data: &[u8], op: &mut Op) -> Result<Vec<u8>> {
        if step == Step::Single && data.len() > CHUNK && op.state.is_none() {
            // Larger than one message may carry: the same operation in parts.
            let mut out = Vec::new();
            for part in data.chunks(CHUNK) {
                out.extend(self.op_call(h, kind, Step::Update, part, op)?);
            }
            out.extend(self.op_call(h, kind, Step::Final, &[], op)?);
            return Ok(out);
        }
        let remote = self.remote_of(h)?;
        let mech = Some(op.mech.clone());
        let key = op.key.as_deref().and_then(kb);
        let data = data.to_vec();
        match (kind, step) {
            (Kind::Encrypt, Step::Single) if op.state.is_none() => {
                let req = pb::EncryptSingleRequest {
                    mech,
                    plain: data,
                    key,
                    ..Default::default()
                };
                rpc!(self, remote, req).map(|r| r.ciphered).map_err(fail)
            }
            (Kind::Decrypt, Step::Single) if op.state.is_none() => {
                let req = pb::DecryptSingleRequest {
                    mech,
                    ciphered: data,
                    key,
                    ..Default::default()
                };
                rpc!(self, remote, req).map(|r| r.plain).map_err(fail)
            }
            (Kind::Sign, Step::Single) if op.state.is_none() => {
                let req = pb::SignSingleRequest {
                    mech,
                    data,
                    priv_key: key,
                    ..Default::default()
                };
                rpc!(self, remote, req).map(|r| r.signature).map_err(fail)
            }
            (Kind::Digest, Step::Single) if op.state.is_none() => {
                let req = pb::DigestSingleRequest { mech, data };
                rpc!(self, remote, req).map(|r| r.digest).map_err(fail)
            }
            (_, Step::Single) => Err(ckr::OPERATION_ACTIVE),
            (kind, Step::Update) => {
                let state = self.ensure_state(h, kind, op)?;
                let (state, out) = match kind {
                    Kind::Encrypt => {
                        let req = pb::EncryptUpdateRequest { state, plain: data };
                        rpc!(self, remote, req).map(|r| (r.state, r.ciphered))
                    }
                    Kind::Decrypt => {
                        let req = pb::DecryptUpdateRequest {
                            state,
                            ciphered: data,
                        };
                        rpc!(self, remote, req).map(|r| (r.state, r.plain))
                    }
                    Kind::Digest => {
                        let req = pb::DigestUpdateRequest { state, data };
                        rpc!(self, remote, req).map(|r| (r.state, Vec::new()))
                    }
                    Kind::Sign => {
                        let req = pb::SignUpdateRequest { state, data };
                        rpc!(self, remote, req).map(|r| (r.state, Vec::new()))
                    }
                    Kind::Verify => return Err(ckr::FUNCTION_FAILED),
                }
                .map_err(fail)?;
                op.state = Some(state);
                Ok(out)
            }
            (kind, Step::Final) => {
                let state = self.ensure_state(h, kind, op)?;
                match kind {
                    Kind::Encrypt => {
                        let req = pb::EncryptFinalRequest { state };
                        rpc!(self, remote, req).map(|r| r.ciphered)
                    }
                    Kind::Decrypt => {
                        let req = pb::DecryptFinalRequest { state };
                        rpc!(self, remote, req).map(|r| r.plain)
                    }
                    Kind::Digest => {
                        let req = pb::DigestFinalRequest { state };
                        rpc!(self, remote, req).map(|r| r.digest)
                    }
                    Kind::Sign => {
                        let req = pb::SignFinalRequest { state };
                        rpc!(self, remote, req).map(|r| r.signature)
                    }
                    Kind::Verify => return Err(ckr::FUNCTION_FAILED),
                }
                .map_err(fail)
            }
        }
    }
}
