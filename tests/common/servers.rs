//! Live sources for the integration tests: real servers on 127.0.0.1 that a test starts and
//! stops (HTTP with byte ranges, RTSP, MPEG-TS over TCP and SRT), a UDP MPEG-TS sender, and an
//! ffmpeg producer for stdin. The servers are the scripts in tests/servers/ and the ffmpeg CLI.
//!
//! Every server here
//! - listens on 127.0.0.1 only, on a port free at the time (port 0, or probed and retried);
//! - is ready when `start` returns: the port is listening (bounded wait; on failure the test
//!   panics with the server's stderr and a hint such as "run tools/setup");
//! - is bounded in time: it exits by itself after `max_seconds` (its own deadline, and a
//!   watchdog thread here that kills it even if the handle was leaked); it also gets SIGKILL
//!   when the thread that started it ends (PR_SET_PDEATHSIG: start servers from the test's own
//!   thread, not from a helper thread that ends first);
//! - is killed (SIGKILL, then reaped) when its handle drops, panics included; when the test
//!   is panicking the server's stderr is printed to help.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::Duration,
};

use super::root;

/// How long `start` waits for a server to listen.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Default deadline after which a server exits by itself.
pub const DEFAULT_MAX_SECONDS: u32 = 120;

pub fn servers_dir() -> PathBuf {
    root().join("tests/servers")
}

/// The python that has python3-gi: Debian's, not a pyenv/venv one earlier in PATH.
/// `VIDINFER_GI_PYTHON` overrides it.
pub fn gi_python() -> PathBuf {
    std::env::var_os("VIDINFER_GI_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"))
}

// The helpers the tests reach through `servers::*` (each test uses some of them).
#[allow(unused_imports)]
pub use super::{media::*, procs::*};

// ------------------------------------------------------------------ HTTP

#[derive(Clone, Debug)]
pub struct HttpOpts {
    /// 0 = any free port.
    pub port: u16,
    pub max_seconds: u32,
    /// Ignore Range: always 200 with the whole file, no Accept-Ranges.
    pub no_range: bool,
    /// No Content-Length, Range ignored, Connection: close: an unseekable live-like stream.
    pub live: bool,
    /// Pace every body at this many bytes/s.
    pub rate: Option<u64>,
    /// Every response is cut (connection closed) after this many body bytes.
    pub cut_after: Option<u64>,
    /// The whole server exits after this many body bytes in all.
    pub exit_after: Option<u64>,
}

impl Default for HttpOpts {
    fn default() -> Self {
        HttpOpts {
            port: 0,
            max_seconds: DEFAULT_MAX_SECONDS,
            no_range: false,
            live: false,
            rate: None,
            cut_after: None,
            exit_after: None,
        }
    }
}

/// tests/servers/http_server.py: files over HTTP/1.1 with byte ranges.
pub struct HttpServer {
    proc: Proc,
    port: u16,
    root: PathBuf,
}

