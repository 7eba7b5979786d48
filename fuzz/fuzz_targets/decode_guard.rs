//! A bincode payload decoded through the guard as several types; what decodes must round-trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiercache::fuzzing::decode_guard(data));
