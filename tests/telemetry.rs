//! `--metrics` and `--events` against real peers started here on 127.0.0.1: the exposition
//! scraped during and after a run and checked by `promtool check metrics`; a Prometheus
//! server scraping vidinfer, read back through its HTTP API; a mosquitto broker stopped for
//! 5 s in the middle of a run and restarted (nothing lost within the queue bound, and past it
//! the drops counted exactly); an HTTP receiver that answers 500 before it answers 200.
//! Every event is checked against the files: the JSONL's crossing and zone events and the
//! tracks file's lines arrive once each, in order.
//!
//! Needs tools/setup (model, ONNX Runtime, vtest) and tools/setup --for-tests (Debian's
//! `prometheus`, `mosquitto`, `mosquitto-clients`).

mod common;
mod peers;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::Command,
    thread,
    time::Duration,
};

use common::servers::{free_tcp_port, output_timeout, spawn, wait_until, Proc};
use common::{model, require, require_model, scratch, vtest, Scratch};
use peers::{broker, receiver, stop, subscriber, Posts};
use serde_json::Value;

const SETUP: &str = "run tools/setup --for-tests";

/// `detect` on vtest with tracking, a count line and a zone (so there are crossing and zone
/// events), outputs in `dir/out`, the summary in `dir/summary.json`.
fn detect(dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(common::bin());
    c.arg("detect")
        .arg(vtest())
        .arg("--model")
        .arg(model())
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--summary-json")
        .arg(dir.join("summary.json"))
        .args(["--no-progress", "--outputs", "jsonl", "--track"])
        .args(["--count-line", "0,300,768,300,door"])
        .args(["--zone", "middle:250,150;520,150;520,450;250,450"])
        .args(extra)
        .env("RUST_BACKTRACE", "0");
    c
}

fn start_detect(dir: &Path, extra: &[&str]) -> Proc {
    spawn("vidinfer", detect(dir, extra), 300, "")
}

/// Waits for vidinfer to exit (bounded) and checks it succeeded.
fn finish(p: &Proc) {
    let st = p
        .wait_exit(Duration::from_secs(240))
        .expect("vidinfer ran over 240 s");
    assert!(st.success(), "vidinfer failed: {}", p.log().join("\n"));
}

/// The address `--metrics 127.0.0.1:0` printed.
fn metrics_addr(p: &Proc) -> String {
    let line = wait_until(Duration::from_secs(120), || {
        p.log()
            .into_iter()
            .find(|l| l.starts_with("metrics: http://"))
    })
    .unwrap_or_else(|| panic!("no metrics address printed: {}", p.log().join("\n")));
    let rest = line.trim_start_matches("metrics: http://");
    rest.trim_end_matches("/metrics").to_string()
}

/// A GET over HTTP/1.0: the status and body, or `None` when nothing listens.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// A sample's value in an exposition, e.g. `vidinfer_frames_inferred_total{input="vtest"}`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits (bounded) until the served metrics say the input is done and the run has ended.
fn wait_ended(addr: &str) {
    let done = "vidinfer_inputs_done_total{outcome=\"complete\"}";
    wait_until(Duration::from_secs(180), || {
        let (_, text) = get(addr, "/metrics")?;
        (sample(&text, done) == Some(1.0) && get(addr, "/readyz")?.0 == 503).then_some(())
    })
    .expect("the run ends, its input done, the metrics still served");
}

fn promtool_check(text: &str, dir: &Path) {
    assert!(text.contains("# TYPE "), "an empty exposition: {text}");
    let f = dir.join("scrape.txt");
    std::fs::write(&f, text).unwrap();
    let out = output_timeout(
        Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&f).unwrap()),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The JSONL's frame lines and its event lines (but `events_dropped`).
fn jsonl(dir: &Path) -> (usize, Vec<Value>, Vec<Value>) {
    let all = lines(&dir.join("out/vtest.jsonl"));
    let frames = all
        .iter()
        .filter(|v| v.get("frame").is_some() && v.get("event").is_none());
    let kind = |v: &Value| v.get("event").and_then(Value::as_str).map(str::to_string);
    let events = all
        .iter()
        .filter(|v| matches!(kind(v).as_deref(), Some(k) if k != "events_dropped"));
    let dropped = all
        .iter()
        .filter(|v| kind(v).as_deref() == Some("events_dropped"));
    (
        frames.count(),
        events.cloned().collect(),
        dropped.cloned().collect(),
    )
}

