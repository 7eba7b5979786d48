//! [`ChangeDispatcher`]: sends the cache work of committed changes from the outbox, so a change's
//! invalidation survives a cancelled request, a crash between commit and send, and Redis being away.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tiercache::{LockGuard, LockOptions};
use tokio::sync::{watch, Notify};

use crate::data::{CatchUpJob, CaughtUp, PendingChange, WidgetDataAggregationService};
use crate::events::DomainEvent;
use crate::invalidation::WidgetInvalidationService;
use crate::live_views::{LiveView, LiveViews};
use crate::service::{PreparedView, WidgetCacheService};

/// Rows sent in one batch (one invalidation of the union of their tags).
const BATCH: usize = 64;
/// How long a claimed row is this dispatcher's: longer than one try ([`SEND_TIMEOUT`]) takes, short
/// enough that a row claimed by a process that died is tried again soon after it restarts.
const CLAIM_MS: i64 = 10_000;
/// The longest one try of a batch may take before it counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle dispatcher looks for rows due again (retries, and rows other processes wrote).
const POLL: Duration = Duration::from_secs(1);
/// Dispatched ids remembered for waiters; older ones are forgotten first.
const REMEMBERED: usize = 65_536;

/// The fleet-wide lock a refreshing dispatcher holds from computing to storing.
const REFRESH_LOCK: &str = "widget-refresh";
/// Its lease: far longer than a batch's refresh takes, short enough that a dead holder frees it soon.
const REFRESH_LEASE: Duration = Duration::from_secs(30);
/// How long a batch computes views before it invalidates: the hottest views are ready to store the
/// moment they are invalidated, and the change is not held back behind the rest, which are loaded
/// again in the background after the invalidation (their readers may load them meanwhile).
const REFRESH_BUDGET: Duration = Duration::from_millis(30);

/// How often the dispatcher keeps the views in use warm, and how far ahead of its end a view's
/// cache entry is stored again: a view in use does not expire under its readers (a `today` view
/// lives 60 s), and costs no more than bringing it forward over the changes since its last answer.
const KEEP_EVERY: Duration = Duration::from_secs(5);
const KEEP_AHEAD: Duration = Duration::from_secs(20);

/// The first retry waits this long; each further one twice as long, up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 100;
const MAX_BACKOFF_MS: i64 = 30_000;

struct Shared {
    wake: Notify,
    dispatched: Mutex<BTreeSet<i64>>,
    passes: watch::Sender<u64>,
}

impl Shared {
    /// Tells waiters these changes are dispatched.
    fn remember(&self, ids: &[i64]) {
        let mut dispatched = self.dispatched.lock();
        dispatched.extend(ids.iter().copied());
        while dispatched.len() > REMEMBERED {
            dispatched.pop_first();
        }
        drop(dispatched);
        self.passes.send_modify(|n| *n += 1);
    }
}

