//! `n3x deploy --lab` and `n3x install --lab` against real labs: real sshd on every host,
//! the system `ssh` from the operator's namespace, real etcd; the NixOS side is the lab's
//! named test double. Needs root, etcd and Debian's openssh-server (CI installs them);
//! without them each test says why it skipped. One lab at a time (a global lock).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use n3x_testkit::output_text as text;

static SERIAL: Mutex<()> = Mutex::new(());

fn can_run() -> bool {
    let root = n3x_testkit::is_root();
    let tools = ["etcd", "sshd", "ssh"].iter().all(|t| n3x_testkit::have(t));
    if !root || !tools {
        n3x_testkit::skip(
            "deploy test",
            &format!(
                "these tests need root, etcd, sshd and ssh (root: {root}; apt-get install etcd-server openssh-server openssh-client)"
            ),
        );
    }
    root && tools
}

fn dir(name: &str) -> PathBuf {
    n3x_testkit::fresh_dir(env!("CARGO_TARGET_TMPDIR"), name)
}

fn cmd(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_n3x"));
    c.current_dir(cwd).env("NO_COLOR", "1").env_remove("N3X_DEPLOY_FAULT_STEP").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn n3x(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    cmd(cwd, args, env).output().unwrap()
}

fn ok(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let o = n3x(cwd, args, env);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

/// The reference inventory as cluster `name`, with the etcd heartbeat at `heartbeat` ms.
fn inventory(cwd: &Path, file: &str, name: &str, heartbeat: u64) -> String {
    let reference = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../n3x.toml")).unwrap();
    let text = reference.replacen("name = \"n3x\"", &format!("name = \"{name}\""), 1).replacen(
        "heartbeat_ms = 100",
        &format!("heartbeat_ms = {heartbeat}"),
        1,
    );
    assert!(text.contains(&format!("name = \"{name}\"")) && text.contains(&format!("heartbeat_ms = {heartbeat}")));
    std::fs::write(cwd.join(file), text).unwrap();
    cwd.join(file).display().to_string()
}

fn status(cwd: &Path, cluster: &str) -> serde_json::Value {
    serde_json::from_str(&ok(cwd, &["lab", "status", "--cluster", cluster, "--json"], &[])).unwrap()
}

fn host<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["hosts"].as_array().unwrap().iter().find(|h| h["name"] == name).unwrap()
}

/// Every host classified `unchanged` by `--plan --json`: the deploy of `inv` is complete.
fn all_unchanged(cwd: &Path, inv: &str) -> bool {
    let plan: serde_json::Value =
        serde_json::from_str(&ok(cwd, &["deploy", "--lab", "-f", inv, "--plan", "--json"], &[])).unwrap();
    plan["hosts"].as_array().unwrap().iter().all(|h| h["class"] == "unchanged")
}

/// Nothing of a deploy left on the hosts: no lock, no pending guard.
fn assert_no_deploy_left(cluster: &str) {
    let hosts = Path::new("/run/n3x").join(cluster).join("hosts");
    for h in std::fs::read_dir(&hosts).unwrap().flatten() {
        let root = h.path().join("root");
        assert!(!root.join("var/lib/n3x/deploy.lock").exists(), "{}: the deploy lock is left", h.path().display());
        let units = root.join("run/n3x-units");
        for u in std::fs::read_dir(&units).into_iter().flatten().flatten() {
            let name = u.file_name().into_string().unwrap();
            assert!(
                !name.ends_with(".timer") && !name.ends_with(".service"),
                "{}: unit {name} left",
                h.path().display()
            );
        }
    }
}

fn up<'a>(cwd: &'a Path, cluster: &'a str, inv: &str, extra: &[&str]) -> n3x_testkit::LabGuard<'a> {
    let _ = n3x(cwd, &["lab", "down", "--cluster", cluster], &[]);
    let mut args = vec!["lab", "up", "-f", inv, "--ssh", "on"];
    args.extend_from_slice(extra);
    ok(cwd, &args, &[]);
    n3x_testkit::LabGuard { bin: env!("CARGO_BIN_EXE_n3x"), cwd, cluster }
}

/// The deployer killed (SIGKILL) mid-rollout, then `--resume`, at two points; and a second
/// deploy started while one runs is refused, from the same machine and from another.
#[test]
fn sigkill_then_resume_finishes_and_a_second_deploy_is_refused() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !can_run() {
        return;
    }
    let cwd = dir("deploy-resume");
    let cluster = "dresume";
    let base = inventory(&cwd, "base.toml", cluster, 100);
    let changed = inventory(&cwd, "changed.toml", cluster, 110);
    let _lab = up(&cwd, cluster, &base, &[]);

    // A deploy runs; a second one is refused while it does.
    let mut first = cmd(&cwd, &["deploy", "--lab", "-f", &changed], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let journal = Path::new("/run/n3x").join(cluster).join("deploy-journal.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !journal.exists() {
        assert!(Instant::now() < deadline, "the first deploy wrote no journal");
        std::thread::sleep(Duration::from_millis(50));
    }
    let same = n3x(&cwd, &["deploy", "--lab", "-f", &changed], &[]);
    assert_eq!(code(&same), Some(6), "{}", text(&same));
    assert!(text(&same).contains("is unfinished"), "{}", text(&same));
    let other_journal = cwd.join("other-machine.json");
    let other = n3x(&cwd, &["deploy", "--lab", "-f", &changed, "--journal", other_journal.to_str().unwrap()], &[]);
    assert_eq!(code(&other), Some(6), "{}", text(&other));
    assert!(text(&other).contains("another deploy holds the cluster's lock"), "{}", text(&other));
    let st = first.wait().unwrap();
    assert!(st.success(), "the first deploy failed");
    assert!(all_unchanged(&cwd, &changed));
    assert_no_deploy_left(cluster);

    // Journal writes: 1 the plan, 5 pushes, then 3 per host (guarded, switched, confirmed).
    // 8: the first server switched its profile, before its activation. 13: the third
    // server is guarded. 17: an agent switched.
    let mut target = &base;
    for kill_at in ["8", "13", "17"] {
        let o = n3x(&cwd, &["deploy", "--lab", "-f", target], &[("N3X_DEPLOY_FAULT_STEP", kill_at)]);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(o.status.signal(), Some(9), "killed at journal write {kill_at}: {}", text(&o));
        let again = n3x(&cwd, &["deploy", "--lab", "-f", target], &[]);
        assert_eq!(code(&again), Some(6), "without --resume: {}", text(&again));
        let resumed = n3x(&cwd, &["deploy", "--lab", "-f", target, "--resume", "--json"], &[]);
        assert_eq!(code(&resumed), Some(0), "resume after a kill at {kill_at}: {}", text(&resumed));
        let report: serde_json::Value = serde_json::from_slice(&resumed.stdout).unwrap();
        assert!(report["hosts"].as_array().unwrap().iter().all(|h| h["state"] == "confirmed"), "{report}");
        assert!(all_unchanged(&cwd, target), "after the resume at {kill_at}, a host is not on its target");
        assert_no_deploy_left(cluster);
        target = if target == &base { &changed } else { &base };
    }
    let s = status(&cwd, cluster);
    let servers = s["hosts"].as_array().unwrap().iter().filter(|h| h["role"] == "server");
    assert!(servers.clone().all(|h| h["member"]["status"].is_object()), "{s}");
    // The last deploy went back to the base inventory.
    assert_eq!(host(&s, "n100-1")["settings"]["etcd"]["heartbeat_ms"], 100);
}

/// A generation that breaks etcd, fails activation, or hangs: exit 7 and the host back;
/// a wrong host key and a cut-off host: refused with the host named.
#[test]
fn bad_generations_roll_back_and_bad_hosts_are_named() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !can_run() {
        return;
    }
    let cwd = dir("deploy-bad");
    let cluster = "dbad";
    let base = inventory(&cwd, "base.toml", cluster, 100);
    let changed = inventory(&cwd, "changed.toml", cluster, 110);
    let _lab = up(&cwd, cluster, &base, &[]);
    let before = status(&cwd, cluster);

    for (fault, host, secs) in
        [("break-services", "n100-2", "12"), ("fail-activation", "n100-3", "12"), ("hang", "n100-2", "12")]
    {
        let o = n3x(
            &cwd,
            &[
                "deploy",
                "--lab",
                "-f",
                &changed,
                "--confirm-timeout",
                secs,
                "--lab-fault",
                &format!("{host}={fault}"),
                host,
            ],
            &[],
        );
        assert_eq!(code(&o), Some(7), "{fault}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("`{host}` failed its gates"))
                && err.contains("back on its previous generation and healthy"),
            "{fault}: {err}"
        );
        let s = status(&cwd, cluster);
        assert_eq!(host_gen(&s, host), host_gen(&before, host), "{fault}: {host} is not back");
        assert_no_deploy_left(cluster);
    }

    // `--goal boot`: the new generation becomes the boot default only; it does not run, so a
    // later switch still finds the host to update.
    let o = n3x(&cwd, &["deploy", "--lab", "-f", &changed, "--goal", "boot", "--json", "n100-3"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["hosts"][0]["state"], "boot default", "{report}");
    assert_eq!(host_gen(&status(&cwd, cluster), "n100-3"), host_gen(&before, "n100-3"));
    let plan: serde_json::Value =
        serde_json::from_str(&ok(&cwd, &["deploy", "--lab", "-f", &changed, "--plan", "--json", "n100-3"], &[]))
            .unwrap();
    assert_eq!(plan["hosts"][0]["class"], "update", "{plan}");
    assert_no_deploy_left(cluster);

    // A host the operator cannot reach: preflight refuses, naming it; nothing changes.
    ok(&cwd, &["lab", "partition", "operator", "--from", "n100-3", "--cluster", cluster], &[]);
    let o = n3x(&cwd, &["deploy", "--lab", "-f", &changed, "--command-timeout", "5"], &[]);
    assert_eq!(code(&o), Some(6), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`n100-3`"), "{}", text(&o));
    ok(&cwd, &["lab", "heal", "--cluster", cluster], &[]);

    // A host key that is not the one on record: an error naming the host and the fix.
    let kh = Path::new("/run/n3x").join(cluster).join("ssh/known_hosts");
    let good = std::fs::read_to_string(&kh).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let n1 = lines.iter().position(|l| l.starts_with("192.168.200.11 ")).unwrap();
    let n2 = lines.iter().find(|l| l.starts_with("192.168.200.12 ")).unwrap();
    let mut bad: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    bad[n1] = n2.replacen("192.168.200.12", "192.168.200.11", 1);
    std::fs::write(&kh, bad.join("\n") + "\n").unwrap();
    let o = n3x(&cwd, &["deploy", "--lab", "-f", &changed, "--plan"], &[]);
    std::fs::write(&kh, &good).unwrap();
    assert_eq!(code(&o), Some(8), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("host key of `n100-1`") && err.contains("ssh-keygen -R"), "{err}");
    let after = status(&cwd, cluster);
    for h in ["n100-1", "n100-2", "n100-3", "jetson-1", "jetson-2"] {
        assert_eq!(host_gen(&after, h), host_gen(&before, h), "{h} changed");
    }
}

fn host_gen(s: &serde_json::Value, h: &str) -> String {
    host(s, h)["generation"].as_str().unwrap_or_default().to_owned()
}

/// `n3x install` in an empty lab: the init server first, then the servers one at a time,
/// each etcd member joining by `member add`; host keys from `secrets add-host --generate`
/// go in through --extra-files and are pinned; reinstalling a server removes its stale
/// member first.
#[test]
fn install_order_in_an_empty_lab() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !can_run() {
        return;
    }
    let cwd = dir("install");
    let home = cwd.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cluster = "inst";
    inventory(&cwd, "n3x.toml", cluster, 100);
    let env = [("HOME", home.to_str().unwrap()), ("XDG_DATA_HOME", ""), ("SOPS_AGE_KEY_FILE", "")];
    ok(&cwd, &["secrets", "init"], &env);
    let hosts = ["n100-1", "n100-2", "n100-3", "jetson-1", "jetson-2"];
    for h in hosts {
        ok(&cwd, &["secrets", "add-host", h, "--generate"], &env);
    }
    // Without a generated key, nothing is installed.
    let _lab = up(&cwd, cluster, "n3x.toml", &["--empty"]);
    let o = n3x(&cwd, &["install", "--lab", "n100-1"], &[("HOME", cwd.to_str().unwrap()), ("XDG_DATA_HOME", "")]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(text(&o).contains("secrets add-host n100-1 --generate"), "{}", text(&o));

    let out = ok(&cwd, &["install", "--lab", "--json", "jetson-2", "n100-3", "n100-1", "jetson-1", "n100-2"], &env);
    let done: serde_json::Value = serde_json::from_str(&out).unwrap();
    let order: Vec<&str> = done.as_array().unwrap().iter().map(|i| i["host"].as_str().unwrap()).collect();
    assert_eq!(order, hosts);
    let s = status(&cwd, cluster);
    for h in hosts {
        assert_eq!(host(&s, h)["installed"], true, "{h}");
        assert_eq!(host(&s, h)["k3s_active"], true, "{h}");
    }
    assert!(s["leader"].is_string(), "{s}");
    // What the nixos-anywhere double saw: the argv and extra files n3x gave it.
    let lab = Path::new("/run/n3x").join(cluster);
    let extra = |h: &str| home.join(format!(".local/share/n3x/{cluster}/extra-files/{h}"));
    for (i, h) in hosts.iter().enumerate() {
        let rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(lab.join(format!("installs/{h}.json"))).unwrap()).unwrap();
        let ip = host(&s, h)["addresses"][0].as_str().unwrap().split([' ', '/']).nth(1).unwrap().to_owned();
        let mut want = vec![
            "nixos-anywhere".to_string(),
            "--flake".into(),
            format!(".#{h}"),
            "--target-host".into(),
            format!("root@{ip}"),
            "--extra-files".into(),
            extra(h).display().to_string(),
        ];
        if h.starts_with("jetson") {
            want.extend(["--phases".to_string(), "disko,install,reboot".to_string()]);
        }
        assert_eq!(rec["argv"], serde_json::json!(want), "{h}");
        assert_eq!(
            done[i]["argv"].as_array().unwrap().len(),
            4 + want.len() - 1,
            "{h}: the double's prefix and the same arguments"
        );
        let files: Vec<(String, u32)> = serde_json::from_value(rec["extra_files"].clone()).unwrap();
        assert!(files.contains(&("etc/ssh/ssh_host_ed25519_key".into(), 0o600)), "{h}: {files:?}");
        // The generated key is pinned, and it is the key the host's sshd now serves.
        let public = std::fs::read_to_string(extra(h).join("etc/ssh/ssh_host_ed25519_key.pub")).unwrap();
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        let pinned = std::fs::read_to_string(lab.join("ssh/known_hosts")).unwrap();
        assert!(pinned.lines().any(|l| l == format!("{ip} {}", key.join(" "))), "{h} not pinned: {pinned}");
    }
    // Each server joined by `member add`: its --initial-cluster names the members before it.
    let cmdline = |h: &str| n3x_testkit::processes_mentioning(&format!("--name={h} ")).join(" ");
    assert!(cmdline("n100-1").contains("--initial-cluster-state=new"), "{}", cmdline("n100-1"));
    let n2 = cmdline("n100-2");
    assert!(n2.contains("--initial-cluster-state=existing") && !n2.contains("n100-3="), "{n2}");
    // The deployer finds every host on the generation the flake would build.
    assert!(all_unchanged(&cwd, "n3x.toml"));

    // Reinstall a server: its stale member goes first, and the cluster is whole again.
    let out = ok(&cwd, &["install", "--lab", "--json", "n100-2"], &env);
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(again[0]["removed_member"].is_string(), "{again}");
    let s = status(&cwd, cluster);
    let healthy = s["hosts"].as_array().unwrap().iter().filter(|h| h["member"]["status"].is_object()).count();
    assert_eq!(healthy, 3, "{s}");
}
