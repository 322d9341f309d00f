//! Sharding a manifest over several processes: every input exactly once, and a retried shard
//! skips what is done (unless the settings changed).

mod common;
use common::*;
use std::process::{Child, Command, Stdio};

/// The file names in a run's per-input summary lines ("<path>: N frames, ...").
fn processed_inputs(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(" frames, "))
        .map(|l| {
            l.split(':')
                .next()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .into()
        })
        .collect()
}

#[test]
#[ignore = "needs tools/setup"]
fn three_shards_process_nine_inputs_exactly_once_and_retries_skip_finished_ones() {
    require_model(&[]);
    let dir = scratch("shards");
    let mut manifest = String::new();
    for i in 0..9 {
        let clip = lavfi_clip(
            &dir,
            &format!("clip{i}.mp4"),
            &format!("testsrc2=size=96x64:rate={}", 5 + i),
            3 + i as u32,
            &["-pix_fmt", "yuv420p"],
        );
        manifest.push_str(&format!("{}\n", clip.display()));
    }
    let list = dir.join("manifest.txt");
    std::fs::write(&list, manifest).unwrap();
    let out = dir.join("out");
    let shards = [
        "--inputs-from",
        list.to_str().unwrap(),
        "--outputs",
        "jsonl",
        "--shard-count",
        "3",
    ];
    let spawn = |i: usize, env: bool| -> Child {
        let mut c = Command::new(bin());
        c.arg("detect").args(shards).arg("--model").arg(model());
        c.arg("--out").arg(&out);
        c.args(["--no-progress", "--threads", "1"]);
        if env {
            c.env("JOB_COMPLETION_INDEX", i.to_string());
        } else {
            c.args(["--shard-index", &i.to_string()]);
        }
        c.stderr(Stdio::piped()).spawn().unwrap()
    };
    // Shard 1 takes its index from the Kubernetes variable, the others from the flag.
    let children: Vec<_> = (0..3).map(|i| spawn(i, i == 1)).collect();
    let mut seen = std::collections::BTreeMap::new();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        let err = stderr(&o);
        assert!(o.status.success(), "shard {i}: {err}");
        for name in processed_inputs(&err) {
            *seen.entry(name).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), 9, "{seen:?}");
    assert!(
        seen.values().all(|&n| n == 1),
        "each input exactly once: {seen:?}"
    );
    for i in 0..9 {
        assert_eq!(read_jsonl(&out.join(format!("clip{i}.jsonl"))).len(), 3 + i);
        assert!(out.join(format!("clip{i}.done")).exists());
    }
    // A retried shard finds its inputs done and skips them.
    let o = spawn(0, false).wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success());
    assert_eq!(err.matches("already done").count(), 3, "{err}");
    assert!(err.contains("nothing to do"), "{err}");
    // Different settings are not "done": the outputs are redone.
    let o = detect_in(
        &dir,
        &[],
        &[&shards[..], &["--shard-index", "0", "--conf", "0.4"]].concat(),
    );
    let err = stderr(&o);
    assert!(
        o.status.success() && !err.contains("already done") && err.contains("3 of 3 inputs ok"),
        "{err}"
    );
}
