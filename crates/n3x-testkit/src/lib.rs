//! Helpers shared by n3x's tests.
//!
//! A test that cannot run here (no root, a missing tool) calls [`skip`]. On a developer's
//! machine that prints `SKIPPED` and the test passes; when the `CI` environment variable is
//! set (`.ci/run` sets it) it fails instead, so a CI run can never quietly turn into
//! no-ops because an install step is missing.

use std::io::Write;

/// Whether this is a CI run: `CI` is set to anything but `""`, `0` or `false`.
pub fn in_ci() -> bool {
    ci_value(std::env::var("CI").ok().as_deref())
}

fn ci_value(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Skips `test` because of `why` (what is missing, and how to get it). Panics under CI.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    if in_ci() {
        panic!("{test} cannot run: {why}. CI is set, so a skipped test is a failure: install what it needs in .ci/run");
    }
    // Straight to the process's stderr: libtest captures `eprintln!`, and a skip should be seen.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Whether this process runs as root (namespaces, TAP devices).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// Whether `program` is on PATH (or in the sbin directories).
pub fn have(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]).any(|d| d.join(program).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_means_set_and_not_false() {
        assert!(!ci_value(None));
        assert!(!ci_value(Some("")));
        assert!(!ci_value(Some("0")));
        assert!(!ci_value(Some("false")));
        assert!(ci_value(Some("1")));
        assert!(ci_value(Some("true")));
    }

    #[test]
    fn a_skip_fails_under_ci() {
        // The child runs this test binary's `skip_probe` with CI set and must fail.
        let exe = std::env::current_exe().unwrap_or_default();
        let run = |ci: &str| {
            std::process::Command::new(&exe)
                .args(["--ignored", "--exact", "tests::skip_probe", "--test-threads=1"])
                .env("CI", ci)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        assert!(!run("1"), "a skip under CI=1 must fail the test");
        assert!(run(""), "a skip without CI passes");
    }

    #[test]
    #[ignore = "helper of a_skip_fails_under_ci, run as a child process"]
    fn skip_probe() {
        skip("skip_probe", "nothing is missing; this only exercises skip()");
    }
}
