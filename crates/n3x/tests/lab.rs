//! The lab against the real machine: namespaces, veth, bridges, nftables and etcd. These
//! need root (CI runs as root) and `etcd` (Debian's etcd-server); without them each test
//! prints why it skipped. Tests take a global lock: several etcd clusters at once on a
//! 2-core machine would make timings, not the code, the subject.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

fn can_run() -> bool {
    let root = n3x_testkit::is_root();
    let etcd = n3x_testkit::have("etcd");
    if !root || !etcd {
        n3x_testkit::skip(
            "lab test",
            &format!("the lab tests need root and etcd (root: {root}, etcd: {etcd}; apt-get install etcd-server)"),
        );
    }
    root && etcd
}

fn dir(name: &str) -> PathBuf {
    n3x_testkit::fresh_dir(env!("CARGO_TARGET_TMPDIR"), name)
}

fn n3x(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    n3x_testkit::run(env!("CARGO_BIN_EXE_n3x"), cwd, args, env)
}

fn text(o: &Output) -> String {
    n3x_testkit::output_text(o)
}

fn generated(cwd: &Path, cluster: &str, hosts: usize, servers: usize) -> PathBuf {
    let p = cwd.join(format!("{cluster}.toml"));
    std::fs::write(&p, n3x_gen::inventory(cluster, hosts, servers)).unwrap();
    p
}

use n3x_testkit::{namespaces, processes_mentioning};

fn sh(cmd: &str) {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(o.status.success(), "`{cmd}` failed: {}", text(&o));
}

/// Asserts nothing of `cluster`'s lab is left: namespaces, state, processes. Namespaces
/// ending in `-decoy` or named in `spare` are the tests' own and must stay.
fn assert_gone(cluster: &str, context: &str) {
    assert_gone_except(cluster, context, &[]);
}

fn assert_gone_except(cluster: &str, context: &str, spare: &[&str]) {
    // A process killed with SIGKILL vanishes from /proc only once it is reaped: give the
    // kernel a moment before judging.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !processes_mentioning(&format!("/run/n3x/{cluster}")).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let prefix = format!("n3x-{cluster}");
    let left: Vec<String> = namespaces()
        .into_iter()
        .filter(|n| (*n == prefix || n.starts_with(&format!("{prefix}-"))) && !n.ends_with("-decoy"))
        .filter(|n| !spare.contains(&n.as_str()))
        .collect();
    assert!(left.is_empty(), "{context}: namespaces left: {left:?}");
    let state = Path::new("/run/n3x").join(cluster);
    assert!(!state.exists(), "{context}: {} left", state.display());
    let procs = processes_mentioning(&format!("/run/n3x/{cluster}"));
    assert!(procs.is_empty(), "{context}: processes left: {procs:?}");
}

/// Kill `n3x lab up` (and its supervisor) with SIGKILL at every build step; after each,
/// `n3x lab down` must leave nothing, and must not touch a decoy namespace and bridges.
#[test]
fn sigkill_at_every_step_then_down_leaves_nothing_and_spares_decoys() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !can_run() {
        return;
    }
    let cluster = "crashy";
    let cwd = dir("lab-crash");
    let inv = generated(&cwd, cluster, 7, 3);
    let inv = inv.to_str().unwrap();
    let _ = n3x(&cwd, &["lab", "down", "--cluster", cluster], &[]);
    // Decoys: a namespace named like the lab's with a bridge in it, and a bridge here.
    let decoy_ns = format!("n3x-{cluster}-decoy");
    sh(&format!(
        "ip netns del {decoy_ns} 2>/dev/null; ip link del n3xdecoy0 2>/dev/null; \
         ip netns add {decoy_ns} && ip -n {decoy_ns} link add br0 type bridge && ip link add n3xdecoy0 type bridge"
    ));
    let mut steps_seen = 0;
    for step in 1..=40 {
        let out =
            n3x(&cwd, &["lab", "up", "-f", inv, "--fabric", "kernel"], &[("N3X_LAB_FAULT_STEP", &step.to_string())]);
        let finished = out.status.code() == Some(0);
        if !finished {
            // Killed by the fault: no exit code, SIGKILL.
            assert_eq!(out.status.code(), None, "step {step}: {}", text(&out));
            steps_seen = step;
        }
        let down = n3x(&cwd, &["lab", "down", "-f", inv], &[]);
        assert_eq!(down.status.code(), Some(0), "down after step {step}: {}", text(&down));
        assert_gone(cluster, &format!("after a kill at step {step}"));
        // Idempotent: a second down finds nothing and succeeds.
        let again = n3x(&cwd, &["lab", "down", "-f", inv], &[]);
        assert_eq!(again.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to remove"));
        if finished {
            break;
        }
    }
    assert!(steps_seen >= 20, "only {steps_seen} kill points exercised");
    assert!(namespaces().contains(&decoy_ns), "the decoy namespace was removed");
    sh(&format!("ip -n {decoy_ns} link show br0 && ip link show n3xdecoy0"));
    sh(&format!("ip netns del {decoy_ns} && ip link del n3xdecoy0"));
}

