//! A bus message or replay-stream entry, and an entry's recorded tag versions.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiercache::fuzzing::bus(data));
