//! What the user can do about a library error: the flags (and setup steps) that fix it. The
//! library says what is wrong in its own terms and names no flag; this maps its error
//! variants to the command line's words, printed after the error.

use vidinfer::Error;

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
        Error::ExecutionProvider { tried, .. } => tried
            .iter()
            .filter(|f| !ep_hint(f.ep).is_empty())
            .map(|f| format!("{} {}", f.ep, ep_hint(f.ep)))
            .collect(),
        _ => Vec::new(),
    }
}

/// The hints for `e` and its causes, each on its own line after the error (or "").
pub fn hints(e: &anyhow::Error) -> String {
    e.chain()
        .filter_map(|c| c.downcast_ref::<Error>())
        .flat_map(for_error)
        .map(|h| format!("\nhint: {h}"))
        .collect()
}
