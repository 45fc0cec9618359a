//! Ownership: every object a lab creates is written to `/run/n3x/<cluster>/state.json`
//! BEFORE it is created, atomically (temp file, fsync, rename). Teardown removes what the
//! record lists and nothing else; processes are recorded with their start time so a
//! reused pid is never killed.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::plan::FabricKind;

pub const STATE_FILE: &str = "state.json";
pub const LOCK_FILE: &str = "lock";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub cluster: String,
    pub fabric: Option<FabricKind>,
    /// Network namespaces, in creation order.
    pub namespaces: Vec<String>,
    /// The supervisor, once it runs.
    pub supervisor: Option<ProcessRecord>,
    /// Every service process (etcd members), including ones already exited.
    pub processes: Vec<ProcessRecord>,
    /// The inventory the lab was built from, as given (a path, or the embedded reference).
    pub inventory: String,
    /// Sysctls of the machine the lab changed, with their values before: `down` puts them
    /// back when no other lab is up.
    #[serde(default)]
    pub sysctls: Vec<SysctlRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlRecord {
    /// The path under /proc/sys, e.g. `net/ipv4/neigh/default/gc_thresh3`.
    pub key: String,
    pub original: u64,
    pub set: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat: with the pid, it names one process for all time.
    pub start_time: u64,
    pub what: String,
}

impl ProcessRecord {
    pub fn of(pid: i32, what: impl Into<String>) -> Option<Self> {
        Some(ProcessRecord { pid, start_time: process_start_time(pid)?, what: what.into() })
    }

    /// True when `pid` still names the process recorded (not a later one reusing the pid).
    pub fn is_alive(&self) -> bool {
        process_start_time(self.pid) == Some(self.start_time)
    }
}

/// The start time of a process in clock ticks since boot, or None if it does not exist.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: skip past it.
    let rest = &stat[stat.rfind(')')? + 2..];
    // `rest` starts at field 3; start time is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The state of one lab: its directory and the record in it.
pub struct StateStore {
    pub dir: PathBuf,
    pub state: State,
}

impl StateStore {
    /// Opens (or starts) the record of `cluster`'s lab under `root`.
    pub fn open(root: &Path, cluster: &str) -> Result<Self, LabError> {
        let dir = root.join(cluster);
        let state = match fs::read(dir.join(STATE_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LabError::State {
                path: dir.join(STATE_FILE),
                message: format!("unreadable lab record: {e}"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State { cluster: cluster.into(), ..State::default() },
            Err(e) => return Err(LabError::io(format!("read {}", dir.join(STATE_FILE).display()), e)),
        };
        Ok(StateStore { dir, state })
    }

    pub fn exists(&self) -> bool {
        self.dir.join(STATE_FILE).exists()
    }

    pub fn save(&self) -> Result<(), LabError> {
        fs::create_dir_all(&self.dir).map_err(|e| LabError::io(format!("create {}", self.dir.display()), e))?;
        let bytes = serde_json::to_vec_pretty(&self.state)
            .map_err(|e| LabError::State { path: self.dir.join(STATE_FILE), message: e.to_string() })?;
        n3x_fs::write(&self.dir.join(STATE_FILE), &bytes, None)
            .map_err(|e| LabError::io(format!("write {}", self.dir.join(STATE_FILE).display()), e))
    }

    /// Records namespaces before they are created (one write for all of them).
    pub fn will_create_namespaces(&mut self, names: &[&str]) -> Result<(), LabError> {
        let before = self.state.namespaces.len();
        for ns in names {
            if !self.state.namespaces.iter().any(|n| n == ns) {
                self.state.namespaces.push((*ns).to_owned());
            }
        }
        if self.state.namespaces.len() != before { self.save() } else { Ok(()) }
    }

    /// Records a sysctl before it is changed.
    pub fn will_set_sysctl(&mut self, rec: SysctlRecord) -> Result<(), LabError> {
        if !self.state.sysctls.iter().any(|r| r.key == rec.key) {
            self.state.sysctls.push(rec);
        }
        self.save()
    }

    pub fn record_process(&mut self, rec: ProcessRecord) -> Result<(), LabError> {
        self.state.processes.push(rec);
        self.save()
    }
}

/// Locks a mutex even if a thread panicked while holding it: the lab's shared state stays
/// usable (each update is a whole value), and a panic is reported where it happened.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An exclusive lock on a lab's directory: `up`, `down` and `run` of one cluster never
/// interleave. Released when dropped (or when the process dies).
pub struct LabLock {
    _file: File,
}

impl LabLock {
    pub fn acquire(dir: &Path, wait: bool) -> Result<Self, LabError> {
        fs::create_dir_all(dir).map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LabError::io(format!("open {}", path.display()), e))?;
        let mut flags = nix::fcntl::FlockArg::LockExclusive;
        if !wait {
            flags = nix::fcntl::FlockArg::LockExclusiveNonblock;
        }
        #[allow(deprecated)] // `Flock` owns the file; we keep the File and lock its fd.
        nix::fcntl::flock(file.as_raw_fd(), flags).map_err(|e| {
            if e == nix::errno::Errno::EWOULDBLOCK {
                let cluster = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                LabError::Busy { cluster, dir: dir.to_path_buf() }
            } else {
                LabError::io(format!("lock {}", path.display()), e.into())
            }
        })?;
        Ok(LabLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn start_time_identifies_this_process() {
        let me = std::process::id() as i32;
        let rec = ProcessRecord::of(me, "test").unwrap();
        assert!(rec.is_alive());
        let reused = ProcessRecord { start_time: rec.start_time + 1, ..rec };
        assert!(!reused.is_alive(), "same pid, other start time: not the recorded process");
    }

    #[test]
    fn state_round_trips_atomically() {
        let root = std::env::temp_dir().join(format!("n3x-state-test-{}", std::process::id()));
        let mut s = StateStore::open(&root, "c1").unwrap();
        assert!(!s.exists());
        s.will_create_namespaces(&["n3x-c1-a"]).unwrap();
        s.will_create_namespaces(&["n3x-c1-a"]).unwrap();
        let again = StateStore::open(&root, "c1").unwrap();
        assert_eq!(again.state.namespaces, ["n3x-c1-a"]);
        let leftovers: Vec<_> = fs::read_dir(root.join("c1")).unwrap().filter_map(|e| e.ok()).collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
        fs::remove_dir_all(root).unwrap();
    }
}
