//! Calibration tensors for post-training quantisation (tools/quantize), made by vidinfer's own
//! decoding and preprocessing kernel, so calibration sees exactly what inference sees.
//!
//! For each input (video or image), `--per-input N` frames spread evenly over it (frame
//! `floor((k + 0.5) * frames / N)` for k in 0..N; an image is its one frame) are decoded and
//! run through the kernel the pipeline uses (`FramePreprocessor`, fused by default) with the
//! model's own preprocessing (read from the model as `detect` reads it). Written:
//!   OUT/calib.npy   the model inputs, one per frame, as the model takes them
//!                   ([N,3,H,W] or [N,H,W,3], float32 or uint8)
//!   OUT/calib.json  the frames used: input, index, pts; the frame count of each input
//! Every frame not listed is a held-out frame: tools/quantize measures agreement on those.
//!
//! usage: cargo run --release --example calib_tensors -- --model M --out DIR
//!            [--per-input N] [--kernel fused|exact] INPUT...
use std::io::Write;
use std::path::{Path, PathBuf};

use vidinfer::{
    decode::{init_ffmpeg, DecodeOptions, Decoder},
    infer::{resolve_ort_lib, Detector, EpChoice, EpKind, Runtime, SessionConfig},
    preprocess::{frame::FramePreprocessor, DType, Kernel, Layout, PreprocessSpec, Tensor},
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    model: PathBuf,
    out: PathBuf,
    per_input: u64,
    kernel: Kernel,
    inputs: Vec<PathBuf>,
}

fn parse_args() -> Res<Args> {
    let mut it = std::env::args().skip(1);
    let (mut model, mut out, mut per_input, mut kernel) = (None, None, 30, Kernel::Fused);
    let mut inputs = Vec::new();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--model" => model = Some(PathBuf::from(val()?)),
            "--out" => out = Some(PathBuf::from(val()?)),
            "--per-input" => per_input = val()?.parse().map_err(|e| format!("--per-input: {e}"))?,
            "--kernel" => kernel = val()?.parse()?,
            s if s.starts_with("--") => return Err(format!("unknown flag {s}").into()),
            _ => inputs.push(PathBuf::from(a)),
        }
    }
    if per_input == 0 || inputs.is_empty() {
        return Err("usage: calib_tensors --model M --out DIR [--per-input N>0] [--kernel fused|exact] INPUT...".into());
    }
    Ok(Args {
        model: model.ok_or("--model is required")?,
        out: out.ok_or("--out is required")?,
        per_input,
        kernel,
        inputs,
    })
}

/// The model's preprocessing, as `detect` derives it (metadata, else recognised defaults).
fn model_spec(model: &Path) -> Res<PreprocessSpec> {
    let eps = EpChoice::Listed(vec![EpKind::Cpu]);
    let rt = Runtime::load(&resolve_ort_lib(None, &eps))?;
    let det = Detector::load(&rt, model, &SessionConfig::default())?;
    Ok(*det.spec())
}

/// How many frames `path` has: the container's count when it states one, else counted.
fn frame_count(path: &Path) -> Res<u64> {
    let mut dec = Decoder::open(path, &DecodeOptions::default())?;
    if let Some(n) = dec.info().frames_hint.filter(|&n| n > 0) {
        return Ok(n);
    }
    let mut n = 0;
    while dec.next_frame()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// `n` frame indices spread evenly over `total` frames (all of them when `total <= n`).
fn spread(total: u64, n: u64) -> Vec<u64> {
    if total <= n {
        return (0..total).collect();
    }
    (0..n).map(|k| (2 * k + 1) * total / (2 * n)).collect()
}

struct Picked {
    index: u64,
    pts: f64,
}

/// Writes the chosen frames of `path` into `tensor` (growing it), returns what was taken.
fn take_frames(
    path: &Path,
    want: &[u64],
    kernel: &mut FramePreprocessor,
    spec: &PreprocessSpec,
    tensor: &mut Tensor,
) -> Res<Vec<Picked>> {
    let mut dec = Decoder::open(path, &DecodeOptions::default())?;
    let mut picked = Vec::new();
    let slot = spec.slot_len();
    while picked.len() < want.len() {
        let Some(f) = dec.next_frame()? else { break };
        if want.binary_search(&f.index).is_err() {
            continue;
        }
        let at = tensor.len();
        tensor.grow_to(at + slot);
        kernel.write(&f.picture, tensor.slot(at..at + slot))?;
        picked.push(Picked {
            index: f.index,
            pts: f.pts_seconds,
        });
    }
    Ok(picked)
}

/// A version 1.0 .npy file: header, then the values little-endian in C order.
fn write_npy(path: &Path, tensor: &Tensor, shape: &[usize]) -> Res<()> {
    let (descr, bytes): (&str, Vec<u8>) = match tensor {
        Tensor::F32(v) => ("<f4", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Tensor::U8(v) => ("|u1", v.clone()),
    };
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(&bytes)?;
    f.flush()?;
    Ok(())
}

fn main() -> Res<()> {
    let args = parse_args()?;
    init_ffmpeg(false);
    let spec = model_spec(&args.model)?;
    let mut kernel = FramePreprocessor::new(args.kernel, spec);
    let mut tensor = Tensor::new(spec.dtype);
    let mut inputs = Vec::new();
    let mut n = 0;
    for path in &args.inputs {
        let total = frame_count(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let want = spread(total, args.per_input);
        let picked = take_frames(path, &want, &mut kernel, &spec, &mut tensor)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        n += picked.len();
        let frames: Vec<_> = picked
            .iter()
            .map(|p| serde_json::json!({"index": p.index, "pts": p.pts}))
            .collect();
        inputs.push(serde_json::json!({
            "input": path, "frames_total": total, "calibration": frames,
        }));
    }
    let (h, w) = (spec.height as usize, spec.width as usize);
    let shape = match spec.layout {
        Layout::Nchw => [n, 3, h, w],
        Layout::Nhwc => [n, h, w, 3],
    };
    std::fs::create_dir_all(&args.out)?;
    write_npy(&args.out.join("calib.npy"), &tensor, &shape)?;
    let manifest = serde_json::json!({
        "model": args.model,
        "kernel": format!("{:?}", args.kernel).to_lowercase(),
        "dtype": if spec.dtype == DType::U8 { "uint8" } else { "float32" },
        "shape": shape,
        "per_input": args.per_input,
        "inputs": inputs,
    });
    std::fs::write(
        args.out.join("calib.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    println!(
        "{n} calibration tensors {shape:?} -> {}",
        args.out.display()
    );
    Ok(())
}
