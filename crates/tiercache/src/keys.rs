//! How a (namespace, key) pair and the cache's bookkeeping map onto Redis keys.
//!
//! Every variable part is length-prefixed (`<len>.<bytes>`), so no two (namespace, key) pairs can render
//! to the same Redis key (namespace `x` + key `y:z` vs namespace `x:y` + key `z`), whatever bytes they
//! contain. Each kind of key has its own fixed prefix, so an entry can never alias a tag version, the
//! replay stream or a lock.
//!
//! Every key the cache creates expires or is bounded, so requests cannot grow Redis for ever:
//!
//! | Redis key | holds | bounded by |
//! |---|---|---|
//! | `tc:{<ns>:<key>}:v` | the entry, layout 2 (one string: tag versions framed before the value) | expiry: TTL + fail-safe |
//! | `tc:{<ns>:<key>}:d` | the entry, layout 1 (hash: `d` envelope, `t` tag versions) | expiry: TTL + fail-safe |
//! | `tc:{<ns>:<key>}:g` | the key's generation (bumped by every invalidation) | expiry: the generation lifetime |
//! | `tc:{<ns>:<key>}:l` | the key's load lease | expiry: the lease |
//! | `tc:{<ns>}:t:<tag>` | a tag's version | expiry: at least the longest entry recording it and the generation lifetime |
//! | `tc:{<ns>}:s` | the namespace's invalidation replay stream | one per namespace, `MAXLEN ~` |
//! | `tc:{<ns>}:b` | the namespace's pub/sub channel (a shard channel on a cluster) | not a key |
//! | `tc:{<ns>}:e` | a nonce that changes when Redis loses the namespace's stream and tag versions | one per namespace |
//! | `tc:L:<ns>:<name>` | a named lock taken through [`crate::Cache::lock`] | expiry: the lease |
//! | `tc:F:<ns>:{<slot tag>}<name>` | that lock's fencing counter | one per lock name; expiry: 30 days after the name's last acquisition |
//! | `tc:n:<ns>:<node id>` | a running node's presence (16 hex digits) | expiry: three heartbeats after its last renewal |
//! | `tc:r:<ns>:<name>` | a record list of a layer above the cache ([`crate::Admin::push_record`]) | one per name, trimmed |
//!
//! On a Redis Cluster the `{...}` hash tags decide the slots. An entry, its generation and its lease
//! share the slot of `{<ns>:<key>}`, so entries spread over the cluster and each script on an entry
//! touches one slot. A namespace's tag versions, replay stream, channel and epoch share the slot of
//! `{<ns>}`, so an invalidation of tags is one script there, its message is appended and published
//! in the same slot, and the tag versions a read checks cost one round trip to one node.
//!
//! A named lock's key has no hash tag of ours (the name may bring its own), yet its fencing counter
//! must share its slot: the script that takes the lock bumps the counter. So the counter's hash tag
//! is whatever Redis hashes of the lock key: the name's own hash tag if it has one, else the whole
//! lock key (a namespace has no braces, so the counter's first `{` opens that tag). A lock key
//! without a hash tag but with a `}` cannot be quoted inside one; there the smallest decimal number
//! of the same slot stands in (a search of at most 109,758 numbers, done for such names alone).

use std::borrow::Cow;

use redis::cluster_routing::Slot;

use crate::config::EntryLayout;
use crate::error::Error;

/// The Redis keys of one cache entry. Only the entry key is rendered up front: a cold read needs no
/// other, and the generation and lease keys differ from it in the last byte alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryKeys {
    pub(crate) entry: String,
}

impl EntryKeys {
    /// The key's generation (bumped by every invalidation).
    pub(crate) fn generation(&self) -> String {
        self.sibling('g')
    }

    /// The key's load lease.
    pub(crate) fn lease(&self) -> String {
        self.sibling('l')
    }

    /// The key's entry in the other layout: an invalidation deletes it too, for nodes of that
    /// layout still running.
    pub(crate) fn other_layout(&self) -> String {
        self.sibling(self.layout().other().letter())
    }

    /// This entry's layout, by its last letter.
    pub(crate) fn layout(&self) -> EntryLayout {
        if self.entry.ends_with(":d") {
            EntryLayout::Hash
        } else {
            EntryLayout::String
        }
    }

    fn sibling(&self, kind: char) -> String {
        debug_assert!(
            self.entry.ends_with(":d") || self.entry.ends_with(":v"),
            "built by KeySpace::entry"
        );
        let mut key = self.entry.clone();
        key.pop();
        key.push(kind);
        key
    }
}

