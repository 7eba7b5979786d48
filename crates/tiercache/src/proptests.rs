//! Bounded property tests of everything that parses bytes from Redis, run with the normal test suite
//! (`PROPTEST_CASES` raises the count; `fuzz/` holds the libFuzzer targets for long runs).

use proptest::prelude::*;

use crate::codec::{self, Header};
use crate::config::ValueCodec;
use crate::fuzzing::{self, Shape};
use crate::l2::render_recorded;

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        (
            any::<String>(),
            prop::collection::vec(any::<u64>(), 0..16),
            any::<Option<f64>>()
        )
            .prop_map(|(name, values, ratio)| Shape::Record {
                name,
                values,
                ratio
            }),
        prop::collection::btree_map(
            any::<String>(),
            prop::collection::vec(any::<i32>(), 0..8),
            0..8
        )
        .prop_map(Shape::Table),
        prop::collection::vec(any::<u8>(), 0..256).prop_map(Shape::Bytes),
        Just(Shape::Empty),
    ]
}

fn codec() -> impl Strategy<Value = ValueCodec> {
    prop::sample::select(ValueCodec::BUILT_IN)
}

fn header() -> impl Strategy<Value = Header> {
    (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
        |(created_at_ms, expires_at_ms, load_micros)| Header {
            created_at_ms,
            expires_at_ms,
            load_micros,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_any_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzzing::envelope(&bytes);
        fuzzing::decode_guard(&bytes);
        fuzzing::bus(&bytes);
    }

    #[test]
    fn a_valid_header_in_front_of_arbitrary_bytes_never_panics(
        h in header(),
        c in codec(),
        payload in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = codec::encode(&(), &h, 1 << 20, c).expect("unit encodes");
        bytes.truncate(codec::HEADER_LEN);
        bytes[32..36].copy_from_slice(&u32::try_from(payload.len()).expect("small").to_le_bytes());
        bytes.extend_from_slice(&payload);
        fuzzing::envelope(&bytes);
    }

    #[test]
    fn values_roundtrip_and_any_corruption_of_them_is_an_error_or_a_value(
        value in shape(),
        h in header(),
        c in codec(),
        flip in any::<(usize, u8)>(),
    ) {
        let bytes = codec::encode(&value, &h, 1 << 20, c).expect("encodes");
        let (back, payload) = codec::decode_header(&bytes, 1 << 20).expect("header");
        prop_assert_eq!(back, h);
        prop_assert_eq!(payload.codec, c);
        let decoded: Shape = codec::decode_payload(payload).expect("payload");
        if !matches!(value, Shape::Record { ratio: Some(r), .. } if r.is_nan()) {
            prop_assert_eq!(decoded, value);
        }
        let mut corrupt = bytes.clone();
        let at = flip.0 % corrupt.len();
        corrupt[at] ^= flip.1 | 1;
        fuzzing::envelope(&corrupt);
        for cut in [0, 1, codec::HEADER_LEN, bytes.len() / 2, bytes.len() - 1] {
            fuzzing::envelope(&bytes[..cut]);
        }
    }

    #[test]
    fn keys_never_collide_and_name_their_tags_back(
        a in (any::<String>(), any::<String>()),
        b in (any::<String>(), any::<String>()),
        tag in any::<String>(),
    ) {
        fuzzing::keys((&a.0, &a.1), (&b.0, &b.1), &tag);
        // Pairs that differ only by where a separator falls are the classic collision.
        let joined = format!("{}:{}", a.0, a.1);
        if let Some((ns, key)) = joined.split_once(':') {
            fuzzing::keys((ns, key), (&a.0, &a.1), &tag);
        }
    }

    #[test]
    fn recorded_tag_fields_roundtrip(pairs in prop::collection::vec((any::<String>(), 1..u64::MAX), 0..8)) {
        let rendered_versions: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
        let rendered = render_recorded(rendered_versions.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        prop_assert_eq!(crate::l2::parse_recorded_for_fuzzing(&rendered), pairs.len());
    }
}
