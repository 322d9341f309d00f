//! CPU execution provider (always available; registering it explicitly only sets the arena).
use ort::ep::{self, ExecutionProviderDispatch};

use super::EpOptions;

pub(super) fn dispatch(_opts: &EpOptions) -> ExecutionProviderDispatch {
    ep::CPU::default()
        .with_arena_allocator(true)
        .build()
        .error_on_failure()
}
