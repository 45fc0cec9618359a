//! `n3x backup`: take an etcd snapshot through k3s on a server and keep it encrypted here;
//! prove one by restoring it; and restore a cluster from one with k3s's cluster-reset
//! procedure. Everything on the hosts goes through [`Ask`] (SSH), the same commands on
//! real servers and in the lab (see `n3x_deploy::commands`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use n3x_deploy::observe::{Ask, ClusterView, is_member_of};
use n3x_deploy::{ClusterSpec, DeployError, HostSpec, commands};
use n3x_secrets::keys::Identities;
use serde::Serialize;

use crate::bundle::{self, Contents, Manifest, Origin};
use crate::error::OperateError;
use crate::throwaway::{self, Readback, Tools};

/// Progress lines for the renderer.
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// Where backups go by default: `$XDG_STATE_HOME/n3x/<cluster>/backups` (else
/// `~/.local/state/...`), beside the deploy journal.
pub fn default_dir(env: &dyn Fn(&str) -> Option<std::ffi::OsString>, cluster: &str) -> Option<PathBuf> {
    Some(n3x_deploy::journal::state_dir(env, cluster)?.join("backups"))
}

pub struct SnapshotOptions {
    pub dir: PathBuf,
    pub recipients: Vec<String>,
    /// The server to snapshot; the leader when `None`.
    pub from: Option<String>,
    pub timeout: Duration,
    pub now_unix: u64,
}

#[derive(Debug, Serialize)]
pub struct Taken {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub took_ms: u64,
}

fn pick_server<'s>(
    ask: Ask<'_>,
    spec: &'s ClusterSpec,
    from: Option<&str>,
) -> Result<(&'s HostSpec, n3x_etcd::Status), OperateError> {
    if let Some(name) = from {
        let h = spec.host(name).filter(|h| h.server).ok_or_else(|| {
            OperateError::Host(n3x_deploy::DeployError::UnknownHost {
                name: name.into(),
                known: spec.servers().map(|h| h.name.clone()).collect(),
            })
        })?;
        return Ok((h, ask.status(h)?));
    }
    let view = ClusterView::ask(ask, spec);
    let chosen = view.leader().or_else(|| view.statuses.iter().find(|(_, s)| s.is_ok()).map(|(h, _)| *h));
    match chosen {
        Some(h) => Ok((h, view.status_of(&h.name).cloned().ok_or_else(|| no_server(spec, &view))?)),
        None => Err(no_server(spec, &view)),
    }
}

fn no_server(spec: &ClusterSpec, view: &ClusterView<'_>) -> OperateError {
    let detail = view
        .statuses
        .iter()
        .filter_map(|(_, s)| s.as_ref().err().map(|e| e.to_string()))
        .collect::<Vec<_>>()
        .join("; ");
    OperateError::NoServer { cluster: spec.name.clone(), detail }
}

