//! A recording fake of [`System`] for unit tests: it keeps the namespaces, aliases,
//! processes and sysctls it was asked to make, records every call in order, and fails the
//! calls a test tells it to fail. It also checks the lab's first invariant as it goes: a
//! namespace must be in the lab record before it is created.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{LinkOp, Process, System};
use crate::error::LabError;
use crate::state::ProcessRecord;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    CreateNetns(String),
    DeleteNetns(String),
    Links(String, Vec<LinkOp>),
    Nft(String, String),
    Tc(String, Vec<String>),
    WriteSysctl(String, u64),
    Spawn { ns: String, program: String },
    Kill(i32),
    AttachTap { ns: String, ifname: String, host: String },
}

/// What a test wants to fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fail {
    Create(String),
    Delete(String),
    Links(String),
    /// Killing this pid has no effect: the process survives.
    Unkillable(i32),
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    namespaces: BTreeMap<String, Vec<String>>,
    pids: BTreeMap<String, Vec<i32>>,
    alive: BTreeSet<i32>,
    next_pid: i32,
    sysctls: BTreeMap<String, u64>,
    fail: Vec<Fail>,
    record: Option<PathBuf>,
    violations: Vec<String>,
}

#[derive(Clone, Default)]
pub struct Fake {
    inner: Arc<Mutex<Inner>>,
}

fn fail_io(what: &str) -> LabError {
    LabError::io(what.to_owned(), std::io::Error::other("injected by the test"))
}

