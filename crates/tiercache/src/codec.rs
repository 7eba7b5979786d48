//! The wire format of a value in Redis: a fixed header followed by a payload in one of the value
//! codecs ([`crate::config::ValueCodec`]: bincode 2 by default, postcard 1 with the `postcard`
//! feature), in one of two formats, one per entry layout (see [`crate::config::EntryLayout`]).
//!
//! Format 1, the `d` field of a layout-1 entry hash (its tag versions are the hash's `t` field):
//!
//! ```text
//! 0   2  magic "TC"
//! 2   1  format version (1)
//! 3   1  value codec: 0 bincode, 1 postcard (reserved and 0 before codecs could be chosen)
//! 4   8  created at, ms since the Unix epoch (LE)
//! 12  8  logical expiry, ms since the Unix epoch (LE)
//! 20  4  load duration, µs (LE, saturating)
//! 24  8  reserved, 0 (tiercache before layout 2 wrote a generation here that nothing read)
//! 32  4  payload length (LE)
//! 36  .. payload (in the codec byte 3 names)
//! ```
//!
//! Format 2, the whole string of a layout-2 entry, so that one `GET` reads value and tag versions:
//!
//! ```text
//! 0   2  magic "TC"
//! 2   1  format version (2)
//! 3   1  value codec, as in format 1
//! 4   8  created at, ms since the Unix epoch (LE)
//! 12  8  logical expiry, ms since the Unix epoch (LE)
//! 20  4  load duration, µs (LE, saturating)
//! 24  4  tag frame length T (LE)
//! 28  4  payload length P (LE)
//! 32  T  tag frame: tag keys and versions, length-prefixed (what layout 1 keeps in `t`)
//! 32+T P payload
//! ```
//!
//! The codec is a byte of the header rather than a format version of its own because the format
//! versions name layouts, and the scripts read the tag frame of format 2 by its version: a codec is
//! what the payload holds, not how the entry is laid out.
//!
//! Decoding never panics: a short buffer, a wrong magic, an unknown version, a codec this build
//! lacks, a length that does not match, an oversized payload or payload bytes that do not fit the
//! type are all a [`DecodeError`], which the cache treats as a miss.

use serde::{de::DeserializeOwned, Serialize};

use crate::config::ValueCodec;
use crate::decode_guard::GuardedSeed;

pub(crate) const MAGIC: [u8; 2] = *b"TC";
/// The format of a layout-1 entry's `d` field.
pub(crate) const FORMAT_VERSION: u8 = 1;
pub(crate) const HEADER_LEN: usize = 36;
/// The format of a layout-2 entry's string.
pub(crate) const FORMAT_WITH_TAGS: u8 = 2;
pub(crate) const HEADER_WITH_TAGS_LEN: usize = 32;
/// Where both formats name the payload's codec.
pub(crate) const CODEC_AT: usize = 3;

/// The metadata stored in front of every payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) created_at_ms: u64,
    pub(crate) expires_at_ms: u64,
    pub(crate) load_micros: u32,
}

/// A payload with the codec its header names, which this build has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Payload<'a> {
    pub(crate) codec: ValueCodec,
    pub(crate) bytes: &'a [u8],
}

/// Why bytes from Redis could not be turned into a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum DecodeError {
    #[error("value is {0} bytes, shorter than the {HEADER_LEN}-byte header")]
    Truncated(usize),
    #[error("value does not start with the tiercache magic")]
    BadMagic,
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    #[error(
        "value codec {0} is not built into this node (postcard is 1, with the `postcard` feature)"
    )]
    UnknownCodec(u8),
    #[error("payload length {declared} does not match the {actual} bytes present")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("payload of {0} bytes is over the size limit")]
    Oversized(usize),
    #[error("payload does not decode as the requested type: {0}")]
    Payload(String),
}

