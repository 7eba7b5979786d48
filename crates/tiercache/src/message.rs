//! What travels on the bus: the events, the message around them and its encoding. It sits below both
//! the bus, which sends and receives it, and L2, whose scripts publish it, append it to the replay
//! stream and carry a filled entry after it.

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
    decode_with_rest(bytes).map(|(m, _)| m)
}

/// Decodes a bus message and returns the bytes after it: a filled notice's entry
/// ([`with_filled_entry`]), empty otherwise.
pub(crate) fn decode_with_rest(bytes: &[u8]) -> Option<(Message, &[u8])> {
    let (message, used) = bincode::serde::decode_from_slice(
        bytes,
        bincode::config::standard().with_limit::<{ 64 << 20 }>(),
    )
    .ok()?;
    Some((message, bytes.get(used..).unwrap_or_default()))
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

/// A filled notice carries the entry it announces when the entry is at most this many bytes: a
/// waiter on another node then has the value without reading Redis. Every node receives every notice,
/// so large entries are left for the waiters to read.
pub(crate) const FILLED_ENTRY_UP_TO_BYTES: usize = 4 * 1024;

/// The entry a filled notice carries: as stored in Redis, so a waiter checks it as a read of Redis
/// would be checked, and the generation its load was fenced with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilledEntry {
    /// The entry's value (in layout 2 its tag versions are framed inside).
    pub(crate) value: Vec<u8>,
    /// Layout 1's `t` field beside the value; `None` in layout 2.
    pub(crate) recorded: Option<Vec<u8>>,
    /// The key's generation the store was fenced with. A notice can arrive after an invalidation
    /// of its key (this node's own, whose message it never receives; or, on a cluster, one published
    /// before the notice): such an invalidation changed the generation, so a waiter that read the
    /// generation after it knows the notice's value is superseded.
    pub(crate) generation: String,
}

/// A [`FilledEntry`] borrowed from the store that announces it.
#[derive(Clone, Copy)]
pub(crate) struct FilledEntryRef<'a> {
    pub(crate) value: &'a [u8],
    pub(crate) recorded: Option<&'a [u8]>,
    pub(crate) generation: &'a str,
}

/// A fill another node announced, as the receiver hands it to this node's waiters.
#[derive(Debug)]
pub(crate) struct FillNotice {
    pub(crate) key: String,
    pub(crate) entry: Option<FilledEntry>,
}

/// `announcement` (a [`filled_announcement`]) with the entry appended after the encoded message.
/// Appended, not a field of [`Body::Filled`], so nodes of a version that reads only the key still
/// read the notice during a rolling upgrade (a message's trailing bytes are ignored), and notices of
/// such nodes read here as carrying no entry.
pub(crate) fn with_filled_entry(announcement: &[u8], entry: &FilledEntryRef<'_>) -> Vec<u8> {
    let FilledEntryRef {
        value,
        recorded,
        generation,
    } = *entry;
    let mut payload = Vec::with_capacity(announcement.len() + value.len() + 48);
    payload.extend_from_slice(announcement);
    // Encoding byte slices into a Vec cannot fail. bincode's own encoding, not its serde one: it
    // copies a byte slice at once, where serde's goes byte by byte (13k instructions for 1 KiB).
    let _ = bincode::encode_into_std_write(
        (value, recorded, generation),
        &mut payload,
        bincode::config::standard(),
    );
    payload
}

/// The entry a filled notice carried after its message ([`with_filled_entry`]); `None` when it
/// carried none or the bytes do not read as one.
pub(crate) fn filled_entry(rest: &[u8]) -> Option<FilledEntry> {
    if rest.is_empty() {
        return None;
    }
    // Stores attach at most FILLED_ENTRY_UP_TO_BYTES; anything much larger was not written by one.
    let config = bincode::config::standard().with_limit::<{ 64 << 10 }>();
    let (value, recorded, generation) =
        bincode::decode_from_slice::<(Vec<u8>, Option<Vec<u8>>, String), _>(rest, config)
            .ok()?
            .0;
    Some(FilledEntry {
        value,
        recorded,
        generation,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn filled_key(payload: &[u8]) -> (String, &[u8]) {
        let body = payload.strip_prefix(b"- ").expect("an ephemeral message");
        let (message, rest) = decode_with_rest(body).expect("decodes");
        let Body::Filled { key } = message.body else {
            panic!("not a filled notice: {message:?}");
        };
        (key, rest)
    }

    #[test]
    fn a_filled_notice_carries_its_entry_after_the_message() {
        let plain = filled_announcement(7, "standings");
        let entry = FilledEntryRef {
            value: b"TC\x02value",
            recorded: Some(b"t-field"),
            generation: "1234",
        };
        let carried = with_filled_entry(&plain, &entry);
        let (key, rest) = filled_key(&carried);
        assert_eq!(key, "standings");
        assert_eq!(
            filled_entry(rest),
            Some(FilledEntry {
                value: b"TC\x02value".to_vec(),
                recorded: Some(b"t-field".to_vec()),
                generation: "1234".to_owned(),
            })
        );
        let layout_two = with_filled_entry(
            &plain,
            &FilledEntryRef {
                recorded: None,
                ..entry
            },
        );
        assert_eq!(
            filled_entry(filled_key(&layout_two).1).unwrap().recorded,
            None
        );
    }

    #[test]
    fn notices_with_and_without_an_entry_read_on_either_side_of_an_upgrade() {
        let plain = filled_announcement(7, "standings");
        // A node that reads only the message (what `decode` does) still reads a notice with an entry.
        let entry = FilledEntryRef {
            value: b"value",
            recorded: None,
            generation: "1",
        };
        let carried = with_filled_entry(&plain, &entry);
        assert!(matches!(
            decode(&carried[2..]).map(|m| m.body),
            Some(Body::Filled { key }) if key == "standings"
        ));
        // A notice without an entry reads as carrying none, and so do bytes that are not one.
        assert_eq!(filled_entry(filled_key(&plain).1), None);
        assert_eq!(filled_entry(&[0xff, 0xff, 0xff]), None);
    }
}
