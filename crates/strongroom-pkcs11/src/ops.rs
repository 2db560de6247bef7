//! Cryptographic operations in progress in a session, and the rule PKCS#11 sets for
//! outputs: a call without a buffer (or with one too small) learns the length, and the
//! next call returns the same bytes without doing the work again.

use crate::library::Mechanism;

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