impl Fake {
    pub fn new() -> Fake {
        let f = Fake::default();
        f.lock().next_pid = 10_000;
        f
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every created namespace must already be listed in this lab record (state.json).
    pub fn check_record(&self, state_file: &Path) {
        self.lock().record = Some(state_file.to_path_buf());
    }

    pub fn fail(&self, f: Fail) {
        self.lock().fail.push(f);
    }

    pub fn heal(&self) {
        self.lock().fail.clear();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    pub fn namespaces(&self) -> Vec<String> {
        self.lock().namespaces.keys().cloned().collect()
    }

    /// A namespace made by someone else (a decoy), with links carrying `aliases`.
    pub fn add_foreign_netns(&self, name: &str, aliases: &[&str]) {
        self.lock().namespaces.insert(name.into(), aliases.iter().map(|s| s.to_string()).collect());
    }

    /// A live process (e.g. a supervisor), optionally inside namespace `ns`.
    pub fn add_process(&self, ns: Option<&str>) -> ProcessRecord {
        let mut s = self.lock();
        s.next_pid += 1;
        let pid = s.next_pid;
        s.alive.insert(pid);
        if let Some(ns) = ns {
            s.pids.entry(ns.into()).or_default().push(pid);
        }
        ProcessRecord { pid, start_time: 1, what: format!("fake {pid}") }
    }

    pub fn is_alive(&self, pid: i32) -> bool {
        self.lock().alive.contains(&pid)
    }

    pub fn set_sysctl(&self, key: &str, v: u64) {
        self.lock().sysctls.insert(key.into(), v);
    }

    pub fn sysctl(&self, key: &str) -> Option<u64> {
        self.lock().sysctls.get(key).copied()
    }

    fn failing(&self, f: &Fail) -> bool {
        self.lock().fail.contains(f)
    }
}

struct FakeProcess {
    pid: i32,
    sys: Fake,
}

impl Process for FakeProcess {
    fn pid(&self) -> i32 {
        self.pid
    }
    fn running(&mut self) -> bool {
        self.sys.is_alive(self.pid)
    }
    fn kill(&mut self) {
        self.sys.lock().alive.remove(&self.pid);
    }
}

impl System for Fake {
    fn netns_exists(&self, name: &str) -> bool {
        self.lock().namespaces.contains_key(name)
    }

    fn list_netns(&self) -> Vec<String> {
        self.namespaces()
    }

    fn create_netns(&self, name: &str) -> Result<(), LabError> {
        let record = self.lock().record.clone();
        if let Some(path) = record {
            let listed = std::fs::read_to_string(&path).is_ok_and(|t| t.contains(&format!("\"{name}\"")));
            if !listed {
                self.lock().violations.push(format!("namespace `{name}` created before it was recorded"));
            }
        }
        self.lock().calls.push(Call::CreateNetns(name.into()));
        if self.failing(&Fail::Create(name.into())) {
            return Err(fail_io(&format!("create namespace `{name}`")));
        }
        let mut s = self.lock();
        if s.namespaces.contains_key(name) {
            return Err(LabError::io(format!("create namespace `{name}`"), std::io::ErrorKind::AlreadyExists.into()));
        }
        s.namespaces.insert(name.into(), Vec::new());
        Ok(())
    }

    fn delete_netns(&self, name: &str) -> Result<(), LabError> {
        self.lock().calls.push(Call::DeleteNetns(name.into()));
        if self.failing(&Fail::Delete(name.into())) {
            return Err(fail_io(&format!("remove namespace `{name}`")));
        }
        let mut s = self.lock();
        s.namespaces.remove(name);
        s.pids.remove(name);
        Ok(())
    }

    fn processes_in(&self, names: &[String]) -> Vec<ProcessRecord> {
        let s = self.lock();
        names
            .iter()
            .flat_map(|n| {
                s.pids.get(n).into_iter().flatten().filter(|p| s.alive.contains(p)).map(move |&pid| ProcessRecord {
                    pid,
                    start_time: 1,
                    what: format!("process in {n}"),
                })
            })
            .collect()
    }

    fn link_aliases(&self, ns: &str) -> Result<Vec<String>, LabError> {
        self.lock().namespaces.get(ns).cloned().ok_or_else(|| fail_io(&format!("open namespace `{ns}`")))
    }

    fn links(&self, ns: &str, ops: &[LinkOp]) -> Result<(), LabError> {
        self.lock().calls.push(Call::Links(ns.into(), ops.to_vec()));
        if self.failing(&Fail::Links(ns.into())) {
            return Err(fail_io(&format!("links in `{ns}`")));
        }
        let mut s = self.lock();
        for op in ops {
            if let LinkOp::Veth { peer_ns, .. } = op {
                if !s.namespaces.contains_key(peer_ns) {
                    return Err(fail_io(&format!("open namespace `{peer_ns}`")));
                }
            }
            let alias = match op {
                LinkOp::Bridge { alias, .. } | LinkOp::Veth { alias, .. } | LinkOp::Up { alias, .. } => alias.clone(),
                _ => continue,
            };
            s.namespaces.get_mut(ns).ok_or_else(|| fail_io(&format!("open namespace `{ns}`")))?.push(alias);
        }
        Ok(())
    }

    fn nft(&self, ns: &str, script: &str) -> Result<(), LabError> {
        self.lock().calls.push(Call::Nft(ns.into(), script.into()));
        Ok(())
    }

    fn tc(&self, ns: &str, args: &[String]) -> Result<(), LabError> {
        self.lock().calls.push(Call::Tc(ns.into(), args.to_vec()));
        Ok(())
    }

    fn probe_netem(&self) -> bool {
        false
    }

    fn read_sysctl(&self, key: &str) -> Option<u64> {
        self.sysctl(key)
    }

    fn write_sysctl(&self, key: &str, value: u64) -> Result<(), LabError> {
        let mut s = self.lock();
        s.calls.push(Call::WriteSysctl(key.into(), value));
        s.sysctls.insert(key.into(), value);
        Ok(())
    }

    fn spawn(&self, ns: &str, program: &Path, _args: &[String], _log: &Path) -> Result<Box<dyn Process>, LabError> {
        self.lock().calls.push(Call::Spawn { ns: ns.into(), program: program.display().to_string() });
        let rec = self.add_process(Some(ns));
        Ok(Box::new(FakeProcess { pid: rec.pid, sys: self.clone() }))
    }

    fn kill(&self, rec: &ProcessRecord) -> bool {
        let alive = self.is_alive(rec.pid);
        self.lock().calls.push(Call::Kill(rec.pid));
        if alive && !self.failing(&Fail::Unkillable(rec.pid)) {
            self.lock().alive.remove(&rec.pid);
        }
        alive
    }

    fn alive(&self, rec: &ProcessRecord) -> bool {
        self.is_alive(rec.pid)
    }

    fn attach_tap(
        &self,
        ns: &str,
        ifname: &str,
        _mtu: u32,
        _switch: &n3x_switch::Switch,
        host: &str,
    ) -> Result<(), LabError> {
        self.lock().calls.push(Call::AttachTap { ns: ns.into(), ifname: ifname.into(), host: host.into() });
        Ok(())
    }
}
