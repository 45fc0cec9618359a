//! The deploy journal: every step of a rollout recorded atomically (write, fsync, rename)
//! before the next one starts, so a deployer that crashes or is killed leaves a file from
//! which `--resume` continues and which says what happened to each host.
//!
//! Test-only fault injection: `N3X_DEPLOY_FAULT_STEP=N` sends the deployer SIGKILL right
//! after the N-th write of the journal, as a crash at that point would.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::DeployError;
use crate::plan::Plan;

pub const FAULT_ENV: &str = "N3X_DEPLOY_FAULT_STEP";
const VERSION: u32 = 1;

/// Where a host is in the rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum HostState {
    /// Nothing done yet.
    Planned,
    /// Its new generation is on the host (`nix copy` done).
    Pushed,
    /// The rollback guard runs; the host still runs `previous`.
    Guarded { previous: String },
    /// Switched to the target; gates not passed yet. The guard puts it back on
    /// `previous` unless confirmed.
    Switched { previous: String },
    /// On the target, gates passed, guard stopped.
    Confirmed,
    /// Back on `previous` after failing its gates (or by its guard).
    RolledBack { previous: String, reasons: Vec<String>, healthy: bool },
    /// The target is the boot default (`--goal boot`).
    BootDefault,
    /// Already on the target.
    Unchanged,
}

impl HostState {
    pub fn label(&self) -> &'static str {
        match self {
            HostState::Planned => "planned",
            HostState::Pushed => "pushed",
            HostState::Guarded { .. } => "guarded",
            HostState::Switched { .. } => "switched",
            HostState::Confirmed => "confirmed",
            HostState::RolledBack { .. } => "rolled back",
            HostState::BootDefault => "boot default",
            HostState::Unchanged => "unchanged",
        }
    }

    /// Settled: a resume leaves it alone.
    pub fn settled(&self) -> bool {
        matches!(
            self,
            HostState::Confirmed | HostState::Unchanged | HostState::BootDefault | HostState::RolledBack { .. }
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalHost {
    pub host: String,
    pub state: HostState,
    /// Milliseconds since the deploy started, at the last change.
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finish {
    /// Every host settled as planned.
    Done,
    /// A host failed its gates and went back; the rollout stopped.
    RolledBack,
    /// Dropped with `--unlock`.
    Abandoned,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    /// Names this deploy (the lock on the cluster and the guard units carry it).
    pub id: String,
    pub cluster: String,
    /// Seconds since the epoch.
    pub started: u64,
    pub plan: Plan,
    pub confirm_timeout_s: u64,
    pub hosts: Vec<JournalHost>,
    pub finished: Option<Finish>,
}

impl Record {
    pub fn host(&self, name: &str) -> Option<&HostState> {
        self.hosts.iter().find(|h| h.host == name).map(|h| &h.state)
    }

    /// The guard unit of this deploy on every host.
    pub fn guard_unit(&self) -> String {
        guard_unit(&self.id)
    }
}

#[cfg(test)]
impl Record {
    /// A record with no host, for tests.
    pub(crate) fn empty(id: &str, confirm_timeout_s: u64) -> Record {
        use crate::plan::{Goal, Strategy};
        Record {
            version: VERSION,
            id: id.into(),
            cluster: "n3x".into(),
            started: 1,
            plan: Plan {
                cluster: "n3x".into(),
                goal: Goal::Switch,
                strategy: Strategy::Rolling,
                hosts: vec![],
                transfer: None,
                k3s_minor: None,
            },
            confirm_timeout_s,
            hosts: vec![],
            finished: None,
        }
    }
}

pub fn guard_unit(id: &str) -> String {
    format!("n3x-guard-{id}")
}

/// A journal file and the writes made to it.
pub struct Journal {
    pub path: PathBuf,
    pub record: Record,
    started: std::time::Instant,
    writes: u32,
    fault_at: Option<u32>,
}

fn journal_err(path: &Path, detail: impl Into<String>) -> DeployError {
    DeployError::Journal { path: path.to_owned(), detail: detail.into() }
}

/// The journal at `path`, if there is one.
pub fn load(path: &Path) -> Result<Option<Record>, DeployError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(journal_err(path, e.to_string())),
    };
    let r: Record = serde_json::from_slice(&bytes).map_err(|e| journal_err(path, format!("unreadable: {e}")))?;
    if r.version != VERSION {
        return Err(journal_err(path, format!("version {} is not {VERSION}", r.version)));
    }
    Ok(Some(r))
}

impl Journal {
    /// A new journal for a rollout (nothing is written until [`Journal::save`]).
    pub fn create(path: &Path, record: Record) -> Journal {
        Journal::resume(path, record)
    }

    /// Continues `record`.
    pub fn resume(path: &Path, record: Record) -> Journal {
        Journal {
            path: path.to_owned(),
            record,
            started: std::time::Instant::now(),
            writes: 0,
            fault_at: std::env::var(FAULT_ENV).ok().and_then(|v| v.parse().ok()),
        }
    }

    /// Writes the record atomically. Each write is a point a crash may stop at.
    pub fn save(&mut self) -> Result<(), DeployError> {
        let bytes = serde_json::to_vec_pretty(&self.record).map_err(|e| journal_err(&self.path, e.to_string()))?;
        if let Some(dir) = self.path.parent() {
            n3x_fs::create_dir_all(dir, 0o700).map_err(|e| journal_err(&self.path, e.to_string()))?;
        }
        n3x_fs::write(&self.path, &bytes, Some(0o600)).map_err(|e| journal_err(&self.path, e.to_string()))?;
        self.writes += 1;
        if self.fault_at == Some(self.writes) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        Ok(())
    }

    /// Records `host`'s new state.
    pub fn set(&mut self, host: &str, state: HostState) -> Result<(), DeployError> {
        let at_ms = self.started.elapsed().as_millis() as u64;
        match self.record.hosts.iter_mut().find(|h| h.host == host) {
            Some(h) => {
                h.state = state;
                h.at_ms = at_ms;
            }
            None => self.record.hosts.push(JournalHost { host: host.to_owned(), state, at_ms }),
        }
        self.save()
    }

    pub fn state(&self, host: &str) -> HostState {
        self.record.host(host).cloned().unwrap_or(HostState::Planned)
    }

    pub fn finish(&mut self, how: Finish) -> Result<(), DeployError> {
        self.record.finished = Some(how);
        self.save()
    }
}

/// A cluster's state directory on the operator's machine: `$XDG_STATE_HOME/n3x/<cluster>`
/// (else `~/.local/state/n3x/<cluster>`). `env` is `std::env::var_os` in the binary.
pub fn state_dir(env: &dyn Fn(&str) -> Option<std::ffi::OsString>, cluster: &str) -> Option<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let state = set("XDG_STATE_HOME").or_else(|| set("HOME").map(|h| h.join(".local/state")))?;
    Some(state.join("n3x").join(cluster))
}

