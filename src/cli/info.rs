//! `vidinfer info MODEL`: the first command to run with a new model. It loads the model once
//! per execution provider of the ONNX Runtime build and says what vidinfer sees: the output
//! layout, the input, the batch dimension, the classes and labels, the preprocessing with
//! where each value comes from, and which providers can run it; for an int8 model, how fast
//! each provider runs it against its fp32 original (measured, so a slower int8 is said).

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use vidinfer::{
    bench,
    error::chain,
    infer::{
        resolve_ort_lib, yolo::UltralyticsMeta, Detector, EpChoice, EpKind, Outputs, Precision,
        Runtime, SessionConfig, Signature,
    },
    labels::Labels,
    preprocess::{DType, Layout},
};

use super::{args::InfoArgs, settings::default_model};

pub fn info(a: InfoArgs) -> anyhow::Result<ExitCode> {
    let model = a
        .model
        .clone()
        .unwrap_or_else(|| default_model(Precision::Fp32));
    let lib = resolve_ort_lib(a.ort_lib.as_deref(), &EpChoice::Auto);
    let rt = Runtime::load(&lib)?;
    let ri = rt.info();
    let session = |ep: EpKind| SessionConfig {
        eps: EpChoice::Listed(vec![ep]),
        intra_threads: 1,
        format: a.model_format.forced(),
        ..SessionConfig::default()
    };
    // The CPU provider is in every build: if it cannot load the model, nothing can.
    let det = Detector::load(&rt, &model, &session(EpKind::Cpu))?;
    let sig = det.signature();
    println!("model: {}", model.display());
    print_layout(sig, a.model_format.forced().is_some());
    print_labels(&a, &model, sig);
    print_preprocessing(sig);
    println!(
        "ONNX Runtime {} ({})",
        ri.version.as_deref().unwrap_or("unknown version"),
        ri.library.display()
    );
    for ep in EpKind::all() {
        if !ri.providers.contains(&ep) {
            println!("  {ep}: not in this build");
            continue;
        }
        match Detector::load(&rt, &model, &session(ep)) {
            Ok(_) => println!("  {ep}: runs it"),
            Err(e) => println!("  {ep}: cannot run it: {}", chain(&e)),
        }
    }
    if sig.precision == Precision::Int8 {
        print_int8_speed(&rt, &model, sig, &ri.providers);
    }
    Ok(ExitCode::SUCCESS)
}

/// The fp32 model an int8 one was quantised from: its `quantized_from` metadata, beside it
/// (tools/quantize writes both into one folder); for the shipped int8 model without it, the
/// shipped fp32 model.
fn fp32_original(model: &Path, sig: &Signature) -> Option<PathBuf> {
    let named = sig
        .quantized_from
        .as_ref()
        .map(|name| model.with_file_name(name));
    let shipped = (model == default_model(Precision::Int8)).then(|| default_model(Precision::Fp32));
    named.or(shipped).filter(|p| p.is_file())
}

/// An int8 model's speed next to its fp32 original's on each provider of the build, measured
/// now (model only, batch 1), so a provider where int8 does not pay on this CPU says so.
fn print_int8_speed(rt: &Runtime, model: &Path, sig: &Signature, providers: &[EpKind]) {
    const CALLS: u64 = 40;
    let Some(fp32) = fp32_original(model, sig) else {
        println!("int8 speed: not measured (the fp32 original is not known: no quantized_from metadata, or the file is not beside the model)");
        return;
    };
    println!(
        "int8 speed against {} (model only, batch 1, {CALLS} calls each, measured now):",
        fp32.display()
    );
    let isa = vidinfer::sys::CpuIsa::detect();
    for &ep in providers {
        let session = |precision| SessionConfig {
            eps: EpChoice::Listed(vec![ep]),
            precision,
            batch: Some(1),
            ..SessionConfig::default()
        };
        let q = bench::model_only_fps(rt, model, &session(Precision::Int8), CALLS);
        let f = bench::model_only_fps(rt, &fp32, &session(Precision::Fp32), CALLS);
        match (q, f) {
            (Ok(q), Ok(f)) if q < f => println!(
                "  {ep}: int8 {q:.0} fps, fp32 {f:.0} fps: int8 is SLOWER than fp32 with this provider on this CPU ({}): run fp32 here, or int8 on another provider",
                isa.summary()
            ),
            (Ok(q), Ok(f)) => println!("  {ep}: int8 {q:.0} fps, fp32 {f:.0} fps ({:.2}x)", q / f),
            (Err(e), _) | (_, Err(e)) => println!("  {ep}: not measured: {}", chain(&e)),
        }
    }
}