/// Aborts the dispatch task when the last handle goes.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Dispatches the outbox of a store: one task per process, started with [`ChangeDispatcher::start`]
/// or [`ChangeDispatcher::start_refreshing`].
///
/// It claims due rows, invalidates what their events change on every node (one batch for many
/// rows), and marks them dispatched; a failed try (Redis away, a timeout) is retried with backoff
/// from 100 ms up to 30 s. At start it resumes whatever an earlier process left undispatched.
/// Without a cache (`None`), rows are marked dispatched at once: there is nothing to invalidate.
///
/// **Refresh, not empty.** Started with [`LiveViews`], it first brings the affected views that
/// readers used in the last ten minutes to the store's last committed change, in one snapshot: a view an
/// earlier batch refreshed is brought forward over the changes since ([`catch_up`](crate::catch_up):
/// a few point lookups, no recompute), the others are recomputed (the most read first, for up to
/// 30 ms). Then it invalidates the batch's tags, stores those views again on every node, and queues
/// the views left past the budget to be loaded again in the background through the cache's fenced
/// load path: readers of a view in use keep hitting, and views nobody reads are only invalidated.
/// Waiters learn of the dispatch once the invalidation landed and the hot views are stored again,
/// not after the background reloads. Batches run one after another (fleet-wide, under a lock), so
/// when changes come faster than a refresh, the next batch holds every change that arrived
/// meanwhile: one refresh running and one queued per view, whatever the rate.
///
/// **Warm keeping.** Every 5 s it also stores again, on every node, the views in use whose cache
/// entries end within 20 s, brought to the last change the same way (refresh-ahead without a
/// reader): a view in use does not expire under its readers. Brought forward, not recomputed, it
/// sees what the outbox and the rollups see; a write that bypassed the store would be missing from
/// both, so the TTL's bound on such a write holds only for views nobody keeps reading.
///
/// The freshness rule this gives: a view never shows figures older than the last dispatched
/// change. Every value a batch stores counts every change committed before the batch read its
/// snapshot, which is every change of the batch and of the batches before it; a reader's load
/// that began before the store is fenced out by it, and one that began after reads later data;
/// a background reload is a load the core does not store once an invalidation overtakes it.
///
/// Metrics: `widget_outbox_dispatched_total`, `widget_outbox_failed_total` (rows per failed try),
/// `widget_outbox_delay_seconds` (commit to dispatched), `widget_outbox_backlog` (rows waiting),
/// `widget_refresh_caught_up_total` (views brought forward), `widget_refresh_recomputed_total`,
/// `widget_refresh_lookups_total` (point lookups of catch-ups), `widget_refresh_views_total`
/// (views stored again), `widget_refresh_kept_total` (views kept warm), `widget_refresh_failed_total`.
///
/// ```no_run
/// # async fn run(data: tiercache_widgets::WidgetDataAggregationService, invalidation: tiercache_widgets::WidgetInvalidationService, donation: tiercache_widgets::NewDonation) -> Result<(), tiercache_widgets::WidgetError> {
/// use std::time::Duration;
/// use tiercache_widgets::ChangeDispatcher;
/// let dispatcher = ChangeDispatcher::start(data.clone(), Some(invalidation));
/// let change = data.record_donation(donation).await?;
/// dispatcher.notify();
/// let done = dispatcher.wait_dispatched(change.id, Duration::from_secs(2)).await;
/// # let _ = done; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ChangeDispatcher {
    shared: Arc<Shared>,
    _task: Arc<Task>,
}

impl std::fmt::Debug for ChangeDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeDispatcher").finish_non_exhaustive()
    }
}

impl ChangeDispatcher {
    /// Starts dispatching `data`'s outbox through `invalidation` on the current runtime.
    pub fn start(
        data: WidgetDataAggregationService,
        invalidation: Option<WidgetInvalidationService>,
    ) -> Self {
        Self::spawn(data, invalidation, None)
    }

    /// [`ChangeDispatcher::start`] that refreshes the affected views in `live` through `widgets`
    /// instead of leaving them empty.
    pub fn start_refreshing(
        data: WidgetDataAggregationService,
        invalidation: WidgetInvalidationService,
        widgets: WidgetCacheService,
        live: LiveViews,
    ) -> Self {
        let reloads = Reloads::start(widgets.clone(), data.clone(), live.clone());
        Self::spawn(
            data,
            Some(invalidation),
            Some(Refresh {
                widgets,
                live,
                reloads,
            }),
        )
    }

    fn spawn(
        data: WidgetDataAggregationService,
        invalidation: Option<WidgetInvalidationService>,
        refresh: Option<Refresh>,
    ) -> Self {
        let shared = Arc::new(Shared {
            wake: Notify::new(),
            dispatched: Mutex::new(BTreeSet::new()),
            passes: watch::channel(0).0,
        });
        let task = tokio::spawn(run(data, invalidation, refresh, shared.clone()));
        ChangeDispatcher {
            shared,
            _task: Arc::new(Task(task)),
        }
    }

    /// Asks for a pass now (a change was just committed).
    pub fn notify(&self) {
        self.shared.wake.notify_one();
    }

    /// Whether the change with outbox row `id` is dispatched within `within`.
    pub async fn wait_dispatched(&self, id: i64, within: Duration) -> bool {
        let mut passes = self.shared.passes.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.shared.dispatched.lock().contains(&id) {
                return true;
            }
            match tokio::time::timeout_at(deadline, passes.changed()).await {
                Ok(Ok(())) => {}
                // Timed out, or the task is gone.
                _ => return self.shared.dispatched.lock().contains(&id),
            }
        }
    }
}

