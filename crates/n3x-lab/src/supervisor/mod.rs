//! The supervisor: the process that owns a running lab. `n3x lab up` starts it (as
//! `n3x lab supervise`); it builds the fabric, starts etcd on the servers and the probe on
//! the agents, reports progress on stdout until the lab is ready, then serves the control
//! socket until `n3x lab down` stops it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use n3x_model::model::Profile;
use serde::{Deserialize, Serialize};

use crate::control::{HostStatus, LabStatus, MemberStatus, Request, Response, SOCKET, VerifyResult};
use crate::error::{ErrorKind, LabError};
use crate::fabric::{self, KernelCaps};
use crate::generation::Settings;
use crate::plan::{FabricKind, LabPlan, LabRole};
use crate::probe::{self, Probes};
use crate::state::{LabLock, ProcessRecord, StateStore, lock};
use crate::system::{self, Process, System};
use crate::{build, etcd};

mod hosts;

/// What `up` decided, handed to the supervisor in `options.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabOptions {
    pub fabric: FabricKind,
    pub netem: bool,
    pub etcd: PathBuf,
    pub probe_interval_ms: u64,
    pub plan: LabPlan,
    /// Every host runs sshd, reachable from the operator's namespace (the plan has one).
    #[serde(default)]
    pub ssh: bool,
    /// Hosts wait for `n3x install`: no etcd, no probes, no generation yet.
    #[serde(default)]
    pub empty: bool,
    /// The n3x binary the hosts' doubles run.
    #[serde(default)]
    pub n3x: Option<PathBuf>,
    /// The inventory's k3s track, which the hosts' generations carry.
    #[serde(default)]
    pub k3s_version: String,
}

pub const OPTIONS_FILE: &str = "options.json";

impl LabOptions {
    /// The options `up` recorded in the lab directory `dir`.
    pub fn read(dir: &Path) -> Result<LabOptions, LabError> {
        let path = dir.join(OPTIONS_FILE);
        let bytes = std::fs::read(&path).map_err(|e| LabError::io(format!("read {}", path.display()), e))?;
        serde_json::from_slice(&bytes).map_err(|e| LabError::BadOptions { path, message: e.to_string() })
    }
}

/// A progress event, one JSON line on the supervisor's stdout while `up` listens.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Step { message: String },
    Ready { bringup_ms: f64, quorum_ms: f64, fabric: FabricKind },
    Failed { message: String, help: String, kind: WireKind },
}

/// [`ErrorKind`] on the wire between the supervisor and `up`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireKind {
    Environment,
    Usage,
    Io,
    Lab,
}

impl From<ErrorKind> for WireKind {
    fn from(k: ErrorKind) -> Self {
        match k {
            ErrorKind::Environment => WireKind::Environment,
            ErrorKind::Usage => WireKind::Usage,
            ErrorKind::Io => WireKind::Io,
            ErrorKind::Lab => WireKind::Lab,
        }
    }
}

impl From<WireKind> for ErrorKind {
    fn from(k: WireKind) -> Self {
        match k {
            WireKind::Environment => ErrorKind::Environment,
            WireKind::Usage => ErrorKind::Usage,
            WireKind::Io => ErrorKind::Io,
            WireKind::Lab => ErrorKind::Lab,
        }
    }
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

