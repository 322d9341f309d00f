//! Execution providers: one file each. [`EpKind`] is what the user names; [`EpOptions`]
//! carries the provider options; each provider module turns them into an ORT dispatch.

mod cpu;
mod cuda;
mod openvino;
mod tensorrt;

use std::{fmt, str::FromStr};

use ort::ep::ExecutionProviderDispatch;

use crate::error::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EpKind {
    Cpu,
    Cuda,
    TensorRt,
    OpenVino,
}

impl EpKind {
    pub fn name(self) -> &'static str {
        match self {
            EpKind::Cpu => "cpu",
            EpKind::Cuda => "cuda",
            EpKind::TensorRt => "tensorrt",
            EpKind::OpenVino => "openvino",
        }
    }

    pub fn all() -> [EpKind; 4] {
        [
            EpKind::Cpu,
            EpKind::Cuda,
            EpKind::TensorRt,
            EpKind::OpenVino,
        ]
    }

    /// True when the loaded ONNX Runtime build has this provider compiled in (it may still
    /// need a device or libraries to register).
    pub fn compiled_in(self) -> bool {
        use ort::ep::ExecutionProvider;
        match self {
            EpKind::Cpu => true,
            EpKind::Cuda => ort::ep::CUDA::is_available().unwrap_or(false),
            EpKind::TensorRt => ort::ep::TensorRT::is_available().unwrap_or(false),
            EpKind::OpenVino => ort::ep::OpenVINO::is_available().unwrap_or(false),
        }
    }

    /// The order `auto` tries: GPU providers, then OpenVINO, then CPU.
    pub fn auto_order() -> Vec<EpKind> {
        vec![
            EpKind::TensorRt,
            EpKind::Cuda,
            EpKind::OpenVino,
            EpKind::Cpu,
        ]
    }

    pub(crate) fn dispatch(self, opts: &EpOptions) -> ExecutionProviderDispatch {
        match self {
            EpKind::Cpu => cpu::dispatch(opts),
            EpKind::Cuda => cuda::dispatch(opts),
            EpKind::TensorRt => tensorrt::dispatch(opts),
            EpKind::OpenVino => openvino::dispatch(opts),
        }
    }
}

impl fmt::Display for EpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EpKind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(EpKind::Cpu),
            "cuda" => Ok(EpKind::Cuda),
            "tensorrt" | "trt" => Ok(EpKind::TensorRt),
            "openvino" | "ov" => Ok(EpKind::OpenVino),
            other => Err(ParseError::Unknown {
                what: "execution provider",
                value: other.into(),
                expected: "cpu, cuda, tensorrt, openvino or auto",
            }),
        }
    }
}

/// Which providers to try, in order, and whether falling through is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpChoice {
    /// Try GPU providers, then OpenVINO, then CPU; log what was chosen.
    Auto,
    /// The user's list, in order of preference. A single named provider that fails is an error.
    Listed(Vec<EpKind>),
}

impl EpChoice {
    /// Inference workers to run by default, one per core up to 4, for the CPU provider
    /// (several one-thread sessions side by side: on 2 cores, 2 one-thread sessions run SSD
    /// MobileNet about 1.2x faster than one two-thread session) and for OpenVINO named first
    /// (the workers share one session with a throughput stream each, see
    /// `Detector::load_workers`). GPU providers and `auto`: one session, which parallelises on
    /// its own.
    pub fn default_workers(&self) -> usize {
        match self {
            EpChoice::Listed(l)
                if !l.is_empty()
                    && (l.iter().all(|k| *k == EpKind::Cpu) || l[0] == EpKind::OpenVino) =>
            {
                crate::sys::cores().clamp(1, 4)
            }
            _ => 1,
        }
    }

    /// Inputs decoded side by side by default (`--streams`). Where the model runs on the CPU
    /// (cpu, openvino) it shares the cores with the decoders: one decoder thread delivers 1080p
    /// H.264 about twice as fast as one core runs SSD MobileNet, so a third of the cores
    /// decoding keeps the rest busy: one stream per 3 cores, 1 to 8 (1 on a small machine,
    /// where more streams cannot help while the model fills every core). A GPU provider (or
    /// `auto`, which prefers one) leaves the CPU to decoding: one stream per 2 cores, 1 to 16.
    pub fn default_streams(&self) -> usize {
        self.streams_for(crate::sys::cores())
    }

    fn streams_for(&self, cores: usize) -> usize {
        match self {
            EpChoice::Listed(l)
                if !l.is_empty()
                    && l.iter()
                        .all(|k| matches!(k, EpKind::Cpu | EpKind::OpenVino)) =>
            {
                (cores / 3).clamp(1, 8)
            }
            _ => (cores / 2).clamp(1, 16),
        }
    }
}

impl FromStr for EpChoice {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(EpChoice::Auto);
        }
        let list = s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(EpKind::from_str)
            .collect::<Result<Vec<_>, _>>()?;
        if list.is_empty() {
            return Err(ParseError::Empty("execution provider list"));
        }
        Ok(EpChoice::Listed(list))
    }
}

/// Provider options (the ones that matter for this workload).
#[derive(Debug, Clone)]
pub struct EpOptions {
    pub cuda_device: i32,
    /// cuDNN convolution algorithm search: "heuristic" (default), "exhaustive" or "default".
    pub cudnn_algo_search: String,
    pub trt_fp16: bool,
    pub trt_cache_dir: Option<String>,
    /// OpenVINO device type, e.g. "CPU", "GPU".
    pub openvino_device: String,
    pub intra_threads: usize,
    /// OpenVINO throughput streams (0 or 1: one stream, latency mode); set by
    /// [`Detector::load_workers`](super::Detector::load_workers) to the number of workers
    /// sharing the session.
    pub streams: usize,
    /// The arithmetic asked for (OpenVINO's inference-precision hint).
    pub precision: super::Precision,
}

impl Default for EpOptions {
    fn default() -> Self {
        EpOptions {
            cuda_device: 0,
            cudnn_algo_search: "heuristic".into(),
            trt_fp16: false,
            trt_cache_dir: None,
            openvino_device: "CPU".into(),
            intra_threads: 0,
            streams: 0,
            precision: super::Precision::Fp32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_streams_follow_the_cores_and_where_the_model_runs() {
        let cpu = EpChoice::Listed(vec![EpKind::Cpu]);
        let gpu = EpChoice::Listed(vec![EpKind::Cuda, EpKind::Cpu]);
        let counts = |c: &EpChoice| [2, 4, 16, 64].map(|n| c.streams_for(n));
        assert_eq!(counts(&cpu), [1, 1, 5, 8], "one per 3 cores, 1 to 8");
        assert_eq!(EpChoice::Listed(vec![EpKind::OpenVino]).streams_for(16), 5);
        assert_eq!(counts(&gpu), [1, 2, 8, 16], "one per 2 cores, 1 to 16");
        assert_eq!(EpChoice::Auto.streams_for(16), 8);
    }

    #[test]
    fn parses_choices() {
        assert_eq!("auto".parse::<EpChoice>().unwrap(), EpChoice::Auto);
        assert_eq!(
            "cuda, cpu".parse::<EpChoice>().unwrap(),
            EpChoice::Listed(vec![EpKind::Cuda, EpKind::Cpu])
        );
        assert_eq!(
            "TRT".parse::<EpChoice>().unwrap(),
            EpChoice::Listed(vec![EpKind::TensorRt])
        );
        assert!("gpu"
            .parse::<EpChoice>()
            .unwrap_err()
            .to_string()
            .contains("unknown execution provider 'gpu'"));
        assert!(",".parse::<EpChoice>().is_err());
    }
}