/// Where a cluster's journal lives by default: `deploy-journal.json` in its [`state_dir`].
pub fn default_path(env: &dyn Fn(&str) -> Option<std::ffi::OsString>, cluster: &str) -> Option<PathBuf> {
    Some(state_dir(env, cluster)?.join("deploy-journal.json"))
}

/// A new deploy id: short, unique enough for one cluster's deploys, usable in a unit name.
pub fn new_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{:x}{:04x}", now.as_secs(), std::process::id() & 0xffff)
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    fn record() -> Record {
        Record::empty("abc", 90)
    }

    #[test]
    fn every_change_is_on_disk_and_reads_back() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state/deploy.json");
        assert_eq!(load(&path).unwrap(), None);
        let mut j = Journal::create(&path, record());
        j.set("n100-2", HostState::Guarded { previous: "/nix/store/a".into() }).unwrap();
        assert_eq!(
            load(&path).unwrap().unwrap().host("n100-2"),
            Some(&HostState::Guarded { previous: "/nix/store/a".into() })
        );
        j.set("n100-2", HostState::Confirmed).unwrap();
        j.finish(Finish::Done).unwrap();
        let r = load(&path).unwrap().unwrap();
        assert_eq!(r.hosts.len(), 1);
        assert_eq!(r.finished, Some(Finish::Done));
        assert_eq!(r.guard_unit(), "n3x-guard-abc");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn a_damaged_journal_is_an_error_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("deploy.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.to_string().contains("deploy.json") && e.to_string().contains("unreadable"), "{e}");
        let mut r = record();
        r.version = 9;
        std::fs::write(&path, serde_json::to_vec(&r).unwrap()).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("version 9"));
    }

    #[test]
    fn the_default_journal_follows_xdg() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| std::ffi::OsString::from(v))
        };
        assert_eq!(
            default_path(&env(&[("XDG_STATE_HOME", "/s"), ("HOME", "/h")]), "n3x"),
            Some(PathBuf::from("/s/n3x/n3x/deploy-journal.json"))
        );
        assert_eq!(
            default_path(&env(&[("HOME", "/h")]), "c"),
            Some(PathBuf::from("/h/.local/state/n3x/c/deploy-journal.json"))
        );
        assert_eq!(default_path(&env(&[]), "c"), None);
    }

    #[test]
    fn settled_states() {
        assert!(HostState::Confirmed.settled());
        assert!(!HostState::Switched { previous: "p".into() }.settled());
        assert!(!HostState::Pushed.settled());
    }
}
