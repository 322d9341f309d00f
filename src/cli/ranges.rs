//! The bounds of the numbers both the flags (`args.rs`, through clap) and `vidinfer.toml`
//! (`config.rs`) set: written once, checked where each value comes in.

use std::ops::RangeInclusive;

/// Frames per inference call.
pub const BATCH: RangeInclusive<i64> = 1..=1024;
/// Inference workers.
pub const WORKERS: RangeInclusive<i64> = 1..=64;
/// Inputs decoded side by side.
pub const STREAMS: RangeInclusive<i64> = 1..=64;
/// ORT intra-op threads per worker (0: the cores shared out).
pub const THREADS: RangeInclusive<i64> = 0..=256;
/// `bench`'s sweeps of workers and streams, where 0 is the provider's default.
pub const WORKERS_OR_DEFAULT: RangeInclusive<i64> = 0..=64;
pub const STREAMS_OR_DEFAULT: RangeInclusive<i64> = 0..=64;
