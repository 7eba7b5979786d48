//! `tiercache cache-cleanup`: abandoned leases, expired entries, or (`--force`) the whole namespace.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use futures_util::StreamExt;
use tiercache::{EntryReport, EntryState, KeyKind, LeaseKind, LeaseReport, LeaseState};

use super::say;
use crate::cli::{CleanupArgs, Global};
use crate::connect::{connect, Connected};
use crate::error::CliError;
use crate::exit::Exit;
use crate::format::{count, millis};

/// Entries inspected at once while looking for expired ones.
const INSPECT_AT_ONCE: usize = 16;

pub async fn run(global: &Global, args: &CleanupArgs) -> Result<Exit, CliError> {
    let node = connect(global).await?;
    let outcome = clean(global, args, &node).await;
    node.finish(outcome).await
}

async fn clean(global: &Global, args: &CleanupArgs, node: &Connected) -> Result<Exit, CliError> {
    if args.force {
        return clear(global, args, node).await;
    }
    // Neither named: both.
    let (locks, expired) = if args.locks || args.expired_only {
        (args.locks, args.expired_only)
    } else {
        (true, true)
    };
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut failed = 0u64;
    if locks {
        let (removed, kept, errors) = clean_leases(global, args, node).await?;
        failed += errors;
        say!(
            global,
            "{verb} {} abandoned lease(s) and lock(s); {} held by running nodes kept",
            count(removed),
            count(kept)
        );
    }
    if expired {
        let (removed, errors) = clean_expired(global, args, node).await?;
        failed += errors;
        let told = if args.dry_run || removed == 0 {
            ""
        } else {
            "; every node told to drop them from L1"
        };
        say!(
            global,
            "{verb} {} expired entr{}{told}",
            count(removed),
            if removed == 1 { "y" } else { "ies" }
        );
    }
    if args.dry_run {
        say!(global, "dry run: nothing was changed");
    }
    Ok(if failed > 0 { Exit::Warning } else { Exit::Ok })
}

fn describe(lease: &LeaseReport) -> String {
    let what = match &lease.kind {
        LeaseKind::Load(key) => format!("load lease of {key:?}"),
        LeaseKind::Named(name) => format!("named lock {name:?}"),
    };
    let why = match lease.state {
        LeaseState::Held => "held".to_owned(),
        LeaseState::HolderGone => format!(
            "holder node {}… is gone",
            lease
                .holder
                .as_ref()
                .map_or("?", |h| h.node_prefix.as_str())
        ),
        LeaseState::Unreadable => "not a token".to_owned(),
        LeaseState::NeverExpires => "no expiry".to_owned(),
    };
    let left = lease
        .expires_in_ms
        .map_or_else(String::new, |ms| format!(", {} left", millis(ms)));
    format!("{what} ({why}{left})")
}

