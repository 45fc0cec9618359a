//! `n3x graph` and `report.html`, checked by the tools that read them: graphviz's `dot`
//! renders the DOT, mermaid's own library (npm) renders the mermaid in headless Chromium,
//! the SVG parses as XML, and Chromium loads a report from disk with no console error, no
//! network request and a screenshot that is not blank. Each check is first shown to fail
//! on a broken input, so a check that cannot fail does not pass for one that works.
//!
//! Needs `dot` (graphviz), `chromium`, `node` and `npm ci` in tests/browser (setup.sh
//! installs them); without them each test says why it skipped (and fails under CI).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use n3x_testkit::output_text as text;

const BIN: &str = env!("CARGO_BIN_EXE_n3x");

fn n3x(cwd: &Path, args: &[&str]) -> Output {
    n3x_testkit::run(BIN, cwd, args, &[])
}

fn dir(name: &str) -> PathBuf {
    n3x_testkit::fresh_dir(env!("CARGO_TARGET_TMPDIR"), name)
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

fn can_use_browser() -> bool {
    let ok = n3x_testkit::have("node")
        && Path::new("/usr/bin/chromium").exists()
        && browser_dir().join("node_modules/playwright-core").is_dir()
        && browser_dir().join("node_modules/mermaid").is_dir();
    if !ok {
        n3x_testkit::skip(
            "browser test",
            "needs node, Debian's chromium and `npm ci` in tests/browser (scripts/setup.sh does all three)",
        );
    }
    ok
}

fn node(script: &str, args: &[PathBuf]) -> Output {
    Command::new("node").current_dir(browser_dir()).arg(script).args(args).output().unwrap()
}

/// Every case inventory that checks clean (no errors).
fn clean_cases(d: &Path) -> Vec<PathBuf> {
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&cases)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| n3x(d, &["check", "-f", p.to_str().unwrap()]).status.code() == Some(0))
        .collect();
    v.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../n3x.toml"));
    v.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/five-servers.toml"));
    v.sort();
    v
}

