//! What the user can do about a library error: the flags (and setup steps) that fix it. The
//! library says what is wrong in its own terms and names no flag; this maps its error
//! variants to the command line's words, printed after the error.

use vidinfer::{
    error::{PrecisionError, SignatureError},
    Error,
};

/// The hint for a provider that could not be registered ("" when there is nothing to do).
pub fn ep_hint(ep: &str) -> &'static str {
    match ep {
        "cuda" | "tensorrt" => {
            "needs an NVIDIA GPU and driver, and the onnxruntime-gpu build with its CUDA libraries: `tools/setup --ep gpu`, or --ort-lib"
        }
        "openvino" => "needs the onnxruntime-openvino build: `tools/setup --ep openvino`, or --ort-lib",
        _ => "",
    }
}

/// The hints for one library error, one per line.
fn for_error(e: &Error) -> Vec<String> {
    match e {
        Error::ModelNotFound(_) => vec!["run tools/setup to build it, or pass --model".into()],
        Error::OrtLibrary { .. } => {
            vec!["run tools/setup, or pass --ort-lib / set ORT_DYLIB_PATH".into()]
        }
        Error::BatchTooLarge { .. } => vec!["use a smaller --batch".into()],
        Error::OutputOverInput(_) => {
            vec!["write the outputs elsewhere with --out, or name them with --name".into()]
        }
        Error::ExecutionProvider { tried, .. } => tried
            .iter()
            .filter(|f| !ep_hint(f.ep).is_empty())
            .map(|f| format!("{} {}", f.ep, ep_hint(f.ep)))
            .collect(),
        _ => Vec::new(),
    }
}

fn for_precision(e: &PrecisionError) -> &'static str {
    match e {
        PrecisionError::Bf16Emulated { .. } => "use --precision fp32 or int8",
        PrecisionError::Bf16NeedsOpenVino { .. } => {
            "use --ep openvino (tools/setup --ep openvino fetches it)"
        }
        PrecisionError::Int8NeedsQuantisedModel => {
            "--precision int8 runs a quantised model: pass one with --model, or use --precision fp32"
        }
        PrecisionError::Bf16OfInt8Model => {
            "use --precision int8 with this model, or --model an fp32 one for --precision bf16"
        }
    }
}

/// The hints for one error of a chain.
fn for_cause(c: &(dyn std::error::Error + 'static)) -> Vec<String> {
    if let Some(e) = c.downcast_ref::<Error>() {
        for_error(e)
    } else if let Some(e) = c.downcast_ref::<PrecisionError>() {
        vec![for_precision(e).into()]
    } else if let Some(SignatureError::NotLayout { .. }) =
        c.downcast_ref::<Box<SignatureError>>().map(|b| &**b)
    {
        vec!["--model-format forces a layout; without it the layout is recognised".into()]
    } else {
        Vec::new()
    }
}

/// The hints for `e` and its causes, each on its own line after the error (or "").
pub fn hints(e: &anyhow::Error) -> String {
    e.chain()
        .flat_map(for_cause)
        .map(|h| format!("\nhint: {h}"))
        .collect()
}
