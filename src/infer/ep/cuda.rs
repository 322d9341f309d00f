//! CUDA execution provider. cuDNN's algorithm search defaults to HEURISTIC so a new input
//! shape (a new batch size) does not trigger an exhaustive benchmark.
use ort::ep::{self, cuda::ConvAlgorithmSearch, ExecutionProviderDispatch};

use super::EpOptions;

pub(super) fn dispatch(opts: &EpOptions) -> ExecutionProviderDispatch {
    let search = match opts.cudnn_algo_search.as_str() {
        "exhaustive" => ConvAlgorithmSearch::Exhaustive,
        "default" => ConvAlgorithmSearch::Default,
        _ => ConvAlgorithmSearch::Heuristic,
    };
    ep::CUDA::default()
        .with_device_id(opts.cuda_device)
        .with_conv_algorithm_search(search)
        .build()
        .error_on_failure()
}