/// A payload format. Implemented by zero-sized types and chosen by matching the node's
/// [`ValueCodec`] (or the one a header names) once per value: serde's generic methods cannot go
/// through a trait object, and the match is one predictable branch where a vtable would be an
/// indirect call.
pub(crate) trait Codec {
    /// The setting that selects this codec; its tag is the header's codec byte.
    const VALUE_CODEC: ValueCodec;

    /// Appends `value`'s encoding to `out` (which already holds the header).
    fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), String>;

    /// Decodes the whole of `payload` as a `T` through [`crate::decode_guard`], so no length
    /// prefix in it can ask for more memory than the payload has bytes; bytes left over are
    /// corruption too.
    fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError>;
}

fn trailing(bytes: usize) -> DecodeError {
    DecodeError::Payload(format!("{bytes} trailing bytes after the value"))
}

/// bincode 2 in serde mode, standard configuration: the default, and what every entry written
/// before codecs could be chosen holds.
pub(crate) struct Bincode;

/// No bincode size limit: it is checked on every element and doubled decode time. The payload's size
/// is checked against `max_value_bytes` before bincode runs, and [`crate::decode_guard`] stops a
/// corrupt length inside it from asking for a giant allocation.
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

impl Codec for Bincode {
    const VALUE_CODEC: ValueCodec = ValueCodec::Bincode;

    #[inline]
    fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), String> {
        bincode::serde::encode_into_std_write(value, out, bincode_config())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[inline]
    fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
        let seed = GuardedSeed::<T>::new(payload.len());
        let (value, read) = bincode::serde::seed_decode_from_slice(seed, payload, bincode_config())
            .map_err(|e| DecodeError::Payload(e.to_string()))?;
        if read != payload.len() {
            return Err(trailing(payload.len() - read));
        }
        Ok(value)
    }
}

/// postcard 1: maintained, varint integers like bincode's standard configuration, so payloads are
/// of about the same size.
#[cfg(feature = "postcard")]
pub(crate) struct Postcard;

#[cfg(feature = "postcard")]
impl Codec for Postcard {
    const VALUE_CODEC: ValueCodec = ValueCodec::Postcard;

    #[inline]
    fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), String> {
        // postcard extends a writer it owns and hands it back; lending it the vector keeps the
        // header already written and the capacity already reserved.
        let buf = std::mem::take(out);
        *out = postcard::to_extend(value, buf).map_err(|e| e.to_string())?;
        Ok(())
    }

    #[inline]
    fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
        use serde::de::DeserializeSeed;

        let mut de = postcard::Deserializer::from_bytes(payload);
        let value = GuardedSeed::<T>::new(payload.len())
            .deserialize(&mut de)
            .map_err(|e| DecodeError::Payload(e.to_string()))?;
        let rest = de
            .finalize()
            .map_err(|e| DecodeError::Payload(e.to_string()))?;
        if !rest.is_empty() {
            return Err(trailing(rest.len()));
        }
        Ok(value)
    }
}

/// Encodes `value` in `codec` behind a format-1 header. Fails when serialisation fails or the
/// payload exceeds `max_bytes`.
pub(crate) fn encode<T: Serialize>(
    value: &T,
    header: &Header,
    max_bytes: usize,
    codec: ValueCodec,
) -> Result<Vec<u8>, String> {
    match codec {
        ValueCodec::Bincode => encode_with::<Bincode, T>(value, header, max_bytes),
        #[cfg(feature = "postcard")]
        ValueCodec::Postcard => encode_with::<Postcard, T>(value, header, max_bytes),
    }
}

