//! The stage threads, each started with its ends of the queues.

use std::{sync::atomic::AtomicBool, thread};

use super::{Front, Wiring};
use crate::{
    channel,
    error::Result,
    infer::Detector,
    pipeline::{
        batcher,
        decode_stage::{self, Out},
        infer_stage,
        item::{Decoded, Detected, InferredBatch, Item, Prepared},
        policy::stream_decode_options,
        postprocess_stage, preprocess_stage,
        preprocess_stage::SharedBatcher,
        stage::{spawn, Jitter},
        streams::Merge,
    },
    preprocess::Tensor,
};

type Handle<'scope, T> = thread::ScopedJoinHandle<'scope, Result<T>>;

/// The decoders (each returns how many inputs it took) and the preprocess thread, if any.
type FrontHandles<'scope> = (Vec<Handle<'scope, u64>>, Option<Handle<'scope, ()>>);

/// The inference workers' shared ends of the queues around them.
pub(super) struct WorkerEnds<'a> {
    pub rx: channel::Rx<batcher::ToInfer<Prepared>>,
    pub tx: channel::Tx<InferredBatch>,
    pub pool: crossbeam_channel::Sender<Tensor>,
    pub tokens: crossbeam_channel::Receiver<()>,
    pub abort: &'a AtomicBool,
}

impl<'a> Wiring<'a> {
    /// The decoders, and the preprocess thread that reads their queues, unless they fill
    /// the `shared` batcher themselves.
    pub(super) fn spawn_front<'scope>(
        &'scope self,
        s: &'scope thread::Scope<'scope, '_>,
        shared: Option<&'scope SharedBatcher>,
        (queues, tx, pool): Front,
    ) -> Result<FrontHandles<'scope>> {
        if let Some(shared) = shared {
            // The shared batcher holds its own end of the queue to the workers.
            drop(tx);
            let outs = (0..self.streams.len()).map(|_| Out::Batch(shared));
            return Ok((self.spawn_decoders(s, outs.collect())?, None));
        }
        let (txs, rxs): (Vec<_>, Vec<_>) = queues.into_iter().unzip();
        let decoders = self.spawn_decoders(s, txs.into_iter().map(Out::Queue).collect())?;
        let pre = self.spawn_preprocess(s, Merge::new(rxs), tx, pool)?;
        Ok((decoders, Some(pre)))
    }

    /// One decode thread per stream, each with its own queue (or way into the shared
    /// batcher), taking inputs from one list.
    pub(super) fn spawn_decoders<'scope>(
        &'scope self,
        s: &'scope thread::Scope<'scope, '_>,
        outs: Vec<Out<'scope>>,
    ) -> Result<Vec<Handle<'scope, u64>>> {
        let (cfg, st) = (self.cfg, &self.stages[0]);
        let next_input = &self.next_input;
        let k = outs.len();
        let mut handles = Vec::with_capacity(k);
        for (i, out_to) in outs.into_iter().enumerate() {
            let name = if k == 1 {
                "decode".into()
            } else {
                format!("decode-{i}")
            };
            let (own, waited_ns) = (&self.streams[i].decode, &self.streams[i].waited_ns);
            let decode = stream_decode_options(cfg, k);
            handles.push(spawn(s, "decode", name, st, move || {
                let names = (self.out, self.stems);
                let stream = decode_stage::Stream {
                    index: i,
                    next_input,
                    stage: st,
                    own,
                    waited_ns,
                };
                let ends = (out_to, decode);
                let taken = decode_stage::decode_stage(cfg, names, ends, self.cancel, stream);
                own.record_thread_cpu();
                taken
            })?);
        }
        Ok(handles)
    }

    pub(super) fn spawn_preprocess<'scope>(
        &'scope self,
        s: &'scope thread::Scope<'scope, '_>,
        rx: Merge<Item<Decoded>>,
        tx: channel::Tx<batcher::ToInfer<Prepared>>,
        pool: crossbeam_channel::Receiver<Tensor>,
    ) -> Result<Handle<'scope, ()>> {
        let st = &self.stages[1];
        spawn(s, "preprocess", "preprocess".into(), st, move || {
            let links = preprocess_stage::PreprocessLinks { rx, tx, pool };
            preprocess_stage::preprocess_stage(self.preprocess_settings(), links, st)
        })
    }

    pub(super) fn preprocess_settings(&self) -> preprocess_stage::PreprocessSettings<'a> {
        let cfg = self.cfg;
        preprocess_stage::PreprocessSettings {
            kernel: cfg.kernel,
            spec: self.spec,
            policy: self.policy,
            keep_pictures: cfg.sinks.needs_pictures(),
            inputs: &cfg.inputs,
            jitter: Jitter::new(cfg.jitter, 2),
        }
    }

    pub(super) fn spawn_workers<'scope>(
        &'scope self,
        s: &'scope thread::Scope<'scope, '_>,
        detectors: Vec<Detector>,
        ends: WorkerEnds<'scope>,
    ) -> Result<Vec<Handle<'scope, Vec<f64>>>> {
        let (workers, st) = (detectors.len(), &self.stages[2]);
        let mut handles = Vec::with_capacity(workers);
        for (i, detector) in detectors.into_iter().enumerate() {
            let links = infer_stage::WorkerLinks {
                rx: ends.rx.clone(),
                tx: ends.tx.clone(),
                pool: ends.pool.clone(),
                tokens: ends.tokens.clone(),
                abort: ends.abort,
                metrics: self.cfg.telemetry.metrics.as_deref(),
            };
            let name = if workers == 1 {
                "infer".into()
            } else {
                format!("infer-{i}")
            };
            let jitter = Jitter::new(self.cfg.jitter, 3 + 10 * i as u64);
            handles.push(spawn(s, "infer", name, st, move || {
                infer_stage::infer_stage(detector, links, st, jitter)
            })?);
        }
        Ok(handles)
    }

    pub(super) fn spawn_postprocess<'scope>(
        &'scope self,
        s: &'scope thread::Scope<'scope, '_>,
        rx: channel::Rx<InferredBatch>,
        tx: channel::Tx<Item<Detected>>,
        tokens: crossbeam_channel::Sender<()>,
    ) -> Result<Handle<'scope, ()>> {
        let (cfg, st) = (self.cfg, &self.stages[3]);
        spawn(s, "postprocess", "postprocess".into(), st, move || {
            let links = postprocess_stage::PostprocessLinks { rx, tx, tokens };
            let jitter = Jitter::new(cfg.jitter, 4);
            let settings = postprocess_stage::PostprocessSettings {
                post: cfg.post,
                spec: self.spec,
                tracking: cfg.tracking.as_ref(),
            };
            postprocess_stage::postprocess_stage(settings, jitter, links, st)
        })
    }
}
