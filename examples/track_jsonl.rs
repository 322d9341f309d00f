//! vidinfer's tracker and line counter over detections already made: the JSONL of
//! `vidinfer detect --conf 0.1` (or a file in the same form built from ground truth), fed frame
//! by frame through [`InputTracking`], exactly as `detect --track` feeds it. For comparing
//! trackers on the same detections (tools/compare's "Tracking and counting against peers") and
//! for MOT evaluation: the detector is left out, so the only difference is tracking.
//!
//! Only class `--class` (default 0, person) is tracked: vidinfer never matches a box to a track
//! of another class, so its tracks are the same as with every class. Prints one JSON object:
//! `tracks` (confirmed tracks), `counts` per line (`in`, `out`) and every crossing (line,
//! direction, frame, pts, track id).
//! `--mot FILE` also writes every detection on a confirmed track (low-score ones the tracker
//! matched included, as the peers report them) in MOTChallenge form:
//! `frame+1,id,x,y,w,h,score,-1,-1,-1`.
//!
//! usage: cargo run --release --example track_jsonl -- DETECTIONS.jsonl
//!            [--line NAME:X1,Y1,X2,Y2]... [--conf 0.5] [--lost-s 1] [--class 0] [--mot FILE]
//!            [--iou HIGH,LOW] [--hysteresis-px PX] [--no-recover] [--no-hand-over]
//! (the last four change vidinfer's defaults, for experiments: the IoU floors of the high and
//! low stages, the counter's band, the recovery stage and the counter's hand-over off)
use std::io::{BufRead, Write};

use serde_json::{json, Value};
use vidinfer::{
    postprocess::{BoxInFrame, Detection},
    track::{
        CountLine, InputTracking, LineCounterConfig, TrackerConfig, TrackingConfig, ZoneConfig,
    },
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    jsonl: String,
    lines: Vec<CountLine>,
    conf: f32,
    lost_s: f64,
    class: u32,
    mot: Option<String>,
    iou: Option<(f32, f32)>,
    hand_over: bool,
    recover: bool,
    hysteresis_px: Option<f32>,
}

fn parse_line(spec: &str) -> Res<CountLine> {
    let (name, xy) = spec.split_once(':').ok_or("--line is NAME:X1,Y1,X2,Y2")?;
    let v: Vec<f32> = xy.split(',').map(str::parse).collect::<Result<_, _>>()?;
    if v.len() != 4 {
        return Err("--line is NAME:X1,Y1,X2,Y2".into());
    }
    Ok(CountLine {
        name: name.to_string(),
        a: (v[0], v[1]),
        b: (v[2], v[3]),
    })
}

fn parse_args() -> Res<Args> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        jsonl: String::new(),
        lines: Vec::new(),
        conf: 0.5,
        lost_s: 1.0,
        class: 0,
        mot: None,
        iou: None,
        hand_over: true,
        recover: true,
        hysteresis_px: None,
    };
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--line" => a.lines.push(parse_line(&val()?)?),
            "--conf" => a.conf = val()?.parse()?,
            "--lost-s" => a.lost_s = val()?.parse()?,
            "--class" => a.class = val()?.parse()?,
            "--mot" => a.mot = Some(val()?),
            "--iou" => {
                let v = val()?;
                let (h, l) = v.split_once(',').ok_or("--iou HIGH,LOW")?;
                a.iou = Some((h.parse()?, l.parse()?));
            }
            "--no-hand-over" => a.hand_over = false,
            "--no-recover" => a.recover = false,
            "--hysteresis-px" => a.hysteresis_px = Some(val()?.parse()?),
            s if s.starts_with("--") => return Err(format!("unknown option {s}").into()),
            s => a.jsonl = s.to_string(),
        }
    }
    if a.jsonl.is_empty() {
        return Err("usage: track_jsonl DETECTIONS.jsonl [--line NAME:X1,Y1,X2,Y2]...".into());
    }
    Ok(a)
}

fn detection(d: &Value) -> Option<Detection> {
    let f = |k: &str| d[k].as_f64().map(|v| v as f32);
    Some(Detection {
        class_id: d["class_id"].as_u64()? as u32,
        score: f("score")?,
        box_in_frame: BoxInFrame {
            x1: f("x1")?,
            y1: f("y1")?,
            x2: f("x2")?,
            y2: f("y2")?,
        },
    })
}

/// The tracking settings the flags give (the library's defaults otherwise).
fn tracking_config(a: &Args) -> TrackingConfig {
    let mut tracker = TrackerConfig {
        lost_s: a.lost_s,
        recover: a.recover,
        ..TrackerConfig::for_conf(a.conf)
    };
    if let Some((high, low)) = a.iou {
        (tracker.match_iou_high, tracker.match_iou_low) = (high, low);
    }
    TrackingConfig {
        tracker,
        lines: a.lines.clone(),
        counter: LineCounterConfig {
            hand_over: a.hand_over,
            hand_over_s: a.lost_s,
            hysteresis_px: a
                .hysteresis_px
                .unwrap_or(LineCounterConfig::default().hysteresis_px),
            ..LineCounterConfig::default()
        },
        zones: ZoneConfig::default(),
    }
}

fn main() -> Res<()> {
    let a = parse_args()?;
    let cfg = tracking_config(&a);
    let low = cfg.tracker.low;
    // Every tracked box is written to the MOT file, low-score ones the tracker matched
    // included (as the peers' trackers report them), so the output threshold is `low`.
    let mut tracking = InputTracking::new(&cfg, low);
    let mut mot = match &a.mot {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let mut crossings = Vec::new();
    let reader = std::io::BufReader::new(std::fs::File::open(&a.jsonl)?);
    for line in reader.lines() {
        let v: Value = serde_json::from_str(&line?)?;
        if v.get("event").is_some() {
            continue;
        }
        let frame = v["frame"].as_u64().ok_or("a frame line without 'frame'")?;
        let pts = v["pts"].as_f64().unwrap_or(f64::NAN);
        let dets: Vec<Detection> = v["detections"]
            .as_array()
            .ok_or("a frame line without 'detections'")?
            .iter()
            .filter_map(detection)
            .filter(|d| d.score > low && d.class_id == a.class)
            .collect();
        let (out, tr) = tracking.frame(frame, pts, dets);
        if let Some(m) = mot.as_mut() {
            for (d, id) in out.iter().zip(&tr.ids) {
                let Some(id) = id else { continue };
                let b = d.box_in_frame;
                writeln!(
                    m,
                    "{},{id},{:.2},{:.2},{:.2},{:.2},{:.3},-1,-1,-1",
                    frame + 1,
                    b.x1,
                    b.y1,
                    b.x2 - b.x1,
                    b.y2 - b.y1,
                    d.score
                )?;
            }
        }
        crossings.extend(tr.crossings);
    }
    if let Some(mut m) = mot {
        m.flush()?;
    }
    let end = tracking.finish();
    let mut counts = serde_json::Map::new();
    for l in &a.lines {
        let c = end
            .counts
            .iter()
            .find(|c| c.line == l.name && c.class_id == a.class);
        let (i, o) = c.map_or((0, 0), |c| (c.inward, c.outward));
        counts.insert(l.name.clone(), json!({"in": i, "out": o}));
    }
    let out = json!({"tracks": end.tracks, "counts": counts, "crossings": crossings});
    println!("{out}");
    Ok(())
}