fn encode_with<C: Codec, T: Serialize>(
    value: &T,
    header: &Header,
    max_bytes: usize,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(HEADER_LEN + 64);
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.push(C::VALUE_CODEC.tag());
    out.extend_from_slice(&header.created_at_ms.to_le_bytes());
    out.extend_from_slice(&header.expires_at_ms.to_le_bytes());
    out.extend_from_slice(&header.load_micros.to_le_bytes());
    // Reserved (8 bytes), then the payload's length, written once it is known.
    out.extend_from_slice(&[0; 12]);
    C::encode_into(value, &mut out)?;
    let payload_len = out.len() - HEADER_LEN;
    if payload_len > max_bytes {
        return Err(format!(
            "encoded value is {payload_len} bytes, over the {max_bytes}-byte limit (TIERCACHE_MAX_VALUE_BYTES)"
        ));
    }
    let len = u32::try_from(payload_len).map_err(|_| "payload larger than 4 GiB".to_owned())?;
    out[32..36].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

/// The format-2 bytes of a format-1 `envelope` (as [`encode`] makes it) with the tag frame `tags`
/// inside: what a layout-2 entry stores. `None` when `envelope` is not format 1.
pub(crate) fn with_tags(envelope: &[u8], tags: &[u8]) -> Option<Vec<u8>> {
    if envelope.len() < HEADER_LEN || envelope[0..2] != MAGIC || envelope[2] != FORMAT_VERSION {
        return None;
    }
    let tags_len = u32::try_from(tags.len()).ok()?;
    let payload = &envelope[HEADER_LEN..];
    let mut out = Vec::with_capacity(HEADER_WITH_TAGS_LEN + tags.len() + payload.len());
    // Magic, version, codec and the three header fields, the same in both formats.
    out.extend_from_slice(&envelope[..24]);
    out[2] = FORMAT_WITH_TAGS;
    out.extend_from_slice(&tags_len.to_le_bytes());
    out.extend_from_slice(&envelope[32..36]);
    out.extend_from_slice(tags);
    out.extend_from_slice(payload);
    Some(out)
}

/// The tag frame of a format-2 value, before decoding the rest; `None` when `bytes` is not a
/// well-formed format-2 header and frame.
pub(crate) fn tag_frame(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < HEADER_WITH_TAGS_LEN || bytes[0..2] != MAGIC || bytes[2] != FORMAT_WITH_TAGS {
        return None;
    }
    let tags_len = le_u32(bytes, 24) as usize;
    bytes.get(HEADER_WITH_TAGS_LEN..HEADER_WITH_TAGS_LEN.checked_add(tags_len)?)
}

/// The format an entry of `layout` is stored in.
pub(crate) fn format_of(layout: crate::config::EntryLayout) -> u8 {
    match layout {
        crate::config::EntryLayout::Hash => FORMAT_VERSION,
        crate::config::EntryLayout::String => FORMAT_WITH_TAGS,
    }
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Reads and checks the header of either format; returns it with the payload.
pub(crate) fn decode_header(
    bytes: &[u8],
    max_bytes: usize,
) -> Result<(Header, Payload<'_>), DecodeError> {
    decode_entry(bytes, max_bytes).map(|(header, _, payload)| (header, payload))
}

/// Reads and checks the header of either format; returns it with the tag frame (empty in format 1,
/// whose tags live beside it) and the payload.
pub(crate) fn decode_entry(
    bytes: &[u8],
    max_bytes: usize,
) -> Result<(Header, &[u8], Payload<'_>), DecodeError> {
    if bytes.len() < 3 {
        return Err(DecodeError::Truncated(bytes.len()));
    }
    if bytes[0..2] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let (header_len, tags_len, declared) = match bytes[2] {
        FORMAT_VERSION if bytes.len() >= HEADER_LEN => (HEADER_LEN, 0, le_u32(bytes, 32) as usize),
        FORMAT_WITH_TAGS if bytes.len() >= HEADER_WITH_TAGS_LEN => (
            HEADER_WITH_TAGS_LEN,
            le_u32(bytes, 24) as usize,
            le_u32(bytes, 28) as usize,
        ),
        FORMAT_VERSION | FORMAT_WITH_TAGS => return Err(DecodeError::Truncated(bytes.len())),
        other => return Err(DecodeError::UnknownVersion(other)),
    };
    // Before the payload is looked at: a payload of a codec this build lacks could decode as
    // another codec's bytes into a wrong value.
    let codec =
        ValueCodec::from_tag(bytes[CODEC_AT]).ok_or(DecodeError::UnknownCodec(bytes[CODEC_AT]))?;
    if declared > max_bytes {
        return Err(DecodeError::Oversized(declared));
    }
    let actual = bytes.len() - header_len;
    if tags_len.checked_add(declared) != Some(actual) {
        return Err(DecodeError::LengthMismatch {
            declared: tags_len.saturating_add(declared),
            actual,
        });
    }
    let header = Header {
        created_at_ms: le_u64(bytes, 4),
        expires_at_ms: le_u64(bytes, 12),
        load_micros: le_u32(bytes, 20),
    };
    let (tags, payload) = bytes[header_len..].split_at(tags_len);
    Ok((
        header,
        tags,
        Payload {
            codec,
            bytes: payload,
        },
    ))
}

/// Decodes a payload in the codec its header named; trailing bytes are corruption too.
///
/// Kept out of line: inlined into the large read future, LLVM stopped inlining the per-element decode
/// and the decode cost twice what a standalone call costs (callgrind, 1 KiB payload).
#[inline(never)]
pub(crate) fn decode_payload<T: DeserializeOwned>(payload: Payload<'_>) -> Result<T, DecodeError> {
    match payload.codec {
        ValueCodec::Bincode => Bincode::decode(payload.bytes),
        #[cfg(feature = "postcard")]
        ValueCodec::Postcard => Postcard::decode(payload.bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Stats {
        total: u64,
        label: String,
        series: Vec<f64>,
    }

    fn bincode(bytes: &[u8]) -> Payload<'_> {
        Payload {
            codec: ValueCodec::Bincode,
            bytes,
        }
    }

    fn header() -> Header {
        Header {
            created_at_ms: 1,
            expires_at_ms: 2,
            load_micros: 3,
        }
    }

    fn sample() -> Stats {
        Stats {
            total: 42,
            label: "donations".into(),
            series: vec![1.5, 2.5],
        }
    }

    #[test]
    fn roundtrip_keeps_header_codec_and_value() {
        for &codec in ValueCodec::BUILT_IN {
            let bytes = encode(&sample(), &header(), 1 << 20, codec).expect("encode");
            assert_eq!(bytes[CODEC_AT], codec.tag());
            let (h, payload) = decode_header(&bytes, 1 << 20).expect("header");
            assert_eq!((h, payload.codec), (header(), codec));
            assert_eq!(decode_payload::<Stats>(payload).expect("payload"), sample());
        }
    }

    /// Bytes as tiercache wrote them before codecs could be chosen (byte 3 reserved, 0), spelled out
    /// rather than encoded, so they stay what older nodes left in Redis: they decode as bincode.
    #[test]
    fn entries_written_before_codecs_could_be_chosen_decode_as_bincode() {
        let mut old = b"TC\x01\x00".to_vec();
        old.extend_from_slice(&1_u64.to_le_bytes());
        old.extend_from_slice(&2_u64.to_le_bytes());
        old.extend_from_slice(&3_u32.to_le_bytes());
        old.extend_from_slice(&[0; 8]);
        let mut payload = vec![42, 9];
        payload.extend_from_slice(b"donations");
        payload.push(2);
        payload.extend_from_slice(&1.5_f64.to_le_bytes());
        payload.extend_from_slice(&2.5_f64.to_le_bytes());
        old.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_le_bytes());
        old.extend_from_slice(&payload);
        assert_eq!(
            encode(&sample(), &header(), 1 << 20, ValueCodec::Bincode).expect("encode"),
            old,
            "the default codec writes what older releases wrote and read"
        );
        let (h, payload) = decode_header(&old, 1 << 20).expect("header");
        assert_eq!((h, payload.codec), (header(), ValueCodec::Bincode));
        assert_eq!(decode_payload::<Stats>(payload).expect("payload"), sample());
    }

    #[test]
    fn a_codec_this_build_lacks_is_named_before_the_payload_is_read() {
        for &codec in ValueCodec::BUILT_IN {
            let mut bytes = encode(&sample(), &header(), 1 << 20, codec).expect("encode");
            bytes[CODEC_AT] = 0x7f;
            assert_eq!(
                decode_header(&bytes, 1 << 20).unwrap_err(),
                DecodeError::UnknownCodec(0x7f)
            );
            let tagged = with_tags(
                &encode(&sample(), &header(), 1 << 20, codec).expect("encode"),
                b"",
            )
            .expect("format 1 in");
            assert_eq!(tagged[CODEC_AT], codec.tag(), "format 2 keeps the codec");
        }
    }

    #[test]
    fn the_tag_format_roundtrips_header_tags_and_value_and_every_truncation_is_an_error() {
        let tags = b"9.tc:{3.ns}:t:1.x4.1234";
        let untagged = encode(&sample(), &header(), 1 << 20, ValueCodec::Bincode).expect("encode");
        let bytes = with_tags(&untagged, tags).expect("format 1 in");
        assert_eq!(tag_frame(&bytes), Some(&tags[..]));
        assert_eq!(tag_frame(&untagged), None);
        let (h, found, payload) = decode_entry(&bytes, 1 << 20).expect("header");
        assert_eq!((h, found), (header(), &tags[..]));
        assert_eq!(decode_payload::<Stats>(payload).expect("payload"), sample());
        for cut in 0..bytes.len() {
            let short = &bytes[..cut];
            let decoded =
                decode_header(short, 1 << 20).and_then(|(_, p)| decode_payload::<Stats>(p));
            assert!(decoded.is_err(), "cut at {cut} decoded");
        }
        let (_, found, _) = decode_entry(&untagged, 1 << 20).expect("format 1");
        assert!(found.is_empty(), "format 1 keeps its tags beside it");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for &codec in ValueCodec::BUILT_IN {
            let bytes = encode(&sample(), &header(), 1 << 20, codec).expect("encode");
            for cut in 0..bytes.len() {
                let short = &bytes[..cut];
                let decoded =
                    decode_header(short, 1 << 20).and_then(|(_, p)| decode_payload::<Stats>(p));
                assert!(decoded.is_err(), "{codec:?}: cut at {cut} decoded");
            }
        }
    }

    #[test]
    fn flipped_bytes_never_panic() {
        for &codec in ValueCodec::BUILT_IN {
            let bytes = encode(&sample(), &header(), 1 << 20, codec).expect("encode");
            for i in 0..bytes.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut b = bytes.clone();
                    b[i] ^= flip;
                    let _ =
                        decode_header(&b, 1 << 20).and_then(|(_, p)| decode_payload::<Stats>(p));
                }
            }
        }
    }

    #[test]
    fn unknown_version_bad_magic_and_oversize_are_named() {
        let mut bytes = encode(&sample(), &header(), 1 << 20, ValueCodec::Bincode).expect("encode");
        bytes[2] = 9;
        assert_eq!(
            decode_header(&bytes, 1 << 20).unwrap_err(),
            DecodeError::UnknownVersion(9)
        );
        bytes[2] = FORMAT_VERSION;
        bytes[0] = b'X';
        assert_eq!(
            decode_header(&bytes, 1 << 20).unwrap_err(),
            DecodeError::BadMagic
        );
        bytes[0] = b'T';
        assert!(matches!(
            decode_header(&bytes, 4),
            Err(DecodeError::Oversized(_))
        ));
        assert!(encode(&sample(), &header(), 4, ValueCodec::Bincode)
            .unwrap_err()
            .contains("limit"));
    }

    #[test]
    fn wrong_type_is_a_payload_error() {
        for &codec in ValueCodec::BUILT_IN {
            let bytes = encode(&sample(), &header(), 1 << 20, codec).expect("encode");
            let (_, payload) = decode_header(&bytes, 1 << 20).expect("header");
            assert!(decode_payload::<Vec<String>>(payload).is_err(), "{codec:?}");
        }
    }

    /// Every serde shape the codecs support, so the decode guard is seen to forward each one.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        Newtype(String),
        Tuple(i128, char),
        Struct { name: Box<str>, score: f32 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Marker;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Cents(u64);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Everything {
        flag: bool,
        maybe: Option<String>,
        nothing: Option<u8>,
        pairs: Vec<(String, f64)>,
        by_name: std::collections::BTreeMap<String, Vec<u32>>,
        shapes: Vec<Shape>,
        marker: Marker,
        cents: Cents,
        signed: i64,
        unit: (),
    }

    #[test]
    fn every_serde_shape_survives_the_decode_guard() {
        let value = Everything {
            flag: true,
            maybe: Some("campaign:123".into()),
            nothing: None,
            pairs: vec![("a".into(), 1.5), ("ü".into(), -2.0)],
            by_name: [("x".to_owned(), vec![1, 2, 3]), ("y".to_owned(), vec![])].into(),
            shapes: vec![
                Shape::Unit,
                Shape::Newtype("n".into()),
                Shape::Tuple(-7, 'é'),
                Shape::Struct {
                    name: "s".into(),
                    score: 0.5,
                },
            ],
            marker: Marker,
            cents: Cents(1_234),
            signed: -99,
            unit: (),
        };
        for &codec in ValueCodec::BUILT_IN {
            let bytes = encode(&value, &header(), 1 << 20, codec).expect("encode");
            let (_, payload) = decode_header(&bytes, 1 << 20).expect("header");
            assert_eq!(
                decode_payload::<Everything>(payload).expect("decode"),
                value,
                "{codec:?}"
            );
        }
    }

    #[test]
    fn a_length_prefix_claiming_exabytes_is_an_error_not_an_allocation() {
        // `Stats` as bincode writes it: total (varint 42), then the label's length. 253 announces a
        // little-endian u64; this one claims about 2^60 bytes. Decoding the label as an owned string
        // would try to allocate that before reading (and abort the process); the guard reads it as a
        // borrowed slice, which fails at once because the payload is 12 bytes long.
        let mut payload = vec![42_u8, 253];
        payload.extend_from_slice(&(1_u64 << 60).to_le_bytes());
        payload.extend_from_slice(b"do");
        let err = decode_payload::<Stats>(bincode(&payload))
            .expect_err("a 12-byte payload cannot hold it");
        assert!(matches!(err, DecodeError::Payload(_)), "{err:?}");

        // The same claim for a sequence: nothing is preallocated from it either.
        let mut payload = vec![42_u8, 0, 253];
        payload.extend_from_slice(&(1_u64 << 60).to_le_bytes());
        assert!(decode_payload::<Stats>(bincode(&payload)).is_err());
    }

    #[cfg(feature = "postcard")]
    #[test]
    fn a_postcard_length_prefix_claiming_exabytes_is_an_error_not_an_allocation() {
        fn postcard(bytes: &[u8]) -> Payload<'_> {
            Payload {
                codec: ValueCodec::Postcard,
                bytes,
            }
        }
        // `Stats` as postcard writes it: total (varint 42), then the label's length as a varint of
        // ten bytes claiming about 2^63 bytes, then two bytes of it.
        let mut payload = vec![42_u8];
        payload.extend_from_slice(&[0xff; 9]);
        payload.push(0x00);
        payload.extend_from_slice(b"do");
        assert!(decode_payload::<Stats>(postcard(&payload)).is_err());
        // The same claim (about 2^56, a varint postcard accepts) for a sequence.
        let mut payload = vec![42_u8, 0];
        payload.extend_from_slice(&[0xff; 8]);
        payload.push(0x01);
        assert!(decode_payload::<Stats>(postcard(&payload)).is_err());
    }
}
