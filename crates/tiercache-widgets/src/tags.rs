//! Cache tags for widget entries, events and scopes, designed so an invalidation reaches exactly the
//! views whose figures it can change.
//!
//! A view is affected by a change when, on every dimension the change pins down (organisation,
//! campaign, employee, currency), the view either does not filter or filters on the change's value —
//! and, for a donation, when the view's period contains the donation's date. Tags are OR-ed (any
//! changed tag invalidates), so each entry carries one *projection* tag per dimension set a change can
//! pin — its own filters restricted to that set — and a change invalidates the projection tags of every
//! subset of its own values:
//!
//! ```text
//! entry  this_month {organization_id=1}         carries  d:this_month:organization_id=1
//! event  donation(org 1, campaign 123, EUR),    hits     d:this_month:                    (all)
//!        dated today                                     d:this_month:organization_id=1
//!                                                        d:this_month:campaign_id=123,organization_id=1
//!                                                        ... 16 subsets, for every range containing today
//! entry  this_month {campaign_id=456}           carries  d:this_month:campaign_id=456,organization_id=2  → untouched
//! entry  last_month {organization_id=1}         carries  d:last_month:organization_id=1  → untouched, unless the
//!                                                        donation is dated last month
//! ```
//!
//! Tag families, each a projection of the view's *scope*: its scope filters, plus the organisation its
//! campaign filter implies when the service knows it (a campaign belongs to one organisation, so
//! `organization:2` need not touch campaign 5's views when campaign 5 is organisation 2's):
//!
//! | family | carried by every entry | invalidated by |
//! |---|---|---|
//! | `d:<period>:<donation dims>` | `<period>` = the named range, or `y<year>` per year a custom range spans (`wide` past [`MAX_YEAR_TAGS`]) | a dated donation or refund: each named range containing its date (at now ± [`CLOCK_SKEW`]), its year, `wide` |
//! | `d:any:<donation dims>` | yes | a refund or correction without a date |
//! | `w:<widget>:c:<campaign, organisation>` | yes | campaign events (for the widgets [`crate::AFFECTS`] names), scope tag `campaign:<id>` |
//! | `w:<widget>:e:<employee, organisation>` | yes | `employee_joined`, scope tag `employee:<id>` |
//! | `w:<widget>:o:<organisation>` | yes | `organization_updated`, scope tag `organization:<id>` |
//!
//! Donation tags name no widget: every widget reads donations ([`crate::AFFECTS`] maps both donation
//! kinds to all of them), so one tag per period and subset serves all seven. Coarse tags —
//! `widget:<type>`, `widget:<type>:range:<range>` and `donation` (every view) — serve operators and
//! [`crate::WidgetCacheService::invalidate_widget`].
//!
//! Tags name ranges, not dates, so their number in Redis stays bounded: the key carries the period
//! (see [`crate::WidgetKey`]), and an entry never outlives its range's rollover, so `d:yesterday:…`
//! only ever reaches the `yesterday` entries of the day the invalidation sees as yesterday (give or take
//! the clock skew either side of midnight, where it may reach one day more: harmless).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, Utc};

use crate::events::DomainEvent;
use crate::{TimeRange, WidgetFilters, WidgetType, SCOPE_KEYS};

/// How far apart the clocks of the nodes and of the process sending an invalidation may be. A dated
/// donation invalidates each named range that contains its date at any instant within this of now, so
/// a node on the other side of midnight still loses its entry.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// A custom range spanning more calendar years than this carries the one `wide` donation tag (hit by
/// every dated donation) instead of one tag per year.
pub const MAX_YEAR_TAGS: i32 = 5;

const DONATION_DIMS: &[&str] = &["campaign_id", "currency", "employee_id", "organization_id"];
const CAMPAIGN_DIMS: &[&str] = &["campaign_id", "organization_id"];
const EMPLOYEE_DIMS: &[&str] = &["employee_id", "organization_id"];
const ORGANIZATION_DIMS: &[&str] = &["organization_id"];

/// The per-widget families and the dimensions each projects on.
const WIDGET_FAMILIES: [(&str, &[&str]); 3] = [
    ("c", CAMPAIGN_DIMS),
    ("e", EMPLOYEE_DIMS),
    ("o", ORGANIZATION_DIMS),
];

