//! An input's end: its outputs committed (renamed into place) and its done marker written,
//! or dropped (which removes the partial files).

use super::{outputs_error, OpenInput, SinkStage};
use crate::{
    error::Result,
    output::{DoneMarker, InputIdentity, OutputFile},
    pipeline::{item::InputEnd, report::InputReport},
};

impl SinkStage<'_> {
    /// Finishes an input's sinks (renaming its outputs into place) unless it failed, then
    /// writes its done marker if it also completed. Unfinished sinks are dropped, which
    /// removes their partial files.
    pub(super) fn commit(&self, open: OpenInput<'_>, end: &InputEnd) -> InputReport {
        let OpenInput {
            sinks,
            snapshots,
            mut report,
            identity,
            live,
            ..
        } = open;
        // A live source that failed leaves outputs complete up to where it stopped; any other
        // failure leaves nothing that looks complete.
        if report.error.is_some() || (end.error.is_some() && !live) {
            return report;
        }
        for s in sinks {
            match s.finish() {
                Ok(paths) => report.outputs.extend(paths),
                Err(e) => {
                    report.error = Some(outputs_error(&report.path, e));
                    return report;
                }
            }
        }
        if let Some(snaps) = snapshots {
            match snaps.finish() {
                Ok(paths) => report.outputs.extend(paths),
                Err(e) => {
                    report.error = Some(outputs_error(&report.path, e));
                    return report;
                }
            }
        }
        if let Some(identity) = identity.filter(|_| !end.interrupted && end.error.is_none()) {
            if let Err(e) = self.write_done(end, identity, &report) {
                report.error = Some(outputs_error(&report.path, e));
            }
        }
        report
    }

    /// The done marker, written once the outputs are in place; outputs of this stem that this
    /// run did not write (another `--outputs` before) are removed, so none is stale.
    fn write_done(&self, end: &InputEnd, input: InputIdentity, r: &InputReport) -> Result<()> {
        let stem = &self.stems[end.input];
        let marker = DoneMarker {
            input,
            settings: self.cfg.settings.clone(),
            frames: r.frames,
            detections: r.detections,
            corrupt_packets: end.issues.corrupt_packets,
            outputs: r
                .outputs
                .iter()
                .map(|p| OutputFile::of(p))
                .collect::<Result<_>>()?,
        };
        self.out.remove_other_outputs(stem, &r.outputs);
        marker.write(self.out.root(), stem)?;
        Ok(())
    }
}
