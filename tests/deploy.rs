//! The deploy recipes run for real (issue 27):
//! - `deploy/slurm-array.sh` submitted with `sbatch --array=0-2` to a single-node Slurm that
//!   the test starts on this machine (Debian's slurm-wlm and munge: munged, slurmctld and
//!   slurmd in the foreground, configuration in a scratch folder, ports not Slurm's defaults,
//!   127.0.0.1 only) over a manifest of 3 inputs: every task completes, each input's outputs
//!   and done marker are there, and the JSONL is byte for byte a plain run's;
//! - `deploy/Containerfile` built with Debian's buildah (storage `vfs`, `--isolation chroot`)
//!   on a base image made locally (tools/container_base.sh: debootstrap, then `podman
//!   import`; no registry is reachable), then run: with `buildah run --isolation chroot`, as
//!   the image's user, matching the source tree's JSONL; and with `podman run`, in a test of
//!   its own that tools/test runs only with `--podman`: this sandbox refuses crun's setrlimit
//!   (deploy/README.md), and there the test fails with podman's own error.
//!
//! Both need tools/setup --for-tests (the Debian packages) and take minutes.

mod common;
use common::{servers::*, *};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

fn sh_out(cmd: &mut Command, timeout: Duration) -> Output {
    output_timeout(cmd, timeout)
}

/// Runs `cmd`; panics with its output unless it succeeds. Returns stdout.
fn sh(cmd: &mut Command, timeout: Duration) -> String {
    let shown = format!("{cmd:?}");
    let o = sh_out(cmd, timeout);
    assert!(
        o.status.success(),
        "{shown} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Fails the test, naming the package, when a tool is missing.
fn require_tools(tools: &[&str]) {
    for t in tools {
        let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(t).exists());
        assert!(found, "{t} is missing: run tools/setup --for-tests");
    }
}

/// Three short clips cut from different parts of vtest.avi.
fn three_clips(dir: &Path) -> Vec<PathBuf> {
    let src = vtest();
    ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let out = dir.join(format!("{name}.mp4"));
            let start = (i * 20).to_string();
            ffmpeg([
                "-ss".as_ref(),
                start.as_ref(),
                "-t".as_ref(),
                "2".as_ref(),
                "-i".as_ref(),
                src.as_os_str(),
                "-an".as_ref(),
                "-c:v".as_ref(),
                "libx264".as_ref(),
                "-preset".as_ref(),
                "ultrafast".as_ref(),
                out.as_os_str(),
            ]);
            out
        })
        .collect()
}

/// The JSONL a plain run of the test's binary writes for `input` (the script's `--batch 8`).
fn plain_jsonl(input: &Path, dir: &Path) -> Vec<u8> {
    let o = detect_in(dir, &[input], &["--outputs", "jsonl", "--batch", "8"]);
    assert!(o.status.success(), "plain run: {}", stderr(&o));
    let stem = input.file_stem().unwrap().to_string_lossy().into_owned();
    fs::read(dir.join(format!("out/{stem}.jsonl"))).unwrap()
}

// ------------------------------------------------------------------ Slurm

struct Slurm {
    conf: PathBuf,
    _daemons: Vec<Proc>,
}

fn slurm_conf(dir: &Path, node: &str) -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap();
    let total_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal in /proc/meminfo");
    let d = dir.display();
    let (ctld, slurmd) = (free_tcp_port(), free_tcp_port());
    format!(
        "ClusterName=vidinfer-test\n\
         SlurmctldHost={node}(127.0.0.1)\n\
         SlurmctldPort={ctld}\nSlurmdPort={slurmd}\n\
         SlurmUser=root\nSlurmdUser=root\n\
         AuthType=auth/munge\nAuthInfo=socket={d}/munge/sock\nCredType=cred/munge\n\
         StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
         SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
         ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
         JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
         SelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory\n\
         MpiDefault=none\nReturnToService=2\n\
         NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={}\n\
         PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP\n",
        total_kb / 1024 * 9 / 10
    )
}

