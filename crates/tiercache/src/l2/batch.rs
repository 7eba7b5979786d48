//! Cold reads of different entries that are in flight together share one `MGET`.
//!
//! With many cold reads in flight the client's CPU per read, not the network, bounds throughput:
//! each command costs redis-rs a queue message, a reply slot and a timeout, and Redis a command
//! dispatch. A read that finds others in flight joins a batch; the batch's first read yields once
//! (so every read the scheduler already has runnable can join), then sends the batch as one `MGET`
//! and hands each read its value. A read alone sends its `GET` at once and pays nothing for this.
//!
//! Large values do not batch: the network, not a command's fixed cost, bounds their reads, and a
//! read in a batch waits for the whole reply. The batches follow a running average of the entry
//! sizes recently read.
//!
//! Only entry layout 2 on one server batches: a layout-1 entry is a hash (no multi-key read), and on
//! a cluster every entry is in a slot of its own.

use std::sync::atomic::{AtomicUsize, Ordering};

use redis::Value;
use tokio::sync::oneshot;

use super::connection::Connection;
use crate::error::Error;

/// The most keys one `MGET` asks for: enough that a command's fixed cost is spread thin, few enough
/// that one reply of large values does not hold Redis (and every read behind it) for long. A larger
/// batch is sent as several `MGET`s at once.
const MAX_KEYS_PER_MGET: usize = 32;

/// Reads batch while the running average of recent entries' sizes is at most this many bytes.
const BATCH_ENTRIES_UP_TO_BYTES: usize = 8 * 1024;

/// A read waiting for its batch: the entry's Redis key and where its value goes.
struct Waiting {
    key: String,
    reply: oneshot::Sender<Result<Fetched, Error>>,
}

/// An entry's value as `GET` answers it, and whether it came in an `MGET` shared with other reads.
pub(crate) struct Fetched {
    pub(crate) value: Value,
    pub(crate) shared: bool,
}

/// The batches of one node's cold reads.
#[derive(Default)]
pub(crate) struct ReadBatches {
    /// Reads that joined the batch not yet sent.
    forming: parking_lot::Mutex<Vec<Waiting>>,
    /// Entry reads started and not finished, batched or not.
    in_flight: AtomicUsize,
    /// A running average of the sizes of entries read (each read moves it an eighth of the way).
    entry_bytes: AtomicUsize,
}

impl ReadBatches {
    /// The value of entry `key` (a layout-2 string): what a `GET` would answer, except that an entry
    /// of the wrong type reads as missing when it shared an `MGET` (which skips non-strings).
    pub(crate) async fn get(&self, conn: &Connection, key: &str) -> Result<Fetched, Error> {
        let counted = InFlight::enter(&self.in_flight);
        if counted.alone || self.entry_bytes.load(Ordering::Relaxed) > BATCH_ENTRIES_UP_TO_BYTES {
            return self.get_one(conn, key).await;
        }
        let (reply, value) = oneshot::channel();
        let leads = {
            let mut forming = self.forming.lock();
            forming.push(Waiting {
                key: key.to_owned(),
                reply,
            });
            forming.len() == 1
        };
        if leads {
            self.lead(conn).await;
        }
        match value.await {
            Ok(value) => value,
            // The read that led the batch was cancelled before it answered: read alone.
            Err(_) => self.get_one(conn, key).await,
        }
    }

    /// The values of entries `keys` (layout-2 strings), in order, for a caller that has them all at
    /// hand: `MGET`s of at most [`MAX_KEYS_PER_MGET`] keys, sent together, without joining or
    /// forming a batch (no yield: the caller's keys are the batch).
    pub(crate) async fn get_many(
        &self,
        conn: &Connection,
        keys: &[&str],
    ) -> Result<Vec<Value>, Error> {
        let _counted = InFlight::enter(&self.in_flight);
        let chunks = keys.chunks(MAX_KEYS_PER_MGET).map(|chunk| async move {
            let mut mget = redis::cmd("MGET");
            for key in chunk {
                mget.arg(*key);
            }
            match mget.query_async::<Value>(&mut conn.clone()).await? {
                Value::Array(values) if values.len() == chunk.len() => Ok(values),
                other => Err(super::unexpected("MGET's reply", &other)),
            }
        });
        let mut values = Vec::with_capacity(keys.len());
        for chunk in futures_util::future::join_all(chunks).await {
            values.extend(chunk?);
        }
        if !values.is_empty() {
            let bytes: usize = values.iter().map(value_bytes).sum();
            self.saw_entry(bytes / values.len());
        }
        Ok(values)
    }

