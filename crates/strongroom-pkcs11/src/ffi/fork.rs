//! Which process this is, cheaply: a library initialized before a `fork` must answer
//! `CKR_CRYPTOKI_NOT_INITIALIZED` in the child (PKCS#11 §6.7.1), and every call checks.
//!
//! `getpid` is a system call on every glibc since 2.25, and it cost three of the nine system
//! calls of a signature through the library. A `pthread_atfork` child handler counts the
//! forks instead, so the check is one atomic load. Where the handler cannot be registered,
//! the process id is compared as before.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Once;

/// Forks since the library was loaded, counted in each child as it starts.
static FORKS: AtomicU64 = AtomicU64::new(0);
/// Whether the child handler is registered.
static WATCHING: AtomicBool = AtomicBool::new(false);
static REGISTER: Once = Once::new();

extern "C" fn child() {
    FORKS.fetch_add(1, Ordering::SeqCst);
}

fn watch() {
    REGISTER.call_once(|| {
        // SAFETY: `child` only increments an atomic, which is async-signal-safe as a
        // `pthread_atfork` child handler must be; registering has no other precondition.
        // The handler must stay mapped: build.rs links the library with `-z nodelete`, so
        // a `dlclose` does not unload it (`nodelete_is_set` below checks the flag).
        let rc = unsafe { libc::pthread_atfork(None, None, Some(child)) };
        WATCHING.store(rc == 0, Ordering::SeqCst);
    });
}

/// A process of this lineage.
#[derive(Debug, Clone, Copy)]
pub(super) struct Process {
    forks: u64,
    pid: u32,
}

impl Process {
    /// This process (registers the fork counter on first use).
    pub(super) fn current() -> Process {
        watch();
        Process {
            forks: FORKS.load(Ordering::SeqCst),
            pid: std::process::id(),
        }
    }

    /// Whether this is still the process [`Process::current`] named.
    pub(super) fn is_current(&self) -> bool {
        if WATCHING.load(Ordering::Relaxed) {
            FORKS.load(Ordering::Relaxed) == self.forks
        } else {
            std::process::id() == self.pid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodelete_is_set() {
        // DT_FLAGS_1 of the built library carries DF_1_NODELETE (0x8): read by readelf.
        // The test runs from <target>/<profile>/deps/, next to which cargo puts the library.
        let exe = std::env::current_exe().expect("the test's own path");
        let lib = exe
            .parent()
            .and_then(std::path::Path::parent)
            .expect("<target>/<profile>")
            .join("libstrongroom_pkcs11.so");
        let out = std::process::Command::new("readelf")
            .args(["-d", lib.to_str().unwrap_or_default()])
            .output()
            .expect("readelf (binutils) runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines()
                .any(|l| l.contains("FLAGS_1") && l.contains("NODELETE")),
            "{} is not linked with -z nodelete:\n{text}",
            lib.display()
        );
    }

    #[test]
    fn a_forked_child_is_another_process_and_the_parent_stays_itself() {
        let p = Process::current();
        assert!(WATCHING.load(Ordering::SeqCst), "pthread_atfork failed");
        assert!(p.is_current());
        // SAFETY: the child only reads atomics and calls `_exit`, both async-signal-safe,
        // so it is sound even though the test harness has other threads.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = if p.is_current() { 1 } else { 0 };
            // SAFETY: `_exit` ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: `pid` is our child and `status` a valid out-pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFEXITED(status), "the child did not exit: {status}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "the child took itself for its parent"
        );
        assert!(
            p.is_current(),
            "the parent is still the process that initialized"
        );
        assert_eq!(Process::current().forks, p.forks);
    }
}
