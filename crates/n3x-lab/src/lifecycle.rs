//! Bringing a lab up (by starting its supervisor) and tearing it down. Teardown is
//! idempotent, works after a crash at any point, collects every error and keeps going,
//! and removes only what the lab record lists or what carries the lab's mark.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::LabError;
use crate::plan::{ALIAS_PREFIX, LabPlan};
use crate::state::{LabLock, ProcessRecord, STATE_FILE, StateStore, SysctlRecord};
use crate::supervisor::{Event, LabOptions, OPTIONS_FILE};
use crate::system::System;

/// How `up` ended.
#[derive(Debug)]
pub struct UpReport {
    pub bringup_ms: f64,
    pub quorum_ms: f64,
    pub wall_ms: f64,
}

/// A failed `up`: why, and how removing what it had built went.
#[derive(Debug)]
pub struct UpFailed {
    pub error: LabError,
    pub teardown: DownReport,
}

/// Starts the supervisor of a new lab and follows its progress until the lab is ready.
/// `exe` is the `n3x` binary (the supervisor is `n3x lab supervise --dir DIR`).
/// `on_step` sees each progress message. On failure, everything built is torn down, and
/// that teardown's own errors are returned with the cause.
pub fn up(
    sys: &dyn System,
    root: &Path,
    exe: &Path,
    opts: &LabOptions,
    inventory_label: &str,
    on_step: &mut dyn FnMut(&str),
) -> Result<UpReport, Box<UpFailed>> {
    let plan = &opts.plan;
    // Refusals before anything is started leave nothing to tear down.
    let refuse = |error| Box::new(UpFailed { error, teardown: DownReport::default() });
    let started = Instant::now();
    let lock = LabLock::acquire(&root.join(&plan.cluster), false).map_err(refuse)?;
    let mut store = StateStore::open(root, &plan.cluster).map_err(refuse)?;
    if store.exists() {
        let alive = store.state.supervisor.as_ref().is_some_and(|s| sys.alive(s));
        return Err(refuse(if alive {
            LabError::AlreadyUp { cluster: plan.cluster.clone() }
        } else {
            LabError::Unfinished { cluster: plan.cluster.clone(), dir: store.dir.clone() }
        }));
    }
    let result = start_and_follow(&mut store, lock, exe, opts, inventory_label, started, on_step);
    result.map_err(|error| {
        // Nothing lost, nothing left: a failed `up` removes what it built.
        Box::new(UpFailed { error, teardown: down(sys, root, &plan.cluster, Some(plan)) })
    })
}