/// A data scope whose figures changed, named by an operator's tag (`campaign:123`, `organization:1`,
/// `employee:7`) and completed with the organisations it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A campaign and its organisation.
    Campaign {
        /// The campaign.
        campaign_id: i64,
        /// Its organisation.
        organization_id: i64,
    },
    /// An organisation.
    Organization {
        /// The organisation.
        organization_id: i64,
    },
    /// An employee and every organisation their donations count in (their own, and those of the
    /// campaigns they gave to).
    Employee {
        /// The employee.
        employee_id: i64,
        /// The organisations; one tag set per organisation.
        organizations: Vec<i64>,
    },
}

fn render(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The pairs of `scope` on `dims`, rendered.
fn project(scope: &[(&str, String)], dims: &[&str]) -> String {
    let pairs: Vec<(&str, String)> = scope
        .iter()
        .filter(|(k, _)| dims.contains(k))
        .cloned()
        .collect();
    render(&pairs)
}

/// Every subset of `values` (sorted by key), rendered.
fn subsets<'a>(values: &'a [(&'a str, String)]) -> impl Iterator<Item = String> + 'a {
    (0..(1u32 << values.len())).map(move |mask| {
        let subset: Vec<(&str, String)> = values
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, p)| p.clone())
            .collect();
        render(&subset)
    })
}

/// A view's scope: its scope filters, sorted, with the organisation its campaign implies.
fn view_scope(
    filters: &WidgetFilters,
    campaign_organization: Option<i64>,
) -> Vec<(&'static str, String)> {
    let mut scope: Vec<(&'static str, String)> = SCOPE_KEYS
        .iter()
        .filter_map(|k| {
            let pair = filters.iter().find(|(key, _)| key == k)?;
            Some((*k, pair.1.to_owned()))
        })
        .collect();
    if filters.organization_id().is_none() && filters.campaign_id().is_some() {
        if let Some(org) = campaign_organization {
            scope.push(("organization_id", org.to_string()));
        }
    }
    scope.sort_unstable();
    scope
}

/// The period labels of a view's donation tags.
fn entry_periods(range: &TimeRange) -> Vec<String> {
    match range {
        TimeRange::Custom { start, end } => {
            let last = end.pred_opt().unwrap_or(*end);
            let years = start.year()..=last.year();
            if last.year() - start.year() >= MAX_YEAR_TAGS {
                vec!["wide".to_owned()]
            } else {
                years.map(|y| format!("y{y}")).collect()
            }
        }
        named => vec![named.to_string()],
    }
}

/// The period labels a donation dated `at` invalidates, seen at `now`.
fn donation_periods(at: DateTime<Utc>, now: DateTime<Utc>) -> BTreeSet<String> {
    let mut periods = BTreeSet::new();
    for seen_at in [now - CLOCK_SKEW, now, now + CLOCK_SKEW] {
        for range in TimeRange::named() {
            let (start, end) = range.resolve(seen_at);
            if start <= at && at < end {
                periods.insert(range.to_string());
            }
        }
    }
    periods.insert(format!("y{}", at.year()));
    periods.insert("wide".to_owned());
    periods
}

/// The tags a cached view carries. `campaign_organization` is the organisation of the view's campaign
/// filter, when known: it narrows which organisation-wide changes reach the view.
///
/// ```
/// use tiercache_widgets::{tags_for_entry, TimeRange, WidgetFilters, WidgetType};
/// let filters = WidgetFilters::new().with("campaign_id", "5").unwrap();
/// let tags = tags_for_entry(WidgetType::TotalDonations, &TimeRange::ThisMonth, &filters, Some(2));
/// assert!(tags.contains(&"d:this_month:campaign_id=5,organization_id=2".to_owned()));
/// assert!(tags.contains(&"w:total_donations:o:organization_id=2".to_owned()));
/// ```
pub fn tags_for_entry(
    widget: WidgetType,
    range: &TimeRange,
    filters: &WidgetFilters,
    campaign_organization: Option<i64>,
) -> Vec<String> {
    let scope = view_scope(filters, campaign_organization);
    let donation = project(&scope, DONATION_DIMS);
    let mut tags = vec![
        format!("widget:{widget}"),
        widget_range_tag(widget, range),
        // Every view reads donations, so operators can flush all of them with one tag.
        "donation".to_owned(),
        format!("d:any:{donation}"),
    ];
    for period in entry_periods(range) {
        tags.push(format!("d:{period}:{donation}"));
    }
    for (family, dims) in WIDGET_FAMILIES {
        tags.push(format!("w:{widget}:{family}:{}", project(&scope, dims)));
    }
    tags
}

/// The tags an event invalidates, judged at `now` (which named ranges contain a donation's date).
///
/// A donation without a date counts as made now; a refund or correction without one may change any
/// period, so it reaches every range in its scope.
pub fn tags_for_event(event: &DomainEvent, now: DateTime<Utc>) -> Vec<String> {
    let mut tags = BTreeSet::new();
    let (family, values): (&str, Vec<(&str, String)>) = match event {
        DomainEvent::DonationCompleted(d) | DomainEvent::DonationRefunded(d) => {
            let mut values = vec![
                ("campaign_id", d.campaign_id.to_string()),
                ("currency", d.currency.to_ascii_uppercase()),
                ("organization_id", d.organization_id.to_string()),
            ];
            if let Some(e) = d.employee_id {
                values.push(("employee_id", e.to_string()));
            }
            values.sort_unstable();
            let dated = match (event, d.created_at) {
                (_, Some(secs)) => DateTime::from_timestamp(secs, 0),
                (DomainEvent::DonationCompleted(_), None) => Some(now),
                _ => None,
            };
            let periods = match dated {
                Some(at) => donation_periods(at, now),
                None => BTreeSet::from(["any".to_owned()]),
            };
            for period in &periods {
                tags.extend(subsets(&values).map(|s| format!("d:{period}:{s}")));
            }
            return tags.into_iter().collect();
        }
        DomainEvent::CampaignCreated(c)
        | DomainEvent::CampaignUpdated(c)
        | DomainEvent::CampaignCompleted(c) => (
            "c",
            vec![
                ("campaign_id", c.campaign_id.to_string()),
                ("organization_id", c.organization_id.to_string()),
            ],
        ),
        DomainEvent::EmployeeJoined {
            employee_id,
            organization_id,
        } => (
            "e",
            vec![
                ("employee_id", employee_id.to_string()),
                ("organization_id", organization_id.to_string()),
            ],
        ),
        DomainEvent::OrganizationUpdated { organization_id } => {
            ("o", vec![("organization_id", organization_id.to_string())])
        }
    };
    for widget in event.kind().affects() {
        tags.extend(subsets(&values).map(|s| format!("w:{widget}:{family}:{s}")));
    }
    tags.into_iter().collect()
}

/// The tags that refresh every view whose figures include `scope`'s data, whatever the widget, range
/// or date: the global views, the views of its organisation(s), of itself, and views filtered on
/// other dimensions only (a currency, an employee).
///
/// ```
/// use tiercache_widgets::{tags_for_entry, tags_for_scope, Scope, TimeRange, WidgetFilters, WidgetType};
/// let fired = tags_for_scope(&Scope::Campaign { campaign_id: 123, organization_id: 1 });
/// let hits = |pairs: &[(&str, &str)], org: Option<i64>| {
///     let f = WidgetFilters::from_pairs(pairs.iter().copied()).unwrap();
///     tags_for_entry(WidgetType::TopDonors, &TimeRange::LastYear, &f, org).iter().any(|t| fired.contains(t))
/// };
/// assert!(hits(&[], None), "the global view");
/// assert!(hits(&[("organization_id", "1")], None), "its organisation");
/// assert!(hits(&[("currency", "EUR")], None), "a currency");
/// assert!(!hits(&[("campaign_id", "5")], Some(2)), "another organisation's campaign");
/// ```
pub fn tags_for_scope(scope: &Scope) -> Vec<String> {
    let (family, value_sets): (&str, Vec<Vec<(&str, String)>>) = match scope {
        Scope::Campaign {
            campaign_id,
            organization_id,
        } => (
            "c",
            vec![vec![
                ("campaign_id", campaign_id.to_string()),
                ("organization_id", organization_id.to_string()),
            ]],
        ),
        Scope::Organization { organization_id } => (
            "o",
            vec![vec![("organization_id", organization_id.to_string())]],
        ),
        Scope::Employee {
            employee_id,
            organizations,
        } => (
            "e",
            std::iter::once(vec![("employee_id", employee_id.to_string())])
                .chain(organizations.iter().map(|o| {
                    vec![
                        ("employee_id", employee_id.to_string()),
                        ("organization_id", o.to_string()),
                    ]
                }))
                .collect(),
        ),
    };
    let mut tags = BTreeSet::new();
    for widget in WidgetType::ALL {
        for values in &value_sets {
            tags.extend(subsets(values).map(|s| format!("w:{widget}:{family}:{s}")));
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

    /// Sunday 15 June 2025, noon.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 15, 12, 0, 0).unwrap()
    }

    fn donation(campaign: i64, org: i64, employee: Option<i64>) -> DonationFacts {
        DonationFacts {
            donation_id: 1,
            campaign_id: campaign,
            organization_id: org,
            employee_id: employee,
            amount_cents: 500,
            currency: "EUR".into(),
            created_at: Some(now().timestamp()),
            donor: None,
        }
    }

    fn dated(d: DonationFacts, at: DateTime<Utc>) -> DomainEvent {
        DomainEvent::DonationCompleted(DonationFacts {
            created_at: Some(at.timestamp()),
            ..d
        })
    }

    fn entry_hit(
        fired: &[String],
        widget: WidgetType,
        range: TimeRange,
        filters: &[(&str, &str)],
        campaign_organization: Option<i64>,
    ) -> bool {
        let entry = tags_for_entry(
            widget,
            &range,
            &WidgetFilters::from_pairs(filters.iter().copied()).unwrap(),
            campaign_organization,
        );
        entry.iter().any(|t| fired.contains(t))
    }

    fn hits(
        event: &DomainEvent,
        widget: WidgetType,
        range: TimeRange,
        filters: &[(&str, &str)],
    ) -> bool {
        entry_hit(&tags_for_event(event, now()), widget, range, filters, None)
    }

    #[test]
    fn a_donation_hits_exactly_the_views_it_can_change() {
        let e = DomainEvent::DonationCompleted(donation(123, 1, Some(9)));
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
        assert!(!hits(&e, w, TimeRange::Yesterday, &[]), "yesterday");
        assert!(
            !hits(&e, w, "2024-01-01..2025-01-01".parse().unwrap(), &[]),
            "a custom range of another year"
        );
        assert!(hits(&e, w, "2025-06-01..2025-07-01".parse().unwrap(), &[]));
        assert!(!hits(
            &DomainEvent::DonationCompleted(donation(123, 1, None)),
            w,
            TimeRange::ThisMonth,
            &[("employee_id", "9")]
        ));
    }

    #[test]
    fn a_dated_donation_hits_the_ranges_that_contain_its_date_and_no_other() {
        let w = WidgetType::TopDonors;
        let cases = [
            // Saturday 14 June: yesterday, this week (Monday 9 June on), this month, ...
            (
                Utc.with_ymd_and_hms(2025, 6, 14, 18, 0, 0).unwrap(),
                &[
                    "yesterday",
                    "this_week",
                    "this_month",
                    "this_quarter",
                    "this_year",
                    "last_30_days",
                ][..],
            ),
            // Monday 2 June: last week, this month.
            (
                Utc.with_ymd_and_hms(2025, 6, 2, 9, 0, 0).unwrap(),
                &[
                    "last_week",
                    "this_month",
                    "this_quarter",
                    "this_year",
                    "last_30_days",
                ],
            ),
            // 20 May: last month, within the last 30 days.
            (
                Utc.with_ymd_and_hms(2025, 5, 20, 9, 0, 0).unwrap(),
                &["last_month", "this_quarter", "this_year", "last_30_days"],
            ),
            // 3 March 2024: last year only.
            (
                Utc.with_ymd_and_hms(2024, 3, 3, 9, 0, 0).unwrap(),
                &["last_year"],
            ),
        ];
        for (at, expected) in cases {
            let e = dated(donation(123, 1, None), at);
            let hit: Vec<String> = TimeRange::named()
                .filter(|r| hits(&e, w, *r, &[("campaign_id", "123")]))
                .map(|r| r.to_string())
                .collect();
            let mut expected: Vec<&str> = expected.to_vec();
            let mut hit: Vec<&str> = hit.iter().map(String::as_str).collect();
            expected.sort_unstable();
            hit.sort_unstable();
            assert_eq!(hit, expected, "a donation dated {at}");
            let year = format!("{}-01-01..{}-01-01", at.year(), at.year() + 1);
            assert!(
                hits(&e, w, year.parse().unwrap(), &[]),
                "{at}: custom {year}"
            );
            assert!(!hits(&e, w, TimeRange::LastMonth, &[("campaign_id", "5")]));
        }
        // Refunds carry the original date the same way.
        let refund = DomainEvent::DonationRefunded(DonationFacts {
            created_at: Some(
                Utc.with_ymd_and_hms(2025, 5, 20, 9, 0, 0)
                    .unwrap()
                    .timestamp(),
            ),
            ..donation(123, 1, None)
        });
        assert!(hits(&refund, w, TimeRange::LastMonth, &[]));
        assert!(!hits(&refund, w, TimeRange::Today, &[]));
    }

    #[test]
    fn near_midnight_the_ranges_on_either_side_are_hit() {
        // One minute before midnight a node whose clock is already past it calls 15 June "yesterday".
        let now = Utc.with_ymd_and_hms(2025, 6, 15, 23, 59, 0).unwrap();
        let e = dated(donation(1, 1, None), now);
        let fired = tags_for_event(&e, now);
        for range in [TimeRange::Today, TimeRange::Yesterday] {
            assert!(
                entry_hit(&fired, WidgetType::TotalDonations, range, &[], None),
                "{range}"
            );
        }
    }

    #[test]
    fn an_undated_refund_hits_every_range_in_its_scope() {
        let refund = DomainEvent::DonationRefunded(DonationFacts {
            created_at: None,
            ..donation(123, 1, None)
        });
        for range in TimeRange::named().chain(["2020-01-01..2030-01-01".parse().unwrap()]) {
            assert!(
                hits(&refund, WidgetType::TotalDonations, range, &[]),
                "{range}"
            );
            assert!(!hits(
                &refund,
                WidgetType::TotalDonations,
                range,
                &[("campaign_id", "456")]
            ));
        }
        let undated_gift = DomainEvent::DonationCompleted(DonationFacts {
            created_at: None,
            ..donation(123, 1, None)
        });
        assert!(hits(
            &undated_gift,
            WidgetType::TotalDonations,
            TimeRange::Today,
            &[]
        ));
        assert!(
            !hits(
                &undated_gift,
                WidgetType::TotalDonations,
                TimeRange::LastMonth,
                &[]
            ),
            "an undated new donation is made now"
        );
    }

    #[test]
    fn long_custom_ranges_carry_one_wide_tag() {
        let wide = tags_for_entry(
            WidgetType::TotalDonations,
            &"2000-01-01..2030-01-01".parse().unwrap(),
            &WidgetFilters::new(),
            None,
        );
        assert!(wide.contains(&"d:wide:".to_owned()));
        assert!(wide.len() < 10, "{wide:?}");
        let e = dated(
            donation(1, 1, None),
            Utc.with_ymd_and_hms(2010, 3, 3, 0, 0, 0).unwrap(),
        );
        assert!(tags_for_event(&e, now()).contains(&"d:wide:".to_owned()));
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

    /// Filters, the organisation of the view's campaign, and whether each scope reaches the view.
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<i64>, [bool; 3]);

    #[test]
    fn scope_tags_reach_every_view_that_includes_the_scope_and_no_other() {
        let w = WidgetType::EmployeeParticipation;
        let r = TimeRange::LastYear;
        let campaign = tags_for_scope(&Scope::Campaign {
            campaign_id: 123,
            organization_id: 1,
        });
        let organization = tags_for_scope(&Scope::Organization { organization_id: 1 });
        let employee = tags_for_scope(&Scope::Employee {
            employee_id: 7,
            organizations: vec![1],
        });
        // (filters, organisation of the view's campaign, hit by campaign:123, organization:1, employee:7)
        let cases: [Case; 9] = [
            (&[], None, [true, true, true]),
            (&[("organization_id", "1")], None, [true, true, true]),
            (&[("organization_id", "2")], None, [false, false, false]),
            (&[("campaign_id", "123")], Some(1), [true, true, true]),
            (&[("campaign_id", "124")], Some(1), [false, true, true]),
            (&[("campaign_id", "5")], Some(2), [false, false, false]),
            (&[("currency", "EUR")], None, [true, true, true]),
            (&[("employee_id", "7")], None, [true, true, true]),
            (
                &[("employee_id", "8"), ("organization_id", "1")],
                None,
                [true, true, false],
            ),
        ];
        for (filters, org, expected) in cases {
            let got = [&campaign, &organization, &employee]
                .map(|fired| entry_hit(fired, w, r, filters, org));
            assert_eq!(got, expected, "{filters:?}");
        }
    }

    #[test]
    fn every_event_kind_is_in_the_table_and_donations_affect_every_widget() {
        for kind in EventKind::ALL {
            assert!(!kind.affects().is_empty(), "{kind}");
        }
        // Donation tags name no widget: that is only right while donations reach every widget.
        for kind in [EventKind::DonationCompleted, EventKind::DonationRefunded] {
            let mut affected = kind.affects().to_vec();
            affected.sort_unstable();
            assert_eq!(affected, WidgetType::ALL, "{kind}");
        }
    }
}
