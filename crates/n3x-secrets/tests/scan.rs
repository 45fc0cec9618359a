//! The plaintext scan finds each kind of leak, names file and line, and never quotes it.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;

use n3x_secrets::scan::{self, Known};

#[test]
fn finds_leaks_without_quoting_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let token = "6b1f0c8a9e3b7d4c2a1f0c8a9e3b7d4c";
    let k10 = format!("K10{}::server:{}", "c0ffee".repeat(10) + "abcd", "pw1234567890");
    let age_secret = {
        use age::secrecy::ExposeSecret;
        age::x25519::Identity::generate().to_string().expose_secret().to_string()
    };
    let pem = concat!("-----BEGIN OPENSSH ", "PRIVATE KEY-----\nAAAA\n-----END OPENSSH ", "PRIVATE KEY-----\n");
    std::fs::create_dir_all(root.join("secrets")).unwrap();
    std::fs::create_dir_all(root.join("nix")).unwrap();
    std::fs::create_dir_all(root.join("keys/host")).unwrap();
    std::fs::create_dir_all(root.join("target")).unwrap();
    std::fs::write(root.join("secrets/plain.yaml"), format!("k3s-token: {token}\n")).unwrap();
    std::fs::write(root.join("notes.txt"), format!("join with\n{k10}\n")).unwrap();
    std::fs::write(root.join("keys.txt"), format!("# key\n{age_secret}\n")).unwrap();
    std::fs::write(root.join("id_ed25519"), pem).unwrap();
    std::fs::write(root.join("nix/k3s.nix"), "{ services.k3s.token = \"supersecrettoken\"; }\n").unwrap();
    std::fs::write(root.join("leak.md"), format!("value: {token}x\n")).unwrap();
    // Not findings: encrypted values, paths, ignored dirs, an allowed 0600 key.
    std::fs::write(
        root.join("secrets/k3s.yaml"),
        "k3s-token: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\nsops:\n    version: 3\n",
    )
    .unwrap();
    std::fs::write(root.join("n3x.toml"), "token_file = \"/run/secrets/k3s-token\"\n").unwrap();
    std::fs::write(root.join("nix/ok.nix"), "{ services.k3s.tokenFile = config.sops.secrets.\"k3s-token\".path; }\n")
        .unwrap();
    std::fs::write(root.join("target/build.txt"), format!("{age_secret}\n")).unwrap();
    // A made-up key (bad checksum) as in test fixtures: not a finding.
    std::fs::write(
        root.join("fixture.toml"),
        format!("admins = [\"AGE-SECRET-KEY-1{}\"]\n", "QYQSZ".repeat(11) + "QYQ"),
    )
    .unwrap();
    let allowed_key = root.join("keys/host/ssh_host_ed25519_key");
    std::fs::write(&allowed_key, pem).unwrap();
    std::fs::set_permissions(&allowed_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(root.join(".gitignore"), scan::gitignore_entry("keys/host")).unwrap();

    let allowed = scan::ignored_key_dirs(root);
    assert_eq!(allowed, [root.join("keys/host")]);
    let known = [Known { label: "`k3s-token` from secrets/k3s.yaml".into(), value: token }];
    let found = scan::scan_tree(root, &allowed, &known);
    let lines: Vec<String> = found
        .iter()
        .map(|f| format!("{}:{}: {}", f.path.strip_prefix(root).unwrap().display(), f.line, f.message))
        .collect();
    let expect = [
        "id_ed25519:1: a private key in the repository",
        "keys.txt:2: an age secret key",
        "leak.md:1: the plaintext value of `k3s-token`",
        "nix/k3s.nix:1: a token literal in Nix code",
        "notes.txt:2: a k3s token",
        "secrets/plain.yaml:1: `k3s-token` has an unencrypted value",
        "secrets/plain.yaml:1: the plaintext value of `k3s-token`",
    ];
    assert_eq!(lines.len(), expect.len(), "{lines:#?}");
    for (l, e) in lines.iter().zip(expect) {
        assert!(l.starts_with(e), "{l} does not start with {e}");
    }
    for l in &lines {
        for s in [token, k10.as_str(), age_secret.as_str(), "supersecrettoken"] {
            assert!(!l.contains(s), "a finding quotes the secret: {l}");
        }
    }
    // The allowed key with loose permissions is reported.
    std::fs::set_permissions(&allowed_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let found = scan::scan_tree(root, &allowed, &[]);
    assert!(found.iter().any(|f| f.path == allowed_key && f.message.contains("0644")));
}
