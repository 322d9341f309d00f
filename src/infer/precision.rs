//! The arithmetic a session runs in. fp32 is the model as trained; bf16 runs the fp32 model
//! through OpenVINO with its bf16 inference-precision hint (native on CPUs with AVX-512 BF16 or
//! AMX); int8 runs a quantised model (weights and activations in 8 bits), on the CPU provider
//! where VNNI/AMX make it fast. A precision that cannot run as asked is an error naming why,
//! never a silent fp32 run.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use super::EpKind;
use crate::{
    error::{ParseError, PrecisionError},
    sys::CpuIsa,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
    Int8,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }

    /// The precision a model's weights are for, from its `precision` metadata (fp32 if absent).
    pub fn of_model(metadata: Option<&str>) -> Precision {
        match metadata.map(str::trim) {
            Some("int8") => Precision::Int8,
            Some("bf16") => Precision::Bf16,
            _ => Precision::Fp32,
        }
    }

    /// Whether `ep` on this CPU can run this precision; the reason if not.
    pub fn check(self, ep: EpKind, isa: &CpuIsa) -> Result<(), PrecisionError> {
        match (self, ep) {
            (Precision::Fp32 | Precision::Int8, _) => Ok(()),
            (Precision::Bf16, EpKind::OpenVino) if isa.bf16() => Ok(()),
            (Precision::Bf16, EpKind::OpenVino) => {
                Err(PrecisionError::Bf16Emulated { cpu: isa.summary() })
            }
            (Precision::Bf16, other) => Err(PrecisionError::Bf16NeedsOpenVino { ep: other.name() }),
        }
    }

    /// The precision a session runs, given what was asked and what the model's weights are
    /// (`model`, from [`Precision::of_model`]).
    pub(super) fn ran_with(self, model: Precision) -> Result<Precision, PrecisionError> {
        match (self, model) {
            (Precision::Int8 | Precision::Fp32, Precision::Int8) => Ok(Precision::Int8),
            (Precision::Int8, _) => Err(PrecisionError::Int8NeedsQuantisedModel),
            (Precision::Bf16, Precision::Int8) => Err(PrecisionError::Bf16OfInt8Model),
            (asked, _) => Ok(asked),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "f32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            "int8" | "i8" => Ok(Precision::Int8),
            other => Err(ParseError::Unknown {
                what: "precision",
                value: other.into(),
                expected: "fp32, bf16 or int8",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_needs_openvino_and_a_bf16_cpu() {
        let amx = CpuIsa {
            avx512_bf16: true,
            amx: true,
            ..CpuIsa::default()
        };
        let zen3 = CpuIsa {
            avx2: true,
            ..CpuIsa::default()
        };
        assert!(Precision::Bf16.check(EpKind::OpenVino, &amx).is_ok());
        assert_eq!(
            Precision::Bf16.check(EpKind::Cpu, &amx),
            Err(PrecisionError::Bf16NeedsOpenVino { ep: "cpu" })
        );
        assert!(matches!(
            Precision::Bf16.check(EpKind::OpenVino, &zen3),
            Err(PrecisionError::Bf16Emulated { .. })
        ));
        assert_eq!(
            Precision::Int8.ran_with(Precision::Fp32),
            Err(PrecisionError::Int8NeedsQuantisedModel)
        );
        assert_eq!(
            Precision::Fp32.ran_with(Precision::Int8),
            Ok(Precision::Int8)
        );
        assert!(Precision::Int8.check(EpKind::Cpu, &zen3).is_ok());
        assert_eq!(Precision::of_model(Some("int8")), Precision::Int8);
        assert_eq!(Precision::of_model(None), Precision::Fp32);
        assert_eq!("BF16".parse::<Precision>(), Ok(Precision::Bf16));
    }
}
