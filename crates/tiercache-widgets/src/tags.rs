//! Cache tags for widget entries and for events, designed so an event invalidates exactly the views whose
//! figures it can change.
//!
//! An entry is affected by an event when, on every dimension the event pins down (organisation,
//! campaign, employee, currency), the entry either does not filter or filters on the event's value. Tags
//! are OR-ed (any changed tag invalidates), so each entry carries one *projection* tag per dimension set
//! an event can pin — its own filters restricted to that set — and an event invalidates the projection
//! tags of every subset of its own values:
//!
//! ```text
//! entry  {organization_id=1}                 carries  w:total_donations:live:d:organization_id=1
//! event  donation(org 1, campaign 123, EUR)  hits     w:total_donations:live:d:              (all)
//!                                                     w:total_donations:live:d:organization_id=1
//!                                                     w:total_donations:live:d:campaign_id=123,organization_id=1
//!                                                     ... 16 subsets
//! entry  {campaign_id=456}                   carries  w:total_donations:live:d:campaign_id=456  → untouched
//! ```
//!
//! `live`/`closed` splits views whose range contains now from finished ones: a new donation cannot
//! change last month. Coarse tags — `widget:<type>`, `widget:<type>:range:<range>`, `organization:<id>`,
//! `campaign:<id>`, `employee:<id>`, `donation` — serve operators and [`crate::WidgetCacheService::invalidate_widget`].

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::events::DomainEvent;
use crate::{TimeRange, WidgetFilters, WidgetType};

/// The dimension sets events pin down, with their short names in tags.
const DONATION_DIMS: (&str, &[&str]) = (
    "d",
    &["campaign_id", "currency", "employee_id", "organization_id"],
);
const CAMPAIGN_DIMS: (&str, &[&str]) = ("c", &["campaign_id", "organization_id"]);
const EMPLOYEE_DIMS: (&str, &[&str]) = ("e", &["employee_id", "organization_id"]);
const ORGANIZATION_DIMS: (&str, &[&str]) = ("o", &["organization_id"]);
const ALL_DIMS: [(&str, &[&str]); 4] = [
    DONATION_DIMS,
    CAMPAIGN_DIMS,
    EMPLOYEE_DIMS,
    ORGANIZATION_DIMS,
];

fn mode(live: bool) -> &'static str {
    if live {
        "live"
    } else {
        "closed"
    }
}

fn render(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The tags a cached view carries.
pub fn tags_for_entry(
    widget: WidgetType,
    range: &TimeRange,
    filters: &WidgetFilters,
    now: DateTime<Utc>,
) -> Vec<String> {
    let live = !range.is_closed(now);
    let mut tags = vec![
        format!("widget:{widget}"),
        format!("widget:{widget}:range:{range}"),
    ];
    for (name, dims) in ALL_DIMS {
        let projection: Vec<(&str, String)> = filters
            .iter()
            .filter(|(k, _)| dims.contains(k))
            .map(|(k, v)| (k, v.to_owned()))
            .collect();
        tags.push(format!(
            "w:{widget}:{}:{name}:{}",
            mode(live),
            render(&projection)
        ));
    }
    if let Some(id) = filters.organization_id() {
        tags.push(format!("organization:{id}"));
    }
    if let Some(id) = filters.campaign_id() {
        tags.push(format!("campaign:{id}"));
    }
    if let Some(id) = filters.employee_id() {
        tags.push(format!("employee:{id}"));
    }
    // Every widget type reads donations, so operators can flush all of them with one tag.
    tags.push("donation".to_owned());
    tags
}

/// The tags an event invalidates.
pub fn tags_for_event(event: &DomainEvent) -> Vec<String> {
    let (dims_name, values): (&str, Vec<(&str, String)>) = match event {
        DomainEvent::DonationCompleted(d) | DomainEvent::DonationRefunded(d) => {
            let mut v = vec![
                ("campaign_id", d.campaign_id.to_string()),
                ("currency", d.currency.to_ascii_uppercase()),
                ("organization_id", d.organization_id.to_string()),
            ];
            if let Some(e) = d.employee_id {
                v.push(("employee_id", e.to_string()));
            }
            v.sort_unstable();
            (DONATION_DIMS.0, v)
        }
        DomainEvent::CampaignCreated(c)
        | DomainEvent::CampaignUpdated(c)
        | DomainEvent::CampaignCompleted(c) => (
            CAMPAIGN_DIMS.0,
            vec![
                ("campaign_id", c.campaign_id.to_string()),
                ("organization_id", c.organization_id.to_string()),
            ],
        ),
        DomainEvent::EmployeeJoined {
            employee_id,
            organization_id,
        } => (
            EMPLOYEE_DIMS.0,
            vec![
                ("employee_id", employee_id.to_string()),
                ("organization_id", organization_id.to_string()),
            ],
        ),
        DomainEvent::OrganizationUpdated { organization_id } => (
            ORGANIZATION_DIMS.0,
            vec![("organization_id", organization_id.to_string())],
        ),
    };
    let kind = event.kind();
    let modes: &[bool] = if kind.touches_history() {
        &[true, false]
    } else {
        &[true]
    };
    let mut tags = BTreeSet::new();
    for widget in kind.affects() {
        for live in modes {
            for mask in 0..(1u32 << values.len()) {
                let subset: Vec<(&str, String)> = values
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, p)| p.clone())
                    .collect();
                tags.insert(format!(
                    "w:{widget}:{}:{dims_name}:{}",
                    mode(*live),
                    render(&subset)
                ));
            }
        }
    }
    tags.into_iter().collect()
}