fn start_and_follow(
    store: &mut StateStore,
    lock: LabLock,
    exe: &Path,
    opts: &LabOptions,
    inventory_label: &str,
    started: Instant,
    on_step: &mut dyn FnMut(&str),
) -> Result<UpReport, LabError> {
    store.state.inventory = inventory_label.to_owned();
    store.save()?;
    let opts_bytes = serde_json::to_vec_pretty(opts)
        .map_err(|e| LabError::Encode { what: "the lab options".into(), message: e.to_string() })?;
    n3x_fs::write(&store.dir.join(OPTIONS_FILE), &opts_bytes, None)
        .map_err(|e| LabError::io("write the lab options", e))?;

    let log_path = store.dir.join("supervisor.log");
    let log = std::fs::File::create(&log_path).map_err(|e| LabError::io("create supervisor.log", e))?;
    let mut child = Command::new(exe)
        .args(["lab", "supervise", "--dir"])
        .arg(&store.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        // Its own process group: a Ctrl-C meant for `up` does not take the lab down.
        .process_group(0)
        .spawn()
        .map_err(|e| LabError::io(format!("start the supervisor ({})", exe.display()), e))?;
    store.state.supervisor = ProcessRecord::of(child.id() as i32, "supervisor");
    store.save()?;
    // The supervisor takes the lock itself to build.
    drop(lock);

    let mut outcome = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str::<Event>(&line) {
                Ok(Event::Step { message }) => on_step(&message),
                Ok(Event::Ready { bringup_ms, quorum_ms, .. }) => {
                    outcome =
                        Some(Ok(UpReport { bringup_ms, quorum_ms, wall_ms: started.elapsed().as_secs_f64() * 1000.0 }));
                    break;
                }
                Ok(Event::Failed { message, help, kind }) => {
                    outcome = Some(Err(LabError::Supervisor { message, help, kind: kind.into() }));
                    break;
                }
                Err(_) => on_step(&line),
            }
        }
    }
    match outcome {
        Some(Ok(r)) => Ok(r),
        other => {
            let _ = child.kill();
            let _ = child.wait();
            Err(match other {
                Some(Err(e)) => e,
                _ => LabError::SupervisorExited { tail: log_tail(&log_path, 15), log: log_path },
            })
        }
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What `down` removed, and what went wrong on the way.
#[derive(Debug, Default)]
pub struct DownReport {
    pub killed: Vec<String>,
    pub namespaces: Vec<String>,
    /// Sysctls put back to their value before the lab: (key, value).
    pub restored: Vec<(String, u64)>,
    pub errors: Vec<LabError>,
    pub found_anything: bool,
}

impl DownReport {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Tears down the lab of `cluster`. `plan`, when known, adds the names the inventory
/// implies, so a lab whose record was lost is still found; a namespace is removed only if
/// it is in the record or holds a link carrying this lab's alias.
///
/// Order: processes (the supervisor first, so it restarts nothing), then namespaces, then
/// sysctls, then the record. Every error is collected and the rest still done; when
/// something could not be removed, the record stays so that a second `down` can finish.
pub fn down(sys: &dyn System, root: &Path, cluster: &str, plan: Option<&LabPlan>) -> DownReport {
    let mut r = DownReport::default();
    let dir = root.join(cluster);
    let _lock = match LabLock::acquire(&dir, true) {
        Ok(l) => Some(l),
        Err(e) => {
            r.errors.push(e);
            None
        }
    };
    let store = match StateStore::open(root, cluster) {
        Ok(s) => s,
        Err(e) => {
            r.errors.push(e);
            StateStore { dir: dir.clone(), state: Default::default() }
        }
    };
    r.found_anything = store.exists();

    // 1. Processes.
    let mut recs: Vec<ProcessRecord> = store.state.supervisor.iter().cloned().collect();
    recs.extend(store.state.processes.iter().cloned());
    for rec in &recs {
        if sys.kill(rec) {
            r.killed.push(format!("{} (pid {})", rec.what, rec.pid));
        }
    }
    let survivors = wait_gone(sys, &recs, Duration::from_secs(5));
    if !survivors.is_empty() {
        r.errors.push(LabError::Survivors { what: survivors });
    }

    // 2. Namespaces: the record's, and any with the lab's name prefix and its mark.
    let mut namespaces: Vec<String> = store.state.namespaces.clone();
    let prefix = format!("n3x-{cluster}");
    let alias = format!("{ALIAS_PREFIX}{cluster}");
    for ns in sys.list_netns() {
        let named = ns == prefix || ns.starts_with(&format!("{prefix}-"));
        let planned = plan.is_some_and(|p| p.fabric_ns == ns || p.hosts.iter().any(|h| h.ns == ns));
        if (named || planned) && !namespaces.contains(&ns) && sys.link_aliases(&ns).is_ok_and(|a| a.contains(&alias)) {
            namespaces.push(ns);
        }
    }
    r.found_anything |= !namespaces.is_empty();
    let existing: Vec<String> = namespaces.into_iter().filter(|n| sys.netns_exists(n)).collect();
    // Whatever still runs inside them (a forgotten `lab exec`, a member whose record a
    // crash cut short) would keep them alive.
    let inside: Vec<ProcessRecord> =
        sys.processes_in(&existing).into_iter().filter(|p| !recs.iter().any(|r| r.pid == p.pid)).collect();
    for rec in &inside {
        if sys.kill(rec) {
            r.killed.push(format!("{} (pid {})", rec.what, rec.pid));
        }
    }
    let survivors = wait_gone(sys, &inside, Duration::from_secs(5));
    if !survivors.is_empty() {
        r.errors.push(LabError::Survivors { what: survivors });
    }
    for ns in existing {
        match sys.delete_netns(&ns) {
            Ok(()) => r.namespaces.push(ns),
            Err(e) => r.errors.push(e),
        }
    }

    // 3. Sysctls: back to what they were, unless another lab is up and may need them.
    if !store.state.sysctls.is_empty() {
        restore_sysctls(sys, root, cluster, &store.state.sysctls, &mut r);
    }

    // 4. The record, last: until here it is what lets a retry finish the job.
    if dir.exists() && r.errors.is_empty() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            r.errors.push(LabError::io(format!("remove {}", dir.display()), e));
        }
    }
    r
}

