//! Finding every Redis key of one namespace: `SCAN` with `MATCH` patterns built from the key layout
//! (`keys.rs`), then a strict parse of each key found, so a key of another namespace or another
//! program is never taken for ours even where a pattern is wider than the layout.

use serde::Serialize;

use crate::admin::Admin;
use crate::error::Error;
use crate::keys::{fencing_counter, length_prefixed};

/// What a Redis key of a namespace holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyKind {
    /// An entry (`tc:{<ns>:<key>}:v`, or `:d` in layout 1).
    Entry,
    /// A key's generation (`tc:{<ns>:<key>}:g`), bumped by every invalidation.
    Generation,
    /// A key's load lease (`tc:{<ns>:<key>}:l`).
    Lease,
    /// A tag's version (`tc:{<ns>}:t:<tag>`).
    TagVersion,
    /// The namespace's invalidation replay stream (`tc:{<ns>}:s`).
    ReplayStream,
    /// The namespace's epoch (`tc:{<ns>}:e`), which changes when Redis loses the stream and tag
    /// versions.
    Epoch,
    /// A named lock (`tc:L:<ns>:<name>`).
    NamedLock,
    /// A named lock's fencing counter (`tc:F:<ns>:{<slot tag>}<name>`), kept 30 days after the
    /// lock's last acquisition.
    FencingCounter,
    /// A running node's presence (`tc:n:<ns>:<node id>`).
    Presence,
    /// A record list of a layer above the cache (`tc:r:<ns>:<name>`), such as metrics history.
    Record,
}

impl KeyKind {
    /// Every kind, in the order listings show them.
    pub const ALL: [KeyKind; 10] = [
        KeyKind::Entry,
        KeyKind::Generation,
        KeyKind::Lease,
        KeyKind::TagVersion,
        KeyKind::ReplayStream,
        KeyKind::Epoch,
        KeyKind::NamedLock,
        KeyKind::FencingCounter,
        KeyKind::Presence,
        KeyKind::Record,
    ];

    /// A short name for listings (`entry`, `tag_version`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Entry => "entry",
            KeyKind::Generation => "generation",
            KeyKind::Lease => "lease",
            KeyKind::TagVersion => "tag_version",
            KeyKind::ReplayStream => "replay_stream",
            KeyKind::Epoch => "epoch",
            KeyKind::NamedLock => "named_lock",
            KeyKind::FencingCounter => "fencing_counter",
            KeyKind::Presence => "presence",
            KeyKind::Record => "record",
        }
    }

    /// Whether the key is cached data or its bookkeeping, which [`Admin::clear_namespace`] removes;
    /// presence keys and records describe the nodes rather than the cache, the epoch tells
    /// nodes whether Redis lost data (a clear is announced on the bus instead), and a fencing counter
    /// keeps a lock's tokens increasing without trusting Redis's clock: they stay.
    pub fn is_cache_data(self) -> bool {
        !matches!(
            self,
            KeyKind::Presence | KeyKind::Record | KeyKind::Epoch | KeyKind::FencingCounter
        )
    }
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Redis key of a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceKey {
    /// The Redis key.
    pub redis_key: String,
    /// What it holds.
    pub kind: KeyKind,
    /// The name inside it: the cache key for entries, generations and leases, the tag, the lock or
    /// record name, the node id of a presence key; empty for the replay stream.
    pub name: String,
}

impl Admin<'_> {
    /// Each key's value and time to live (`GET` and `PTTL`, one round trip), through the breaker:
    /// what the lease and presence reports read.
    pub(super) async fn values_with_ttl(
        &self,
        keys: &[NamespaceKey],
    ) -> Result<Vec<[redis::Value; 2]>, Error> {
        let names: Vec<&str> = keys.iter().map(|k| k.redis_key.as_str()).collect();
        let node = self.node();
        node.guarded(async {
            node.l2
                .redis
                .conn
                .get_with_ttl(&names)
                .await
                .map_err(Error::from)
        })
        .await
    }
}

/// `<len>.<namespace>`, the namespace as every key renders it.
pub(super) fn namespace_part(namespace: &str) -> String {
    let mut part = String::with_capacity(namespace.len() + 4);
    length_prefixed(&mut part, namespace);
    part
}

