//! One session run by several threads at once, for the OpenVINO provider: its compiled model
//! has `NUM_STREAMS` executors and a pool of infer requests, so concurrent runs of one
//! session are what fill its streams (OpenVINO's throughput mode). Separate sessions per
//! worker each compile their own copy of the model, and measured ~35% slower here.
//!
//! `ort` only offers `Session::run(&mut self)`, because some providers are not safe to run
//! concurrently; ONNX Runtime's C API documents `Run` as callable from several threads on one
//! session, and the OpenVINO provider is built for it. So [`SharedSession`] calls the C `Run`
//! directly; it can only be made from a session whose provider is OpenVINO, so its
//! `run(&self)` is sound for every holder of it, on any thread.

use std::{
    ffi::{c_char, CStr, CString},
    ptr::{self, NonNull},
};

use super::EpKind;
use ort::{
    memory::Allocator,
    session::Session,
    sys::{OrtStatus, OrtValue},
    value::DynValue,
    AsPointer,
};

/// The message of a non-null status, which is released.
///
/// # Safety
/// `status` must be a status returned by the ONNX Runtime API, not yet released.
unsafe fn status_error(status: *mut OrtStatus) -> ort::Error {
    let api = ort::api();
    // SAFETY: a live status (the contract above); its message is a NUL-terminated string it owns.
    let msg = unsafe { CStr::from_ptr((api.GetErrorMessage)(status)) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: released once, after its message was copied.
    unsafe { (api.ReleaseStatus)(status) };
    ort::Error::new(msg)
}

/// A session whose provider is OpenVINO, run by several workers at once (share it in an
/// `Arc`). Only [`SharedSession::new`] makes one, and only for OpenVINO.
pub(super) struct SharedSession(Session);

impl SharedSession {
    /// Wraps `session`, built with the provider `ep` (the one that registered for it), if that
    /// provider runs concurrent calls of one session; otherwise gives the session back.
    pub(super) fn new(session: Session, ep: EpKind) -> Result<Self, Session> {
        match ep {
            EpKind::OpenVino => Ok(SharedSession(session)),
            EpKind::Cpu | EpKind::Cuda | EpKind::TensorRt => Err(session),
        }
    }

    /// Runs the session on one input, returning the named outputs in order. Callable from
    /// several threads at once (see the module docs).
    pub(super) fn run(
        &self,
        input_name: &str,
        input: &impl AsPointer<Sys = OrtValue>,
        output_names: &[String],
    ) -> Result<Vec<DynValue>, ort::Error> {
        run_concurrently(&self.0, input_name, input, output_names)
    }
}

/// The C `Run` of `session` on one input; `session` is the OpenVINO session of a
/// [`SharedSession`].
fn run_concurrently(
    session: &Session,
    input_name: &str,
    input: &impl AsPointer<Sys = OrtValue>,
    output_names: &[String],
) -> Result<Vec<DynValue>, ort::Error> {
    let c = |s: &str| CString::new(s).map_err(|_| ort::Error::new(format!("name {s:?} has a NUL")));
    let input_c = c(input_name)?;
    let outputs_c = output_names
        .iter()
        .map(|s| c(s))
        .collect::<Result<Vec<_>, _>>()?;
    let output_ptrs: Vec<*const c_char> = outputs_c.iter().map(|s| s.as_ptr()).collect();
    let mut values: Vec<*mut OrtValue> = vec![ptr::null_mut(); output_ptrs.len()];
    let input_ptr = input.ptr();
    // SAFETY: every pointer is valid for the call: the session and input outlive it, the name
    // arrays hold NUL-terminated strings kept alive above, `values` has room for every output.
    // Other threads may run the same session meanwhile: `SharedSession` holds only OpenVINO
    // sessions, whose C `Run` is documented and built for concurrent calls.
    let status = unsafe {
        (ort::api().Run)(
            session.ptr().cast_mut(),
            ptr::null(),
            &input_c.as_ptr(),
            &input_ptr,
            1,
            output_ptrs.as_ptr(),
            output_ptrs.len(),
            values.as_mut_ptr(),
        )
    };
    if !status.0.is_null() {
        // SAFETY: a status ONNX Runtime just returned.
        return Err(unsafe { status_error(status.0) });
    }
    // Outputs on the CPU come from ONNX Runtime's default CPU allocator.
    let allocator = Allocator::default();
    values
        .into_iter()
        .map(|v| {
            let v = NonNull::new(v).ok_or_else(|| ort::Error::new("Run returned no output"))?;
            // SAFETY: an output value ONNX Runtime allocated for us; the Value releases it.
            Ok(unsafe { DynValue::from_ptr(v, Some(&allocator)) })
        })
        .collect()
}