/// The views a dispatcher refreshes (with their answers as the last batch, reload or reader's load
/// left them, so the next batch brings them forward instead of recomputing them), and the service
/// that stores them.
struct Refresh {
    widgets: WidgetCacheService,
    live: LiveViews,
    reloads: Reloads,
}

/// Views left past a batch's budget, loaded again in the background through the cache's fenced
/// load path, one at a time: the next batch need not wait for them, an invalidation that overtakes
/// one keeps it from storing, and a view queued already is not queued twice.
struct Reloads {
    queue: tokio::sync::mpsc::UnboundedSender<LiveView>,
    queued: Arc<Mutex<HashSet<String>>>,
}

impl Reloads {
    fn start(
        widgets: WidgetCacheService,
        data: WidgetDataAggregationService,
        live: LiveViews,
    ) -> Self {
        let (queue, mut next) = tokio::sync::mpsc::unbounded_channel::<LiveView>();
        let queued: Arc<Mutex<HashSet<String>>> = Arc::default();
        let taken = queued.clone();
        // Ends when the dispatcher (the queue's only sender) is dropped.
        tokio::spawn(async move {
            while let Some(view) = next.recv().await {
                taken.lock().remove(&view.key);
                match widgets.reload(&view, &data, &live).await {
                    Ok(()) => metrics::counter!("widget_refresh_views_total").increment(1),
                    Err(e) => {
                        tracing::debug!(key = %view.key, error = %e, "refresh: a background reload failed");
                        metrics::counter!("widget_refresh_failed_total").increment(1);
                    }
                }
            }
        });
        Reloads { queue, queued }
    }

    fn push(&self, views: Vec<LiveView>) {
        let mut queued = self.queued.lock();
        for view in views {
            if queued.insert(view.key.clone()) {
                let _ = self.queue.send(view);
            }
        }
    }
}

impl Refresh {
    /// Takes the fleet-wide [`REFRESH_LOCK`], which a batch's refresh and warm keeping hold from
    /// their snapshot to their store, so stored answers never go back in change order.
    async fn lock(&self) -> Result<LockGuard, tiercache::Error> {
        let options = LockOptions {
            timeout: SEND_TIMEOUT,
            retries: 100,
            lease: REFRESH_LEASE,
        };
        self.widgets.cache().lock(REFRESH_LOCK, options).await
    }

    /// Lets go of the lock; when that fails, it expires with its lease.
    async fn release(guard: LockGuard) {
        if let Err(e) = guard.release().await {
            tracing::debug!(error = %e, "refresh: could not release the lock");
        }
    }

    /// Brings `views` (the most read first) to the store's last change: each one known from an
    /// earlier batch forward over the changes since, the rest recomputed while `budget` lasts.
    /// Returns the views ready to store and the views left.
    async fn bring(
        &self,
        views: Vec<LiveView>,
        data: &WidgetDataAggregationService,
        budget: Duration,
    ) -> (Vec<PreparedView>, Vec<LiveView>) {
        let now = self.widgets.now();
        let mut wanted = Vec::with_capacity(views.len());
        let mut jobs = Vec::with_capacity(views.len());
        for view in views {
            // A view whose period moved is no one's now.
            let Some((key, start, end)) = WidgetCacheService::current(&view, now) else {
                continue;
            };
            let known = self.live.known(&key);
            let known_load_time = known.as_ref().map(|(_, _, took)| *took);
            jobs.push(CatchUpJob {
                widget: view.widget,
                filters: view.filters.clone(),
                start,
                end,
                known: known.map(|(as_of, value, _)| (as_of, value)),
            });
            wanted.push((view, key, known_load_time));
        }
        let (as_of, answers) = match data.catch_up_views(jobs, budget).await {
            Ok(answers) => answers,
            Err(e) => {
                // Only invalidated, then, and loaded again in the background.
                tracing::warn!(error = %e, "refresh: could not bring the views forward");
                metrics::counter!("widget_refresh_failed_total").increment(wanted.len() as u64);
                return (
                    Vec::new(),
                    wanted.into_iter().map(|(view, _, _)| view).collect(),
                );
            }
        };
        let mut prepared = Vec::new();
        let mut left = Vec::new();
        let (mut forward, mut computed) = (0u64, 0u64);
        for ((view, key, known_load_time), answer) in wanted.into_iter().zip(answers) {
            let (value, load_time) = match answer {
                CaughtUp::Left => {
                    left.push(view);
                    continue;
                }
                CaughtUp::Computed(value, took) => {
                    computed += 1;
                    (value, took)
                }
                CaughtUp::Forward(value) => {
                    forward += 1;
                    (value, known_load_time.unwrap_or_default())
                }
            };
            self.live.refreshed(&key);
            // One copy kept for the next batch, the other stored.
            self.live
                .remember(&key, as_of, Arc::new(value.clone()), load_time);
            prepared.push(self.widgets.ready(&view, key, now, value, load_time).await);
        }
        metrics::counter!("widget_refresh_caught_up_total").increment(forward);
        metrics::counter!("widget_refresh_recomputed_total").increment(computed);
        (prepared, left)
    }
}

