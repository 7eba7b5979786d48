//! Every widget query answered from the raw rows beside the rollups, at 200,000 and 2,000,000
//! generated donations (and 20,000,000 with `AGGREGATE_BENCH_DONATIONS=200000,2000000,20000000`):
//! the growth between sizes is the figure that matters. Then what a refresh pays per view and
//! donation: the view recomputed beside the view brought forward over the donation (`catch_up`).
//! Then the write cost: a donation committed with its rollups (the store's writer syncs every commit,
//! `synchronous = FULL`) beside a bare insert of the same row under `NORMAL` and under `FULL`, p50
//! and p99.
//!
//! The clock is fixed at 30 December 2026, noon UTC (the data ends there), the day on which
//! `this_month` and `this_year` hold the most donations. Generated files are kept in
//! `target/bench-data/` and reused by later runs.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tiercache_benches::{micros, quantile, Table};
use tiercache_demo::dataset::{self, DatasetSize};
use tiercache_widgets::{
    catch_up, AggregatePath, DonationStore, NewDonation, SqliteStore, TimeRange, WidgetFilters,
    WidgetType,
};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 30, 12, 0, 0).unwrap()
}

fn sizes() -> Vec<i64> {
    std::env::var("AGGREGATE_BENCH_DONATIONS")
        .unwrap_or_else(|_| "200000,2000000".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("AGGREGATE_BENCH_DONATIONS: comma-separated counts")
        })
        .collect()
}

fn label(n: i64) -> String {
    if n % 1_000_000 == 0 {
        format!("{}m", n / 1_000_000)
    } else {
        format!("{}k", n / 1_000)
    }
}

/// The demo's dataset of `n` donations, generated once into `target/bench-data/`.
fn store(n: i64) -> (SqliteStore, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("donations-{n}.sqlite"));
    let store = SqliteStore::open(&path).unwrap();
    let started = Instant::now();
    let size = DatasetSize {
        donations: n,
        ..DatasetSize::demo()
    };
    let rows = &mut dataset::rows(size, 1, now().timestamp());
    if store.import_if_empty(rows).unwrap() > 0 {
        println!(
            "generated {n} donations in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    (store, path)
}

/// The views measured: the hot global ones over one bucket and over many, and an organisation's month.
fn views() -> Vec<(&'static str, TimeRange, WidgetFilters)> {
    vec![
        (
            "global this_year",
            TimeRange::ThisYear,
            WidgetFilters::new(),
        ),
        (
            "global last_30_days",
            TimeRange::Last30Days,
            WidgetFilters::new(),
        ),
        (
            "org this_month",
            TimeRange::ThisMonth,
            WidgetFilters::new().with("organization_id", "3").unwrap(),
        ),
    ]
}

fn aggregates(c: &mut Criterion) {
    for n in sizes() {
        let (store, _) = store(n);
        let mut group = c.benchmark_group(format!("aggregates_{}", label(n)));
        for (name, range, filters) in views() {
            let (start, end) = range.resolve(now());
            let (start, end) = (start.timestamp(), end.timestamp());
            for widget in WidgetType::ALL {
                let parameter = format!("{widget} {name}");
                for (function, path) in [
                    ("raw_rows", AggregatePath::RawRows),
                    ("rollups", AggregatePath::Rollups),
                ] {
                    group.bench_with_input(
                        BenchmarkId::new(function, &parameter),
                        &path,
                        |b, path| {
                            b.iter(|| {
                                black_box(
                                    store.compute(widget, &filters, start, end, *path).unwrap(),
                                )
                            });
                        },
                    );
                }
            }
        }
        group.finish();
    }
}

/// What a dispatcher pays per view and batch: a view computed in one snapshot, then one donation in
/// its scope, then, in a later snapshot, the view recomputed (the baseline: what a batch did before
/// catch-up) beside the view brought forward over that donation (`catch_up`, with its point
/// lookups). On a copy of each dataset, so the generated files stay as they are.
fn catch_up_cost(c: &mut Criterion) {
    for n in sizes() {
        let (source, path) = store(n);
        drop(source);
        let scratch = std::env::temp_dir().join(format!(
            "tiercache-catch-up-bench-{}-{n}.sqlite",
            std::process::id()
        ));
        std::fs::copy(&path, &scratch).unwrap();
        let store = SqliteStore::open(&scratch).unwrap();
        let views = views();
        // Every view as of the same change, then one donation to organisation 3's first campaign
        // (campaign 51: 25 campaigns per organisation), by a donor who gave before.
        let mut before = Vec::new();
        store
            .read_snapshot(&mut |s| {
                let as_of = s.last_change()?;
                for (_, range, filters) in &views {
                    let (start, end) = range.resolve(now());
                    for widget in WidgetType::ALL {
                        let value =
                            s.compute(widget, filters, start.timestamp(), end.timestamp())?;
                        before.push((as_of, value));
                    }
                }
                Ok(())
            })
            .unwrap();
        store
            .record_donation(NewDonation {
                campaign_id: 51,
                employee_id: None,
                donor: "Donor 00042".into(),
                amount_cents: 2_500,
                currency: "EUR".into(),
                created_at: now().timestamp() - 3_600,
            })
            .unwrap();
        let mut group = c.benchmark_group(format!("catch_up_{}", label(n)));
        let mut known = before.into_iter();
        for (name, range, filters) in &views {
            let (start, end) = range.resolve(now());
            let (start, end) = (start.timestamp(), end.timestamp());
            for widget in WidgetType::ALL {
                let (as_of, value) = known.next().unwrap();
                let parameter = format!("{widget} {name}");
                group.bench_function(BenchmarkId::new("baseline_recompute", &parameter), |b| {
                    b.iter(|| {
                        store
                            .read_snapshot(&mut |s| {
                                black_box(s.compute(widget, filters, start, end)?);
                                Ok(())
                            })
                            .unwrap();
                    });
                });
                group.bench_function(BenchmarkId::new("catch_up", &parameter), |b| {
                    b.iter(|| {
                        store
                            .read_snapshot(&mut |s| {
                                let last = s.last_change()?;
                                let changes = s.changes_between(as_of, last)?.unwrap();
                                let forward =
                                    catch_up(s, widget, filters, start, end, &value, &changes)?;
                                black_box(forward.unwrap());
                                Ok(())
                            })
                            .unwrap();
                    });
                });
            }
        }
        group.finish();
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = scratch.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A bare writer of `scratch` committing with `synchronous` (`NORMAL` or `FULL`), in WAL mode as the
/// store's writer.
fn bare_writer(scratch: &std::path::Path, synchronous: &str) -> rusqlite::Connection {
    let bare = rusqlite::Connection::open(scratch).unwrap();
    bare.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};"
    ))
    .unwrap();
    bare.busy_timeout(Duration::from_secs(5)).unwrap();
    bare
}

