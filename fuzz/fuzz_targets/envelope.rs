//! A value's bytes in Redis: the header, then the payload through the decode guard.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiercache::fuzzing::envelope(data));
