//! What the load generators share: the measured window, the counts, and the latency
//! statistics they report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Timing;

/// The `p` percentile (0..1) of sorted latencies in microseconds, in milliseconds.
pub(crate) fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[i.min(sorted_us.len() - 1)] as f64 / 1000.0
}

/// The state a load generator's workers share. Workers run until [`Meter::running`] says
/// no; a success counts, with its latency, only inside the measured window (after the
/// warm-up); an error counts at any time, so that a warm-up full of failures still shows.
#[derive(Default)]
pub(crate) struct Meter {
    measuring: AtomicBool,
    stop: AtomicBool,
    ok: AtomicU64,
    errors: AtomicU64,
    /// Successes in the window after which the run ends early.
    max: Option<u64>,
}

impl Meter {
    /// A meter whose run ends after `max` measured successes, if given.
    pub(crate) fn with_max(max: Option<u64>) -> Meter {
        Meter {
            max,
            ..Meter::default()
        }
    }

    /// Whether workers go on.
    pub(crate) fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    /// Ends the run: workers stop after their request in flight.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// A request that began at `t0` succeeded: inside the window it counts and its latency
    /// goes into `lat`.
    pub(crate) fn success(&self, t0: Instant, lat: &mut Vec<u64>) {
        if !self.measuring.load(Ordering::Relaxed) {
            return;
        }
        lat.push(t0.elapsed().as_micros() as u64);
        let n = self.ok.fetch_add(1, Ordering::Relaxed) + 1;
        if self.max.is_some_and(|m| n >= m) {
            self.stop();
        }
    }

    /// A request failed. `true` for the run's first failure (the one worth printing).
    pub(crate) fn error(&self) -> bool {
        self.errors.fetch_add(1, Ordering::Relaxed) == 0
    }

    /// Opens the window; [`Meter::close`] with what this returns ends it.
    pub(crate) fn open(&self) -> Instant {
        self.measuring.store(true, Ordering::SeqCst);
        Instant::now()
    }

    /// Closes the window opened at `start`, stops the run, and returns the window's seconds.
    pub(crate) fn close(&self, start: Instant) -> f64 {
        self.measuring.store(false, Ordering::SeqCst);
        let secs = start.elapsed().as_secs_f64();
        self.stop();
        secs
    }

    /// The warm-up, then the window, which ends after the measured seconds or when the run
    /// stops (at `max`). Returns the window's seconds; the run is stopped.
    pub(crate) async fn window(&self, timing: &Timing) -> f64 {
        tokio::time::sleep(timing.warmup()).await;
        let start = self.open();
        let until = start + timing.measured();
        while self.running() {
            let now = Instant::now();
            if now >= until {
                break;
            }
            tokio::time::sleep((until - now).min(Duration::from_millis(20))).await;
        }
        self.close(start)
    }

    /// The figures of a run whose window lasted `secs`, with the workers' latencies:
    /// `ops`, `errors`, `seconds`, `ops_per_sec`, `p50_ms` and `p99_ms`.
    pub(crate) fn report(&self, secs: f64, mut lat: Vec<u64>) -> serde_json::Value {
        lat.sort_unstable();
        let n = self.ok.load(Ordering::SeqCst);
        json!({
            "ops": n,
            "errors": self.errors.load(Ordering::SeqCst),
            "seconds": secs,
            "ops_per_sec": n as f64 / secs,
            "p50_ms": percentile_ms(&lat, 0.50),
            "p99_ms": percentile_ms(&lat, 0.99),
        })
    }
}

/// The latencies the workers return, together (a worker that panicked gave none).
pub(crate) async fn gather(workers: Vec<tokio::task::JoinHandle<Vec<u64>>>) -> Vec<u64> {
    let mut all = Vec::new();
    for w in workers {
        if let Ok(v) = w.await {
            all.extend(v);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successes_count_only_in_the_window_and_errors_always() {
        let m = Meter::with_max(None);
        let mut lat = Vec::new();
        m.success(Instant::now(), &mut lat);
        assert!(m.error(), "the first error is the first");
        let start = m.open();
        m.success(Instant::now(), &mut lat);
        m.success(Instant::now(), &mut lat);
        assert!(!m.error());
        assert!(m.running());
        let secs = m.close(start);
        assert!(!m.running(), "closing the window ends the run");
        m.success(Instant::now(), &mut lat);
        let r = m.report(secs, lat);
        assert_eq!(r["ops"], 2);
        assert_eq!(r["errors"], 2);
    }

    #[test]
    fn a_run_with_a_maximum_stops_when_the_window_reaches_it() {
        let m = Meter::with_max(Some(3));
        let mut lat = Vec::new();
        let _ = m.open();
        for _ in 0..2 {
            m.success(Instant::now(), &mut lat);
        }
        assert!(m.running());
        m.success(Instant::now(), &mut lat);
        assert!(!m.running());
        assert_eq!(lat.len(), 3);
    }

    #[test]
    fn percentiles_read_sorted_microseconds_as_milliseconds() {
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
        let lat: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&lat, 0.0), 1.0);
        assert_eq!(percentile_ms(&lat, 0.99), 99.0);
        assert_eq!(percentile_ms(&lat, 1.0), 100.0);
    }
}
