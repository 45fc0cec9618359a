//! The supervisor: the process that owns a running lab. `n3x lab up` starts it (as
//! `n3x lab supervise`); it builds the fabric, starts etcd on the servers and the probe on
//! the agents, reports progress on stdout until the lab is ready, then serves the control
//! socket until `n3x lab down` stops it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use n3x_model::model::Profile;
use serde::{Deserialize, Serialize};

use crate::control::{HostStatus, LabStatus, MemberStatus, Request, Response, SOCKET, VerifyResult};
use crate::error::LabError;
use crate::fabric::{self, KernelCaps};
use crate::plan::{FabricKind, LabPlan};
use crate::probe::{self, Probes};
use crate::state::{LabLock, ProcessRecord, StateStore};
use crate::sys;

/// What `up` decided, handed to the supervisor in `options.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabOptions {
    pub fabric: FabricKind,
    pub netem: bool,
    pub etcd: PathBuf,
    pub probe_interval_ms: u64,
    pub plan: LabPlan,
}

pub const OPTIONS_FILE: &str = "options.json";

/// A progress event, one JSON line on the supervisor's stdout while `up` listens.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Step {
        message: String,
    },
    Ready {
        bringup_ms: f64,
        quorum_ms: f64,
        fabric: FabricKind,
    },
    Failed {
        message: String,
        help: String,
        #[serde(default)]
        environment: bool,
    },
}

/// Test-only fault injection: `N3X_LAB_FAULT_STEP=N` kills `n3x lab up` (the parent) and
/// the supervisor with SIGKILL at the supervisor's N-th build step, as a crash or a
/// `kill -9` at that point would, to prove that `down` cleans up after any of them.
const FAULT_ENV: &str = "N3X_LAB_FAULT_STEP";

struct Events {
    steps: u32,
    fault_at: Option<u32>,
    listening: bool,
}

impl Events {
    fn emit(&mut self, e: &Event) {
        if !self.listening {
            return;
        }
        let line = serde_json::to_string(e).unwrap_or_default() + "\n";
        let mut out = std::io::stdout().lock();
        // `up` may be gone (killed, or done); the lab carries on without a listener.
        if out.write_all(line.as_bytes()).and_then(|_| out.flush()).is_err() {
            self.listening = false;
        }
    }

    fn step(&mut self, message: impl Into<String>) {
        self.steps += 1;
        self.emit(&Event::Step { message: message.into() });
        if self.fault_at == Some(self.steps) {
            let _ = nix::sys::signal::kill(nix::unistd::getppid(), nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }
}

enum ActiveFabric {
    Kernel(KernelCaps),
    Userspace(Vec<n3x_switch::Switch>),
}

struct Member {
    child: Option<Child>,
    rec: Option<ProcessRecord>,
}

/// One etcd member as the supervisor sees it.
struct MemberView {
    host: usize,
    running: bool,
    pid: Option<i32>,
    status: Result<crate::etcd::Status, String>,
}

pub struct Supervisor {
    dir: PathBuf,
    plan: Arc<LabPlan>,
    opts: LabOptions,
    store: Mutex<StateStore>,
    fabric: ActiveFabric,
    members: Mutex<BTreeMap<usize, Member>>,
    probes: Arc<Probes>,
    profiles: Mutex<Vec<(usize, Profile, String)>>,
    partitioned: Mutex<bool>,
    bringup_ms: f64,
}

/// Runs the supervisor of the lab whose directory is `dir`. Returns when the lab is shut
/// down; errors before "ready" are also reported as a `Failed` event.
pub fn supervise(dir: &Path) -> Result<(), LabError> {
    let mut events =
        Events { steps: 0, fault_at: std::env::var(FAULT_ENV).ok().and_then(|v| v.parse().ok()), listening: true };
    match build(dir, &mut events) {
        Ok(Some((sup, listener))) => {
            sup.serve(listener);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => {
            events.emit(&Event::Failed { message: e.to_string(), help: e.help(), environment: e.is_environment() });
            Err(e)
        }
    }
}

fn build(dir: &Path, events: &mut Events) -> Result<Option<(Supervisor, UnixListener)>, LabError> {
    let epoch = Instant::now();
    // Held while building: `down` waits for a build in progress instead of racing it.
    let lock = LabLock::acquire(dir, true)?;
    let root = dir.parent().unwrap_or(Path::new(crate::plan::STATE_ROOT));
    let cluster = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    let mut store = StateStore::open(root, &cluster)?;
    if !store.exists() {
        // `down` ran between `up` starting us and us taking the lock: there is no lab to build.
        return Ok(None);
    }
    let me = std::process::id() as i32;
    if let Some(other) = &store.state.supervisor {
        if other.pid != me && other.is_alive() {
            return Err(LabError::AlreadyUp { cluster });
        }
    }
    store.state.supervisor = ProcessRecord::of(me, "supervisor");
    store.save()?;

    let opts: LabOptions = std::fs::read(dir.join(OPTIONS_FILE))
        .map_err(|e| LabError::io(format!("read {}", dir.join(OPTIONS_FILE).display()), e))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| LabError::Lab(format!("bad lab options: {e}"))))?;
    let plan = Arc::new(opts.plan.clone());
    store.state.fabric = Some(opts.fabric);
    store.save()?;
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| LabError::io("create the log directory", e))?;

