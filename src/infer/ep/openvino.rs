//! OpenVINO execution provider (device type configurable: CPU, GPU, ...).
use ort::ep::{self, ExecutionProviderDispatch};

use super::EpOptions;

pub(super) fn dispatch(opts: &EpOptions) -> ExecutionProviderDispatch {
    let mut ov = ep::OpenVINO::default().with_device_type(opts.openvino_device.clone());
    if opts.intra_threads > 0 {
        ov = ov.with_num_threads(opts.intra_threads);
    }
    ov.build().error_on_failure()
}