/// Commits `rounds` donations each way, in turn, on a copy of the 200,000-donation file: the store's
/// `record_donation` (its writer syncs every commit, `synchronous = FULL`), and a bare insert of the
/// same row under `NORMAL` and under `FULL`, so the table shows what the durable commit costs apart
/// from what the rollups cost.
fn donation_write(_: &mut Criterion) {
    let (source, path) = store(200_000);
    drop(source);
    let scratch = std::env::temp_dir().join(format!(
        "tiercache-write-bench-{}.sqlite",
        std::process::id()
    ));
    std::fs::copy(&path, &scratch).unwrap();
    let store = SqliteStore::open(&scratch).unwrap();
    let bare_normal = bare_writer(&scratch, "NORMAL");
    let bare_full = bare_writer(&scratch, "FULL");
    let rounds = 2_000;
    let (mut with_rollups, mut insert_normal, mut insert_full) =
        (Vec::new(), Vec::new(), Vec::new());
    let insert = |bare: &rusqlite::Connection,
                  i: u32,
                  campaign: u32,
                  organization: u32,
                  at: i64| {
        let started = Instant::now();
        bare.execute(
            "INSERT INTO donations (campaign_id, organization_id, employee_id, donor, amount_cents, currency, created_at, status)
             VALUES (?1, ?2, NULL, ?3, 1250, 'EUR', ?4, 'completed')",
            rusqlite::params![campaign, organization, format!("Donor {:05}", i % 10_000), at],
        )
        .unwrap();
        started.elapsed()
    };
    for i in 0..rounds {
        let campaign = i % 500 + 1;
        let organization = (campaign - 1) / 25 + 1;
        let created_at = now().timestamp() - i64::from(i % 7) * 3_600;
        insert_normal.push(insert(&bare_normal, i, campaign, organization, created_at));
        insert_full.push(insert(&bare_full, i, campaign, organization, created_at));
        let started = Instant::now();
        store
            .record_donation(NewDonation {
                campaign_id: i64::from(campaign),
                employee_id: Some(i64::from(organization - 1) * 500 + 1),
                donor: format!("Donor {:05}", i % 10_000),
                amount_cents: 1250,
                currency: "EUR".into(),
                created_at,
            })
            .unwrap();
        with_rollups.push(started.elapsed());
    }
    let mut table = Table::new("donation_write");
    table.line(format!(
        "| commit of one donation ({rounds} each, in turn, 200,000 donations, WAL) | p50 | p99 |\n|---|---|---|"
    ));
    for (name, samples) in [
        (
            "bare insert (the row and its five indexes), synchronous = NORMAL",
            &mut insert_normal,
        ),
        (
            "bare insert (the row and its five indexes), synchronous = FULL",
            &mut insert_full,
        ),
        (
            "record_donation (the row, its rollups and its outbox row, one transaction), synchronous = FULL",
            &mut with_rollups,
        ),
    ] {
        table.line(format!(
            "| {name} | {} | {} |",
            micros(quantile(samples, 0.5)),
            micros(quantile(samples, 0.99))
        ));
    }
    table.finish();
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = scratch.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10)
}

criterion_group! { name = benches; config = config(); targets = aggregates, catch_up_cost, donation_write }
criterion_main!(benches);
