//! Documentation that must stay true: `docs/diagnostics.md` lists every diagnostic code
//! with its severity and summary, generated from `Code::ALL` (run with `N3X_BLESS=1` to
//! rewrite it after adding a code); and every runbook in `docs/runbooks/` is rehearsed by a
//! scenario that CI runs.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
use std::path::Path;

use n3x_model::{Code, Severity};

fn expected() -> String {
    let mut s = String::from(
        "# Diagnostics of `n3x check`\n\n\
         Generated from the code (`crates/n3x-model/src/diag.rs`); `tests/docs.rs` fails when\n\
         this list and the code disagree. Each code is stable: scripts may match on it\n\
         (`n3x check --format json`). Every code has a test inventory in\n\
         `crates/n3x/tests/cases/` showing exactly where it points.\n\n\
         | code | severity | what it catches |\n|---|---|---|\n",
    );
    for c in Code::ALL {
        let sev = match c.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        s.push_str(&format!("| `{}` | {sev} | {} |\n", c.as_str(), c.summary()));
    }
    s
}

#[test]
fn diagnostics_doc_lists_every_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/diagnostics.md");
    if std::env::var_os("N3X_BLESS").is_some() {
        std::fs::write(&path, expected()).unwrap();
    }
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(doc, expected(), "docs/diagnostics.md is stale: rerun this test with N3X_BLESS=1");
}

/// Every runbook names the lab scenario that rehearses it ("Rehearsed by: `n3x lab run
/// --scenario NAME`"), the scenario exists, CI runs it (scripts/test.sh: the default set
/// or `--scenario NAME`), and the index lists the runbook with that scenario.
#[test]
fn every_runbook_is_rehearsed_by_a_scenario_ci_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let test_sh = std::fs::read_to_string(root.join("scripts/test.sh")).unwrap();
    let index = std::fs::read_to_string(root.join("docs/runbooks/README.md")).unwrap();
    let mut seen = 0;
    for e in std::fs::read_dir(root.join("docs/runbooks")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "README.md" || !name.ends_with(".md") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        let scenario = text
            .split("Rehearsed by: `n3x lab run --scenario ")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .unwrap_or_else(|| panic!("{name}: no \"Rehearsed by: `n3x lab run --scenario NAME`\" line"));
        assert!(n3x_lab::scenario::BUILTIN.contains(&scenario), "{name}: `{scenario}` is not a scenario");
        let in_ci =
            n3x_lab::scenario::DEFAULT.contains(&scenario) || test_sh.contains(&format!("--scenario {scenario}"));
        assert!(in_ci, "{name}: scripts/test.sh does not run `{scenario}`");
        assert!(
            index.contains(&format!("]({name}) | `{scenario}` |")),
            "docs/runbooks/README.md does not list {name} with `{scenario}`"
        );
        seen += 1;
    }
    assert!(seen >= 3, "runbooks found: {seen}");
}