/// The single tag covering every filter variant of one widget and range.
pub fn widget_range_tag(widget: WidgetType, range: &TimeRange) -> String {
    format!("widget:{widget}:range:{range}")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::events::{CampaignFacts, DonationFacts, EventKind};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 15, 12, 0, 0).unwrap()
    }

    fn donation(campaign: i64, org: i64, employee: Option<i64>) -> DomainEvent {
        DomainEvent::DonationCompleted(DonationFacts {
            donation_id: 1,
            campaign_id: campaign,
            organization_id: org,
            employee_id: employee,
            amount_cents: 500,
            currency: "EUR".into(),
        })
    }

    fn hits(
        event: &DomainEvent,
        widget: WidgetType,
        range: TimeRange,
        filters: &[(&str, &str)],
    ) -> bool {
        let entry = tags_for_entry(
            widget,
            &range,
            &WidgetFilters::from_pairs(filters.iter().copied()).unwrap(),
            now(),
        );
        let fired = tags_for_event(event);
        entry.iter().any(|t| fired.contains(t))
    }

    #[test]
    fn a_donation_hits_exactly_the_views_it_can_change() {
        let e = donation(123, 1, Some(9));
        let w = WidgetType::TotalDonations;
        assert!(hits(&e, w, TimeRange::ThisMonth, &[]), "global view");
        assert!(
            hits(&e, w, TimeRange::ThisMonth, &[("organization_id", "1")]),
            "its organisation"
        );
        assert!(
            hits(&e, w, TimeRange::ThisMonth, &[("campaign_id", "123")]),
            "its campaign"
        );
        assert!(hits(
            &e,
            w,
            TimeRange::ThisMonth,
            &[("campaign_id", "123"), ("currency", "EUR")]
        ));
        assert!(hits(
            &e,
            w,
            TimeRange::ThisMonth,
            &[("employee_id", "9"), ("limit", "5")]
        ));
        assert!(
            !hits(&e, w, TimeRange::ThisMonth, &[("campaign_id", "456")]),
            "another campaign"
        );
        assert!(
            !hits(&e, w, TimeRange::ThisMonth, &[("organization_id", "2")]),
            "another organisation"
        );
        assert!(
            !hits(&e, w, TimeRange::ThisMonth, &[("currency", "USD")]),
            "another currency"
        );
        assert!(
            !hits(&e, w, TimeRange::ThisMonth, &[("employee_id", "8")]),
            "another employee"
        );
        assert!(!hits(&e, w, TimeRange::LastMonth, &[]), "a closed range");
        assert!(!hits(
            &donation(123, 1, None),
            w,
            TimeRange::ThisMonth,
            &[("employee_id", "9")]
        ));
    }

    #[test]
    fn campaign_events_touch_campaign_widgets_in_every_range_but_not_donation_widgets() {
        let e = DomainEvent::CampaignUpdated(CampaignFacts {
            campaign_id: 123,
            organization_id: 1,
        });
        assert!(hits(
            &e,
            WidgetType::CampaignPerformance,
            TimeRange::LastYear,
            &[("organization_id", "1")]
        ));
        assert!(hits(
            &e,
            WidgetType::CampaignPerformance,
            TimeRange::ThisMonth,
            &[("currency", "EUR")]
        ));
        assert!(!hits(
            &e,
            WidgetType::CampaignPerformance,
            TimeRange::ThisMonth,
            &[("campaign_id", "456")]
        ));
        assert!(!hits(&e, WidgetType::TopDonors, TimeRange::ThisMonth, &[]));
    }

    #[test]
    fn every_event_kind_is_in_the_table_and_affects_something() {
        for kind in EventKind::ALL {
            assert!(!kind.affects().is_empty(), "{kind}");
        }
    }
}