/// Takes a snapshot on a server (`k3s etcd-snapshot save`), fetches it and the server
/// token over SSH, and writes them encrypted to `opts.recipients` with a manifest.
pub fn snapshot(
    ask: Ask<'_>,
    spec: &ClusterSpec,
    opts: &SnapshotOptions,
    progress: Progress<'_>,
) -> Result<Taken, OperateError> {
    let t0 = Instant::now();
    bundle::recipients(&opts.recipients)?;
    if opts.recipients.is_empty() {
        return Err(OperateError::NoRecipients { cluster: spec.name.clone() });
    }
    let (h, before) = pick_server(ask, spec, opts.from.as_deref())?;
    let name = format!("n3x-{}", opts.now_unix);
    let long = opts.timeout.max(Duration::from_secs(300));
    progress(&format!("{}: k3s etcd-snapshot save --name {name}", h.name));
    // None of these reads input: one connection takes the snapshot, then reads the
    // revision after it, the file's name, the token and the k3s version.
    let t = opts.timeout;
    let cmds = [
        commands::snapshot(&name, long),
        commands::etcd_inline(n3x_etcd::STATUS, &n3x_etcd::empty_body(), t),
        commands::snapshot_files(t),
        commands::read_token(t),
        commands::k3s_version(t),
    ];
    let outs =
        ask.remote.run_all(&h.target(), &cmds).map_err(|e| DeployError::remote(&h.name, "taking the snapshot", e))?;
    let answer = |i: usize, what: &str| -> Result<&str, OperateError> {
        n3x_remote::answer(&outs, i)
            .map_err(|detail| OperateError::Tool { command: format!("{what} on `{}`", h.name), detail })
    };
    answer(0, &format!("k3s etcd-snapshot save --name {name}"))?;
    let after = n3x_etcd::parse_status(answer(1, "etcd status")?)
        .map_err(|e| OperateError::Tool { command: format!("etcd status on `{}`", h.name), detail: e.0 })?;
    let listing = answer(2, "listing the snapshots")?;
    let token = zeroize::Zeroizing::new(answer(3, "reading the server token")?.trim().to_owned());
    let k3s_version = answer(4, "k3s --version")
        .ok()
        .and_then(n3x_deploy::observe::parse_k3s_version)
        .unwrap_or("unknown")
        .to_owned();
    let file = newest_named(listing, &name).ok_or_else(|| OperateError::Tool {
        command: format!("k3s etcd-snapshot save --name {name} on `{}`", h.name),
        detail: format!("no file `{name}-*` in {}", commands::SNAPSHOT_DIR),
    })?;
    let remote_path = format!("{}/{file}", commands::SNAPSHOT_DIR);
    progress(&format!("{}: fetching {remote_path}", h.name));
    let b64 = ask.run(h, "fetching the snapshot", &commands::read_base64(&remote_path, long))?;
    let snap = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| OperateError::Tool { command: format!("base64 -w0 {remote_path}"), detail: e.to_string() })?,
    );
    drop(b64);
    if !bundle::etcd_trailer_ok(&snap) {
        return Err(OperateError::Corrupt {
            path: PathBuf::from(format!("{}:{remote_path}", h.name)),
            detail: "the fetched snapshot fails etcd's own sha256 check".into(),
        });
    }
    let origin = Origin {
        cluster: spec.name.clone(),
        member: h.name.clone(),
        member_id: format!("{:x}", before.member_id),
        revision: before.revision,
        revision_upper: after.revision,
        k3s_version,
        created_unix: opts.now_unix,
    };
    let stem = bundle::stem(&spec.name, &h.name, opts.now_unix);
    progress(&format!("encrypting to {} recipient(s)", opts.recipients.len()));
    let (manifest, data) = bundle::seal(&origin, token.trim(), &snap, &opts.recipients, &stem)?;
    let path = bundle::save(&opts.dir, &manifest, &data)?;
    Ok(Taken { path, manifest, took_ms: t0.elapsed().as_millis() as u64 })
}

/// The newest file of `ls -1t` output that k3s wrote for `--name name`.
pub fn newest_named(listing: &str, name: &str) -> Option<String> {
    let prefix = format!("{name}-");
    listing.lines().map(str::trim).find(|l| l.starts_with(&prefix) && !l.contains('/')).map(str::to_owned)
}

/// A backup read, checked against its manifest and decrypted.
pub struct Loaded {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub contents: Contents,
}

/// Reads the backup named by `file` (its data file or its manifest), checks it against
/// its manifest and decrypts it with `ids`.
pub fn load(file: &Path, ids: &Identities) -> Result<Loaded, OperateError> {
    let (data_path, manifest_path) = bundle::paths(file);
    if !manifest_path.exists() {
        if !data_path.exists() {
            return Err(OperateError::io("read", &data_path, "no such file"));
        }
        return Err(OperateError::NoManifest { data: data_path, manifest: manifest_path });
    }
    let manifest = bundle::read_manifest(&manifest_path)?;
    let data = std::fs::read(&data_path).map_err(|e| OperateError::io("read", &data_path, e))?;
    bundle::check(&data_path, &manifest, &data)?;
    let contents = bundle::open(&data_path, &data, ids, &manifest.recipients)?;
    let o = &contents.origin;
    if o.cluster != manifest.cluster || o.revision != manifest.revision || o.member != manifest.member {
        return Err(OperateError::Corrupt {
            path: data_path,
            detail: format!(
                "its manifest says cluster `{}` revision {} from `{}`, the encrypted header cluster `{}` revision {} from `{}`",
                manifest.cluster, manifest.revision, manifest.member, o.cluster, o.revision, o.member
            ),
        });
    }
    Ok(Loaded { path: data_path, manifest, contents })
}

#[derive(Debug, Serialize)]
pub struct Verified {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub readback: Readback,
    pub took_ms: u64,
}

