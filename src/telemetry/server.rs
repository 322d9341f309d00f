//! The metrics server ([`MetricsServer`]): `/metrics` (Prometheus text format), `/healthz`
//! (alive) and `/readyz` (ready: see [`Metrics::ready`]) on its own thread. It only reads the
//! metrics' atomics, so a scrape never waits on, or slows, a stage.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use tiny_http::{Header, Request, Response, Server};

use super::metrics::Metrics;
use crate::error::{Error, Result};

pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` (port 0: a free one, see [`MetricsServer::addr`]) and serves until
    /// dropped.
    pub fn start(addr: &str, metrics: Arc<Metrics>) -> Result<MetricsServer> {
        let server = Server::http(addr).map_err(|source| Error::MetricsServer {
            addr: addr.to_string(),
            source,
        })?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::Config(format!("metrics address {addr} is not an IP address")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve(&server, &metrics, &flag))
            .map_err(|e| Error::Config(format!("cannot start a thread: {e}")))?;
        Ok(MetricsServer {
            addr: bound,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(server: &Server, metrics: &Metrics, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(request)) => respond(request, metrics),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("metrics server: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .unwrap_or_else(|()| unreachable!("an ASCII header"))
}

fn respond(request: Request, metrics: &Metrics) {
    let path = request.url().split('?').next().unwrap_or("");
    let (code, body, kind) = match path {
        "/metrics" => (
            200,
            metrics.render(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/healthz" => (200, "ok\n".to_string(), "text/plain; charset=utf-8"),
        "/readyz" if metrics.ready() => (200, "ready\n".to_string(), "text/plain; charset=utf-8"),
        "/readyz" => (503, "not ready\n".to_string(), "text/plain; charset=utf-8"),
        _ => (404, "not found\n".to_string(), "text/plain; charset=utf-8"),
    };
    let response = Response::from_string(body)
        .with_status_code(code)
        .with_header(header("Content-Type", kind));
    if let Err(e) = request.respond(response) {
        tracing::debug!("metrics server: answering a scrape: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_metrics_health_and_readiness() {
        let m = Arc::new(Metrics::new());
        let server = MetricsServer::start("127.0.0.1:0", m.clone()).unwrap();
        let addr = server.addr();
        assert_ne!(addr.port(), 0);
        m.input("a").decoded.inc();
        let metrics = get(addr, "/metrics");
        assert!(
            metrics.starts_with("HTTP/1.0 200") || metrics.starts_with("HTTP/1.1 200"),
            "{metrics}"
        );
        assert!(
            metrics.contains("vidinfer_frames_decoded_total{input=\"a\"} 1"),
            "{metrics}"
        );
        assert!(get(addr, "/healthz").contains(" 200 "));
        assert!(get(addr, "/readyz").contains(" 503 "));
        m.set_queues(Vec::new());
        assert!(get(addr, "/readyz").contains(" 200 "));
        assert!(get(addr, "/nope").contains(" 404 "));
    }
}