/// `text` with Redis glob characters escaped, so that it matches only itself in a `MATCH` pattern.
pub(super) fn glob_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `MATCH` patterns covering every key of a namespace: the entry family (entries, generations,
/// leases share `tc:{<ns>:`), the namespace's slot (tag versions, stream and epoch share
/// `tc:{<ns>}:`), and the kinds whose one-letter prefix comes before the namespace.
pub(super) fn patterns(namespace: &str) -> [String; 3] {
    let ns = glob_literal(&namespace_part(namespace));
    [
        format!("tc:{{{ns}:*"),
        format!("tc:{{{ns}}}:*"),
        format!("tc:[FLnr]:{ns}*"),
    ]
}

/// What `redis_key` is in `namespace`, if it is a key of that namespace at all.
pub(super) fn classify(namespace_part: &str, redis_key: &str) -> Option<NamespaceKey> {
    let found = |kind: KeyKind, name: &str| {
        Some(NamespaceKey {
            redis_key: redis_key.to_owned(),
            kind,
            name: name.to_owned(),
        })
    };
    if let Some(rest) = redis_key
        .strip_prefix("tc:{")
        .and_then(|r| r.strip_prefix(namespace_part))
        .and_then(|r| r.strip_prefix(':'))
    {
        // <len>.<key>}:<kind>, the key's length read from its prefix: the key may contain "}:d".
        let (len, rest) = rest.split_once('.')?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let len: usize = len.parse().ok()?;
        let key = rest.get(..len)?;
        let kind = match rest.get(len..)? {
            "}:d" | "}:v" => KeyKind::Entry,
            "}:g" => KeyKind::Generation,
            "}:l" => KeyKind::Lease,
            _ => return None,
        };
        return found(kind, key);
    }
    if let Some(rest) = redis_key
        .strip_prefix("tc:{")
        .and_then(|r| r.strip_prefix(namespace_part))
        .and_then(|r| r.strip_prefix("}:"))
    {
        return match rest {
            "s" => found(KeyKind::ReplayStream, ""),
            "e" => found(KeyKind::Epoch, ""),
            r => found(KeyKind::TagVersion, r.strip_prefix("t:")?),
        };
    }
    let (letter, rest) = redis_key.strip_prefix("tc:")?.split_at_checked(1)?;
    let rest = rest.strip_prefix(':')?.strip_prefix(namespace_part)?;
    match (letter, rest) {
        ("L", r) => found(KeyKind::NamedLock, r.strip_prefix(':')?),
        ("F", r) => {
            // :{<slot tag>}<name>; the tag has no `}`, and only one tag fits a name.
            let (_, name) = r.strip_prefix(":{")?.split_once('}')?;
            (!name.is_empty() && fencing_counter(namespace_part, name) == redis_key)
                .then_some(())
                .and_then(|()| found(KeyKind::FencingCounter, name))
        }
        ("r", r) => found(KeyKind::Record, r.strip_prefix(':')?),
        ("n", r) => {
            let id = r.strip_prefix(':')?;
            (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                .then_some(())
                .and_then(|()| found(KeyKind::Presence, id))
        }
        _ => None,
    }
}

impl Admin<'_> {
    /// Every Redis key of this node's namespace, sorted by kind and key, found with `SCAN` (never
    /// `KEYS`, which blocks Redis) and `MATCH` patterns built from the key layout. Keys of other
    /// namespaces and of other programs in the same database are never returned.
    ///
    /// A key created or removed while the scan runs may be missed or listed; every key present for the
    /// whole scan is listed once.
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// for key in cache.admin().scan_namespace().await? {
    ///     println!("{:<12} {}", key.kind, key.name);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn scan_namespace(&self) -> Result<Vec<NamespaceKey>, Error> {
        let mut found = self
            .scan_matching(&patterns(&self.config().namespace))
            .await?;
        found.sort_by(|a, b| (a.kind, &a.redis_key).cmp(&(b.kind, &b.redis_key)));
        found.dedup_by(|a, b| a.redis_key == b.redis_key);
        Ok(found)
    }

    /// The keys of this namespace matching any of `patterns`, unsorted.
    pub(super) async fn scan_matching(
        &self,
        patterns: &[String],
    ) -> Result<Vec<NamespaceKey>, Error> {
        let node = self.node();
        let part = namespace_part(&node.config.namespace);
        let mut found = Vec::new();
        let mut pages = node.l2.redis.conn.scan(patterns);
        while let Some(keys) = node
            .guarded(async { pages.next_page().await.map_err(Error::from) })
            .await?
        {
            found.extend(
                keys.iter()
                    .filter_map(|k| std::str::from_utf8(k).ok())
                    .filter_map(|k| classify(&part, k)),
            );
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySpace;

    /// Redis's glob, enough of it for the patterns above: `*`, `?`, `[...]` and `\` escapes.
    fn glob(pattern: &[u8], text: &[u8]) -> bool {
        match pattern.first() {
            None => text.is_empty(),
            Some(b'*') => (0..=text.len()).any(|i| glob(&pattern[1..], &text[i..])),
            Some(b'?') => !text.is_empty() && glob(&pattern[1..], &text[1..]),
            Some(b'[') => {
                let close = pattern
                    .iter()
                    .position(|b| *b == b']')
                    .expect("closed class");
                !text.is_empty()
                    && pattern[1..close].contains(&text[0])
                    && glob(&pattern[close + 1..], &text[1..])
            }
            Some(b'\\') => text.first() == pattern.get(1) && glob(&pattern[2..], &text[1..]),
            Some(c) => text.first() == Some(c) && glob(&pattern[1..], &text[1..]),
        }
    }

    fn matched(namespace: &str, key: &str) -> Option<NamespaceKey> {
        let any = patterns(namespace)
            .iter()
            .any(|p| glob(p.as_bytes(), key.as_bytes()));
        classify(&namespace_part(namespace), key).filter(|_| any)
    }

    #[test]
    fn every_key_the_layout_renders_is_found_with_its_kind_and_name() {
        for ns in ["demo", "a*b?[c]\\d", "x:y", "}{"] {
            let ks = KeySpace::new(ns, 1024);
            for key in ["k", "total:this_month@2025", "y}:d", "1.y}:g", "*"] {
                let e = ks.entry(key);
                for (redis_key, kind) in [
                    (e.entry.clone(), KeyKind::Entry),
                    (e.generation(), KeyKind::Generation),
                    (e.lease(), KeyKind::Lease),
                ] {
                    let got = matched(ns, &redis_key).expect("found");
                    assert_eq!((got.kind, got.name.as_str()), (kind, key), "{redis_key}");
                }
                let tag = matched(ns, &ks.tag(key)).expect("tag found");
                assert_eq!((tag.kind, tag.name.as_str()), (KeyKind::TagVersion, key));
                let lock = matched(ns, &ks.named_lock(key)).expect("lock found");
                assert_eq!((lock.kind, lock.name.as_str()), (KeyKind::NamedLock, key));
                let counter = matched(ns, &ks.fencing_counter(key)).expect("counter found");
                assert_eq!(
                    (counter.kind, counter.name.as_str()),
                    (KeyKind::FencingCounter, key)
                );
            }
            let stream = matched(ns, &ks.stream()).expect("stream found");
            assert_eq!(stream.kind, KeyKind::ReplayStream);
            let epoch = matched(ns, &ks.epoch()).expect("epoch found");
            assert_eq!(epoch.kind, KeyKind::Epoch);
            let part = namespace_part(ns);
            let presence = format!("tc:n:{part}:00ab00cd00ef0012");
            assert_eq!(
                matched(ns, &presence).expect("presence").kind,
                KeyKind::Presence
            );
            let record = format!("tc:r:{part}:metrics");
            assert_eq!(matched(ns, &record).expect("record").name, "metrics");
        }
    }

    #[test]
    fn keys_of_other_namespaces_and_programs_are_never_ours() {
        let ours = "ab";
        for other in ["a", "abc", "ab:c", "b", "2.ab", "AB"] {
            let ks = KeySpace::new(other, 1024);
            let e = ks.entry("k");
            for key in [
                e.entry.clone(),
                e.generation(),
                e.lease(),
                ks.tag("t"),
                ks.stream(),
                ks.named_lock("l"),
                ks.fencing_counter("l"),
                ks.channel(),
                ks.epoch(),
            ] {
                assert!(matched(ours, &key).is_none(), "{key} of {other:?}");
            }
        }
        for unrelated in [
            "tc:epoch",
            "tc:b:2.ab",
            "session:42",
            "tc:{2.ab:9.short}:d",
            "tc:{2.ab:1.k}:x",
            "tc:{2.ab:x.k}:d",
            "tc:n:2.ab:not-a-node-id",
            "tc:t:2.abc:tag",
            "tc:s:2.ab:",
            "tc:{2.ab}:x",
            "tc:{2.ab}:t",
            "tc:{2.ab}:b",
            "tc:{2.ab}:s:",
            "tc:F:2.ab:{x}l",
            "tc:F:2.ab:{tc:L:2.ab:l}",
            "tc:F:2.ab:l",
        ] {
            assert!(matched(ours, unrelated).is_none(), "{unrelated}");
        }
    }

    #[test]
    fn glob_characters_in_a_namespace_match_only_themselves() {
        let [entries, namespace_slot, _] = patterns("a*");
        assert!(glob(namespace_slot.as_bytes(), b"tc:{2.a*}:t:x"));
        assert!(!glob(namespace_slot.as_bytes(), b"tc:{2.ab}:t:x"));
        assert!(glob(entries.as_bytes(), b"tc:{2.a*:1.k}:d"));
        assert!(glob(entries.as_bytes(), b"tc:{2.a*:1.k}:v"));
        assert!(!glob(entries.as_bytes(), b"tc:{2.ab:1.k}:d"));
    }
}
