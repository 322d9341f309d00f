//! The micro-batcher: groups prepared frames into model inputs. Each frame's tensor is
//! written straight into its slot of the batch tensor (no copy per frame); markers between
//! frames ride in the batch in arrival order, so a batch may span the end of one input and
//! the start of the next. A batch leaves when it is full, when [`Batcher::flush`] is called
//! (the `--max-wait-ms` push timeout, or the end of the stream), or, holding only markers, at
//! once. Batches are numbered so inference workers may finish them out of order.

use std::{collections::BTreeSet, time::Duration};

use super::item::{Item, Marker};
use crate::preprocess::{DType, SlotMut, Tensor};

/// How a short batch is completed before inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Run the frames there are.
    Never,
    /// Pad with blank images up to the batch size (a model with a fixed batch dimension).
    ToSize,
    /// Pad up to the smallest batch size the session has already run, so it sees no new
    /// shape; a first short batch runs as it is. Padding never costs more than the largest
    /// batch already run.
    ToSeen,
}

#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Images per inference call.
    pub size: usize,
    pub padding: Padding,
    /// Send a partial batch when no frame arrived for this long.
    pub max_wait: Option<Duration>,
}

/// One model input: at least one frame, its tensor (`run_n` images), and the markers that
/// arrived between its frames.
pub(crate) struct Batch<F> {
    pub seq: u64,
    pub items: Vec<Item<F>>,
    /// `run_n × slot_len` values: the frames' images, then blank padding.
    pub tensor: Tensor,
    pub frames: usize,
    /// Images the model runs on: `frames` plus padding.
    pub run_n: usize,
}

/// What leaves the batcher, numbered in one sequence.
pub(crate) enum ToInfer<F> {
    Batch(Batch<F>),
    /// Items that need no inference, with no frame waiting: markers (an input that failed to
    /// open, the end of a stream) and frames `--stride` leaves out.
    Passthrough {
        seq: u64,
        items: Vec<Item<F>>,
    },
}

pub(crate) struct Batcher<F> {
    policy: BatchPolicy,
    slot_len: usize,
    next_seq: u64,
    items: Vec<Item<F>>,
    tensor: Tensor,
    frames: usize,
    /// Batch sizes already sent with frames (for [`Padding::ToSeen`]).
    seen: BTreeSet<usize>,
}

impl<F> Batcher<F> {
    pub fn new(policy: BatchPolicy, slot_len: usize, dtype: DType) -> Self {
        Batcher {
            policy: BatchPolicy {
                size: policy.size.max(1),
                ..policy
            },
            slot_len,
            next_seq: 0,
            items: Vec::new(),
            tensor: Tensor::new(dtype),
            frames: 0,
            seen: BTreeSet::new(),
        }
    }

    /// How long to wait for the next frame before flushing: `Some` only while frames wait.
    pub fn max_wait(&self) -> Option<Duration> {
        self.policy.max_wait.filter(|_| self.frames > 0)
    }