/// Decrypts, checks, restores into a throwaway etcd and reads every key back; the restored
/// revision must lie between the manifest's bounds.
pub fn verify(file: &Path, ids: &Identities, tools: &Tools, progress: Progress<'_>) -> Result<Verified, OperateError> {
    let t0 = Instant::now();
    let l = load(file, ids)?;
    progress(&format!("{}: hashes and decryption pass; restoring into a throwaway etcd", l.path.display()));
    let rb = throwaway::restore_and_read(&l.path, &l.contents.snapshot, tools)?;
    if rb.revision < l.manifest.revision || rb.revision > l.manifest.revision_upper {
        return Err(OperateError::Corrupt {
            path: l.path,
            detail: format!(
                "it restores to revision {}, outside the {}..={} its manifest records",
                rb.revision, l.manifest.revision, l.manifest.revision_upper
            ),
        });
    }
    Ok(Verified { path: l.path, manifest: l.manifest, readback: rb, took_ms: t0.elapsed().as_millis() as u64 })
}

pub struct RestoreOptions {
    pub force: bool,
    pub plan_only: bool,
    pub timeout: Duration,
    /// How long a member may take to answer after its k3s starts.
    pub start_timeout: Duration,
}

/// One step of the procedure.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub host: String,
    pub what: String,
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Restored {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub steps: Vec<Step>,
    /// Done (false for `--plan`).
    pub ran: bool,
    /// The restored cluster: its revision and members answering, after the last start.
    pub revision: Option<u64>,
    pub members: usize,
    pub took_ms: u64,
}

const SNAPSHOT_NAME: &str = "snapshot.db";
const TOKEN_NAME: &str = "token";

/// The k3s procedure, as steps: stop k3s on every server; on the init server put the
/// snapshot and token in place and run `k3s server --cluster-reset`; wipe the other
/// servers' etcd data; start the init server, then the others one at a time.
pub fn plan(spec: &ClusterSpec, t: Duration) -> Result<(Vec<Step>, &HostSpec), OperateError> {
    let init = spec.init().or_else(|| spec.servers().next()).ok_or_else(|| OperateError::NoServer {
        cluster: spec.name.clone(),
        detail: "the inventory has no server".into(),
    })?;
    let snap = format!("{}/{SNAPSHOT_NAME}", commands::RESTORE_DIR);
    let token = format!("{}/{TOKEN_NAME}", commands::RESTORE_DIR);
    let step = |h: &HostSpec, what: &str, c: n3x_remote::Command| Step {
        host: h.name.clone(),
        what: what.into(),
        command: c.display(),
        took_ms: None,
    };
    let others: Vec<&HostSpec> = spec.servers().filter(|h| h.name != init.name).collect();
    let mut steps: Vec<Step> = spec.servers().map(|h| step(h, "stop k3s", commands::k3s_stop(t))).collect();
    steps.push(step(init, "upload the snapshot (stdin, 0600)", commands::upload(SNAPSHOT_NAME, t)));
    steps.push(step(init, "upload the server token (stdin, 0600)", commands::upload(TOKEN_NAME, t)));
    steps.push(step(init, "reset the cluster from the snapshot", commands::cluster_reset(&snap, &token, t)));
    for h in &others {
        steps.push(step(h, "wipe its etcd data", commands::wipe_db(t)));
    }
    steps.push(step(init, "start k3s; wait for its member", commands::k3s_start(t)));
    for h in &others {
        steps.push(step(h, "start k3s; wait until it joined", commands::k3s_start(t)));
    }
    steps.push(step(init, "remove the snapshot and token copies", commands::restore_cleanup(t)));
    Ok((steps, init))
}

