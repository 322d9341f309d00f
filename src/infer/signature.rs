//! What a loaded model looks like from outside: its input (shape, layout, batch dimension)
//! and its outputs, checked against the layouts vidinfer runs, plus the preprocessing it
//! wants (from its input shape and `preprocess.*` metadata, then the user's overrides).

use ort::session::Session;

use crate::preprocess::{parse_channel_order, parse_mean, Layout, PreprocessSpec, ResizeMode};

/// Preprocessing choices the user made on the command line; each one overrides what the model's
/// metadata says (keys `preprocess.resize`, `preprocess.mean`, `preprocess.scale`,
/// `preprocess.channel_order`), which in turn overrides the defaults (blobFromImage's).
#[derive(Debug, Clone, Default)]
pub struct PreprocessOverrides {
    pub mode: Option<ResizeMode>,
    pub mean: Option<[f32; 3]>,
    pub scale: Option<f32>,
    pub swap_rb: Option<bool>,
}

/// The checked interface of an SSD detector with raw outputs.
#[derive(Debug, Clone)]
pub(super) struct Signature {
    pub input_name: String,
    pub spec: PreprocessSpec,
    /// `Some(n)` when the model's batch dimension is fixed.
    pub fixed_batch: Option<usize>,
    pub anchors: usize,
    pub classes: usize,
}

fn dims(outlet: &ort::value::Outlet) -> Option<Vec<i64>> {
    outlet
        .dtype()
        .tensor_shape()
        .map(|s| s.iter().copied().collect())
}

/// Checks the session's input and outputs; the error says what was found.
pub(super) fn read_signature(
    session: &Session,
    overrides: &PreprocessOverrides,
) -> Result<Signature, String> {
    let [input] = session.inputs() else {
        return Err(format!(
            "expected exactly one input, found {}",
            session.inputs().len()
        ));
    };
    let input_name = input.name().to_string();
    let in_dims = dims(input).ok_or("the input is not a tensor")?;
    if input.dtype().tensor_type() != Some(ort::value::TensorElementType::Float32) {
        return Err(format!("input '{input_name}' must be float32"));
    }
    let batch_of = |n: i64| if n > 0 { Some(n as usize) } else { None };
    let (fixed_batch, h, w, layout) = match in_dims.as_slice() {
        [n, 3, h, w] if *h > 0 && *w > 0 => (batch_of(*n), *h as u32, *w as u32, Layout::Nchw),
        [n, h, w, 3] if *h > 0 && *w > 0 => (batch_of(*n), *h as u32, *w as u32, Layout::Nhwc),
        other => return Err(format!("input '{input_name}' has shape {other:?}; expected [N, 3, H, W] or [N, H, W, 3] with fixed H and W")),
    };
    let find = |name: &str| session.outputs().iter().find(|o| o.name() == name);
    let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let (Some(boxes), Some(scores)) = (find("boxes"), find("scores")) else {
        return Err(format!("outputs are {names:?}; expected 'boxes' [N, anchors, 4] and 'scores' [N, anchors, classes]"));
    };
    let (bd, sd) = (
        dims(boxes).unwrap_or_default(),
        dims(scores).unwrap_or_default(),
    );
    let (anchors, classes) = match (bd.as_slice(), sd.as_slice()) {
        ([_, a, 4], [_, a2, c]) if a == a2 && *a > 0 && *c > 1 => (*a as usize, *c as usize),
        _ => return Err(format!("output shapes boxes {bd:?} and scores {sd:?} do not fit [N, anchors, 4] and [N, anchors, classes]")),
    };
    let spec = preprocess_spec(session, w, h, layout, overrides)?;
    Ok(Signature {
        input_name,
        spec,
        fixed_batch,
        anchors,
        classes,
    })
}

/// The preprocessing the model wants: size and layout from its input, the rest from its
/// metadata, then the user's overrides.
fn preprocess_spec(
    session: &Session,
    w: u32,
    h: u32,
    layout: Layout,
    o: &PreprocessOverrides,
) -> Result<PreprocessSpec, String> {
    let meta = session.metadata().ok();
    let get = |k: &str| meta.as_ref().and_then(|m| m.custom(k));
    let mut spec = PreprocessSpec {
        width: w,
        height: h,
        layout,
        ..PreprocessSpec::default()
    };
    if let Some(v) = get("preprocess.resize") {
        spec.mode = v
            .parse()
            .map_err(|e| format!("metadata preprocess.resize: {e}"))?;
    }
    if let Some(v) = get("preprocess.mean") {
        spec.mean = parse_mean(&v).map_err(|e| format!("metadata preprocess.mean: {e}"))?;
    }
    if let Some(v) = get("preprocess.scale") {
        spec.scale = v
            .trim()
            .parse()
            .map_err(|_| format!("metadata preprocess.scale: '{v}' is not a number"))?;
    }
    if let Some(v) = get("preprocess.channel_order") {
        spec.swap_rb = parse_channel_order(&v)
            .map_err(|e| format!("metadata preprocess.channel_order: {e}"))?;
    }
    spec.mode = o.mode.unwrap_or(spec.mode);
    spec.mean = o.mean.unwrap_or(spec.mean);
    spec.scale = o.scale.unwrap_or(spec.scale);
    spec.swap_rb = o.swap_rb.unwrap_or(spec.swap_rb);
    Ok(spec)
}
