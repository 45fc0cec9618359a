//! `report.html`: one self-contained page from `report.json` (inline CSS and SVG; no
//! script, no font, nothing fetched), so it opens from disk anywhere, and `n3x lab report`
//! draws it again from the JSON alone.

use std::fmt::Write as _;

use serde_json::Value;

use crate::graph;
use crate::svg::esc;
use crate::timeline::{self, Series};
use crate::topology::Topology;

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:24px auto;max-width:1500px;color:#222;padding:0 12px}\
h1{font-size:24px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}\
.meta{color:#555}table{border-collapse:collapse;width:100%;font-size:13px}\
td,th{border-bottom:1px solid #e4e4e4;padding:5px 8px;text-align:left;vertical-align:top}td:nth-child(-n+3){white-space:nowrap}\
.pass{color:#fff;background:#009E73;padding:1px 8px;border-radius:9px;font-size:12px}\
.fail{color:#fff;background:#D55E00;padding:1px 8px;border-radius:9px;font-size:12px}\
.failures{color:#A33}.figure{margin:8px 0}.figure svg{max-width:100%;height:auto}.metrics{color:#444}";

fn num(v: &Value) -> String {
    match v {
        Value::Number(x) => match x.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{f:.1}"),
            _ => x.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn badge(passed: bool) -> &'static str {
    if passed { r#"<span class="pass">pass</span>"# } else { r#"<span class="fail">FAIL</span>"# }
}

/// Scalar metrics as `name value` pairs (objects and lists are left to the charts).
fn metrics_line(m: &Value) -> String {
    m.as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_object() && !v.is_array())
                .map(|(k, v)| format!("{} {}", k.replace('_', " "), num(v)))
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .unwrap_or_default()
}

/// The page for a `report.json` value.
pub fn render(report: &Value) -> String {
    let lab = &report["lab"];
    let cluster = lab["cluster"].as_str().unwrap_or("?");
    let scenarios = report["scenarios"].as_array().cloned().unwrap_or_default();
    let passed = scenarios.iter().filter(|s| s["passed"] == true).count();
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>n3x lab report: {c}</title><style>{STYLE}</style></head><body>\n",
        c = esc(cluster)
    );
    let _ = writeln!(
        o,
        "<h1>lab <code>{}</code>: {} {} passed, {} failed</h1>",
        esc(cluster),
        badge(passed == scenarios.len()),
        passed,
        scenarios.len() - passed
    );
    let _ = writeln!(
        o,
        "<p class=\"meta\">{} hosts ({} servers), {} networks, {} fabric ({}), seed {}, up in {} ms (quorum {} ms); inventory {}</p>",
        num(&lab["hosts"]),
        num(&lab["servers"]),
        num(&lab["networks"]),
        esc(&num(&lab["fabric"])),
        esc(&num(&lab["fabric_reason"])),
        num(&lab["seed"]),
        num(&lab["bringup_ms"]),
        num(&lab["quorum_ms"]),
        esc(&num(&lab["inventory"]))
    );
    o.push_str("<table><tr><th>scenario</th><th>result</th><th>time</th><th>numbers</th></tr>\n");
    for s in &scenarios {
        let name = s["name"].as_str().unwrap_or("?");
        let _ = writeln!(
            o,
            "<tr><td><a href=\"#{id}\">{n}</a></td><td>{b}</td><td>{t:.1} s</td><td class=\"metrics\">{m}</td></tr>",
            id = esc(name),
            n = esc(name),
            b = badge(s["passed"] == true),
            t = s["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0,
            m = esc(&metrics_line(&s["metrics"]))
        );
    }
    o.push_str("</table>\n");
    if let Ok(t) = serde_json::from_value::<Topology>(report["topology"].clone()) {
        let _ = writeln!(o, "<h2 id=\"topology\">Topology</h2>\n<div class=\"figure\">{}</div>", graph::svg(&t));
    }
    for s in &scenarios {
        let name = s["name"].as_str().unwrap_or("?");
        let _ =
            writeln!(o, "<h2 id=\"{id}\">{n} {b}</h2>", id = esc(name), n = esc(name), b = badge(s["passed"] == true));
        let failures: Vec<String> = s["failures"]
            .as_array()
            .map(|f| f.iter().filter_map(|x| x.as_str().map(esc)).collect())
            .unwrap_or_default();
        if !failures.is_empty() {
            let _ = writeln!(o, "<ul class=\"failures\"><li>{}</li></ul>", failures.join("</li><li>"));
        }
        let _ = writeln!(o, "<p class=\"metrics\">{}</p>", esc(&metrics_line(&s["metrics"])));
        let series: Series = serde_json::from_value(s["series"].clone()).unwrap_or_default();
        let why = if s["series"].is_null() {
            "this report has no time series (written before they were recorded)".to_owned()
        } else if !failures.is_empty() {
            format!("the scenario failed: {}", s["failures"][0].as_str().unwrap_or(""))
        } else {
            "no agent wrote during this scenario".to_owned()
        };
        let _ = writeln!(o, "<div class=\"figure\">{}</div>", timeline::timeline(name, &series, &why));
        if let Some(d) = timeline::distributions(&series) {
            let _ = writeln!(o, "<div class=\"figure\">{d}</div>");
        }
    }
    o.push_str("<p class=\"meta\">Written by n3x from report.json; every chart is drawn from the series there.</p>\n</body></html>\n");
    o
}
