//! Which inputs this process runs: quoted globs expanded, `--inputs-from` manifests read,
//! and this shard's share of the list.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use vidinfer::{decode::source::SourceKind, manifest::parse_manifest};

/// Expands glob patterns and `--inputs-from`. Plain paths are kept as given (a missing one is
/// reported per input later, so the other inputs still run).
pub fn collect_inputs(args: &[PathBuf], from: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    let mut raw: Vec<PathBuf> = args.to_vec();
    if let Some(list) = from {
        let text = std::fs::read(list)
            .with_context(|| format!("cannot read --inputs-from {}", list.display()))?;
        // A relative path that does not exist here is taken relative to the manifest.
        let base = list.parent().unwrap_or(Path::new(""));
        for p in parse_manifest(&text) {
            let file = SourceKind::of(&p) == SourceKind::File;
            raw.push(if file && p.is_relative() && !p.exists() {
                base.join(p)
            } else {
                p
            });
        }
    }
    let mut out = Vec::new();
    for p in raw {
        let s = p.to_string_lossy();
        let file = SourceKind::of(&p) == SourceKind::File;
        if file && !p.exists() && s.contains(['*', '?', '[']) {
            let mut matches: Vec<PathBuf> = glob::glob(&s)
                .with_context(|| format!("bad glob pattern '{s}'"))?
                .flatten()
                .filter(|m| m.is_file())
                .collect();
            if matches.is_empty() {
                bail!("no file matches '{s}'");
            }
            matches.sort();
            out.extend(matches);
        } else {
            out.push(p);
        }
    }
    if out.is_empty() {
        bail!("no inputs given");
    }
    Ok(out)
}

/// Resolves --shard-index/--shard-count, defaulting from the batch schedulers' variables.
pub fn shard(index: Option<usize>, count: Option<u64>) -> anyhow::Result<(usize, usize)> {
    let count = count.map(|c| c as usize);
    let env = |k: &str| -> anyhow::Result<Option<usize>> {
        match std::env::var(k) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(
                v.trim()
                    .parse()
                    .with_context(|| format!("{k}={v} is not a number"))?,
            )),
            _ => Ok(None),
        }
    };
    let (index, count) = match (index, count) {
        (Some(i), c) => (i, c.or(env("SLURM_ARRAY_TASK_COUNT")?).unwrap_or(1)),
        (None, c) => {
            if let Some(i) = env("JOB_COMPLETION_INDEX")? {
                (i, c.unwrap_or(1))
            } else if let Some(i) = env("SLURM_ARRAY_TASK_ID")? {
                let min = env("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                (
                    i.saturating_sub(min),
                    c.or(env("SLURM_ARRAY_TASK_COUNT")?).unwrap_or(1),
                )
            } else {
                (0, c.unwrap_or(1))
            }
        }
    };
    if count == 0 || index >= count {
        bail!("shard index {index} is not below shard count {count}");
    }
    Ok((index, count))
}
