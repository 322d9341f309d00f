//! MQTT: each event one message, QoS 1, one in flight at a time so the broker sees them in
//! order. A lost connection is reopened (with backoff) and the message not yet acknowledged
//! is published again: every event arrives at least once.

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use rumqttc::{
    Client, Connection, Event, MqttOptions, Packet, QoS, RecvTimeoutError, TlsConfiguration,
    Transport as Wire,
};

use super::Transport;
use crate::{
    error::{Error, Result},
    telemetry::target::EventTarget,
};

pub(super) struct Mqtt {
    client: Client,
    connection: Connection,
    topic: String,
    timeout: Duration,
}

/// Client ids unique within the process (several sinks may use one broker).
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// rustls with ring and the Mozilla roots (webpki-roots).
fn tls_config() -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Mqtt {
    pub(super) fn new(target: &EventTarget, timeout: Duration) -> Result<Self> {
        let EventTarget::Mqtt {
            tls,
            host,
            port,
            topic,
            credentials,
        } = target
        else {
            unreachable!("an MQTT target");
        };
        let id = format!(
            "vidinfer-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        let mut opts = MqttOptions::new(id, host, *port);
        opts.set_keep_alive(Duration::from_secs(5))
            .set_clean_session(true)
            .set_max_packet_size(1 << 20, 1 << 20);
        if let Some((user, password)) = credentials {
            opts.set_credentials(user, password);
        }
        if *tls {
            let config = TlsConfiguration::Rustls(Arc::new(tls_config()?));
            opts.set_transport(Wire::tls_with_config(config));
        }
        let (client, connection) = Client::new(opts, 16);
        Ok(Mqtt {
            client,
            connection,
            topic: topic.clone(),
            timeout,
        })
    }

    /// Publishes one event and waits for its acknowledgement, reconnecting as needed.
    fn publish(&mut self, payload: &str, give_up: &dyn Fn() -> bool) -> Result<(), String> {
        let send = |c: &Client| {
            c.try_publish(
                &self.topic,
                QoS::AtLeastOnce,
                false,
                payload.as_bytes().to_vec(),
            )
            .map_err(|e| e.to_string())
        };
        send(&self.client)?;
        let mut backoff = Duration::from_millis(100);
        let mut errors = 0u32;
        loop {
            if give_up() {
                return Err("the run ended before the broker acknowledged".into());
            }
            // Long enough for a connect (a timed-out wait abandons one) and its TLS handshake.
            let wait = self.timeout.max(Duration::from_secs(1));
            match self.connection.recv_timeout(wait) {
                Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => return Ok(()),
                // A new session: what was sent before the connection dropped is gone.
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) if errors > 0 => {
                    send(&self.client)?;
                    errors = 0;
                    backoff = Duration::from_millis(100);
                }
                Ok(Ok(_)) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Err(e)) => {
                    if errors == 0 {
                        tracing::warn!("MQTT broker: {e}; reconnecting");
                    }
                    errors += 1;
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !give_up() {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(RecvTimeoutError::Disconnected) => return Err("the MQTT client stopped".into()),
            }
        }
    }
}

impl Transport for Mqtt {
    fn deliver(&mut self, events: &[Arc<str>], give_up: &dyn Fn() -> bool) -> Result<(), String> {
        for e in events {
            self.publish(e, give_up)?;
        }
        Ok(())
    }

    fn max_batch(&self) -> usize {
        1
    }
}
