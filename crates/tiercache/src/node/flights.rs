//! Per-node single-flight: concurrent requests for one key share one load.
//!
//! The first caller becomes the leader and runs the work in a spawned task (so a cancelled caller does
//! not cancel everyone else's load); the others wait for its result. A flight can be *poisoned* by an
//! invalidation of its key that arrives while it runs, by the node turning suspect, or by its store
//! being fenced out in Redis (which proves an invalidation of the key or of a tag overlapped it): it
//! must not fill L1, and its result goes to its leader's caller only. A follower may have begun after
//! the invalidation was acknowledged on another node (the bus takes a moment to bring it here), so the
//! result, which may predate it, would be stale for it: poisoning wakes the followers, and each reads
//! again instead.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::error::Error;
use crate::fetched::Source;

/// What a flight hands to its waiters: the value (or `None` for a read that found nothing) or the
/// error, cloned for each waiter with its source.
pub(crate) type FlightResult = Result<Option<Arc<dyn Any + Send + Sync>>, Error>;

/// How a flight ended, as a waiter sees it.
pub(crate) enum Landed {
    /// The leader completed it: its result.
    Completed(FlightResult),
    /// The leader went away (its caller was cancelled, its task stopped) without completing: there is
    /// no result, and a waiter tries again rather than failing.
    Abandoned,
    /// The value the leader's loader produced, before its store ended (the leader's caller only).
    Loaded(Arc<dyn Any + Send + Sync>),
}

/// One in-progress load.
pub(crate) struct Flight {
    /// The cache key, shared with the flight map and with the L1 entry the flight fills.
    key: Arc<str>,
    poisoned: AtomicBool,
    /// The leader got past its own reads of Redis to a loader (its own, or another node's it waits
    /// for): a caller that waited on this flight waited for a loader, which its read deadline does
    /// not count.
    loading: AtomicBool,
    /// Where the leader's value came from, written before `result` is published.
    source: AtomicU8,
    /// Set once, by the leader's `complete` or, if it never completes, by its drop.
    result: OnceLock<Option<FlightResult>>,
    /// The value the leader's loader produced and how long the loader took, set before the value is
    /// stored: the leader's caller may take it at its read deadline (pushed back by the loader's
    /// time, which is not time spent on Redis), while followers wait for `result`, which comes once
    /// the store has shown whether an invalidation overlapped the load (a follower may have begun
    /// after it).
    loaded: OnceLock<(Arc<dyn Any + Send + Sync>, Duration)>,
    /// Wakes the waiters once `result` is set. One `Notify` in the flight's own allocation: a
    /// channel would cost an allocation more and wake through several notifiers per flight.
    done: Notify,
}

impl Flight {
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn key(&self) -> &Arc<str> {
        &self.key
    }

    /// Marks the flight so it fills no L1 entry, and wakes its followers to read again.
    pub(crate) fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
        self.done.notify_waiters();
    }

    /// The leader's loader starts, or the leader starts waiting for another node's.
    pub(crate) fn mark_loading(&self) {
        self.loading.store(true, Ordering::Release);
    }

    /// Hands the loaded `value`, which took the loader `load_time`, to the leader's caller ahead of
    /// the store ([`FlightWaiter::lead`]).
    pub(crate) fn hand_to_leader(&self, value: Arc<dyn Any + Send + Sync>, load_time: Duration) {
        // Set once: only the task running the leader's load calls this, once.
        let _ = self.loaded.set((value, load_time));
        self.done.notify_waiters();
    }

    /// Publishes the leader's result, or `None` when it abandoned the flight.
    fn publish(&self, result: Option<FlightResult>) {
        // Only the leader publishes, once (complete consumes it; its drop publishes only if
        // complete never ran), so the cell is always empty here.
        let _ = self.result.set(result);
        self.done.notify_waiters();
    }
}

/// Loads and plain reads of one key are separate flights: a reader must not wait behind a loader, and
/// a reader's "nothing there" must not answer a loader. Both are poisoned by the key's invalidation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlightKind {
    Load,
    Read,
}

type FlightMap = Mutex<HashMap<Arc<str>, Arc<Flight>, ahash::RandomState>>;

