//! Always-on runs: what a run tells the outside world while it runs. [`Metrics`] are
//! counters the stages update as items pass, served by a [`MetricsServer`]; events (the
//! JSONL's, with the input's name) fan out through an [`EventHub`] to HTTP(S) and MQTT
//! targets, each behind its own bounded queue and thread, so neither can hold up a stage.
//! The pipeline only writes into these; nothing here reads the pipeline.

pub mod events;
pub mod metrics;
mod run_events;
pub mod server;
pub mod target;
mod transport;

use std::sync::Arc;

pub use events::{EventHub, EventOptions, EventSinkReport};
pub use metrics::{InputMetrics, Metrics};
pub use run_events::RunEvent;
pub use server::MetricsServer;
pub use target::EventTarget;

/// What a run reports to while it runs (both `None`: nothing, and no cost).
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    pub metrics: Option<Arc<Metrics>>,
    pub events: Option<Arc<EventHub>>,
}