    /// Sends the forming batch and answers every read in it (this one's too).
    async fn lead(&self, conn: &Connection) {
        // Cancelled while yielding: the batch is dropped, and its reads (told by their closed
        // channel) each read alone.
        let mut abandon = DropBatchOnCancel {
            forming: &self.forming,
            armed: true,
        };
        tokio::task::yield_now().await;
        let batch = std::mem::take(&mut *self.forming.lock());
        abandon.armed = false;
        let mut batch = batch.into_iter();
        let mut chunks = Vec::new();
        loop {
            let chunk: Vec<Waiting> = batch.by_ref().take(MAX_KEYS_PER_MGET).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(self.answer(conn, chunk));
        }
        // Sent together: the connection pipelines them.
        futures_util::future::join_all(chunks).await;
    }

    /// Reads one chunk of a batch (`GET` for one key, `MGET` for more) and answers each of its reads.
    async fn answer(&self, conn: &Connection, chunk: Vec<Waiting>) {
        if chunk.len() == 1 {
            if let Some(one) = chunk.into_iter().next() {
                let value = self.get_one(conn, &one.key).await;
                let _ = one.reply.send(value);
            }
            return;
        }
        let mut mget = redis::cmd("MGET");
        for waiting in &chunk {
            mget.arg(&waiting.key);
        }
        let reply = match mget.query_async::<Value>(&mut conn.clone()).await {
            Ok(Value::Array(values)) if values.len() == chunk.len() => {
                let bytes: usize = values.iter().map(value_bytes).sum();
                self.saw_entry(bytes / values.len());
                for (waiting, value) in chunk.into_iter().zip(values) {
                    let _ = waiting.reply.send(Ok(Fetched {
                        value,
                        shared: true,
                    }));
                }
                return;
            }
            Ok(other) => super::unexpected("MGET's reply", &other),
            Err(e) => Error::from(e),
        };
        for waiting in chunk {
            let _ = waiting.reply.send(Err(reply.clone()));
        }
    }

    /// Reads one entry with its own `GET`.
    async fn get_one(&self, conn: &Connection, key: &str) -> Result<Fetched, Error> {
        let value = redis::cmd("GET")
            .arg(key)
            .query_async::<Value>(&mut conn.clone())
            .await?;
        self.saw_entry(value_bytes(&value));
        Ok(Fetched {
            value,
            shared: false,
        })
    }

    /// Moves the running average of entry sizes an eighth of the way to `bytes`.
    fn saw_entry(&self, bytes: usize) {
        let average = self.entry_bytes.load(Ordering::Relaxed);
        // Racing updates may lose one another's step; the average only steers batching.
        self.entry_bytes
            .store(average - average / 8 + bytes / 8, Ordering::Relaxed);
    }
}

/// The size of an entry as a read answered it (0 when missing).
fn value_bytes(value: &Value) -> usize {
    match value {
        Value::BulkString(bytes) => bytes.len(),
        _ => 0,
    }
}

/// Counts a read in flight for as long as it lives.
struct InFlight<'a> {
    count: &'a AtomicUsize,
    /// No other read was in flight when this one started.
    alone: bool,
}

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        let before = count.fetch_add(1, Ordering::Relaxed);
        InFlight {
            count,
            alone: before == 0,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Empties the forming batch if dropped while armed, so no read waits on a batch nobody will send.
struct DropBatchOnCancel<'a> {
    forming: &'a parking_lot::Mutex<Vec<Waiting>>,
    armed: bool,
}

impl Drop for DropBatchOnCancel<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.forming.lock().clear();
        }
    }
}