/// Renders Redis keys for one namespace.
#[derive(Debug, Clone)]
pub(crate) struct KeySpace {
    namespace_part: String,
    max_key_bytes: usize,
    limits: TagLimits,
    layout: EntryLayout,
}

/// How many tags an entry may carry and how long each may be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TagLimits {
    pub(crate) max_tags: usize,
    pub(crate) max_tag_bytes: usize,
}

/// Appends `<len>.<part>`: the framing of every variable part of a key, and of the `t` field.
pub(crate) fn length_prefixed(out: &mut String, part: &str) {
    push_decimal(out, part.len());
    out.push('.');
    out.push_str(part);
}

/// Appends `n` in decimal without going through `fmt`, which costs more than the rest of a key.
fn push_decimal(out: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

impl KeySpace {
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn new(namespace: &str, max_key_bytes: usize) -> Self {
        Self::with_tag_limits(
            namespace,
            max_key_bytes,
            TagLimits {
                max_tags: 64,
                max_tag_bytes: 256,
            },
        )
    }

    pub(crate) fn with_tag_limits(
        namespace: &str,
        max_key_bytes: usize,
        limits: TagLimits,
    ) -> Self {
        let mut namespace_part = String::with_capacity(namespace.len() + 4);
        length_prefixed(&mut namespace_part, namespace);
        KeySpace {
            namespace_part,
            max_key_bytes,
            limits,
            layout: EntryLayout::default(),
        }
    }

    /// Refuses the tags of an entry the cache cannot keep: too many, empty ones, or longer than the
    /// limit.
    pub(crate) fn validate_tags(&self, tags: &[String]) -> Result<(), Error> {
        if tags.len() > self.limits.max_tags {
            return Err(Error::InvalidTag {
                reason: format!(
                    "{} tags; the limit is {} (TIERCACHE_MAX_TAGS)",
                    tags.len(),
                    self.limits.max_tags
                ),
            });
        }
        tags.iter().try_for_each(|tag| self.validate_tag(tag))
    }

    /// Refuses a tag that is empty or longer than the limit.
    pub(crate) fn validate_tag(&self, tag: &str) -> Result<(), Error> {
        if tag.is_empty() {
            return Err(Error::InvalidTag {
                reason: "a tag is empty".into(),
            });
        }
        if tag.len() > self.limits.max_tag_bytes {
            let shown: String = tag.chars().take(32).collect();
            return Err(Error::InvalidTag {
                reason: format!(
                    "the tag {shown:?}... is {} bytes long; the limit is {} bytes (TIERCACHE_MAX_TAG_BYTES)",
                    tag.len(),
                    self.limits.max_tag_bytes
                ),
            });
        }
        Ok(())
    }

    /// Refuses keys the cache cannot store: empty or longer than the limit.
    pub(crate) fn validate(&self, key: &str) -> Result<(), Error> {
        if key.is_empty() {
            return Err(Error::invalid_key("the key is empty"));
        }
        if key.len() > self.max_key_bytes {
            return Err(Error::invalid_key(format!(
                "the key is {} bytes long; the limit is {} bytes (TIERCACHE_MAX_KEY_BYTES)",
                key.len(),
                self.max_key_bytes
            )));
        }
        Ok(())
    }

    /// The same key space with entries kept in `layout`.
    pub(crate) fn with_layout(mut self, layout: EntryLayout) -> Self {
        self.layout = layout;
        self
    }

    /// The entries' layout.
    pub(crate) fn layout(&self) -> EntryLayout {
        self.layout
    }

    pub(crate) fn entry(&self, key: &str) -> EntryKeys {
        let mut entry = String::with_capacity(10 + self.namespace_part.len() + key.len() + 6);
        entry.push_str("tc:{");
        entry.push_str(&self.namespace_part);
        entry.push(':');
        length_prefixed(&mut entry, key);
        entry.push_str("}:");
        entry.push(self.layout.letter());
        EntryKeys { entry }
    }

    /// A `SCAN MATCH` pattern for every entry of this namespace, in either layout (glob characters
    /// escaped).
    pub(crate) fn entry_pattern(&self) -> String {
        format!("tc:{{{}:*}}:[dv]", glob_escaped(&self.namespace_part))
    }

    pub(crate) fn tag(&self, tag: &str) -> String {
        format!("tc:{{{}}}:t:{}", self.namespace_part, tag)
    }

    /// The tag name inside a tag version key of this namespace.
    pub(crate) fn tag_name<'a>(&self, redis_key: &'a str) -> Option<&'a str> {
        redis_key
            .strip_prefix("tc:{")?
            .strip_prefix(self.namespace_part.as_str())?
            .strip_prefix("}:t:")
    }

    pub(crate) fn stream(&self) -> String {
        format!("tc:{{{}}}:s", self.namespace_part)
    }

    pub(crate) fn channel(&self) -> String {
        format!("tc:{{{}}}:b", self.namespace_part)
    }

    /// The namespace's epoch: a nonce beside its stream and tag versions that changes when Redis
    /// loses them all (a restart without persistence, a flush). A failover that lost only the last
    /// writes keeps the epoch; the replicas' acknowledgements guard against that instead.
    pub(crate) fn epoch(&self) -> String {
        format!("tc:{{{}}}:e", self.namespace_part)
    }

    pub(crate) fn named_lock(&self, name: &str) -> String {
        format!("tc:L:{}:{}", self.namespace_part, name)
    }

    /// The fencing counter of the named lock `name`: in the lock key's cluster slot, so one script
    /// takes the lock and bumps it.
    pub(crate) fn fencing_counter(&self, name: &str) -> String {
        fencing_counter(&self.namespace_part, name)
    }
}

