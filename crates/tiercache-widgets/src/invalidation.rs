//! [`WidgetInvalidationService`]: turns domain changes into the narrowest tag invalidations.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::DateTime;
use serde_json::Value;
use tiercache::Cache;

use crate::clock::{Clock, SystemClock};
use crate::data::WidgetDataAggregationService;
use crate::error::WidgetError;
use crate::events::{CampaignFacts, DomainEvent, DonationFacts, EventKind};
use crate::tags::{tags_for_event, tags_for_scope, Scope};

/// What happened to a donation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DonationAction {
    /// It was made (changes open ranges only).
    Created,
    /// Its amount or attribution changed.
    Updated,
    /// It was refunded.
    Refunded,
    /// It was removed.
    Deleted,
}

/// Event names accepted by [`WidgetInvalidationService::smart_invalidation`].
pub const EVENT_NAMES: [&str; 10] = [
    "donation_created",
    "donation_completed",
    "donation_updated",
    "donation_refunded",
    "donation_deleted",
    "campaign_created",
    "campaign_updated",
    "campaign_completed",
    "employee_joined",
    "organization_updated",
];

/// The tag every widget view carries.
const EVERY_VIEW: &str = "donation";

/// Invalidates widget views on every node when the domain changes.
#[derive(Clone)]
pub struct WidgetInvalidationService {
    cache: Cache,
    directory: Option<WidgetDataAggregationService>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WidgetInvalidationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WidgetInvalidationService")
            .finish_non_exhaustive()
    }
}

impl WidgetInvalidationService {
    /// A service over `cache`. With a `directory`, events that lack an organisation or currency (the
    /// seed's event maps do) are completed from the database instead of flushing whole widget types.
    pub fn new(cache: Cache, directory: Option<WidgetDataAggregationService>) -> Self {
        WidgetInvalidationService {
            cache,
            directory,
            clock: Arc::new(SystemClock),
        }
    }