#[test]
fn graph_formats_pass_their_own_tools_on_every_clean_inventory() {
    if !n3x_testkit::have("dot") {
        n3x_testkit::skip("graph test", "needs graphviz's `dot` (apt-get install graphviz)");
        return;
    }
    let d = dir("graph-formats");
    let cases = clean_cases(&d);
    assert!(cases.len() >= 5, "clean cases: {cases:?}");
    let mut mermaid = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let f = case.to_str().unwrap();
        // DOT: graphviz renders it, with a node per host.
        let o = n3x(&d, &["graph", "-f", f, "--format", "dot"]);
        assert_eq!(o.status.code(), Some(0), "{f}: {}", text(&o));
        let mut dot = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(dot.stdin.as_mut().unwrap(), &o.stdout).unwrap();
        let r = dot.wait_with_output().unwrap();
        assert!(r.status.success() && r.stderr.is_empty(), "{f}: dot: {}", String::from_utf8_lossy(&r.stderr));
        // SVG: well-formed XML (Python's parser), written atomically with -o.
        let svg = d.join(format!("{i}.svg"));
        let o = n3x(&d, &["graph", "-f", f, "-o", svg.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{f}: {}", text(&o));
        let x = Command::new("python3")
            .args(["-c", "import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])"])
            .arg(&svg)
            .output()
            .unwrap();
        assert!(x.status.success(), "{f}: the SVG is not XML: {}", text(&x));
        // Mermaid: rendered below, all at once.
        let mmd = d.join(format!("{i}.mmd"));
        let o = n3x(&d, &["graph", "-f", f, "--format", "mermaid", "-o", mmd.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{f}: {}", text(&o));
        mermaid.push(mmd);
    }
    // The checks fail on broken input.
    let mut dot = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(dot.stdin.as_mut().unwrap(), b"graph { a -- ").unwrap();
    assert!(!dot.wait().unwrap().success(), "dot accepts broken DOT?");
    if !can_use_browser() {
        return;
    }
    let broken = d.join("broken.mmd");
    std::fs::write(&broken, "flowchart LR\n  a[[[ --- \n").unwrap();
    let o = node("check-mermaid.mjs", std::slice::from_ref(&broken));
    assert_eq!(o.status.code(), Some(1), "broken mermaid passed: {}", text(&o));
    let o = node("check-mermaid.mjs", &mermaid);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).matches("\"ok\":true").count(), mermaid.len(), "{}", text(&o));
}

/// A report.json as `n3x lab run` writes it, with a failed scenario that has no writes.
fn report_json(d: &Path) -> PathBuf {
    let mut writes = Vec::new();
    for i in 0..60 {
        let lost = (20..30).contains(&i);
        writes.push(serde_json::json!({"agent": i % 2, "at_ms": i as f64 * 100.0, "latency_ms": if lost { None } else { Some(4.0 + (i % 7) as f64) }}));
    }
    let rep = d.join("report");
    std::fs::create_dir_all(&rep).unwrap();
    let r = serde_json::json!({
        "lab": {"cluster": "n3x", "inventory": "n3x.toml", "hosts": 5, "servers": 3, "networks": 2, "fabric": "kernel",
                "fabric_reason": "asked for", "seed": 1, "bringup_ms": 480.0, "quorum_ms": 400.0, "teardown_ms": 12.0},
        "passed": false,
        "scenarios": [
            {"name": "server-loss", "passed": true, "duration_ms": 6000.0, "metrics": {"killed": "n100-1", "lost_writes": 0}, "failures": [],
             "series": {"from_ms": 1000.0, "to_ms": 7000.0, "agents": ["jetson-1", "jetson-2"], "writes": writes,
                        "windows": [{"kind": "kill", "label": "n100-1 killed", "from_ms": 2000.0, "to_ms": 3000.0}],
                        "leaders": [{"at_ms": 2100.0, "leader": null}, {"at_ms": 3050.0, "leader": "n100-2"}],
                        "longest_gap": {"from_ms": 1990.0, "to_ms": 3004.0}}},
            {"name": "partition", "passed": false, "duration_ms": 10.0, "metrics": {}, "failures": ["could not run: no leader to isolate"],
             "series": {"from_ms": 7000.0, "to_ms": 7010.0, "agents": ["jetson-1", "jetson-2"], "writes": [], "windows": [], "leaders": [], "longest_gap": null}}
        ]
    });
    std::fs::write(rep.join("report.json"), serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    rep
}

#[test]
fn a_report_opens_from_disk_with_no_error_no_request_and_a_picture() {
    let d = dir("report-html");
    let rep = report_json(&d);
    let o = n3x(&d, &["lab", "report", rep.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let html = std::fs::read_to_string(rep.join("report.html")).unwrap();
    // Self-contained: no script, no external reference of any kind.
    for needle in ["<script", "http://", "https://", "<link", "@import", "url("] {
        let outside_svg_ns = html.replace("http://www.w3.org/2000/svg", "");
        assert!(!outside_svg_ns.contains(needle), "report.html contains `{needle}`");
    }
    assert!(html.contains("longest gap 1014 ms") && html.contains("n100-1 killed") && html.contains("leader n100-2"));
    // The failed scenario without writes still gets a chart that says why.
    assert!(html.contains("no writes to plot: the scenario failed: could not run: no leader to isolate"), "{html}");
    // Not a report: a clear message and exit 2.
    let o = n3x(&d, &["lab", "report", d.join("nowhere").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    std::fs::write(d.join("report.json"), "{\"lab\": {}}").unwrap();
    let o = n3x(&d, &["lab", "report", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a report.json of `n3x lab run`"), "{}", text(&o));

    if !can_use_browser() {
        return;
    }
    // The checker fails a page that fetches something, logs an error, or is blank.
    let bad = d.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("fetch.html"),
        "<html><body><svg width=\"10\" height=\"10\"></svg><img src=\"http://192.0.2.1/x.png\"></body></html>",
    )
    .unwrap();
    std::fs::write(
        bad.join("console.html"),
        "<html><body><svg></svg><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    std::fs::write(bad.join("blank.html"), "<html><body><svg width=\"1\" height=\"1\"></svg></body></html>").unwrap();
    for f in ["fetch.html", "console.html", "blank.html"] {
        let o = node("check-page.mjs", &[bad.join(f)]);
        assert_eq!(o.status.code(), Some(1), "{f} passed the check: {}", text(&o));
    }
    let shots = d.join("shots");
    let o = node("check-page.mjs", &["--out".into(), shots.clone(), rep.join("report.html")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(line["figures"], 2, "a timeline per scenario: {line}");
    assert!(shots.join("report.png").exists());
}