/// SIGKILL of the supervisor of a running lab: etcd dies with it (pdeathsig), and
/// `down` still removes every namespace.
#[test]
fn a_crashed_supervisor_is_cleaned_up() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !can_run() {
        return;
    }
    let cluster = "orphan";
    let cwd = dir("lab-orphan");
    let inv = generated(&cwd, cluster, 4, 3);
    let inv = inv.to_str().unwrap();
    let _ = n3x(&cwd, &["lab", "down", "--cluster", cluster], &[]);
    let up = n3x(&cwd, &["lab", "up", "-f", inv], &[]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("/run/n3x/{cluster}/state.json")).unwrap()).unwrap();
    let sup = state["supervisor"]["pid"].as_i64().unwrap();
    sh(&format!("kill -9 {sup}"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Its etcd members died with it.
    let etcd: Vec<String> = processes_mentioning(&format!("/run/n3x/{cluster}/etcd"));
    assert!(etcd.is_empty(), "etcd outlived its supervisor: {etcd:?}");
    let status = n3x(&cwd, &["lab", "status", "-f", inv], &[]);
    assert_ne!(status.status.code(), Some(0), "status of a dead lab must fail: {}", text(&status));
    let down = n3x(&cwd, &["lab", "down", "-f", inv], &[]);
    assert_eq!(down.status.code(), Some(0), "{}", text(&down));
    assert_gone(cluster, "after the supervisor was killed");
}

/// Two labs of different clusters (with the same addresses) run side by side, and taking
/// one down leaves the other healthy.
#[test]
fn two_labs_side_by_side() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !can_run() {
        return;
    }
    let cwd = dir("lab-pair");
    let a = generated(&cwd, "pair-a", 4, 3);
    let b = generated(&cwd, "pair-b", 4, 3);
    for c in ["pair-a", "pair-b"] {
        let _ = n3x(&cwd, &["lab", "down", "--cluster", c], &[]);
    }
    for inv in [&a, &b] {
        let up = n3x(&cwd, &["lab", "up", "-f", inv.to_str().unwrap()], &[]);
        assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    }
    for inv in [&a, &b] {
        let st = n3x(&cwd, &["lab", "status", "--json", "-f", inv.to_str().unwrap()], &[]);
        let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
        assert!(v["leader"].is_string(), "{}", text(&st));
    }
    // A second `up` of a running lab is refused and changes nothing.
    let again = n3x(&cwd, &["lab", "up", "-f", a.to_str().unwrap()], &[]);
    assert_eq!(again.status.code(), Some(5), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already up"));
    assert!(String::from_utf8_lossy(&again.stderr).contains("`n3x lab down --cluster pair-a`"), "{}", text(&again));
    // Two labs up and none named: the command lists them, with commands that work.
    let which = n3x(&cwd, &["lab", "status"], &[]);
    assert_eq!(which.status.code(), Some(5), "{}", text(&which));
    let err = String::from_utf8_lossy(&which.stderr);
    assert!(err.contains("2 labs are up (pair-a, pair-b)"), "{err}");
    assert!(err.contains("`n3x lab down --cluster pair-a` or `n3x lab down --cluster pair-b`"), "{err}");

    let down = n3x(&cwd, &["lab", "down", "-f", a.to_str().unwrap()], &[]);
    assert_eq!(down.status.code(), Some(0));
    assert_gone("pair-a", "after down of pair-a");
    let st = n3x(&cwd, &["lab", "status", "--json", "-f", b.to_str().unwrap()], &[]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert!(v["leader"].is_string(), "pair-b lost its leader when pair-a went down: {}", text(&st));
    // One lab up: every lab command finds it without being told.
    let st = n3x(&cwd, &["lab", "status", "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap_or_default();
    assert_eq!(v["cluster"], "pair-b", "{}", text(&st));
    let down = n3x(&cwd, &["lab", "down", "-f", b.to_str().unwrap()], &[]);
    assert_eq!(down.status.code(), Some(0));
    assert_gone("pair-b", "after down of pair-b");
}

/// `n3x lab up -f gen.toml`, then every lab command without `-f` or `--cluster`: with one
/// lab up, it is the one meant, whatever ./n3x.toml (here the embedded reference) names.
#[test]
fn the_only_lab_up_is_meant() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !can_run() {
        return;
    }
    let cwd = dir("lab-solo");
    let inv = generated(&cwd, "solo", 3, 1);
    let _ = n3x(&cwd, &["lab", "down", "--cluster", "solo"], &[]);
    let up = n3x(&cwd, &["lab", "up", "-f", inv.to_str().unwrap()], &[]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    let st = n3x(&cwd, &["lab", "status"], &[]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st));
    assert!(String::from_utf8_lossy(&st.stdout).starts_with("lab `solo`"), "{}", text(&st));
    let logs = n3x(&cwd, &["lab", "logs", "node-00001", "-n", "3"], &[]);
    assert_eq!(logs.status.code(), Some(0), "{}", text(&logs));
    assert!(String::from_utf8_lossy(&logs.stdout).contains("write /n3x/probe/node-00001/"), "{}", text(&logs));
    let nope = n3x(&cwd, &["lab", "logs", "nope"], &[]);
    assert_eq!(nope.status.code(), Some(5), "{}", text(&nope));
    assert!(String::from_utf8_lossy(&nope.stderr).contains("`nope` is not a host of lab `solo`"), "{}", text(&nope));
    let heal = n3x(&cwd, &["lab", "heal"], &[]);
    assert_eq!(heal.status.code(), Some(0), "{}", text(&heal));
    let bad = n3x(&cwd, &["lab", "impair", "node-00001", "--rate-mbit", "inf"], &[]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`--rate-mbit` must be a finite number"), "{}", text(&bad));
    let down = n3x(&cwd, &["lab", "down"], &[]);
    assert_eq!(down.status.code(), Some(0), "{}", text(&down));
    assert!(String::from_utf8_lossy(&down.stderr).contains("lab `solo` removed"), "{}", text(&down));
    assert_gone("solo", "after `lab down` without naming it");
    // Nothing up: commands say so and how to start one.
    let none = n3x(&cwd, &["lab", "status"], &[]);
    assert_eq!(none.status.code(), Some(5), "{}", text(&none));
    assert!(String::from_utf8_lossy(&none.stderr).contains("n3x lab up"), "{}", text(&none));
}

/// A missing etcd, running without root, an invalid inventory and a name collision each
/// give one clear message and create nothing.
#[test]
fn refusals_create_nothing() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !can_run() {
        return;
    }
    let cwd = dir("lab-refuse");
    let inv = generated(&cwd, "refuse", 3, 3);
    let inv = inv.to_str().unwrap();
    let before = namespaces();

    let o = n3x(&cwd, &["lab", "up", "-f", inv, "--etcd", "/nonexistent/etcd"], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("`etcd` was not found") && err.contains("apt-get install etcd-server"), "{err}");

    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_n3x"), "lab", "up", "-f", inv])
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("the lab needs root"), "{}", text(&o));

    let bad = cwd.join("bad.toml");
    std::fs::write(&bad, std::fs::read_to_string(inv).unwrap().replace("init = true\n", "")).unwrap();
    let o = n3x(&cwd, &["lab", "up", "-f", bad.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-init-server"), "{}", text(&o));

    let o = n3x(&cwd, &["lab", "up", "-f", inv, "--profile", "nonesuch"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    assert_eq!(namespaces(), before, "a refused `up` created namespaces");
    assert!(!Path::new("/run/n3x/refuse").exists());

    // A namespace that is not ours, with a name the lab needs: refused, and left alone.
    sh("ip netns del n3x-refuse-node-00001 2>/dev/null; ip netns add n3x-refuse-node-00001");
    let o = n3x(&cwd, &["lab", "up", "-f", inv], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("was not created by this lab"), "{}", text(&o));
    assert!(namespaces().contains(&"n3x-refuse-node-00001".to_string()), "the foreign namespace was removed");
    assert_gone_except("refuse", "after a refused up", &["n3x-refuse-node-00001"]);
    sh("ip netns del n3x-refuse-node-00001");
}

/// The kernel fabric refuses a delay it cannot make, rather than skipping it.
#[test]
fn kernel_fabric_refuses_delay_without_netem() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !can_run() {
        return;
    }
    let netem =
        Command::new("sh").args(["-c", "test \"$(cat /run/n3x/.kernel-netem 2>/dev/null)\" = yes"]).status().unwrap();
    let cwd = dir("lab-netem");
    let inv = generated(&cwd, "delayed", 3, 3);
    let o =
        n3x(&cwd, &["lab", "up", "-f", inv.to_str().unwrap(), "--fabric", "kernel", "--profile", "constrained"], &[]);
    if netem.success() {
        // Not a missing tool: on a kernel with netem there is no refusal to test.
        eprintln!("not applicable: this kernel has netem, so the kernel fabric can delay");
        let _ = n3x(&cwd, &["lab", "down", "--cluster", "delayed"], &[]);
        return;
    }
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("kernel fabric cannot give these links delay or jitter"), "{err}");
    assert!(err.contains("--fabric userspace"), "{err}");
    assert_gone("delayed", "after a refused up");
}

/// Median round trip in ms of `count` pings from `host` to `ip` inside a running lab.
fn ping_ms(cwd: &Path, inv: &str, host: &str, ip: &str, count: u32) -> f64 {
    let o = n3x(
        cwd,
        &["lab", "exec", host, "-f", inv, "--", "ping", "-c", &count.to_string(), "-i", "0.05", "-W", "2", ip],
        &[],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let mut rtts: Vec<f64> =
        out.lines().filter_map(|l| l.split("time=").nth(1)?.split_whitespace().next()?.parse().ok()).collect();
    assert!(!rtts.is_empty(), "no ping replies from {host} to {ip}: {}", text(&o));
    rtts.sort_by(f64::total_cmp);
    rtts[rtts.len() / 2]
}

/// The reference lab on the userspace fabric: a Jetson's `edge` profile (from
/// `[lab.hosts.jetson-1]`) delays what it sends, the servers' links are not delayed, and
/// `lab impair` changes a host's links at run time.
#[test]
fn per_host_profiles_apply_to_that_hosts_links() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !can_run() {
        return;
    }
    if !n3x_testkit::have("ping") {
        n3x_testkit::skip(
            "per_host_profiles_apply_to_that_hosts_links",
            "ping is not installed (apt-get install iputils-ping)",
        );
        return;
    }
    let cwd = dir("lab-profiles");
    let inv = cwd.join("n3x.toml");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../n3x.toml"), &inv).unwrap();
    let inv = inv.to_str().unwrap();
    let _ = n3x(&cwd, &["lab", "down", "--cluster", "n3x"], &[]);
    let up = n3x(&cwd, &["lab", "up", "-f", inv, "--fabric", "userspace"], &[]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));

    // jetson-1 sends with 50 ms +- 10 ms; n100-1 answers undelayed.
    let jetson = ping_ms(&cwd, inv, "jetson-1", "192.168.200.11", 20);
    assert!((35.0..80.0).contains(&jetson), "jetson-1 -> n100-1 median RTT {jetson} ms, expected ~50");
    let servers = ping_ms(&cwd, inv, "n100-2", "192.168.200.11", 10);
    assert!(servers < 10.0, "n100-2 -> n100-1 median RTT {servers} ms, expected no delay");

    // At run time: delay n100-2's links by 30 ms, then take it away again.
    let o = n3x(&cwd, &["lab", "impair", "n100-2", "-f", inv, "--delay-ms", "30"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let slowed = ping_ms(&cwd, inv, "n100-2", "192.168.200.11", 10);
    assert!((29.0..45.0).contains(&slowed), "after impair: {slowed} ms, expected ~30");
    let o = n3x(&cwd, &["lab", "impair", "n100-2", "-f", inv, "--profile", "default"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let back = ping_ms(&cwd, inv, "n100-2", "192.168.200.11", 10);
    assert!(back < 10.0, "after resetting to default: {back} ms");

    let status = n3x(&cwd, &["lab", "status", "-f", inv, "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["fabric"], "userspace");
    let profile = |h: &str| v["hosts"].as_array().unwrap().iter().find(|x| x["name"] == h).unwrap()["profile"].clone();
    assert_eq!(profile("jetson-2"), "edge");
    assert_eq!(profile("n100-2"), "default");

    let down = n3x(&cwd, &["lab", "down", "-f", inv], &[]);
    assert_eq!(down.status.code(), Some(0), "{}", text(&down));
    assert_gone("n3x", "after the profile test");
}

/// Ctrl-C during `lab run` removes the lab and exits 128 + SIGINT.
#[test]
fn an_interrupted_run_leaves_nothing() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !can_run() {
        return;
    }
    let cwd = dir("lab-interrupt");
    let inv = generated(&cwd, "interrupted", 4, 3);
    let _ = n3x(&cwd, &["lab", "down", "--cluster", "interrupted"], &[]);
    let child = Command::new(env!("CARGO_BIN_EXE_n3x"))
        .current_dir(&cwd)
        .args(["lab", "run", "-f", inv.to_str().unwrap(), "--report", "report"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the lab is up and a scenario is under way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !Path::new("/run/n3x/interrupted/control.sock").exists() {
        assert!(std::time::Instant::now() < deadline, "the lab never came up");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    sh(&format!("kill -INT {}", child.id()));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted: removing lab `interrupted`"));
    assert_gone("interrupted", "after Ctrl-C");
}
