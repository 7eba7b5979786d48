//! Whether the process should be sent traffic: starting (warming its cache), ready, or stopping.
//! `/readyz` answers from it, and until it is ready the nodes answer only the probes and
//! `/metrics`, so no request meets a node half warm.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use serde::Serialize;

/// Where the process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Listening, but still loading the views dashboards open first.
    Starting,
    /// Serving.
    Ready,
    /// A stop signal came: still serving what arrives, while load balancers take the node out.
    Stopping,
}

/// The process's [`Stage`], shared by its nodes; clones see the same stage.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<AtomicU8>);

impl Default for Readiness {
    fn default() -> Self {
        Readiness(Arc::new(AtomicU8::new(Stage::Starting as u8)))
    }
}

impl Readiness {
    /// The stage now.
    pub fn stage(&self) -> Stage {
        match self.0.load(Ordering::Acquire) {
            s if s == Stage::Ready as u8 => Stage::Ready,
            s if s == Stage::Stopping as u8 => Stage::Stopping,
            _ => Stage::Starting,
        }
    }

    /// Moves to `stage`.
    pub fn set(&self, stage: Stage) {
        self.0.store(stage as u8, Ordering::Release);
    }
}
