//! TensorRT execution provider (fp16 and engine cache configurable).
use ort::ep::{self, ExecutionProviderDispatch};

use super::EpOptions;

pub(super) fn dispatch(opts: &EpOptions) -> ExecutionProviderDispatch {
    let mut trt = ep::TensorRT::default()
        .with_device_id(opts.cuda_device)
        .with_fp16(opts.trt_fp16);
    if let Some(dir) = &opts.trt_cache_dir {
        trt = trt
            .with_engine_cache(true)
            .with_engine_cache_path(dir.clone());
    }
    trt.build().error_on_failure()
}
