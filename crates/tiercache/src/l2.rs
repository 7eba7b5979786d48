//! L2: Redis. Every operation is one round trip: a Lua script (in `scripts/`) does the reads, checks and
//! writes that must happen together.
//!
//! The core's Redis commands go through this layer: entries here, the bus's stream and channel in
//! [`stream`], leases in [`leases`]. The bus and the locks say what they need; this module knows how it
//! is sent.

mod admin;
mod batch;
mod clock;
pub(crate) mod connection;
mod leases;
mod miss_forecast;
pub(crate) mod stream;

pub(crate) use stream::InvalidationBatch;

use connection::Connection;
pub(crate) use leases::HeldLease;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use redis::{Script, Value};

use crate::codec;
use crate::config::EntryLayout;
use crate::error::Error;
use crate::keys::{EntryKeys, KeySpace};
use crate::message::{with_filled_entry, FilledEntryRef, FILLED_ENTRY_UP_TO_BYTES};
use crate::wall_clock::now_ms;

/// Declares [`Scripts`]: a field for each named script, loaded from `scripts/<name>.lua`.
macro_rules! scripts {
    ($($name:ident),+ $(,)?) => {
        /// The Redis scripts, loaded once per node. `invoke_async` uses EVALSHA and falls back to
        /// EVAL after a script cache flush or a restart.
        pub(crate) struct Scripts {
            $($name: Script,)+
        }

        impl Scripts {
            fn new() -> Self {
                Scripts {
                    $($name: script(include_str!(concat!("scripts/", stringify!($name), ".lua"))),)+
                }
            }
        }
    };
}

scripts!(
    read,
    versions,
    store,
    put,
    invalidate,
    expire_tags,
    invalidate_keys,
    delete_stale,
    acquire,
    lock_acquire,
    release,
    extend,
    position,
);

/// Every script starts with `scripts/lib.lua`: the helpers that read bookkeeping and repair what
/// cannot be read.
fn script(body: &str) -> Script {
    Script::new(&[include_str!("scripts/lib.lua"), body].concat())
}

/// Whether Redis refused a command for what a key holds (a key of another type): the caller falls
/// back to a script that repairs it.
pub(crate) fn is_content_error(e: &redis::RedisError) -> bool {
    e.code().is_some_and(|code| code == "WRONGTYPE")
}

/// Whether `text` is a nonce as tiercache writes them (see `scripts/lib.lua`): 1 to 19 decimal
/// digits without a leading zero. Anything else in a generation, epoch or tag version is repaired.
pub(crate) fn is_nonce(text: &[u8]) -> bool {
    (1..=19).contains(&text.len()) && text[0] != b'0' && text.iter().all(u8::is_ascii_digit)
}

/// What was current in Redis when a load began; the store succeeds only if all of it still is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fence {
    /// The key's generation. A read that needs a fence creates it when missing, so a restart, flush
    /// or failover that loses it during the load makes the store refuse.
    pub(crate) generation: String,
    /// The version of each of the caller's tags, in the caller's order.
    pub(crate) tag_versions: Vec<String>,
}

/// What a read must bring back besides a fresh value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadNeed {
    /// A fresh value or nothing (`get`): a miss needs no fence.
    Value,
    /// A fresh value, or the fence to load one under (`get_or_load`); a hit needs no fence.
    ValueOrFence,
    /// The fence even on a hit: a refresh loads although the value is still fresh.
    Fence,
}

/// The outcome of reading one entry.
#[derive(Debug)]
pub(crate) struct ReadReply {
    /// The envelope when a valid entry exists.
    pub(crate) envelope: Option<Vec<u8>>,
    /// The tags the entry was stored with and their versions, ready for L1; `None` when there is no
    /// entry, or when a recorded version is not one this version of tiercache writes (the value must
    /// then not be kept in L1).
    pub(crate) recorded_tags: Option<L1Tags>,
    /// What a load must be fenced with; `None` only for a hit read without it ([`ReadNeed`]).
    pub(crate) fence: Option<Fence>,
    /// The caller's tags whose versions this read created; they must be announced.
    pub(crate) created_tags: Vec<(String, u64)>,
    /// The kinds of unreadable bookkeeping this read rewrote (letters, see `scripts/lib.lua`).
    pub(crate) repaired: String,
    /// What became of the lease the read was asked to take ([`LeaseAsk`]).
    pub(crate) lease: LeaseClaim,
    /// Whether the entry came in one `MGET` with other cold reads in flight.
    pub(crate) batched: bool,
    /// Whether the read skipped the hit read for the fenced one, recent cold reads having mostly
    /// missed ([`miss_forecast`]).
    pub(crate) fence_first: bool,
}

/// A lease a read takes for its caller when it finds no entry, so that a cold read's fence and lease
/// cost one round trip.
#[derive(Clone, Copy)]
pub(crate) struct LeaseAsk<'a> {
    /// Makes the caller's lease token; called only when the read goes as far as taking the lease,
    /// so an L2 hit pays nothing for it.
    pub(crate) token: &'a (dyn Fn() -> String + Sync),
    /// How long the lease lasts unless extended.
    pub(crate) lease: Duration,
}

/// A loaded value on its way to L2 ([`L2::store`]).
#[derive(Clone, Copy)]
pub(crate) struct LoadToStore<'a> {
    /// The encoded value.
    pub(crate) envelope: &'a [u8],
    /// How long Redis keeps it: logical TTL plus fail-safe grace.
    pub(crate) lifetime: Duration,
    /// The load's lease token, when it held the lease: released by the store.
    pub(crate) lease_token: Option<&'a str>,
    /// The bus message announcing the fill.
    pub(crate) announcement: &'a [u8],
}

/// What a read did about the lease it was asked to take.
#[derive(Debug, Default)]
pub(crate) enum LeaseClaim {
    /// Not taken: not asked, an entry exists, or the read went a way that does not take it. The
    /// caller takes it itself if it loads.
    #[default]
    NotTried,
    /// Taken: released on drop unless the caller takes the token out to load under it.
    Taken(HeldLease),
    /// Another holder has it: some node is loading the key.
    HeldElsewhere,
}