    // Refuse to adopt namespaces someone else made.
    let ours: Vec<&str> = store.state.namespaces.iter().map(String::as_str).collect();
    for ns in std::iter::once(&plan.fabric_ns).chain(plan.hosts.iter().map(|h| &h.ns)) {
        if sys::netns_exists(ns) && !ours.contains(&ns.as_str()) {
            return Err(LabError::Collision { name: format!("network namespace {ns}") });
        }
    }

    let fabric = match opts.fabric {
        FabricKind::Kernel => {
            let caps = KernelCaps { netem: opts.netem };
            build_kernel(&plan, &mut store, events)?;
            ActiveFabric::Kernel(caps)
        }
        FabricKind::Userspace => ActiveFabric::Userspace(build_userspace(&plan, &mut store, events)?),
    };

    let probes = Probes::new(epoch, Duration::from_millis(opts.probe_interval_ms));
    let profiles: Vec<(usize, Profile, String)> =
        plan.hosts.iter().map(|h| (h.index, h.profile, h.profile_name.clone())).collect();
    let sup = Supervisor {
        dir: dir.to_path_buf(),
        plan: plan.clone(),
        opts,
        store: Mutex::new(store),
        fabric,
        members: Mutex::new(BTreeMap::new()),
        probes,
        profiles: Mutex::new(profiles),
        partitioned: Mutex::new(false),
        bringup_ms: 0.0,
    };
    events.step("applying link profiles");
    sup.apply_profiles()?;

    for &s in &plan.servers {
        events.step(format!("starting etcd on {}", plan.hosts[s].name));
        sup.start_member(s, false)?;
        // One at a time: a new member first asks its peers whether it was bootstrapped
        // already, and a peer that has bound its port but does not serve yet makes it wait
        // a whole election timeout per peer. A member that serves answers at once, and one
        // not started yet refuses at once.
        sup.wait_peer_serving(s, Duration::from_secs(5))?;
    }
    events.step("waiting for etcd quorum");
    sup.wait_quorum(Duration::from_secs(30))?;
    let quorum_ms = epoch.elapsed().as_secs_f64() * 1000.0;

    events.step(format!("starting the probe on {} agent(s)", plan.agents.len()));
    sup.start_probes()?;
    sup.wait_first_writes(Duration::from_secs(30))?;
    let bringup_ms = epoch.elapsed().as_secs_f64() * 1000.0;
    let sup = Supervisor { bringup_ms, ..sup };

    // The control socket listens before "ready", so `up` can return and be followed at once.
    let path = dir.join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| LabError::io(format!("listen on {}", path.display()), e))?;
    drop(lock);
    events.emit(&Event::Ready { bringup_ms, quorum_ms, fabric: sup.opts.fabric });
    events.listening = false;
    Ok(Some((sup, listener)))
}

fn create_namespaces(names: &[&str], store: &mut StateStore, events: &mut Events) -> Result<(), LabError> {
    for ns in names {
        store.will_create_namespace(ns)?;
        events.step(format!("creating namespace {ns}"));
        sys::run("ip", &["netns", "add", ns], None)?;
    }
    Ok(())
}

