//! `--segment-s`: an input's outputs cut into segments of stream time, each finished on its
//! own (`<stem>-000001.jsonl`, ...).

use super::{OpenInput, SinkStage};
use crate::{
    error::Result,
    pipeline::config::PipelineConfig,
    sink::{open_sinks, SinkInput},
};

/// The sinks' input for a segment: `<stem>-<n:06>` (the stem itself without segments).
pub(super) fn segment_input(base: &SinkInput, segment: Option<(u32, f64)>) -> SinkInput {
    let mut si = base.clone();
    if let Some((n, _)) = segment {
        si.stem = format!("{}-{n:06}", base.stem);
    }
    si
}

impl SinkStage<'_> {
    /// Closes the segment a frame at `pts` no longer belongs to and opens the next.
    pub(super) fn next_segment(
        cfg: &PipelineConfig,
        open: &mut OpenInput<'_>,
        pts: f64,
    ) -> Result<()> {
        let (Some(len), Some((n, start))) = (cfg.segment, open.segment) else {
            return Ok(());
        };
        if pts < start + len.as_secs_f64() {
            return Ok(());
        }
        // Segments start on their nominal boundaries, however long the gap before the frame.
        let skipped = ((pts - start) / len.as_secs_f64()).floor();
        let next = (n + 1, start + skipped * len.as_secs_f64());
        for s in std::mem::take(&mut open.sinks) {
            open.report.outputs.extend(s.finish()?);
        }
        if let Some(snaps) = &mut open.snapshots {
            open.report.outputs.extend(snaps.commit()?);
        }
        open.segment = Some(next);
        let input = segment_input(&open.base, open.segment);
        open.sinks = open_sinks(&cfg.sinks, cfg.tracking.as_ref(), &input)?;
        Ok(())
    }
}