/// `tc:F:<ns>:{<slot tag>}<name>` (`namespace_part` is `<len>.<ns>`). The name after the tag keeps
/// counters of different names apart even where their tags are equal.
pub(crate) fn fencing_counter(namespace_part: &str, name: &str) -> String {
    let lock = format!("tc:L:{namespace_part}:{name}");
    format!("tc:F:{namespace_part}:{{{}}}{name}", slot_tag(&lock))
}

/// What Redis hashes of `key` for its cluster slot: the bytes between the first `{` and the first
/// `}` after it when there are any, else the whole key.
fn hashed_part(key: &str) -> &str {
    key.find('{')
        .and_then(|open| {
            let inner = &key[open + 1..];
            inner.find('}').map(|close| &inner[..close])
        })
        .filter(|tag| !tag.is_empty())
        .unwrap_or(key)
}

/// A hash tag, without `}`, of the same cluster slot as `key`.
fn slot_tag(key: &str) -> Cow<'_, str> {
    let hashed = hashed_part(key);
    if !hashed.contains('}') {
        return Cow::Borrowed(hashed);
    }
    // A key without a hash tag but with a `}`: a number of its slot stands in. Every slot has one
    // below 109,758 (`every_slot_has_a_small_number`), so the search ends.
    let slot = Slot::for_key(key);
    let mut candidate = String::with_capacity(8);
    let mut n = 0;
    loop {
        candidate.clear();
        push_decimal(&mut candidate, n);
        if Slot::for_key(&candidate) == slot {
            return Cow::Owned(candidate);
        }
        n += 1;
    }
}

/// `text` with Redis glob characters escaped, to match itself in a pattern.
fn glob_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The commands a tiercache node sends, directly or from its scripts (Redis checks both).
const ACL_COMMANDS: &[&str] = &[
    "select",
    "evalsha",
    "script|load",
    "get",
    "mget",
    "set",
    "del",
    "unlink",
    "exists",
    "type",
    "pttl",
    "pexpire",
    "hget",
    "hmget",
    "hset",
    "xadd",
    "xrange",
    "xinfo|stream",
    "scan",
    "info",
    "lpush",
    "ltrim",
    "lrange",
    "wait",
    "time",
    "publish",
    "subscribe",
    "unsubscribe",
    "spublish",
    "ssubscribe",
    "sunsubscribe",
    "cluster|slots",
    "cluster|shards",
    "cluster|nodes",
];

