//! The release bundle (tools/package, issue 17). Built from this test's binary and unpacked
//! outside the source tree, it must
//! - name its own ONNX Runtime in `--version`, run with an empty environment from a working
//!   directory that is not the source tree, and write byte for byte the source tree's JSONL;
//! - load nothing from outside itself (ldd on the binary and on every library in lib/) but the
//!   C runtime every Debian base has: glibc, libgcc_s, libstdc++;
//! - run in a root that holds nothing but those three Debian packages (libc6, libgcc-s1,
//!   libstdc++6) and the bundle, as a user that is not root: what deploy/Containerfile assumes
//!   of debian:12-slim.
//!
//! The OpenVINO variant is checked the same way without its archive (`--no-archive`, to keep
//! the xz time out of CI): closure, and `--ep openvino` identical to the source tree's.

mod common;
use common::*;
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

/// glibc's libraries, libgcc_s and libstdc++: the packages libc6, libgcc-s1 and libstdc++6,
/// which apt (Priority: required) depends on, so every Debian base image has them.
const BASE: &[&str] = &[
    "linux-vdso.so.1",
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libresolv.so.2",
    "libutil.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
];
/// What the bundle leaves to the host on purpose (GPU variant only): the NVIDIA driver and
/// TensorRT.
const HOST: &[&str] = &["libcuda.so.1", "libnvinfer.so.10", "libnvonnxparser.so.10"];

fn sh(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs tools/package on the binary under test into `dist`; returns what it printed last (the
/// archive, or the folder with `--no-archive`). `--no-install`: the two tests here package at
/// the same time, so neither may install what is missing (apt's lock admits one); tools/setup
/// installed it before the tests started, and a missing tool fails the test, named.
fn package(dist: &Path, extra: &[&str]) -> PathBuf {
    let out = sh(Command::new(root().join("tools/package"))
        .arg("--no-install")
        .arg("--binary")
        .arg(bin())
        .arg("--out-dir")
        .arg(dist)
        .args(extra)
        .current_dir(root()));
    PathBuf::from(
        out.lines()
            .last()
            .expect("tools/package printed its result")
            .trim(),
    )
}

/// The source tree's run: the test's binary from the source tree, default library lookup.
fn source_run(dir: &Path, extra: &[&str]) -> Vec<u8> {
    let out = dir.join("out");
    let o = vidinfer()
        .current_dir(root())
        .arg("detect")
        .arg(vtest())
        .args(["--max-frames", "200", "--outputs", "jsonl", "--no-progress"])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run vidinfer");
    assert!(o.status.success(), "source-tree run: {}", stderr(&o));
    let jsonl = fs::read(out.join("vtest.jsonl")).unwrap();
    let lines = jsonl.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(lines, 200, "the source tree's run wrote one line per frame");
    jsonl
}

/// The bundle's run: `env -i PATH=/usr/bin:/bin` from `cwd`, outputs to `cwd/out`.
fn bundle_run(top: &Path, cwd: &Path, extra: &[&str]) -> Vec<u8> {
    sh(Command::new("env")
        .args(["-i", "PATH=/usr/bin:/bin"])
        .arg(top.join("bin/vidinfer"))
        .arg("detect")
        .arg(vtest())
        .args(["--max-frames", "200", "--outputs", "jsonl", "--no-progress"])
        .args(extra)
        .current_dir(cwd));
    fs::read(cwd.join("out/vtest.jsonl")).unwrap()
}

fn is_elf(p: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    fs::symlink_metadata(p).unwrap().is_file()
        && fs::File::open(p)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
        && magic == *b"\x7fELF"
}

fn elves(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            elves(&p, out);
        } else if is_elf(&p) {
            out.push(p);
        }
    }
}