    fn step(&mut self, message: &str) {
        self.steps += 1;
        self.emit(&Event::Step { message: message.to_owned() });
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
    process: Option<Box<dyn Process>>,
}

/// What a host runs, as the NixOS test double sees it.
#[derive(Default)]
struct HostRuntime {
    generation: Option<String>,
    settings: Option<Settings>,
    activated_ms: Option<f64>,
    k3s_active: bool,
    installed: bool,
    sshd: Option<Box<dyn Process>>,
}

/// One etcd member as the supervisor sees it.
struct MemberView {
    host: usize,
    running: bool,
    pid: Option<i32>,
    status: Result<etcd::Status, String>,
}

/// A host's current link profile: (host index, profile, its name).
type HostProfile = (usize, Profile, String);

pub struct Supervisor {
    sys: Arc<dyn System>,
    dir: PathBuf,
    plan: Arc<LabPlan>,
    opts: LabOptions,
    store: Mutex<StateStore>,
    fabric: ActiveFabric,
    members: Mutex<BTreeMap<usize, Member>>,
    probes: Arc<Probes>,
    profiles: Mutex<Vec<HostProfile>>,
    partitioned: Mutex<bool>,
    /// Writes sent before this (lab clock) are not read back by `Verify`: a restore from a
    /// backup lost them by design.
    verify_floor_ms: Mutex<f64>,
    bringup_ms: f64,
    runtime: Mutex<BTreeMap<usize, HostRuntime>>,
    /// One activation or install at a time per host.
    host_locks: Vec<Mutex<()>>,
    spawner: Spawner,
    /// How the supervisor, the probes and the scenarios reach members: mutual TLS with the
    /// lab's client certificate.
    etcd: etcd::Transport,
    /// The hash of the server token the lab was made with: what a generation that names
    /// no token carries.
    first_token_sha256: String,
}

type SpawnReply = std::sync::mpsc::Sender<Result<Box<dyn Process>, LabError>>;
type SpawnJob = (String, PathBuf, Vec<String>, PathBuf, SpawnReply);

/// Starts the lab's processes from one long-lived thread. A child started with
/// `PR_SET_PDEATHSIG` dies when the *thread* that forked it exits, and requests are served
/// on short-lived threads: a member restarted by an activation must outlive its request.
struct Spawner {
    jobs: Mutex<std::sync::mpsc::Sender<SpawnJob>>,
}

impl Spawner {
    fn new(sys: Arc<dyn System>) -> Spawner {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnJob>();
        std::thread::spawn(move || {
            for (ns, program, args, log, reply) in rx {
                let _ = reply.send(sys.spawn(&ns, &program, &args, &log));
            }
        });
        Spawner { jobs: Mutex::new(tx) }
    }

    fn spawn(&self, ns: &str, program: &Path, args: &[String], log: &Path) -> Result<Box<dyn Process>, LabError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let job = (ns.to_owned(), program.to_path_buf(), args.to_vec(), log.to_path_buf(), tx);
        lock(&self.jobs).send(job).map_err(|_| LabError::NamespaceThread { ns: ns.to_owned() })?;
        rx.recv().map_err(|_| LabError::NamespaceThread { ns: ns.to_owned() })?
    }
}