fn build_kernel(plan: &LabPlan, store: &mut StateStore, events: &mut Events) -> Result<(), LabError> {
    let mut names: Vec<&str> = vec![&plan.fabric_ns];
    names.extend(plan.hosts.iter().map(|h| h.ns.as_str()));
    create_namespaces(&names, store, events)?;
    events.step("creating bridges");
    sys::ip_batch(Some(&plan.fabric_ns), &fabric::bridge_lines(plan))?;
    events.step("loading nftables (partitions, loss)");
    sys::nft(&plan.fabric_ns, &fabric::nft_table_script())?;
    for h in &plan.hosts {
        events.step(format!("wiring {}", h.name));
        sys::ip_batch(Some(&plan.fabric_ns), &fabric::veth_lines(plan, h))?;
        sys::ip_batch(Some(&h.ns), &fabric::host_lines(plan, h))?;
    }
    Ok(())
}

fn build_userspace(
    plan: &LabPlan,
    store: &mut StateStore,
    events: &mut Events,
) -> Result<Vec<n3x_switch::Switch>, LabError> {
    let names: Vec<&str> = plan.hosts.iter().map(|h| h.ns.as_str()).collect();
    create_namespaces(&names, store, events)?;
    let switches: Vec<n3x_switch::Switch> =
        plan.networks.iter().map(|n| n3x_switch::Switch::new(&n.name, plan.seed)).collect();
    for h in &plan.hosts {
        events.step(format!("wiring {}", h.name));
        for i in &h.ifaces {
            let (ifname, mtu) = (i.ifname.clone(), u32::from(i.mtu));
            let tap = sys::in_netns(&h.ns, move || n3x_switch::Tap::create(&ifname, mtu))?
                .map_err(|e| LabError::io(format!("create TAP `{}` in `{}`", i.ifname, h.ns), e))?;
            switches[i.net_index]
                .add_port(&h.name, tap)
                .map_err(|e| LabError::io(format!("attach `{}` of `{}` to the switch", i.ifname, h.name), e))?;
        }
        sys::ip_batch(Some(&h.ns), &fabric::host_lines(plan, h))?;
    }
    Ok(switches)
}

/// How long a probe waits for one write: half an election timeout (at least 250 ms), so
/// a write stuck on a member that lost its leader is retried elsewhere soon.
pub fn probe_timeout_ms(plan: &LabPlan) -> u64 {
    (plan.etcd.election_ms / 2).max(250)
}

/// The switch's impairment for a profile (a host's egress).
pub fn impairment(p: &Profile) -> n3x_switch::Impairment {
    let ms = |v: Option<f64>| Duration::from_secs_f64(v.unwrap_or(0.0).max(0.0) / 1000.0);
    n3x_switch::Impairment {
        delay: ms(p.delay_ms),
        jitter: ms(p.jitter_ms),
        loss: match p.loss_pct {
            Some(l) if l > 0.0 => n3x_switch::Loss::Bernoulli { p: l / 100.0 },
            _ => n3x_switch::Loss::None,
        },
        rate_bps: p.rate_mbit.map(|r| (r * 1_000_000.0) as u64),
        ..Default::default()
    }
}

impl Supervisor {
    fn now_ms(&self) -> f64 {
        self.probes.now_ms()
    }

    fn host_index(&self, name: &str) -> Result<usize, LabError> {
        self.plan
            .host(name)
            .map(|h| h.index)
            .ok_or_else(|| LabError::Lab(format!("`{name}` is not a host of cluster `{}`", self.plan.cluster)))
    }

    fn apply_profiles(&self) -> Result<(), LabError> {
        let profiles = self.profiles.lock().map_err(|_| LabError::Lab("poisoned".into()))?.clone();
        match &self.fabric {
            ActiveFabric::Kernel(caps) => {
                let list: Vec<(usize, Profile)> = profiles.iter().map(|(h, p, _)| (*h, *p)).collect();
                fabric::apply_profiles(&self.plan, &list, *caps)
            }
            ActiveFabric::Userspace(switches) => {
                for (h, p, _) in &profiles {
                    for sw in switches {
                        sw.set_egress(&self.plan.hosts[*h].name, impairment(p));
                    }
                }
                Ok(())
            }
        }
    }

    fn start_member(&self, host: usize, existing: bool) -> Result<(), LabError> {
        let h = &self.plan.hosts[host];
        let data = self.dir.join("etcd").join(&h.name);
        std::fs::create_dir_all(&data).map_err(|e| LabError::io(format!("create {}", data.display()), e))?;
        let log = self.dir.join("logs").join(format!("{}.log", h.name));
        let args = crate::etcd::args(&self.plan, h, &data, existing);
        let child = sys::spawn_in_netns(&h.ns, &self.opts.etcd, &args, &log)?;
        let rec = ProcessRecord::of(child.id() as i32, format!("etcd {}", h.name));
        if let Some(r) = &rec {
            self.store.lock().map_err(|_| LabError::Lab("poisoned".into()))?.record_process(r.clone())?;
        }
        self.members
            .lock()
            .map_err(|_| LabError::Lab("poisoned".into()))?
            .insert(host, Member { child: Some(child), rec });
        Ok(())
    }

