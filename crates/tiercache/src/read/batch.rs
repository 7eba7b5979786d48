//! Many keys in one call ([`crate::Cache::fetch_many`]). Past L1, each key takes the single-key path
//! ([`super::coalesce`]: its own flight, L2 read, lease, fenced store, fail-safe), so all that path
//! guarantees holds per key; what the batch adds is that the loads those paths start are gathered
//! into one call of the caller's [`BatchLoader`].
//!
//! Gathering needs no timer. Every key of a call reaches, in bounded time, a point where it is
//! known whether it loads now: it calls its loader, it waits on another caller's flight or another
//! node's lease (it will not load now), or it is done. Each key says so once ([`BatchSlot::settle`]);
//! when the last one has, the loads called so far go out as one call. A key that decides to load
//! later (its wait on another node ended without a value) makes a call of its own.
//!
//! Before that, the keys' L2 reads go out as one `MGET` from the calling task ([`super::at_once`]),
//! each under its key's flight: a key that read answers is done without a path of its own, and the
//! others go on from it as their flights' leaders. Where one command cannot read many entries (a
//! cluster, layout 1), the keys' own reads start in the same poll and leave on the connection
//! together, as a pipeline does.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::error::Error;
use crate::fetched::Fetched;
use crate::loader::{BatchLoader, Loader};
use crate::node::Node;
use crate::options::IntoEntryOptions;
use crate::read::at_once::{read_at_once, ReadAtOnce};
use crate::read::coalesce::{fetch_cold, lead_load};
use crate::read::slot::{BatchSlot, Settle, SettleOnDrop};

/// What one key of a batch load got instead of its value.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum BatchKeyError {
    /// The batch loader failed; every key of its call fails with its error.
    #[error(transparent)]
    Failed(Arc<dyn std::error::Error + Send + Sync>),
    /// The batch loader panicked.
    #[error("the batch loader panicked: {0}")]
    Panicked(String),
    /// The batch loader answered without this key.
    #[error("the batch loader returned no value for this key")]
    Missing,
    /// The call was dropped before the load could start (the runtime shutting down).
    #[error("the batch load was abandoned")]
    Abandoned,
}

type KeyResult<T> = Result<T, BatchKeyError>;

/// The loads of one batch call: which keys have decided, and the loads called so far.
pub(crate) struct Gathering<T, B> {
    node: Arc<Node>,
    loader: Arc<B>,
    /// The batch's distinct keys, by index.
    keys: Arc<[String]>,
    state: parking_lot::Mutex<State<T>>,
}

struct State<T> {
    settled: Vec<bool>,
    undecided: usize,
    called: Vec<(usize, oneshot::Sender<KeyResult<T>>)>,
}

impl<T, B> Gathering<T, B>
where
    T: Send + 'static,
    B: BatchLoader<T>,
{
    pub(crate) fn new(node: Arc<Node>, loader: Arc<B>, keys: Arc<[String]>) -> Self {
        let state = State {
            settled: vec![false; keys.len()],
            undecided: keys.len(),
            called: Vec::new(),
        };
        Gathering {
            node,
            loader,
            keys,
            state: parking_lot::Mutex::new(state),
        }
    }

    /// Key `index`'s loader for the single-key path: calling it joins the gathering's next load.
    pub(crate) fn loader_for(self: &Arc<Self>, index: usize) -> impl Loader<T> {
        let gathering = self.clone();
        move || {
            let (tx, rx) = oneshot::channel();
            gathering.decide(index, Some(tx));
            async move { rx.await.unwrap_or(Err(BatchKeyError::Abandoned)) }
        }
    }

    fn decide(&self, index: usize, call: Option<oneshot::Sender<KeyResult<T>>>) {
        let run = {
            let mut state = self.state.lock();
            if let Some(tx) = call {
                state.called.push((index, tx));
            }
            if !state.settled[index] {
                state.settled[index] = true;
                state.undecided -= 1;
            }
            if state.undecided > 0 || state.called.is_empty() {
                return;
            }
            std::mem::take(&mut state.called)
        };
        self.start(run);
    }

    /// One call of the batch loader for `run`'s keys, in a task of its own: the per-key loaders
    /// waiting on it are in the loads' own tasks, which outlive the batch's caller.
    fn start(&self, run: Vec<(usize, oneshot::Sender<KeyResult<T>>)>) {
        // Dropped outside a runtime (only while one shuts down), the senders tell the keys so.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.node.stats.batch_loads(1);
        self.node.stats.batch_loaded_keys(run.len() as u64);
        let (loader, keys) = (self.loader.clone(), self.keys.clone());
        runtime.spawn(async move {
            let asked = run.iter().map(|(i, _)| keys[*i].clone()).collect();
            let outcome = AssertUnwindSafe(async move { loader.load(asked).await })
                .catch_unwind()
                .await;
            match outcome {
                Ok(Ok(values)) => {
                    let mut values: HashMap<String, T> = values.into_iter().collect();
                    for (i, tx) in run {
                        let _ = tx.send(values.remove(&keys[i]).ok_or(BatchKeyError::Missing));
                    }
                }
                Ok(Err(e)) => {
                    let shared: Arc<dyn std::error::Error + Send + Sync> = Arc::from(e.into());
                    for (_, tx) in run {
                        let _ = tx.send(Err(BatchKeyError::Failed(shared.clone())));
                    }
                }
                Err(panic) => {
                    let message = super::load::panic_message(panic.as_ref());
                    for (_, tx) in run {
                        let _ = tx.send(Err(BatchKeyError::Panicked(message.clone())));
                    }
                }
            }
        });
    }
}