/// Restores `spec`'s cluster from `file`: refuses another cluster's snapshot, and a
/// healthy cluster unless `force`; with `plan_only` returns the steps without running one.
pub fn restore(
    ask: Ask<'_>,
    spec: &ClusterSpec,
    file: &Path,
    ids: &Identities,
    opts: &RestoreOptions,
    progress: Progress<'_>,
) -> Result<Restored, OperateError> {
    let t0 = Instant::now();
    let l = load(file, ids)?;
    if l.manifest.cluster != spec.name {
        return Err(OperateError::OtherCluster { path: l.path, theirs: l.manifest.cluster, ours: spec.name.clone() });
    }
    let (mut steps, init) = plan(spec, opts.timeout)?;
    if opts.plan_only {
        return Ok(Restored {
            path: l.path,
            manifest: l.manifest,
            steps,
            ran: false,
            revision: None,
            members: 0,
            took_ms: t0.elapsed().as_millis() as u64,
        });
    }
    // A cluster with quorum still takes writes: restoring it throws them away, so only
    // with --force (a bad write to roll back). Without quorum there is nothing to lose.
    let view = ClusterView::ask(ask, spec);
    let servers = view.statuses.len();
    if let (false, Some(leader)) = (opts.force, view.leader().filter(|_| view.healthy() > servers / 2)) {
        return Err(OperateError::Healthy {
            cluster: spec.name.clone(),
            detail: format!("{} of {servers} members answer, `{}` leads", view.healthy(), leader.name),
        });
    }
    let t = opts.timeout;
    let long = t.max(Duration::from_secs(300));
    let mut i = 0;
    let mut run = |h: &HostSpec, cmd: n3x_remote::Command, steps: &mut Vec<Step>| -> Result<(), OperateError> {
        let s = Instant::now();
        progress(&format!("{}: {}", h.name, steps[i].what));
        let what = steps[i].what.clone();
        ask.remote
            .run_ok(&h.target(), &cmd)
            .map_err(|e| OperateError::Restore { step: format!("{what} on `{}`", h.name), detail: e.to_string() })?;
        steps[i].took_ms = Some(s.elapsed().as_millis() as u64);
        i += 1;
        Ok(())
    };
    let others: Vec<&HostSpec> = spec.servers().filter(|h| h.name != init.name).collect();
    for h in spec.servers() {
        run(h, commands::k3s_stop(t), &mut steps)?;
    }
    run(init, commands::upload(SNAPSHOT_NAME, t).stdin(l.contents.snapshot.to_vec()), &mut steps)?;
    run(init, commands::upload(TOKEN_NAME, t).stdin(l.contents.token.as_bytes().to_vec()), &mut steps)?;
    let snap = format!("{}/{SNAPSHOT_NAME}", commands::RESTORE_DIR);
    let token = format!("{}/{TOKEN_NAME}", commands::RESTORE_DIR);
    run(init, commands::cluster_reset(&snap, &token, long), &mut steps)?;
    for h in &others {
        run(h, commands::wipe_db(t), &mut steps)?;
    }
    // A start's step lasts until its member has joined.
    let mut start = |h: &HostSpec, steps: &mut Vec<Step>| -> Result<(), OperateError> {
        let s = Instant::now();
        run(h, commands::k3s_start(long), steps)?;
        wait_member(ask, h, opts.start_timeout).map_err(|detail| OperateError::Restore {
            step: format!("waiting for the etcd member of `{}` ({} s)", h.name, opts.start_timeout.as_secs()),
            detail,
        })?;
        if let Some(step) = steps.iter_mut().rev().find(|st| st.took_ms.is_some()) {
            step.took_ms = Some(s.elapsed().as_millis() as u64);
        }
        Ok(())
    };
    start(init, &mut steps)?;
    for h in &others {
        start(h, &mut steps)?;
    }
    run(init, commands::restore_cleanup(t), &mut steps)?;
    let view = ClusterView::ask(ask, spec);
    Ok(Restored {
        path: l.path,
        manifest: l.manifest,
        steps,
        ran: true,
        revision: view.leader().and_then(|h| view.status_of(&h.name)).map(|s| s.revision),
        members: view.healthy(),
        took_ms: t0.elapsed().as_millis() as u64,
    })
}

