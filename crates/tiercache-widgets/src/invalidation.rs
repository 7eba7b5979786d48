//! [`WidgetInvalidationService`]: turns domain changes into the narrowest tag invalidations.

use std::collections::BTreeSet;

use serde_json::Value;
use tiercache::Cache;

use crate::data::WidgetDataAggregationService;
use crate::error::WidgetError;
use crate::events::{CampaignFacts, DomainEvent, DonationFacts, EventKind};
use crate::tags::tags_for_event;

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

/// Invalidates widget views on every node when the domain changes.
#[derive(Clone)]
pub struct WidgetInvalidationService {
    cache: Cache,
    directory: Option<WidgetDataAggregationService>,
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
        WidgetInvalidationService { cache, directory }
    }

    /// Invalidates the given tags.
    pub async fn invalidate_by_tags<I, S>(&self, tags: I) -> Result<(), WidgetError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.cache.invalidate_tags(tags).await?;
        Ok(())
    }

    /// Invalidates what `event` can change. Returns the number of tags invalidated.
    pub async fn invalidate_for_event(&self, event: &DomainEvent) -> Result<usize, WidgetError> {
        let tags = tags_for_event(event);
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
        for (name, payload) in pairs {
            for event in self.events_from(name, payload).await? {
                tags.extend(tags_for_event(&event));
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
        let organization_for = |campaign_id: i64| async move {
            match int("organization_id") {
                Some(o) => Ok(o),
                None => match &self.directory {
                    Some(d) => d
                        .organization_of(campaign_id)
                        .await?
                        .ok_or_else(|| bad(format!("campaign {campaign_id} does not exist"))),
                    None => Err(bad(
                        "needs \"organization_id\" (no directory to look it up)".into(),
                    )),
                },
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