async fn run(
    data: WidgetDataAggregationService,
    invalidation: Option<WidgetInvalidationService>,
    refresh: Option<Refresh>,
    shared: Arc<Shared>,
) {
    let mut last_backlog = tokio::time::Instant::now();
    let mut last_keep = tokio::time::Instant::now();
    loop {
        let claimed = match data.claim_changes(BATCH, CLAIM_MS).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "outbox: could not read due changes");
                Vec::new()
            }
        };
        let full = claimed.len() == BATCH;
        if !claimed.is_empty() {
            send(
                &data,
                invalidation.as_ref(),
                refresh.as_ref(),
                &shared,
                claimed,
            )
            .await;
        }
        shared.passes.send_modify(|n| *n += 1);
        if last_backlog.elapsed() >= POLL {
            last_backlog = tokio::time::Instant::now();
            if let Ok((rows, _)) = data.change_backlog().await {
                metrics::gauge!("widget_outbox_backlog").set(rows as f64);
            }
        }
        if let Some(refresh) = &refresh {
            if last_keep.elapsed() >= KEEP_EVERY {
                last_keep = tokio::time::Instant::now();
                keep_warm(&data, refresh).await;
            }
        }
        if !full {
            let wait = if refresh.is_some() {
                POLL.min(KEEP_EVERY)
            } else {
                POLL
            };
            let _ = tokio::time::timeout(wait, shared.wake.notified()).await;
        }
    }
}

/// One try of a batch: invalidate, then mark it dispatched, or failed with its next try's time.
async fn send(
    data: &WidgetDataAggregationService,
    invalidation: Option<&WidgetInvalidationService>,
    refresh: Option<&Refresh>,
    shared: &Shared,
    batch: Vec<PendingChange>,
) {
    let ids: Vec<i64> = batch.iter().map(|c| c.id).collect();
    let outcome = match invalidation {
        None => Ok(()),
        Some(invalidation) => {
            let events: Vec<DomainEvent> = batch.iter().map(|c| c.event.clone()).collect();
            match tokio::time::timeout(
                SEND_TIMEOUT,
                try_batch(data, invalidation, refresh, &events),
            )
            .await
            {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {SEND_TIMEOUT:?}")),
            }
        }
    };
    match outcome {
        Ok(()) => {
            // Waiters first: the rows' mark in the store is bookkeeping, the changes are out.
            shared.remember(&ids);
            if let Err(e) = data.changes_dispatched(ids.clone()).await {
                // Sent but not marked: the rows are sent again after their claim expires, which
                // only repeats an invalidation.
                tracing::warn!(error = %e, "outbox: sent, but could not mark the rows dispatched");
            }
            metrics::counter!("widget_outbox_dispatched_total").increment(ids.len() as u64);
            let now = crate::data::now_ms();
            for change in &batch {
                metrics::histogram!("widget_outbox_delay_seconds")
                    .record((now - change.committed_at_ms).max(0) as f64 / 1000.0);
            }
        }
        Err(reason) => {
            let attempts = batch.iter().map(|c| c.attempts).max().unwrap_or(0);
            let retry_in = backoff_ms(attempts);
            tracing::warn!(rows = ids.len(), attempts, retry_in_ms = retry_in, error = %reason,
                "outbox: the invalidation did not reach Redis; retrying");
            metrics::counter!("widget_outbox_failed_total").increment(ids.len() as u64);
            if let Err(e) = data.changes_failed(ids, reason, retry_in).await {
                tracing::warn!(error = %e, "outbox: could not record the failed try");
            }
        }
    }
}

