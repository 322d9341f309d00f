//! How an event sink's thread hands events over: a [`Transport`] per target. HTTP(S) posts
//! batches as a JSON array ([`ureq`], rustls); MQTT publishes each event with QoS 1
//! (`mqtt.rs`, [`rumqttc`]).

mod mqtt;

use std::time::Duration;

use super::target::EventTarget;
use crate::error::Result;

/// One sink's connection to its target, used by its delivery thread only.
pub(super) trait Transport: Send {
    /// Delivers `events` (JSON objects, in order), or fails without having delivered them
    /// all (the thread retries the whole batch). `give_up` says the run is over and its
    /// deadline passed: a transport that waits inside stops waiting then.
    fn deliver(
        &mut self,
        events: &[std::sync::Arc<str>],
        give_up: &dyn Fn() -> bool,
    ) -> Result<(), String>;
    /// Events per delivery at most.
    fn max_batch(&self) -> usize;
}

pub(super) fn open(target: &EventTarget, timeout: Duration) -> Result<Box<dyn Transport>> {
    Ok(match target {
        EventTarget::Http { url } => Box::new(Http::new(url, timeout)),
        EventTarget::Mqtt { .. } => Box::new(mqtt::Mqtt::new(target, timeout)?),
    })
}

/// JSON POSTs: `[{...},{...}]`, up to [`HTTP_BATCH`] events each; any answer but 2xx is a
/// failure (retried).
struct Http {
    agent: ureq::Agent,
    url: String,
}

const HTTP_BATCH: usize = 100;

impl Http {
    fn new(url: &str, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .build()
            .into();
        Http {
            agent,
            url: url.to_string(),
        }
    }
}

impl Transport for Http {
    fn deliver(
        &mut self,
        events: &[std::sync::Arc<str>],
        _give_up: &dyn Fn() -> bool,
    ) -> Result<(), String> {
        let mut body = String::with_capacity(events.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
        body.push('[');
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(e);
        }
        body.push(']');
        self.agent
            .post(&self.url)
            .content_type("application/json")
            .send(body)
            .map(drop)
            .map_err(|e| match e {
                ureq::Error::StatusCode(code) => format!("the receiver answered {code}"),
                e => e.to_string(),
            })
    }

    fn max_batch(&self) -> usize {
        HTTP_BATCH
    }
}
