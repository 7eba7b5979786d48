//! A key's place in a [`crate::Cache::fetch_many`] call: how the single-key path (`coalesce`,
//! `load`) tells the batch's gathering (`batch`) that the key will not load now, without knowing
//! the gathering's types.

use std::sync::Arc;

/// Where a key of a batch tells its gathering that it has decided.
pub(crate) trait Settle: Send + Sync {
    /// Key `index` will not call its loader now (it waits, or it is done), or just did.
    fn settle(&self, index: usize);
}

/// One key's place in a batch: the single-key path calls [`BatchSlot::settle`] where it starts
/// waiting on another caller or node.
#[derive(Clone)]
pub(crate) struct BatchSlot {
    gathering: Arc<dyn Settle>,
    index: usize,
}

impl BatchSlot {
    pub(crate) fn new(gathering: Arc<dyn Settle>, index: usize) -> Self {
        BatchSlot { gathering, index }
    }

    /// This key will not load now; saying so twice is harmless.
    pub(crate) fn settle(&self) {
        self.gathering.settle(self.index);
    }
}

/// Settles its key when the key's call ends, however it ends (a value, an error, or the batch
/// future dropped), so the gathering never waits on a key that is gone.
pub(crate) struct SettleOnDrop<'a>(pub(crate) &'a BatchSlot);

impl Drop for SettleOnDrop<'_> {
    fn drop(&mut self) {
        self.0.settle();
    }
}