impl HttpServer {
    /// Serves `root`: a file (at `/NAME`) or a directory (its files by relative path).
    pub fn start(root: &Path, opts: HttpOpts) -> Self {
        let hint = "python3 runs tests/servers/http_server.py (stdlib only)";
        let mut c = Command::new("python3");
        c.arg(servers_dir().join("http_server.py"))
            .arg("--port")
            .arg(opts.port.to_string())
            .arg("--max-seconds")
            .arg(opts.max_seconds.to_string());
        if opts.no_range {
            c.arg("--no-range");
        }
        if opts.live {
            c.arg("--live");
        }
        if let Some(r) = opts.rate {
            c.arg("--rate").arg(r.to_string());
        }
        if let Some(n) = opts.cut_after {
            c.arg("--cut-after").arg(n.to_string());
        }
        if let Some(n) = opts.exit_after {
            c.arg("--exit-after").arg(n.to_string());
        }
        c.arg(root);
        let mut proc = spawn("http_server", c, opts.max_seconds, hint);
        let port = proc.wait_listening_line(hint);
        HttpServer {
            proc,
            port,
            root: root.to_path_buf(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            name.trim_start_matches('/')
        )
    }

    /// The URL of the file when `root` is one.
    pub fn file_url(&self) -> String {
        let name = self.root.file_name().expect("root is a file");
        self.url(&name.to_string_lossy())
    }

    /// One line per request served so far: `REQ GET /x range=... -> 206 ... sent=N [cut|exit]`.
    pub fn requests(&self) -> Vec<String> {
        self.proc
            .log()
            .into_iter()
            .filter(|l| l.starts_with("REQ "))
            .collect()
    }

    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    pub fn kill(&self) {
        self.proc.kill()
    }
}

// ------------------------------------------------------------------ RTSP

#[derive(Clone, Debug)]
pub struct RtspOpts {
    /// 0 = any free port.
    pub port: u16,
    /// The mount point, starting with '/'.
    pub path: String,
    pub max_seconds: u32,
    /// Lower transports offered: "tcp,udp", "tcp" or "udp".
    pub protocols: String,
}

impl Default for RtspOpts {
    fn default() -> Self {
        RtspOpts {
            port: 0,
            path: "/stream".into(),
            max_seconds: DEFAULT_MAX_SECONDS,
            protocols: "tcp,udp".into(),
        }
    }
}

/// tests/servers/rtsp_server.py: gst-rtsp-server serving an H.264 file (see [`h264_clip`])
/// once per client, at real-time pace; the session ends (RTCP BYE, FFmpeg sees EOF) at the
/// end of the file.
pub struct RtspServer {
    proc: Proc,
    media: PathBuf,
    opts: RtspOpts,
}

const RTSP_HINT: &str = "needs /usr/bin/python3 with python3-gi, gir1.2-gst-rtsp-server-1.0 and \
                         gstreamer1.0-plugins-{base,good,bad}: run tools/setup";

impl RtspServer {
    pub fn start(media: &Path, opts: RtspOpts) -> Self {
        let proc = Self::spawn(media, &opts);
        let mut s = RtspServer {
            proc,
            media: media.to_path_buf(),
            opts,
        };
        s.opts.port = s.proc.wait_listening_line(RTSP_HINT);
        s
    }

    fn spawn(media: &Path, opts: &RtspOpts) -> Proc {
        let mut c = Command::new(gi_python());
        c.arg(servers_dir().join("rtsp_server.py"))
            .arg("--port")
            .arg(opts.port.to_string())
            .arg("--path")
            .arg(&opts.path)
            .arg("--max-seconds")
            .arg(opts.max_seconds.to_string())
            .arg("--protocols")
            .arg(&opts.protocols)
            .arg("--bind-retry")
            .arg("10")
            .arg(media);
        spawn("rtsp_server", c, opts.max_seconds, RTSP_HINT)
    }

    pub fn port(&self) -> u16 {
        self.opts.port
    }

    /// `rtsp://127.0.0.1:PORT/stream`.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}{}", self.opts.port, self.opts.path)
    }

    /// SIGKILL, mid-stream if a client plays: its connections drop at once.
    pub fn kill(&self) {
        self.proc.kill()
    }

    /// Kills the server if it runs and starts it again on the same port (the script retries
    /// the bind for up to 10 s; SO_REUSEADDR lets it through the killed one's TIME_WAIT).
    /// Returns once it listens again.
    pub fn restart(&mut self) {
        self.proc.kill();
        self.proc = Self::spawn(&self.media, &self.opts);
        let port = self.proc.wait_listening_line(RTSP_HINT);
        assert_eq!(
            port, self.opts.port,
            "restarted RTSP server on another port"
        );
    }

    pub fn proc(&self) -> &Proc {
        &self.proc
    }
}

// ------------------------------------------------------------------ MPEG-TS over TCP / SRT

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsProto {
    /// `tcp://127.0.0.1:PORT?listen=1`: one client, then ffmpeg streams and exits.
    Tcp,
    /// `srt://127.0.0.1:PORT?mode=listener`: ffmpeg is the SRT listener (sender), one client.
    Srt,
}

#[derive(Clone, Debug)]
pub struct TsOpts {
    pub proto: TsProto,
    /// `-re`: real-time pace; otherwise as fast as the client reads.
    pub realtime: bool,
    /// Re-encode to H.264 (libx264 ultrafast, -g 10); otherwise `-c copy` (the input must be
    /// MPEG-TS-compatible, e.g. H.264 from [`h264_clip`]).
    pub reencode: bool,
    /// Loop the input endlessly (`-stream_loop -1`); `max_seconds` still ends the stream.
    pub loop_input: bool,
    /// The stream lasts at most this long (`-t` on the output); the process is killed this
    /// long + 2 s after it started, however long it waited for its client.
    pub max_seconds: u32,
    /// ffmpeg gives up (exits) if no client connects within this.
    pub accept_timeout: Duration,
}

