//! Atomic writes under SIGKILL: a child process rewrites a file in a loop, alternating two
//! versions; the parent kills it at random moments. Every time, the file must be exactly
//! one of the two versions. A control run with a plain `fs::write` shows that the check
//! notices torn files.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "N3X_ATOMIC_CHILD";
const SIZE: usize = 1 << 20;

fn version(n: u8) -> Vec<u8> {
    let mut v = vec![b'a' + n; SIZE];
    v[SIZE - 1] = b'\n';
    v
}

/// Not a test: the child process of `torn_after_kills`, which re-runs this binary with
/// `--ignored --exact atomic_child`. Ignored, so a plain test run does not list it as passed.
#[test]
#[ignore = "helper: the child process the SIGKILL tests start"]
fn atomic_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (mode, path) = spec.split_once(':').unwrap();
    let path = Path::new(path);
    let versions = [version(0), version(1)];
    std::fs::write(path.with_extension("ready"), b"").unwrap();
    for i in 0usize.. {
        let v = &versions[i % 2];
        if mode == "atomic" {
            n3x_fs::write(path, v, Some(0o600)).unwrap();
        } else {
            // The naive way: truncate, then write in pieces.
            use std::io::Write;
            let mut f = std::fs::File::create(path).unwrap();
            for chunk in v.chunks(4096) {
                f.write_all(chunk).unwrap();
            }
        }
    }
}

/// Kills `rounds` children at random times; returns how many times the file was torn.
fn torn_after_kills(mode: &str, rounds: usize) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file.yaml");
    n3x_fs::write(&path, &version(0), Some(0o600)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut torn = 0;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    for _ in 0..rounds {
        let _ = std::fs::remove_file(path.with_extension("ready"));
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "atomic_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{mode}:{}", path.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while !path.with_extension("ready").exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 20_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let got = std::fs::read(&path).unwrap();
        if got != version(0) && got != version(1) {
            torn += 1;
        }
    }
    torn
}

#[test]
fn sigkill_never_leaves_a_torn_file() {
    assert_eq!(torn_after_kills("atomic", 40), 0);
}

#[test]
fn control_naive_writes_do_tear() {
    // If this fails, the kill timing cannot observe torn writes and the test above proves nothing.
    assert!(torn_after_kills("naive", 40) > 0);
}

#[test]
fn mode_is_set_and_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("key");
    n3x_fs::write(&p, b"one", Some(0o600)).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    n3x_fs::write(&p, b"two", None).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
    assert_eq!(std::fs::read(&p).unwrap(), b"two");
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