    fn kill_member(&self, host: usize) -> Result<(), LabError> {
        let mut members = self.members.lock().map_err(|_| LabError::Lab("poisoned".into()))?;
        let m = members
            .get_mut(&host)
            .ok_or_else(|| LabError::Lab(format!("`{}` runs no etcd", self.plan.hosts[host].name)))?;
        if let Some(mut child) = m.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(())
    }

    /// Each member's status, asked from inside its own namespace (so a partition between
    /// hosts never hides a member from the supervisor).
    fn member_statuses(&self) -> Vec<MemberView> {
        let timeout = Duration::from_millis(500);
        let mut handles = Vec::new();
        for &s in &self.plan.servers {
            let (running, pid) = self
                .members
                .lock()
                .ok()
                .and_then(|mut m| {
                    m.get_mut(&s).map(|m| match m.child.as_mut() {
                        Some(c) => (matches!(c.try_wait(), Ok(None)), Some(c.id() as i32)),
                        None => (false, None),
                    })
                })
                .unwrap_or((false, None));
            let ip = self.plan.hosts[s].cluster_ip;
            let h = sys::spawn_in_netns_thread(&self.plan.hosts[s].ns, move || crate::etcd::status(ip, timeout));
            handles.push((s, running, pid, h));
        }
        handles
            .into_iter()
            .map(|(s, running, pid, h)| {
                let st = match h {
                    Ok(h) => match h.join() {
                        Ok(Some(r)) => r.map_err(|e| e.to_string()),
                        _ => Err("status thread failed".into()),
                    },
                    Err(e) => Err(e.to_string()),
                };
                MemberView { host: s, running, pid, status: if running { st } else { Err("not running".into()) } }
            })
            .collect()
    }

    /// The leader every reachable member agrees on, by host index.
    fn leader(&self) -> Option<usize> {
        let st = self.member_statuses();
        let ok: Vec<&crate::etcd::Status> = st.iter().filter_map(|m| m.status.as_ref().ok()).collect();
        let leader_id = ok.first()?.leader;
        if leader_id == 0 || !ok.iter().all(|s| s.leader == leader_id) {
            return None;
        }
        st.iter().find(|m| m.status.as_ref().is_ok_and(|s| s.member_id == leader_id)).map(|m| m.host)
    }

