//! The peers tests/telemetry.rs publishes to, started and stopped by the test on 127.0.0.1:
//! a mosquitto broker and a subscriber with a persistent session, and an HTTP receiver that
//! refuses its first POST.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    process::Command,
    sync::{mpsc, Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use super::common::servers::{output_timeout, spawn, wait_until, Proc};
use super::SETUP;
use serde_json::Value;

// ------------------------------------------------------------------ MQTT

/// A mosquitto broker on `port`, its session state kept in `dir` across a restart.
pub fn broker(dir: &Path, port: u16) -> Proc {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n", dir.display()),
    )
    .unwrap();
    let mut cmd = Command::new("/usr/sbin/mosquitto");
    cmd.arg("-c").arg(&conf);
    let p = spawn("mosquitto", cmd, 300, SETUP);
    wait_until(Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .unwrap_or_else(|| panic!("mosquitto not listening: {}", p.log().join("\n")));
    p
}

/// SIGTERM (mosquitto saves its sessions), then waits for it to exit.
pub fn stop(p: &Proc) {
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe {
        libc::kill(p.pid() as libc::pid_t, libc::SIGTERM);
    }
    p.wait_exit(Duration::from_secs(20))
        .expect("mosquitto stops on SIGTERM");
}

/// A subscriber with a persistent session (it gets what was published while it reconnected);
/// returns it and the messages it has received so far.
pub fn subscriber(port: u16, topic: &str) -> (Proc, Arc<Mutex<Vec<Value>>>) {
    let mut cmd = Command::new("/usr/bin/mosquitto_sub");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        topic,
        "-q",
        "1",
        "-c",
    ])
    .args(["-i", &format!("vidinfer-test-{port}")]);
    let mut p = spawn("mosquitto_sub", cmd, 300, SETUP);
    let rx = p.take_stdout();
    let got = Arc::new(Mutex::new(Vec::new()));
    let (g, (probe_tx, probe_rx)) = (got.clone(), mpsc::channel());
    thread::spawn(move || {
        for line in rx {
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("mosquitto_sub printed {line:?}: {e}"));
            if v.get("probe").is_some() {
                let _ = probe_tx.send(());
            } else {
                g.lock().unwrap().push(v);
            }
        }
    });
    // Subscribed once a message of its own comes back.
    let subscribed = wait_until(Duration::from_secs(20), || {
        let mut publish = Command::new("/usr/bin/mosquitto_pub");
        publish.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"]);
        publish.args(["-t", "vidinfer/probe", "-m", r#"{"probe":1}"#]);
        output_timeout(&mut publish, Duration::from_secs(10));
        probe_rx.recv_timeout(Duration::from_millis(300)).ok()
    });
    subscribed.unwrap_or_else(|| panic!("mosquitto_sub not subscribed: {}", p.log().join("\n")));
    (p, got)
}

// ------------------------------------------------------------------ HTTP

/// What the receiver was sent: each POST's answer and body.
pub type Posts = Arc<Mutex<Vec<(u16, String)>>>;

/// An HTTP receiver on 127.0.0.1 that answers its first POST 500 and the others 200; it
/// keeps every body it was sent (the refused one included) and stops after `max`.
pub fn receiver(max: Duration) -> (String, Posts) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    l.set_nonblocking(true).unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let b = bodies.clone();
    thread::spawn(move || {
        let deadline = Instant::now() + max;
        while Instant::now() < deadline {
            let Ok((mut s, _)) = l.accept() else {
                thread::sleep(Duration::from_millis(10));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let Some(body) = read_post(&mut s) else {
                continue;
            };
            let mut b = b.lock().unwrap();
            let code = if b.is_empty() { 500 } else { 200 };
            b.push((code, body));
            let _ = write!(
                s,
                "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (addr, bodies)
}

fn read_post(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().ok())
            })??;
            if body.len() >= len {
                return Some(body[..len].to_string());
            }
        }
    }
}