/// Pairs each tag with its version where the flag string says this call created it.
fn created_tags(tags: &[String], flags: &[u8], versions: &[String]) -> Vec<(String, u64)> {
    tags.iter()
        .zip(flags)
        .zip(versions)
        .filter(|((_, flag), _)| **flag == b'1')
        .filter_map(|((tag, _), v)| Some((tag.clone(), v.parse().ok()?)))
        .collect()
}

/// Renders tag keys and versions as the length-prefixed `t` field the scripts read.
pub(crate) fn render_recorded<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut out = String::new();
    for (key, version) in pairs {
        crate::keys::length_prefixed(&mut out, key);
        crate::keys::length_prefixed(&mut out, version);
    }
    out.into_bytes()
}

/// The (tag key, version) pairs of a `t` field, read in place. An item is `None` where the field is
/// malformed. Keys stay bytes and versions are parsed straight from them: a cold read walks this
/// twice per entry, so it does no UTF-8 validation it does not need.
struct RecordedPairs<'a> {
    rest: &'a [u8],
}

impl<'a> RecordedPairs<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        RecordedPairs { rest: bytes }
    }

    fn part(&mut self) -> Option<&'a [u8]> {
        let dot = self.rest.iter().position(|b| *b == b'.')?;
        let len = usize::try_from(parse_decimal(&self.rest[..dot])?).ok()?;
        let body_end = dot.checked_add(1)?.checked_add(len)?;
        let body = self.rest.get(dot + 1..body_end)?;
        self.rest = &self.rest[body_end..];
        Some(body)
    }
}

impl<'a> Iterator for RecordedPairs<'a> {
    type Item = Option<(&'a [u8], u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let pair = self
            .part()
            .zip(self.part())
            .and_then(|(key, version)| Some((key, parse_decimal(version)?)));
        if pair.is_none() {
            // Malformed from here on: report it once and stop.
            self.rest = &[];
        }
        Some(pair)
    }
}

/// Parses a recorded `t` field for the fuzz targets; how many pairs parsed.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn parse_recorded_for_fuzzing(bytes: &[u8]) -> usize {
    RecordedPairs::new(bytes).flatten().count()
}

/// A non-empty run of ASCII digits as a number; `None` for anything else or on overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        let digit = d.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// The tags an L1 copy of an entry is kept under, with the version each had when it was stored.
pub(crate) type L1Tags = Box<[(Arc<str>, u64)]>;