fn print_layout(sig: &Signature, forced: bool) {
    let how = if forced { "forced" } else { "recognised" };
    println!("layout: {} ({how})", sig.outputs.format());
    match &sig.outputs {
        Outputs::Raw {
            boxes,
            scores,
            anchors,
            classes,
        } => println!(
            "  outputs: '{boxes}' [N,{anchors},4] boxes, '{scores}' [N,{anchors},{classes}] scores (column 0 background); vidinfer filters (score > --conf) and runs per-class NMS (--iou)"
        ),
        Outputs::DetectionOutput { name } => println!(
            "  outputs: '{name}' [N,1,K,7] rows (image_id, class_id = label id + 1, score, x1, y1, x2, y2); NMS done by the model, vidinfer keeps score > --conf"
        ),
        Outputs::TfOd {
            boxes,
            classes,
            scores,
            count,
        } => println!(
            "  outputs: '{boxes}' boxes, '{classes}' classes (label ids), '{scores}' scores, '{count}' count; NMS done by the model, vidinfer keeps score > --conf"
        ),
        Outputs::Yolo { name, classes } => println!(
            "  outputs: '{name}' [N,{},A] (cx, cy, w, h in input pixels, {classes} class scores); vidinfer takes each anchor's best class (score > --conf) and runs Ultralytics' NMS (--iou, per class unless --agnostic-nms)", 4 + classes
        ),
        Outputs::YoloV5 { name, classes } => println!(
            "  outputs: '{name}' [N,A,{}] (cx, cy, w, h, objectness, {classes} class scores); score = objectness x class score, then NMS (--iou)", 5 + classes
        ),
        Outputs::YoloEnd2End { name } => println!(
            "  outputs: '{name}' [N,K,6] rows (x1, y1, x2, y2 in input pixels, score, class); selected by the model (no NMS), vidinfer keeps score > --conf"
        ),
        Outputs::RtDetr { name, classes } => match classes {
            Some(c) => println!(
                "  outputs: '{name}' [N,Q,{}] queries (normalised cx, cy, w, h, {c} class scores); each query's best class, score > --conf, no NMS", 4 + c
            ),
            None => println!(
                "  outputs: '{name}' [N,K,6] rows (normalised cx, cy, w, h, score, class; top-k done by the model); score > --conf, no NMS"
            ),
        },
    }
    if let Some(m) = &sig.ultralytics {
        print_ultralytics(m);
    }
    let dtype = match sig.spec.dtype {
        DType::F32 => "float32",
        DType::U8 => "uint8",
    };
    let layout = match sig.spec.layout {
        Layout::Nchw => "NCHW",
        Layout::Nhwc => "NHWC",
    };
    println!(
        "input: '{}' {dtype} {:?} {layout}, {}x{} pixels",
        sig.input_name, sig.input_shape, sig.spec.width, sig.spec.height
    );
    match sig.fixed_batch {
        Some(n) => println!("batch: fixed at {n} (--batch runs {n} with a warning)"),
        None => println!("batch: dynamic (any --batch)"),
    }
}

/// What an Ultralytics export's metadata says, each value with its key.
fn print_ultralytics(m: &UltralyticsMeta) {
    let or_none = |v: Option<String>| v.unwrap_or_else(|| "not given".into());
    println!(
        "ultralytics metadata (model metadata): version {}, task {}, head {}",
        or_none(m.version.clone()),
        or_none(m.task.clone()),
        or_none(m.head.clone())
    );
    let names: Vec<String> = m.names.iter().map(|(i, n)| format!("{i}:{n}")).collect();
    println!("  names: {} ({})", m.names.len(), names.join(", "));
    println!(
        "  imgsz: {}, stride: {}, batch: {}{}",
        or_none(m.imgsz.map(|(h, w)| format!("{h}x{w} (HxW)"))),
        or_none(m.stride.map(|s| s.to_string())),
        or_none(m.batch.map(|b| b.to_string())),
        if m.end2end {
            ", end-to-end (NMS in the model)"
        } else {
            ""
        }
    );
}

fn print_labels(a: &InfoArgs, model: &Path, sig: &Signature) {
    if let Outputs::Raw { classes, .. } = &sig.outputs {
        println!("classes: {} (label ids 0..{})", classes - 1, classes - 2);
    }
    if let Some(c) = sig.model_classes() {
        println!("classes: {c} (label ids 0..{})", c.saturating_sub(1));
    }
    if a.labels.is_none() {
        if let Some(l) = sig
            .ultralytics
            .as_ref()
            .and_then(|m| Labels::from_names(&m.names))
        {
            println!("labels: {} names from the model's metadata", l.len());
            return;
        }
    }
    if let Some(path) = &a.labels {
        let checked = Labels::load(path).and_then(|l| match sig.model_classes() {
            Some(c) => l.check_count(c, path).map(|()| l),
            None => Ok(l),
        });
        match checked {
            Ok(l) => println!("labels: {} ({} names)", path.display(), l.len()),
            Err(e) => println!("labels: {}", chain(&e)),
        }
        return;
    }
    let path = a
        .labels
        .clone()
        .unwrap_or_else(|| model.with_file_name("coco_labels.txt"));
    match Labels::load(&path) {
        Ok(l) => println!("labels: {} ({} names)", path.display(), l.len()),
        Err(e) if a.labels.is_some() => println!("labels: {}", chain(&e)),
        Err(_) => println!(
            "labels: none at {} (classes named class_<id>)",
            path.display()
        ),
    }
}

fn print_preprocessing(sig: &Signature) {
    let (sp, src) = (&sig.spec, &sig.sources);
    println!("preprocessing:");
    println!(
        "  size {}x{}, {:?}, {:?} (model input)",
        sp.width, sp.height, sp.layout, sp.dtype
    );
    println!("  resize {:?} ({})", sp.mode, src.resize);
    if sp.dtype == DType::U8 {
        println!("  pixels as 8-bit values (mean and scale do not apply to uint8 inputs)");
    } else {
        println!("  mean {:?} ({})", sp.mean, src.mean);
        println!("  scale {} ({})", sp.scale, src.scale);
    }
    let order = if sp.swap_rb { "rgb" } else { "bgr" };
    println!("  channel order {order} ({})", src.channel_order);
    println!("  kernel: fused (default) or exact (--preprocess)");
}
