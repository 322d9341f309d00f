//! What every stage thread shares: how it is started (named, its CPU time recorded when it
//! ends) and the test-only random delays that shake out ordering bugs.

use std::{
    thread::{self, Scope, ScopedJoinHandle},
    time::Duration,
};

use crate::{
    channel::StageStats,
    error::{Error, Result},
};

/// Starts a stage's thread, named `thread_name`; its CPU time goes to `stats` when it ends.
pub(super) fn spawn<'scope, T: Send + 'scope>(
    s: &'scope Scope<'scope, '_>,
    stage: &'static str,
    thread_name: String,
    stats: &'scope StageStats,
    body: impl FnOnce() -> T + Send + 'scope,
) -> Result<ScopedJoinHandle<'scope, T>> {
    thread::Builder::new()
        .name(thread_name)
        .spawn_scoped(s, move || {
            let r = body();
            stats.record_thread_cpu();
            r
        })
        .map_err(|_| Error::StageDied(stage))
}

/// Waits for a stage; a stage that panicked is reported as stopped.
pub(super) fn join<T>(h: ScopedJoinHandle<'_, Result<T>>, stage: &'static str) -> Result<T> {
    h.join().unwrap_or(Err(Error::StageDied(stage)))
}

/// A tiny xorshift generator: enough randomness for test jitter without a dependency.
pub(crate) struct Jitter {
    max_us: u64,
    state: u64,
}

impl Jitter {
    /// `None` (no delays) unless a maximum delay is set.
    pub fn new(max: Option<Duration>, seed: u64) -> Option<Self> {
        max.map(|m| Jitter {
            max_us: m.as_micros() as u64,
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        })
    }

    /// Sleeps a random 0..=max before the stage handles its next item.
    pub fn sleep(this: &mut Option<Self>) {
        if let Some(j) = this {
            j.state ^= j.state << 13;
            j.state ^= j.state >> 7;
            j.state ^= j.state << 17;
            thread::sleep(Duration::from_micros(j.state % (j.max_us + 1)));
        }
    }
}