/// Runs the supervisor of the lab whose directory is `dir`. Returns when the lab is shut
/// down; errors before "ready" are also reported as a `Failed` event.
pub fn supervise(dir: &Path) -> Result<(), LabError> {
    let mut events =
        Events { steps: 0, fault_at: std::env::var(FAULT_ENV).ok().and_then(|v| v.parse().ok()), listening: true };
    raise_open_files_limit();
    match build(Arc::new(system::Linux), dir, &mut events) {
        Ok(Some((sup, listener))) => {
            sup.serve(listener);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => {
            events.emit(&Event::Failed { message: e.to_string(), help: e.help(), kind: e.kind().into() });
            Err(e)
        }
    }
}

/// A big lab holds a namespace handle and a socket per probe: lift the soft limit on open
/// files to the hard one (often 1024 against 524288).
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn build(
    sys: Arc<dyn System>,
    dir: &Path,
    events: &mut Events,
) -> Result<Option<(Supervisor, UnixListener)>, LabError> {
    let epoch = Instant::now();
    // Held while building: `down` waits for a build in progress instead of racing it.
    let dir_lock = LabLock::acquire(dir, true)?;
    let root = dir.parent().unwrap_or(Path::new(crate::plan::STATE_ROOT));
    let cluster = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    let mut store = StateStore::open(root, &cluster)?;
    if !store.exists() {
        // `down` ran between `up` starting us and us taking the lock: there is no lab to build.
        return Ok(None);
    }
    let me = std::process::id() as i32;
    if let Some(other) = &store.state.supervisor {
        if other.pid != me && sys.alive(other) {
            return Err(LabError::AlreadyUp { cluster });
        }
    }
    store.state.supervisor = ProcessRecord::of(me, "supervisor");
    store.save()?;

    let opts = LabOptions::read(dir)?;
    let plan = Arc::new(opts.plan.clone());
    store.state.fabric = Some(opts.fabric);
    store.save()?;
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| LabError::io("create the log directory", e))?;

    build::refuse_foreign(sys.as_ref(), &plan, &store)?;
    let mut step = |m: &str| events.step(m);
    build::neighbour_table(sys.as_ref(), &plan, &mut store, &mut step)?;
    let fabric = match opts.fabric {
        FabricKind::Kernel => {
            build::kernel(sys.as_ref(), &plan, &mut store, &mut step)?;
            ActiveFabric::Kernel(KernelCaps { netem: opts.netem })
        }
        FabricKind::Userspace => ActiveFabric::Userspace(build::userspace(sys.as_ref(), &plan, &mut store, &mut step)?),
    };

    let probes = Probes::new(epoch, Duration::from_millis(opts.probe_interval_ms), plan.agents.len());
    let etcd_transport = crate::tls::lab_client(dir)?.transport()?;
    let first_token_sha256 = crate::generation::token_hash(&crate::hostroot::lab_token(dir)?);
    let profiles: Vec<HostProfile> = plan.hosts.iter().map(|h| (h.index, h.profile, h.profile_name.clone())).collect();
    let sys_for_spawner = sys.clone();
    let sup = Supervisor {
        sys,
        dir: dir.to_path_buf(),
        plan: plan.clone(),
        opts,
        store: Mutex::new(store),
        fabric,
        members: Mutex::new(BTreeMap::new()),
        probes,
        profiles: Mutex::new(Vec::new()),
        partitioned: Mutex::new(false),
        verify_floor_ms: Mutex::new(0.0),
        bringup_ms: 0.0,
        runtime: Mutex::new(BTreeMap::new()),
        host_locks: plan.hosts.iter().map(|_| Mutex::new(())).collect(),
        spawner: Spawner::new(sys_for_spawner),
        etcd: etcd_transport,
        first_token_sha256,
    };
    events.step("applying link profiles");
    sup.set_profiles(profiles)?;
    sup.init_runtime();
    if sup.opts.ssh {
        events.step("making the lab's SSH keys and host roots");
        sup.prepare_hosts()?;
        events.step("starting sshd on every host");
        sup.start_all_sshd()?;
    }

    let mut quorum_ms = 0.0;
    if !sup.opts.empty {
        for &s in &plan.servers {
            events.step(&format!("starting etcd on {}", plan.hosts[s].name));
            sup.start_member(s, false, None)?;
            // One at a time: a new member first asks its peers whether it was bootstrapped
            // already, and a peer that has bound its port but does not serve yet makes it
            // wait a whole election timeout per peer. A member that serves answers at once,
            // and one not started yet refuses at once.
            sup.wait_peer_serving(s, Duration::from_secs(5))?;
        }
        events.step("waiting for etcd quorum");
        sup.wait_quorum(Duration::from_secs(30))?;
        quorum_ms = epoch.elapsed().as_secs_f64() * 1000.0;

        events.step(&format!("starting the probe on {} agent(s)", plan.agents.len()));
        sup.start_probes()?;
        sup.wait_first_writes(Duration::from_secs(30))?;
    }
    let bringup_ms = epoch.elapsed().as_secs_f64() * 1000.0;
    let sup = Supervisor { bringup_ms, ..sup };

    // The control socket listens before "ready", so `up` can return and be followed at once.
    let path = dir.join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| LabError::io(format!("listen on {}", path.display()), e))?;
    drop(dir_lock);
    events.emit(&Event::Ready { bringup_ms, quorum_ms, fabric: sup.opts.fabric });
    events.listening = false;
    Ok(Some((sup, listener)))
}

