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
    ffi::OsStr,
    io::{BufRead, BufReader, Read},
    net::{TcpListener, UdpSocket},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread,
    time::{Duration, Instant},
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

// ------------------------------------------------------------------ process plumbing

/// A server child process: its own process group, killed with the group on drop, SIGKILLed
/// by the kernel when the starting thread ends, and by a watchdog after its deadline.
pub struct Proc {
    name: String,
    child: Arc<Mutex<Child>>,
    log: Arc<Mutex<Vec<String>>>,
    stdout: Option<mpsc::Receiver<String>>,
}

/// A daemon the test starts itself (munged, slurmctld, ...), run in the foreground under the
/// same rules as the servers here (own process group, killed on drop, PDEATHSIG, deadline).
/// Readiness is the caller's to wait for.
pub fn daemon(name: &str, cmd: Command, max_seconds: u32, hint: &str) -> Proc {
    spawn(name, cmd, max_seconds, hint)
}

/// `cmd` gets: stdin null, stdout/stderr piped, own process group, PDEATHSIG = SIGKILL.
pub fn spawn(name: &str, mut cmd: Command, max_seconds: u32, hint: &str) -> Proc {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the hook only calls async-signal-safe functions (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            // Dies with the thread that spawned it; if that already happened, go now.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}; {hint}"));
    let log = Arc::new(Mutex::new(Vec::new()));
    let err = child.stderr.take().unwrap();
    let l2 = log.clone();
    thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(line);
        }
    });
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let child = Arc::new(Mutex::new(child));
    // The watchdog: SIGKILL after the deadline (+2 s grace for the server's own deadline).
    // std's Child::kill never signals a child already reaped, so a reused pid is safe.
    let weak = Arc::downgrade(&child);
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(max_seconds as u64 + 2));
        if let Some(c) = weak.upgrade() {
            let mut c = c.lock().unwrap();
            if matches!(c.try_wait(), Ok(None)) {
                kill_group(&mut c);
            }
        }
    });
    Proc {
        name: name.to_string(),
        child,
        log,
        stdout: Some(rx),
    }
}

fn kill_group(c: &mut Child) {
    // The group is the child's own (process_group(0)); it may hold ffmpeg's helpers.
    // SAFETY: kill has no memory preconditions; the group is the child's own.
    unsafe {
        libc::kill(-(c.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = c.kill();
    let _ = c.wait();
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// The server's stderr so far, one entry a line.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn log_text(&self) -> String {
        // The stderr thread may still be reading what a dying process wrote last.
        thread::sleep(Duration::from_millis(100));
        self.log().join("\n")
    }

    /// Its stdout, a line per item (once; the lines are otherwise read for `LISTENING`).
    pub fn take_stdout(&mut self) -> mpsc::Receiver<String> {
        self.stdout.take().expect("stdout taken once")
    }

    /// `Some(status)` once it has exited.
    pub fn try_status(&self) -> Option<ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    pub fn is_running(&self) -> bool {
        self.try_status().is_none()
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || self.try_status())
    }

    /// SIGKILL to its process group, then reaps it. Idempotent.
    pub fn kill(&self) {
        let mut c = self.child.lock().unwrap();
        if matches!(c.try_wait(), Ok(None)) {
            kill_group(&mut c);
        }
    }

    /// Waits (bounded) for the line the server prints when it listens, `LISTENING port=N ...`.
    fn wait_listening_line(&mut self, hint: &str) -> u16 {
        let rx = self.stdout.as_ref().unwrap();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("LISTENING port=") {
                        let port = rest.split_whitespace().next().unwrap_or("");
                        return port.parse().unwrap_or_else(|_| {
                            panic!("{}: bad LISTENING line '{line}'", self.name)
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.kill();
                    panic!(
                        "{} not listening after {READY_TIMEOUT:?}; {hint}\n{}",
                        self.name,
                        self.log_text()
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let st = self.wait_exit(Duration::from_secs(2));
                    panic!(
                        "{} exited before listening ({st:?}); {hint}\n{}",
                        self.name,
                        self.log_text()
                    )
                }
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!("--- {} stderr ---\n{}", self.name, self.log().join("\n"));
        }
    }
}

/// Polls `f` every 20 ms until it returns `Some` or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `timeout` for `child`; kills it (and returns None) when it runs over.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let st = wait_until(timeout, || child.try_wait().ok().flatten());
    if st.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    st
}

/// Runs `cmd` to completion (stdout and stderr captured), killing it after `timeout`.
/// Panics when it runs over, showing what it wrote.
pub fn output_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t_err = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let st = wait_timeout(&mut child, timeout);
    let (stdout, stderr) = (t_out.join().unwrap(), t_err.join().unwrap());
    match st {
        Some(status) => Output {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "{cmd:?} ran over {timeout:?}:\n{}",
            String::from_utf8_lossy(&stderr)
        ),
    }
}

// ------------------------------------------------------------------ ports

/// A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close). Another
/// process may take it before you bind: the starters below retry on "address in use".
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Like [`free_tcp_port`], for UDP.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind 127.0.0.1:0 (udp)")
        .port()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sock {
    /// A TCP socket in LISTEN state.
    TcpListen,
    /// A bound UDP socket (also SRT, which runs over UDP).
    Udp,
}

/// Whether process `pid` holds a socket bound to 127.0.0.1:`port` (listening, for TCP).
/// Read from /proc without connecting, so it does not use up a one-client server's only
/// connection (ffmpeg's `tcp://...?listen=1`).
pub fn holds_socket(pid: u32, port: u16, kind: Sock) -> bool {
    let (table, want_state) = match kind {
        Sock::TcpListen => ("/proc/net/tcp", Some("0A")),
        Sock::Udp => ("/proc/net/udp", None),
    };
    let local = format!("0100007F:{port:04X}");
    let Ok(text) = std::fs::read_to_string(table) else {
        return false;
    };
    let inodes: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let ok = f.len() > 9 && f[1] == local && want_state.is_none_or(|s| f[3] == s);
            ok.then(|| f[9].to_string())
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|e| {
        std::fs::read_link(e.path())
            .map(|t| {
                let t = t.to_string_lossy();
                inodes.iter().any(|i| t == format!("socket:[{i}]"))
            })
            .unwrap_or(false)
    })
}