    /// Judges which named ranges contain a donation's date against `clock` instead of the system
    /// clock (use the clock the widget services read).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Invalidates the given tags on every node.
    ///
    /// A scope tag means "this scope's data changed" and refreshes every view whose figures include
    /// it, whatever its widget, range or other filters: `campaign:<id>` reaches the global views, the
    /// campaign's organisation's views and the campaign's own, but not another organisation's or
    /// another campaign's of another organisation; `organization:<id>` and `employee:<id>` likewise.
    /// The directory supplies a campaign's organisation and the organisations an employee gave in;
    /// without one, `campaign:` and `employee:` tags refresh every view. An unknown campaign is an
    /// error. Any other tag (`donation`, `widget:<type>`, `widget:<type>:range:<range>`) is
    /// invalidated as it is.
    ///
    /// ```no_run
    /// # async fn run(invalidation: tiercache_widgets::WidgetInvalidationService) -> Result<(), tiercache_widgets::WidgetError> {
    /// invalidation.invalidate_by_tags(["campaign:123", "employee:7"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn invalidate_by_tags<I, S>(&self, tags: I) -> Result<(), WidgetError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = BTreeSet::new();
        for tag in tags {
            let tag = tag.as_ref();
            match self.scope_of(tag).await? {
                Some(Some(scope)) => out.extend(tags_for_scope(&scope)),
                // A scope the directory cannot place: every view may include it.
                Some(None) => {
                    out.insert(EVERY_VIEW.to_owned());
                }
                None => {
                    out.insert(tag.to_owned());
                }
            }
        }
        self.cache.invalidate_tags(&out).await?;
        Ok(())
    }

    /// The scope a scope tag names: `None` for other tags, `Some(None)` when it cannot be placed.
    async fn scope_of(&self, tag: &str) -> Result<Option<Option<Scope>>, WidgetError> {
        let Some((kind, id)) = tag
            .split_once(':')
            .and_then(|(k, v)| Some((k, v.parse::<i64>().ok()?)))
        else {
            return Ok(None);
        };
        Ok(Some(match (kind, &self.directory) {
            ("organization", _) => Some(Scope::Organization {
                organization_id: id,
            }),
            ("campaign", Some(d)) => {
                let organization_id =
                    d.organization_of(id)
                        .await?
                        .ok_or_else(|| WidgetError::InvalidEvent {
                            event: tag.to_owned(),
                            reason: format!("campaign {id} does not exist"),
                        })?;
                Some(Scope::Campaign {
                    campaign_id: id,
                    organization_id,
                })
            }
            ("employee", Some(d)) => Some(Scope::Employee {
                employee_id: id,
                organizations: d.organizations_of_employee(id).await?,
            }),
            ("campaign" | "employee", None) => None,
            _ => return Ok(None),
        }))
    }

    /// Invalidates what `event` can change. Returns the number of tags invalidated.
    pub async fn invalidate_for_event(&self, event: &DomainEvent) -> Result<usize, WidgetError> {
        let tags = tags_for_event(event, self.clock.now());
        self.cache.invalidate_tags(&tags).await?;
        Ok(tags.len())
    }

    /// Invalidates what a donation change can affect.
    pub async fn invalidate_for_donation(
        &self,
        donation: &DonationFacts,
        action: DonationAction,
    ) -> Result<usize, WidgetError> {
        let event = match action {
            DonationAction::Created => DomainEvent::DonationCompleted(donation.clone()),
            // Anything but a new donation may rewrite history.
            DonationAction::Updated | DonationAction::Refunded | DonationAction::Deleted => {
                DomainEvent::DonationRefunded(donation.clone())
            }
        };
        self.invalidate_for_event(&event).await
    }

    /// Invalidates what a campaign change can affect.
    pub async fn invalidate_for_campaign(
        &self,
        campaign_id: i64,
        organization_id: i64,
    ) -> Result<usize, WidgetError> {
        self.invalidate_for_event(&DomainEvent::CampaignUpdated(CampaignFacts {
            campaign_id,
            organization_id,
        }))
        .await
    }

    /// Invalidates for a batch of events in the seed's shape: an object mapping event names to payloads
    /// (`{"donation_created": {"campaign_id": 123, "employee_id": 7, "amount": 50}}`), or an array of such
    /// objects. All tags go out as one batch. Unknown event names are an error listing the valid ones.
    ///
    /// A donation payload may carry `created_at` (Unix seconds, or an RFC 3339 date-time): the date
    /// it counts in. Without one a new donation counts as made now, and a refund, update or deletion
    /// refreshes its scope's views of every period.
    pub async fn smart_invalidation(&self, events: &Value) -> Result<usize, WidgetError> {
        let mut pairs: Vec<(&str, &Value)> = Vec::new();
        let objects: Vec<&Value> = match events {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for object in objects {
            let Value::Object(map) = object else {
                return Err(WidgetError::InvalidEvent {
                    event: object.to_string(),
                    reason: "expected an object of event name → payload".into(),
                });
            };
            pairs.extend(map.iter().map(|(k, v)| (k.as_str(), v)));
        }
        let mut tags = BTreeSet::new();
        let now = self.clock.now();
        for (name, payload) in pairs {
            for event in self.events_from(name, payload).await? {
                tags.extend(tags_for_event(&event, now));
            }
        }
        self.cache.invalidate_tags(&tags).await?;
        Ok(tags.len())
    }

    /// The events a seed-shaped entry stands for; one per currency when the currency is not given.
    async fn events_from(
        &self,
        name: &str,
        payload: &Value,
    ) -> Result<Vec<DomainEvent>, WidgetError> {
        let bad = |reason: String| WidgetError::InvalidEvent {
            event: name.to_owned(),
            reason,
        };
        let int = |field: &str| payload.get(field).and_then(Value::as_i64);
        let created_at = created_at_of(payload).map_err(bad)?;
        let required =
            |field: &str| int(field).ok_or_else(|| bad(format!("needs an integer {field:?}")));
        let kind = match name {
            "donation_created" | "donation_completed" => EventKind::DonationCompleted,
            "donation_updated" | "donation_refunded" | "donation_deleted" => {
                EventKind::DonationRefunded
            }
            "campaign_created" => EventKind::CampaignCreated,
            "campaign_updated" => EventKind::CampaignUpdated,
            "campaign_completed" => EventKind::CampaignCompleted,
            "employee_joined" => EventKind::EmployeeJoined,
            "organization_updated" => EventKind::OrganizationUpdated,
            _ => {
                return Err(WidgetError::UnknownEvent {
                    given: name.to_owned(),
                    valid: EVENT_NAMES.join(", "),
                })
            }
        };
        // The directory's answer wins over the payload's: views filtered by a campaign are tagged with
        // the campaign's real organisation, and an event naming another would pass them by.
        let organization_for = |campaign_id: i64| async move {
            if let Some(d) = &self.directory {
                if let Some(o) = d.organization_of(campaign_id).await? {
                    return Ok(o);
                }
            }
            match (int("organization_id"), &self.directory) {
                (Some(o), _) => Ok(o),
                (None, Some(_)) => Err(bad(format!("campaign {campaign_id} does not exist"))),
                (None, None) => Err(bad(
                    "needs \"organization_id\" (no directory to look it up)".into(),
                )),
            }
        };
        Ok(match kind {
            EventKind::DonationCompleted | EventKind::DonationRefunded => {
                let campaign_id = required("campaign_id")?;
                let organization_id = organization_for(campaign_id).await?;
                let currencies = match payload.get("currency").and_then(Value::as_str) {
                    Some(c) => vec![c.to_ascii_uppercase()],
                    None => match &self.directory {
                        Some(d) => d.currencies().await?,
                        None => {
                            return Err(bad(
                                "needs \"currency\" (no directory to list currencies)".into()
                            ))
                        }
                    },
                };
                currencies
                    .into_iter()
                    .map(|currency| {
                        let facts = DonationFacts {
                            donation_id: int("donation_id").unwrap_or(0),
                            campaign_id,
                            organization_id,
                            employee_id: int("employee_id"),
                            amount_cents: int("amount_cents")
                                .or_else(|| int("amount").map(|a| a * 100))
                                .unwrap_or(0),
                            currency,
                            created_at,
                        };
                        if kind == EventKind::DonationCompleted {
                            DomainEvent::DonationCompleted(facts)
                        } else {
                            DomainEvent::DonationRefunded(facts)
                        }
                    })
                    .collect()
            }
            EventKind::CampaignCreated
            | EventKind::CampaignUpdated
            | EventKind::CampaignCompleted => {
                let campaign_id = required("campaign_id")?;
                let facts = CampaignFacts {
                    campaign_id,
                    organization_id: organization_for(campaign_id).await?,
                };
                vec![match kind {
                    EventKind::CampaignCreated => DomainEvent::CampaignCreated(facts),
                    EventKind::CampaignUpdated => DomainEvent::CampaignUpdated(facts),
                    _ => DomainEvent::CampaignCompleted(facts),
                }]
            }
            EventKind::EmployeeJoined => vec![DomainEvent::EmployeeJoined {
                employee_id: required("employee_id")?,
                organization_id: required("organization_id")?,
            }],
            EventKind::OrganizationUpdated => vec![DomainEvent::OrganizationUpdated {
                organization_id: required("organization_id")?,
            }],
        })
    }
}

/// The `created_at` of a seed-shaped payload: Unix seconds or an RFC 3339 date-time; `None` when absent.
fn created_at_of(payload: &Value) -> Result<Option<i64>, String> {
    match payload.get("created_at") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| "\"created_at\" must be whole Unix seconds".to_owned()),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp()))
            .map_err(|e| format!("\"created_at\" {s:?} is not RFC 3339: {e}")),
        Some(other) => Err(format!(
            "\"created_at\" must be Unix seconds or an RFC 3339 string, not {other}"
        )),
    }
}
