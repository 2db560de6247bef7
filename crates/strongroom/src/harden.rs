//! Process hardening at `serve` start: no core dumps, and memory kept out of swap where the
//! system allows. Key material lives in the server's heap (master keys, unwrapped keys,
//! tokens' signing key); a core file or a swap partition would otherwise hold copies.
//!
//! - Core dumps off: `RLIMIT_CORE` 0, and the process marked not dumpable
//!   (`PR_SET_DUMPABLE` 0), which also stops same-user processes from attaching a debugger
//!   or reading `/proc/<pid>/mem`.
//! - Memory locked with `mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)` when the
//!   locked-memory limit is unlimited (root, `CAP_IPC_LOCK`, or systemd's
//!   `LimitMEMLOCK=infinity`). `MCL_ONFAULT` locks pages as they are touched, so the resident
//!   size does not grow. Under a finite limit nothing is locked: with `MCL_FUTURE`, an
//!   allocation past the limit would fail and stop the server.

use rustix::mm::{mlockall, MlockAllFlags};
use rustix::process::{
    getrlimit, set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit,
};

/// What [`harden`] achieved, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    /// Core dumps are off.
    pub core_dumps_off: bool,
    /// Memory is locked out of swap.
    pub memory_locked: bool,
    /// Why memory is not locked, when it is not.
    pub memory_note: Option<String>,
}

/// Turns core dumps off and locks memory where the system allows; never fails the start.
pub fn harden() -> Hardening {
    let core = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .is_ok();
    let dumpable = set_dumpable_behavior(DumpableBehavior::NotDumpable).is_ok();
    let limit = getrlimit(Resource::Memlock);
    let (memory_locked, memory_note) = match limit.current {
        None => match mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT) {
            Ok(()) => (true, None),
            Err(e) => (false, Some(format!("mlockall failed: {e}"))),
        },
        Some(n) => (
            false,
            Some(format!(
                "the locked-memory limit is {n} bytes; give the service LimitMEMLOCK=infinity (systemd) or CAP_IPC_LOCK to keep key material out of swap"
            )),
        ),
    };
    Hardening {
        core_dumps_off: core && dumpable,
        memory_locked,
        memory_note,
    }
}