    /// Adds a frame: `write` puts its tensor into the next slot and returns the frame to
    /// carry. `reuse` may hand back a tensor buffer to fill (its capacity is kept). If `write`
    /// fails no frame is added. Returns the batch when it is full.
    pub fn push_frame<E>(
        &mut self,
        reuse: impl FnOnce() -> Option<Tensor>,
        write: impl FnOnce(SlotMut<'_>) -> Result<F, E>,
    ) -> Result<Option<ToInfer<F>>, E> {
        if self.frames == 0 {
            if let Some(buf) = reuse().filter(|b| b.dtype() == self.tensor.dtype()) {
                self.tensor = buf;
            }
        }
        // Grow by need: memory is spent on frames that exist, not on the batch size.
        let end = (self.frames + 1) * self.slot_len;
        self.tensor.grow_to(end);
        let frame = write(self.tensor.slot(end - self.slot_len..end))?;
        self.items.push(Item::Frame(frame));
        self.frames += 1;
        Ok((self.frames >= self.policy.size).then(|| self.take()))
    }

    /// Adds a marker. With no frame waiting, the markers leave at once.
    pub fn push_marker(&mut self, m: Marker) -> Option<ToInfer<F>> {
        self.push_passthrough(Item::Marker(m))
    }

    /// Adds an item that needs no slot of the tensor (a marker, or a frame that skips
    /// inference): it keeps its place among the frames; with none waiting it leaves at once.
    pub fn push_passthrough(&mut self, item: Item<F>) -> Option<ToInfer<F>> {
        self.items.push(item);
        (self.frames == 0).then(|| self.take())
    }

    /// Sends whatever is waiting.
    pub fn flush(&mut self) -> Option<ToInfer<F>> {
        (!self.items.is_empty()).then(|| self.take())
    }

    fn run_size(&mut self) -> usize {
        let n = self.frames;
        let run_n = match self.policy.padding {
            Padding::Never => n,
            Padding::ToSize => self.policy.size.max(n),
            Padding::ToSeen => self.seen.range(n..).next().copied().unwrap_or(n),
        };
        self.seen.insert(run_n);
        run_n
    }

    fn take(&mut self) -> ToInfer<F> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let items = std::mem::take(&mut self.items);
        if self.frames == 0 {
            return ToInfer::Passthrough { seq, items };
        }
        let run_n = self.run_size();
        let frames = std::mem::take(&mut self.frames);
        let dtype = self.tensor.dtype();
        let mut tensor = std::mem::replace(&mut self.tensor, Tensor::new(dtype));
        tensor.pad_to(frames * self.slot_len, run_n * self.slot_len);
        ToInfer::Batch(Batch {
            seq,
            items,
            tensor,
            frames,
            run_n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::item::InputEnd;

    fn policy(size: usize, padding: Padding) -> BatchPolicy {
        BatchPolicy {
            size,
            padding,
            max_wait: Some(Duration::from_millis(5)),
        }
    }

    impl<F> Batcher<F> {
        fn new_f32(policy: BatchPolicy, slot_len: usize) -> Self {
            Batcher::new(policy, slot_len, DType::F32)
        }
    }

    fn f32s(t: &Tensor) -> Vec<f32> {
        match t {
            Tensor::F32(v) => v.clone(),
            Tensor::U8(_) => panic!("f32 tensor expected"),
        }
    }

    fn end(input: usize) -> Marker {
        Marker::End(Box::new(InputEnd::new(input)))
    }

    fn fill(s: SlotMut<'_>, v: f32) {
        match s {
            SlotMut::F32(s) => s.fill(v),
            SlotMut::U8(_) => panic!("f32 slots expected"),
        }
    }

    /// Pushes frame `v`, whose one-value slot gets `v`.
    fn push(b: &mut Batcher<u32>, v: u32) -> Option<ToInfer<u32>> {
        b.push_frame(
            || None,
            |s| {
                fill(s, v as f32);
                Ok::<_, ()>(v)
            },
        )
        .unwrap()
    }

    fn batch(t: Option<ToInfer<u32>>) -> Batch<u32> {
        match t {
            Some(ToInfer::Batch(b)) => b,
            _ => panic!("expected a batch"),
        }
    }

    fn shape(b: &Batch<u32>) -> Vec<String> {
        b.items
            .iter()
            .map(|i| match i {
                Item::Frame(v) => format!("f{v}"),
                Item::Marker(Marker::Begin(b)) => format!("begin{}", b.input),
                Item::Marker(Marker::End(e)) => format!("end{}", e.input),
                Item::Marker(Marker::Event { input, .. }) => format!("event{input}"),
            })
            .collect()
    }

    #[test]
    fn full_batches_leave_at_once_and_are_numbered() {
        let mut b = Batcher::new_f32(policy(2, Padding::Never), 1);
        assert!(push(&mut b, 1).is_none());
        let first = batch(push(&mut b, 2));
        assert_eq!((first.seq, first.frames, first.run_n), (0, 2, 2));
        assert_eq!(f32s(&first.tensor), vec![1.0, 2.0]);
        let second = batch(push(&mut b, 3).or_else(|| push(&mut b, 4)));
        assert_eq!(second.seq, 1);
    }

    #[test]
    fn a_batch_spans_inputs_with_markers_in_arrival_order() {
        let mut b = Batcher::new_f32(policy(3, Padding::Never), 1);
        assert!(push(&mut b, 1).is_none());
        assert!(
            b.push_marker(end(0)).is_none(),
            "a frame waits: the marker waits too"
        );
        let out = batch(push(&mut b, 2).or_else(|| push(&mut b, 3)));
        assert_eq!(shape(&out), ["f1", "end0", "f2", "f3"]);
        assert_eq!(f32s(&out.tensor), vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn markers_with_no_frame_waiting_leave_at_once() {
        let mut b = Batcher::<u32>::new_f32(policy(4, Padding::ToSize), 1);
        match b.push_marker(end(7)) {
            Some(ToInfer::Passthrough { seq: 0, items }) => assert_eq!(items.len(), 1),
            _ => panic!("markers expected"),
        }
        assert!(b.flush().is_none(), "nothing left");
    }

    #[test]
    fn padding_to_size_fills_blank_images() {
        let mut b = Batcher::new_f32(policy(4, Padding::ToSize), 2);
        push(&mut b, 5);
        let out = batch(b.flush());
        assert_eq!((out.frames, out.run_n), (1, 4));
        assert_eq!(
            f32s(&out.tensor),
            vec![5.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn padding_to_seen_sizes_never_exceeds_what_already_ran() {
        let mut b = Batcher::new_f32(policy(256, Padding::ToSeen), 1);
        for v in 0..3 {
            push(&mut b, v);
        }
        let first = batch(b.flush());
        assert_eq!(first.run_n, 3, "a first short batch runs as it is");
        push(&mut b, 9);
        let second = batch(b.flush());
        assert_eq!(
            (second.run_n, f32s(&second.tensor)),
            (3, vec![9.0, 0.0, 0.0])
        );
        for v in 0..5 {
            push(&mut b, v);
        }
        assert_eq!(
            batch(b.flush()).run_n,
            5,
            "no larger size seen: runs as it is"
        );
    }

    #[test]
    fn memory_grows_with_frames_not_with_the_batch_size() {
        let mut b = Batcher::new_f32(policy(1024, Padding::Never), 1000);
        push(&mut b, 1);
        push(&mut b, 2);
        assert_eq!(batch(b.flush()).tensor.len(), 2000);
    }

    #[test]
    fn max_wait_applies_only_while_frames_wait() {
        let mut b = Batcher::new_f32(policy(4, Padding::Never), 1);
        assert_eq!(b.max_wait(), None);
        push(&mut b, 1);
        assert_eq!(b.max_wait(), Some(Duration::from_millis(5)));
        let out = batch(b.flush());
        assert_eq!(
            (out.frames, out.run_n),
            (1, 1),
            "a partial batch leaves on flush"
        );
        assert_eq!(b.max_wait(), None);
    }

    #[test]
    fn a_failed_write_adds_no_frame() {
        let mut b = Batcher::new_f32(policy(2, Padding::Never), 1);
        let r = b.push_frame(|| None, |_| Err::<u32, _>("bad frame"));
        assert_eq!(r.err(), Some("bad frame"));
        push(&mut b, 2);
        let out = batch(b.flush());
        assert_eq!((out.frames, f32s(&out.tensor)), (1, vec![2.0]));
    }

    #[test]
    fn reused_buffers_are_filled_not_reallocated() {
        let mut b = Batcher::new_f32(policy(1, Padding::Never), 2);
        let buf = Vec::with_capacity(64);
        let ptr = buf.as_ptr();
        let out = b
            .push_frame(
                || Some(Tensor::F32(buf)),
                |s| {
                    fill(s, 1.0);
                    Ok::<_, ()>(1u32)
                },
            )
            .unwrap();
        let out = batch(out);
        assert_eq!(f32s(&out.tensor), vec![1.0, 1.0]);
        let Tensor::F32(kept) = out.tensor else {
            panic!("f32 tensor expected")
        };
        assert_eq!(kept.as_ptr(), ptr, "the reused buffer, not a new one");
    }
}