// ------------------------------------------------------------------ media

/// Cuts `seconds` of `src` into `out` as H.264 (libx264, no B-frames, a keyframe every 10
/// frames, yuv420p, no audio): what the RTSP server and `-c copy` MPEG-TS need. The container
/// follows `out`'s extension (.mp4, .mkv, .ts). Returns `out`.
pub fn h264_clip(src: &Path, seconds: f64, out: &Path) -> PathBuf {
    let t = format!("{seconds}");
    let args: [&OsStr; 16] = [
        "-i".as_ref(),
        src.as_os_str(),
        "-t".as_ref(),
        t.as_ref(),
        "-an".as_ref(),
        "-c:v".as_ref(),
        "libx264".as_ref(),
        "-preset".as_ref(),
        "veryfast".as_ref(),
        "-bf".as_ref(),
        "0".as_ref(),
        "-g".as_ref(),
        "10".as_ref(),
        "-pix_fmt".as_ref(),
        "yuv420p".as_ref(),
        out.as_os_str(),
    ];
    super::ffmpeg(args);
    out.to_path_buf()
}

/// `src` played `times` times in a row into `out`, without re-encoding (timestamps continue):
/// a long file for long runs, since the RTSP server cannot loop. Returns `out`.
pub fn looped(src: &Path, times: u32, out: &Path) -> PathBuf {
    let n = times.saturating_sub(1).to_string();
    let args: [&OsStr; 7] = [
        "-stream_loop".as_ref(),
        n.as_ref(),
        "-i".as_ref(),
        src.as_os_str(),
        "-c".as_ref(),
        "copy".as_ref(),
        out.as_os_str(),
    ];
    super::ffmpeg(args);
    out.to_path_buf()
}

/// Frames of the first video stream that ffprobe decodes from `url` (any FFmpeg input),
/// `input_opts` going before the input (e.g. `["-rtsp_transport", "tcp"]`). Killed after
/// `timeout` (a panic). Returns (frames, ffprobe's exit status and stderr).
pub fn ffprobe_url_frames(url: &str, input_opts: &[&str], timeout: Duration) -> (u64, String) {
    let (n, err) = try_ffprobe_url_frames(url, input_opts, timeout);
    let n = n.unwrap_or_else(|| panic!("ffprobe {url}: no frame count: {err}"));
    (n, err)
}

/// [`ffprobe_url_frames`] that returns `None` when ffprobe prints no count (it can exit 0
/// without one, e.g. when the server died while it probed).
pub fn try_ffprobe_url_frames(
    url: &str,
    input_opts: &[&str],
    timeout: Duration,
) -> (Option<u64>, String) {
    let mut c = Command::new("ffprobe");
    c.args(["-v", "error"])
        .args(input_opts)
        .args([
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(url);
    let t = Instant::now();
    let o = output_timeout(&mut c, timeout);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let n = parse_frame_count(&String::from_utf8_lossy(&o.stdout));
    eprintln!(
        "ffprobe {} {url}: {n:?} frames in {:.1} s ({})",
        input_opts.join(" "),
        t.elapsed().as_secs_f64(),
        o.status
    );
    (n, format!("{}; {err}", o.status))
}

/// The count in ffprobe's `-show_entries stream=nb_read_frames -of csv=p=0` output: its first
/// non-empty line (MPEG-TS inputs print the stream once more, under its program).
pub fn parse_frame_count(out: &str) -> Option<u64> {
    out.lines()
        .map(|l| l.trim().trim_end_matches(','))
        .find(|l| !l.is_empty())?
        .parse()
        .ok()
}

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
            let mut c = Command::new("ffmpeg");
            c.args(["-hide_banner", "-nostdin", "-v", "error"]);
            if opts.realtime {
                c.arg("-re");
            }
            if opts.loop_input {
                c.args(["-stream_loop", "-1"]);
            }
            c.arg("-i").arg(file).arg("-an");
            if opts.reencode {
                c.args([
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
                ]);
            } else {
                c.args(["-c", "copy"]);
            }
            c.arg("-t")
                .arg(opts.max_seconds.to_string())
                .args(["-f", "mpegts"])
                .arg(&url);
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
    if reencode {
        c.args([
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
        ]);
    } else {
        c.args(["-c", "copy"]);
    }
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
        let (mut so, mut se) = (
            self.consumer.stdout.take().unwrap(),
            self.consumer.stderr.take().unwrap(),
        );
        let t_out = thread::spawn(move || {
            let mut b = Vec::new();
            let _ = so.read_to_end(&mut b);
            b
        });
        let t_err = thread::spawn(move || {
            let mut b = Vec::new();
            let _ = se.read_to_end(&mut b);
            b
        });
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
