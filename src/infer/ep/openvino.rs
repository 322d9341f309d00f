//! OpenVINO execution provider (device type configurable: CPU, GPU, ...).
//!
//! With several inference workers the workers share one session compiled for as many
//! throughput streams (`PERFORMANCE_HINT` THROUGHPUT, `NUM_STREAMS`), and run it concurrently:
//! the workers are the requests in flight that fill the streams, as in OpenVINO's own
//! `benchmark_app -hint throughput`. With one worker: one stream, `LATENCY`. The inference
//! precision is set
//! explicitly (`INFERENCE_PRECISION_HINT`: `f32`, or `bf16` for `--precision bf16`), since
//! OpenVINO's own default on a bf16-capable CPU is bf16. The options go in `load_config`, a
//! JSON string keyed by device; ORT parses it when the session is created and fails on a key
//! OpenVINO does not know.
use ort::ep::{self, ArbitrarilyConfigurableExecutionProvider, ExecutionProviderDispatch};

use super::{super::Precision, EpOptions};

/// The `load_config` JSON for one session.
pub(crate) fn load_config(opts: &EpOptions) -> String {
    let hint = match opts.precision {
        Precision::Bf16 => "bf16",
        // int8 models carry their own arithmetic; the hint covers what they leave in float.
        Precision::Fp32 | Precision::Int8 => "f32",
    };
    let mut cfg = serde_json::Map::new();
    cfg.insert("INFERENCE_PRECISION_HINT".into(), hint.into());
    let (hint, streams) = match opts.streams {
        0 | 1 => ("LATENCY", 1),
        n => ("THROUGHPUT", n),
    };
    cfg.insert("PERFORMANCE_HINT".into(), hint.into());
    cfg.insert("NUM_STREAMS".into(), streams.to_string().into());
    if opts.intra_threads > 0 {
        cfg.insert(
            "INFERENCE_NUM_THREADS".into(),
            opts.intra_threads.to_string().into(),
        );
    }
    let mut root = serde_json::Map::new();
    root.insert(opts.openvino_device.clone(), cfg.into());
    serde_json::Value::Object(root).to_string()
}

pub(super) fn dispatch(opts: &EpOptions) -> ExecutionProviderDispatch {
    ep::OpenVINO::default()
        .with_device_type(opts.openvino_device.clone())
        .with_arbitrary_config("load_config", load_config(opts))
        .build()
        .error_on_failure()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_names_precision_hint_and_threads_per_device() {
        let opts = EpOptions {
            precision: Precision::Bf16,
            intra_threads: 1,
            ..EpOptions::default()
        };
        let v: serde_json::Value = serde_json::from_str(&load_config(&opts)).unwrap();
        assert_eq!(v["CPU"]["INFERENCE_PRECISION_HINT"], "bf16");
        assert_eq!(v["CPU"]["INFERENCE_NUM_THREADS"], "1");
        assert_eq!(v["CPU"]["PERFORMANCE_HINT"], "LATENCY");
        let f32 = load_config(&EpOptions::default());
        assert!(f32.contains(r#""INFERENCE_PRECISION_HINT":"f32""#), "{f32}");
        assert!(!f32.contains("INFERENCE_NUM_THREADS"));
        let shared = EpOptions {
            streams: 2,
            ..EpOptions::default()
        };
        let v: serde_json::Value = serde_json::from_str(&load_config(&shared)).unwrap();
        assert_eq!(v["CPU"]["PERFORMANCE_HINT"], "THROUGHPUT");
        assert_eq!(v["CPU"]["NUM_STREAMS"], "2");
    }
}