fn summary_events(dir: &Path) -> Vec<Value> {
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    s["events"].as_array().cloned().unwrap_or_default()
}

/// An event without the fields the files do not have (`input`, and `event` for track ends).
fn bare(mut v: Value, drop_kind: bool) -> Value {
    let o = v.as_object_mut().unwrap();
    assert_eq!(
        o.remove("input"),
        Some(Value::from("vtest")),
        "the input's name"
    );
    if drop_kind {
        o.remove("event");
    }
    v
}

fn of_kind(received: &[Value], kinds: &[&str]) -> Vec<Value> {
    received
        .iter()
        .filter(|v| kinds.contains(&v["event"].as_str().unwrap_or("")))
        .cloned()
        .collect()
}

/// Every crossing/zone event of the JSONL and every line of the tracks file arrived once, in
/// order; each track started once; the input started first and ended last.
fn check_all_arrived(dir: &Path, received: &[Value]) {
    let (_, events, _) = jsonl(dir);
    let tracks = lines(&dir.join("out/vtest.tracks.jsonl"));
    assert!(
        !events.is_empty() && !tracks.is_empty(),
        "the run has crossing, zone and track events"
    );
    let got: Vec<Value> = of_kind(received, &["crossing", "zone_enter", "zone_exit"])
        .into_iter()
        .map(|v| bare(v, false))
        .collect();
    assert_eq!(got, events, "crossing and zone events, once each, in order");
    let ends: Vec<Value> = of_kind(received, &["track_end"])
        .into_iter()
        .map(|v| bare(v, true))
        .collect();
    assert_eq!(
        ends, tracks,
        "track ends: the tracks file's lines, in order"
    );
    let starts: Vec<u64> = of_kind(received, &["track_start"])
        .iter()
        .map(|v| v["track_id"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, (1..=tracks.len() as u64).collect::<Vec<_>>());
    assert_eq!(received.first().unwrap()["event"], "input_start");
    assert_eq!(received.last().unwrap()["event"], "input_end");
    assert_eq!(received.len(), events.len() + 2 * tracks.len() + 2);
}

/// `part` is `whole` with some items left out, in the same order.
fn is_subsequence(part: &[Value], whole: &[Value]) -> bool {
    let mut it = whole.iter();
    part.iter().all(|p| it.any(|w| w == p))
}

#[test]
#[ignore = "needs tools/setup"]
fn metrics_during_and_after_a_run_match_the_jsonl_and_pass_promtool() {
    require_model(&[&vtest(), Path::new("/usr/bin/promtool")]);
    let dir = scratch("telemetry-metrics");
    let p = start_detect(
        &dir,
        &[
            "--max-frames",
            "60",
            "--realtime",
            "--metrics",
            "127.0.0.1:0",
            "--metrics-linger-s",
            "60",
        ],
    );
    let addr = metrics_addr(&p);
    let inferred = "vidinfer_frames_inferred_total{input=\"vtest\"}";
    let during = wait_until(Duration::from_secs(120), || {
        get(&addr, "/metrics").filter(|(_, t)| sample(t, inferred).is_some_and(|n| n > 0.0))
    })
    .expect("frames counted while running")
    .1;
    assert_eq!(get(&addr, "/healthz").unwrap().0, 200);
    assert_eq!(get(&addr, "/readyz").unwrap().0, 200, "ready while running");
    promtool_check(&during, &dir);
    for name in [
        "vidinfer_batch_size_bucket",
        "vidinfer_inference_seconds_bucket",
        "vidinfer_queue_depth",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "vidinfer_detections_total{input=\"vtest\",label=\"person\"}",
    ] {
        assert!(during.contains(name), "{name} in: {during}");
    }
    // The end: not ready any more, the input counted as done, still served (--metrics-linger-s).
    wait_until(Duration::from_secs(120), || {
        (get(&addr, "/readyz")?.0 == 503).then_some(())
    })
    .expect("not ready once the run has ended");
    let end = get(&addr, "/metrics").unwrap().1;
    promtool_check(&end, &dir);
    assert_eq!(
        sample(&end, "vidinfer_inputs_done_total{outcome=\"complete\"}"),
        Some(1.0),
        "{end}"
    );
    let (frames, events, _) = jsonl(&dir);
    assert_eq!(
        sample(&end, inferred),
        Some(frames as f64),
        "frames inferred = the JSONL's frame lines"
    );
    assert_eq!(
        sample(&end, "vidinfer_frames_decoded_total{input=\"vtest\"}"),
        Some(60.0)
    );
    let crossings = events.iter().filter(|e| e["event"] == "crossing").count() as f64;
    let counted: f64 = end
        .lines()
        .filter(|l| l.starts_with("vidinfer_line_crossings_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted, crossings, "crossings counted = the JSONL's");
    p.kill();
}

#[test]
#[ignore = "needs tools/setup"]
fn a_prometheus_server_scrapes_vidinfer() {
    let prometheus = Path::new("/usr/bin/prometheus");
    require_model(&[&vtest(), prometheus]);
    let dir = scratch("telemetry-prometheus");
    let (port, prom_port) = (free_tcp_port(), free_tcp_port());
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vidinfer\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"),
    )
    .unwrap();
    let mut cmd = Command::new(prometheus);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"));
    let prom = spawn("prometheus", cmd, 240, SETUP);
    let prom_addr = format!("127.0.0.1:{prom_port}");
    wait_until(Duration::from_secs(60), || {
        (get(&prom_addr, "/-/ready")?.0 == 200).then_some(())
    })
    .unwrap_or_else(|| panic!("prometheus not ready: {}", prom.log().join("\n")));
    let addr = format!("127.0.0.1:{port}");
    let p = start_detect(
        &dir,
        &[
            "--max-frames",
            "40",
            "--metrics",
            &addr,
            "--metrics-linger-s",
            "90",
        ],
    );
    assert_eq!(metrics_addr(&p), addr);
    wait_ended(&addr);
    let (frames, _, _) = jsonl(&dir);
    let query = "/api/v1/query?query=vidinfer_frames_inferred_total%7Binput%3D%22vtest%22%7D";
    let value = wait_until(Duration::from_secs(60), || {
        let (_, body) = get(&prom_addr, query)?;
        let v: Value = serde_json::from_str(&body).ok()?;
        let n: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
        (n == frames as f64).then_some(n)
    });
    assert_eq!(
        value,
        Some(frames as f64),
        "Prometheus read back the final count"
    );
    p.kill();
}

// ------------------------------------------------------------------ MQTT

/// Runs vidinfer publishing to a broker that is stopped for 5 s once the first events have
/// arrived, then restarted. Returns what arrived and the sink's summary.
fn run_through_outage(name: &str, extra: &[&str]) -> (Scratch, Vec<Value>, Value) {
    let (dir, received, sink, log) = outage(name, extra);
    assert!(
        log.iter()
            .any(|l| l.contains("MQTT broker") && l.contains("reconnecting")),
        "vidinfer saw the broker go: {log:?}"
    );
    (dir, received, sink)
}

fn outage(name: &str, extra: &[&str]) -> (Scratch, Vec<Value>, Value, Vec<String>) {
    require_model(&[
        &vtest(),
        Path::new("/usr/sbin/mosquitto"),
        Path::new("/usr/bin/mosquitto_sub"),
    ]);
    let dir = scratch(name);
    let port = free_tcp_port();
    let mut b = broker(&dir, port);
    let (_sub, got) = subscriber(port, "vidinfer/#");
    let url = format!("mqtt://127.0.0.1:{port}/vidinfer/events");
    let mut args = vec!["--max-frames", "150", "--realtime", "--events", &url];
    args.extend_from_slice(extra);
    let p = start_detect(&dir, &args);
    wait_until(Duration::from_secs(120), || {
        (got.lock().unwrap().len() >= 3).then_some(())
    })
    .unwrap_or_else(|| panic!("no events arrived: {}", p.log().join("\n")));
    stop(&b);
    thread::sleep(Duration::from_secs(5));
    b = broker(&dir, port);
    finish(&p);
    let sink = summary_events(&dir)
        .into_iter()
        .next()
        .expect("the sink in the summary");
    let delivered = sink["delivered"].as_u64().unwrap() as usize;
    wait_until(Duration::from_secs(30), || {
        (got.lock().unwrap().len() >= delivered).then_some(())
    });
    thread::sleep(Duration::from_millis(500));
    drop(b);
    let received = got.lock().unwrap().clone();
    (dir, received, sink, p.log())
}

#[test]
#[ignore = "needs tools/setup"]
fn mqtt_broker_down_5_s_loses_nothing_within_the_queue_bound() {
    let (dir, received, sink) = run_through_outage("telemetry-mqtt", &[]);
    check_all_arrived(&dir, &received);
    assert_eq!(
        sink["delivered"].as_u64(),
        Some(received.len() as u64),
        "{sink}"
    );
    assert_eq!(sink["dropped_queue_full"], 0);
    assert_eq!(sink["dropped_undelivered"], 0);
    assert!(jsonl(&dir).2.is_empty(), "no events_dropped line");
}

#[test]
#[ignore = "needs tools/setup"]
fn mqtt_past_the_queue_bound_the_drops_are_counted_exactly() {
    let (dir, received, sink) =
        run_through_outage("telemetry-mqtt-drops", &["--events-queue", "2"]);
    let (_, events, dropped_lines) = jsonl(&dir);
    let tracks = lines(&dir.join("out/vtest.tracks.jsonl"));
    let n = |k: &str| sink[k].as_u64().unwrap();
    let all = (events.len() + 2 * tracks.len() + 2) as u64;
    assert_eq!(n("published"), all, "{sink}");
    assert!(
        n("dropped_queue_full") > 0,
        "the 5 s outage overflows a queue of 2: {sink}"
    );
    assert_eq!(
        n("delivered") + n("dropped_queue_full") + n("dropped_undelivered"),
        all,
        "{sink}"
    );
    assert_eq!(
        n("delivered"),
        received.len() as u64,
        "each delivered event arrived once"
    );
    let in_jsonl: u64 = dropped_lines
        .iter()
        .map(|l| l["events"].as_u64().unwrap())
        .sum();
    assert_eq!(
        in_jsonl,
        n("dropped_queue_full"),
        "the JSONL counts the drops: {dropped_lines:?}"
    );
    let got: Vec<Value> = of_kind(&received, &["crossing", "zone_enter", "zone_exit"])
        .into_iter()
        .map(|v| bare(v, false))
        .collect();
    assert!(is_subsequence(&got, &events), "what arrived came in order");
    let ends: Vec<Value> = of_kind(&received, &["track_end"])
        .into_iter()
        .map(|v| bare(v, true))
        .collect();
    assert!(is_subsequence(&ends, &tracks));
}

// ------------------------------------------------------------------ HTTP

#[test]
#[ignore = "needs tools/setup"]
fn http_receiver_answering_500_is_retried_and_gets_every_event_once() {
    require(&[&vtest()]);
    require_model(&[]);
    let dir = scratch("telemetry-http");
    let (addr, bodies) = receiver(Duration::from_secs(280));
    let url = format!("http://{addr}/hook");
    let p = start_detect(&dir, &["--max-frames", "120", "--events", &url]);
    finish(&p);
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(
        bodies.first().map(|b| b.0),
        Some(500),
        "the first POST was refused"
    );
    let batch = |b: &str| -> Vec<Value> { serde_json::from_str(b).unwrap() };
    let refused = batch(&bodies[0].1);
    let retried = batch(&bodies[1].1);
    assert!(
        retried.starts_with(&refused),
        "the refused batch is posted again first"
    );
    let received: Vec<Value> = bodies[1..].iter().flat_map(|(_, b)| batch(b)).collect();
    check_all_arrived(&dir, &received);
    let sink = summary_events(&dir)
        .into_iter()
        .next()
        .expect("the sink in the summary");
    assert_eq!(
        sink["delivered"].as_u64(),
        Some(received.len() as u64),
        "{sink}"
    );
    assert!(sink["failed_attempts"].as_u64().unwrap() >= 1, "{sink}");
    assert_eq!(sink["dropped_queue_full"], 0);
    assert_eq!(sink["dropped_undelivered"], 0);
}

#[test]
fn an_unusable_event_target_is_refused_before_the_run() {
    let dir = scratch("telemetry-bad-target");
    for (url, needle) in [
        ("mqtt://127.0.0.1:1883", "no topic"),
        ("ftp://x/y", "unknown scheme"),
    ] {
        let out = detect(&dir, &["--events", url]).output().unwrap();
        let err = common::expect_failure(&out, 2, needle);
        assert!(!err.contains("panicked"), "{err}");
    }
}

// ------------------------------------------------------------------ live sources

/// A live source that drops, comes back, then stays away: the reconnect is counted and
/// published as the JSONL records it, the run is ready while the source is within its
/// reconnect limit and not once it has given up.
#[test]
#[ignore = "needs tools/setup"]
fn a_live_source_reconnecting_then_lost_shows_in_metrics_readiness_and_events() {
    use common::servers::{h264_clip, RtspOpts, RtspServer};
    require_model(&[&vtest()]);
    let dir = scratch("telemetry-live");
    let clip = h264_clip(&vtest(), 5.0, &dir.join("clip5.mp4"));
    let mut rtsp = RtspServer::start(&clip, RtspOpts::default());
    let (recv_addr, bodies) = receiver(Duration::from_secs(280));
    let mut c = Command::new(common::bin());
    c.args(["detect", &rtsp.url(), "--model"])
        .arg(model())
        .arg("--out")
        .arg(dir.join("out"))
        .args([
            "--no-progress",
            "--outputs",
            "jsonl",
            "--reconnect-max-s",
            "3",
        ])
        .args(["--metrics", "127.0.0.1:0", "--metrics-linger-s", "60"])
        .args(["--events", &format!("http://{recv_addr}/hook")]);
    let p = spawn("vidinfer", c, 300, "");
    let addr = metrics_addr(&p);
    let decoded = |name: &str| {
        let (_, t) = get(&addr, "/metrics")?;
        let key = t.lines().find(|l| l.starts_with(name))?.to_string();
        key.rsplit(' ').next()?.parse::<f64>().ok()
    };
    wait_until(Duration::from_secs(120), || {
        decoded("vidinfer_frames_decoded_total{").filter(|&n| n > 0.0)
    })
    .expect("frames decoded from the live source");
    rtsp.kill();
    thread::sleep(Duration::from_secs(1));
    assert_eq!(
        get(&addr, "/readyz").unwrap().0,
        200,
        "ready while reconnecting within the limit"
    );
    rtsp.restart();
    wait_until(Duration::from_secs(60), || {
        decoded("vidinfer_reconnects_total{").filter(|&n| n == 1.0)
    })
    .expect("the reconnect counted");
    rtsp.kill();
    let failed = "vidinfer_inputs_done_total{outcome=\"failed\"}";
    wait_until(Duration::from_secs(60), || {
        decoded(failed).filter(|&n| n == 1.0)
    })
    .expect("the input ends failed once the source stays away");
    assert_eq!(
        get(&addr, "/readyz").unwrap().0,
        503,
        "not ready once a live source is lost"
    );
    check_reconnect_published(&dir.join("out"), &bodies);
    p.kill();
}

/// The events go out before the metrics' linger: the reconnect published as the JSONL in
/// `out` has it, and the input's end, failed, last.
fn check_reconnect_published(out: &Path, bodies: &Posts) {
    let delivered = || {
        bodies
            .lock()
            .unwrap()
            .iter()
            .any(|(c, b)| *c == 200 && b.contains("input_end"))
    };
    wait_until(Duration::from_secs(60), || delivered().then_some(())).expect("input_end delivered");
    let jsonl = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("the JSONL of what arrived before the source was lost");
    let in_jsonl: Vec<Value> = lines(&jsonl)
        .into_iter()
        .filter(|v| v["event"] == "reconnected")
        .collect();
    assert_eq!(in_jsonl.len(), 1, "{in_jsonl:?}");
    let received: Vec<Value> = bodies
        .lock()
        .unwrap()
        .iter()
        .filter(|(code, _)| *code == 200)
        .flat_map(|(_, b)| serde_json::from_str::<Vec<Value>>(b).unwrap())
        .collect();
    let stem = jsonl.file_stem().unwrap().to_str().unwrap().to_string();
    let sent: Vec<Value> = of_kind(&received, &["reconnected"])
        .into_iter()
        .map(|mut v| {
            assert_eq!(v["input"], stem.as_str());
            v.as_object_mut().unwrap().remove("input");
            v
        })
        .collect();
    assert_eq!(sent, in_jsonl, "the reconnect published as written");
    let end = received.last().expect("events arrived");
    assert_eq!(
        (&end["event"], &end["ok"]),
        (&Value::from("input_end"), &Value::from(false)),
        "{end}"
    );
}
