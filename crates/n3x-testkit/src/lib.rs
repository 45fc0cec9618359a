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

/// A fresh empty directory `name` under `base` (a test's `CARGO_TARGET_TMPDIR`).
pub fn fresh_dir(base: &str, name: &str) -> std::path::PathBuf {
    let d = std::path::Path::new(base).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    d
}

/// A command's output as text, for assertion messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The named network namespaces (`ip netns list`).
pub fn namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}

/// Processes (other than this one) whose command line mentions `needle`: "pid: cmdline".
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return out };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().into_string() else { continue };
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == std::process::id().to_string() {
            continue;
        }
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(format!("{pid}: {cmd}"));
            }
        }
    }
    out
}

/// Runs the binary `bin` (a test's `env!("CARGO_BIN_EXE_n3x")`) in `cwd` with `args` and
/// extra `env`, colour off, and returns its output.
pub fn run(bin: &str, cwd: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = std::process::Command::new(bin);
    c.current_dir(cwd).env("NO_COLOR", "1").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap_or_else(|e| panic!("run {bin}: {e}"))
}

/// A lab a test brought up: `n3x lab down --cluster NAME` when dropped, which must succeed
/// unless the test is already failing.
pub struct LabGuard<'a> {
    pub bin: &'a str,
    pub cwd: &'a std::path::Path,
    pub cluster: &'a str,
}

impl Drop for LabGuard<'_> {
    fn drop(&mut self) {
        let o = run(self.bin, self.cwd, &["lab", "down", "--cluster", self.cluster], &[]);
        if !std::thread::panicking() {
            assert_eq!(o.status.code(), Some(0), "lab down: {}", output_text(&o));
        }
    }
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
