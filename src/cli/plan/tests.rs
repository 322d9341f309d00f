use clap::Parser as _;

use super::*;
use crate::cli::args::{Cli, Command};

fn bench_plan(toml: &str, flags: &[&str]) -> BenchPlan {
    let dir = std::env::temp_dir().join(format!("vidinfer-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join(format!("{}.toml", flags.len()));
    std::fs::write(&config, toml).unwrap();
    let mut argv = vec!["vidinfer", "bench", "in.mp4", "--config"];
    argv.push(config.to_str().unwrap());
    argv.extend(flags);
    let Some(Command::Bench(a)) = Cli::parse_from(argv).command else {
        unreachable!("bench parses as bench")
    };
    BenchPlan::new(a, true).unwrap()
}

#[test]
fn bench_takes_the_files_ep_auto_and_its_flags_win() {
    let plan = bench_plan("ep = \"auto\"\nbatch = 2\n", &[]);
    assert_eq!(plan.cfg.eps, [EpChoice::Auto]);
    assert_eq!(plan.cfg.batches, [2]);
    let flagged = bench_plan("ep = \"auto\"\n", &["--ep", "cpu,auto", "--batch", "1,4"]);
    assert_eq!(
        flagged.cfg.eps,
        [EpChoice::Listed(vec![EpKind::Cpu]), EpChoice::Auto]
    );
    assert_eq!(flagged.cfg.batches, [1, 4]);
}

fn detect_args(flags: &[&str]) -> DetectArgs {
    let argv = ["vidinfer", "detect", "in.mp4"].iter().chain(flags);
    let Some(Command::Detect(a)) = Cli::parse_from(argv).command else {
        unreachable!("detect parses as detect")
    };
    a
}

#[test]
fn the_done_fingerprint_is_the_settings_serialised() {
    let of = |flags: &[&str]| {
        let a = detect_args(flags);
        let c = Settings::layered(
            &Layer::of_detect(&a),
            &Layer::default(),
            &Layer::detect_defaults(),
        )
        .one();
        let labels = Labels::parse("0 person\n2 car\n").unwrap();
        let track = a
            .track
            .then(|| tracking(&a.tracking, a.engine.conf, &labels).unwrap());
        let text = fingerprint(&a, &c, track.as_ref());
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let plain = of(&[]);
    assert_eq!(plain["conf"], 0.5);
    assert_eq!(plain["precision"], "fp32");
    assert_eq!(plain["outputs"], serde_json::json!(["jsonl", "mp4"]));
    assert!(
        plain.get("tracking").is_none(),
        "no tracking, nothing about it"
    );
    assert_ne!(of(&["--conf", "0.4"]), plain);
    assert_eq!(
        of(&["--batch", "4", "--workers", "2"]),
        plain,
        "speed settings do not count"
    );
    let tracked = of(&["--track", "--count-line", "1,2,3,4,door"]);
    assert_eq!(tracked["tracking"]["lines"][0]["name"], "door");
    assert!(
        tracked["tracking"].get("zones").is_none(),
        "no zones, nothing about them"
    );
    let zoned = of(&["--track", "--zone", "hall:0,0;9,0;9,9;classes=car"]);
    let z = &zoned["tracking"]["zones"];
    assert_eq!(z["zones"][0]["name"], "hall");
    assert_eq!(z["zones"][0]["classes"], serde_json::json!([2]));
    assert_eq!(z["inertia_s"], 0.3);
    assert_ne!(
        of(&[
            "--track",
            "--zone",
            "hall:0,0;9,0;9,9",
            "--zone-inertia-s",
            "1"
        ]),
        zoned
    );
}