/// Waits until `h`'s member answers with a leader and is a voting member of the list;
/// else the last thing seen.
pub(crate) fn wait_member(ask: Ask<'_>, h: &HostSpec, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let cmds = [
        commands::etcd_inline(n3x_etcd::STATUS, &n3x_etcd::empty_body(), ask.timeout),
        commands::etcd_inline(n3x_etcd::MEMBER_LIST, &n3x_etcd::empty_body(), ask.timeout),
    ];
    let parse = |outs: Vec<n3x_remote::Output>| -> Result<(n3x_etcd::Status, Vec<n3x_etcd::Member>), String> {
        let s = n3x_etcd::parse_status(n3x_remote::answer(&outs, 0)?).map_err(|e| e.0)?;
        Ok((s, n3x_etcd::parse_members(n3x_remote::answer(&outs, 1)?).map_err(|e| e.0)?))
    };
    loop {
        let answer = ask.remote.run_all(&h.target(), &cmds).map_err(|e| e.to_string()).and_then(parse);
        let last = match answer {
            Ok((s, ms)) if s.leader != 0 && ms.iter().any(|m| is_member_of(m, h) && !m.is_learner) => return Ok(()),
            Ok((s, _)) => format!("member {:x} has no leader or is not listed yet", s.member_id),
            Err(e) => e,
        };
        if Instant::now() > deadline {
            return Err(last);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use n3x_deploy::testing::{healthy, reference};
    use n3x_remote::fake::{self, Fake};
    use sha2::Digest;

    use super::*;

    const TOKEN: &str = "K10deadbeef::server:s3cret";

    fn snapshot_bytes() -> Vec<u8> {
        let mut v = vec![5u8; 4096];
        let sum = sha2::Sha256::digest(&v);
        v.extend_from_slice(&sum);
        v
    }

    fn key() -> (Identities, String) {
        let (secret, public) = n3x_secrets::keys::generate_age_identity("test");
        (Identities::parse(&secret).unwrap(), public)
    }

    /// A healthy reference cluster whose servers answer the snapshot commands.
    fn cluster() -> Fake {
        let f = healthy();
        let b64 = base64::engine::general_purpose::STANDARD.encode(snapshot_bytes());
        f.on(move |_, argv| match argv[0].as_str() {
            "ls" => Some(fake::ok("n3x-1795791447-n100-1-1795791448\netcd-snapshot-n100-1-1\n")),
            "base64" => Some(fake::ok(&b64)),
            "cat" if argv[1] == commands::TOKEN_FILE => Some(fake::ok(&format!("{TOKEN}\n"))),
            "k3s" if argv[1] == "--version" => Some(fake::ok("k3s version v1.31.4+k3s1 (abc)\n")),
            _ => None,
        });
        f
    }

    /// A healthy cluster, a key, and a backup taken from the cluster with it.
    fn fixture() -> (tempfile::TempDir, Identities, Fake, Taken) {
        let d = tempfile::tempdir().unwrap();
        let (ids, public) = key();
        let f = cluster();
        let t = take(&f, d.path(), &public);
        (d, ids, f, t)
    }

    fn ropts(force: bool, plan_only: bool) -> RestoreOptions {
        RestoreOptions { force, plan_only, timeout: Duration::from_secs(5), start_timeout: Duration::from_secs(1) }
    }

    fn take(f: &Fake, dir: &Path, to: &str) -> Taken {
        let opts = SnapshotOptions {
            dir: dir.to_path_buf(),
            recipients: vec![to.to_owned()],
            from: None,
            timeout: Duration::from_secs(5),
            now_unix: 1_795_791_447,
        };
        snapshot(Ask { remote: f, timeout: Duration::from_secs(1) }, &reference(), &opts, &mut |_| {}).unwrap()
    }

    #[test]
    fn a_snapshot_is_fetched_from_the_leader_encrypted_and_never_in_an_argv() {
        let (_d, ids, f, t) = fixture();
        assert_eq!(t.manifest.member, "n100-1");
        assert_eq!((t.manifest.revision, t.manifest.k3s_version.as_str()), (9, "v1.31.4+k3s1"));
        let l = load(&t.path, &ids).unwrap();
        assert_eq!(l.contents.token.as_str(), TOKEN);
        assert_eq!(l.contents.snapshot.as_slice(), &snapshot_bytes()[..]);
        let calls = f.calls();
        assert!(calls.iter().all(|(_, argv)| !argv.join(" ").contains("s3cret")));
        let on_leader: Vec<String> =
            calls.iter().filter(|(h, a)| h == "n100-1" && a[0] != "curl").map(|(_, a)| a.join(" ")).collect();
        assert_eq!(on_leader[0], "k3s etcd-snapshot save --name n3x-1795791447");
        assert!(
            on_leader
                .last()
                .unwrap()
                .starts_with("base64 -w0 /var/lib/rancher/k3s/server/db/snapshots/n3x-1795791447-n100-1-"),
            "{on_leader:#?}"
        );
        let text = std::fs::read(&t.path).unwrap();
        assert!(!text.windows(6).any(|w| w == b"s3cret"));
    }

    #[test]
    fn restore_refuses_another_cluster_and_a_healthy_one_and_plans_without_touching() {
        let (_d, ids, f, t) = fixture();
        let ask = Ask { remote: &f, timeout: Duration::from_secs(1) };
        let opts = ropts;
        let mut other = reference();
        other.name = "elsewhere".into();
        let before = f.calls().len();
        let e = restore(ask, &other, &t.path, &ids, &opts(true, false), &mut |_| {}).err().unwrap();
        assert!(matches!(e, OperateError::OtherCluster { .. }), "{e}");
        assert_eq!(e.kind(), crate::Kind::Refused);
        let e = restore(ask, &reference(), &t.path, &ids, &opts(false, false), &mut |_| {}).err().unwrap();
        assert!(matches!(e, OperateError::Healthy { .. }), "{e}");
        // Refused after reading only etcd's status: no write command was sent.
        assert!(f.calls()[before..].iter().all(|(_, a)| a[0] == "curl"));
        // One member down, quorum kept: still refused.
        f.on(|t, a| (t.host == "n100-3" && a[0] == "curl").then(|| fake::exit(7, "curl: (7) Failed to connect")));
        let e = restore(ask, &reference(), &t.path, &ids, &opts(false, false), &mut |_| {}).err().unwrap();
        assert!(e.to_string().contains("has quorum (2 of 3 members answer"), "{e}");
        let mid = f.calls().len();
        let p = restore(ask, &reference(), &t.path, &ids, &opts(false, true), &mut |_| {}).unwrap();
        assert!(!p.ran);
        assert_eq!(f.calls().len(), mid, "--plan sends nothing");
        let order: Vec<String> = p.steps.iter().map(|s| format!("{} {}", s.host, s.command)).collect();
        assert_eq!(order.first().unwrap(), "n100-1 systemctl stop k3s");
        assert!(order.iter().any(|s| s.starts_with("n100-1 k3s server --cluster-reset")));
        assert_eq!(order.last().unwrap(), "n100-1 rm -rf /var/lib/n3x/restore");
    }

    #[test]
    fn a_forced_restore_runs_k3s_procedure_in_order_with_the_token_on_stdin() {
        let (_d, ids, f, t) = fixture();
        let before = f.calls().len();
        let ask = Ask { remote: &f, timeout: Duration::from_secs(1) };
        let r = restore(ask, &reference(), &t.path, &ids, &ropts(true, false), &mut |_| {}).unwrap();
        assert!(r.ran && r.steps.iter().all(|s| s.took_ms.is_some()));
        assert_eq!(r.members, 3);
        let writes: Vec<String> = f.calls()[before..]
            .iter()
            .filter(|(_, a)| a[0] != "curl")
            .map(|(h, a)| format!("{h}: {}", a.join(" ")))
            .collect();
        assert!(writes.iter().all(|w| !w.contains("s3cret")));
        let pos = |needle: &str| {
            writes.iter().position(|w| w.contains(needle)).unwrap_or_else(|| panic!("{needle}: {writes:#?}"))
        };
        assert!(pos("n100-3: systemctl stop k3s") < pos("n100-1: sh -c umask 077"));
        assert!(pos("--cluster-reset") < pos("n100-2: rm -rf /var/lib/rancher/k3s/server/db"));
        assert!(pos("n100-1: systemctl start k3s") < pos("n100-2: systemctl start k3s"));
        assert!(pos("n100-2: systemctl start k3s") < pos("n100-3: systemctl start k3s"));
        assert!(writes.last().unwrap().ends_with("rm -rf /var/lib/n3x/restore"));
    }

    #[test]
    fn a_host_lost_mid_restore_names_the_step_and_says_rerun() {
        let (_d, ids, f, t) = fixture();
        f.on(|h, a| {
            (h.host == "n100-3" && a[0] == "rm").then(|| fake::exit(1, "rm: cannot remove: Read-only file system"))
        });
        let ask = Ask { remote: &f, timeout: Duration::from_secs(1) };
        let e = restore(ask, &reference(), &t.path, &ids, &ropts(true, false), &mut |_| {}).err().unwrap();
        assert_eq!(e.kind(), crate::Kind::Interrupted);
        assert!(e.to_string().contains("wipe its etcd data on `n100-3`"), "{e}");
    }

    #[test]
    fn the_newest_file_of_the_named_snapshot_is_chosen() {
        let ls = "n3x-20-n100-1-1795791500\nn3x-2-n100-1-1795791400\nn3x-1-n100-1-1795791300\netcd-snapshot-n100-1-1\n";
        assert_eq!(newest_named(ls, "n3x-2").as_deref(), Some("n3x-2-n100-1-1795791400"));
        assert_eq!(newest_named(ls, "n3x-3"), None);
        assert_eq!(newest_named("", "n3x-1"), None);
    }
}
