//! The rollups answer every widget exactly as the raw rows do: random donations (back-dated ones,
//! refunds, every currency, with and without an employee), random filters and random ranges (named
//! ranges at random instants, custom dates, and bounds at any second, as a time zone's midnight is).
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use tiercache_widgets::{AggregatePath, DonationStore, SqliteStore, WidgetType};

mod support;

use support::*;

fn check(store: &SqliteStore, views: &[View]) -> Result<(), TestCaseError> {
    for v in views {
        let widget = WidgetType::ALL[v.widget];
        let (start, end) = v.window.bounds();
        let filters = v.filters();
        let fast = store
            .compute(widget, &filters, start, end, AggregatePath::Rollups)
            .unwrap();
        let reference = store
            .compute(widget, &filters, start, end, AggregatePath::RawRows)
            .unwrap();
        prop_assert_eq!(
            fast,
            reference,
            "{:?} over [{}, {}) with {:?}",
            widget,
            start,
            end,
            filters
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn rollups_answer_as_the_raw_rows_do(
        seed in 0u64..1_000,
        changes in prop::collection::vec(change(), 0..60),
        views in prop::collection::vec(view(), 40),
    ) {
        let (db, store) = generated_store(seed);
        for c in &changes {
            apply(&store, c);
        }
        // The rollups kept by the writes, on top of the generator's (built in one pass).
        check(&store, &views)?;
        // A file whose rollups are of another version is rebuilt at open, from the rows alone.
        drop(store);
        rusqlite::Connection::open(db.path())
            .unwrap()
            .execute("UPDATE rollup_state SET value = 0 WHERE name = 'version'", [])
            .unwrap();
        check(&SqliteStore::open(db.path()).unwrap(), &views)?;
    }
}