    fn wait_peer_serving(&self, host: usize, timeout: Duration) -> Result<(), LabError> {
        let h = &self.plan.hosts[host];
        let ip = h.cluster_ip;
        // A member that never serves is not fatal here: `wait_quorum` decides and explains.
        sys::in_netns(&h.ns, move || {
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline && !crate::etcd::peer_serving(ip, Duration::from_millis(200)) {
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    }

    fn wait_quorum(&self, timeout: Duration) -> Result<(), LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.member_statuses();
            let healthy = st.iter().filter(|m| m.status.is_ok()).count();
            if healthy == st.len() && self.leader().is_some() {
                return Ok(());
            }
            if let Some(h) = st
                .iter()
                .find(|v| !v.running && self.members.lock().is_ok_and(|m| m.contains_key(&v.host)))
                .map(|v| &v.host)
            {
                return Err(LabError::Lab(format!(
                    "etcd on `{}` exited during start-up; its log is {}",
                    self.plan.hosts[*h].name,
                    self.dir.join("logs").join(format!("{}.log", self.plan.hosts[*h].name)).display()
                )));
            }
            if Instant::now() > deadline {
                let detail: Vec<String> = st
                    .iter()
                    .map(|m| {
                        format!(
                            "{}: {}",
                            self.plan.hosts[m.host].name,
                            m.status.as_ref().map_or_else(|e| e.clone(), |_| "healthy".into())
                        )
                    })
                    .collect();
                return Err(LabError::Lab(format!(
                    "etcd formed no quorum in {} s ({})",
                    timeout.as_secs(),
                    detail.join("; ")
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn start_probes(&self) -> Result<(), LabError> {
        let timeout = Duration::from_millis(probe_timeout_ms(&self.plan));
        for &a in &self.plan.agents {
            let (plan, probes) = (self.plan.clone(), self.probes.clone());
            sys::spawn_in_netns_thread(&self.plan.hosts[a].ns, move || probe::run(plan, a, probes, timeout))?;
        }
        Ok(())
    }

    fn wait_first_writes(&self, timeout: Duration) -> Result<(), LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.probes.snapshot(0);
            let missing: Vec<&str> = self
                .plan
                .agents
                .iter()
                .map(|&a| self.plan.hosts[a].name.as_str())
                .filter(|n| !log.iter().any(|w| w.agent == *n && w.acked_ms.is_some()))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LabError::Lab(format!(
                    "no write acknowledged for agent(s) {} in {} s",
                    missing.join(", "),
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn partition(&self, a: &[String], b: &[String]) -> Result<(), LabError> {
        let ai: Vec<usize> = a.iter().map(|n| self.host_index(n)).collect::<Result<_, _>>()?;
        let bi: Vec<usize> = b.iter().map(|n| self.host_index(n)).collect::<Result<_, _>>()?;
        match &self.fabric {
            ActiveFabric::Kernel(_) => sys::nft(&self.plan.fabric_ns, &fabric::partition_script(&self.plan, &ai, &bi))?,
            ActiveFabric::Userspace(switches) => {
                let an: Vec<&str> = a.iter().map(String::as_str).collect();
                let bn: Vec<&str> = b.iter().map(String::as_str).collect();
                for sw in switches {
                    sw.partition(&an, &bn);
                }
            }
        }
        if let Ok(mut p) = self.partitioned.lock() {
            *p = true;
        }
        Ok(())
    }

    fn heal(&self) -> Result<(), LabError> {
        match &self.fabric {
            ActiveFabric::Kernel(_) => sys::nft(&self.plan.fabric_ns, &fabric::heal_script())?,
            ActiveFabric::Userspace(switches) => switches.iter().for_each(|s| s.heal()),
        }
        if let Ok(mut p) = self.partitioned.lock() {
            *p = false;
        }
        Ok(())
    }

    fn verify(&self, via: Option<String>) -> Result<VerifyResult, LabError> {
        let via = match via {
            Some(v) => self.host_index(&v)?,
            None => self
                .member_statuses()
                .into_iter()
                .find(|m| m.status.is_ok())
                .map(|m| m.host)
                .ok_or_else(|| LabError::Lab("no etcd member answers".into()))?,
        };
        let writes = self.probes.snapshot(0);
        let acked: Vec<probe::Write> = writes.into_iter().filter(|w| w.acked_ms.is_some()).collect();
        let agents: Vec<String> = self.plan.agents.iter().map(|&a| self.plan.hosts[a].name.clone()).collect();
        let ip = self.plan.hosts[via].cluster_ip;
        let stored = sys::in_netns(&self.plan.hosts[via].ns, move || {
            let mut all = BTreeMap::new();
            for a in agents {
                for (k, v) in crate::etcd::range_prefix(ip, &probe::prefix(&a), Duration::from_secs(10))? {
                    all.insert(k, v);
                }
            }
            Ok::<_, crate::etcd::EtcdError>(all)
        })?
        .map_err(|e| LabError::Lab(format!("reading the probes' keys back failed: {e}")))?;
        let mut lost = Vec::new();
        let mut mismatched = Vec::new();
        for w in &acked {
            match stored.get(&w.key()) {
                None => lost.push(w.key()),
                Some(v) if *v != w.value => mismatched.push(w.key()),
                Some(_) => {}
            }
        }
        Ok(VerifyResult { via: self.plan.hosts[via].name.clone(), acked: acked.len(), lost, mismatched })
    }

    fn status(&self) -> LabStatus {
        let members: BTreeMap<usize, MemberStatus> = self
            .member_statuses()
            .into_iter()
            .map(|m| {
                let (status, error) = match m.status {
                    Ok(s) => (Some(s), None),
                    Err(e) => (None, Some(e)),
                };
                (m.host, MemberStatus { running: m.running, pid: m.pid, status, error })
            })
            .collect();
        let profiles = self.profiles.lock().map(|p| p.clone()).unwrap_or_default();
        let leader_id = members.values().filter_map(|m| m.status).map(|s| s.leader).next();
        let agree =
            leader_id.is_some_and(|l| l != 0 && members.values().filter_map(|m| m.status).all(|s| s.leader == l));
        let leader = if agree {
            members
                .iter()
                .find(|(_, m)| m.status.is_some_and(|s| Some(s.member_id) == leader_id))
                .map(|(h, _)| self.plan.hosts[*h].name.clone())
        } else {
            None
        };
        LabStatus {
            cluster: self.plan.cluster.clone(),
            fabric: self.opts.fabric.as_str().into(),
            now_ms: self.now_ms(),
            bringup_ms: self.bringup_ms,
            hosts: self
                .plan
                .hosts
                .iter()
                .map(|h| HostStatus {
                    name: h.name.clone(),
                    role: if h.is_server() { "server" } else { "agent" }.into(),
                    namespace: h.ns.clone(),
                    profile: profiles
                        .iter()
                        .find(|(i, ..)| *i == h.index)
                        .map_or_else(|| h.profile_name.clone(), |p| p.2.clone()),
                    addresses: h.ifaces.iter().map(|i| format!("{} {}/{}", i.network, i.address, i.prefix)).collect(),
                    member: members.get(&h.index).cloned(),
                })
                .collect(),
            leader,
            partitioned: self.partitioned.lock().map(|p| *p).unwrap_or(false),
        }
    }

    fn handle(&self, req: Request) -> Result<Response, LabError> {
        let ok = |s: &Self| Ok(Response::Ok { at_ms: s.now_ms() });
        match req {
            Request::Status => Ok(Response::Status(Box::new(self.status()))),
            Request::Kill { host } => {
                self.kill_member(self.host_index(&host)?)?;
                ok(self)
            }
            Request::Start { host } => {
                self.start_member(self.host_index(&host)?, true)?;
                ok(self)
            }
            Request::Partition { a, b } => {
                self.partition(&a, &b)?;
                ok(self)
            }
            Request::Heal => {
                self.heal()?;
                ok(self)
            }
            Request::Impair { hosts, profile_name, profile } => {
                let idx: Vec<usize> = hosts.iter().map(|n| self.host_index(n)).collect::<Result<_, _>>()?;
                if let (ActiveFabric::Kernel(caps), true) = (
                    &self.fabric,
                    profile.delay_ms.is_some_and(|d| d > 0.0) || profile.jitter_ms.is_some_and(|j| j > 0.0),
                ) {
                    if !caps.netem {
                        return Err(LabError::Unsupported {
                            fabric: "kernel".into(),
                            what: "delay or jitter (this kernel has no sch_netem)".into(),
                            fix: "start the lab with `--fabric userspace` (or `auto`)".into(),
                        });
                    }
                }
                if let Ok(mut p) = self.profiles.lock() {
                    for (h, prof, name) in p.iter_mut() {
                        if idx.contains(h) {
                            *prof = profile;
                            *name = profile_name.clone();
                        }
                    }
                }
                self.apply_profiles()?;
                ok(self)
            }
            Request::Writes { since } => Ok(Response::Writes { writes: self.probes.snapshot(since) }),
            Request::PauseProbes => {
                self.probes.paused.store(true, std::sync::atomic::Ordering::SeqCst);
                ok(self)
            }
            Request::ResumeProbes => {
                self.probes.paused.store(false, std::sync::atomic::Ordering::SeqCst);
                ok(self)
            }
            Request::Verify { via } => Ok(Response::Verify(self.verify(via)?)),
            Request::Shutdown => ok(self),
        }
    }

    fn serve(self, listener: UnixListener) {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            if self.serve_one(conn) {
                break;
            }
        }
        self.stop();
    }

    /// Answers one request; true when it asked the supervisor to stop.
    fn serve_one(&self, conn: UnixStream) -> bool {
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        if BufReader::new(&conn).read_line(&mut line).is_err() {
            return false;
        }
        let (resp, stop) = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let stop = matches!(req, Request::Shutdown);
                (self.handle(req).unwrap_or_else(|e| Response::Error { message: e.to_string() }), stop)
            }
            Err(e) => (Response::Error { message: format!("bad request: {e}") }, false),
        };
        let out = serde_json::to_string(&resp).unwrap_or_default() + "\n";
        let _ = (&conn).write_all(out.as_bytes());
        stop
    }

    /// Stops the probes and the members. Namespaces stay: `down` removes them.
    fn stop(self) {
        self.probes.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut m) = self.members.lock() {
            for member in m.values_mut() {
                if let Some(mut c) = member.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                let _ = member.rec.take();
            }
        }
        if let ActiveFabric::Userspace(switches) = self.fabric {
            switches.into_iter().for_each(n3x_switch::Switch::shutdown);
        }
    }
}