/// Pairs tag names with the versions an entry was written under; `None` when a version is not a
/// decimal number or one is missing, so the value must not be kept in L1 (an entry missing a tag
/// would not be reached by that tag's invalidation).
pub(crate) fn l1_tags(names: &[String], versions: &[String]) -> Option<L1Tags> {
    if names.len() != versions.len() {
        return None;
    }
    names
        .iter()
        .zip(versions)
        .map(|(name, version)| Some((Arc::from(name.as_str()), parse_decimal(version.as_bytes())?)))
        .collect()
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

fn text(v: Value) -> Option<String> {
    bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The tag frame of an entry read: layout 1's `t` field when there was one, else the frame inside
/// a layout-2 value; empty when neither holds one (a layout-2 value whose frame is broken fails
/// to decode later and is deleted then).
fn recorded_frame<'a>(t_field: Option<&'a [u8]>, envelope: &'a [u8]) -> &'a [u8] {
    t_field
        .or_else(|| codec::tag_frame(envelope))
        .unwrap_or_default()
}

/// The entry's slot as one read found it: the entry's fields, its generation and what the read did
/// about bookkeeping and the lease.
struct EntryRead {
    envelope: Option<Vec<u8>>,
    recorded: Option<Vec<u8>>,
    generation: String,
    repaired: String,
    lease: LeaseClaim,
}

/// Reads the replies of [`L2::entry_commands`] off `replies`; `token` is the lease token when the
/// script ran, `new_generation` the generation `SET NX GET` offered. `None` when the replies cannot
/// decide: NOSCRIPT after a restart or a script flush, an error the script raised, or a generation
/// that is not a nonce (the caller's script read repairs it).
fn entry_replies(
    replies: &mut impl Iterator<Item = Value>,
    held: Option<HeldLease>,
    new_generation: String,
) -> Option<EntryRead> {
    if let Some(held) = held {
        let Some(Value::Array(items)) = replies.next() else {
            return None;
        };
        return Some(scripted_read(items, Some(held)));
    }
    let (Some(fields), Some(generation)) = (replies.next(), replies.next()) else {
        return None;
    };
    let generation = match generation {
        // Missing: this read created it.
        Value::Nil => new_generation,
        other => text(other).filter(|g| is_nonce(g.as_bytes()))?,
    };
    let (envelope, recorded) = entry_fields(fields)?;
    Some(EntryRead {
        envelope,
        recorded,
        generation,
        repaired: String::new(),
        lease: LeaseClaim::NotTried,
    })
}

/// An entry's envelope and, in layout 1, its `t` field.
type EntryFields = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The reply of [`L2::entry_command`]: the envelope and, in layout 1, the `t` field (HMGET's two
/// fields; GET's one value in layout 2). `None` for an error reply, WRONGTYPE where the entry
/// belongs: the script read deletes it and reports it.
fn entry_fields(reply: Value) -> Option<EntryFields> {
    match reply {
        Value::Array(fields) => {
            let mut fields = fields.into_iter();
            Some((fields.next().and_then(bytes), fields.next().and_then(bytes)))
        }
        Value::ServerError(_) => None,
        value => Some((bytes(value), None)),
    }
}

/// `scripts/read.lua`'s reply: `{ envelope, t, generation, repaired, leased }`; `held` is the
/// lease it was asked to take, armed to be released unless the reply says it was not taken.
fn scripted_read(items: Vec<Value>, held: Option<HeldLease>) -> EntryRead {
    let mut it = items.into_iter();
    let envelope = it.next().and_then(bytes);
    let recorded = it.next().and_then(bytes);
    let generation = it.next().map(string).unwrap_or_default();
    let repaired = it.next().map(string).unwrap_or_default();
    let lease = match (held, it.next()) {
        (Some(held), Some(Value::Int(1))) => LeaseClaim::Taken(held),
        (held, leased) => {
            if let Some(held) = held {
                held.disarm();
            }
            if matches!(leased, Some(Value::Int(0))) {
                LeaseClaim::HeldElsewhere
            } else {
                LeaseClaim::NotTried
            }
        }
    };
    EntryRead {
        envelope,
        recorded,
        generation,
        repaired,
        lease,
    }
}

fn string(v: Value) -> String {
    text(v).unwrap_or_default()
}

/// A reply of a shape the cache did not ask for: a Redis (parse) error, not an unavailable cache.
pub(crate) fn unexpected(what: &str, v: &Value) -> Error {
    Error::Redis(redis::RedisError::from((
        redis::ErrorKind::Parse,
        "unexpected reply from a tiercache script",
        format!("{what}: {v:?}"),
    )))
}

/// A random 63-bit nonce rendered in decimal: generations, tag versions, epochs and lease tokens.
pub(crate) fn nonce() -> u64 {
    rand::random::<u64>() >> 1 | 1
}

/// What `scripts/versions.lua` answered ([`L2::tag_versions`]).
#[derive(Default)]
struct TagVersions {
    /// The caller's tags' versions, then the recorded keys' current versions ('' when missing).
    current: Vec<String>,
    /// The caller's tags whose versions this call wrote; they must be announced.
    created: Vec<(String, u64)>,
    /// The kinds of unreadable bookkeeping it rewrote.
    repaired: String,
}

/// A `set` made ready by [`L2::prepare_put`]: its tags' versions and the entry to write.
pub(crate) struct Put {
    /// The version of each tag, in the caller's order.
    pub(crate) versions: Vec<String>,
    /// The tags whose versions this preparation wrote; they must be announced.
    pub(crate) created: Vec<(String, u64)>,
    /// The kinds of unreadable bookkeeping it rewrote.
    pub(crate) repaired: String,
    /// The entry, as this node's layout stores it.
    pub(crate) write: EntryWrite,
}

/// An entry as a `set` writes it: by [`L2::put`], or on one server inside the bus's batch
/// (`scripts/invalidate.lua` deletes the key's entries in both layouts, bumps its generation, then
/// writes this), so the value and its announcement reach Redis in one script call.
pub(crate) struct EntryWrite {
    /// The stored value: format 1 in layout 1, format 2 (tags framed inside) in layout 2.
    pub(crate) value: Vec<u8>,
    /// Layout 1's `t` field: the recorded tag versions.
    pub(crate) recorded: Vec<u8>,
    /// The entry's lifetime in Redis, ms.
    pub(crate) lifetime_ms: u64,
}

impl std::fmt::Debug for EntryWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryWrite")
            .field("value_bytes", &self.value.len())
            .field("lifetime_ms", &self.lifetime_ms)
            .finish_non_exhaustive()
    }
}

/// A script's answer, with the kinds of unreadable bookkeeping it rewrote on the way (letters, see
/// `scripts/lib.lua`), which the node counts and logs.
pub(crate) struct Repaired<T> {
    pub(crate) value: T,
    pub(crate) repaired: String,
}

/// Tries of a scripted read whose entry's tags moved on between its two steps; see
/// [`L2::read_scripted`].
const SCRIPTED_READ_TRIES: u32 = 3;

/// Whether this node vouches that a tag is still at a version; see [`L2::read`].
pub(crate) type Vouched<'a> = dyn Fn(&str, u64) -> Option<Arc<str>> + Sync + 'a;

/// A fast path's outcome, with a key of the wrong type read as undecided (`None`): the script the
/// caller falls back to repairs it.
fn inconclusive<R>(read: Result<Option<R>, Error>) -> Result<Option<R>, Error> {
    match read {
        Err(Error::Redis(e)) if is_content_error(&e) => Ok(None),
        other => other,
    }
}

/// The L2 tier of one node.
pub(crate) struct L2 {
    pub(crate) conn: Connection,
    pub(crate) keys: KeySpace,
    scripts: Scripts,
    /// Concurrent cold reads sharing `MGET`s (layout 2 on one server).
    batches: batch::ReadBatches,
    /// Whether a `get_or_load`'s cold read goes to the fenced read first.
    misses: miss_forecast::MissForecast,
    /// How long a generation outlives its invalidation; loads longer than this are never stored.
    pub(crate) generation_ttl: Duration,
    /// The replay stream's approximate cap (`XADD MAXLEN ~`).
    stream_max_len: u64,
    /// Whether replicas must acknowledge invalidations, and how; `None` when none must.
    pub(crate) acks: Option<ReplicaAcks>,
    /// Redis's clock as this node last read it: the deadlines of writes are on it.
    clock: clock::RedisClock,
    /// How long a caller waits for a write (the response timeout): past that, on Redis's clock, the
    /// write is refused.
    write_waits: Duration,
}

/// How invalidations wait for replicas ([`crate::Config::replica_acks`]).
pub(crate) struct ReplicaAcks {
    /// The connection invalidations are written and waited for on. `WAIT` holds the connection it is
    /// sent on until the replicas answer, and every other command of the node shares `L2::conn`; the
    /// outbox sends one batch at a time, so it may wait on a connection of its own without slowing
    /// anything else.
    pub(crate) conn: Connection,
    /// How many replicas must acknowledge each part of an invalidation (at least 1).
    pub(crate) replicas: u32,
    /// How long an invalidation waits for them.
    pub(crate) wait: Duration,
}

impl ReplicaAcks {
    /// What `config` asks for: `None` when no replica need acknowledge, else a connection of its own
    /// from `client`.
    pub(crate) fn for_config(
        client: &connection::RedisClient,
        config: &crate::config::Config,
    ) -> Result<Option<ReplicaAcks>, Error> {
        Ok(match config.replica_acks() {
            0 => None,
            replicas => Some(ReplicaAcks {
                conn: client.connection(config)?,
                replicas,
                // Well inside the response timeout, so a shard left without replicas (its old
                // master died and has not come back) slows invalidations down instead of failing
                // them.
                wait: config.response_timeout / 4,
            }),
        })
    }
}

/// How an [`L2`] writes: the settings beyond the connection and the key space.
pub(crate) struct L2Settings {
    /// How long a generation outlives its invalidation; loads longer than this are never stored.
    pub(crate) generation_ttl: Duration,
    /// The replay stream's approximate cap.
    pub(crate) stream_max_len: u64,
    /// Whether and how replicas must acknowledge invalidations.
    pub(crate) acks: Option<ReplicaAcks>,
    /// How long a caller waits for a write (the response timeout).
    pub(crate) write_waits: Duration,
}

impl L2 {
    pub(crate) fn new(conn: Connection, keys: KeySpace, settings: L2Settings) -> Self {
        L2 {
            conn,
            keys,
            scripts: Scripts::new(),
            batches: batch::ReadBatches::default(),
            misses: miss_forecast::MissForecast::default(),
            generation_ttl: settings.generation_ttl,
            stream_max_len: settings.stream_max_len,
            acks: settings.acks,
            clock: clock::RedisClock::default(),
            write_waits: settings.write_waits,
        }
    }

    /// Reads an entry with its validity and the fence for a load with `tags` (the tags the caller
    /// stores under; empty for a plain `get`): the pipelined fast path when it is conclusive, the
    /// script otherwise.
    ///
    /// `vouched(tag, version)` is `Some(tag)` (the node's own copy of the name) when this node can
    /// vouch, from what the bus told it, that `tag` is still at `version`. It lets a read accept an
    /// entry whose recorded tags the caller did not name, under the same rule that lets an L1 entry be
    /// served, without fetching their versions.
    pub(crate) async fn read(
        &self,
        entry: &EntryKeys,
        tags: &[String],
        need: ReadNeed,
        vouched: &Vouched<'_>,
        lease: Option<LeaseAsk<'_>>,
    ) -> Result<ReadReply, Error> {
        let fence_first = need == ReadNeed::ValueOrFence && self.misses.likely();
        if need != ReadNeed::Fence && !fence_first {
            let hit = inconclusive(self.read_hit(entry, need, vouched).await)?;
            if need == ReadNeed::ValueOrFence {
                self.misses.record(hit.is_none());
            }
            if let Some(reply) = hit {
                return Ok(reply);
            }
        }
        let mut reply = self.read_fenced(entry, tags, vouched, lease).await?;
        if fence_first {
            self.misses.record(reply.envelope.is_none());
            reply.fence_first = true;
        }
        Ok(reply)
    }

    /// The read that brings the fence: pipelined when it can decide alone, else scripted.
    async fn read_fenced(
        &self,
        entry: &EntryKeys,
        tags: &[String],
        vouched: &Vouched<'_>,
        lease: Option<LeaseAsk<'_>>,
    ) -> Result<ReadReply, Error> {
        let claim = match self.read_pipelined(entry, tags, vouched, lease).await {
            Ok(Ok(reply)) => return Ok(reply),
            Ok(Err(claim)) => claim,
            // Nothing was taken that the error did not drop (and so release).
            Err(e) => inconclusive::<()>(Err(e)).map(|_| LeaseClaim::NotTried)?,
        };
        // The lease, if the pipelined read took it, stays the caller's.
        let mut reply = self.read_scripted(entry, tags).await?;
        reply.lease = claim;
        Ok(reply)
    }

    /// The common case in one command, as cheap as a plain `GET`: `HMGET` the entry alone. Conclusive
    /// when the entry is unexpired and the node vouches for every tag it recorded, or (for
    /// [`ReadNeed::Value`]) when there is no entry. `None` otherwise: the fence, an expired value or a
    /// tag check in Redis is needed, and the caller reads again in full.
    async fn read_hit(
        &self,
        entry: &EntryKeys,
        need: ReadNeed,
        vouched: &Vouched<'_>,
    ) -> Result<Option<ReadReply>, Error> {
        let (reply, batched) = if self.reads_many_at_once() {
            let fetched = self.batches.get(&self.conn, &entry.entry).await?;
            (fetched.value, fetched.shared)
        } else {
            let reply: Value = self
                .entry_command(entry)
                .query_async(&mut self.conn.clone())
                .await?;
            (reply, false)
        };
        Ok(self.hit_of(reply, batched, need, vouched))
    }

    /// Whether [`Self::read_hits`] can read many entries in one command: entry layout 2 on one
    /// server (a layout-1 entry is a hash, and on a cluster every entry is in a slot of its own).
    pub(crate) fn reads_many_at_once(&self) -> bool {
        self.keys.layout() == EntryLayout::String && !self.conn.is_cluster()
    }

    /// [`Self::read_hit`] of many entries in one round trip (`MGET`, split as the batches split
    /// theirs), for a caller that has them all at hand: each entry's conclusive hit, or `None`
    /// where the entry needs the full read. Only where [`Self::reads_many_at_once`].
    pub(crate) async fn read_hits(
        &self,
        entries: &[EntryKeys],
        vouched: &Vouched<'_>,
    ) -> Result<Vec<Option<ReadReply>>, Error> {
        let keys: Vec<&str> = entries.iter().map(|e| e.entry.as_str()).collect();
        let replies = self.batches.get_many(&self.conn, &keys).await?;
        Ok(replies
            .into_iter()
            .map(|reply| {
                let hit = self.hit_of(reply, true, ReadNeed::ValueOrFence, vouched);
                self.misses.record(hit.is_none());
                hit
            })
            .collect())
    }

    /// What a hit read's reply decides: the entry when it is unexpired and every tag it recorded is
    /// one the node vouches for, nothing found (for [`ReadNeed::Value`]), or `None`: undecided.
    fn hit_of(
        &self,
        reply: Value,
        batched: bool,
        need: ReadNeed,
        vouched: &Vouched<'_>,
    ) -> Option<ReadReply> {
        let (envelope, recorded) = entry_fields(reply)?;
        let Some(envelope) = envelope else {
            return (need == ReadNeed::Value).then(|| ReadReply {
                envelope: None,
                recorded_tags: None,
                fence: None,
                created_tags: Vec::new(),
                repaired: String::new(),
                lease: LeaseClaim::NotTried,
                batched,
                fence_first: false,
            });
        };
        // An expired value is served only as stale, after a load attempt that needs the fence.
        let unexpired = codec::decode_header(&envelope, usize::MAX)
            .is_ok_and(|(header, _)| header.expires_at_ms > now_ms());
        if !unexpired {
            return None;
        }
        let recorded = recorded_frame(recorded.as_deref(), &envelope);
        let recorded_tags = self.current_tags(recorded, |_, tag, v| vouched(tag, v))?;
        Some(ReadReply {
            envelope: Some(envelope),
            recorded_tags: Some(recorded_tags),
            fence: None,
            created_tags: Vec::new(),
            repaired: String::new(),
            lease: LeaseClaim::NotTried,
            batched,
            fence_first: false,
        })
    }

    /// One pipelined round trip without Lua: `HMGET` the entry, take its generation (`SET NX GET`
    /// creates it when missing) and `MGET` the caller's tag versions, and check validity here.
    /// Pipelined commands are not atomic, but the order keeps it sound: the entry is read before the
    /// versions, so a version changed in between makes the entry look invalid, never a stale entry
    /// look valid; and a miss's fence is checked again by the store script. On a cluster the tag
    /// versions live in the namespace's slot: a second round trip, after the first.
    ///
    /// `None` when it cannot decide alone: the entry recorded a tag that neither the caller named nor
    /// the node vouches for, a recorded version no longer matches (the script deletes the entry), or a
    /// miss needs versions created, or a generation or version is unreadable (the script repairs it).
    async fn read_pipelined(
        &self,
        entry: &EntryKeys,
        tags: &[String],
        vouched: &Vouched<'_>,
        lease: Option<LeaseAsk<'_>>,
    ) -> Result<Result<ReadReply, LeaseClaim>, Error> {
        let tag_keys: Vec<String> = tags.iter().map(|t| self.keys.tag(t)).collect();
        let new_generation = nonce().to_string();
        // Armed before the script is sent: if this call is dropped or fails with the lease taken,
        // the lease is released, not left for the fleet to wait out.
        let held = lease.map(|ask| {
            let token = (ask.token)();
            (HeldLease::armed(self, entry.lease(), token), ask.lease)
        });
        let entry_part = self.entry_commands(
            entry,
            &new_generation,
            held.as_ref().map(|(held, lease)| (held.token(), *lease)),
        );
        let mut tag_part = redis::pipe();
        if !tag_keys.is_empty() {
            tag_part.cmd("MGET").arg(&tag_keys);
        }
        let replies = self
            .conn
            .pipelines_in_order(vec![entry_part, tag_part])
            .await?;
        let mut it = replies.into_iter();
        let Some(read) = entry_replies(&mut it, held.map(|(held, _)| held), new_generation) else {
            return Ok(Err(LeaseClaim::NotTried));
        };
        let versions: Vec<Option<String>> = match it.next() {
            Some(Value::Array(versions)) => versions.into_iter().map(text).collect(),
            None => Vec::new(),
            Some(_) => return Ok(Err(read.lease)),
        };
        if versions.len() != tag_keys.len() {
            return Ok(Err(read.lease));
        }
        let Some(tag_versions) = versions
            .into_iter()
            .map(|v| v.filter(|v| is_nonce(v.as_bytes())))
            .collect::<Option<Vec<String>>>()
        else {
            return Ok(Err(read.lease));
        };
        let EntryRead {
            envelope,
            recorded,
            generation,
            repaired,
            lease,
        } = read;
        let fence = Fence {
            generation,
            tag_versions,
        };
        let Some(envelope) = envelope else {
            return Ok(Ok(ReadReply {
                envelope: None,
                recorded_tags: None,
                fence: Some(fence),
                created_tags: Vec::new(),
                repaired,
                lease,
                batched: false,
                fence_first: false,
            }));
        };
        let current =
            |key: &str, tag: &str, version: u64| match tag_keys.iter().position(|k| k == key) {
                Some(i) => (parse_decimal(fence.tag_versions[i].as_bytes()) == Some(version))
                    .then(|| Arc::from(tag)),
                None => vouched(tag, version),
            };
        let Some(recorded_tags) =
            self.current_tags(recorded_frame(recorded.as_deref(), &envelope), current)
        else {
            return Ok(Err(lease));
        };
        Ok(Ok(ReadReply {
            envelope: Some(envelope),
            recorded_tags: Some(recorded_tags),
            fence: Some(fence),
            created_tags: Vec::new(),
            repaired,
            lease,
            batched: false,
            fence_first: false,
        }))
    }

    /// The command that reads an entry of this node's layout: `GET` of the string (layout 2), or
    /// `HMGET` of its `d` and `t` fields (layout 1). [`entry_fields`] reads its reply.
    fn entry_command(&self, entry: &EntryKeys) -> redis::Cmd {
        let mut cmd;
        match self.keys.layout() {
            EntryLayout::Hash => {
                cmd = redis::cmd("HMGET");
                cmd.arg(&entry.entry).arg("d").arg("t");
            }
            EntryLayout::String => {
                cmd = redis::cmd("GET");
                cmd.arg(&entry.entry);
            }
        }
        cmd
    }

    /// The commands of a pipelined read in the entry's slot: `HMGET` the entry and `SET NX GET` its
    /// generation; or, when the read takes the lease (`lease`: token and duration), `scripts/read.lua`
    /// as `EVALSHA`, which does the same and takes the lease when there is no entry.
    fn entry_commands(
        &self,
        entry: &EntryKeys,
        new_generation: &str,
        lease: Option<(&str, Duration)>,
    ) -> redis::Pipeline {
        let mut part = redis::pipe();
        let generation_ttl = self.generation_ttl.as_millis() as u64;
        if let Some((token, lease)) = lease {
            part.invoke_script(
                self.scripts
                    .read
                    .key(&entry.entry)
                    .key(entry.generation())
                    .key(entry.lease())
                    .arg(new_generation)
                    .arg(generation_ttl)
                    .arg(token)
                    .arg(lease.as_millis().max(1) as u64),
            );
        } else {
            part.add_command(self.entry_command(entry));
            part.cmd("SET")
                .arg(entry.generation())
                .arg(new_generation)
                .arg("NX")
                .arg("GET")
                .arg("PX")
                .arg(generation_ttl);
        }
        part
    }

    /// A recorded tag version key and the tag it names; `None` if it is not a tag of this namespace.
    fn tag_of<'k>(&self, key: &'k [u8]) -> Option<(&'k str, &'k str)> {
        let key = std::str::from_utf8(key).ok()?;
        Some((key, self.keys.tag_name(key)?))
    }

    /// The tags an entry recorded, ready for L1, when `vouched` vouches for every one of them: the
    /// check a hit read makes, for an entry that came another way (a filled notice).
    pub(crate) fn vouched_tags(
        &self,
        t_field: Option<&[u8]>,
        value: &[u8],
        vouched: &Vouched<'_>,
    ) -> Option<L1Tags> {
        self.current_tags(recorded_frame(t_field, value), |_, tag, v| vouched(tag, v))
    }

    /// The entry's recorded tags by name, if `current(redis_key, tag, version)` vouches for every one;
    /// `None` when one is not current, is not a tag of this namespace, or the field is malformed.
    fn current_tags(
        &self,
        recorded: &[u8],
        current: impl Fn(&str, &str, u64) -> Option<Arc<str>>,
    ) -> Option<L1Tags> {
        // Counted first so the slice is allocated once, at its final size.
        let mut tags = Vec::with_capacity(RecordedPairs::new(recorded).count());
        for pair in RecordedPairs::new(recorded) {
            let (key, version) = pair?;
            let (key, tag) = self.tag_of(key)?;
            tags.push((current(key, tag, version)?, version));
        }
        Some(tags.into_boxed_slice())
    }

    /// The script read, in two steps because the entry and the tag versions live in different slots
    /// on a cluster: `scripts/read.lua` reads the entry and its generation (creating or rewriting the
    /// generation), then `scripts/versions.lua` reads the versions the entry recorded and those of
    /// the caller's tags (creating missing ones for the fence). An entry whose tags moved on, or whose
    /// `t` field names anything but this namespace's tags, is deleted (fail closed).
    ///
    /// An entry read in the first step whose recorded versions moved on by the second was valid a
    /// moment before: a write that bumps its tags may have replaced it in the same step (see
    /// `Cache::invalidate_tags_and_set`). The read is then made again, a few times at most, so a
    /// reader racing such a replacement finds the new entry instead of a miss.
    async fn read_scripted(&self, entry: &EntryKeys, tags: &[String]) -> Result<ReadReply, Error> {
        let mut tries = 0;
        // What earlier tries created or repaired must still be announced and counted.
        let mut created = Vec::new();
        let mut repaired = String::new();
        loop {
            let (mut reply, moved_on) = self.read_scripted_once(entry, tags).await?;
            tries += 1;
            if !moved_on || tries >= SCRIPTED_READ_TRIES {
                created.append(&mut reply.created_tags);
                reply.created_tags = created;
                repaired.push_str(&reply.repaired);
                reply.repaired = repaired;
                return Ok(reply);
            }
            created.append(&mut reply.created_tags);
            repaired.push_str(&reply.repaired);
        }
    }

    /// One try of [`L2::read_scripted`], and whether the entry it found had its tags move on
    /// between its two steps.
    async fn read_scripted_once(
        &self,
        entry: &EntryKeys,
        tags: &[String],
    ) -> Result<(ReadReply, bool), Error> {
        let reply: Value = self
            .scripts
            .read
            .key(&entry.entry)
            .key(entry.generation())
            .arg(nonce())
            .arg(self.generation_ttl.as_millis() as u64)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let Value::Array(items) = reply else {
            return Err(unexpected("read", &reply));
        };
        let EntryRead {
            envelope,
            recorded: t_field,
            generation,
            mut repaired,
            ..
        } = scripted_read(items, None);
        let recorded = envelope
            .as_deref()
            .map_or(&[][..], |e| recorded_frame(t_field.as_deref(), e));
        // The recorded (tag key, version) pairs, if the field parses and names only this namespace's
        // tags; their versions are checked below.
        let recorded_pairs: Option<Vec<(&str, &str, u64)>> = RecordedPairs::new(recorded)
            .map(|pair| {
                let (key, version) = pair?;
                let (key, tag) = self.tag_of(key)?;
                Some((key, tag, version))
            })
            .collect();
        let recorded_keys: &[(&str, &str, u64)] = recorded_pairs.as_deref().unwrap_or(&[]);
        let tag_keys: Vec<String> = tags.iter().map(|t| self.keys.tag(t)).collect();
        let recorded_only: Vec<&str> = recorded_keys.iter().map(|(k, _, _)| *k).collect();
        // Until the load's store lengthens them to the entry's lifetime, the versions must outlive
        // the load, which the generation bounds.
        let versions = self
            .tag_versions(tags, &tag_keys, &recorded_only, self.generation_ttl)
            .await?;
        repaired.push_str(&versions.repaired);
        let (tag_versions, recorded_current) = versions.current.split_at(tag_keys.len());
        let created_tags = versions.created;
        let valid = envelope.is_some()
            && recorded_pairs.is_some()
            && recorded_keys
                .iter()
                .zip(recorded_current)
                .all(|((_, _, version), now)| parse_decimal(now.as_bytes()) == Some(*version));
        if envelope.is_some() && !valid {
            // Only if it still records what was checked: a value stored since must stay. Layout 2
            // keeps the tags inside the value, so the whole value is what was checked.
            let checked = match self.keys.layout() {
                EntryLayout::Hash => recorded,
                EntryLayout::String => envelope.as_deref().unwrap_or_default(),
            };
            let _: i64 = self
                .scripts
                .delete_stale
                .key(&entry.entry)
                .arg(checked)
                .invoke_async(&mut self.conn.clone())
                .await?;
        }
        let moved_on = envelope.is_some() && recorded_pairs.is_some() && !valid;
        let recorded_tags = valid.then(|| {
            recorded_keys
                .iter()
                .map(|(_, tag, version)| (Arc::from(*tag), *version))
                .collect()
        });
        let reply = ReadReply {
            envelope: if valid { envelope } else { None },
            recorded_tags,
            fence: Some(Fence {
                generation,
                tag_versions: tag_versions.to_vec(),
            }),
            created_tags,
            repaired,
            lease: LeaseClaim::NotTried,
            batched: false,
            fence_first: false,
        };
        Ok((reply, moved_on))
    }

    /// The versions of `tags` (their keys `tag_keys`, created where missing or unreadable) and then
    /// the current versions of `recorded` (tag keys an entry recorded, read as they are), through
    /// `scripts/versions.lua` in the namespace's slot. No round trip when both are empty. The
    /// versions of `tags` live at least `lifetime` (and a generation's lifetime) from now: every
    /// tag version expires, so tags nobody uses any more leave Redis.
    async fn tag_versions(
        &self,
        tags: &[String],
        tag_keys: &[String],
        recorded: &[&str],
        lifetime: Duration,
    ) -> Result<TagVersions, Error> {
        if tag_keys.is_empty() && recorded.is_empty() {
            return Ok(TagVersions::default());
        }
        let mut call = self.scripts.versions.prepare_invoke();
        call.arg(tag_keys.len())
            .arg(lifetime.max(self.generation_ttl).as_millis() as u64);
        for key in tag_keys {
            call.key(key).arg(nonce());
        }
        for key in recorded {
            call.key(*key);
        }
        let reply: Vec<Value> = call.invoke_async(&mut self.conn.clone()).await?;
        let mut it = reply.into_iter();
        let flags = it.next().and_then(bytes).unwrap_or_default();
        let repaired = it.next().map(string).unwrap_or_default();
        let current: Vec<String> = it.map(string).collect();
        if current.len() != tag_keys.len() + recorded.len() {
            return Err(unexpected("versions", &Value::Nil));
        }
        Ok(TagVersions {
            created: created_tags(tags, &flags, &current[..tag_keys.len()]),
            current,
            repaired,
        })
    }

    /// Stores an entry if `fence` still holds, releases the load's lease (`lease_token`, if it held
    /// one) and, when stored, publishes `announcement` on the bus: inside the script on a server, one
    /// round trip for all three; after it on a cluster, whose channel lives in another slot. Returns
    /// whether it was stored.
    pub(crate) async fn store(
        &self,
        entry: &EntryKeys,
        tags: &[String],
        fence: &Fence,
        load: &LoadToStore<'_>,
    ) -> Result<bool, Error> {
        let LoadToStore {
            envelope,
            lifetime,
            lease_token,
            announcement,
        } = *load;
        let tag_keys: Vec<String> = tags.iter().map(|t| self.keys.tag(t)).collect();
        let recorded = render_recorded(
            tag_keys
                .iter()
                .map(String::as_str)
                .zip(fence.tag_versions.iter().map(String::as_str)),
        );
        let lease = entry.lease();
        // On a cluster the tag versions are in the namespace's slot: checked first, one round trip.
        // A tag invalidated between that check and the store leaves an entry recording the old
        // version, which every read then finds stale.
        let cluster = self.conn.is_cluster();
        if cluster && !tag_keys.is_empty() {
            let current: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&tag_keys)
                .query_async(&mut self.conn.clone())
                .await?;
            let unchanged = current.len() == fence.tag_versions.len()
                && current
                    .iter()
                    .zip(&fence.tag_versions)
                    .all(|(now, then)| now.as_deref() == Some(then.as_str()));
            if !unchanged {
                if let Some(token) = lease_token {
                    self.release_lease(&lease, token).await?;
                }
                return Ok(false);
            }
        }
        let value = self.entry_value(envelope, &recorded)?;
        // A small entry rides on the notice, so other nodes' waiters need not read Redis for it.
        let with_entry;
        let t_field = (self.keys.layout() == EntryLayout::Hash).then_some(&recorded[..]);
        let carried = value.len() + t_field.map_or(0, <[u8]>::len);
        let announcement = if carried <= FILLED_ENTRY_UP_TO_BYTES {
            let entry = FilledEntryRef {
                value: &value,
                recorded: t_field,
                generation: &fence.generation,
            };
            with_entry = with_filled_entry(announcement, &entry);
            &with_entry[..]
        } else {
            announcement
        };
        let mut call = self.scripts.store.prepare_invoke();
        call.key(&entry.entry).key(entry.generation()).key(&lease);
        call.arg(&fence.generation)
            .arg(&*value)
            .arg(recorded)
            .arg(lifetime.as_millis().max(1) as u64)
            .arg(lease_token.unwrap_or(""));
        if cluster {
            call.arg("").arg("");
        } else {
            call.arg(self.keys.channel()).arg(announcement);
            for (key, version) in tag_keys.iter().zip(&fence.tag_versions) {
                call.key(key).arg(version);
            }
        }
        let stored = call.invoke_async::<i64>(&mut self.conn.clone()).await? == 1;
        if stored && cluster {
            // The value is stored whatever becomes of the announcement: it only wakes other nodes'
            // waiters early, and they poll anyway.
            if let Err(e) = self.publish(announcement).await {
                tracing::debug!(error = %e, "fill not announced");
            }
            if !tag_keys.is_empty() {
                let mut call = self.scripts.expire_tags.prepare_invoke();
                for key in &tag_keys {
                    call.key(key);
                }
                call.arg(lifetime.as_millis().max(1) as u64);
                if let Err(e) = call.invoke_async::<i64>(&mut self.conn.clone()).await {
                    // Fails closed: a version that expires before the entry makes it a miss.
                    tracing::debug!(error = %e, "tag versions' lives not lengthened");
                }
            }
        }
        Ok(stored)
    }

    /// Makes a `set` of `envelope` under `tags` ready to write: reads (and creates where missing) the
    /// tags' versions, one round trip when there are tags, none otherwise. Takes the envelope so
    /// that layout 1, which stores it as it is, keeps it without a copy.
    pub(crate) async fn prepare_put(
        &self,
        tags: &[String],
        envelope: Vec<u8>,
        lifetime: Duration,
    ) -> Result<Put, Error> {
        let tag_keys: Vec<String> = tags.iter().map(|t| self.keys.tag(t)).collect();
        let TagVersions {
            current: versions,
            created,
            repaired,
        } = self.tag_versions(tags, &tag_keys, &[], lifetime).await?;
        let mut put = self.render_put(tags, versions, envelope, lifetime)?;
        put.created = created;
        put.repaired = repaired;
        Ok(put)
    }

    /// Makes several `set`s ready to write with one read of all their tags' versions (created
    /// where missing). A tag named in `fixed` is recorded at the version given there instead,
    /// unread: the version the same batch gives it (see `Op::InvalidateTagTo`). Each entry is
    /// `(tags, envelope, lifetime)`; each answer is its write, or why it cannot be written. The
    /// tags whose versions this read created, and what it repaired, come with the first answer.
    pub(crate) async fn prepare_puts(
        &self,
        entries: Vec<(&[String], Vec<u8>, Duration)>,
        fixed: &[(String, u64)],
    ) -> Result<Vec<Result<Put, Error>>, Error> {
        let mut read: Vec<String> = entries
            .iter()
            .flat_map(|(tags, _, _)| tags.iter())
            .filter(|t| !fixed.iter().any(|(f, _)| f == *t))
            .cloned()
            .collect();
        read.sort_unstable();
        read.dedup();
        let longest = entries
            .iter()
            .map(|(_, _, lifetime)| *lifetime)
            .max()
            .unwrap_or_default();
        let read_keys: Vec<String> = read.iter().map(|t| self.keys.tag(t)).collect();
        let TagVersions {
            current,
            mut created,
            mut repaired,
        } = self.tag_versions(&read, &read_keys, &[], longest).await?;
        let mut known: std::collections::HashMap<&str, String> =
            read.iter().map(String::as_str).zip(current).collect();
        for (tag, version) in fixed {
            known.insert(tag, version.to_string());
        }
        let mut out = Vec::with_capacity(entries.len());
        for (tags, envelope, lifetime) in entries {
            let versions = tags
                .iter()
                .map(|t| known.get(t.as_str()).cloned().unwrap_or_default())
                .collect();
            let mut put = self.render_put(tags, versions, envelope, lifetime);
            if let Ok(put) = &mut put {
                put.created = std::mem::take(&mut created);
                put.repaired = std::mem::take(&mut repaired);
            }
            out.push(put);
        }
        Ok(out)
    }

    /// A `set`'s write of `envelope` recording `versions` for `tags` (in their order).
    fn render_put(
        &self,
        tags: &[String],
        versions: Vec<String>,
        envelope: Vec<u8>,
        lifetime: Duration,
    ) -> Result<Put, Error> {
        let tag_keys: Vec<String> = tags.iter().map(|t| self.keys.tag(t)).collect();
        let recorded = render_recorded(
            tag_keys
                .iter()
                .map(String::as_str)
                .zip(versions.iter().map(String::as_str)),
        );
        let value = match self.entry_value(&envelope, &recorded)? {
            Cow::Borrowed(_) => envelope,
            Cow::Owned(framed) => framed,
        };
        Ok(Put {
            versions,
            created: Vec::new(),
            repaired: String::new(),
            write: EntryWrite {
                value,
                recorded,
                lifetime_ms: lifetime.as_millis().max(1) as u64,
            },
        })
    }

    /// Writes an entry under a new generation (`scripts/put.lua`), deleting the other layout's copy:
    /// a `set` on a cluster, where the entry's slot is not the bus's. `false` when the write reached
    /// Redis after its deadline, when its caller had stopped waiting (see [`clock`]): the key's
    /// generation is new and its copies are gone, but the value was not written.
    pub(crate) async fn put(&self, entry: &EntryKeys, write: &EntryWrite) -> Result<bool, Error> {
        let written: i64 = self
            .scripts
            .put
            .key(&entry.entry)
            .key(entry.generation())
            .key(entry.other_layout())
            .arg(nonce())
            .arg(self.generation_ttl.as_millis() as u64)
            .arg(&write.value)
            .arg(&write.recorded)
            .arg(write.lifetime_ms)
            .arg(self.write_deadline_ms())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(written == 1)
    }

    /// The deadline, on Redis's clock (ms; 0 for none), of a write sent now.
    fn write_deadline_ms(&self) -> u64 {
        self.clock
            .deadline_ms(crate::message::now_micros(), self.write_waits)
    }

    /// What an entry of this node's layout stores for `envelope` (format 1) recording `tags`: the
    /// envelope itself in layout 1 (the tags go in field `t`), format 2 with the tags inside in
    /// layout 2.
    fn entry_value<'e>(&self, envelope: &'e [u8], tags: &[u8]) -> Result<Cow<'e, [u8]>, Error> {
        match self.keys.layout() {
            EntryLayout::Hash => Ok(Cow::Borrowed(envelope)),
            EntryLayout::String => codec::with_tags(envelope, tags)
                .map(Cow::Owned)
                .ok_or_else(|| Error::unavailable("an encoded value without its header")),
        }
    }

    /// Deletes an entry whose bytes could not be decoded, so the next load refills it.
    pub(crate) async fn delete_entry(&self, entry: &EntryKeys) -> Result<(), Error> {
        redis::cmd("DEL")
            .arg(&entry.entry)
            .exec_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_tags_roundtrip_with_any_bytes() {
        let pairs = [("tc:t:2.ns:a.b", "17"), ("tc:t:2.ns:ключ 9.", "5")];
        let rendered = render_recorded(pairs.iter().copied());
        let parsed: Option<Vec<(&[u8], u64)>> = RecordedPairs::new(&rendered).collect();
        let expected: Vec<(&[u8], u64)> = pairs
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.parse().expect("numeric")))
            .collect();
        assert_eq!(parsed.expect("parses"), expected);
    }

    #[test]
    fn malformed_recorded_tags_are_rejected() {
        for bad in [
            &b"3.ab"[..],
            b"x.abc",
            b"1.a",
            b"2.ab1",
            b"1.k2.+1",
            b"1.k1.x",
            b"1.k99999999999999999999999.1",
        ] {
            assert!(
                RecordedPairs::new(bad).any(|pair| pair.is_none()),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