impl Default for TsOpts {
    fn default() -> Self {
        TsOpts {
            proto: TsProto::Tcp,
            realtime: true,
            reencode: false,
            loop_input: false,
            max_seconds: DEFAULT_MAX_SECONDS,
            accept_timeout: Duration::from_secs(30),
        }
    }
}

/// ffmpeg serving `file` as MPEG-TS to the first client that connects (TCP or SRT).
/// Readiness is read from /proc (a socket of ffmpeg's listening on the port), never by
/// connecting, which would use up its single connection.
pub struct TsServer {
    proc: Proc,
    port: u16,
    proto: TsProto,
}

pub type TcpTsServer = TsServer;

/// ffmpeg's video options for a TS feed: re-encoded as H.264 that can be cut anywhere (no
/// B-frames, a keyframe every 10 frames, yuv420p), or the input's stream copied as it is.
fn ts_video_args(reencode: bool) -> &'static [&'static str] {
    if reencode {
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
            "-g",
            "10",
            "-pix_fmt",
            "yuv420p",
        ]
    } else {
        &["-c", "copy"]
    }
}

/// ffmpeg sending `file` as MPEG-TS to `url` (a listening TCP or SRT URL), as `opts` say.
fn ts_server_command(file: &Path, opts: &TsOpts, url: &str) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-nostdin", "-v", "error"]);
    if opts.realtime {
        c.arg("-re");
    }
    if opts.loop_input {
        c.args(["-stream_loop", "-1"]);
    }
    c.arg("-i").arg(file).arg("-an");
    c.args(ts_video_args(opts.reencode));
    c.arg("-t")
        .arg(opts.max_seconds.to_string())
        .args(["-f", "mpegts"])
        .arg(url);
    c
}

impl TsServer {
    /// A TCP MPEG-TS server with the default options, `realtime` or not.
    pub fn tcp(file: &Path, realtime: bool) -> Self {
        Self::start(
            file,
            TsOpts {
                realtime,
                ..TsOpts::default()
            },
        )
    }

