//! Any bytes as an `--inputs-from` manifest: parsing never panics; every path it returns is
//! non-empty, has no line break, no surrounding whitespace, and is not a comment.
#![no_main]

use std::os::unix::ffi::OsStrExt;

use libfuzzer_sys::fuzz_target;
use vidinfer::manifest::parse_manifest;

fuzz_target!(|data: &[u8]| {
    for p in parse_manifest(data) {
        let b = p.as_os_str().as_bytes();
        assert!(!b.is_empty());
        assert!(!b.contains(&b'\n'));
        assert!(!b[0].is_ascii_whitespace() && !b[b.len() - 1].is_ascii_whitespace());
        assert_ne!(b[0], b'#');
    }
});
