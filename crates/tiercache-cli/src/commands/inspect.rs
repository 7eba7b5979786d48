//! `tiercache inspect`: one entry as Redis holds it.

use std::fmt::Write as _;

use tiercache::{EntryReport, EntryState, LeaseReport, LeaseState};
use tiercache_widgets::WidgetKey;

use crate::cli::{Global, InspectArgs};
use crate::connect::connect;
use crate::error::CliError;
use crate::exit::Exit;
use crate::format::{bytes, millis, ms, signed_millis};

/// What the report says about L1, which no outside reader can see.
const L1_NOTE: &str = "not knowable from outside the nodes: each node's L1 is private to its \
                       process; none serves a copy older than an invalidation of the key or its tags";

pub async fn run(global: &Global, args: &InspectArgs) -> Result<Exit, CliError> {
    let key = match (&args.key, args.widget) {
        (Some(key), _) => key.clone(),
        (None, Some(widget)) => {
            WidgetKey::new(widget, args.time_range, args.filters()?, chrono::Utc::now()).to_string()
        }
        (None, None) => {
            return Err(CliError::Refused(
                "name a key, or a view with --widget".into(),
            ))
        }
    };
    let node = connect(global).await?;
    let report = node
        .cache
        .admin()
        .inspect(&key)
        .await
        .map_err(|e| node.error(e))?;
    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?;
        super::emit(&format!(
            "{json}
"
        ));
    } else if !global.quiet {
        super::emit(&render(&report));
    }
    Ok(if report.state == EntryState::Missing {
        Exit::Warning
    } else {
        Exit::Ok
    })
}

fn state(report: &EntryReport) -> &'static str {
    match report.state {
        EntryState::Missing => "no: nothing is stored under this key",
        EntryState::Fresh => "yes, fresh: reads are answered with it",
        EntryState::Expired => "yes, expired: kept only as the fail-safe fallback",
        EntryState::Invalidated => "yes, invalidated: a tag moved on; the next read deletes it",
        EntryState::Unreadable => {
            "yes, unreadable: not tiercache's format; the next read deletes it"
        }
    }
}

fn lease(lease: Option<&LeaseReport>) -> String {
    let Some(lease) = lease else {
        return "none: no node is loading it".into();
    };
    let holder = lease.holder.as_ref().map_or_else(
        || "no node (the token names none)".to_owned(),
        |h| match &h.node_id {
            Some(id) => format!("node {id}"),
            None => format!("node {}… (gone)", h.node_prefix),
        },
    );
    let left = lease.expires_in_ms.map_or_else(
        || "never runs out".to_owned(),
        |ms| format!("{} left", millis(ms)),
    );
    let state = match lease.state {
        LeaseState::Held => "held by",
        LeaseState::HolderGone => "abandoned by",
        LeaseState::Unreadable => "unreadable; written by",
        LeaseState::NeverExpires => "stuck (no expiry); held by",
    };
    format!("{state} {holder}, {left}")
}

/// The report as aligned lines.
fn render(r: &EntryReport) -> String {
    let mut lines: Vec<(&str, String)> = vec![
        ("key", r.key.clone()),
        ("redis key", r.redis_key.clone()),
        ("in L2", state(r).to_owned()),
        ("in L1", L1_NOTE.to_owned()),
    ];
    let generation = match (&r.generation, r.generation_expires_in_ms) {
        (Some(g), Some(ms)) => format!("{g} (kept {} more)", millis(ms)),
        (Some(g), None) => g.clone(),
        (None, _) => "none (never invalidated, or long ago)".into(),
    };
    lines.push(("generation", generation));
    if r.state != EntryState::Missing {
        if let (Some(created), Some(age)) = (r.created_at_ms, r.age_ms) {
            let when = chrono::DateTime::from_timestamp_millis(created as i64).map_or_else(
                || created.to_string(),
                |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            );
            lines.push(("created", format!("{when} ({} ago)", millis(age))));
        }
        if let Some(fresh) = r.fresh_for_ms {
            let ttl = if fresh >= 0 {
                format!("{} left", signed_millis(fresh))
            } else {
                format!("expired {} ago", millis(fresh.unsigned_abs()))
            };
            lines.push(("ttl", ttl));
        }
        if let Some(left) = r.fail_safe_left_ms {
            let kept = r.kept_for_ms.map_or(String::new(), |k| {
                format!(" (Redis drops it in {})", millis(k))
            });
            lines.push(("fail-safe", format!("{} past expiry{kept}", millis(left))));
        }
        lines.push((
            "size",
            format!("{} ({} bytes)", bytes(r.size_bytes), r.size_bytes),
        ));
        if let Some(load) = r.load_micros {
            lines.push(("load time", format!("{} ms", ms(f64::from(load) / 1000.0))));
        }
        if r.tags.is_empty() {
            lines.push(("tags", "none".into()));
        }
        let tag_width = r
            .tags
            .iter()
            .map(|t| t.tag.chars().count())
            .max()
            .unwrap_or(0);
        for (i, tag) in r.tags.iter().enumerate() {
            let verdict = if tag.current {
                "current".to_owned()
            } else {
                match &tag.current_version {
                    Some(v) => format!("moved on (recorded {}, now {v})", tag.recorded_version),
                    None => "gone (evicted or flushed: counts as changed)".to_owned(),
                }
            };
            lines.push((
                if i == 0 { "tags" } else { "" },
                format!("{:<tag_width$}  {verdict}", tag.tag),
            ));
        }
    }
    lines.push(("lease", lease(r.lease.as_ref())));
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    lines.iter().fold(String::new(), |mut out, (k, v)| {
        let _ = writeln!(out, "{k:<width$}  {v}");
        out
    })
}
