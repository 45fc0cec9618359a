//! Finds plaintext secrets in a directory tree (the repository holding `n3x.toml`) and key
//! files with loose permissions. Findings name the file, line and kind, never the secret.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use regex::Regex;

/// The comment n3x writes in the repository's `.gitignore` above the entry for a directory
/// of generated private host keys (`add-host --generate --out` inside the repository). A
/// private key is tolerated inside the tree only below such an ignored directory, and only
/// with mode 0600.
pub const GITIGNORE_MARKER: &str = "# n3x: private host keys (never commit them):";

/// The directories `root/.gitignore` ignores on n3x's behalf: each line after a marker.
pub fn ignored_key_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string(root.join(".gitignore")) else { return Vec::new() };
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim() == GITIGNORE_MARKER {
            if let Some(entry) = lines.next() {
                let rel = entry.trim().trim_matches('/');
                if !rel.is_empty() {
                    out.push(root.join(rel));
                }
            }
        }
    }
    out
}

/// The `.gitignore` lines for a key directory `rel` (relative to the root, `/`-separated).
pub fn gitignore_entry(rel: &str) -> String {
    format!("{GITIGNORE_MARKER}\n/{}/\n", rel.trim_matches('/'))
}

const SKIP_DIRS: &[&str] = &[".git", "target", "node_modules", ".direnv", ".jj", ".hg"];
const MAX_FILE: u64 = 4 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub path: PathBuf,
    /// 1-based; 0 when the finding is about the whole file.
    pub line: usize,
    pub message: String,
}

/// Known secret values to look for (e.g. the decrypted tokens), with a label for messages.
pub struct Known<'a> {
    pub label: String,
    pub value: &'a str,
}

struct Patterns {
    k3s_token: Regex,
    age_secret: Regex,
    private_key: Regex,
    token_key: Regex,
    nix_token: Regex,
}

fn patterns() -> Patterns {
    // Literals: an invalid one is a bug that every test run catches.
    let re = |s: &str| Regex::new(s).expect("static regex");
    Patterns {
        // k3s' full token format: K10<sha256 of the cluster CA>::<user>:<password>.
        k3s_token: re(r"K10[0-9a-fA-F]{64}::[A-Za-z0-9_-]+:"),
        age_secret: re(r"AGE-SECRET-KEY-1[0-9A-Z]{58}"),
        private_key: re(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"),
        // A token key with a literal value in YAML/JSON/dotenv/TOML: `k3s-token: abc...`.
        token_key: re(
            r#"^\s*["']?(k3s[-_]token|k3s[-_]agent[-_]token|K3S_TOKEN|K3S_AGENT_TOKEN)["']?\s*[:=]\s*["']?([^\s"'#]{8,})"#,
        ),
        // Nix: `services.k3s.token = "..."` puts the token into the world-readable store.
        nix_token: re(r#"\b(token|agentToken)\s*=\s*"([^"$]{8,})""#),
    }
}

/// Scans `root` recursively (symlinks are not followed). Private keys are allowed (with mode
/// 0600) only below `allowed_dirs`.
pub fn scan_tree(root: &Path, allowed_dirs: &[PathBuf], known: &[Known<'_>]) -> Vec<Finding> {
    let p = patterns();
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), false)];
    while let Some((dir, allowed)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        let allowed = allowed || allowed_dirs.contains(&dir);
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !SKIP_DIRS.iter().any(|s| e.file_name() == *s) {
                    stack.push((path, allowed));
                }
            } else if ft.is_file() {
                scan_file(&path, allowed, &p, known, &mut out);
            }
        }
    }
    out.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    out
}

fn scan_file(path: &Path, allowed: bool, p: &Patterns, known: &[Known<'_>], out: &mut Vec<Finding>) {
    let Ok(meta) = fs::metadata(path) else { return };
    if meta.len() > MAX_FILE {
        return;
    }
    let Ok(bytes) = fs::read(path) else { return };
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return;
    }
    let text = String::from_utf8_lossy(&bytes);
    let is_sops = text.contains("\nsops:") || text.contains("\"sops\":");
    let mut found = |line: usize, message: String| out.push(Finding { path: path.to_path_buf(), line, message });
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if p.k3s_token.is_match(line) {
            found(n, "a k3s token (`K10...::...`) in plaintext".into());
        }
        // Only a key with a valid Bech32 checksum can decrypt anything; test fixtures with
        // made-up keys (the model's secret-in-inventory cases) are not findings.
        let real_age_key = p.age_secret.find_iter(line).any(|m| age::x25519::Identity::from_str(m.as_str()).is_ok());
        if real_age_key && !allowed {
            found(n, "an age secret key (`AGE-SECRET-KEY-1...`) in the repository".into());
        }
        if p.private_key.is_match(line) {
            if !allowed {
                found(n, "a private key in the repository".into());
            } else if meta.permissions().mode() & 0o077 != 0 {
                found(
                    0,
                    format!("private key file has mode {:04o}; it must be 0600", meta.permissions().mode() & 0o7777),
                );
            }
        }
        if let Some(c) = p.token_key.captures(line) {
            let v = c.get(2).map_or("", |m| m.as_str());
            if !(v.starts_with("ENC[") || v.starts_with('/') || v.starts_with('$') || v.starts_with('{')) {
                found(n, format!("`{}` has an unencrypted value", c.get(1).map_or("", |m| m.as_str())));
            }
        }
        if !is_sops && p.nix_token.is_match(line) && path.extension().is_some_and(|e| e == "nix") {
            found(
                n,
                "a token literal in Nix code (it would land in the world-readable Nix store; use a token file)".into(),
            );
        }
        for k in known {
            if k.value.len() >= 8 && line.contains(k.value) {
                found(n, format!("the plaintext value of {} appears here", k.label));
            }
        }
    }
}

/// A key file must not be readable by group or others. `None` if it is fine or missing.
pub fn loose_permissions(path: &Path) -> Option<u32> {
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}
