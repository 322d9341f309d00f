//! Smoke tests of the live-source test servers (tests/common/servers.rs, tests/servers/):
//! each one is read by FFmpeg's own client (ffprobe) and must deliver the frames it serves.
//! The real-time servers play a 5 s H.264 cut of vtest (50 frames at 10 fps), not the 80 s
//! file.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::servers::*;

const VTEST_FRAMES: u64 = 795;
const CLIP_FRAMES: u64 = 50;
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

fn vtest() -> PathBuf {
    let v = common::vtest();
    common::require(&[&v]);
    v
}

/// The 5 s H.264 cut of vtest, in `dir`.
fn clip5(dir: &Path) -> PathBuf {
    let clip = h264_clip(&vtest(), 5.0, &dir.join("clip5.mp4"));
    assert_eq!(
        common::ffprobe_frames(&clip),
        CLIP_FRAMES,
        "the 5 s cut of vtest"
    );
    clip
}

// ------------------------------------------------------------------ HTTP

#[test]
#[ignore = "needs tools/setup"]
fn http_serves_vtest_with_range_requests() {
    let srv = HttpServer::start(&vtest(), HttpOpts::default());
    let (n, err) = ffprobe_url_frames(&srv.file_url(), &[], PROBE_TIMEOUT);
    assert_eq!(n, VTEST_FRAMES, "{err}");
    // The AVI demuxer reads the index at the end of the file: a ranged request past 0.
    let reqs = srv.requests();
    assert!(
        reqs.iter()
            .any(|r| r.contains("-> 206 bytes=") && !r.contains("-> 206 bytes=0-")),
        "no seek with Range: {reqs:#?}"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn http_directory_mode_serves_files_and_nothing_outside() {
    let dir = common::scratch("http-dir");
    std::fs::copy(vtest(), dir.join("v.avi")).unwrap();
    let srv = HttpServer::start(&dir, HttpOpts::default());
    let head = |path: &str, extra: &str| -> String {
        let mut s = TcpStream::connect(("127.0.0.1", srv.port())).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "HEAD {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        r
    };
    let size = std::fs::metadata(dir.join("v.avi")).unwrap().len();
    let r = head("/v.avi", "");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains(&format!("Content-Length: {size}")), "{r}");
    assert!(r.contains("Accept-Ranges: bytes"), "{r}");
    let r = head("/v.avi", "Range: bytes=100-\r\n");
    assert!(r.starts_with("HTTP/1.1 206"), "{r}");
    assert!(
        r.contains(&format!("Content-Range: bytes 100-{}/{size}", size - 1)),
        "{r}"
    );
    let r = head("/v.avi", &format!("Range: bytes={size}-\r\n"));
    assert!(r.starts_with("HTTP/1.1 416"), "{r}");
    for p in ["/../Cargo.toml", "/%2e%2e/Cargo.toml", "/nope.avi", "/"] {
        let r = head(p, "");
        assert!(r.starts_with("HTTP/1.1 404"), "{p}: {r}");
    }
    let (n, err) = ffprobe_url_frames(&srv.url("v.avi"), &[], PROBE_TIMEOUT);
    assert_eq!(n, VTEST_FRAMES, "{err}");
}

#[test]
#[ignore = "needs tools/setup"]
fn http_cut_connections_lose_frames_unless_the_client_reconnects() {
    let cut = 1_000_000;
    let srv = HttpServer::start(
        &vtest(),
        HttpOpts {
            cut_after: Some(cut),
            ..HttpOpts::default()
        },
    );
    // Plain: FFmpeg warns "Stream ends prematurely" and stops early, still exiting 0.
    let (n, err) = ffprobe_url_frames(&srv.file_url(), &[], PROBE_TIMEOUT);
    assert!(n < VTEST_FRAMES / 2, "{n} frames from a cut body: {err}");
    assert!(err.contains("Stream ends prematurely"), "{err}");
    // Reconnecting with Range from where it stopped: everything.
    let before = srv.requests().len();
    let (n, err) = ffprobe_url_frames(
        &srv.file_url(),
        &["-reconnect", "1", "-reconnect_on_network_error", "1"],
        PROBE_TIMEOUT,
    );
    assert_eq!(n, VTEST_FRAMES, "{err}");
    let cuts = srv.requests()[before..]
        .iter()
        .filter(|r| r.ends_with(" cut"))
        .count();
    let size = std::fs::metadata(vtest()).unwrap().len();
    assert!(
        cuts as u64 >= size / cut - 1,
        "{cuts} cut responses: {:#?}",
        srv.requests()
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn http_server_exits_mid_body() {
    let srv = HttpServer::start(
        &vtest(),
        HttpOpts {
            exit_after: Some(3_000_000),
            ..HttpOpts::default()
        },
    );
    // Depending on when the server dies (the AVI demuxer reads the index at the end of the
    // file first or not), ffprobe decodes part of the file or cannot even open it.
    let (n, err) = try_ffprobe_url_frames(&srv.file_url(), &[], PROBE_TIMEOUT);
    assert!(n.unwrap_or(0) < VTEST_FRAMES / 2, "{n:?} frames: {err}");
    assert!(
        srv.requests().iter().any(|r| r.ends_with(" exit")),
        "{:#?}",
        srv.requests()
    );
    let st = srv.proc().wait_exit(Duration::from_secs(5));
    assert!(st.is_some(), "the server should have exited");
    assert!(
        TcpStream::connect(("127.0.0.1", srv.port())).is_err(),
        "nothing listens any more"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn http_live_mode_is_unseekable_and_paced() {
    let srv = HttpServer::start(
        &vtest(),
        HttpOpts {
            live: true,
            rate: Some(4_000_000),
            ..HttpOpts::default()
        },
    );
    let t = Instant::now();
    let (n, err) = ffprobe_url_frames(&srv.file_url(), &[], PROBE_TIMEOUT);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(n, VTEST_FRAMES, "{err}");
    // 8.1 MB at 4 MB/s.
    assert!(secs > 1.5, "paced at 4 MB/s, took {secs:.1} s");
    let reqs = srv.requests();
    assert!(
        reqs.iter().all(|r| r.contains("-> 200 whole/")),
        "live mode answers 200 to everything: {reqs:#?}"
    );
}

// ------------------------------------------------------------------ RTSP

fn rtsp_frames(srv: &RtspServer, transport: &str) -> (u64, f64, String) {
    let t = Instant::now();
    let (n, err) = ffprobe_url_frames(&srv.url(), &["-rtsp_transport", transport], PROBE_TIMEOUT);
    (n, t.elapsed().as_secs_f64(), err)
}

#[test]
#[ignore = "needs tools/setup"]
fn rtsp_tcp_delivers_the_whole_clip_in_real_time() {
    let dir = common::scratch("rtsp-tcp");
    let srv = RtspServer::start(&clip5(&dir), RtspOpts::default());
    // TCP-interleaved RTP loses nothing: every frame, then EOF at the server's BYE.
    let (n, secs, err) = rtsp_frames(&srv, "tcp");
    assert_eq!(n, CLIP_FRAMES, "{err}");
    assert!((4.0..15.0).contains(&secs), "5 s clip in {secs:.1} s");
    // Each session starts from the first frame.
    let (n, _, err) = rtsp_frames(&srv, "tcp");
    assert_eq!(n, CLIP_FRAMES, "second session: {err}");
}

#[test]
#[ignore = "needs tools/setup"]
fn rtsp_udp_delivers_the_clip() {
    let dir = common::scratch("rtsp-udp");
    let srv = RtspServer::start(&clip5(&dir), RtspOpts::default());
    // RTP over UDP may lose or reorder a packet even on loopback: 2 frames of slack.
    let (n, secs, err) = rtsp_frames(&srv, "udp");
    assert!(
        (CLIP_FRAMES - 2..=CLIP_FRAMES).contains(&n),
        "{n} frames: {err}"
    );
    assert!((4.0..15.0).contains(&secs), "5 s clip in {secs:.1} s");
}

#[test]
#[ignore = "needs tools/setup"]
fn rtsp_server_killed_mid_stream_restarts_on_the_same_port() {
    let dir = common::scratch("rtsp-restart");
    let mut srv = RtspServer::start(&clip5(&dir), RtspOpts::default());
    let port = srv.port();
    let mut client = Command::new("ffprobe")
        .args(["-v", "error", "-rtsp_transport", "tcp", "-count_frames"])
        .args([
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
        ])
        .args(["-of", "csv=p=0"])
        .arg(srv.url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    srv.kill();
    // The client sees the connection drop as the end of the stream, soon.
    let st = wait_timeout(&mut client, Duration::from_secs(10));
    assert!(st.is_some(), "the client must end when the server dies");
    let mut out = String::new();
    client
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let got = parse_frame_count(&out).unwrap_or(0);
    assert!(got < CLIP_FRAMES, "{got} frames before the kill ({st:?})");
    eprintln!("client of the killed server: {got} frames, {st:?}");

    srv.restart();
    assert_eq!(srv.port(), port);
    let (n, _, err) = rtsp_frames(&srv, "tcp");
    assert_eq!(n, CLIP_FRAMES, "after the restart: {err}");
}

// ------------------------------------------------------------------ MPEG-TS over TCP, SRT, UDP

#[test]
#[ignore = "needs tools/setup"]
fn tcp_ts_server_streams_the_clip_to_one_client() {
    let dir = common::scratch("tcp-ts");
    let srv = TsServer::tcp(&clip5(&dir), true);
    let t = Instant::now();
    let (n, err) = ffprobe_url_frames(&srv.url(), &[], PROBE_TIMEOUT);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(n, CLIP_FRAMES, "{err}");
    assert!((4.0..15.0).contains(&secs), "5 s clip in {secs:.1} s");
    let st = srv.proc().wait_exit(Duration::from_secs(5));
    assert!(
        st.is_some_and(|s| s.success()),
        "ffmpeg after its client: {st:?}"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn tcp_ts_server_reencodes_all_of_vtest_fast() {
    let srv = TsServer::start(
        &vtest(),
        TsOpts {
            realtime: false,
            reencode: true,
            ..TsOpts::default()
        },
    );
    let (n, err) = ffprobe_url_frames(&srv.url(), &[], PROBE_TIMEOUT);
    assert_eq!(n, VTEST_FRAMES, "{err}");
}

#[test]
#[ignore = "needs tools/setup"]
fn tcp_ts_server_gives_up_without_a_client() {
    let dir = common::scratch("tcp-ts-idle");
    let srv = TsServer::start(
        &clip5(&dir),
        TsOpts {
            accept_timeout: Duration::from_secs(1),
            ..TsOpts::default()
        },
    );
    let st = srv.proc().wait_exit(Duration::from_secs(10));
    assert!(
        st.is_some(),
        "ffmpeg still waits for a client after its accept timeout"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn srt_ts_server_streams_the_clip() {
    let dir = common::scratch("srt");
    let srv = TsServer::start(
        &clip5(&dir),
        TsOpts {
            proto: TsProto::Srt,
            ..TsOpts::default()
        },
    );
    // The caller reports the sender's close as an I/O error and drops what its latency
    // buffer still held: the last frame or so is lost.
    let (n, err) = ffprobe_url_frames(&srv.url(), &[], PROBE_TIMEOUT);
    assert!(
        (CLIP_FRAMES - 2..=CLIP_FRAMES).contains(&n),
        "{n} frames: {err}"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn udp_ts_sender_reaches_a_bound_receiver() {
    let dir = common::scratch("udp");
    let clip = clip5(&dir);
    let port = free_udp_port();
    // The receiver first; UDP has no end of stream, so the read times out (2 s) at the end.
    let mut rx = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(format!(
            "udp://127.0.0.1:{port}?localaddr=127.0.0.1&timeout=2000000"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = rx.id();
    let bound = wait_until(Duration::from_secs(10), || {
        holds_socket(pid, port, Sock::Udp).then_some(())
    });
    assert!(bound.is_some(), "ffprobe never bound 127.0.0.1:{port}/udp");
    let tx = UdpTsSender::start(&clip, port, true, 30);
    let st = wait_timeout(&mut rx, Duration::from_secs(30));
    assert!(st.is_some_and(|s| s.success()), "receiver: {st:?}");
    assert!(tx.wait(Duration::from_secs(5)).is_some_and(|s| s.success()));
    let mut out = String::new();
    rx.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let n = parse_frame_count(&out).expect("frame count");
    eprintln!("udp receiver: {n} frames");
    assert!(
        (CLIP_FRAMES - 2..=CLIP_FRAMES).contains(&n),
        "{n} frames over UDP"
    );
}

// ------------------------------------------------------------------ stdin

#[test]
#[ignore = "needs tools/setup"]
fn ffmpeg_producer_feeds_a_consumers_stdin() {
    let dir = common::scratch("stdin");
    let clip = clip5(&dir);
    let mut consumer = Command::new("ffprobe");
    consumer
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            "-",
        ]);
    let p = pipe_into(ffmpeg_mpegts_to_stdout(&clip, false, false), consumer);
    let (prod, out) = p.wait_output(PROBE_TIMEOUT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(prod.is_some_and(|s| s.success()), "producer: {prod:?}");
    let n = parse_frame_count(&String::from_utf8_lossy(&out.stdout)).expect("frame count");
    eprintln!("stdin consumer: {n} frames");
    assert_eq!(n, CLIP_FRAMES);
}

// ------------------------------------------------------------------ bounds, media

#[test]
#[ignore = "needs tools/setup"]
fn servers_exit_by_themselves_at_their_deadline() {
    let dir = common::scratch("deadline");
    let clip = clip5(&dir);
    let http = HttpServer::start(
        &clip,
        HttpOpts {
            max_seconds: 1,
            ..HttpOpts::default()
        },
    );
    let rtsp = RtspServer::start(
        &clip,
        RtspOpts {
            max_seconds: 2,
            ..RtspOpts::default()
        },
    );
    assert!(
        http.proc().wait_exit(Duration::from_secs(5)).is_some(),
        "http still runs"
    );
    assert!(
        rtsp.proc().wait_exit(Duration::from_secs(6)).is_some(),
        "rtsp still runs"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn looped_media_is_longer_and_continuous() {
    let dir = common::scratch("looped");
    let clip = clip5(&dir);
    let long = looped(&clip, 3, &dir.join("long.mp4"));
    assert_eq!(common::ffprobe_frames(&long), 3 * CLIP_FRAMES);
    let dur: f64 = common::ffprobe_field(&long, "duration").parse().unwrap();
    assert!((dur - 15.0).abs() < 0.2, "duration {dur}");
}

#[test]
#[ignore = "needs tools/setup"]
fn a_leaked_server_dies_with_the_thread_that_started_it() {
    let file = vtest();
    let port = std::thread::spawn(move || {
        let srv = HttpServer::start(&file, HttpOpts::default());
        let port = srv.port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        std::mem::forget(srv); // no Drop: PR_SET_PDEATHSIG must still end it
        port
    })
    .join()
    .unwrap();
    let gone = wait_until(Duration::from_secs(5), || {
        TcpStream::connect(("127.0.0.1", port))
            .is_err()
            .then_some(())
    });
    assert!(gone.is_some(), "the leaked server still listens on {port}");
}
