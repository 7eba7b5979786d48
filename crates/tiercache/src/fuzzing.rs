//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, not part of the public API): each
//! feeds arbitrary bytes to one parser of data that comes from Redis and checks it never panics, never
//! allocates more than the bytes could describe, and keeps its invariants.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::config::ValueCodec;
use crate::keys::KeySpace;

/// A value shaped like what services cache: nested containers, strings, enums, options, floats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    /// A flat record.
    Record {
        /// A name.
        name: String,
        /// Some numbers.
        values: Vec<u64>,
        /// A maybe-float.
        ratio: Option<f64>,
    },
    /// A map of lists.
    Table(BTreeMap<String, Vec<i32>>),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// Nothing.
    Empty,
}

const MAX_VALUE_BYTES: usize = 1 << 20;

/// The envelope: header checks, then the payload as several types through the decode guard. The
/// bytes are tried as they are and with magic, version, codec and length set right, so a fuzzer
/// reaches the payload without having to guess a header first.
pub fn envelope(bytes: &[u8]) {
    if let Ok((_, payload)) = codec::decode_header(bytes, MAX_VALUE_BYTES) {
        decode_as_types(payload);
    }
    if bytes.len() >= codec::HEADER_LEN {
        let mut fixed = bytes.to_vec();
        fixed[0..2].copy_from_slice(&codec::MAGIC);
        fixed[2] = codec::FORMAT_VERSION;
        let len = u32::try_from(bytes.len() - codec::HEADER_LEN).unwrap_or(u32::MAX);
        fixed[32..36].copy_from_slice(&len.to_le_bytes());
        // The codec the input's byte picks among those built in, so each one's decoder is reached.
        let built_in = ValueCodec::BUILT_IN;
        fixed[codec::CODEC_AT] =
            built_in[usize::from(bytes[codec::CODEC_AT]) % built_in.len()].tag();
        match codec::decode_header(&fixed, MAX_VALUE_BYTES) {
            Ok((_, payload)) => decode_as_types(payload),
            Err(e) => assert!(
                len as usize > MAX_VALUE_BYTES,
                "a header set right must decode: {e}"
            ),
        }
    }
}

/// A payload through the decode guard, in every codec built in, as types of every serde shape.
pub fn decode_guard(payload: &[u8]) {
    for &codec in ValueCodec::BUILT_IN {
        decode_as_types(codec::Payload {
            codec,
            bytes: payload,
        });
    }
}

fn decode_as_types(payload: codec::Payload<'_>) {
    let _ = codec::decode_payload::<Shape>(payload);
    let _ = codec::decode_payload::<Vec<String>>(payload);
    let _ = codec::decode_payload::<BTreeMap<u64, Vec<u8>>>(payload);
    let _ = codec::decode_payload::<(String, Option<Vec<Shape>>, char, bool)>(payload);
    if let Ok(value) = codec::decode_payload::<Shape>(payload) {
        // What decodes re-encodes, in the same codec, to something that decodes to the same value.
        let header = codec::Header {
            created_at_ms: 1,
            expires_at_ms: 2,
            load_micros: 3,
        };
        if let Ok(bytes) = codec::encode(&value, &header, MAX_VALUE_BYTES, payload.codec) {
            let (back, again) =
                codec::decode_header(&bytes, MAX_VALUE_BYTES).expect("own header decodes");
            assert_eq!(back, header);
            assert_eq!(again.codec, payload.codec);
            let again = codec::decode_payload::<Shape>(again).expect("own payload decodes");
            // NaN is the one value not equal to itself.
            if !matches!(value, Shape::Record { ratio: Some(r), .. } if r.is_nan()) {
                assert_eq!(again, value);
            }
        }
    }
}

/// Key encoding: two (namespace, key) pairs and a tag, from arbitrary text. Distinct pairs never
/// share an entry key, an entry's siblings share its hash tag, and a tag key names its tag back.
pub fn keys(a: (&str, &str), b: (&str, &str), tag: &str) {
    let (space_a, space_b) = (
        KeySpace::new(a.0, usize::MAX),
        KeySpace::new(b.0, usize::MAX),
    );
    let (entry_a, entry_b) = (space_a.entry(a.1), space_b.entry(b.1));
    if a != b {
        assert_ne!(entry_a.entry, entry_b.entry, "{a:?} and {b:?} collide");
        assert_ne!(entry_a.generation(), entry_b.generation());
    }
    let hash_tag = |k: &str| {
        let open = k.find('{').expect("a hash tag");
        k[open..].to_owned()
    };
    assert!(entry_a.entry.starts_with("tc:{"));
    // An entry's keys, in either layout, differ in their last letter alone: one slot.
    let slot_part = |k: &str| hash_tag(k)[..hash_tag(k).len() - 2].to_owned();
    assert_eq!(slot_part(&entry_a.entry), slot_part(&entry_a.lease()));
    assert_eq!(
        slot_part(&entry_a.entry),
        slot_part(&entry_a.other_layout())
    );
    assert_ne!(entry_a.entry, entry_a.other_layout());
    assert_eq!(space_a.tag_name(&space_a.tag(tag)), Some(tag));
    for other in [
        space_a.tag(tag),
        space_a.stream(),
        space_a.channel(),
        space_a.named_lock(tag),
        space_a.fencing_counter(tag),
    ] {
        assert_ne!(entry_a.entry, other);
    }
    // A tag's key read by another namespace is not that namespace's tag.
    if a.0 != b.0 {
        assert_eq!(space_b.tag_name(&space_a.tag(tag)), None);
    }
}

/// A bus message or stream entry, and an entry's recorded tag field.
pub fn bus(bytes: &[u8]) {
    let _ = crate::message::decode_for_fuzzing(bytes);
    let _ = crate::l2::parse_recorded_for_fuzzing(bytes);
}
