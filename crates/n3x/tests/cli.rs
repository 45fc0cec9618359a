//! The `n3x` binary end to end: exit codes, the embedded default, `show` and usage errors.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn n3x(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_n3x")).current_dir(dir).env("NO_COLOR", "1").args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh empty directory under the target dir, so no ./n3x.toml is found.
fn empty_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn reference_inventory_checks_clean() {
    let out = n3x(&repo_root(), &["check", "--deny-warnings"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "n3x.toml: ok, 5 hosts (3 servers), 2 networks\n");
}

#[test]
fn without_a_file_the_embedded_reference_is_used() {
    let dir = empty_dir("embedded");
    let out = n3x(&dir, &["check"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).starts_with("n3x.toml (embedded reference): ok, 5 hosts"), "{}", text(&out.stderr));
    // The embedded text is the repository's n3x.toml, byte for byte: same JSON from both.
    let embedded = n3x(&dir, &["show", "--json"]);
    let from_file = n3x(&repo_root(), &["show", "--json", "-f", "n3x.toml"]);
    assert_eq!(text(&embedded.stdout), text(&from_file.stdout));
}

#[test]
fn show_json_has_the_contracted_shape() {
    let out = n3x(&repo_root(), &["show", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["hosts"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["jetson-1", "jetson-2", "n100-1", "n100-2", "n100-3"], "hosts sorted by name");
    let n1 = &v["hosts"][2];
    assert_eq!(n1["role"], "server");
    assert_eq!(n1["init"], true);
    assert_eq!(n1["arch"], "x86_64-linux");
    assert!(n1["server_url"].is_null(), "the init server joins nobody");
    assert_eq!(n1["etcd_peer_url"], "https://192.168.200.11:2380");
    let j1 = &v["hosts"][0];
    assert_eq!(j1["arch"], "aarch64-linux");
    assert_eq!(j1["server_url"], "https://192.168.200.11:6443");
    assert!(j1["etcd_peer_url"].is_null());
    assert_eq!(j1["console"], "ttyTCU0");
    assert_eq!(j1["interfaces"][0]["networks"][1]["vlan"], 100);
    assert_eq!(j1["interfaces"][0]["networks"][1]["mtu"], 9000);
    for key in ["cluster", "k3s", "networks", "hosts"] {
        assert!(v.get(key).is_some(), "missing top-level `{key}`");
    }
    insta::assert_json_snapshot!("show-reference", v);
}

#[test]
fn show_text_snapshot() {
    let out = n3x(&repo_root(), &["show"]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("show-reference-text", text(&out.stdout));
}

#[test]
fn show_refuses_an_inventory_with_errors_and_says_why() {
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let out = n3x(&cases, &["show", "-f", "duplicate-address.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no partial result on stdout");
    let err = text(&out.stderr);
    assert!(err.contains("address `10.0.0.1` of `s2` is already used by `s1`"), "{err}");
    assert!(err.contains("cannot show `duplicate-address.toml`: it has errors"), "{err}");
}

#[test]
fn a_missing_file_is_an_io_error_with_exit_2() {
    let out = n3x(&repo_root(), &["check", "-f", "no/such/n3x.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.starts_with("error: cannot read inventory `no/such/n3x.toml`"), "{err}");
    assert!(err.contains("help: check the path given to `-f`"), "{err}");
}

#[test]
fn a_non_utf8_file_is_refused_clearly() {
    let dir = empty_dir("not-utf8");
    std::fs::write(dir.join("bad.toml"), b"version = 1\n\xff\xfe").unwrap();
    let out = n3x(&dir, &["check", "-f", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not UTF-8 text (invalid byte at offset 12)"), "{}", text(&out.stderr));
}

#[test]
fn a_wrong_flag_is_a_usage_error_with_exit_2() {
    let out = n3x(&repo_root(), &["check", "--formt", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("unexpected argument '--formt'") && err.contains("--format"), "{err}");
    let out = n3x(&repo_root(), &["check", "--format", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("possible values: human, json"));
}

#[test]
fn stdin_is_read_with_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_n3x"))
        .args(["check", "-f", "-", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"version = 3\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["file"], "<stdin>");
    let codes: Vec<&str> = v["diagnostics"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    // In file order: the missing tables point at the start of the file, before `version`.
    assert_eq!(codes, ["missing-key", "missing-key", "missing-key", "unsupported-version"]);
}

#[test]
fn help_teaches_exit_codes_and_examples() {
    let out = n3x(&repo_root(), &["check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    // clap wraps to the terminal width: compare with whitespace collapsed.
    let help = text(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("Exit status: 0 no errors"), "{help}");
    assert!(help.contains("n3x check --format json"), "{help}");
}

/// `install --dry-run` and deploy's usage errors need neither root nor a host.
#[test]
fn install_dry_run_shows_each_command_and_needs_generated_keys() {
    let dir = empty_dir("install-dry-run");
    std::fs::copy(repo_root().join("n3x.toml"), dir.join("n3x.toml")).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_n3x"))
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .env("HOME", &dir)
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("SOPS_AGE_KEY_FILE")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["install", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("`n100-1` has no generated host key"), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("n3x secrets add-host n100-1 --generate"));
    for h in ["n100-1", "n100-2", "n100-3", "jetson-1", "jetson-2"] {
        let o = run(&["secrets", "add-host", h, "--generate"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let out = run(&["install", "--dry-run", "jetson-1", "n100-2", "n100-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let extra = dir.join(".local/share/n3x/n3x/extra-files");
    let lines: Vec<&str> = s.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(
        lines,
        [
            format!(
                "n100-1: nixos-anywhere --flake '.#n100-1' --target-host root@192.168.200.11 --extra-files {}/n100-1",
                extra.display()
            ),
            format!(
                "n100-2: nixos-anywhere --flake '.#n100-2' --target-host root@192.168.200.12 --extra-files {}/n100-2",
                extra.display()
            ),
            format!(
                "jetson-1: nixos-anywhere --flake '.#jetson-1' --target-host root@192.168.200.21 --extra-files {}/jetson-1 --phases disko,install,reboot",
                extra.display()
            ),
        ]
    );
    assert!(s.contains("    0600 etc/ssh/ssh_host_ed25519_key\n"), "{s}");
    let json = run(&["install", "--dry-run", "--json", "n100-3"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["argv"][0], "nixos-anywhere");
    // Deploy: bad values are usage errors before anything runs.
    for bad in [
        &["deploy", "--confirm-timeout", "1"][..],
        &["deploy", "--lab-fault", "n100-1=hang"],
        &["deploy", "--plan", "--resume"],
    ] {
        let o = run(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", text(&o.stderr));
    }
}
