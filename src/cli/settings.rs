//! The choices `detect`, `bench` and `tune` share, layered once, like ripgrep's low-level →
//! high-level arguments: each source (the flags, `vidinfer.toml`, the defaults) gives a
//! [`Layer`] of what it says; [`Settings::layered`] takes each choice from the first layer
//! that says it, so flags win over the file and the file over the defaults. The ranges are
//! checked where a value comes in (clap for the flags, [`FileConfig`]'s check for the file),
//! with the same bounds (`ranges.rs`); providers and precisions are typed throughout.

use std::path::{Path, PathBuf};

use vidinfer::infer::{find_installed, EpChoice, EpKind, Precision};

use super::{
    args::{BenchArgs, DetectArgs},
    config::FileConfig,
};

/// What one source says about the shared choices; an empty list (or `None`): it says
/// nothing. `detect`'s flags and the file give at most one value each, `bench`'s flags a
/// list to sweep. Workers and streams of 0 mean the provider's default.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Layer {
    pub ep: Vec<EpChoice>,
    pub precision: Vec<Precision>,
    pub batch: Vec<u32>,
    pub workers: Vec<u32>,
    pub threads: Vec<u32>,
    pub streams: Vec<u32>,
    pub model: Option<PathBuf>,
}

impl Layer {
    /// `detect`'s defaults: the CPU provider, fp32, batch 1, the provider's workers and
    /// streams, the cores shared out between the workers.
    pub fn detect_defaults() -> Layer {
        Layer {
            ep: vec![EpChoice::Listed(vec![EpKind::Cpu])],
            precision: vec![Precision::Fp32],
            batch: vec![1],
            workers: vec![0],
            threads: vec![0],
            streams: vec![0],
            model: None,
        }
    }

    /// `bench`'s defaults: `detect`'s, with batch sizes 1 to 16 swept.
    pub fn bench_defaults() -> Layer {
        Layer {
            batch: vec![1, 2, 4, 8, 16],
            ..Layer::detect_defaults()
        }
    }

    /// What `detect`'s flags say.
    pub fn of_detect(a: &DetectArgs) -> Layer {
        Layer {
            ep: a.ep.clone().into_iter().collect(),
            precision: a.precision.into_iter().collect(),
            batch: a.batch.into_iter().collect(),
            workers: a.workers.into_iter().collect(),
            threads: a.threads.into_iter().collect(),
            streams: a.streams.into_iter().collect(),
            model: a.engine.model.clone(),
        }
    }

    /// What `bench`'s flags say (each a list to sweep).
    pub fn of_bench(a: &BenchArgs) -> Layer {
        Layer {
            ep: a.ep.clone(),
            precision: a.precision.clone(),
            batch: a.batch.clone(),
            workers: a.workers.clone(),
            threads: a.threads.clone(),
            streams: a.streams.clone(),
            model: a.engine.model.clone(),
        }
    }

    /// What the settings file says.
    pub fn of_file(f: &FileConfig) -> Layer {
        Layer {
            ep: f.ep.clone().into_iter().collect(),
            precision: f.precision.into_iter().collect(),
            batch: f.batch.into_iter().collect(),
            workers: f.workers.into_iter().collect(),
            threads: f.threads.into_iter().collect(),
            streams: f.streams.into_iter().collect(),
            model: f.model.clone(),
        }
    }
}

/// The shared choices, each decided (flags, else the file, else the defaults). Lists: `bench`
/// sweeps them, `detect` has one of each ([`Settings::one`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub eps: Vec<EpChoice>,
    pub precisions: Vec<Precision>,
    pub batches: Vec<usize>,
    /// 0: the provider's default ([`EpChoice::default_workers`]).
    pub workers: Vec<usize>,
    /// ORT intra-op threads per worker (0: the cores shared out between the workers).
    pub threads: Vec<usize>,
    /// 0: the provider's default ([`EpChoice::default_streams`]).
    pub streams: Vec<usize>,
    /// The model named; `None`: each precision's own ([`default_model`]).
    pub model: Option<PathBuf>,
}

/// `detect`'s settings: one of each, the provider's defaults and the model resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    pub ep: EpChoice,
    pub precision: Precision,
    pub batch: usize,
    pub workers: usize,
    /// Whether `workers` was asked for (flag or file) rather than the provider's default.
    pub workers_asked: bool,
    pub threads: usize,
    pub streams: usize,
    pub model: PathBuf,
}

/// The first of `layers` that says something.
fn first<T: Clone>(layers: [&[T]; 3]) -> Vec<T> {
    layers
        .into_iter()
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_vec()
}

