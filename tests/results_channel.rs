//! The results channel (`SinkConfig::results`): a caller receives every frame of every input
//! in order, each followed by its input's end, with no output file written.

mod common;
use common::*;
use std::sync::{atomic::AtomicBool, Arc};
use vidinfer::{
    pipeline,
    sink::{result_channel, ResultEvent, SinkKinds},
};

#[test]
#[ignore = "needs tools/setup"]
fn every_frame_reaches_the_caller_in_order_and_no_file_is_written() {
    require_model(&[&vtest()]);
    let out = scratch("results_channel");
    let missing = out.join("missing.mp4");
    let mut cfg = pipeline_config(vec![vtest(), missing.clone()], &out, 2);
    cfg.max_frames = Some(12);
    cfg.sinks.kinds = SinkKinds::default();
    let (tx, rx) = result_channel(2, true);
    cfg.sinks.results = Some(tx);
    let reader = std::thread::spawn(move || rx.iter().collect::<Vec<_>>());
    let report = pipeline::run(
        &cfg,
        vec![cpu_detector()],
        Arc::new(AtomicBool::new(false)),
        &pipeline::Quiet,
    )
    .expect("the run completes");
    drop(cfg);
    let events = reader
        .join()
        .expect("the reader ends when the run has sent everything");
    let mut frames = Vec::new();
    let mut ends = Vec::new();
    for e in &events {
        match e {
            ResultEvent::Frame(f) => {
                assert!(ends.is_empty(), "a frame after its input's end");
                let p = f.picture.as_ref().expect("pictures were asked for");
                assert_eq!((p.width, p.height), (f.width, f.height));
                assert_eq!(p.data.len(), 3 * (f.width * f.height) as usize);
                frames.push((f.input, f.index));
            }
            ResultEvent::InputEnded { input, error, .. } => ends.push((*input, error.clone())),
        }
    }
    assert_eq!(frames, (0..12).map(|i| (0, i)).collect::<Vec<_>>());
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[0], (0, None));
    let failure = ends[1].1.as_ref().expect("the missing input failed");
    assert!(failure.not_found && failure.message.contains("missing.mp4"));
    assert_eq!(report.inputs[0].frames, 12);
    let written: Vec<_> = std::fs::read_dir(&*out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(
        written.iter().all(|n| n.ends_with(".done")),
        "files written: {written:?}"
    );
}
