//! The reorder buffer: inference workers finish batches out of order; this puts them back
//! in sequence. A batch that overtook an earlier one waits here until the earlier ones
//! arrive. The buffer's size is bounded by the tokens that limit the batches in flight
//! (see `pipeline::run`), not by anything here.

use std::collections::BTreeMap;

pub(crate) struct Reorder<T> {
    next: u64,
    waiting: BTreeMap<u64, T>,
}

impl<T> Reorder<T> {
    pub fn new() -> Self {
        Reorder {
            next: 0,
            waiting: BTreeMap::new(),
        }
    }

    /// Takes batch `seq`.
    pub fn push(&mut self, seq: u64, value: T) {
        self.waiting.insert(seq, value);
    }

    /// The next batch in sequence, if it has arrived.
    pub fn pop(&mut self) -> Option<T> {
        let v = self.waiting.remove(&self.next)?;
        self.next += 1;
        Some(v)
    }

    /// Batches held back waiting for an earlier one.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_sequence_whatever_the_arrival_order() {
        let mut r = Reorder::new();
        let mut out = Vec::new();
        for seq in [2u64, 0, 3, 1, 5, 4] {
            r.push(seq, seq * 10);
            while let Some(v) = r.pop() {
                out.push(v);
            }
        }
        assert_eq!(out, vec![0, 10, 20, 30, 40, 50]);
        assert_eq!(r.held(), 0);
    }

    #[test]
    fn holds_batches_until_the_gap_is_filled() {
        let mut r = Reorder::new();
        r.push(1, "b");
        r.push(2, "c");
        assert_eq!(r.pop(), None);
        assert_eq!(r.held(), 2);
        r.push(0, "a");
        assert_eq!(
            (r.pop(), r.pop(), r.pop(), r.pop()),
            (Some("a"), Some("b"), Some("c"), None)
        );
    }
}