/// The flights of one node: one map per kind, keyed by the cache key itself, so a join formats no
/// flight name.
#[derive(Default)]
pub(crate) struct Flights {
    loads: FlightMap,
    reads: FlightMap,
}

/// How a caller takes part in a flight.
pub(crate) enum Joined {
    /// This caller must run the work and call [`LeaderGuard::complete`].
    Leader(LeaderGuard, FlightWaiter),
    /// Another caller runs the work; wait for it.
    Follower(FlightWaiter),
}

/// Receives a flight's result.
pub(crate) struct FlightWaiter(Arc<Flight>);

impl FlightWaiter {
    /// Waits for the leader. If the leader vanished without completing, that is
    /// [`Landed::Abandoned`], never a hang.
    pub(crate) async fn wait(&self) -> Landed {
        // Never `None`: only a follower leaves a poisoned flight.
        self.settle(false).await.unwrap_or(Landed::Abandoned)
    }

    /// Waits as a follower: like [`FlightWaiter::wait`], but `None` as soon as the flight is poisoned,
    /// whether or not its result is in, since that result may predate an invalidation acknowledged
    /// before this follower's call began.
    pub(crate) async fn follow(&self) -> Option<Landed> {
        self.settle(true).await
    }

    /// Waits as the leader's caller: like [`FlightWaiter::wait`], but once the loader has produced
    /// its value ([`Flight::hand_to_leader`]) waits for the store only until `deadline` pushed back
    /// by the loader's time, then takes that value ([`Landed::Loaded`]) and leaves the store to
    /// finish without it.
    pub(crate) async fn lead(&self, deadline: tokio::time::Instant) -> Landed {
        loop {
            let notified = self.0.done.notified();
            tokio::pin!(notified);
            // Registered before the checks, so a result in between still wakes this waiter.
            notified.as_mut().enable();
            if let Some(landed) = self.landed() {
                return landed;
            }
            match self.0.loaded.get() {
                Some((value, load_time)) => {
                    if tokio::time::timeout_at(deadline + *load_time, notified)
                        .await
                        .is_err()
                    {
                        return Landed::Loaded(value.clone());
                    }
                }
                None => notified.await,
            }
        }
    }

    async fn settle(&self, leave_if_poisoned: bool) -> Option<Landed> {
        loop {
            let notified = self.0.done.notified();
            tokio::pin!(notified);
            // Registered before the checks, so poison or a result in between still wakes this waiter.
            notified.as_mut().enable();
            if leave_if_poisoned && self.0.is_poisoned() {
                return None;
            }
            if let Some(landed) = self.landed() {
                return Some(landed);
            }
            notified.await;
        }
    }

    /// How the flight ended, once its leader published (or abandoned) it.
    fn landed(&self) -> Option<Landed> {
        self.0.result.get().map(|result| match result {
            Some(result) => Landed::Completed(result.clone()),
            None => Landed::Abandoned,
        })
    }

    /// Whether the flight's leader got to its loader (see [`Flight::mark_loading`]).
    pub(crate) fn leader_loaded(&self) -> bool {
        self.0.loading.load(Ordering::Acquire)
    }

    /// Where the leader's value came from; meaningful once [`FlightWaiter::wait`] returned a value.
    pub(crate) fn source(&self) -> Source {
        // Written before the result was published (Release) and read after it was seen.
        Source::from_u8(self.0.source.load(Ordering::Acquire))
    }
}

/// Held by the leader; completing (or dropping) it ends the flight.
pub(crate) struct LeaderGuard {
    flights: Arc<Flights>,
    kind: FlightKind,
    flight: Arc<Flight>,
    /// Already unregistered by `complete`: the drop has nothing left to do.
    completed: bool,
}

impl LeaderGuard {
    pub(crate) fn flight(&self) -> &Flight {
        &self.flight
    }

    /// Ends the flight and publishes the result to every waiter.
    ///
    /// The flight leaves the map *before* the result is published: a caller arriving after that starts
    /// a new flight instead of picking up a result that may predate an invalidation it has seen.
    pub(crate) fn complete(mut self, result: FlightResult, source: Source) {
        self.flight.source.store(source.to_u8(), Ordering::Release);
        self.unregister();
        self.completed = true;
        self.flight.publish(Some(result));
    }

