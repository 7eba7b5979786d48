//! [`Admin::inspect`]: everything L2 knows about one entry, read in one round trip without changing
//! anything (`scripts/inspect.lua`).

use redis::Value;
use serde::Serialize;

use super::leases::LeaseReport;
use super::scan::{KeyKind, NamespaceKey};
use crate::admin::Admin;
use crate::codec;
use crate::config::EntryLayout;
use crate::error::Error;
use crate::keys::KeySpace;
use crate::wall_clock::now_ms;

/// What L2 holds for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// No entry.
    Missing,
    /// Before its logical expiry, and every tag it was stored under is still at the recorded version:
    /// a read is answered with it.
    Fresh,
    /// Past its logical expiry, kept only as the fail-safe fallback until Redis drops it.
    Expired,
    /// A tag it was stored under has moved on (or vanished): it is invalid, and the next read deletes it.
    Invalidated,
    /// Bytes tiercache cannot read (another type, a bad header): the next read deletes it.
    Unreadable,
}

/// One tag an entry was stored under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagReport {
    /// The tag.
    pub tag: String,
    /// The tag's version when the entry was stored.
    pub recorded_version: String,
    /// The tag's version now; `None` when it has none (evicted or flushed: that means invalid).
    pub current_version: Option<String>,
    /// Whether the two agree.
    pub current: bool,
}

/// Everything L2 knows about one entry, as of [`EntryReport::inspected_at_ms`].
///
/// Which nodes hold the key in their L1 is not knowable from here: each node's L1 is private to its
/// process and answers no one. What L2 says bounds it: no node serves an L1 copy of an entry whose
/// key or tags were invalidated since the copy was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryReport {
    /// The cache key.
    pub key: String,
    /// The Redis key of the entry.
    pub redis_key: String,
    /// What L2 holds.
    pub state: EntryState,
    /// When this was read, ms since the Unix epoch (this process's clock).
    pub inspected_at_ms: u64,
    /// The key's generation (bumped by every invalidation of the key); `None` when it has none.
    pub generation: Option<String>,
    /// How long the generation is kept, ms.
    pub generation_expires_in_ms: Option<u64>,
    /// When the value was produced, ms since the Unix epoch.
    pub created_at_ms: Option<u64>,
    /// Its logical expiry, ms since the Unix epoch.
    pub expires_at_ms: Option<u64>,
    /// How old the value is, ms.
    pub age_ms: Option<u64>,
    /// How long it stays fresh, ms; negative once expired (by how much).
    pub fresh_for_ms: Option<i64>,
    /// How long Redis keeps the entry, ms: its logical TTL plus the fail-safe grace left.
    pub kept_for_ms: Option<u64>,
    /// Fail-safe time left: how long past its logical expiry the value can still stand in for a failed
    /// load (all of [`EntryReport::kept_for_ms`] once expired), ms.
    pub fail_safe_left_ms: Option<u64>,
    /// How long the load that produced it took, µs.
    pub load_micros: Option<u32>,
    /// Bytes of the stored envelope (header and payload).
    pub size_bytes: u64,
    /// The tags it was stored under and whether each is still current.
    pub tags: Vec<TagReport>,
    /// The key's load lease, when one is held.
    pub lease: Option<LeaseReport>,
    /// The envelope header as found, so a removal can check that the entry did not change since.
    #[serde(skip)]
    pub(crate) found_header: Option<Vec<u8>>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn int(v: Option<&Value>) -> i64 {
    v.and_then(|v| redis::from_redis_value_ref(v).ok())
        .unwrap_or(-2)
}

/// A PTTL reply as a lifetime: `None` for "no expiry" (-1) and "no key" (-2).
fn lifetime(ms: i64) -> Option<u64> {
    u64::try_from(ms).ok()
}

