//! `n3x status` and `n3x backup`, the binary against real things: backups made from a real
//! etcd's snapshot, `verify` restoring them into a real etcd, every bad file named with
//! its exit code; and, as root, `status` and `backup` against a running lab (real sshd,
//! real etcd), including a server killed and a snapshot killed mid-write.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use n3x_operate::bundle::{self, Origin};
use n3x_secrets::keys::Identities;
use n3x_testkit::output_text as text;

static SERIAL: Mutex<()> = Mutex::new(());

const BIN: &str = env!("CARGO_BIN_EXE_n3x");

fn n3x(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    n3x_testkit::run(BIN, cwd, args, env)
}

fn dir(name: &str) -> PathBuf {
    n3x_testkit::fresh_dir(env!("CARGO_TARGET_TMPDIR"), name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A real etcd member on loopback, killed on drop.
struct Etcd(Child, SocketAddr);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn etcd(data: &Path) -> Etcd {
    let (peer, client) = (free_port(), free_port());
    let child = Command::new("etcd")
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!("--initial-cluster=default=http://127.0.0.1:{peer}"))
        .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], client));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !n3x_etcd::http::has_leader(&n3x_etcd::http::Transport::Plain, addr, Duration::from_secs(1)) {
        assert!(Instant::now() < deadline, "etcd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Etcd(child, addr)
}

struct Made {
    data: PathBuf,
    identity: PathBuf,
    revision: u64,
    keys: u64,
}

/// A backup of cluster `cluster` as `n3x backup snapshot` writes it, from a real etcd
/// holding `keys` keys, encrypted to a fresh identity (written to `dir/key.txt`).
fn real_backup(dir: &Path, cluster: &str, keys: u64) -> Made {
    let e = etcd(&dir.join("etcd-data"));
    let mut revision = 0;
    for i in 0..keys {
        let body = n3x_etcd::put_body(&format!("/registry/test/{i:05}"), &format!("value-{i}"));
        let r = n3x_etcd::http::post_json(
            &n3x_etcd::http::Transport::Plain,
            e.1,
            n3x_etcd::PUT,
            &body,
            Duration::from_secs(5),
        )
        .unwrap();
        revision = n3x_etcd::parse_put(&r.body).unwrap();
    }
    let r = n3x_etcd::http::post_json(
        &n3x_etcd::http::Transport::Plain,
        e.1,
        n3x_etcd::SNAPSHOT,
        "{}",
        Duration::from_secs(30),
    )
    .unwrap();
    let snapshot = n3x_etcd::parse_snapshot_stream(&r.body).unwrap();
    drop(e);
    let (secret, public) = n3x_secrets::keys::generate_age_identity("test");
    let identity = dir.join("key.txt");
    std::fs::write(&identity, secret.as_bytes()).unwrap();
    let origin = Origin {
        cluster: cluster.into(),
        member: "n100-1".into(),
        member_id: "1".into(),
        revision,
        revision_upper: revision,
        k3s_version: "v1.31.4+k3s1".into(),
        created_unix: 1_795_791_447,
    };
    let stem = bundle::stem(cluster, "n100-1", origin.created_unix);
    let (m, bytes) = bundle::seal(&origin, "K10abc::server:s3cret", &snapshot, &[public], &stem).unwrap();
    let data = bundle::save(&dir.join("backups"), &m, &bytes).unwrap();
    Made { data, identity, revision, keys }
}

fn can_run_etcd() -> bool {
    let ok = n3x_testkit::have("etcd") && n3x_testkit::have("etcdctl");
    if !ok {
        n3x_testkit::skip("backup test", "needs etcd and etcdctl (apt-get install etcd-server etcd-client)");
    }
    ok
}

/// A copy of the backup under `name`, with `edit` applied to its bytes and, optionally,
/// the manifest brought in line with them (as someone covering their tracks would).
fn variant(m: &Made, name: &str, edit: impl Fn(&mut Vec<u8>), fix_manifest: bool) -> PathBuf {
    let (_, manifest) = bundle::paths(&m.data);
    let dir = m.data.parent().unwrap().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = std::fs::read(&m.data).unwrap();
    edit(&mut bytes);
    let file = dir.join(m.data.file_name().unwrap());
    std::fs::write(&file, &bytes).unwrap();
    let mut man: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    if fix_manifest {
        man["sha256"] = bundle::sha256_hex(&bytes).into();
        man["size"] = (bytes.len() as u64).into();
    }
    std::fs::write(bundle::paths(&file).1, man.to_string()).unwrap();
    file
}

#[test]
fn verify_proves_a_good_backup_and_names_every_bad_one() {
    if !can_run_etcd() {
        return;
    }
    let d = dir("verify-cases");
    let m = real_backup(&d, "n3x", 300);
    let id = m.identity.to_str().unwrap();
    let verify = |f: &Path, extra: &[&str]| {
        let mut a = vec!["backup", "verify", f.to_str().unwrap(), "--identity", id];
        a.extend_from_slice(extra);
        n3x(&d, &a, &[])
    };

    // Good: restored into a real etcd, every key read back at the snapshot's revision.
    let o = verify(&m.data, &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["readback"]["keys"], m.keys);
    assert_eq!(v["readback"]["revision"], m.revision);
    // The manifest works as the argument too; the human summary names the count.
    let o = verify(&bundle::paths(&m.data).1, &[]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("{} keys", m.keys)), "{}", text(&o));

    let bad = |f: &Path, id: &str, code: i32, says: &str| {
        let o = n3x(&d, &["backup", "verify", f.to_str().unwrap(), "--identity", id], &[]);
        assert_eq!(o.status.code(), Some(code), "{}: {}", f.display(), text(&o));
        let e = stderr(&o);
        assert!(e.contains(says) && e.contains("help:"), "{}: expected `{says}` in:\n{e}", f.display());
        assert_eq!(e.matches("error:").count(), 1, "one message: {e}");
    };
    // A truncated copy.
    bad(&variant(&m, "truncated", |b| b.truncate(b.len() - 1000), false), id, 11, "is truncated");
    // One byte flipped: the manifest's hash catches it...
    let flip = |b: &mut Vec<u8>| {
        let i = b.len() / 2;
        b[i] ^= 0x01;
    };
    bad(&variant(&m, "flipped", flip, false), id, 11, "does not match its manifest");
    // ...and with the manifest rewritten to match, age's authentication does.
    bad(&variant(&m, "flipped-covered", flip, true), id, 11, "is corrupt");
    // A manifest whose hash does not match the (intact) file.
    let wrong = variant(&m, "wrong-manifest", |_| {}, false);
    let mp = bundle::paths(&wrong).1;
    let mut man: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mp).unwrap()).unwrap();
    man["sha256"] = "00".repeat(32).into();
    std::fs::write(&mp, man.to_string()).unwrap();
    bad(&wrong, id, 11, "does not match its manifest");
    // Encrypted to other keys.
    let (other, _) = n3x_secrets::keys::generate_age_identity("other");
    let other_path = d.join("other.txt");
    std::fs::write(&other_path, other.as_bytes()).unwrap();
    bad(&m.data, other_path.to_str().unwrap(), 11, "is not encrypted to your identity");
    // No manifest beside it.
    let lone = variant(&m, "lone", |_| {}, false);
    std::fs::remove_file(bundle::paths(&lone).1).unwrap();
    bad(&lone, id, 11, "has no manifest");
    // Not a backup at all.
    let junk = d.join("junk.snap.age");
    std::fs::write(&junk, b"not age").unwrap();
    std::fs::write(bundle::paths(&junk).1, b"{").unwrap();
    bad(&junk, id, 11, "is not an n3x snapshot manifest");

    // A missing binary: one message, exit 3.
    let o = n3x(&d, &["backup", "verify", m.data.to_str().unwrap(), "--identity", id], &[("PATH", "/nonexistent")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(stderr(&o).contains("etcd") && stderr(&o).contains("not found in PATH"), "{}", text(&o));
    // No plaintext was left behind by the throwaway restores.
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .map(|rd| rd.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("n3x-verify-")).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch directories left: {left:?}");
}

#[test]
fn restore_refuses_another_clusters_snapshot_before_touching_a_host() {
    if !can_run_etcd() {
        return;
    }
    let d = dir("restore-other");
    let m = real_backup(&d, "elsewhere", 3);
    // The embedded reference inventory is cluster `n3x`; its hosts do not exist here, so any
    // attempt to reach one would fail differently.
    let o = n3x(
        &d,
        &["backup", "restore", m.data.to_str().unwrap(), "--identity", m.identity.to_str().unwrap(), "--force"],
        &[],
    );
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(stderr(&o).contains("is a snapshot of cluster `elsewhere`, not of `n3x`"), "{}", text(&o));
}

#[test]
fn bad_flags_are_usage_errors() {
    let d = dir("operate-flags");
    for args in [
        &["backup", "restore"][..],
        &["backup", "verify"],
        &["status", "--watch", "0"],
        &["status", "--timeout", "0"],
        &["backup", "snapshot", "--cluster", "x"],
        &["backup", "frobnicate"],
        &["certs"],
        &["certs", "rotate", "--start-timeout", "0"],
        &["certs", "rotate", "--cluster", "x"],
    ] {
        let o = n3x(&d, args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
    // No recipient at all (the reference's admins are empty): said before any host is asked.
    let o = n3x(&d, &["backup", "snapshot"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("no one to encrypt the snapshot to") && stderr(&o).contains("n3x secrets init"));
}

// ---- against a running lab (root) ----

fn can_run_lab() -> bool {
    let root = n3x_testkit::is_root();
    let tools = ["etcd", "etcdctl", "sshd", "ssh", "python3"].iter().all(|t| n3x_testkit::have(t));
    if !root || !tools {
        n3x_testkit::skip(
            "status/backup lab test",
            &format!("needs root, etcd, etcdctl, sshd, ssh and python3 (root: {root})"),
        );
    }
    root && tools
}

fn up<'a>(cwd: &'a Path, cluster: &'a str) -> (n3x_testkit::LabGuard<'a>, String) {
    let reference = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../n3x.toml")).unwrap();
    let inv = cwd.join(format!("{cluster}.toml"));
    std::fs::write(&inv, reference.replacen("name = \"n3x\"", &format!("name = \"{cluster}\""), 1)).unwrap();
    let inv = inv.display().to_string();
    let _ = n3x(cwd, &["lab", "down", "--cluster", cluster], &[]);
    let o = n3x(cwd, &["lab", "up", "-f", &inv, "--ssh", "on"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    (n3x_testkit::LabGuard { bin: BIN, cwd, cluster }, inv)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn lab_leader(cwd: &Path, cluster: &str) -> Option<String> {
    let o = n3x(cwd, &["lab", "status", "--cluster", cluster, "--json"], &[]);
    json(&o)["leader"].as_str().map(str::to_owned)
}

#[test]
fn status_reports_every_member_and_the_leader_and_degraded_when_a_server_is_killed() {
    if !can_run_lab() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = dir("status-lab");
    let (_lab, inv) = up(&d, "opst");
    let status = || n3x(&d, &["status", "--lab", "-f", &inv, "--json"], &[]);
    let o = status();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = json(&o);
    assert_eq!(s["verdict"], "healthy");
    assert_eq!(s["quorum"]["healthy"], 3);
    // The lab's etcd runs mutual TLS: its certificates are real, issued for a year.
    let days = s["certificates"]["days"].as_i64().unwrap();
    assert!((n3x_lab::tls::MEMBER_DAYS - 1..=n3x_lab::tls::MEMBER_DAYS).contains(&days), "{}", s["certificates"]);
    assert!(s["certificates"]["certificates"].as_u64().unwrap() >= 4, "{}", s["certificates"]);
    assert!(s["secrets_encryption"]["not_applicable"].is_string(), "{}", s["secrets_encryption"]);
    let leader = lab_leader(&d, "opst").unwrap();
    assert_eq!(s["leader"], leader.as_str());
    let hosts = s["hosts"].as_array().unwrap();
    let servers: Vec<&serde_json::Value> = hosts.iter().filter(|h| h["role"] == "server").collect();
    assert_eq!(servers.len(), 3);
    for h in &servers {
        assert_eq!(h["etcd"]["leader"], h["name"] == leader.as_str(), "{h}");
        assert!(h["generation"]["current"].as_str().unwrap().starts_with("/nix/store/"), "{h}");
    }
    assert!(hosts.iter().filter(|h| h["role"] == "agent").all(|h| h["etcd"]["not_applicable"].is_string()));

    // --watch: one JSON object per line, again and again, until SIGINT (exit: the last verdict).
    let mut w = Command::new(BIN)
        .current_dir(&d)
        .args(["status", "--lab", "-f", &inv, "--json", "--watch", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    let _ = Command::new("kill").args(["-INT", &w.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "status --watch did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = w.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 2 && lines.iter().all(|l| l["verdict"] == "healthy"), "{}", text(&o));

    // `certs rotate`: the plan runs nothing; the rotation renews every member's certificate
    // (a new one: its serial changes), host by host, and the cluster stays healthy.
    let o = n3x(&d, &["certs", "rotate", "--lab", "-f", &inv, "--plan"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing was run (--plan)"), "{}", text(&o));
    let cert = |h: &str| {
        std::fs::read(format!("/run/n3x/opst/hosts/{h}/root/var/lib/rancher/k3s/server/tls/etcd/server-client.crt"))
            .unwrap()
    };
    let before = cert("n100-1");
    let o = n3x(&d, &["certs", "rotate", "--lab", "-f", &inv, "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&o);
    assert_eq!(r["ran"], true);
    assert_eq!(r["steps"].as_array().unwrap().len(), 15, "{r}");
    assert!(r["after"]["days"].as_i64().unwrap() >= n3x_lab::tls::MEMBER_DAYS - 1, "{r}");
    assert_ne!(cert("n100-1"), before, "n100-1's certificate was not renewed");
    assert_eq!(status().status.code(), Some(0));

    // Kill the leader's member: degraded (exit 9), the member unknown, the new leader named.
    let lab_dir = Path::new("/run/n3x/opst");
    n3x_lab::control::act(lab_dir, &n3x_lab::control::Request::Kill { host: leader.clone() }, Duration::from_secs(10))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let new = loop {
        match lab_leader(&d, "opst") {
            Some(l) if l != leader => break l,
            _ => assert!(Instant::now() < deadline, "no new leader"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let o = status();
    assert_eq!(o.status.code(), Some(9), "{}", text(&o));
    let s = json(&o);
    assert_eq!(s["verdict"], "degraded");
    assert_eq!(s["leader"], new.as_str());
    assert_eq!((s["quorum"]["healthy"].as_u64(), s["quorum"]["members"].as_u64()), (Some(2), Some(3)));
    let killed = s["hosts"].as_array().unwrap().iter().find(|h| h["name"] == leader.as_str()).unwrap();
    assert!(killed["etcd"]["unknown"].is_string(), "{killed}");
    assert_eq!(killed["reachable"], true, "its sshd still answers");
    assert!(s["problems"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().contains(&format!("`{leader}`"))));
    // The table says the same to people.
    let o = n3x(&d, &["status", "--lab", "-f", &inv], &[]);
    assert_eq!(o.status.code(), Some(9));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("DEGRADED") && out.contains("quorum 2/3"), "{out}");
    // A rotation now would restart a member of a cluster that has one to spare: refused.
    let o = n3x(&d, &["certs", "rotate", "--lab", "-f", &inv], &[]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(stderr(&o).contains("is not healthy") && stderr(&o).contains("--force"), "{}", text(&o));
}

/// Every file under a final name opens completely: no partial backup is ever visible.
fn complete(dir: &Path, ids: &Identities) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(bundle::DATA_SUFFIX) {
            continue;
        }
        let bytes = std::fs::read(e.path()).unwrap();
        let manifest = bundle::paths(&e.path()).1;
        if manifest.exists() {
            let m = bundle::read_manifest(&manifest).unwrap();
            bundle::check(&e.path(), &m, &bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
        }
        bundle::open(&e.path(), &bytes, ids, &[]).unwrap_or_else(|err| panic!("{name} is not complete: {err}"));
        n += 1;
    }
    n
}

#[test]
fn a_healthy_cluster_refuses_restore_and_a_killed_snapshot_leaves_no_partial_file() {
    if !can_run_lab() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = dir("backup-lab");
    let (_lab, inv) = up(&d, "opbk");
    // ~20 MB in etcd, so writing the backup takes long enough to be caught in the act.
    let fill = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/etcd-fill.py");
    // The lab's etcd runs mutual TLS: the lab's own client certificate.
    let tls = n3x_lab::plan::state_dir("opbk").join(n3x_lab::tls::LAB_TLS);
    let o = n3x(
        &d,
        &[
            "lab",
            "exec",
            "--cluster",
            "opbk",
            "n100-1",
            "--",
            "python3",
            fill,
            "--cacert",
            tls.join("ca.crt").to_str().unwrap(),
            "--cert",
            tls.join("client.crt").to_str().unwrap(),
            "--key",
            tls.join("client.key").to_str().unwrap(),
            "https://127.0.0.1:2379",
            "20",
            "1000000",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let backups = d.join("backups");
    let b = backups.to_str().unwrap();
    let o = n3x(&d, &["backup", "snapshot", "--lab", "-f", &inv, "--dir", b, "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let file = json(&o)["path"].as_str().unwrap().to_owned();
    // Healthy: refused, nothing touched (exit 6), unless forced.
    let o = n3x(&d, &["backup", "restore", &file, "--lab", "-f", &inv], &[]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(stderr(&o).contains("has quorum (3 of 3 members answer") && stderr(&o).contains("--force"), "{}", text(&o));
    assert_eq!(n3x(&d, &["status", "--lab", "-f", &inv], &[]).status.code(), Some(0));

    // SIGKILL during `snapshot`: when its temporary file appears (mid-write), and at
    // fixed delays; after each, every file under a final name is complete.
    let ids = n3x_secrets::repo::read_identities(Path::new("/run/n3x/opbk/backup/age-key.txt")).unwrap();
    let killed_dir = d.join("killed");
    let mut caught_mid_write = 0;
    let mut attempt = 0;
    while attempt < 12 && (attempt < 6 || caught_mid_write == 0) {
        let mut child = Command::new(BIN)
            .current_dir(&d)
            .args(["backup", "snapshot", "--lab", "-f", &inv, "--dir", killed_dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let started = Instant::now();
        let fixed = Duration::from_millis(300 * attempt as u64);
        loop {
            let temp = std::fs::read_dir(&killed_dir)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains(&format!(".n3x-tmp-{pid}-")));
            let by_time = attempt % 2 == 1 && started.elapsed() >= fixed;
            if temp || by_time || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                if temp {
                    caught_mid_write += 1;
                }
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        complete(&killed_dir, &ids);
        attempt += 1;
    }
    assert!(caught_mid_write > 0, "no kill landed while the backup was being written");
    // The next snapshot clears what the killed ones left, and succeeds.
    let o = n3x(&d, &["backup", "snapshot", "--lab", "-f", &inv, "--dir", killed_dir.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(complete(&killed_dir, &ids) >= 1);
    let temps: Vec<String> = std::fs::read_dir(&killed_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".n3x-tmp-"))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
    // `list` names a backup whose manifest never got written.
    let o = n3x(&d, &["backup", "list", "--dir", killed_dir.to_str().unwrap(), "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
