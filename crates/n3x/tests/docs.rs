//! Documentation that must stay true: `docs/diagnostics.md` lists every diagnostic code
//! with its severity and summary, generated from `Code::ALL`. Run with `N3X_BLESS=1` to
//! rewrite it after adding a code.

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
