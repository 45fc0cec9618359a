//! The report of `n3x lab run`: `report.json`, `junit.xml` and the terminal summary.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::LabError;
use crate::plan::LabPlan;
use crate::probe::Write;
use crate::scenario::ScenarioResult;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub lab: LabInfo,
    pub scenarios: Vec<ScenarioResult>,
    pub passed: bool,
    /// The cluster's hosts, interfaces and networks, for the report's topology picture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<n3x_pictures::Topology>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LabInfo {
    pub cluster: String,
    pub inventory: String,
    pub hosts: usize,
    pub servers: usize,
    pub networks: usize,
    pub fabric: String,
    pub fabric_reason: String,
    pub seed: u64,
    pub bringup_ms: f64,
    pub quorum_ms: f64,
    pub teardown_ms: Option<f64>,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn junit(r: &Report) -> String {
    let failures = r.scenarios.iter().filter(|s| !s.passed).count();
    let total: f64 = r.scenarios.iter().map(|s| s.duration_ms).sum::<f64>() / 1000.0;
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"n3x lab\" tests=\"{}\" failures=\"{failures}\" time=\"{total:.3}\">",
        r.scenarios.len()
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"n3x.lab.{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{total:.3}\">",
        xml_escape(&r.lab.cluster),
        r.scenarios.len()
    );
    for s in &r.scenarios {
        let _ = write!(
            x,
            "    <testcase name=\"{}\" classname=\"n3x.lab.{}\" time=\"{:.3}\"",
            xml_escape(&s.name),
            xml_escape(&r.lab.cluster),
            s.duration_ms / 1000.0
        );
        if s.passed {
            x.push_str(" />\n");
        } else {
            let msg = xml_escape(&s.failures.join("; "));
            let _ = writeln!(x, ">\n      <failure message=\"{msg}\">{msg}</failure>\n    </testcase>");
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Writes `report.json`, `junit.xml` and `report.html` into `dir` (created if needed),
/// each atomically.
pub fn write(dir: &Path, r: &Report) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let value = serde_json::to_value(r).map_err(std::io::Error::other)?;
    let json = serde_json::to_vec_pretty(&value).map_err(std::io::Error::other)?;
    n3x_fs::write(&dir.join("report.json"), &json, None)?;
    n3x_fs::write(&dir.join("junit.xml"), junit(r).as_bytes(), None)?;
    n3x_fs::write(&dir.join("report.html"), n3x_pictures::html::render(&value).as_bytes(), None)
}

/// `n3x lab report DIR`: `report.html` drawn again from `DIR/report.json`.
pub fn rerender(dir: &Path) -> Result<std::path::PathBuf, LabError> {
    let json_path = dir.join("report.json");
    let text =
        std::fs::read_to_string(&json_path).map_err(|e| LabError::io(format!("read {}", json_path.display()), e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| LabError::BadValue {
        flag: "DIR".into(),
        value: json_path.display().to_string(),
        why: format!("not a report.json: {e}"),
    })?;
    if !value["scenarios"].is_array() {
        return Err(LabError::BadValue {
            flag: "DIR".into(),
            value: json_path.display().to_string(),
            why: "not a report.json of `n3x lab run` (no `scenarios`)".into(),
        });
    }
    let html = dir.join("report.html");
    n3x_fs::write(&html, n3x_pictures::html::render(&value).as_bytes(), None)
        .map_err(|e| LabError::io(format!("write {}", html.display()), e))?;
    Ok(html)
}

fn metric_summary(s: &ScenarioResult) -> String {
    let pick = |k: &str| {
        s.metrics.get(k).map(|v| match v {
            Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), |f| format!("{f:.0}")),
            Value::String(t) => t.clone(),
            other => other.to_string(),
        })
    };
    let mut parts = Vec::new();
    for (k, label) in [
        ("bringup_ms", "up ms"),
        ("leader", "leader"),
        ("killed", "killed"),
        ("isolated", "isolated"),
        ("writes_resumed_ms", "resumed ms"),
        ("elected_within_ms", "elected ms"),
        ("writes_acked_without_quorum", "acked w/o quorum"),
        ("isolated_acked", "isolated acked"),
        ("acked_writes", "acked"),
        ("lost_writes", "lost"),
        ("longest_write_gap_ms", "outage ms"),
        ("snapshot_revision", "snapshot rev"),
        ("acked_before_snapshot", "kept"),
        ("lost_by_design", "lost by design"),
        ("recovery_point_ms", "RPO ms"),
        ("restore_ms", "restore ms"),
        ("recovery_ms", "RTO ms"),
    ] {
        if let Some(v) = pick(k) {
            parts.push(format!("{label} {v}"));
        }
    }
    if let Some(Value::Object(profiles)) = s.metrics.get("profiles") {
        for (name, v) in profiles {
            parts.push(format!(
                "{name}: {:.0}% p50 {:.0} ms",
                v["success_pct"].as_f64().unwrap_or(0.0),
                v["p50_ms"].as_f64().unwrap_or(0.0)
            ));
        }
    }
    parts.join(", ")
}

