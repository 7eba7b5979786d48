//! The demo's data: SQLite schema, a deterministic generator, one aggregate query per widget type, and
//! the async service that runs them off the runtime.

mod aggregation;
mod generator;
mod model;
mod queries;
mod schema;

pub use aggregation::WidgetDataAggregationService;
pub use generator::DatasetSize;
pub use model::{
    ActivityRow, Campaign, CampaignEntry, CampaignRow, DonorRow, NewCampaign, NewDonation,
    OrganizationEntry, OrganizationStats, Participation, TotalDonations, TrendBucket, WidgetData,
};