/// ldd on bin/vidinfer and every ELF file under lib/: each library resolves inside `top`
/// or is one of [`BASE`]; none is missing but [`HOST`]'s (GPU variant). vidinfer loads
/// gpu/cuda/ itself before the GPU providers, so their walk gets it as LD_LIBRARY_PATH.
/// Returns the number of files checked.
fn check_closure(top: &Path) -> usize {
    let top = top.canonicalize().unwrap();
    let mut files = vec![top.join("bin/vidinfer")];
    elves(&top.join("lib"), &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let cuda = f
            .ancestors()
            .find(|a| a.file_name().is_some_and(|n| n == "gpu"))
            .map(|g| g.join("cuda"))
            .unwrap_or_default();
        let out = sh(Command::new("env")
            .arg("-i")
            .arg(format!("LD_LIBRARY_PATH={}", cuda.display()))
            .arg("ldd")
            .arg(f));
        for line in out.lines().map(str::trim) {
            let name = line.split_whitespace().next().unwrap_or_default();
            let Some((_, rest)) = line.split_once("=> ") else {
                // linux-vdso.so.1 (0x…) and /lib64/ld-linux-x86-64.so.2 (0x…)
                let base = Path::new(name).file_name().unwrap().to_str().unwrap();
                if !BASE.contains(&base) && !line.starts_with("statically linked") {
                    bad.push(format!("{}: {line}", f.display()));
                }
                continue;
            };
            if rest.starts_with("not found") {
                if !HOST.contains(&name) {
                    bad.push(format!("{}: {name} not found", f.display()));
                }
                continue;
            }
            let path = PathBuf::from(rest.split_whitespace().next().unwrap());
            let inside = path.canonicalize().unwrap().starts_with(&top);
            if !inside && !BASE.contains(&name) {
                bad.push(format!("{}: {name} => {}", f.display(), path.display()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "libraries resolved from outside the bundle (or missing):\n{}",
        bad.join("\n")
    );
    files.len()
}

/// `--version` from `/` with an empty environment, through `exe` (the binary or a link to it),
/// names the bundle's ONNX Runtime.
fn check_version(top: &Path, exe: &Path) {
    let v = sh(Command::new("env")
        .args(["-i", "PATH=/usr/bin:/bin"])
        .arg(exe)
        .arg("--version")
        .current_dir("/"));
    let ort = top
        .canonicalize()
        .unwrap()
        .join("lib/onnxruntime/libonnxruntime.so");
    assert!(
        v.contains(&format!("({}", ort.display())),
        "--version must name the bundled ONNX Runtime ({}):\n{v}",
        ort.display()
    );
}

/// The files of the Debian packages `pkgs` (as dpkg lists them) copied into `root`.
fn copy_packages(root: &Path, pkgs: &[&str]) {
    for pkg in pkgs {
        let list = sh(Command::new("dpkg").args(["-L", pkg]));
        for f in list.lines().map(Path::new) {
            let Ok(meta) = fs::symlink_metadata(f) else {
                continue;
            };
            // Directories, and links to directories (merged /usr's /lib), come as plain folders.
            let to = root.join(f.strip_prefix("/").unwrap());
            if f.is_dir() || fs::symlink_metadata(&to).is_ok() {
                continue;
            }
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            if meta.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(f).unwrap(), &to).unwrap();
            } else if meta.is_file() {
                fs::copy(f, &to).unwrap();
            }
        }
    }
}

/// Runs the bundle in a root with only libc6, libgcc-s1 and libstdc++6 in it, as uid 65534,
/// in a private mount namespace (fresh /proc, /sys read-only, /dev/null, the bundle at
/// /opt/vidinfer): returns its JSONL. Needs root (CI is); None, said loudly, otherwise.
fn slim_root_run(top: &Path, scratch_dir: &Path) -> Option<Vec<u8>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!(
            "bundle: SKIPPED the slim-root run (needs root for unshare/chroot; CI runs as root)"
        );
        return None;
    }
    let r = scratch_dir.join("root");
    for d in ["proc", "sys", "dev", "opt/vidinfer", "data", "out", "tmp"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::write(r.join("dev/null"), b"").unwrap();
    copy_packages(&r, &["libc6", "libgcc-s1", "libstdc++6"]);
    fs::copy(vtest(), r.join("data/vtest.avi")).unwrap();
    sh(Command::new("chmod")
        .args(["1777"])
        .arg(r.join("out"))
        .arg(r.join("tmp")));
    let script = r#"set -e
R="$1"; TOP="$2"
mount -t proc proc "$R/proc"
mount --bind /sys "$R/sys"; mount -o remount,bind,ro "$R/sys"
mount --bind /dev/null "$R/dev/null"
mount --bind "$TOP" "$R/opt/vidinfer"; mount -o remount,bind,ro "$R/opt/vidinfer"
CHROOT="$(PATH=/usr/sbin:/sbin:$PATH command -v chroot)"
exec env -i PATH=/usr/bin:/bin "$CHROOT" --userspec=65534:65534 "$R" /opt/vidinfer/bin/vidinfer \
    detect /data/vtest.avi --max-frames 200 --outputs jsonl --no-progress --out /out"#;
    sh(Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--fork",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&r)
        .arg(top));
    // The mounts lived in the namespace only: nothing may be left before the scratch goes.
    assert!(
        fs::read_dir(r.join("proc")).unwrap().next().is_none(),
        "a mount outlived its namespace under {}",
        r.display()
    );
    Some(fs::read(r.join("out/vtest.jsonl")).unwrap())
}

#[test]
#[ignore = "needs tools/setup"]
fn bundle_runs_self_contained_and_matches_the_source_tree() {
    require_model(&[&vtest()]);
    let dist = scratch("bundle-dist");
    let archive = package(&dist, &[]);
    let name = archive
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .strip_suffix(".tar.xz")
        .expect("tools/package made a .tar.xz")
        .to_string();
    assert!(name.ends_with("-linux-x86_64"), "{name}");

    // Unpacked elsewhere, away from the source tree and from the folder it was staged in.
    let unpacked = scratch("bundle-unpacked");
    sh(Command::new("tar")
        .arg("-xJf")
        .arg(&archive)
        .arg("-C")
        .arg(&*unpacked));
    let top = unpacked.join(&name);
    let tree = root().canonicalize().unwrap();
    assert!(!top.canonicalize().unwrap().starts_with(&tree));

    check_version(&top, &top.join("bin/vidinfer"));
    // A link to the binary (PATH install) still finds everything: $ORIGIN and the install
    // roots follow the link.
    let links = scratch("bundle-link");
    std::os::unix::fs::symlink(top.join("bin/vidinfer"), links.join("vidinfer")).unwrap();
    check_version(&top, &links.join("vidinfer"));

    let n = check_closure(&top);
    let libs = fs::read_dir(top.join("lib"))
        .unwrap()
        .flatten()
        .filter(|e| is_elf(&e.path()))
        .count();

    let src = scratch("bundle-source-run");
    let expected = source_run(&src, &[]);
    let cwd = scratch("bundle-cwd");
    let got = bundle_run(&top, &cwd, &[]);
    assert!(
        got == expected,
        "the bundle's JSONL differs from the source tree's ({} vs {} bytes)",
        got.len(),
        expected.len()
    );
    let slim = slim_root_run(&top, &unpacked);
    if let Some(slim) = &slim {
        assert!(
            *slim == expected,
            "the slim-root run's JSONL differs from the source tree's"
        );
    }
    let size = |p: &Path| {
        sh(Command::new("du").args(["-sb", "--apparent-size"]).arg(p))
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            / 1e6
    };
    println!(
        "bundle: {name}.tar.xz {:.1} MB, unpacked {:.1} MB, {libs} libraries in lib/; ldd clean on {n} files; \
         200 vtest frames byte-identical to the source tree ({} bytes) from {}{}",
        size(&archive),
        size(&top),
        expected.len(),
        cwd.display(),
        if slim.is_some() {
            ", and in a root with only libc6/libgcc-s1/libstdc++6"
        } else {
            ""
        }
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn openvino_bundle_is_self_contained_and_matches_the_source_tree() {
    let ov = root().join(".cache/onnxruntime/openvino/libonnxruntime.so");
    require_model(&[&vtest(), &ov]);
    let dist = scratch("bundle-ov-dist");
    let top = package(&dist, &["--with", "openvino", "--no-archive"]);
    assert!(top
        .join("lib/onnxruntime/openvino/libonnxruntime.so")
        .exists());
    let n = check_closure(&top);
    let expected = source_run(&scratch("bundle-ov-source-run"), &["--ep", "openvino"]);
    let cwd = scratch("bundle-ov-cwd");
    let got = bundle_run(&top, &cwd, &["--ep", "openvino"]);
    assert!(
        got == expected,
        "--ep openvino: the bundle's JSONL differs from the source tree's"
    );
    println!(
        "bundle (openvino): ldd clean on {n} files; --ep openvino byte-identical to the source tree"
    );
}
