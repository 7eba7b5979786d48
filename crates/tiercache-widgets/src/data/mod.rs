//! The donations: the [`DonationStore`] interface and its SQLite implementation with rollups, bulk
//! loading, one raw aggregate query per widget type (the reference), and the async service that
//! runs them off the runtime.

mod aggregation;
mod import;
mod model;
mod outbox;
mod queries;
mod rollup;
mod schema;
mod sqlite;
mod store;

pub use aggregation::WidgetDataAggregationService;
pub(crate) use aggregation::{CatchUpJob, CaughtUp};
pub use import::ImportRow;
pub use model::{
    ActivityRow, Campaign, CampaignEntry, CampaignRow, DonorRow, NewCampaign, NewDonation,
    OrganizationEntry, OrganizationStats, Participation, TotalDonations, TrendBucket, WidgetData,
};
pub(crate) use outbox::now_ms;
pub use outbox::{Change, PendingChange};
pub(crate) use queries::per_mille;
pub use sqlite::{SnapshotQuery, SqliteStore};
pub use store::{AggregatePath, DonationStore, Giver, StoreSnapshot};
