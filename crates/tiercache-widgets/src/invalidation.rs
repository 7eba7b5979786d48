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

    /// The tags whose views any of `events` can change, judged against this service's clock.
    pub fn tags_for_events(&self, events: &[DomainEvent]) -> BTreeSet<String> {
        let now = self.clock.now();
        events
            .iter()
            .flat_map(|event| tags_for_event(event, now))
            .collect()
    }

    /// Invalidates `tags` on every node, in one batch.
    pub async fn invalidate_tag_set(&self, tags: &BTreeSet<String>) -> Result<(), WidgetError> {
        self.cache.invalidate_tags(tags).await?;
        Ok(())
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
        let entry = SeedEntry { name, payload };
        // Before the name lookup, so a bad `created_at` stays the error reported even when the name
        // is unknown too.
        let created_at = created_at_of(payload).map_err(|reason| entry.invalid(reason))?;
        let kind = event_kind_named(name)?;
        Ok(match kind {
            EventKind::DonationCompleted | EventKind::DonationRefunded => {
                self.donation_events(&entry, kind, created_at).await?
            }
            EventKind::CampaignCreated
            | EventKind::CampaignUpdated
            | EventKind::CampaignCompleted => vec![self.campaign_event(&entry, kind).await?],
            EventKind::EmployeeJoined => vec![DomainEvent::EmployeeJoined {
                employee_id: entry.required("employee_id")?,
                organization_id: entry.required("organization_id")?,
            }],
            EventKind::OrganizationUpdated => vec![DomainEvent::OrganizationUpdated {
                organization_id: entry.required("organization_id")?,
            }],
        })
    }

    /// The donation events (`kind` is completed or refunded) of a donation entry, one per currency.
    async fn donation_events(
        &self,
        entry: &SeedEntry<'_>,
        kind: EventKind,
        created_at: Option<i64>,
    ) -> Result<Vec<DomainEvent>, WidgetError> {
        let campaign_id = entry.required("campaign_id")?;
        let organization_id = self.campaign_organization(entry, campaign_id).await?;
        let currencies = self.donation_currencies(entry).await?;
        Ok(currencies
            .into_iter()
            .map(|currency| {
                let facts =
                    entry.donation_facts(campaign_id, organization_id, currency, created_at);
                if kind == EventKind::DonationCompleted {
                    DomainEvent::DonationCompleted(facts)
                } else {
                    DomainEvent::DonationRefunded(facts)
                }
            })
            .collect())
    }

    /// The campaign event (`kind` is created, updated or completed) of a campaign entry.
    async fn campaign_event(
        &self,
        entry: &SeedEntry<'_>,
        kind: EventKind,
    ) -> Result<DomainEvent, WidgetError> {
        let campaign_id = entry.required("campaign_id")?;
        let facts = CampaignFacts {
            campaign_id,
            organization_id: self.campaign_organization(entry, campaign_id).await?,
        };
        Ok(match kind {
            EventKind::CampaignCreated => DomainEvent::CampaignCreated(facts),
            EventKind::CampaignUpdated => DomainEvent::CampaignUpdated(facts),
            _ => DomainEvent::CampaignCompleted(facts),
        })
    }

    /// The organisation of the entry's campaign: the directory's, else the entry's `organization_id`.
    async fn campaign_organization(
        &self,
        entry: &SeedEntry<'_>,
        campaign_id: i64,
    ) -> Result<i64, WidgetError> {
        // The directory's answer wins over the payload's: views filtered by a campaign are tagged with
        // the campaign's real organisation, and an event naming another would pass them by.
        if let Some(d) = &self.directory {
            if let Some(o) = d.organization_of(campaign_id).await? {
                return Ok(o);
            }
        }
        match (entry.int("organization_id"), &self.directory) {
            (Some(o), _) => Ok(o),
            (None, Some(_)) => Err(entry.invalid(format!("campaign {campaign_id} does not exist"))),
            (None, None) => {
                Err(entry.invalid("needs \"organization_id\" (no directory to look it up)".into()))
            }
        }
    }

    /// The currencies a donation entry counts in: its own `currency`, else every known currency.
    async fn donation_currencies(&self, entry: &SeedEntry<'_>) -> Result<Vec<String>, WidgetError> {
        if let Some(c) = entry.payload.get("currency").and_then(Value::as_str) {
            return Ok(vec![c.to_ascii_uppercase()]);
        }
        // Views are per currency and the entry does not say which one it changed.
        match &self.directory {
            Some(d) => d.currencies().await,
            None => {
                Err(entry.invalid("needs \"currency\" (no directory to list currencies)".into()))
            }
        }
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

/// The kind of event a seed event name stands for; an unknown name is an error listing the valid ones.
fn event_kind_named(name: &str) -> Result<EventKind, WidgetError> {
    Ok(match name {
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
    })
}

/// One `name → payload` entry of a [`WidgetInvalidationService::smart_invalidation`] batch.
struct SeedEntry<'a> {
    name: &'a str,
    payload: &'a Value,
}

impl SeedEntry<'_> {
    /// An [`WidgetError::InvalidEvent`] that blames this entry.
    fn invalid(&self, reason: String) -> WidgetError {
        WidgetError::InvalidEvent {
            event: self.name.to_owned(),
            reason,
        }
    }

    /// The payload's integer `field`, if it has one.
    fn int(&self, field: &str) -> Option<i64> {
        self.payload.get(field).and_then(Value::as_i64)
    }

    /// The payload's integer `field`; an error when it is missing or not an integer.
    fn required(&self, field: &str) -> Result<i64, WidgetError> {
        self.int(field)
            .ok_or_else(|| self.invalid(format!("needs an integer {field:?}")))
    }

    /// The donation the payload describes, counted in `currency`.
    fn donation_facts(
        &self,
        campaign_id: i64,
        organization_id: i64,
        currency: String,
        created_at: Option<i64>,
    ) -> DonationFacts {
        DonationFacts {
            donation_id: self.int("donation_id").unwrap_or(0),
            campaign_id,
            organization_id,
            employee_id: self.int("employee_id"),
            // The seed's payloads give whole units in `amount`.
            amount_cents: self
                .int("amount_cents")
                .or_else(|| self.int("amount").map(|a| a * 100))
                .unwrap_or(0),
            currency,
            created_at,
            donor: None,
        }
    }
}