impl<T, B> Settle for Gathering<T, B>
where
    T: Send + 'static,
    B: BatchLoader<T>,
{
    fn settle(&self, index: usize) {
        self.decide(index, None);
    }
}

/// A loader of `key` alone through the batch loader: for refreshing one ageing key a batch call
/// found in L1.
pub(crate) fn one_key<T, B>(loader: Arc<B>, key: String) -> impl Loader<T>
where
    T: Send + 'static,
    B: BatchLoader<T>,
{
    move || {
        let load = loader.load(vec![key.clone()]);
        async move {
            match load.await {
                Ok(values) => values
                    .into_iter()
                    .find_map(|(k, v)| (k == key).then_some(v))
                    .ok_or(BatchKeyError::Missing),
                Err(e) => Err(BatchKeyError::Failed(Arc::from(e.into()))),
            }
        }
    }
}

/// The keys of a batch call that L1 did not answer, each once, with the places it was asked at.
pub(crate) struct ColdKeys<T, O> {
    keys: Vec<String>,
    entries: Vec<ColdKey<T, O>>,
    seen: HashMap<String, usize, ahash::RandomState>,
}

struct ColdKey<T, O> {
    asked: Vec<usize>,
    opts: O,
    /// What L1 held that this node may no longer trust: a fail-safe fallback.
    stale: Option<Arc<T>>,
}

impl<T, O> Default for ColdKeys<T, O> {
    fn default() -> Self {
        ColdKeys {
            keys: Vec::new(),
            entries: Vec::new(),
            seen: HashMap::default(),
        }
    }
}

impl<T, O> ColdKeys<T, O> {
    /// `key`, asked at place `at`; a key asked again keeps the options it was first asked with.
    pub(crate) fn add(&mut self, at: usize, key: &str, opts: O, stale: Option<Arc<T>>) {
        if let Some(&index) = self.seen.get(key) {
            self.entries[index].asked.push(at);
            return;
        }
        self.seen.insert(key.to_owned(), self.keys.len());
        self.keys.push(key.to_owned());
        self.entries.push(ColdKey {
            asked: vec![at],
            opts,
            stale,
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many distinct keys.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Each key through the single-key path past L1, all at once, their loads gathered into calls
    /// of `loader`: each key's answer, with the places it was asked at.
    pub(crate) async fn fetch<'o, B>(
        self,
        node: &Arc<Node>,
        loader: Arc<B>,
    ) -> Vec<(Vec<usize>, Result<Fetched<T>, Error>)>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        O: IntoEntryOptions<'o>,
        B: BatchLoader<T>,
    {
        let keys: Arc<[String]> = self.keys.into();
        let read = read_at_once::<T>(node, &keys).await;
        // Keys the read at once answered are done here: no call of their own, whose future (the
        // whole cold path's state) would be built and moved for nothing.
        let mut answers = Vec::with_capacity(keys.len());
        let (mut rest, mut answered_at) = (Vec::new(), Vec::new());
        for (index, (entry, read)) in self.entries.into_iter().zip(read).enumerate() {
            match read {
                ReadAtOnce::Answered(fetched) => {
                    let span =
                        crate::spans::call_span!("tiercache.get_or_load", node.config.namespace);
                    answers.push((entry.asked, crate::spans::fetched(&span, Ok(fetched))));
                    answered_at.push(index);
                }
                read => rest.push((index, entry, read)),
            }
        }
        if rest.is_empty() {
            return answers;
        }
        let gathering = Arc::new(Gathering::new(node.clone(), loader, keys.clone()));
        let settle: Arc<dyn Settle> = gathering.clone();
        // Decided already; with other keys still to decide, this starts no load.
        for index in answered_at {
            gathering.settle(index);
        }
        let calls = rest.into_iter().map(|(index, entry, read)| {
            let slot = BatchSlot::new(settle.clone(), index);
            let loader = gathering.loader_for(index);
            let key = &keys[index];
            // Each key's own call, as `fetch` would record it, under the batch's span.
            let span = crate::spans::call_span!("tiercache.get_or_load", node.config.namespace);
            async move {
                // Settles the key however its call ends, the batch's future dropped included.
                let _settle = SettleOnDrop(&slot);
                let opts = entry.opts.into_entry_options();
                let answer = match (node.keys.validate_tags(opts.tags()), read) {
                    (Ok(()), ReadAtOnce::Leads(lead)) => {
                        let (stale, slot) = (entry.stale, Some(&slot));
                        let led = lead_load(node, key, &opts, loader, stale, lead, slot)
                            .instrument(span.clone())
                            .await;
                        crate::spans::fetched(&span, led)
                    }
                    (Ok(()), _) => {
                        let stale = entry.stale;
                        fetch_cold(node, key, &opts, loader, stale, Some(&slot), &span).await
                    }
                    // A flight this call leads ends with the guard: its followers read again.
                    (Err(e), _) => Err(crate::spans::failed(&span, e)),
                };
                (entry.asked, answer)
            }
        });
        answers.extend(futures_util::future::join_all(calls).await);
        answers
    }
}