    fn unregister(&self) {
        let mut map = self.flights.map(self.kind).lock();
        if map
            .get(&self.flight.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            map.remove(&self.flight.key);
        }
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        if !self.completed {
            self.unregister();
            self.flight.publish(None);
        }
    }
}

impl Flights {
    fn map(&self, kind: FlightKind) -> &FlightMap {
        match kind {
            FlightKind::Load => &self.loads,
            FlightKind::Read => &self.reads,
        }
    }

    /// Joins the `kind` flight for `key`, starting one if none is running.
    pub(crate) fn join(self: &Arc<Self>, kind: FlightKind, key: &str) -> Joined {
        let mut map = self.map(kind).lock();
        // A poisoned flight's result may predate an invalidation this caller already saw: start anew.
        if let Some(flight) = map.get(key).filter(|f| !f.is_poisoned()) {
            return Joined::Follower(FlightWaiter(flight.clone()));
        }
        let key: Arc<str> = Arc::from(key);
        let flight = Arc::new(Flight {
            key: key.clone(),
            poisoned: AtomicBool::new(false),
            loading: AtomicBool::new(false),
            source: AtomicU8::new(Source::L2.to_u8()),
            result: OnceLock::new(),
            loaded: OnceLock::new(),
            done: Notify::new(),
        });
        map.insert(key, flight.clone());
        Joined::Leader(
            LeaderGuard {
                flights: self.clone(),
                kind,
                flight: flight.clone(),
                completed: false,
            },
            FlightWaiter(flight),
        )
    }

    /// Marks the load and read flights of `key` (if any) so they will not fill L1 and their followers
    /// read again.
    pub(crate) fn poison(&self, key: &str) {
        for map in [&self.loads, &self.reads] {
            if let Some(f) = map.lock().get(key) {
                f.poison();
            }
        }
    }

    /// Marks every running flight so none fills L1 and their followers read again.
    pub(crate) fn poison_all(&self) {
        for map in [&self.loads, &self.reads] {
            for f in map.lock().values() {
                f.poison();
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.loads.lock().len() + self.reads.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_leaders_result() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(guard, leader_wait) = flights.join(FlightKind::Load, "k") else {
            panic!("first caller leads")
        };
        let Joined::Follower(follower) = flights.join(FlightKind::Load, "k") else {
            panic!("second caller follows")
        };
        guard.complete(Ok(Some(Arc::new(7u32))), Source::L2);
        for landed in [leader_wait.wait().await, follower.wait().await] {
            let Landed::Completed(r) = landed else {
                panic!("completed")
            };
            let v = r.expect("ok").expect("some");
            assert_eq!(*v.downcast::<u32>().expect("u32"), 7);
        }
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn waiters_already_asleep_are_woken_by_the_result() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(guard, _) = flights.join(FlightKind::Read, "k") else {
            panic!("leader")
        };
        let sleepers: Vec<_> = (0..3)
            .map(|_| {
                let Joined::Follower(waiter) = flights.join(FlightKind::Read, "k") else {
                    panic!("follower")
                };
                tokio::spawn(async move { waiter.wait().await })
            })
            .collect();
        // Let every follower reach its await before the result exists.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(sleepers.iter().all(|s| !s.is_finished()));
        guard.complete(Ok(Some(Arc::new(5u8))), Source::L2);
        for sleeper in sleepers {
            let landed = tokio::time::timeout(std::time::Duration::from_secs(10), sleeper)
                .await
                .expect("woken")
                .expect("joined");
            let Landed::Completed(result) = landed else {
                panic!("completed")
            };
            assert_eq!(
                *result
                    .expect("ok")
                    .expect("some")
                    .downcast::<u8>()
                    .expect("u8"),
                5
            );
        }
    }

    #[tokio::test]
    async fn a_vanished_leader_wakes_waiters_with_no_result() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(guard, _) = flights.join(FlightKind::Load, "k") else {
            panic!("leader")
        };
        let Joined::Follower(follower) = flights.join(FlightKind::Load, "k") else {
            panic!("follower")
        };
        drop(guard);
        assert!(matches!(follower.wait().await, Landed::Abandoned));
        assert!(
            matches!(flights.join(FlightKind::Load, "k"), Joined::Leader(..)),
            "a new flight can start"
        );
    }

    #[tokio::test]
    async fn a_completed_or_poisoned_flight_is_never_joined() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(guard, _) = flights.join(FlightKind::Load, "k") else {
            panic!("leader")
        };
        flights.poison("k");
        assert!(
            matches!(flights.join(FlightKind::Load, "k"), Joined::Leader(..)),
            "poisoned: a new flight starts"
        );
        guard.complete(Ok(None), Source::L2);
        let Joined::Leader(second, _) = flights.join(FlightKind::Load, "j") else {
            panic!("leader")
        };
        second.complete(Ok(None), Source::L2);
        assert!(
            matches!(flights.join(FlightKind::Load, "j"), Joined::Leader(..)),
            "completed: a new flight starts"
        );
    }