fn answer(conn: &UnixStream, resp: &Response) {
    let out = serde_json::to_string(resp).unwrap_or_default() + "\n";
    let mut c = conn;
    let _ = c.write_all(out.as_bytes());
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
            .ok_or_else(|| LabError::UnknownHost { host: name.to_owned(), cluster: self.plan.cluster.clone() })
    }

    /// Applies `new` profiles (replacing those of the same hosts) to the fabric.
    fn set_profiles(&self, new: Vec<HostProfile>) -> Result<(), LabError> {
        let mut current = lock(&self.profiles);
        match &self.fabric {
            ActiveFabric::Kernel(caps) => {
                let old: Vec<(usize, Profile)> = current.iter().map(|(h, p, _)| (*h, *p)).collect();
                let mut next = current.clone();
                for n in &new {
                    match next.iter_mut().find(|(h, ..)| *h == n.0) {
                        Some(slot) => *slot = n.clone(),
                        None => next.push(n.clone()),
                    }
                }
                let all: Vec<(usize, Profile)> = next.iter().map(|(h, p, _)| (*h, *p)).collect();
                // Only the hosts that change get qdisc commands; the loss rules are
                // rewritten as a whole from every host's profile.
                let changed: Vec<(usize, Profile)> =
                    new.iter().map(|(h, p, _)| (*h, *p)).filter(|x| !old.contains(x)).collect();
                let mut cmds = fabric::profile_commands(&self.plan, Some(&old), &changed, *caps);
                cmds.nft = fabric::loss_script(&self.plan, &all);
                fabric::apply_profiles(self.sys.as_ref(), &self.plan, &cmds)?;
                *current = next;
            }
            ActiveFabric::Userspace(switches) => {
                for (h, p, _) in &new {
                    for sw in switches {
                        sw.set_egress(&self.plan.hosts[*h].name, impairment(p));
                    }
                }
                for n in new {
                    match current.iter_mut().find(|(h, ..)| *h == n.0) {
                        Some(slot) => *slot = n,
                        None => current.push(n),
                    }
                }
            }
        }
        Ok(())
    }

    /// Starts `host`'s member with the etcd timings of the generation it runs. A member
    /// joining a running cluster gets the `initial_cluster` its `member add` returned.
    /// Where `host`'s member keeps its data: in a lab with SSH, where k3s keeps it on the
    /// host (`/var/lib/rancher/k3s/server/db/etcd` in its root), so a restore's
    /// `rm -rf /var/lib/rancher/k3s/server/db` over SSH really wipes it.
    pub(super) fn data_dir(&self, host: usize) -> PathBuf {
        let h = &self.plan.hosts[host];
        if self.opts.ssh {
            crate::generation::host_root(&self.dir, &h.name).join(crate::hostroot::ETCD_DATA)
        } else {
            self.dir.join("etcd").join(&h.name)
        }
    }

    /// Where `host`'s member keeps its certificates: where k3s keeps them in a lab with
    /// SSH (so `n3x status` reads their expiry over SSH, and k3s's clients on the host
    /// present them), else beside its data.
    pub(super) fn tls_dir(&self, host: usize) -> PathBuf {
        let h = &self.plan.hosts[host];
        if self.opts.ssh {
            crate::generation::host_root(&self.dir, &h.name).join(crate::tls::ETCD_TLS)
        } else {
            self.dir.join("tls").join(&h.name)
        }
    }

    fn start_member(&self, host: usize, existing: bool, initial_cluster: Option<String>) -> Result<(), LabError> {
        let h = &self.plan.hosts[host];
        let data = self.data_dir(host);
        std::fs::create_dir_all(&data).map_err(|e| LabError::io(format!("create {}", data.display()), e))?;
        let tls = crate::tls::ensure_member(&self.dir, &self.tls_dir(host), &h.name, h.cluster_ip)?;
        let log = self.dir.join("logs").join(format!("{}.log", h.name));
        let timings =
            lock(&self.runtime).get(&host).and_then(|r| r.settings.as_ref()).map_or(self.plan.etcd, |s| s.etcd);
        let cluster = initial_cluster.unwrap_or_else(|| self.plan.initial_cluster());
        let args = etcd::args_with_cluster(&self.plan, h, &data, &tls, existing, timings, &cluster);
        let process = self.spawner.spawn(&h.ns, &self.opts.etcd, &args, &log)?;
        if let Some(rec) = ProcessRecord::of(process.pid(), format!("etcd {}", h.name)) {
            lock(&self.store).record_process(rec)?;
        }
        if let Some(mut old) =
            lock(&self.members).insert(host, Member { process: Some(process) }).and_then(|m| m.process)
        {
            old.kill();
        }
        Ok(())
    }

    fn kill_member(&self, host: usize) -> Result<(), LabError> {
        let mut members = lock(&self.members);
        let m =
            members.get_mut(&host).ok_or_else(|| LabError::NotAServer { host: self.plan.hosts[host].name.clone() })?;
        if let Some(mut p) = m.process.take() {
            p.kill();
        }
        Ok(())
    }

    /// Each member's status, asked from inside its own namespace (so a partition between
    /// hosts never hides a member from the supervisor).
    fn member_statuses(&self) -> Vec<MemberView> {
        let timeout = Duration::from_millis(500);
        let mut handles = Vec::new();
        for &s in &self.plan.servers {
            let (running, pid) = lock(&self.members)
                .get_mut(&s)
                .map(|m| match m.process.as_mut() {
                    Some(p) => (p.running(), Some(p.pid())),
                    None => (false, None),
                })
                .unwrap_or((false, None));
            let ip = self.plan.hosts[s].cluster_ip;
            let t = self.etcd.clone();
            let h = system::netns_thread(&self.plan.hosts[s].ns, move || etcd::status(&t, ip, timeout));
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
        let ok: Vec<&etcd::Status> = st.iter().filter_map(|m| m.status.as_ref().ok()).collect();
        let leader_id = ok.first()?.leader;
        if leader_id == 0 || !ok.iter().all(|s| s.leader == leader_id) {
            return None;
        }
        st.iter().find(|m| m.status.as_ref().is_ok_and(|s| s.member_id == leader_id)).map(|m| m.host)
    }

    fn wait_peer_serving(&self, host: usize, timeout: Duration) -> Result<(), LabError> {
        let h = &self.plan.hosts[host];
        let ip = h.cluster_ip;
        let t = self.etcd.clone();
        // A member that never serves is not fatal here: `wait_quorum` decides and explains.
        system::in_netns(&h.ns, move || {
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline && !etcd::peer_serving(&t, ip, Duration::from_millis(200)) {
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
            if let Some(v) = st.iter().find(|v| !v.running && lock(&self.members).contains_key(&v.host)) {
                let host = self.plan.hosts[v.host].name.clone();
                let log = self.dir.join("logs").join(format!("{host}.log"));
                return Err(LabError::MemberExited { host, log });
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
                return Err(LabError::NoQuorum { secs: timeout.as_secs(), detail: detail.join("; ") });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn start_probes(&self) -> Result<(), LabError> {
        let timeout = Duration::from_millis(probe_timeout_ms(&self.plan));
        for (ordinal, &a) in self.plan.agents.iter().enumerate() {
            let (plan, probes, t) = (self.plan.clone(), self.probes.clone(), self.etcd.clone());
            system::netns_thread(&self.plan.hosts[a].ns, move || probe::run(plan, t, ordinal, probes, timeout))?;
        }
        Ok(())
    }

    fn wait_first_writes(&self, timeout: Duration) -> Result<(), LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            let missing = self.probes.without_ack();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let agents = missing.iter().map(|&o| self.plan.hosts[self.plan.agents[o]].name.clone()).collect();
                return Err(LabError::FirstWrites { agents, secs: timeout.as_secs() });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn partition(&self, a: &[String], b: &[String]) -> Result<(), LabError> {
        let ai: Vec<usize> = a.iter().map(|n| self.host_index(n)).collect::<Result<_, _>>()?;
        let bi: Vec<usize> = b.iter().map(|n| self.host_index(n)).collect::<Result<_, _>>()?;
        match &self.fabric {
            ActiveFabric::Kernel(_) => {
                self.sys.nft(&self.plan.fabric_ns, &fabric::partition_script(&self.plan, &ai, &bi))?
            }
            ActiveFabric::Userspace(switches) => {
                let an: Vec<&str> = a.iter().map(String::as_str).collect();
                let bn: Vec<&str> = b.iter().map(String::as_str).collect();
                for sw in switches {
                    sw.partition(&an, &bn);
                }
            }
        }
        *lock(&self.partitioned) = true;
        Ok(())
    }

    fn heal(&self) -> Result<(), LabError> {
        match &self.fabric {
            ActiveFabric::Kernel(_) => self.sys.nft(&self.plan.fabric_ns, &fabric::heal_script())?,
            ActiveFabric::Userspace(switches) => switches.iter().for_each(|s| s.heal()),
        }
        *lock(&self.partitioned) = false;
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
                .ok_or(LabError::NoMemberAnswers)?,
        };
        let writes = self.probes.snapshot(0);
        let floor = *lock(&self.verify_floor_ms);
        let acked: Vec<probe::Write> =
            writes.into_iter().filter(|w| w.acked_ms.is_some() && w.sent_ms >= floor).collect();
        let agents: Vec<String> = self.plan.agents.iter().map(|&a| self.plan.hosts[a].name.clone()).collect();
        let ip = self.plan.hosts[via].cluster_ip;
        let via_name = self.plan.hosts[via].name.clone();
        let t = self.etcd.clone();
        let stored = system::in_netns(&self.plan.hosts[via].ns, move || {
            let mut all = BTreeMap::new();
            for a in agents {
                for (k, v) in etcd::range_prefix(&t, ip, &probe::prefix(&a), Duration::from_secs(10))? {
                    all.insert(k, v);
                }
            }
            Ok::<_, etcd::EtcdError>(all)
        })?
        .map_err(|e| LabError::ReadBack { via: via_name.clone(), message: e.to_string() })?;
        let mut lost = Vec::new();
        let mut mismatched = Vec::new();
        for w in &acked {
            match stored.get(&w.key()) {
                None => lost.push(w.key()),
                Some(v) if *v != w.value => mismatched.push(w.key()),
                Some(_) => {}
            }
        }
        Ok(VerifyResult { via: via_name, acked: acked.len(), lost, mismatched })
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
        let profiles = lock(&self.profiles).clone();
        let runtime = lock(&self.runtime);
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
                    role: match h.role {
                        LabRole::Server => "server",
                        LabRole::Agent => "agent",
                        LabRole::Operator => "operator",
                    }
                    .into(),
                    namespace: h.ns.clone(),
                    profile: profiles
                        .iter()
                        .find(|(i, ..)| *i == h.index)
                        .map_or_else(|| h.profile_name.clone(), |p| p.2.clone()),
                    addresses: h.ifaces.iter().map(|i| format!("{} {}/{}", i.network, i.address, i.prefix)).collect(),
                    member: members.get(&h.index).cloned(),
                    generation: runtime.get(&h.index).and_then(|r| r.generation.clone()),
                    settings: runtime.get(&h.index).and_then(|r| r.settings.clone()),
                    activated_ms: runtime.get(&h.index).and_then(|r| r.activated_ms),
                    k3s_active: runtime.get(&h.index).is_some_and(|r| r.k3s_active),
                    installed: runtime.get(&h.index).is_some_and(|r| r.installed),
                })
                .collect(),
            leader,
            partitioned: *lock(&self.partitioned),
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
                let i = self.host_index(&host)?;
                if !self.plan.hosts[i].is_server() {
                    return Err(LabError::NotAServer { host });
                }
                self.start_member(i, true, None)?;
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
                self.set_profiles(idx.into_iter().map(|h| (h, profile, profile_name.clone())).collect())?;
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
            Request::Settle { before_ms } => {
                let mut f = lock(&self.verify_floor_ms);
                *f = f.max(before_ms);
                drop(f);
                ok(self)
            }
            Request::Activate { host, generation, settings } => {
                self.activate(self.inventory_host(&host)?, generation, *settings)?;
                ok(self)
            }
            Request::Install { host, host_key } => {
                self.install(self.inventory_host(&host)?, host_key.as_deref())?;
                ok(self)
            }
            Request::K3s { host, run } => {
                self.k3s_unit(self.inventory_host(&host)?, run)?;
                ok(self)
            }
            Request::ClusterReset { host, snapshot } => {
                self.cluster_reset(self.inventory_host(&host)?, &snapshot)?;
                ok(self)
            }
            Request::RotateToken { host, new } => {
                self.rotate_token(self.inventory_host(&host)?, &new)?;
                ok(self)
            }
            Request::Destroy { host } => {
                self.destroy(self.inventory_host(&host)?)?;
                ok(self)
            }
            Request::Shutdown => ok(self),
        }
    }

    /// Answers requests, each on its own thread (an activation restarting a member must
    /// not hold up the status a gate or a scenario asks for meanwhile), until `Shutdown`.
    fn serve(self, listener: UnixListener) {
        std::thread::scope(|sc| {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut line = String::new();
                if BufReader::new(&conn).read_line(&mut line).is_err() {
                    continue;
                }
                match serde_json::from_str::<Request>(&line) {
                    Ok(Request::Shutdown) => {
                        answer(&conn, &Response::Ok { at_ms: self.now_ms() });
                        break;
                    }
                    Ok(req) => {
                        let me = &self;
                        sc.spawn(move || {
                            let resp = me.handle(req).unwrap_or_else(|e| Response::Error { message: e.to_string() });
                            answer(&conn, &resp);
                        });
                    }
                    Err(e) => answer(&conn, &Response::Error { message: format!("bad request: {e}") }),
                }
            }
            self.probes.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        self.stop();
    }

    /// Stops the probes, the members and the hosts' sshd. Namespaces stay: `down` removes them.
    fn stop(self) {
        self.probes.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for member in lock(&self.members).values_mut() {
            if let Some(mut p) = member.process.take() {
                p.kill();
            }
        }
        for rt in lock(&self.runtime).values_mut() {
            if let Some(mut p) = rt.sshd.take() {
                p.kill();
            }
        }
        if let ActiveFabric::Userspace(switches) = self.fabric {
            switches.into_iter().for_each(n3x_switch::Switch::shutdown);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::system::fake::{Call, Fake};

    /// A supervisor of the reference lab on the kernel fabric (no netem), built on the fake.
    fn supervisor(sys: &Fake) -> (tempfile::TempDir, Supervisor) {
        let dir = tempfile::tempdir().unwrap();
        let plan = crate::plan::reference();
        let opts = LabOptions {
            fabric: FabricKind::Kernel,
            netem: false,
            etcd: "/usr/bin/etcd".into(),
            probe_interval_ms: 100,
            plan: plan.clone(),
            ssh: false,
            empty: false,
            n3x: None,
            k3s_version: "v1.31".into(),
        };
        let store = StateStore::open(dir.path(), "n3x").unwrap();
        let sup = Supervisor {
            sys: Arc::new(sys.clone()),
            dir: dir.path().join("n3x"),
            plan: Arc::new(plan.clone()),
            opts,
            store: Mutex::new(store),
            fabric: ActiveFabric::Kernel(KernelCaps { netem: false }),
            members: Mutex::new(BTreeMap::new()),
            probes: Probes::new(Instant::now(), Duration::from_millis(100), plan.agents.len()),
            profiles: Mutex::new(Vec::new()),
            partitioned: Mutex::new(false),
            verify_floor_ms: Mutex::new(0.0),
            bringup_ms: 0.0,
            runtime: Mutex::new(BTreeMap::new()),
            host_locks: plan.hosts.iter().map(|_| Mutex::new(())).collect(),
            spawner: Spawner::new(Arc::new(sys.clone())),
            etcd: etcd::Transport::Plain,
            first_token_sha256: String::new(),
        };
        (dir, sup)
    }

    fn tc_namespaces(calls: &[Call]) -> Vec<String> {
        calls.iter().filter_map(|c| if let Call::Tc(ns, _) = c { Some(ns.clone()) } else { None }).collect()
    }

    #[test]
    fn profile_changes_touch_only_the_hosts_that_change() {
        let sys = Fake::new();
        let (_d, sup) = supervisor(&sys);
        let initial: Vec<HostProfile> =
            sup.plan.hosts.iter().map(|h| (h.index, h.profile, h.profile_name.clone())).collect();
        sup.set_profiles(initial).unwrap();
        // The two Jetsons (edge: 10 Mbit/s, 2% loss) get a tbf per interface; nobody else.
        let calls = sys.calls();
        assert_eq!(
            tc_namespaces(&calls),
            ["n3x-n3x-jetson-1"; 2].iter().chain(&["n3x-n3x-jetson-2"; 2]).map(|s| s.to_string()).collect::<Vec<_>>()
        );
        assert!(matches!(calls.last(), Some(Call::Nft(ns, s)) if ns == "n3x-n3x" && s.matches("numgen").count() == 4));
        // One server slowed: only its interfaces; the loss rules still hold every host's.
        let n1 = sup.plan.host("n100-1").unwrap().index;
        let slow = n3x_model::model::Profile { rate_mbit: Some(10.0), ..Default::default() };
        sup.handle(Request::Impair { hosts: vec!["n100-1".into()], profile_name: "slow".into(), profile: slow })
            .unwrap();
        let later = &sys.calls()[calls.len()..];
        assert_eq!(tc_namespaces(later), ["n3x-n3x-n100-1", "n3x-n3x-n100-1"]);
        assert!(matches!(later.last(), Some(Call::Nft(_, s)) if s.matches("numgen").count() == 4));
        assert_eq!(lock(&sup.profiles).iter().find(|p| p.0 == n1).unwrap().2, "slow");
        // Back to default: its qdiscs are deleted, and only its.
        let n = sys.calls().len();
        sup.handle(Request::Impair {
            hosts: vec!["n100-1".into()],
            profile_name: "default".into(),
            profile: Default::default(),
        })
        .unwrap();
        let back = &sys.calls()[n..];
        assert!(
            back.iter()
                .filter(|c| matches!(c, Call::Tc(..)))
                .all(|c| matches!(c, Call::Tc(ns, a) if ns == "n3x-n3x-n100-1" && a[1] == "del"))
        );
        // Delay needs netem, which this kernel fabric lacks: refused, nothing changed.
        let n = sys.calls().len();
        let delay = n3x_model::model::Profile { delay_ms: Some(5.0), ..Default::default() };
        let e = sup.handle(Request::Impair { hosts: vec!["n100-2".into()], profile_name: "x".into(), profile: delay });
        assert!(matches!(e, Err(LabError::Unsupported { .. })));
        assert_eq!(sys.calls().len(), n);
    }

    #[test]
    fn requests_name_what_is_wrong() {
        let sys = Fake::new();
        let (_d, sup) = supervisor(&sys);
        let e = sup.handle(Request::Kill { host: "nope".into() }).unwrap_err();
        assert_eq!(e.to_string(), "`nope` is not a host of lab `n3x`");
        let e = sup.handle(Request::Kill { host: "jetson-1".into() }).unwrap_err();
        assert!(matches!(e, LabError::NotAServer { .. }), "{e}");
        let e = sup.handle(Request::Start { host: "jetson-2".into() }).unwrap_err();
        assert!(matches!(e, LabError::NotAServer { .. }), "{e}");
        // Partition and heal go to the fabric's nftables, and the status follows.
        sup.handle(Request::Partition { a: vec!["n100-1".into()], b: vec!["n100-2".into()] }).unwrap();
        assert!(*lock(&sup.partitioned));
        sup.handle(Request::Heal).unwrap();
        assert!(!*lock(&sup.partitioned));
        let nft: Vec<String> =
            sys.calls().iter().filter_map(|c| if let Call::Nft(_, s) = c { Some(s.clone()) } else { None }).collect();
        assert!(nft[0].starts_with("add element bridge n3x cut"), "{nft:?}");
        assert_eq!(nft[1], "flush set bridge n3x cut\n");
    }
}