impl Admin<'_> {
    /// Everything L2 knows about `key`: whether it is there and fresh, its generation, the tags it was
    /// stored under and whether each is current, age, TTL and fail-safe time left, size, and whether
    /// a node holds its load lease (and which). Reads only: one script for the entry, its generation
    /// and lease, then the recorded tags' versions (in the namespace's slot; not atomic with the
    /// first). Which nodes hold it in L1
    /// is not knowable from outside them (see [`EntryReport`]).
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// let report = cache.admin().inspect("total_donations:this_month").await?;
    /// println!("{:?}, fresh for {:?} ms, {} tags", report.state, report.fresh_for_ms, report.tags.len());
    /// # Ok(()) }
    /// ```
    pub async fn inspect(&self, key: &str) -> Result<EntryReport, Error> {
        let node = self.node();
        node.keys.validate(key)?;
        let keys = node.keys.entry(key);
        let reply = node.guarded(node.l2.redis.inspect(&keys)).await?;
        let items = match reply {
            Value::Array(items) => items,
            other => {
                return Err(crate::l2::unexpected(
                    &format!("the inspection of {key:?}"),
                    &other,
                ))
            }
        };
        let now = now_ms();
        let item = |i: usize| items.get(i).unwrap_or(&Value::Nil);
        let kind = text(item(0)).unwrap_or_default();
        let header = match item(1) {
            Value::BulkString(b) => Some(b.as_slice()),
            _ => None,
        };
        let size_bytes = u64::try_from(int(items.get(2))).unwrap_or(0);
        let found_header = header.map(<[u8]>::to_vec);
        // Only the format of this node's layout: reads treat any other as corrupt.
        let format = codec::format_of(node.keys.layout());
        let header = header
            .filter(|h| h.get(2) == Some(&format))
            .and_then(|h| decode_found_header(h, size_bytes));
        let recorded = recorded_pairs(item(3));
        let current = current_versions(node, &recorded).await?;
        let tags = tag_reports(&node.keys, recorded, current);
        let entry_ttl = int(items.get(4));
        // The Redis type an entry of this node's layout has.
        let stored_as = match node.keys.layout() {
            EntryLayout::Hash => "hash",
            EntryLayout::String => "string",
        };
        let state = match (kind.as_str(), header) {
            ("none", _) => EntryState::Missing,
            (found, Some(h)) if found == stored_as && tags.iter().all(|t| t.current) => {
                if h.expires_at_ms > now {
                    EntryState::Fresh
                } else {
                    EntryState::Expired
                }
            }
            (found, Some(_)) if found == stored_as => EntryState::Invalidated,
            _ => EntryState::Unreadable,
        };
        let fresh_for_ms = header.map(|h| h.expires_at_ms as i64 - now as i64);
        let kept_for_ms = lifetime(entry_ttl).filter(|_| state != EntryState::Missing);
        let lease_found = NamespaceKey {
            redis_key: keys.lease(),
            kind: KeyKind::Lease,
            name: key.to_owned(),
        };
        let lease = if matches!(item(7), Value::Nil) && int(items.get(8)) == -2 {
            None
        } else {
            let nodes = self.nodes().await?;
            LeaseReport::of(&lease_found, item(7), item(8), &nodes)
        };
        Ok(EntryReport {
            key: key.to_owned(),
            redis_key: keys.entry,
            state,
            inspected_at_ms: now,
            generation: text(item(5)),
            generation_expires_in_ms: lifetime(int(items.get(6))),
            created_at_ms: header.map(|h| h.created_at_ms),
            expires_at_ms: header.map(|h| h.expires_at_ms),
            age_ms: header.map(|h| now.saturating_sub(h.created_at_ms)),
            fresh_for_ms,
            fail_safe_left_ms: kept_for_ms.map(|kept| {
                kept.saturating_sub(u64::try_from(fresh_for_ms.unwrap_or(0)).unwrap_or(0))
            }),
            kept_for_ms,
            load_micros: header.map(|h| h.load_micros),
            size_bytes,
            tags,
            lease,
            found_header,
        })
    }
}

