//! `vidinfer.toml`: the settings `detect` and `bench` use when their flags do not say
//! (`vidinfer tune` writes it). Read from `--config FILE`, else `./vidinfer.toml` if there is
//! one. Flags win over the file, the file over the defaults; an unknown key is an error.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vidinfer::{
    infer::{EpChoice, Precision},
    output::write_atomic,
};

use super::ranges;

/// The file `detect` and `bench` read when `--config` is not given.
pub const DEFAULT_FILE: &str = "vidinfer.toml";

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Execution providers, as `--ep` takes them (`auto`, or a list in order of preference).
    #[serde(
        default,
        serialize_with = "ep_text",
        deserialize_with = "ep_parsed",
        skip_serializing_if = "Option::is_none"
    )]
    pub ep: Option<EpChoice>,
    pub precision: Option<Precision>,
    pub batch: Option<u32>,
    pub workers: Option<u32>,
    pub threads: Option<u32>,
    /// Inputs decoded side by side (`--streams`).
    pub streams: Option<u32>,
    /// The model; default: the one for the precision.
    pub model: Option<PathBuf>,
    /// What `vidinfer tune` measured for these settings (information only).
    pub tuned: Option<Tuned>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tuned {
    /// The CPU and its ISA extensions.
    pub cpu: String,
    /// The input the sweep ran on.
    pub input: String,
    /// End-to-end frames per second of these settings.
    pub fps: f64,
    /// Fraction of fp32's detections these settings agree with (same class, IoU >= 0.5, the
    /// smaller of both directions).
    pub agreement: f64,
    /// The second best setting and its fps.
    pub runner_up: String,
}

/// `ep` as `--ep` spells it: `auto`, or the providers comma separated.
pub fn ep_name(ep: &EpChoice) -> String {
    match ep {
        EpChoice::Auto => "auto".into(),
        EpChoice::Listed(l) => l.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
    }
}

fn ep_text<S: Serializer>(ep: &Option<EpChoice>, s: S) -> Result<S::Ok, S::Error> {
    match ep {
        Some(ep) => s.serialize_str(&ep_name(ep)),
        None => s.serialize_none(),
    }
}

fn ep_parsed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EpChoice>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

impl FileConfig {
    /// `explicit` (which must exist), else `./vidinfer.toml` if there is one, else nothing.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<(FileConfig, Option<PathBuf>)> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
            None => return Ok((FileConfig::default(), None)),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let cfg: FileConfig = toml::from_str(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))?;
        cfg.check()
            .with_context(|| format!("config file {}", path.display()))?;
        Ok((cfg, Some(path)))
    }

    /// The ranges the flags have (`ranges.rs`, the same bounds).
    fn check(&self) -> anyhow::Result<()> {
        let range = |name: &str, v: Option<u32>, r: std::ops::RangeInclusive<i64>| match v {
            Some(x) if !r.contains(&i64::from(x)) => {
                bail!("{name} = {x} is not in {}..={}", r.start(), r.end())
            }
            _ => Ok(()),
        };
        range("batch", self.batch, ranges::BATCH)?;
        range("workers", self.workers, ranges::WORKERS)?;
        range("streams", self.streams, ranges::STREAMS)?;
        range("threads", self.threads, ranges::THREADS)
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let body = toml::to_string_pretty(self)?;
        let text = format!(
            "# vidinfer settings: detect and bench use these when their flags do not say.\n{body}"
        );
        write_atomic(path, text.as_bytes())?;
        Ok(())
    }

    /// A one-line description for the log, e.g. "ep openvino, precision bf16, batch 1".
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        if let Some(e) = &self.ep {
            v.push(format!("ep {}", ep_name(e)));
        }
        if let Some(p) = self.precision {
            v.push(format!("precision {p}"));
        }
        for (name, val) in [
            ("batch", self.batch),
            ("workers", self.workers),
            ("threads", self.threads),
            ("streams", self.streams),
        ] {
            if let Some(x) = val {
                v.push(format!("{name} {x}"));
            }
        }
        if let Some(m) = &self.model {
            v.push(format!("model {}", m.display()));
        }
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_keys_and_bad_values() {
        let c = FileConfig {
            ep: Some(EpChoice::Listed(vec![vidinfer::infer::EpKind::OpenVino])),
            precision: Some(Precision::Bf16),
            batch: Some(1),
            workers: Some(2),
            threads: Some(1),
            streams: Some(2),
            model: None,
            tuned: Some(Tuned {
                cpu: "Xeon (AMX)".into(),
                input: "vtest.avi".into(),
                fps: 250.5,
                agreement: 0.99,
                runner_up: "cpu int8 2x1 batch 1: 150.0 fps".into(),
            }),
        };
        let text = toml::to_string_pretty(&c).unwrap();
        assert_eq!(toml::from_str::<FileConfig>(&text).unwrap(), c);
        assert!(toml::from_str::<FileConfig>("bacth = 4\n").is_err());
        assert!(toml::from_str::<FileConfig>("precision = \"fp8\"\n").is_err());
        let bad: FileConfig = toml::from_str("batch = 0\n").unwrap();
        assert!(bad.check().is_err());
        let bad_streams: FileConfig = toml::from_str("streams = 0\n").unwrap();
        assert!(bad_streams.check().is_err());
        let err = toml::from_str::<FileConfig>("ep = \"gpu\"\n").unwrap_err();
        assert!(
            err.to_string().contains("unknown execution provider 'gpu'"),
            "{err}"
        );
        let auto: FileConfig = toml::from_str("ep = \"auto\"\n").unwrap();
        assert_eq!(auto.ep, Some(EpChoice::Auto));
        assert!(toml::to_string(&auto).unwrap().contains("ep = \"auto\""));
    }
}
