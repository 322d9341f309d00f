//! Ctrl-C (SIGINT) and SIGTERM (what Kubernetes and Slurm send on preemption) both stop a run
//! the same way: decoding stops, the frames in flight finish, every open output is committed.
//! A second signal exits at once. The exit code says which signal it was (130 or 143).

use std::sync::{
    atomic::{AtomicBool, AtomicI32, Ordering},
    Arc,
};

use signal_hook::{
    consts::{SIGINT, SIGTERM},
    iterator::Signals,
};

pub struct Stop {
    /// Set on the first signal; the pipeline watches it.
    pub cancel: Arc<AtomicBool>,
    signal: Arc<AtomicI32>,
}

impl Stop {
    /// Installs the handlers (a thread that waits for the signals).
    pub fn install() -> anyhow::Result<Stop> {
        let cancel = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicI32::new(0));
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let (c, s) = (cancel.clone(), signal.clone());
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if c.swap(true, Ordering::SeqCst) {
                        std::process::exit(128 + sig);
                    }
                    s.store(sig, Ordering::SeqCst);
                    let name = if sig == SIGTERM { "SIGTERM" } else { "interrupted" };
                    eprintln!("\n{name}: finishing the frames in flight and committing the outputs (again to abort)");
                }
            })?;
        Ok(Stop { cancel, signal })
    }

    /// The exit code for a run stopped by a signal: 128 + its number.
    pub fn exit_code(&self) -> u8 {
        match self.signal.load(Ordering::SeqCst) {
            SIGTERM => 143,
            _ => 130,
        }
    }
}
