//! Bringing a lab up (by starting its supervisor) and tearing it down. Teardown is
//! idempotent, works after a crash at any point, collects every error and keeps going,
//! and removes only what the lab record lists or what carries the lab's mark.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::LabError;
use crate::plan::{ALIAS_PREFIX, LabPlan};
use crate::state::{LabLock, ProcessRecord, StateStore};
use crate::supervisor::{Event, LabOptions, OPTIONS_FILE};
use crate::sys;

/// How `up` ended.
#[derive(Debug)]
pub struct UpReport {
    pub bringup_ms: f64,
    pub quorum_ms: f64,
    pub wall_ms: f64,
}

/// Starts the supervisor of a new lab and follows its progress until the lab is ready.
/// `exe` is the `n3x` binary (the supervisor is `n3x lab supervise --dir DIR`).
/// `on_step` sees each progress message. On failure, everything built is torn down.
pub fn up(
    root: &Path,
    exe: &Path,
    opts: &LabOptions,
    inventory_label: &str,
    on_step: &mut dyn FnMut(&str),
) -> Result<UpReport, LabError> {
    let started = Instant::now();
    let plan = &opts.plan;
    let lock = LabLock::acquire(&root.join(&plan.cluster), false)?;
    let mut store = StateStore::open(root, &plan.cluster)?;
    if store.exists() {
        let alive = store.state.supervisor.as_ref().is_some_and(ProcessRecord::is_alive);
        return Err(if alive {
            LabError::AlreadyUp { cluster: plan.cluster.clone() }
        } else {
            LabError::Lab(format!(
                "an earlier lab of `{}` did not finish (its record is in {}); run `n3x lab down` first",
                plan.cluster,
                store.dir.display()
            ))
        });
    }
    store.state.inventory = inventory_label.to_owned();
    store.save()?;
    let opts_bytes = serde_json::to_vec_pretty(opts).map_err(|e| LabError::Lab(e.to_string()))?;
    n3x_fs::write(&store.dir.join(OPTIONS_FILE), &opts_bytes, None)
        .map_err(|e| LabError::io("write the lab options", e))?;

    let log = std::fs::File::create(store.dir.join("supervisor.log"))
        .map_err(|e| LabError::io("create supervisor.log", e))?;
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

    let stdout = child.stdout.take().ok_or_else(|| LabError::Lab("the supervisor has no stdout".into()))?;
    let mut outcome = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<Event>(&line) {
            Ok(Event::Step { message }) => on_step(&message),
            Ok(Event::Ready { bringup_ms, quorum_ms, .. }) => {
                outcome =
                    Some(Ok(UpReport { bringup_ms, quorum_ms, wall_ms: started.elapsed().as_secs_f64() * 1000.0 }));
                break;
            }
            Ok(Event::Failed { message, help, environment }) => {
                outcome = Some(Err(LabError::Supervisor { message, help, environment }));
                break;
            }
            Err(_) => on_step(&line),
        }
    }
    match outcome {
        Some(Ok(r)) => Ok(r),
        other => {
            let _ = child.kill();
            let _ = child.wait();
            let tail = log_tail(&root.join(&plan.cluster).join("supervisor.log"), 15);
            let err = match other {
                Some(Err(e)) => e,
                _ => LabError::Lab(format!("the lab supervisor exited before the lab was ready{tail}")),
            };
            // Nothing lost, nothing left: a failed `up` removes what it built.
            let _ = down(root, &plan.cluster, Some(plan));
            Err(err)
        }
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    if all.is_empty() {
        return String::new();
    }
    format!("; last lines of {}:\n{}", path.display(), all[all.len().saturating_sub(lines)..].join("\n"))
}

/// What `down` removed, and what went wrong on the way.
#[derive(Debug, Default)]
pub struct DownReport {
    pub killed: Vec<String>,
    pub namespaces: Vec<String>,
    pub errors: Vec<LabError>,
    pub found_anything: bool,
}

/// Tears down the lab of `cluster`. `plan`, when known, adds the names the inventory
/// implies, so a lab whose record was lost is still found; a namespace is removed only if
/// it is in the record or holds a link carrying this lab's alias.
pub fn down(root: &Path, cluster: &str, plan: Option<&LabPlan>) -> DownReport {
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

    // 1. Processes: the supervisor first, so it restarts nothing, then every service.
    let mut recs: Vec<ProcessRecord> = store.state.supervisor.iter().cloned().collect();
    recs.extend(store.state.processes.iter().cloned());
    for rec in &recs {
        if sys::kill_recorded(rec) {
            r.killed.push(format!("{} (pid {})", rec.what, rec.pid));
        }
    }
    if !sys::wait_gone(&recs, Duration::from_secs(5)) {
        r.errors.push(LabError::Lab("some lab processes did not exit after SIGKILL".into()));
    }

    // 2. Namespaces: the record's, and any with the lab's name prefix and its mark.
    let mut namespaces: Vec<String> = store.state.namespaces.clone();
    let prefix = format!("n3x-{cluster}");
    let alias = format!("{ALIAS_PREFIX}{cluster}");
    for ns in sys::list_netns() {
        let named = ns == prefix || ns.starts_with(&format!("{prefix}-"));
        let planned = plan.is_some_and(|p| p.fabric_ns == ns || p.hosts.iter().any(|h| h.ns == ns));
        if (named || planned) && !namespaces.contains(&ns) && carries_alias(&ns, &alias) {
            namespaces.push(ns);
        }
    }
    r.found_anything |= !namespaces.is_empty();
    // Whatever still runs inside them (a forgotten `lab exec`, a member whose record a
    // crash cut short) would keep them alive.
    for ns in &namespaces {
        if let Ok(pids) = sys::run("ip", &["netns", "pids", ns], None) {
            for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                if let Some(rec) = ProcessRecord::of(pid, format!("process in {ns}")) {
                    sys::kill_recorded(&rec);
                    r.killed.push(format!("{} (pid {pid})", rec.what));
                }
            }
        }
    }
    let existing: Vec<&String> = namespaces.iter().filter(|n| sys::netns_exists(n)).collect();
    if !existing.is_empty() {
        let lines: Vec<String> = existing.iter().map(|n| format!("netns del {n}")).collect();
        if let Err(e) = sys::ip_batch(None, &lines) {
            // One failure must not stop the rest: retry one by one.
            r.errors.push(e);
            for n in &existing {
                if sys::netns_exists(n) {
                    if let Err(e) = sys::run("ip", &["netns", "del", n], None) {
                        r.errors.push(e);
                    }
                }
            }
        }
        r.namespaces.extend(existing.iter().map(|n| n.to_string()));
    }

    // 3. The record itself, last: until here it is what lets a retry finish the job.
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            r.errors.push(LabError::io(format!("remove {}", dir.display()), e));
        }
    }
    r
}

/// Whether namespace `ns` holds a link whose alias marks it as this lab's.
fn carries_alias(ns: &str, alias: &str) -> bool {
    sys::run("ip", &["-n", ns, "-o", "link", "show"], None).is_ok_and(|out| {
        // Exact token match: `n3x-lab:edge` must not claim `n3x-lab:edge2`'s links.
        out.split(|c: char| c.is_whitespace() || c == '\\')
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w[0] == "alias" && w[1] == alias)
    })
}

/// The state directory of every lab that has one.
pub fn labs(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join(crate::state::STATE_FILE).exists()).collect()
        })
        .unwrap_or_default()
}
