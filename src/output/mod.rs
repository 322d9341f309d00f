//! Output bookkeeping: what each input's outputs are called, how they are written (through a
//! temporary name, then renamed: [`atomic`]) and the `<stem>.done` marker that says an
//! input's outputs are complete ([`done`]).

pub mod atomic;
pub mod done;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

pub use atomic::{write_atomic, PartialFile, PartialWriter};
pub use done::DoneMarker;

/// Output file stems for a list of inputs: the file stem, with `-2`, `-3`, ... for repeats,
/// so `a/x.mp4` and `b/x.mp4` do not overwrite each other. Computed over the whole (sorted)
/// manifest, the stems are the same in every shard. One pass over the list.
pub fn output_stems(all: &[PathBuf]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(all.len());
    all.iter()
        .enumerate()
        .map(|(i, p)| {
            let stem = file_stem(p).unwrap_or_else(|| format!("input{i}"));
            let n = seen.entry(stem.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                stem
            } else {
                format!("{stem}-{n}")
            }
        })
        .collect()
}

fn file_stem(p: &Path) -> Option<String> {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_unique() {
        let all: Vec<PathBuf> = ["a/x.mp4", "b/x.mp4", "c/y.avi", "x.mkv"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(output_stems(&all), vec!["x", "x-2", "y", "x-3"]);
    }
}