    #[tokio::test]
    async fn poison_wakes_a_follower_to_leave_while_the_leaders_caller_keeps_waiting() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(guard, leader_wait) = flights.join(FlightKind::Load, "k") else {
            panic!("leader")
        };
        let Joined::Follower(follower) = flights.join(FlightKind::Load, "k") else {
            panic!("follower")
        };
        let following = tokio::spawn(async move { follower.follow().await.is_none() });
        let leading = tokio::spawn(async move { leader_wait.wait().await });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        flights.poison("k");
        let left = tokio::time::timeout(std::time::Duration::from_secs(10), following)
            .await
            .expect("poison wakes the follower")
            .expect("joined");
        assert!(left, "the follower leaves the poisoned flight");
        assert!(
            !leading.is_finished(),
            "the leader's caller waits for its result"
        );
        guard.complete(Ok(Some(Arc::new(3u8))), Source::Loaded);
        let landed = leading.await.expect("joined");
        assert!(matches!(landed, Landed::Completed(Ok(Some(_)))));
    }

    #[tokio::test]
    async fn past_its_deadline_the_leaders_caller_takes_the_loaded_value_while_followers_wait() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(guard, leader_wait) = flights.join(FlightKind::Load, "k") else {
            panic!("leader")
        };
        let Joined::Follower(follower) = flights.join(FlightKind::Load, "k") else {
            panic!("follower")
        };
        let following = tokio::spawn(async move { follower.follow().await });
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
        let leading = tokio::spawn(async move {
            let early =
                tokio::time::timeout(std::time::Duration::from_millis(50), leader_wait.lead(far))
                    .await;
            (
                early.is_err(),
                leader_wait.lead(tokio::time::Instant::now()).await,
            )
        });
        guard.flight().hand_to_leader(Arc::new(9u8), Duration::ZERO);
        let (waited_before_its_deadline, landed) = leading.await.expect("joined");
        assert!(
            waited_before_its_deadline,
            "before its deadline the leader's caller waits for the store"
        );
        let Landed::Loaded(v) = landed else {
            panic!("past its deadline the leader's caller takes the loaded value")
        };
        assert_eq!(*v.downcast::<u8>().expect("u8"), 9);
        assert!(!following.is_finished(), "a follower waits for the store");
        guard.complete(Ok(Some(Arc::new(9u8))), Source::Loaded);
        let landed = following.await.expect("joined");
        assert!(matches!(landed, Some(Landed::Completed(Ok(Some(_))))));
    }

    #[tokio::test]
    async fn poison_marks_only_the_named_flight() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(a, _) = flights.join(FlightKind::Load, "a") else {
            panic!("leader")
        };
        let Joined::Leader(b, _) = flights.join(FlightKind::Load, "b") else {
            panic!("leader")
        };
        flights.poison("a");
        assert!(a.flight().is_poisoned());
        assert!(!b.flight().is_poisoned());
    }

    #[tokio::test]
    async fn a_key_has_separate_load_and_read_flights_and_poison_reaches_both() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(load, _) = flights.join(FlightKind::Load, "k") else {
            panic!("first loader leads")
        };
        let Joined::Leader(read, _) = flights.join(FlightKind::Read, "k") else {
            panic!("a reader does not wait behind a loader")
        };
        assert_eq!(flights.in_flight(), 2);
        flights.poison("k");
        assert!(load.flight().is_poisoned() && read.flight().is_poisoned());
        read.complete(Ok(None), Source::L2);
        drop(load);
        assert_eq!(
            flights.in_flight(),
            0,
            "completed and dropped leaders unregister"
        );
    }
}
