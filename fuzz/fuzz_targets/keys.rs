//! Key encoding: distinct (namespace, key) pairs never share a Redis key; tags name themselves back.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: (String, String, String, String, String)| {
    let (ns_a, key_a, ns_b, key_b, tag) = input;
    tiercache::fuzzing::keys((&ns_a, &key_a), (&ns_b, &key_b), &tag);
});
