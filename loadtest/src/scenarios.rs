//! The two kinds of user: a dashboard viewer, and a donor (about 1 % of users).

use std::sync::Arc;
use std::time::Duration;

use goose::prelude::*;
use rand::Rng;
use serde_json::json;

use crate::plan::{Dashboard, DashboardRequests, Plan, Scope};

/// Each user talks to one node, spread evenly: user k uses node k mod N.
fn pick_node(plan: &Arc<Plan>) -> TransactionFunction {
    let plan = plan.clone();
    Arc::new(move |user| {
        let node = plan.nodes[user.weighted_users_index % plan.nodes.len()].clone();
        Box::pin(async move {
            user.set_base_url(&node)?;
            Ok(())
        })
    })
}

/// The request path of a view, and the view itself (`widget?query`) as its tail.
const WIDGETS_PATH: &str = "/api/widgets/";

/// The dashboard endpoint, and the name goose aggregates its requests under.
const DASHBOARD_PATH: &str = "/api/dashboard";

/// GETs every widget of `dashboard`: in one request, or one per widget, each named by its widget so
/// goose aggregates per widget type rather than per URL.
async fn view_dashboard(
    user: &mut GooseUser,
    plan: &Plan,
    dashboard: &Dashboard,
) -> TransactionResult {
    let query = dashboard.query();
    if plan.dashboard_requests == DashboardRequests::Dashboard {
        let path = format!("{DASHBOARD_PATH}?{query}");
        let request = GooseRequest::builder()
            .path(path.as_str())
            .name("dashboard")
            .build();
        user.request(request).await?;
        for widget in &plan.widgets {
            plan.touch(&format!("{widget}?{query}"));
        }
        return Ok(());
    }
    for (widget, name) in plan.widgets.iter().zip(&plan.request_names) {
        let path = format!("{WIDGETS_PATH}{widget}?{query}");
        let request = GooseRequest::builder()
            .path(path.as_str())
            .name(name.as_str())
            .build();
        user.request(request).await?;
        plan.touch(&path[WIDGETS_PATH.len()..]);
    }
    Ok(())
}

/// Opens a dashboard, then thinks (the scenario's wait time) before the next refresh.
fn open_dashboard(plan: &Arc<Plan>) -> TransactionFunction {
    let plan = plan.clone();
    Arc::new(move |user| {
        let plan = plan.clone();
        Box::pin(async move {
            let dashboard = plan.dashboard(&mut rand::rng());
            view_dashboard(user, &plan, &dashboard).await
        })
    })
}

/// Gives to a campaign, then looks at the figures it changed: the campaign's dashboard and the
/// global and organisation totals.
fn donate(plan: &Arc<Plan>) -> TransactionFunction {
    let plan = plan.clone();
    Arc::new(move |user| {
        let plan = plan.clone();
        Box::pin(async move {
            let (campaign, cents) = {
                let mut rng = rand::rng();
                (plan.campaign(&mut rng), rng.random_range(100..20_000))
            };
            let body = json!({
                "campaign_id": campaign,
                "amount": format!("{}.{:02}", cents / 100, cents % 100),
                "donor": format!("Load donor {}", user.weighted_users_index),
            });
            let builder = user
                .get_request_builder(&GooseMethod::Post, "/api/donations")?
                .json(&body);
            let request = GooseRequest::builder()
                .method(GooseMethod::Post)
                .path("/api/donations")
                .name("donate")
                .expect_status_code(201)
                .set_request_builder(builder)
                .build();
            user.request(request).await?;
            let dashboard = Dashboard {
                scope: Scope::Campaign(campaign),
                range: "this_month".to_owned(),
            };
            view_dashboard(user, &plan, &dashboard).await?;
            let organization = plan.organization_of(campaign).map(Scope::Organization);
            for scope in std::iter::once(Scope::Global).chain(organization) {
                let totals = Dashboard {
                    scope,
                    range: "this_month".to_owned(),
                };
                let path = format!("{WIDGETS_PATH}total_donations?{}", totals.query());
                let request = GooseRequest::builder()
                    .path(path.as_str())
                    .name("widget total_donations")
                    .build();
                user.request(request).await?;
                plan.touch(&path[WIDGETS_PATH.len()..]);
            }
            Ok(())
        })
    })
}

/// The users, with `think` the range of pauses between dashboard refreshes.
pub fn scenarios(
    plan: &Arc<Plan>,
    think: (Duration, Duration),
    donor_percent: usize,
) -> Result<Vec<Scenario>, GooseError> {
    let viewer = scenario!("dashboard viewer")
        .set_weight(100 - donor_percent)?
        .set_wait_time(think.0, think.1)?
        .register_transaction(
            Transaction::new(pick_node(plan))
                .set_name("pick node")
                .set_on_start(),
        )
        .register_transaction(Transaction::new(open_dashboard(plan)).set_name("open dashboard"));
    if donor_percent == 0 {
        return Ok(vec![viewer]);
    }
    let donor = scenario!("donor")
        .set_weight(donor_percent)?
        .set_wait_time(think.0, think.1)?
        .register_transaction(
            Transaction::new(pick_node(plan))
                .set_name("pick node")
                .set_on_start(),
        )
        .register_transaction(Transaction::new(donate(plan)).set_name("donate and look"));
    Ok(vec![viewer, donor])
}