fn usizes(v: Vec<u32>) -> Vec<usize> {
    v.into_iter().map(|x| x as usize).collect()
}

impl Settings {
    /// Each choice from the first layer that says it: flags, then the file, then defaults.
    pub fn layered(flags: &Layer, file: &Layer, defaults: &Layer) -> Settings {
        let l = [flags, file, defaults];
        Settings {
            eps: first(l.map(|l| l.ep.as_slice())),
            precisions: first(l.map(|l| l.precision.as_slice())),
            batches: usizes(first(l.map(|l| l.batch.as_slice()))),
            workers: usizes(first(l.map(|l| l.workers.as_slice()))),
            threads: usizes(first(l.map(|l| l.threads.as_slice()))),
            streams: usizes(first(l.map(|l| l.streams.as_slice()))),
            model: l.iter().find_map(|l| l.model.clone()),
        }
    }

    /// The model a precision runs: the one named, else the precision's default.
    pub fn model_for(&self, precision: Precision) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(|| default_model(precision))
    }

    /// A precision a named provider cannot run is a usage error, said before anything loads
    /// (each provider × precision of a sweep).
    pub fn check_precisions(&self) -> anyhow::Result<()> {
        let isa = vidinfer::sys::CpuIsa::detect();
        for ep in &self.eps {
            if let EpChoice::Listed(l) = ep {
                if let [ep] = l.as_slice() {
                    for p in &self.precisions {
                        p.check(*ep, &isa)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The first value of each choice, with the provider's defaults resolved (`detect`).
    pub fn one(&self) -> Chosen {
        let ep = self.eps.first().cloned().unwrap_or(EpChoice::Auto);
        let precision = self.precisions.first().copied().unwrap_or_default();
        let or_default = |v: &[usize], default: usize| match v.first() {
            Some(&x) if x > 0 => x,
            _ => default,
        };
        Chosen {
            batch: or_default(&self.batches, 1),
            workers: or_default(&self.workers, ep.default_workers()),
            workers_asked: self.workers.first().is_some_and(|&w| w > 0),
            threads: self.threads.first().copied().unwrap_or(0),
            streams: or_default(&self.streams, ep.default_streams()),
            model: self.model_for(precision),
            ep,
            precision,
        }
    }
}

/// The default model for a precision (the quantised one for int8) here, else in vidinfer's
/// own folder (a bundle's, or the source tree's).
pub fn default_model(precision: Precision) -> PathBuf {
    let default = Path::new(match precision {
        Precision::Int8 => "models/ssd_mobilenet_v2_coco_int8.onnx",
        Precision::Fp32 | Precision::Bf16 => "models/ssd_mobilenet_v2_coco.onnx",
    });
    find_installed(default).unwrap_or_else(|| default.into())
}

/// The settings file's layer, said once when one is read that sets anything.
pub fn file_layer(config: Option<&Path>, quiet: bool) -> anyhow::Result<Layer> {
    let (file, path) = FileConfig::load(config)?;
    if let Some(p) = path.filter(|_| !quiet && !file.describe().is_empty()) {
        eprintln!(
            "settings from {}: {} (flags override them)",
            p.display(),
            file.describe()
        );
    }
    Ok(Layer::of_file(&file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_the_defaults() {
        let file = Layer {
            ep: vec![EpChoice::Auto],
            batch: vec![4],
            workers: vec![3],
            model: Some("file.onnx".into()),
            ..Layer::default()
        };
        let flags = Layer {
            batch: vec![1, 2],
            ..Layer::default()
        };
        let s = Settings::layered(&flags, &file, &Layer::bench_defaults());
        assert_eq!(s.eps, [EpChoice::Auto], "the file's ep = \"auto\" is kept");
        assert_eq!(s.batches, [1, 2]);
        assert_eq!(s.workers, [3]);
        assert_eq!(s.precisions, [Precision::Fp32]);
        assert_eq!(s.threads, [0]);
        assert_eq!(s.model_for(Precision::Int8), PathBuf::from("file.onnx"));
        let d = Settings::layered(
            &Layer::default(),
            &Layer::default(),
            &Layer::detect_defaults(),
        );
        let one = d.one();
        assert_eq!(one.ep, EpChoice::Listed(vec![EpKind::Cpu]));
        assert_eq!((one.batch, one.threads), (1, 0));
        assert_eq!(one.workers, one.ep.default_workers());
        assert_eq!(one.streams, one.ep.default_streams());
        assert!(!one.workers_asked);
    }
}
