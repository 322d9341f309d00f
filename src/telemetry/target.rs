//! Where events go ([`EventTarget`]), read from a URL: `http://` and `https://` (JSON POSTs),
//! `mqtt://host[:port]/topic` and `mqtts://` (one message per event).

use std::fmt;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTarget {
    /// POST batches of events (a JSON array) to this URL.
    Http { url: String },
    /// Publish each event (QoS 1) to `topic` on the broker at `host:port`.
    Mqtt {
        tls: bool,
        host: String,
        port: u16,
        topic: String,
        /// `user:password@` before the host, if given.
        credentials: Option<(String, String)>,
    },
}

fn bad(target: &str, reason: impl Into<String>) -> Error {
    Error::EventTarget {
        target: redact(target),
        reason: reason.into(),
    }
}

/// The target without a password (`user:***@host`), for messages and labels.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((cred, host)) => {
            let user = cred.split_once(':').map_or(cred, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        None => url.to_string(),
    }
}

impl EventTarget {
    pub fn parse(url: &str) -> Result<EventTarget> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad(
                url,
                "not a URL (http://, https://, mqtt:// or mqtts://)",
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" => {
                if rest.is_empty() || rest.starts_with('/') {
                    return Err(bad(url, "no host"));
                }
                Ok(EventTarget::Http {
                    url: url.to_string(),
                })
            }
            s @ ("mqtt" | "mqtts") => Self::mqtt(url, s == "mqtts", rest),
            other => Err(bad(
                url,
                format!("unknown scheme {other:?} (http, https, mqtt or mqtts)"),
            )),
        }
    }

    fn mqtt(url: &str, tls: bool, rest: &str) -> Result<EventTarget> {
        let Some((authority, topic)) = rest.split_once('/') else {
            return Err(bad(url, "no topic (mqtt://host:port/topic)"));
        };
        if topic.is_empty() || topic.contains(['+', '#']) {
            return Err(bad(url, "the topic must be given, without wildcards"));
        }
        let (credentials, hostport) = match authority.rsplit_once('@') {
            Some((cred, hp)) => {
                let (u, p) = cred.split_once(':').unwrap_or((cred, ""));
                (Some((u.to_string(), p.to_string())), hp)
            }
            None => (None, authority),
        };
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || !p.is_empty() => {
                let port = p.parse().map_err(|_| bad(url, format!("bad port {p:?}")))?;
                (h, port)
            }
            _ => (hostport, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad(url, "no host"));
        }
        Ok(EventTarget::Mqtt {
            tls,
            host: host.to_string(),
            port,
            topic: topic.to_string(),
            credentials,
        })
    }
}

impl fmt::Display for EventTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventTarget::Http { url } => f.write_str(&redact(url)),
            EventTarget::Mqtt {
                tls,
                host,
                port,
                topic,
                credentials,
            } => {
                let scheme = if *tls { "mqtts" } else { "mqtt" };
                let user = credentials
                    .as_ref()
                    .map_or(String::new(), |(u, _)| format!("{u}:***@"));
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                write!(f, "{scheme}://{user}{host}:{port}/{topic}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mqtt_urls() {
        let t = EventTarget::parse("mqtt://127.0.0.1:1884/vidinfer/events").unwrap();
        assert_eq!(
            t,
            EventTarget::Mqtt {
                tls: false,
                host: "127.0.0.1".into(),
                port: 1884,
                topic: "vidinfer/events".into(),
                credentials: None
            }
        );
        let t = EventTarget::parse("mqtts://me:secret@broker/t").unwrap();
        assert_eq!(t.to_string(), "mqtts://me:***@broker:8883/t");
        assert!(matches!(t, EventTarget::Mqtt { port: 8883, .. }));
    }

    #[test]
    fn refuses_what_cannot_work() {
        for bad in [
            "mqtt://host",
            "mqtt://host:1883/",
            "mqtt://host:x/t",
            "mqtt://host/a/#",
            "ftp://host/x",
            "host:80",
            "http://",
        ] {
            let e = EventTarget::parse(bad).unwrap_err();
            assert!(matches!(e, Error::EventTarget { .. }), "{bad}: {e}");
        }
        let e = EventTarget::parse("mqtt://u:pw@h:x/t").unwrap_err();
        assert!(!e.to_string().contains("pw"), "{e}");
    }

    #[test]
    fn http_urls_keep_their_path_and_hide_a_password() {
        let t = EventTarget::parse("https://u:pw@example.com/hook?x=1").unwrap();
        assert_eq!(t.to_string(), "https://u:***@example.com/hook?x=1");
    }
}