/// The last `lines` writes of `agent`'s probe, one line each, oldest first; `server_name`
/// names a server by its index in the plan's hosts.
pub fn write_log(writes: &[Write], agent: &str, lines: usize, server_name: &dyn Fn(usize) -> String) -> String {
    let mine: Vec<&Write> = writes.iter().filter(|w| w.agent == agent).collect();
    let mut o = String::new();
    for w in &mine[mine.len().saturating_sub(lines)..] {
        let outcome =
            w.acked_ms.map_or("no ack".to_owned(), |t| format!("acked in {:.1} ms, rev {}", t - w.sent_ms, w.revision));
        let _ = writeln!(o, "{:>10.1} ms  write {} via {}: {outcome}", w.sent_ms, w.key(), server_name(w.server));
    }
    o
}

/// A host's recent log: the last `lines` of its service's log (servers run etcd), or for an
/// agent, which runs no process, its probe's last writes.
pub fn host_log(
    dir: &Path,
    cluster: &str,
    plan: Option<&LabPlan>,
    host: &str,
    lines: usize,
) -> Result<String, LabError> {
    if let Some(p) = plan {
        if p.host(host).is_none() {
            return Err(LabError::UnknownHost { host: host.to_owned(), cluster: cluster.to_owned() });
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("logs").join(format!("{host}.log"))) {
        let all: Vec<&str> = text.lines().collect();
        return Ok(all[all.len().saturating_sub(lines)..].join("\n") + "\n");
    }
    let writes = crate::control::writes(dir, 0)?;
    let name = |i: usize| plan.and_then(|p| p.hosts.get(i)).map_or(format!("host #{i}"), |h| h.name.clone());
    let out = write_log(&writes, host, lines, &name);
    if out.is_empty() {
        return Err(LabError::NoLog { cluster: cluster.to_owned(), host: host.to_owned() });
    }
    Ok(out)
}

/// The summary table printed at the end of a run.
pub fn summary(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "lab `{}`: {} hosts ({} servers), {} fabric ({}), up in {:.0} ms",
        r.lab.cluster, r.lab.hosts, r.lab.servers, r.lab.fabric, r.lab.fabric_reason, r.lab.bringup_ms
    );
    let w = r.scenarios.iter().map(|s| s.name.len()).max().unwrap_or(8).max(8);
    let _ = writeln!(o, "  {:w$}  {:6}  {:>8}  metrics", "SCENARIO", "RESULT", "TIME");
    for s in &r.scenarios {
        let _ = writeln!(
            o,
            "  {:w$}  {:6}  {:>7.1}s  {}",
            s.name,
            if s.passed { "pass" } else { "FAIL" },
            s.duration_ms / 1000.0,
            metric_summary(s)
        );
        for f in &s.failures {
            let _ = writeln!(o, "  {:w$}    - {f}", "");
        }
    }
    let failed = r.scenarios.iter().filter(|s| !s.passed).count();
    let _ = writeln!(o, "{} passed, {failed} failed", r.scenarios.len() - failed);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_escapes_and_counts_failures() {
        let r = Report {
            lab: LabInfo {
                cluster: "c".into(),
                inventory: "n3x.toml".into(),
                hosts: 5,
                servers: 3,
                networks: 2,
                fabric: "kernel".into(),
                fabric_reason: "asked".into(),
                seed: 1,
                bringup_ms: 900.0,
                quorum_ms: 700.0,
                teardown_ms: None,
            },
            scenarios: vec![
                ScenarioResult {
                    name: "formation".into(),
                    passed: true,
                    duration_ms: 10.0,
                    metrics: Default::default(),
                    failures: vec![],
                    series: None,
                },
                ScenarioResult {
                    name: "partition".into(),
                    passed: false,
                    duration_ms: 2000.0,
                    metrics: Default::default(),
                    failures: vec!["a <b> & \"c\"".into()],
                    series: None,
                },
            ],
            passed: false,
            topology: None,
        };
        let x = junit(&r);
        let ws = [
            Write {
                agent: "a".into(),
                seq: 1,
                server: 0,
                sent_ms: 1.0,
                acked_ms: Some(3.5),
                revision: 7,
                value: String::new(),
            },
            Write {
                agent: "b".into(),
                seq: 1,
                server: 1,
                sent_ms: 2.0,
                acked_ms: None,
                revision: 0,
                value: String::new(),
            },
            Write {
                agent: "a".into(),
                seq: 2,
                server: 1,
                sent_ms: 5.0,
                acked_ms: None,
                revision: 0,
                value: String::new(),
            },
        ];
        let log = write_log(&ws, "a", 1, &|i| format!("s{i}"));
        assert_eq!(log, "       5.0 ms  write /n3x/probe/a/0000000002 via s1: no ack\n");
        assert!(
            write_log(&ws, "a", 5, &|i| format!("s{i}"))
                .starts_with("       1.0 ms  write /n3x/probe/a/0000000001 via s0: acked in 2.5 ms, rev 7\n")
        );
        assert!(x.contains("tests=\"2\" failures=\"1\""));
        assert!(x.contains("<failure message=\"a &lt;b&gt; &amp; &quot;c&quot;\">"));
        assert!(summary(&r).ends_with("1 passed, 1 failed\n"));
    }
}