/// Waits until every process in `recs` is gone; returns those still alive after `timeout`.
fn wait_gone(sys: &dyn System, recs: &[ProcessRecord], timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let alive: Vec<String> =
            recs.iter().filter(|r| sys.alive(r)).map(|r| format!("{} (pid {})", r.what, r.pid)).collect();
        if alive.is_empty() || Instant::now() > deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Puts back the sysctls this lab raised. When another lab is still up, the record moves
/// to it instead, so the last lab to go down restores them.
fn restore_sysctls(sys: &dyn System, root: &Path, cluster: &str, recs: &[SysctlRecord], r: &mut DownReport) {
    let heir = labs(root).into_iter().find(|c| c != cluster);
    if let Some(heir) = heir {
        let handed = LabLock::acquire(&root.join(&heir), true).and_then(|_lock| {
            let mut other = StateStore::open(root, &heir)?;
            for rec in recs {
                if !other.state.sysctls.iter().any(|x| x.key == rec.key) {
                    other.state.sysctls.push(rec.clone());
                }
            }
            other.save()
        });
        if let Err(e) = handed {
            r.errors.push(e);
        }
        return;
    }
    for rec in recs {
        // Only if nobody changed it since: never overwrite another program's tuning.
        if sys.read_sysctl(&rec.key) == Some(rec.set) {
            match sys.write_sysctl(&rec.key, rec.original) {
                Ok(()) => r.restored.push((rec.key.clone(), rec.original)),
                Err(e) => r.errors.push(e),
            }
        }
    }
}

/// The plan a lab was built with, as its `up` recorded it (None if it never got that far).
pub fn recorded_plan(root: &Path, cluster: &str) -> Option<LabPlan> {
    LabOptions::read(&root.join(cluster)).ok().map(|o| o.plan)
}

/// The clusters that have a lab record under `root` (up, or crashed and not yet removed).
pub fn labs(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.join(STATE_FILE).exists())
                .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::system::fake::{Call, Fail, Fake};

    /// A lab as a crash leaves it: a record listing a supervisor, an etcd, and namespaces.
    fn crashed_lab(sys: &Fake, root: &Path, cluster: &str) -> (ProcessRecord, ProcessRecord) {
        let mut st = StateStore::open(root, cluster).unwrap();
        let sup = sys.add_process(None);
        let etcd = sys.add_process(Some(&format!("n3x-{cluster}-s1")));
        st.state.supervisor = Some(sup.clone());
        st.state.processes.push(etcd.clone());
        for ns in [format!("n3x-{cluster}"), format!("n3x-{cluster}-s1"), format!("n3x-{cluster}-a1")] {
            st.will_create_namespaces(&[&ns]).unwrap();
            sys.create_netns(&ns).unwrap();
        }
        (sup, etcd)
    }

    #[test]
    fn teardown_kills_first_then_removes_namespaces_then_the_record() {
        let root = tempfile::tempdir().unwrap();
        let sys = Fake::new();
        let (sup, etcd) = crashed_lab(&sys, root.path(), "c");
        let stray = sys.add_process(Some("n3x-c-a1"));
        let r = down(&sys, root.path(), "c", None);
        assert!(r.ok(), "{:?}", r.errors);
        assert!(r.found_anything);
        let calls = sys.calls();
        let kills: Vec<usize> =
            calls.iter().enumerate().filter(|(_, c)| matches!(c, Call::Kill(_))).map(|(i, _)| i).collect();
        let dels: Vec<usize> =
            calls.iter().enumerate().filter(|(_, c)| matches!(c, Call::DeleteNetns(_))).map(|(i, _)| i).collect();
        assert_eq!(calls[kills[0]], Call::Kill(sup.pid), "the supervisor goes first");
        assert_eq!(calls[kills[1]], Call::Kill(etcd.pid));
        assert!(kills.iter().all(|k| dels.iter().all(|d| k < d)), "every kill before any namespace goes: {calls:?}");
        assert!(!sys.is_alive(stray.pid), "a process left inside a namespace is killed too");
        assert_eq!(dels.len(), 3);
        assert!(sys.namespaces().is_empty());
        assert!(!root.path().join("c").exists(), "the record goes last");
        // Idempotent.
        let again = down(&sys, root.path(), "c", None);
        assert!(again.ok() && !again.found_anything);
    }

    #[test]
    fn teardown_collects_every_error_keeps_going_and_keeps_the_record() {
        let root = tempfile::tempdir().unwrap();
        let sys = Fake::new();
        let (_, etcd) = crashed_lab(&sys, root.path(), "c");
        sys.fail(Fail::Delete("n3x-c".into()));
        sys.fail(Fail::Unkillable(etcd.pid));
        let r = down(&sys, root.path(), "c", None);
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert!(matches!(r.errors[0], LabError::Survivors { .. }));
        assert!(r.errors[1].to_string().contains("n3x-c"));
        // The other namespaces still went.
        assert_eq!(sys.namespaces(), ["n3x-c"]);
        assert_eq!(r.namespaces.len(), 2);
        assert!(root.path().join("c").join(STATE_FILE).exists(), "kept for a retry");
        // Once the problems are gone, a second `down` finishes the job.
        sys.heal();
        sys.kill(&etcd);
        let again = down(&sys, root.path(), "c", None);
        assert!(again.ok(), "{:?}", again.errors);
        assert!(sys.namespaces().is_empty());
        assert!(!root.path().join("c").exists());
    }

    #[test]
    fn teardown_spares_what_is_not_the_labs() {
        let root = tempfile::tempdir().unwrap();
        let sys = Fake::new();
        crashed_lab(&sys, root.path(), "c");
        // Named like the lab but without its mark, and another lab's namespace.
        sys.add_foreign_netns("n3x-c-decoy", &[]);
        sys.add_foreign_netns("n3x-c2-a1", &["n3x-lab:c2"]);
        // Not in the record, but carrying the mark: found even after the record is lost.
        sys.add_foreign_netns("n3x-c-lost", &["n3x-lab:c"]);
        let r = down(&sys, root.path(), "c", None);
        assert!(r.ok(), "{:?}", r.errors);
        assert_eq!(sys.namespaces(), ["n3x-c-decoy", "n3x-c2-a1"]);
    }

    #[test]
    fn sysctls_are_restored_by_the_last_lab_down() {
        let root = tempfile::tempdir().unwrap();
        let sys = Fake::new();
        sys.set_sysctl("k", 8000);
        for c in ["a", "b"] {
            crashed_lab(&sys, root.path(), c);
        }
        let mut a = StateStore::open(root.path(), "a").unwrap();
        a.will_set_sysctl(SysctlRecord { key: "k".into(), original: 512, set: 8000 }).unwrap();
        // `a` goes first: `b` is up, so the record moves to it and the value stays.
        let r = down(&sys, root.path(), "a", None);
        assert!(r.ok() && r.restored.is_empty(), "{r:?}");
        assert_eq!(sys.sysctl("k"), Some(8000));
        let b = StateStore::open(root.path(), "b").unwrap();
        assert_eq!(b.state.sysctls.len(), 1);
        // The last one restores it.
        let r = down(&sys, root.path(), "b", None);
        assert_eq!(r.restored, [("k".to_string(), 512)]);
        assert_eq!(sys.sysctl("k"), Some(512));
    }
}
