//! What users look at: the service's own directory of organisations and campaigns, turned into
//! dashboards drawn with Zipf skew (a few organisations, campaigns and ranges are most of the
//! traffic, as on a real dashboard).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::Mutex;
use rand::Rng;
use rand_distr::{Distribution, Zipf};
use serde::Deserialize;

/// Ranges in the order dashboards open them, most often first. Ranges the service lists that are
/// missing here come after, in the service's order.
const RANGE_POPULARITY: [&str; 10] = [
    "this_month",
    "today",
    "this_week",
    "last_30_days",
    "this_quarter",
    "this_year",
    "last_month",
    "yesterday",
    "last_week",
    "last_year",
];

/// Share of dashboards scoped to the whole dataset, to one organisation, and to one campaign.
const SCOPE_WEIGHTS: [u32; 3] = [20, 50, 30];

/// `GET /api/widgets`.
#[derive(Debug, Deserialize)]
pub struct Catalogue {
    /// Widget types.
    pub widgets: Vec<String>,
    /// Named ranges.
    pub ranges: Vec<String>,
}

/// One entry of `GET /api/organizations`.
#[derive(Debug, Deserialize)]
pub struct Organization {
    /// Its id.
    pub id: i64,
    /// Its campaigns.
    pub campaigns: Vec<CampaignEntry>,
}

/// A campaign of the directory.
#[derive(Debug, Deserialize)]
pub struct CampaignEntry {
    /// Its id.
    pub id: i64,
}

/// Whose figures a dashboard shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything.
    Global,
    /// One organisation.
    Organization(i64),
    /// One campaign.
    Campaign(i64),
}

/// A dashboard: a scope and a range; it shows every widget type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// Whose figures.
    pub scope: Scope,
    /// Which period.
    pub range: String,
}

impl Dashboard {
    /// The query string of its widget requests (`range=this_month&organization_id=3`).
    pub fn query(&self) -> String {
        let mut q = format!("range={}", self.range);
        match self.scope {
            Scope::Global => {}
            // Writing to a String cannot fail.
            Scope::Organization(o) => {
                let _ = write!(q, "&organization_id={o}");
            }
            Scope::Campaign(c) => {
                let _ = write!(q, "&campaign_id={c}");
            }
        }
        q
    }
}

/// How a viewer asks for a dashboard's widgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DashboardRequests {
    /// One `GET /api/dashboard` for all of them (what the dashboard page sends).
    Dashboard,
    /// One `GET /api/widgets/{type}` per widget (the page before `/api/dashboard`), to compare.
    PerWidget,
}

/// Everything a user needs to pick what to do next; shared by every user.
#[derive(Debug)]
pub struct Plan {
    /// Base URLs of the service's nodes; user k uses node k mod N.
    pub nodes: Vec<String>,
    /// Widget types, as the service lists them.
    pub widgets: Vec<String>,
    /// goose's name of each widget's requests (`widget total_donations`), made once.
    pub request_names: Vec<String>,
    /// Whether a viewer asks for a dashboard in one request or one per widget.
    pub dashboard_requests: DashboardRequests,
    ranges: Vec<String>,
    organizations: Vec<i64>,
    /// Every campaign id, the most popular first.
    pub campaigns: Vec<i64>,
    campaign_organization: HashMap<i64, i64>,
    range_zipf: Zipf<f64>,
    organization_zipf: Zipf<f64>,
    campaign_zipf: Zipf<f64>,
    /// Every view requested (`widget?query`), for the stale-view check at the end.
    pub touched: Mutex<HashSet<String>>,
}

impl Plan {
    /// A plan over the service's catalogue and directory, with Zipf exponent `skew`.
    pub fn new(
        nodes: Vec<String>,
        catalogue: Catalogue,
        directory: &[Organization],
        skew: f64,
        dashboard_requests: DashboardRequests,
    ) -> Result<Arc<Plan>, String> {
        let mut ranges: Vec<String> = RANGE_POPULARITY
            .iter()
            .filter(|r| catalogue.ranges.iter().any(|c| c == *r))
            .map(|r| (*r).to_owned())
            .collect();
        for r in &catalogue.ranges {
            if !ranges.contains(r) {
                ranges.push(r.clone());
            }
        }
        let organizations: Vec<i64> = directory.iter().map(|o| o.id).collect();
        let campaigns: Vec<i64> = directory
            .iter()
            .flat_map(|o| o.campaigns.iter().map(|c| c.id))
            .collect();
        let campaign_organization = directory
            .iter()
            .flat_map(|o| o.campaigns.iter().map(|c| (c.id, o.id)))
            .collect();
        if organizations.is_empty() || campaigns.is_empty() || ranges.is_empty() {
            return Err("the service lists no organisations, campaigns or ranges".into());
        }
        let zipf = |n: usize| {
            Zipf::new(n as f64, skew).map_err(|e| format!("Zipf over {n} items, skew {skew}: {e}"))
        };
        Ok(Arc::new(Plan {
            nodes,
            request_names: catalogue
                .widgets
                .iter()
                .map(|w| format!("widget {w}"))
                .collect(),
            widgets: catalogue.widgets,
            dashboard_requests,
            range_zipf: zipf(ranges.len())?,
            organization_zipf: zipf(organizations.len())?,
            campaign_zipf: zipf(campaigns.len())?,
            ranges,
            organizations,
            campaigns,
            campaign_organization,
            touched: Mutex::new(HashSet::new()),
        }))
    }

    /// Zipf samples are 1-based ranks.
    fn pick<'a, T>(zipf: &Zipf<f64>, items: &'a [T], rng: &mut impl Rng) -> &'a T {
        let rank = zipf.sample(rng) as usize;
        &items[rank.clamp(1, items.len()) - 1]
    }

    /// The next dashboard a viewer opens.
    pub fn dashboard(&self, rng: &mut impl Rng) -> Dashboard {
        let roll = rng.random_range(0..SCOPE_WEIGHTS.iter().sum::<u32>());
        let scope = if roll < SCOPE_WEIGHTS[0] {
            Scope::Global
        } else if roll < SCOPE_WEIGHTS[0] + SCOPE_WEIGHTS[1] {
            Scope::Organization(*Self::pick(
                &self.organization_zipf,
                &self.organizations,
                rng,
            ))
        } else {
            Scope::Campaign(self.campaign(rng))
        };
        Dashboard {
            scope,
            range: Self::pick(&self.range_zipf, &self.ranges, rng).clone(),
        }
    }

    /// A campaign, popular ones more often.
    pub fn campaign(&self, rng: &mut impl Rng) -> i64 {
        *Self::pick(&self.campaign_zipf, &self.campaigns, rng)
    }

    /// The organisation running `campaign`.
    pub fn organization_of(&self, campaign: i64) -> Option<i64> {
        self.campaign_organization.get(&campaign).copied()
    }

    /// Notes that `view` (`widget?query`) was requested; copied only the first time.
    pub fn touch(&self, view: &str) {
        let mut touched = self.touched.lock();
        if !touched.contains(view) {
            touched.insert(view.to_owned());
        }
    }
}
