//! Outputs that cannot be written: a clear error, and nothing left that looks complete.

mod common;
use common::*;
use std::{
    path::{Path, PathBuf},
    process::Command,
};

#[test]
#[ignore = "needs tools/setup"]
fn unwritable_output_is_a_clear_error() {
    require_model(&[]);
    let dir = scratch("unwritable");
    let clip = lavfi_clip(
        &dir,
        "c.mp4",
        "testsrc2=size=160x120:rate=10",
        4,
        &["-pix_fmt", "yuv420p"],
    );
    // A file where the output directory's parent should be: --out is <file>/out.
    let blocker = dir.join("file");
    std::fs::write(&blocker, "x").unwrap();
    let o = detect_in(&blocker, &[&clip], &[]);
    // Found before any input is decoded: a plan that cannot work, exit 2.
    expect_failure(&o, 2, "cannot write");
}

/// A 256 KiB tmpfs at `dir`, mounted as root or through `sudo -n`; unmounted when dropped.
struct TinyDisk(PathBuf, bool);

impl TinyDisk {
    fn mount(dir: &Path) -> TinyDisk {
        std::fs::create_dir_all(dir).unwrap();
        let mut errors = String::new();
        for sudo in [false, true] {
            let o = TinyDisk::command(sudo, "mount")
                .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
                .arg(dir)
                .output();
            match o {
                Ok(o) if o.status.success() => return TinyDisk(dir.into(), sudo),
                Ok(o) => errors.push_str(&String::from_utf8_lossy(&o.stderr)),
                Err(e) => errors.push_str(&format!("{e}\n")),
            }
        }
        panic!(
            "this test mounts a small tmpfs: it needs root or sudo without a password\n{errors}"
        );
    }

    fn command(sudo: bool, program: &str) -> Command {
        if sudo {
            let mut c = Command::new("sudo");
            c.args(["-n", program]);
            c
        } else {
            Command::new(program)
        }
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = TinyDisk::command(self.1, "umount").arg(&self.0).status();
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn full_disk_leaves_no_complete_looking_file() {
    require_model(&[&vtest()]);
    let dir = scratch("diskfull");
    let disk = TinyDisk::mount(&dir.join("out"));
    let o = detect_in(&dir, &[&vtest()], &["--max-frames", "200"]);
    let left = finished_outputs(&disk.0);
    drop(disk);
    expect_failure(&o, 1, "No space left on device");
    assert!(left.is_empty(), "nothing that looks complete: {left:?}");
}