/// The least a Redis ACL user needs to run tiercache nodes of `namespace`: the commands it sends and
/// the keys and channel of that namespace, as `ACL SETUSER` rules (the same on a cluster, where the
/// `cluster` subcommands let the client learn the slots).
/// The operator's API (`inspect`, `scan_namespace`, presence, record lists, `server_info`) is
/// covered too: the widget layer stores its metrics history through it.
/// Add `on`, a password (`>...`) and the user name.
///
/// ```
/// let rules = tiercache::acl_rules("widgets");
/// assert!(rules.contains("~tc:{7.widgets"));
/// assert!(rules.contains("&tc:{7.widgets}:b"));
/// // ACL SETUSER cache on >password <rules>
/// ```
pub fn acl_rules(namespace: &str) -> String {
    let mut part = String::new();
    length_prefixed(&mut part, namespace);
    let ns = glob_escaped(&part);
    let commands = ACL_COMMANDS.join(" +");
    format!(
        "resetkeys resetchannels -@all +{commands} ~tc:{{{ns}:* ~tc:{{{ns}}}:* ~tc:L:{ns}:* ~tc:F:{ns}:* ~tc:n:{ns}:* ~tc:r:{ns}:* &tc:{{{ns}}}:b"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_and_key_boundaries_cannot_be_confused() {
        let a = KeySpace::new("x", 1024).entry("y:z");
        let b = KeySpace::new("x:y", 1024).entry("z");
        assert_ne!(a.entry, b.entry);
        let c = KeySpace::new("x", 1024).entry("1.y}:g");
        assert_ne!(c.entry, KeySpace::new("x", 1024).entry("1.y").generation());
    }

    #[test]
    fn bookkeeping_prefixes_never_meet_entries() {
        let ks = KeySpace::new("ns", 1024);
        for key in ["t:tag", "s:", "b:", "L:x", "epoch", "}"] {
            let e = ks.entry(key);
            for other in [
                ks.tag(key),
                ks.stream(),
                ks.channel(),
                ks.named_lock(key),
                ks.fencing_counter(key),
                ks.epoch(),
            ] {
                assert_ne!(e.entry, other);
                assert_ne!(e.generation(), other);
                assert_ne!(e.lease(), other);
            }
        }
    }

    #[test]
    fn entry_keys_share_one_cluster_hash_tag() {
        let e = KeySpace::new("widgets", 1024).entry("donations:{org}:1");
        let tag = |k: &str| {
            let open = k.find('{').expect("open brace");
            let close = k[open + 1..].find('}').expect("close brace") + open + 1;
            k[open + 1..close].to_owned()
        };
        assert_eq!(tag(&e.entry), tag(&e.generation()));
        assert_eq!(tag(&e.entry), tag(&e.lease()));
        let ks = KeySpace::new("widgets", 1024);
        for key in [
            ks.tag("campaign:1"),
            ks.tag("{x}"),
            ks.stream(),
            ks.channel(),
        ] {
            assert_eq!(tag(&key), tag(&ks.epoch()), "{key}");
        }
        assert_eq!(ks.tag_name(&ks.tag("{x}")), Some("{x}"));
        assert_eq!(KeySpace::new("other", 1024).tag_name(&ks.tag("x")), None);
    }

    #[test]
    fn a_fencing_counter_shares_its_locks_slot_and_no_other_key() {
        let ks = KeySpace::new("widgets", 1024);
        let names = [
            "nightly-rollup",
            "a{b}c",
            "{b}",
            "{}x",
            "x{}{y}",
            "x}",
            "}{",
            "a}{b}",
            "{",
            "}",
            "{tc:L:7.widgets:x}",
            "x:f",
        ];
        let mut seen = std::collections::HashSet::new();
        for name in names {
            let (lock, counter) = (ks.named_lock(name), ks.fencing_counter(name));
            assert_eq!(
                Slot::for_key(&lock),
                Slot::for_key(&counter),
                "{lock} / {counter}"
            );
            assert!(counter.starts_with("tc:F:7.widgets:{") && counter.ends_with(name));
            assert!(seen.insert(counter.clone()), "{counter} taken twice");
            for other in names {
                assert_ne!(counter, ks.named_lock(other));
            }
        }
        assert_eq!(
            ks.fencing_counter("nightly"),
            "tc:F:7.widgets:{tc:L:7.widgets:nightly}nightly"
        );
        assert_eq!(ks.fencing_counter("a{b}c"), "tc:F:7.widgets:{b}a{b}c");
    }

    #[test]
    fn every_slot_has_a_small_number() {
        let mut slots = std::collections::HashSet::new();
        let mut n = String::new();
        for i in 0..109_758 {
            n.clear();
            push_decimal(&mut n, i);
            slots.insert(Slot::for_key(&n));
        }
        assert_eq!(slots.len(), 16_384);
    }

    #[test]
    fn lengths_render_in_decimal() {
        for n in [0, 7, 10, 99, 1024, usize::MAX] {
            let mut out = String::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn empty_and_oversized_keys_are_clear_errors() {
        let ks = KeySpace::new("ns", 8);
        assert!(ks
            .validate("")
            .expect_err("empty")
            .to_string()
            .contains("empty"));
        let msg = ks.validate("123456789").expect_err("long").to_string();
        assert!(
            msg.contains("9 bytes") && msg.contains("limit is 8"),
            "{msg}"
        );
        assert!(ks.validate("ключ").is_ok());
    }
}
