//! Each widget type: a cached read (L1 hit through `WidgetCacheService`) beside the direct SQLite
//! aggregate it saves, same run, over 200,000 generated donations.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tiercache_benches::{node, runtime};
use tiercache_demo::dataset::{generate_if_empty, DatasetSize};
use tiercache_testkit::RedisServer;
use tiercache_widgets::{
    TimeRange, WidgetCacheMetricsService, WidgetCacheService, WidgetDataAggregationService,
    WidgetFilters, WidgetType,
};

fn widgets(c: &mut Criterion) {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let dir = std::env::temp_dir().join(format!("tiercache-widget-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = WidgetDataAggregationService::open(dir.join("bench.sqlite3")).unwrap();
    let size = DatasetSize {
        donations: 200_000,
        ..DatasetSize::demo()
    };
    rt.block_on(generate_if_empty(&data, size, 1, Utc::now()))
        .unwrap();
    let service = WidgetCacheService::new(
        rt.block_on(node(&redis.url(), "widgets")),
        data.clone(),
        WidgetCacheMetricsService::in_memory(),
    );
    let filters = WidgetFilters::new().with("organization_id", "3").unwrap();
    let range = TimeRange::ThisYear;

    let mut group = c.benchmark_group("widget_read");
    for widget in WidgetType::ALL {
        let read = || service.fetch_view(widget, range, filters.clone());
        rt.block_on(read()).unwrap();
        group.bench_with_input(BenchmarkId::new("cached", widget), &widget, |b, _| {
            b.to_async(&rt)
                .iter(|| async { black_box(read().await.unwrap()) });
        });
        group.bench_with_input(
            BenchmarkId::new("direct_sqlite", widget),
            &widget,
            |b, _| {
                b.to_async(&rt).iter(|| async {
                    black_box(
                        data.compute(widget, range, filters.clone(), Utc::now())
                            .await
                            .unwrap(),
                    )
                });
            },
        );
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
}

criterion_group! { name = benches; config = config(); targets = widgets }
criterion_main!(benches);
