//! Time for the service. Production uses the system clock; tests and `--test-clock` use an
//! adjustable offset so timing rules (cool-downs, restore and purge windows) are tested
//! without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use strongroom_model::UnixMillis;

/// A source of time.
pub trait Clock: Send + Sync + 'static {
    /// Now, in milliseconds since the epoch.
    fn now(&self) -> UnixMillis;
}

fn system_now() -> UnixMillis {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    UnixMillis(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        system_now()
    }
}

/// The system clock plus an offset that can only move forward.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    /// Moves the clock by `secs` seconds, forward or back (chaos tests: a node whose clock
    /// is stepped by NTP or an operator).
    pub fn jump(&self, secs: i64) {
        self.offset_ms
            .fetch_add(secs.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Moves the clock forward by `secs` seconds (negative values are ignored).
    pub fn advance(&self, secs: i64) {
        if secs > 0 {
            self.offset_ms
                .fetch_add(secs.saturating_mul(1000), Ordering::SeqCst);
        }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> UnixMillis {
        UnixMillis(
            system_now()
                .0
                .saturating_add(self.offset_ms.load(Ordering::SeqCst)),
        )
    }
}
