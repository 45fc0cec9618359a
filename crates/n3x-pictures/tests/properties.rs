//! `n3x lab report` reads any `report.json` it is given: whatever JSON (or series with odd
//! numbers) comes in, the page renders, escapes what it prints, and never panics.

use n3x_pictures::timeline::{Gap, LeaderChange, Series, Window, WritePoint};
use proptest::prelude::*;
use serde_json::{Value, json};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("lab".to_string()),
                    Just("scenarios".to_string()),
                    Just("series".to_string()),
                    ".{0,8}".prop_map(|s| s)
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![-1e6..1e7f64, Just(0.0), Just(f64::MIN_POSITIVE)]
}

prop_compose! {
    fn series()(
        from in finite(), len in finite(),
        writes in prop::collection::vec((0usize..4, finite(), prop::option::of(finite())), 0..80),
        windows in prop::collection::vec(("[a-z<&\"]{0,8}", ".{0,12}", finite(), finite()), 0..5),
        leaders in prop::collection::vec((finite(), prop::option::of("[a-z0-9-]{1,8}")), 0..5),
    ) -> Series {
        let mut s = Series {
            from_ms: from,
            to_ms: from + len,
            agents: vec!["a".into(), "b<".into()],
            writes: writes.into_iter().map(|(agent, at_ms, latency_ms)| WritePoint { agent, at_ms, latency_ms }).collect(),
            windows: windows.into_iter().map(|(kind, label, from_ms, to_ms)| Window { kind, label, from_ms, to_ms }).collect(),
            leaders: leaders.into_iter().map(|(at_ms, leader)| LeaderChange { at_ms, leader }).collect(),
            longest_gap: None,
            dropped: 0,
        };
        s.longest_gap = s.compute_longest_gap().or(Some(Gap { from_ms: 0.0, to_ms: 0.0 }));
        s
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_report_json_renders(v in any_json()) {
        let html = n3x_pictures::html::render(&v);
        prop_assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
        prop_assert!(!html.contains("<script"));
    }

    #[test]
    fn any_series_draws_and_escapes(s in series(), windows_first in any::<bool>()) {
        let mut s = s;
        if windows_first {
            s.windows.push(Window { kind: "profile".into(), label: "<b>&".into(), from_ms: 0.0, to_ms: 1e3 });
        }
        let svg = n3x_pictures::timeline::timeline("x<y", &s, "why & how");
        prop_assert!(!svg.contains("<b>"), "labels are escaped");
        for bad in ["=\"NaN", "=\"inf", "=\"-inf"] {
            prop_assert!(!svg.contains(bad), "no non-finite coordinate");
        }
        let _ = n3x_pictures::timeline::distributions(&s);
        let report = json!({"lab": {"cluster": "c"}, "scenarios": [{"name": "s", "passed": true, "series": s}]});
        let html = n3x_pictures::html::render(&report);
        prop_assert!(html.contains("class=\"writes\""));
    }
}
