//! `GET /sales_statistics` against an independent recomputation of the
//! sample data, and the HTTP API's edges.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;

use crate::helpers::{figures, TestApp};

/// (quantity, revenue in ten-thousandths, sales) per item and per month.
type Expected = BTreeMap<String, (BTreeMap<String, (u64, u128, u64)>, (u64, u128, u64))>;

fn sample_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// Recomputes the statistics from the sample files with nothing but
/// text handling: the month is the first seven characters of the date
/// (its own local date), the price is read digit by digit.
fn recompute(dir: &Path, expected: &mut Expected) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            recompute(&path, expected);
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let fields: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(&text).unwrap();
        let item: String = serde_json::from_str(fields["item"].get()).unwrap();
        let date: String = serde_json::from_str(fields["date"].get()).unwrap();
        let quantity: u64 = fields["quantity"].get().parse().unwrap();
        let revenue = u128::from(quantity) * price_units(fields["price"].get());

        let (months, total) = expected.entry(item).or_default();
        let month = months.entry(date[..7].to_string()).or_default();
        for figures in [month, total] {
            figures.0 += quantity;
            figures.1 += revenue;
            figures.2 += 1;
        }
    }
}

fn price_units(text: &str) -> u128 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let fraction = format!("{fraction:0<4}");
    whole.parse::<u128>().unwrap() * 10_000 + fraction.parse::<u128>().unwrap()
}

fn revenue_text(units: u128) -> String {
    let fraction = format!("{:04}", units % 10_000);
    let fraction = fraction.trim_end_matches('0');
    format!(
        "{}.{}",
        units / 10_000,
        if fraction.is_empty() { "0" } else { fraction }
    )
}

#[tokio::test]
async fn statistics_of_the_sample_data_equal_an_exact_recomputation() {
    let app = TestApp::start_with(|settings| {
        settings.seed_data = sample_data();
        settings.no_seed = false;
    })
    .await;
    let mut expected = Expected::new();
    recompute(&sample_data(), &mut expected);

    let statistics = app.statistics().await;

    let items: Vec<&String> = statistics.as_object().unwrap().keys().collect();
    assert_eq!(items, expected.keys().collect::<Vec<_>>());
    let mut sales = 0;
    for (item, (months, total)) in &expected {
        let reported = &statistics[item];
        assert_eq!(
            figures(reported),
            (total.0, revenue_text(total.1), total.2),
            "{item}"
        );
        assert_eq!(
            reported["average_per_sale"],
            total.0 as f64 / total.2 as f64
        );
        assert_eq!(reported["monthly"].as_object().unwrap().len(), months.len());
        for (month, figures_of_month) in months {
            let (quantity, revenue, count) = *figures_of_month;
            let got = &reported["monthly"][month];
            assert_eq!(
                figures(got),
                (quantity, revenue_text(revenue), count),
                "{item} {month}"
            );
            assert_eq!(got["average_per_sale"], quantity as f64 / count as f64);
        }
        sales += total.2;
    }
    assert_eq!(sales, 10_000);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused() {
    let app = TestApp::start().await;

    let (missing, _) = app.server.get("/nope").await.unwrap();
    let (health, body) = app.server.get("/healthz").await.unwrap();
    let (head, head_body) = app
        .server
        .request("HEAD", "/sales_statistics")
        .await
        .unwrap();
    let (post, _) = app
        .server
        .request("POST", "/sales_statistics")
        .await
        .unwrap();
    let (delete, _) = app
        .server
        .request("DELETE", "/sales_statistics")
        .await
        .unwrap();

    assert_eq!(missing, 404);
    assert_eq!((health, body.as_str()), (200, "ok\n"));
    assert_eq!((head, head_body.as_str()), (200, ""));
    assert_eq!((post, delete), (405, 405));
}
