//! A view brought forward over the donations and refunds committed after it answers exactly as the
//! view recomputed: random data, random views computed in one snapshot, random changes after, and
//! every view caught up in a later snapshot compared with its recompute in that snapshot.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use tiercache_widgets::{catch_up, DonationStore, SqliteStore, WidgetData, WidgetType};

mod support;

use support::*;

/// The views' answers and the last change they count, read in one snapshot.
fn snapshot_of(store: &SqliteStore, views: &[View]) -> (i64, Vec<WidgetData>) {
    let mut out = (0, Vec::new());
    store
        .read_snapshot(&mut |s| {
            out.0 = s.last_change()?;
            for v in views {
                let (start, end) = v.window.bounds();
                out.1
                    .push(s.compute(WidgetType::ALL[v.widget], &v.filters(), start, end)?);
            }
            Ok(())
        })
        .unwrap();
    out
}

/// Each view caught up from `then` to now, beside its recompute now: `None` where catch-up gave up.
fn caught_up(
    store: &SqliteStore,
    views: &[View],
    then: &(i64, Vec<WidgetData>),
) -> Vec<(Option<WidgetData>, WidgetData)> {
    let mut out = Vec::new();
    store
        .read_snapshot(&mut |s| {
            let last = s.last_change()?;
            let changes = s.changes_between(then.0, last)?.unwrap();
            assert_eq!(changes.len() as i64, last - then.0, "every change is kept");
            for (v, old) in views.iter().zip(&then.1) {
                let (start, end) = v.window.bounds();
                let (widget, filters) = (WidgetType::ALL[v.widget], v.filters());
                let forward = catch_up(s, widget, &filters, start, end, old, &changes)?;
                out.push((forward, s.compute(widget, &filters, start, end)?));
            }
            Ok(())
        })
        .unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn a_view_brought_forward_answers_as_its_recompute(
        seed in 0u64..1_000,
        before in prop::collection::vec(change(), 0..30),
        after in prop::collection::vec(change(), 1..40),
        views in prop::collection::vec(view(), 40),
    ) {
        let (_db, store) = generated_store(seed);
        for c in &before {
            apply(&store, c);
        }
        let then = snapshot_of(&store, &views);
        for c in &after {
            apply(&store, c);
        }
        let campaigns_changed = after.iter().any(|c| matches!(c, Change::Campaign { .. }));
        for (v, (forward, recomputed)) in views.iter().zip(caught_up(&store, &views, &then)) {
            let widget = WidgetType::ALL[v.widget];
            match forward {
                Some(forward) => prop_assert_eq!(forward, recomputed, "{:?} {:?}", v, widget),
                // Only a list whose next row it never held makes it give up on donations, and
                // only the widgets that show campaigns on a new campaign.
                None => prop_assert!(
                    matches!(
                        widget,
                        WidgetType::TopDonors
                            | WidgetType::CampaignPerformance
                            | WidgetType::RecentActivities
                    ) || (campaigns_changed && widget == WidgetType::OrganizationStats),
                    "{:?} gave up on {:?}", widget, v
                ),
            }
        }
    }
}

/// A donor outside a full top list who now gives enough enters it, found by one lookup; one who
/// does not stays out; totals and trends follow every donation.
#[test]
fn a_new_donor_enters_a_full_top_list_without_a_recompute() {
    let (_db, store) = generated_store(7);
    let views: Vec<View> = (0..7)
        .map(|widget| View {
            widget,
            organization: None,
            campaign: None,
            employee: None,
            currency: None,
            limit: Some(3),
            window: Window::Custom(30, 60),
        })
        .collect();
    let then = snapshot_of(&store, &views);
    for cents in [1, 100_000_000] {
        apply(
            &store,
            &Change::Donate {
                campaign: 1,
                employee: Some(0),
                donor: 200,
                cents,
                currency: 0,
                ago: DAY,
            },
        );
    }
    let results = caught_up(&store, &views, &then);
    for (v, (forward, recomputed)) in views.iter().zip(&results) {
        assert_eq!(
            forward.as_ref(),
            Some(recomputed),
            "{:?}",
            WidgetType::ALL[v.widget]
        );
    }
    let WidgetData::TopDonors(top) = &results[3].1 else {
        panic!("top donors")
    };
    assert_eq!(top[0].donor, "Donor 00200");
}
