//! Process plumbing for the integration tests' servers and daemons: a child in its own
//! process group, killed with it on drop, by the kernel when the starting thread ends and by
//! a watchdog after its deadline (`Proc`); bounded waits; free ports on 127.0.0.1; whether a
//! process holds a socket. The servers themselves are in `servers.rs`.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read},
    net::{TcpListener, UdpSocket},
    os::unix::process::CommandExt,
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use super::servers::*;

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

    pub(super) fn log_text(&self) -> String {
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
    pub(super) fn wait_listening_line(&mut self, hint: &str) -> u16 {
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

/// A thread that reads `r` to its end (a child's stdout or stderr, so the child never blocks
/// on a full pipe) and returns what it read.
pub fn read_to_end_in_background(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut b = Vec::new();
        let _ = r.read_to_end(&mut b);
        b
    })
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
    let (so, se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (t_out, t_err) = (read_to_end_in_background(so), read_to_end_in_background(se));
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