/// Invalidates what `events` change, refreshing the views in use when `refresh` is given.
///
/// A refresh holds the fleet-wide lock [`REFRESH_LOCK`] from computing to storing: two processes'
/// dispatchers refreshing at once could otherwise store a view computed before the other's change
/// after that change's invalidation, where it would stay until its TTL.
async fn try_batch(
    data: &WidgetDataAggregationService,
    invalidation: &WidgetInvalidationService,
    refresh: Option<&Refresh>,
    events: &[DomainEvent],
) -> Result<(), String> {
    let tags = invalidation.tags_for_events(events);
    let Some(refresh) = refresh else {
        return invalidation
            .invalidate_tag_set(&tags)
            .await
            .map_err(|e| e.to_string());
    };
    let guard = refresh
        .lock()
        .await
        .map_err(|e| format!("the refresh lock: {e}"))?;
    // The hot views are computed before the invalidation, so they are empty only for the moment
    // between it and their store; the batch's changes are committed, so the values include them.
    let views = refresh.live.affected(&tags);
    let (prepared, dear) = refresh.bring(views, data, REFRESH_BUDGET).await;
    // The invalidation and the hot views' new values land together, so no reader finds a hot
    // view empty in between; they land before the changes count as dispatched, so a writer's next
    // read (read-your-writes) hits. The rest are only queued, not waited for.
    let ready = prepared.len();
    let outcome = refresh.widgets.store_replacing(&tags, prepared).await;
    if let Ok(stored) = &outcome {
        metrics::counter!("widget_refresh_views_total").increment(*stored as u64);
        if *stored < ready {
            // Only invalidated: their next readers load them.
            metrics::counter!("widget_refresh_failed_total").increment((ready - stored) as u64);
        }
        refresh.reloads.push(dear);
    }
    Refresh::release(guard).await;
    outcome.map(|_| ()).map_err(|e| e.to_string())
}

/// Stores again, on every node, the views in use whose cache entries end within [`KEEP_AHEAD`]
/// (refresh-ahead that needs no reader), each brought to the store's last change; a view with no
/// answer kept yet is computed once, within the batch budget. Under the refresh lock, like a batch,
/// so it never stores a view older than a batch stored before it.
async fn keep_warm(data: &WidgetDataAggregationService, refresh: &Refresh) {
    let now = refresh.widgets.now();
    let views = refresh
        .live
        .due(KEEP_AHEAD, |view| refresh.widgets.lifetime(view, now));
    if views.is_empty() {
        return;
    }
    let guard = match refresh.lock().await {
        Ok(guard) => guard,
        Err(e) => {
            tracing::debug!(error = %e, "keeping warm: the refresh lock");
            return;
        }
    };
    // Views past the budget wait for the next round; they are still cached meanwhile.
    let (prepared, _) = refresh.bring(views, data, REFRESH_BUDGET).await;
    let ready = prepared.len();
    match refresh
        .widgets
        .store_replacing(&BTreeSet::new(), prepared)
        .await
    {
        Ok(stored) => metrics::counter!("widget_refresh_kept_total").increment(stored as u64),
        Err(e) => {
            tracing::debug!(views = ready, error = %e, "keeping warm: could not store");
        }
    }
    Refresh::release(guard).await;
}

/// The wait before the next try after `attempts` failed ones.
fn backoff_ms(attempts: u32) -> i64 {
    FIRST_BACKOFF_MS
        .saturating_mul(1i64 << attempts.min(20))
        .min(MAX_BACKOFF_MS)
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        assert_eq!(backoff_ms(0), 100);
        assert_eq!(backoff_ms(3), 800);
        assert_eq!(backoff_ms(9), 30_000);
        assert_eq!(backoff_ms(u32::MAX), 30_000);
    }
}