impl Slurm {
    /// munged, slurmctld and slurmd on 127.0.0.1, configured in `dir`; returns once the node
    /// is idle.
    fn start(dir: &Path) -> Slurm {
        require_tools(&["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo"]);
        let node = sh(Command::new("hostname").arg("-s"), Duration::from_secs(5))
            .trim()
            .to_string();
        for d in ["munge", "state", "spool"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        let key: Vec<u8> = (0..1024).map(|i| (i * 7919 % 251) as u8).collect();
        let key_file = dir.join("munge/munge.key");
        fs::write(&key_file, key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
        let conf = dir.join("slurm.conf");
        fs::write(&conf, slurm_conf(dir, &node)).unwrap();
        let hint = "run tools/setup --for-tests";
        let mut munged = Command::new("/usr/sbin/munged");
        munged.arg("--foreground").arg("--force");
        for (flag, file) in [
            ("--key-file", "munge/munge.key"),
            ("--socket", "munge/sock"),
            ("--pid-file", "munge/pid"),
            ("--log-file", "munge/log"),
            ("--seed-file", "munge/seed"),
        ] {
            munged.arg(format!("{flag}={}", dir.join(file).display()));
        }
        let munged = daemon("munged", munged, 900, hint);
        let sock = dir.join("munge/sock");
        wait_until(Duration::from_secs(20), || sock.exists().then_some(()))
            .unwrap_or_else(|| panic!("munged did not create {}", sock.display()));
        let mut ctld = Command::new("/usr/sbin/slurmctld");
        ctld.arg("-D").arg("-f").arg(&conf);
        let ctld = daemon("slurmctld", ctld, 900, hint);
        let mut slurmd = Command::new("/usr/sbin/slurmd");
        slurmd.arg("-D").arg("-f").arg(&conf).args(["-N", &node]);
        let slurmd = daemon("slurmd", slurmd, 900, hint);
        let slurm = Slurm {
            conf,
            _daemons: vec![munged, ctld, slurmd],
        };
        let idle = wait_until(Duration::from_secs(60), || {
            let o = slurm.cmd("sinfo").args(["-h", "-o", "%T"]).output().ok()?;
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .eq("idle")
                .then_some(())
        });
        assert!(idle.is_some(), "the Slurm node never became idle");
        slurm
    }

    fn cmd(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Waits until the job has left the queue; returns `scontrol show job`'s lines for it.
    fn wait_job(&self, job: &str, timeout: Duration) -> String {
        let gone = wait_until(timeout, || {
            let o = self.cmd("squeue").args(["-h", "-j", job]).output().ok()?;
            (o.status.success() && o.stdout.is_empty()).then_some(())
        });
        let shown = sh(
            self.cmd("scontrol").args(["show", "job", job]),
            Duration::from_secs(20),
        );
        assert!(
            gone.is_some(),
            "job {job} still queued after {timeout:?}:\n{shown}"
        );
        shown
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn slurm_array_runs_the_deploy_script_over_three_inputs() {
    require_model(&[&vtest()]);
    let dir = scratch("slurm");
    let clips = three_clips(&dir);
    let manifest = dir.join("manifest.txt");
    let lines: Vec<String> = clips.iter().map(|c| c.display().to_string()).collect();
    fs::write(&manifest, lines.join("\n") + "\n").unwrap();
    // VIDINFER_HOME as the script expects a bundle: bin/vidinfer and models/ (the test's
    // binary and the source tree's models); ONNX Runtime is found from the working
    // directory, the source tree, where the job runs.
    let home = dir.join("home");
    fs::create_dir_all(home.join("bin")).unwrap();
    std::os::unix::fs::symlink(bin(), home.join("bin/vidinfer")).unwrap();
    std::os::unix::fs::symlink(root().join("models"), home.join("models")).unwrap();
    let out = dir.join("out");
    let slurm = Slurm::start(&dir.join("slurm"));
    let job = sh(
        slurm
            .cmd("sbatch")
            .args(["--parsable", "--array=0-2"])
            .arg(format!("--chdir={}", root().display()))
            .arg(format!("--output={}/task-%A_%a.log", dir.display()))
            .env("VIDINFER_HOME", &home)
            .arg(root().join("deploy/slurm-array.sh"))
            .arg(&manifest)
            .arg(&out),
        Duration::from_secs(30),
    )
    .trim()
    .to_string();
    let shown = slurm.wait_job(&job, Duration::from_secs(600));
    let logs: Vec<String> = (0..3)
        .map(|i| fs::read_to_string(dir.join(format!("task-{job}_{i}.log"))).unwrap_or_default())
        .collect();
    let states: Vec<&str> = shown
        .lines()
        .filter_map(|l| l.trim().strip_prefix("JobState="))
        .map(|s| s.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        states,
        ["COMPLETED"; 3],
        "every array task completes:\n{shown}\nlogs:\n{}",
        logs.join("\n---\n")
    );
    let plain = dir.join("plain");
    for c in &clips {
        let stem = c.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(out.join(format!("{stem}.done")).exists(), "{stem}.done");
        let jsonl = fs::read(out.join(format!("{stem}.jsonl"))).unwrap();
        assert_eq!(
            jsonl,
            plain_jsonl(c, &plain),
            "{stem}.jsonl from Slurm is a plain run's"
        );
    }
    // Each task took its own third of the manifest: one input each.
    for (i, log) in logs.iter().enumerate() {
        let processed = clips
            .iter()
            .filter(|c| log.contains(&*c.file_name().unwrap().to_string_lossy()))
            .count();
        assert_eq!(processed, 1, "task {i} processed one input:\n{log}");
    }
    assert_no_partials(&out);
}

// ------------------------------------------------------------------ the container image

/// buildah or podman with the test's own storage (vfs: no overlay mounts needed).
fn tool(name: &str, storage: &Path) -> Command {
    let mut c = Command::new(name);
    c.arg("--root")
        .arg(storage.join("root"))
        .arg("--runroot")
        .arg(storage.join("run"))
        .args(["--storage-driver", "vfs"]);
    c
}

const IMAGE: &str = "localhost/vidinfer-test:latest";

/// The bundle (tools/package on the test's binary) in `ctx/dist/`, the Containerfile's build
/// context, and the image built from it on the local base.
fn build_image(ctx: &Path, storage: &Path) {
    sh(
        Command::new(root().join("tools/package"))
            .arg("--no-install")
            .arg("--binary")
            .arg(bin())
            .arg("--out-dir")
            .arg(ctx.join("dist"))
            .current_dir(root()),
        Duration::from_secs(900),
    );
    let base = sh(
        Command::new(root().join("tools/container_base.sh"))
            .arg(storage.join("root"))
            .arg(storage.join("run")),
        Duration::from_secs(900),
    );
    let base = base.lines().last().expect("the base image's name").trim();
    sh(
        tool("buildah", storage)
            .args(["build", "--isolation", "chroot", "--layers=false"])
            .arg(format!("--build-arg=BASE={base}"))
            .arg("--file")
            .arg(root().join("deploy/Containerfile"))
            .arg("--ignorefile")
            .arg(root().join("deploy/Containerfile.dockerignore"))
            .args(["--tag", IMAGE])
            .arg(ctx),
        Duration::from_secs(900),
    );
}

/// `detect` on vtest.avi's first 100 frames inside the image, by `run` (a command line up to
/// the image's arguments), with samples/ at /data and `out` at /out.
fn detect_args() -> Vec<&'static str> {
    [
        "detect",
        "/data/vtest.avi",
        "--max-frames",
        "100",
        "--outputs",
        "jsonl",
        "--no-progress",
        "--out",
        "/out",
    ]
    .to_vec()
}

/// The image built in a scratch storage, and the source tree's JSONL it must reproduce. The
/// storage (1.2 GB with vfs) goes when the returned `TempDir` drops, even if the test fails;
/// the scratch folder, kept then, holds only the outputs.
struct Built {
    dir: Scratch,
    storage: PathBuf,
    expected: Vec<u8>,
    _big: tempfile::TempDir,
}

fn build_and_reference(name: &str) -> Built {
    require_model(&[&vtest()]);
    require_tools(&["buildah", "podman", "debootstrap"]);
    let dir = scratch(name);
    let big = tempfile::Builder::new()
        .prefix("vidinfer-container-storage-")
        .tempdir()
        .expect("create a storage dir");
    let (ctx, storage) = (big.path().join("ctx"), big.path().join("storage"));
    build_image(&ctx, &storage);
    let o = detect_in(
        &dir,
        &[&vtest()],
        &["--max-frames", "100", "--outputs", "jsonl"],
    );
    assert!(o.status.success(), "source-tree run: {}", stderr(&o));
    let expected = fs::read(dir.join("out/vtest.jsonl")).unwrap();
    Built {
        dir,
        storage,
        expected,
        _big: big,
    }
}

/// A folder the image's user (10001) can write.
fn writable(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = dir.join(name);
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    d
}

fn samples() -> PathBuf {
    vtest().parent().unwrap().to_path_buf()
}

#[test]
#[ignore = "needs tools/setup"]
fn containerfile_builds_and_runs_under_buildah() {
    let b = build_and_reference("container-buildah");
    // buildah run: a working container of the image, run with chroot isolation as the
    // image's user (USER 10001), the entrypoint's binary on PATH.
    let out = writable(&b.dir, "out-buildah");
    let ctr = sh(
        tool("buildah", &b.storage).args(["from", IMAGE]),
        Duration::from_secs(300),
    );
    let ctr = ctr.trim();
    let whoami = sh(
        tool("buildah", &b.storage).args(["run", "--isolation", "chroot", ctr, "--", "id", "-u"]),
        Duration::from_secs(60),
    );
    assert_eq!(whoami.trim(), "10001", "the image runs as its own user");
    sh(
        tool("buildah", &b.storage)
            .args(["run", "--isolation", "chroot"])
            .arg(format!("--volume={}:/data:ro", samples().display()))
            .arg(format!("--volume={}:/out", out.display()))
            .args([ctr, "--", "vidinfer"])
            .args(detect_args()),
        Duration::from_secs(300),
    );
    let got = fs::read(out.join("vtest.jsonl")).unwrap();
    assert!(got == b.expected, "the image's JSONL is the source tree's");
}

/// `podman run`, the image as a user would run it (entrypoint and all). Not run by tools/test
/// unless asked (`tools/test --podman`): this sandbox refuses crun's setrlimit, then its
/// cgroup layout (deploy/README.md has both errors verbatim). Where podman can run, it must
/// pass; here it fails with podman's own error.
#[test]
#[ignore = "needs tools/setup and a host that lets podman run containers (tools/test --podman)"]
fn containerfile_runs_under_podman() {
    let b = build_and_reference("container-podman");
    let out = writable(&b.dir, "out-podman");
    let o = sh_out(
        tool("podman", &b.storage)
            .args(["run", "--rm", "--network=none"])
            .arg(format!("--volume={}:/data:ro", samples().display()))
            .arg(format!("--volume={}:/out", out.display()))
            .arg(IMAGE)
            .args(detect_args()),
        Duration::from_secs(300),
    );
    assert!(
        o.status.success(),
        "podman run failed ({}); this machine refuses podman's runtime:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let got = fs::read(out.join("vtest.jsonl")).unwrap();
    assert!(got == b.expected, "podman's JSONL is the source tree's");
}
