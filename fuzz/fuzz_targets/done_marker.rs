//! Any bytes as a `<stem>.done` marker: parsing never panics, and a marker that parses
//! round-trips through its own serialisation unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vidinfer::output::DoneMarker;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = DoneMarker::parse(data) {
        let text = serde_json::to_vec(&m).expect("a parsed marker serialises");
        assert_eq!(DoneMarker::parse(&text).expect("its own text parses"), m);
    }
});
