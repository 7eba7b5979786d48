//! # tiercache-demo
//!
//! The dashboard service over tiercache: N cache nodes in one process, each with its own L1, Redis
//! subscriber and HTTP listener, over one Redis and one SQLite file (the source of truth). The
//! repository's `docs/DEMO.md` describes every flag, route and page, and the load test.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/widgets` | the widget types, ranges and filters accepted |
//! | `GET /api/widgets/{type}?range=&organization_id=&campaign_id=&employee_id=&currency=&limit=` | one view, with the tier that answered |
//! | `GET /api/dashboard?range=&organization_id=&campaign_id=&employee_id=&currency=&limit=` | every widget in one answer, read through the cache in one call |
//! | `POST /api/donations` | record a donation, then invalidate the views it changes on every node (with an admin token set: `Authorization: Bearer`) |
//! | `POST /api/campaigns` | create a campaign, then invalidate campaign_performance and organization_stats (token, as above) |
//! | `GET /livez` | 200 while the process serves (no I/O) |
//! | `GET /readyz` | 200 once warmed and until a stop signal; 503 before and after (no I/O; Redis down is still ready) |
//! | `GET /health` | health score and alerts; 503 when an alert is critical (a score, not a probe) |
//! | `GET /api/status` | the status document (token, as above) |
//! | `GET /api/status/latency` | p50/p95/p99 of the node's widget reads over the last minute (token, as above) |
//! | `GET /metrics` | Prometheus text |
//!
//! ```no_run
//! # async fn run() -> Result<(), tiercache_demo::DemoError> {
//! use clap::Parser;
//! let settings = tiercache_demo::Settings::parse_from(["tiercache-demo", "--nodes", "2", "--port", "0"]);
//! tiercache_demo::run(settings, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
#![deny(missing_docs)]

mod admin;
mod admin_token;
mod amount;
pub mod dataset;
mod error;
mod http_metrics;
mod node;
mod private_redis;
mod readiness;
mod recent_latency;
mod recorder;
mod routes;
mod serve;
mod settings;
mod shed;
mod startup;
pub mod telemetry;
mod warm;

pub use admin_token::AdminToken;
pub use error::{ApiError, DemoError, ErrorBody};
pub use node::{CachedNode, Node};
pub use readiness::{Readiness, Stage};
pub use recent_latency::{LatencyFigures, Percentile, RecentLatency};
pub use routes::Figures;
pub use settings::Settings;
pub use startup::run;
pub use telemetry::{LogFormat, Telemetry};