/// Removes (or lists) abandoned leases: removed, kept because held, failed.
async fn clean_leases(
    global: &Global,
    args: &CleanupArgs,
    node: &Connected,
) -> Result<(u64, u64, u64), CliError> {
    let leases = node
        .cache
        .admin()
        .leases()
        .await
        .map_err(|e| node.error(e))?;
    let (mut removed, mut kept, mut failed) = (0, 0, 0);
    for lease in &leases {
        if !lease.state.is_abandoned() {
            kept += 1;
            if global.verbose > 0 {
                say!(global, "kept {}", describe(lease));
            }
            continue;
        }
        if args.dry_run {
            removed += 1;
            say!(global, "would remove {}", describe(lease));
            continue;
        }
        match node.cache.admin().remove_abandoned_lease(lease).await {
            Ok(true) => {
                removed += 1;
                if global.verbose > 0 {
                    say!(global, "removed {}", describe(lease));
                }
            }
            Ok(false) => {
                kept += 1;
                if global.verbose > 0 {
                    say!(global, "kept {}: taken again since", describe(lease));
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("could not remove {}: {}", describe(lease), node.error(e));
            }
        }
    }
    Ok((removed, kept, failed))
}

/// Removes (or lists) entries past their logical expiry: removed, failed.
async fn clean_expired(
    global: &Global,
    args: &CleanupArgs,
    node: &Connected,
) -> Result<(u64, u64), CliError> {
    let entries: Vec<String> = node
        .cache
        .admin()
        .scan_namespace()
        .await
        .map_err(|e| node.error(e))?
        .into_iter()
        .filter(|k| k.kind == KeyKind::Entry)
        .map(|k| k.name)
        .collect();
    let reports: Vec<Result<EntryReport, tiercache::Error>> = futures_util::stream::iter(entries)
        .map(|key| {
            let cache = &node.cache;
            async move { cache.admin().inspect(&key).await }
        })
        .buffer_unordered(INSPECT_AT_ONCE)
        .collect()
        .await;
    let (mut removed, mut failed) = (0, 0);
    for report in reports {
        let report = match report {
            Ok(r) if r.state == EntryState::Expired => r,
            Ok(_) => continue,
            Err(e) => {
                failed += 1;
                eprintln!("could not inspect an entry: {}", node.error(e));
                continue;
            }
        };
        let ago = report.fresh_for_ms.map_or_else(String::new, |ms| {
            format!(", expired {} ago", millis(ms.unsigned_abs()))
        });
        if args.dry_run {
            removed += 1;
            say!(global, "would remove entry {:?}{ago}", report.key);
            continue;
        }
        match node.cache.admin().remove_expired_entry(&report).await {
            Ok(true) => {
                removed += 1;
                if global.verbose > 0 {
                    say!(global, "removed entry {:?}{ago}", report.key);
                }
            }
            Ok(false) => {
                if global.verbose > 0 {
                    say!(global, "kept entry {:?}: stored again since", report.key);
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("could not remove entry {:?}: {}", report.key, node.error(e));
            }
        }
    }
    Ok((removed, failed))
}

/// `--force`: every cache key of the namespace, after asking.
async fn clear(global: &Global, args: &CleanupArgs, node: &Connected) -> Result<Exit, CliError> {
    let keys = node
        .cache
        .admin()
        .scan_namespace()
        .await
        .map_err(|e| node.error(e))?;
    let doomed: Vec<_> = keys.iter().filter(|k| k.kind.is_cache_data()).collect();
    let mut by_kind: BTreeMap<KeyKind, u64> = BTreeMap::new();
    for key in &doomed {
        *by_kind.entry(key.kind).or_default() += 1;
    }
    let summary = kinds(&by_kind);
    let total = doomed.len();
    if args.dry_run {
        if global.verbose > 0 {
            for key in &doomed {
                say!(global, "would remove {} {}", key.kind, key.redis_key);
            }
        }
        say!(
            global,
            "would remove {} key(s) of namespace {:?}{summary}; dry run: nothing was changed",
            count(total as u64),
            global.namespace
        );
        return Ok(Exit::Ok);
    }
    if !args.yes {
        let question = format!(
            "remove every cache key of namespace {:?} at {}: {} key(s){summary}? every node drops its L1 [y/N] ",
            global.namespace,
            node.url,
            count(total as u64)
        );
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Refused(format!(
                "--force would remove {} key(s) of namespace {:?}, and there is no terminal to confirm on: add --yes",
                count(total as u64),
                global.namespace
            )));
        }
        if !confirm(&question)? {
            eprintln!("nothing removed");
            return Ok(Exit::Warning);
        }
    }
    let report = node
        .cache
        .admin()
        .clear_namespace()
        .await
        .map_err(|e| node.error(e))?;
    say!(
        global,
        "removed {} key(s) of namespace {:?}{}; every node told to drop its L1",
        count(report.total()),
        global.namespace,
        kinds(&report.removed)
    );
    Ok(Exit::Ok)
}

/// ` (12 entry, 3 tag_version)`, or nothing.
fn kinds(by_kind: &BTreeMap<KeyKind, u64>) -> String {
    if by_kind.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!(" ({})", parts.join(", "))
}

/// Asks on stderr, reads a line from stdin; only `y` or `yes` is consent.
fn confirm(question: &str) -> Result<bool, CliError> {
    let mut err = std::io::stderr();
    err.write_all(question.as_bytes())?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
