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
    ActivityRow, Campaign, CampaignRow, DonorRow, NewCampaign, NewDonation, OrganizationStats,
    Participation, TotalDonations, TrendBucket, WidgetData,
};
