//! An ONNX file's `metadata_props`, read from the protobuf itself, before (and without) a
//! session: what settings need from a model before ONNX Runtime loads it (an Ultralytics
//! export's class names, for `--zone` classes and the labels of `bench`). Only the top level of
//! `ModelProto` is walked; the graph is skipped by its length, never parsed.

use std::path::Path;

/// `ModelProto.metadata_props` (repeated `StringStringEntryProto { key = 1; value = 2; }`).
const METADATA_PROPS: u64 = 14;

/// The model's metadata entries, in file order; `None` if the file cannot be read or is not a
/// well-formed protobuf at its top level (loading it will then say what is wrong).
pub fn read_metadata(path: &Path) -> Option<Vec<(String, String)>> {
    let bytes = std::fs::read(path).ok()?;
    metadata_of(&bytes)
}

/// [`read_metadata`] on a model's bytes.
pub fn metadata_of(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let mut r = Reader { buf: bytes, at: 0 };
    let mut out = Vec::new();
    while !r.done() {
        let (field, body) = r.field()?;
        if let (METADATA_PROPS, Field::Bytes(entry)) = (field, body) {
            out.push(entry_of(entry)?);
        }
    }
    Some(out)
}

/// One `StringStringEntryProto`: (key, value); an absent field is empty, as protobuf has it.
fn entry_of(bytes: &[u8]) -> Option<(String, String)> {
    let mut r = Reader { buf: bytes, at: 0 };
    let (mut key, mut value) = (String::new(), String::new());
    while !r.done() {
        match r.field()? {
            (1, Field::Bytes(b)) => key = String::from_utf8(b.to_vec()).ok()?,
            (2, Field::Bytes(b)) => value = String::from_utf8(b.to_vec()).ok()?,
            _ => {}
        }
    }
    Some((key, value))
}

enum Field<'a> {
    Scalar,
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.at)?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.buf.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    /// The next field: its number and, for length-delimited ones, its bytes.
    fn field(&mut self) -> Option<(u64, Field<'a>)> {
        let tag = self.varint()?;
        let body = match tag & 7 {
            0 => self.varint().map(|_| Field::Scalar)?,
            1 => self.take(8).map(|_| Field::Scalar)?,
            2 => {
                let n = usize::try_from(self.varint()?).ok()?;
                Field::Bytes(self.take(n)?)
            }
            5 => self.take(4).map(|_| Field::Scalar)?,
            _ => return None, // groups (3, 4) are not in ONNX; anything else is not protobuf
        };
        Some((tag >> 3, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_field(field: u64, body: &[u8]) -> Vec<u8> {
        let mut v = vec![(field << 3 | 2) as u8, body.len() as u8];
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn reads_the_entries_and_skips_everything_else() {
        let mut model = vec![0x08, 0x08]; // ir_version = 8
        model.extend(len_field(7, b"a graph, skipped by length"));
        let entry = [len_field(1, b"names"), len_field(2, b"{0: 'person'}")].concat();
        model.extend(len_field(14, &entry));
        model.extend([0x2d, 1, 2, 3, 4]); // a fixed32 field 5
        let meta = metadata_of(&model).expect("well formed");
        assert_eq!(meta, vec![("names".into(), "{0: 'person'}".into())]);
    }

    #[test]
    fn a_cut_or_foreign_file_is_none_not_a_panic() {
        let entry = [len_field(1, b"names"), len_field(2, b"{0: 'a'}")].concat();
        let model = len_field(14, &entry);
        for cut in 1..model.len() {
            assert_eq!(metadata_of(&model[..cut]), None, "cut at {cut}");
        }
        assert_eq!(metadata_of(b"\x0f\xff\xff"), None);
        assert_eq!(metadata_of(&[]), Some(vec![]));
    }
}
