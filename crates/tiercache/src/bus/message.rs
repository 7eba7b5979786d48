//! What travels on the bus: the events, the message around them and its encoding.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One change announced on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Event {
    /// The key's value changed or was removed.
    Key(String),
    /// The tag has a new version; entries recorded under another version are invalid.
    Tag { tag: String, version: u64 },
    /// Every entry of the namespace is invalid.
    Clear,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Body {
    Events(Vec<Event>),
    /// The sender's last batch: its sequence number and the stream id the batch was stored under.
    Heartbeat {
        last_seq: u64,
        last_id: String,
    },
    Filled {
        key: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Message {
    pub(crate) node: u64,
    pub(crate) seq: u64,
    pub(crate) sent_at_micros: u64,
    pub(crate) body: Body,
}

pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub(crate) fn encode(m: &Message) -> Vec<u8> {
    // Encoding plain structs of strings and integers into a Vec cannot fail.
    bincode::serde::encode_to_vec(m, bincode::config::standard()).unwrap_or_default()
}

pub(crate) fn decode(bytes: &[u8]) -> Option<Message> {
    bincode::serde::decode_from_slice(
        bytes,
        bincode::config::standard().with_limit::<{ 64 << 20 }>(),
    )
    .ok()
    .map(|(m, _)| m)
}

/// Decodes a bus message for the fuzz targets; whether it decoded.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_for_fuzzing(bytes: &[u8]) -> bool {
    decode(bytes).is_some()
}

/// Whether stream id `a` comes after `b` ("ms-seq"; an empty id is before everything).
pub(crate) fn stream_id_after(a: &str, b: &str) -> bool {
    parse_stream_id(a) > parse_stream_id(b)
}

pub(crate) fn parse_stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// A message that is not replayed (a heartbeat or a fill notice) as published: `-` (no stream id)
/// and a space before the encoded message.
pub(crate) fn ephemeral(node: u64, body: Body) -> Vec<u8> {
    let message = Message {
        node,
        seq: 0,
        sent_at_micros: now_micros(),
        body,
    };
    let mut payload = b"- ".to_vec();
    payload.extend_from_slice(&encode(&message));
    payload
}

/// The notice that `node` stored `key`, which wakes other nodes' waiters for it.
pub(crate) fn filled_announcement(node: u64, key: &str) -> Vec<u8> {
    ephemeral(
        node,
        Body::Filled {
            key: key.to_owned(),
        },
    )
}
