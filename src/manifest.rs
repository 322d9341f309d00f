//! `--inputs-from` manifests: one input per line. Lines are bytes, so any file name the
//! filesystem allows can be listed; a UTF-8 byte-order mark and CRLF line ends (files saved
//! by Windows editors) are accepted; blank lines and lines starting with `#` are skipped.

use std::{ffi::OsStr, os::unix::ffi::OsStrExt, path::PathBuf};

/// The UTF-8 byte-order mark some editors put at the start of a text file.
pub const BOM: &[u8] = b"\xef\xbb\xbf";

/// The inputs a manifest lists, in order.
pub fn parse_manifest(text: &[u8]) -> Vec<PathBuf> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    text.split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(|l| PathBuf::from(OsStr::from_bytes(l)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_crlf_comments_and_raw_bytes() {
        let text = b"\xef\xbb\xbfa/clip.mp4\r\n# a comment\r\n\r\n  b/x y.mkv  \r\nc/caf\xe9.avi";
        let got = parse_manifest(text);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], PathBuf::from("a/clip.mp4"));
        assert_eq!(got[1], PathBuf::from("b/x y.mkv"));
        assert_eq!(got[2].as_os_str().as_bytes(), b"c/caf\xe9.avi");
        assert!(parse_manifest(b"\xef\xbb\xbf").is_empty());
    }
}
