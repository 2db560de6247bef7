//! Where the library's calls run.
//!
//! The application's threads call into the library and wait for the answer. Each waiting
//! thread drives a single-threaded runtime itself, together with that runtime's own
//! connections, so a request and its answer never change threads on the way: on a busy
//! machine, handing every call to a shared runtime's worker and back cost up to half of
//! the rate of small operations (ECDSA, AES).
//!
//! A thread keeps to the engine it used last. When that engine is busy it takes a free
//! one, and when all are busy it waits for its own. Connections belong to one engine
//! ([`current`] names it), because their tasks run only while that engine is driven.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use tokio::runtime::Runtime;

/// The most engines a library runs: more application threads share them.
pub const MAX: usize = 32;

thread_local! {
    /// The engine this thread used last.
    static HINT: Cell<Option<usize>> = const { Cell::new(None) };
    /// The engine this thread drives now.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The engine the calling thread is driving: the key of its connections.
pub fn current() -> usize {
    CURRENT.with(Cell::get)
}

/// A library's engines, started on first use.
pub struct Engines {
    pool: Vec<Mutex<Option<Runtime>>>,
    next: AtomicUsize,
}

impl Default for Engines {
    fn default() -> Self {
        Engines {
            pool: (0..MAX).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }
}

impl Engines {
    /// Runs `f` to completion on an engine that this thread drives.
    pub fn run<F: Future>(&self, f: F) -> Result<F::Output, String> {
        let hint = HINT.with(Cell::get);
        let start = hint.unwrap_or_else(|| self.next.fetch_add(1, Ordering::Relaxed) % MAX);
        for k in (0..MAX).map(|i| (start + i) % MAX) {
            let guard = match self.pool[k].try_lock() {
                Ok(g) => g,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => continue,
            };
            return Self::drive(k, guard, f);
        }
        let guard = self.pool[start].lock().unwrap_or_else(|p| p.into_inner());
        Self::drive(start, guard, f)
    }

    fn drive<F: Future>(
        k: usize,
        mut guard: MutexGuard<'_, Option<Runtime>>,
        f: F,
    ) -> Result<F::Output, String> {
        if guard.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime for the library: {e}"))?;
            *guard = Some(rt);
        }
        let rt = guard.as_ref().ok_or("no runtime")?;
        HINT.with(|h| h.set(Some(k)));
        CURRENT.with(|c| c.set(k));
        Ok(rt.block_on(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_thread_keeps_its_engine_and_concurrent_threads_get_their_own() {
        let e = Arc::new(Engines::default());
        let first = e.run(async { current() }).unwrap();
        assert_eq!(e.run(async { current() }).unwrap(), first);
        // While this thread drives its engine, other threads are given others.
        let inner = e.clone();
        let others = e
            .run(async move {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        let e = inner.clone();
                        std::thread::spawn(move || e.run(async { current() }).unwrap())
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            })
            .unwrap();
        assert!(others.iter().all(|&k| k != first), "{others:?} vs {first}");
    }

    #[test]
    fn timers_and_sockets_work_on_an_engine() {
        let e = Engines::default();
        let n = e
            .run(async {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let a = l.local_addr().unwrap();
                let c = tokio::spawn(async move { tokio::net::TcpStream::connect(a).await });
                let (_s, _) = l.accept().await.unwrap();
                c.await.unwrap().unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                7
            })
            .unwrap();
        assert_eq!(n, 7);
    }
}