/// The header of an envelope of `size` bytes (either format), from its first bytes; `None` when it
/// is not one.
fn decode_found_header(first: &[u8], size: u64) -> Option<codec::Header> {
    // Where each format keeps its lengths: format 1 the payload's; format 2 the tag frame's, then
    // the payload's.
    let (header_len, lengths) = match *first.get(2)? {
        codec::FORMAT_WITH_TAGS => (codec::HEADER_WITH_TAGS_LEN, 24..32),
        _ => (codec::HEADER_LEN, 32..36),
    };
    let mut header = first.get(..header_len)?.to_vec();
    let declared: u64 = header[lengths.clone()]
        .chunks_exact(4)
        .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .sum();
    if declared + header_len as u64 != size {
        return None;
    }
    // The lengths are checked against the real size above; decode the header as one of nothing.
    header[lengths].fill(0);
    codec::decode_header(&header, usize::MAX)
        .ok()
        .map(|(h, _)| h)
}

/// The tags of an entry: the script's (tag key, current version) pairs beside the versions its `t`
/// field recorded.
/// The current versions of the recorded tags of this namespace, in order, read in the namespace's
/// slot (another slot than the entry's on a cluster). A recorded key of another namespace is left
/// out; [`tag_reports`] reads it as not current.
async fn current_versions(
    node: &std::sync::Arc<crate::node::Node>,
    recorded: &[(String, String)],
) -> Result<Vec<Option<String>>, Error> {
    let ours: Vec<&str> = recorded
        .iter()
        .map(|(key, _)| key.as_str())
        .filter(|key| node.keys.tag_name(key).is_some())
        .collect();
    if ours.is_empty() {
        return Ok(Vec::new());
    }
    node.guarded(node.l2.redis.current_values(&ours)).await
}

fn tag_reports(
    keys: &KeySpace,
    recorded: Vec<(String, String)>,
    current: Vec<Option<String>>,
) -> Vec<TagReport> {
    let mut current = current.into_iter();
    recorded
        .into_iter()
        .map(|(tag_key, recorded_version)| {
            let (tag, current_version) = match keys.tag_name(&tag_key) {
                Some(tag) => (tag.to_owned(), current.next().flatten()),
                None => (tag_key, None),
            };
            TagReport {
                current: current_version.as_deref() == Some(recorded_version.as_str()),
                tag,
                recorded_version,
                current_version,
            }
        })
        .collect()
}

/// The (tag key, version) pairs of a `t` field, in order; empty when it does not parse.
fn recorded_pairs(t: &Value) -> Vec<(String, String)> {
    let Value::BulkString(bytes) = t else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let Some(dot) = rest.iter().position(|b| *b == b'.') else {
            return Vec::new();
        };
        let Some(len) = std::str::from_utf8(&rest[..dot])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            return Vec::new();
        };
        // The length comes from stored bytes: a huge one must not overflow.
        let Some(end) = (dot + 1).checked_add(len) else {
            return Vec::new();
        };
        let Some(part) = rest.get(dot + 1..end) else {
            return Vec::new();
        };
        parts.push(String::from_utf8_lossy(part).into_owned());
        rest = &rest[end..];
    }
    if parts.len() % 2 == 1 {
        return Vec::new();
    }
    let mut parts = parts.into_iter();
    std::iter::from_fn(|| Some((parts.next()?, parts.next()?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_pairs_come_in_tag_order_and_garbage_gives_none() {
        let t = crate::l2::render_recorded(
            [("tc:{2.ns}:t:a.b", "17"), ("tc:{2.ns}:t:ключ 9.", "5")].into_iter(),
        );
        let pairs = recorded_pairs(&Value::BulkString(t));
        let versions: Vec<&str> = pairs.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(versions, ["17", "5"]);
        assert_eq!(pairs[1].0, "tc:{2.ns}:t:ключ 9.");
        for bad in [&b"3.ab"[..], b"x.abc", b"1.a"] {
            assert!(recorded_pairs(&Value::BulkString(bad.to_vec())).is_empty());
        }
    }
}
