//! Helpers shared by the integration tests: temp dirs, the `age` CLI, the Python reference.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn tool_available(name: &str) -> bool {
    Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Writes `text` to `dir/name` with mode 0600 and returns the path.
pub fn write_private(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::OpenOptionsExt;
    let p = dir.join(name);
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&p).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    p
}

/// A fresh age identity via `age-keygen`; returns (identity file, recipient).
pub fn age_keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("age-keygen").arg("-o").arg(&path).output().unwrap();
    assert!(out.status.success(), "age-keygen failed");
    let r = Command::new("age-keygen").arg("-y").arg(&path).output().unwrap();
    (path, String::from_utf8(r.stdout).unwrap().trim().to_string())
}

/// A fresh ed25519 key via `ssh-keygen`; returns the private key path (.pub next to it).
pub fn ssh_keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test@n3x", "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    path
}

pub fn reference_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sops_reference.py")
}

/// Whether python3 with `cryptography` and the `age` CLI are here; skips otherwise (a failure under CI).
pub fn reference_available(test: &str) -> bool {
    let py = Command::new("python3")
        .args(["-c", "import cryptography.hazmat.primitives.ciphers.aead"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let age = tool_available("age") && Command::new("age-keygen").arg("--version").output().is_ok();
    if !py || !age {
        n3x_testkit::skip(
            test,
            "needs python3 with `cryptography` (pip install cryptography, or apt-get install python3-cryptography) and the `age` CLI (apt-get install age)",
        );
    }
    py && age
}

/// Runs the reference encryptor; returns (sops YAML, expected plaintext as JSON).
pub fn reference_encrypt(layout: &str, recipient_files: &[PathBuf]) -> (String, serde_json::Value) {
    // The plaintext JSON comes back on fd 3: through `sh`, which redirects it into a file.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("plain.json");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("exec python3 \"$0\" encrypt \"$@\" 3>\"$N3X_JSON\"").arg(reference_script()).arg(layout);
    cmd.args(recipient_files).env("N3X_JSON", &json);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "reference encrypt failed: {}", String::from_utf8_lossy(&out.stderr));
    let expected = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (String::from_utf8(out.stdout).unwrap(), expected)
}

/// Runs the reference decryptor on `text` with `identity`; Ok(JSON) or Err(stderr).
pub fn reference_decrypt(text: &str, identity: &Path) -> Result<serde_json::Value, String> {
    let mut child = Command::new("python3")
        .arg(reference_script())
        .arg("decrypt")
        .arg(identity)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