    pub fn start(file: &Path, opts: TsOpts) -> Self {
        let mut last = String::new();
        for _attempt in 0..5 {
            let (port, kind) = match opts.proto {
                TsProto::Tcp => (free_tcp_port(), Sock::TcpListen),
                TsProto::Srt => (free_udp_port(), Sock::Udp),
            };
            let url = match opts.proto {
                TsProto::Tcp => format!(
                    "tcp://127.0.0.1:{port}?listen=1&listen_timeout={}&timeout=10000000",
                    opts.accept_timeout.as_millis()
                ),
                TsProto::Srt => format!(
                    "srt://127.0.0.1:{port}?mode=listener&listen_timeout={}",
                    opts.accept_timeout.as_micros()
                ),
            };
            let c = ts_server_command(file, &opts, &url);
            let proc = spawn(
                "ffmpeg ts server",
                c,
                opts.max_seconds,
                "ffmpeg (tools/setup)",
            );
            let pid = proc.pid();
            let ready = wait_until(READY_TIMEOUT, || {
                if holds_socket(pid, port, kind) {
                    Some(true)
                } else if !proc.is_running() {
                    Some(false)
                } else {
                    None
                }
            });
            match ready {
                Some(true) => {
                    return TsServer {
                        proc,
                        port,
                        proto: opts.proto,
                    }
                }
                Some(false) => {
                    last = proc.log_text();
                    if last.contains("in use") {
                        continue; // someone took the port: another one
                    }
                    panic!("ffmpeg {url} exited before listening:\n{last}");
                }
                None => panic!(
                    "ffmpeg {url} not listening after {READY_TIMEOUT:?}:\n{}",
                    proc.log_text()
                ),
            }
        }
        panic!("ffmpeg TS server: no free port after 5 tries:\n{last}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `tcp://127.0.0.1:PORT` or `srt://127.0.0.1:PORT` (SRT: caller mode, the default).
    pub fn url(&self) -> String {
        match self.proto {
            TsProto::Tcp => format!("tcp://127.0.0.1:{}", self.port),
            TsProto::Srt => format!("srt://127.0.0.1:{}", self.port),
        }
    }

    pub fn kill(&self) {
        self.proc.kill()
    }

    pub fn proc(&self) -> &Proc {
        &self.proc
    }
}

// ------------------------------------------------------------------ UDP sender

/// ffmpeg sending `file` as MPEG-TS datagrams (1316-byte payloads) to 127.0.0.1:`port`, from a
/// socket bound to 127.0.0.1. UDP has no connection: start the receiver first (see
/// [`holds_socket`] with [`Sock::Udp`] to know it is bound); whatever is sent before is lost.
/// The receiver binds 0.0.0.0 unless told otherwise: use
/// `udp://127.0.0.1:PORT?localaddr=127.0.0.1&timeout=2000000` (timeout in µs: there is no end
/// of stream in UDP, the read times out).
pub struct UdpTsSender {
    proc: Proc,
    port: u16,
}

impl UdpTsSender {
    /// `realtime` = `-re`; the stream ends after `max_seconds` at most.
    pub fn start(file: &Path, port: u16, realtime: bool, max_seconds: u32) -> Self {
        let mut c = Command::new("ffmpeg");
        c.args(["-hide_banner", "-nostdin", "-v", "error"]);
        if realtime {
            c.arg("-re");
        }
        c.arg("-i")
            .arg(file)
            .args(["-an", "-c", "copy", "-t"])
            .arg(max_seconds.to_string())
            .args(["-f", "mpegts"])
            .arg(format!(
                "udp://127.0.0.1:{port}?pkt_size=1316&localaddr=127.0.0.1"
            ));
        let proc = spawn("ffmpeg udp sender", c, max_seconds, "ffmpeg (tools/setup)");
        UdpTsSender { proc, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits up to `timeout` for the sender to finish; its exit status.
    pub fn wait(&self, timeout: Duration) -> Option<ExitStatus> {
        self.proc.wait_exit(timeout)
    }

    pub fn proc(&self) -> &Proc {
        &self.proc
    }
}

// ------------------------------------------------------------------ stdin

/// `ffmpeg -re? -i FILE -an -c copy|libx264 -f mpegts -` with stdout piped, stdin null, stderr
/// piped: the producer end of a pipe into a consumer's stdin (see [`pipe_into`]). Copy needs
/// an H.264 input (see [`h264_clip`]); `reencode` makes H.264 from anything.
pub fn ffmpeg_mpegts_to_stdout(file: &Path, realtime: bool, reencode: bool) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-nostdin", "-v", "error"]);
    if realtime {
        c.arg("-re");
    }
    c.arg("-i").arg(file).arg("-an");
    c.args(ts_video_args(reencode));
    c.args(["-f", "mpegts", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// A producer whose stdout is a consumer's stdin; both killed on drop.
pub struct Piped {
    pub producer: Child,
    pub consumer: Child,
}

/// Starts `producer` (stdout forced to a pipe) and `consumer` reading it on stdin. The
/// consumer's stdout/stderr are piped (read them with [`Piped::wait_output`]).
pub fn pipe_into(mut producer: Command, mut consumer: Command) -> Piped {
    producer.stdout(Stdio::piped());
    let mut p = producer
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {producer:?}: {e}"));
    let out = p.stdout.take().unwrap();
    consumer
        .stdin(Stdio::from(out))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let c = consumer.spawn().unwrap_or_else(|e| {
        let _ = p.kill();
        let _ = p.wait();
        panic!("cannot start {consumer:?}: {e}")
    });
    Piped {
        producer: p,
        consumer: c,
    }
}

impl Piped {
    /// Waits up to `timeout` for the consumer (panics, both killed, when it runs over), then
    /// up to 5 s for the producer. Returns the producer's status and the consumer's output.
    pub fn wait_output(mut self, timeout: Duration) -> (Option<ExitStatus>, Output) {
        let (so, se) = (
            self.consumer.stdout.take().unwrap(),
            self.consumer.stderr.take().unwrap(),
        );
        let (t_out, t_err) = (read_to_end_in_background(so), read_to_end_in_background(se));
        let st = wait_timeout(&mut self.consumer, timeout);
        let stderr = t_err.join().unwrap();
        let stdout = t_out.join().unwrap();
        let status = st.unwrap_or_else(|| {
            panic!(
                "consumer ran over {timeout:?}:\n{}",
                String::from_utf8_lossy(&stderr)
            )
        });
        let prod = wait_timeout(&mut self.producer, Duration::from_secs(5));
        (
            prod,
            Output {
                status,
                stdout,
                stderr,
            },
        )
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        for c in [&mut self.producer, &mut self.consumer] {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
