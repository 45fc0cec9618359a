//! Data-driven tests of `n3x check`: every file in `tests/cases/` is a real inventory run
//! through the real binary. Each file ends with `# expect:` lines naming every diagnostic
//! it must produce (severity, code, line:column) and nothing else; the human rendering is
//! compared with a snapshot in `tests/snapshots/`.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use n3x_model::Code;

fn cases_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases"))
}

/// Runs `n3x check -f <file> [args]` from the cases directory, so paths in output are stable.
fn check(file: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_n3x"))
        .current_dir(cases_dir())
        .env("NO_COLOR", "1")
        .args(["check", "-f", file])
        .args(args)
        .output()
        .expect("run n3x");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn expectations(text: &str) -> BTreeSet<String> {
    text.lines().filter_map(|l| l.strip_prefix("# expect: ")).filter(|e| *e != "nothing").map(str::to_owned).collect()
}

#[test]
fn every_case_reports_exactly_its_expected_diagnostics() {
    let mut checked = 0;
    insta::glob!("cases/*.toml", |path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let expected = expectations(&text);
        assert!(
            !expected.is_empty() || text.contains("# expect: nothing"),
            "{name}: add `# expect:` lines at the end of the file"
        );

        let (code, stdout, _) = check(name, &["--format", "json"]);
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let got: BTreeSet<String> = report["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                format!(
                    "{} {} {}:{}",
                    d["severity"].as_str().unwrap(),
                    d["code"].as_str().unwrap(),
                    d["line"],
                    d["column"]
                )
            })
            .collect();
        assert_eq!(got, expected, "{name}: diagnostics differ from its `# expect:` lines");
        let has_errors = expected.iter().any(|e| e.starts_with("error "));
        assert_eq!(code, Some(if has_errors { 1 } else { 0 }), "{name}: exit status");

        let (_, _, stderr) = check(name, &[]);
        insta::assert_snapshot!(stderr);
        checked += 1;
    });
    assert!(checked >= 40, "only {checked} cases found");
}

#[test]
fn every_diagnostic_code_has_a_case() {
    let mut covered = BTreeSet::new();
    for entry in std::fs::read_dir(cases_dir()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for e in expectations(&text) {
            covered.insert(e.split(' ').nth(1).unwrap().to_owned());
        }
    }
    let missing: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).filter(|c| !covered.contains(*c)).collect();
    assert!(missing.is_empty(), "codes without a test case in tests/cases: {missing:?}");
}

#[test]
fn warnings_alone_pass_unless_denied() {
    let (code, _, stderr) = check("single-server.toml", &[]);
    assert_eq!(code, Some(0));
    assert!(stderr.contains("0 errors, 1 warning"), "{stderr}");
    let (code, _, _) = check("single-server.toml", &["--deny-warnings"]);
    assert_eq!(code, Some(1));
}

#[test]
fn secrets_never_reach_the_output() {
    let text = std::fs::read_to_string(cases_dir().join("secret-in-inventory.toml")).unwrap();
    for secret in ["5up3rs3cr3tv4lu3", "hunter2hunter2", "AGE-SECRET-KEY-1QYQ"] {
        assert!(text.contains(secret), "the case must hold {secret}");
        for args in [&[][..], &["--format", "json"][..]] {
            let (_, stdout, stderr) = check("secret-in-inventory.toml", args);
            assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} leaked with {args:?}");
        }
    }
}
