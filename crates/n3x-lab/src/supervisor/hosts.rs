//! The hosts as the NixOS test double runs them (labs with SSH): their roots and sshd,
//! their generation, activation (`switch-to-configuration`) and installation
//! (`nixos-anywhere`), asked for by the doubles over the control socket.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{HostRuntime, Supervisor};
use crate::error::LabError;
use crate::generation::{self, Fault, Settings};
use crate::hostroot::{self, SshFiles};
use crate::plan::LabRole;
use crate::state::{ProcessRecord, lock};
use crate::{etcd, system};

/// Removes `dir` and everything in it; one that does not exist is already wiped.
fn wipe(dir: &Path) -> Result<(), LabError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LabError::io(format!("wipe {}", dir.display()), e)),
        _ => Ok(()),
    }
}

/// What k3s says when started with a token its bootstrap data was not encrypted with.
const TOKEN_REFUSED: &str =
    "k3s: starting kubernetes: preparing server: bootstrap data already found and encrypted with different token";

/// The hosts as the NixOS test double runs them: their roots and sshd, their generation,
/// activation (`switch-to-configuration`) and installation (`nixos-anywhere`).
impl Supervisor {
    pub(super) fn inventory_host(&self, name: &str) -> Result<usize, LabError> {
        let i = self.host_index(name)?;
        if self.plan.hosts[i].role == LabRole::Operator {
            return Err(LabError::UnknownHost { host: name.to_owned(), cluster: self.plan.cluster.clone() });
        }
        Ok(i)
    }

    pub(super) fn init_runtime(&self) {
        let installed = !self.opts.empty;
        let mut rt = lock(&self.runtime);
        for h in self.plan.inventory_hosts() {
            let settings = installed.then(|| Settings::of(&self.plan, h, &self.opts.k3s_version));
            let generation = if self.opts.ssh { settings.as_ref().map(Settings::store_path) } else { None };
            rt.insert(
                h.index,
                HostRuntime { generation, settings, activated_ms: None, k3s_active: installed, installed, sshd: None },
            );
        }
    }

    pub(super) fn prepare_hosts(&self) -> Result<(), LabError> {
        let exe = match &self.opts.n3x {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(|e| LabError::io("find the n3x binary", e))?,
        };
        hostroot::install_binary(&self.dir, &exe)?;
        let files = SshFiles::of(&self.dir);
        let operator_key = hostroot::make_keys(&self.plan, &files)?;
        let rt = lock(&self.runtime);
        for h in self.plan.inventory_hosts() {
            let first = rt.get(&h.index).and_then(|r| r.settings.clone());
            hostroot::prepare(&self.dir, &self.plan, h, &operator_key, &files.host_key(&h.name), first.as_ref())?;
            if h.is_server() && first.is_some() {
                hostroot::write_server_token(&self.dir, &h.name)?;
            }
        }
        hostroot::backup_key(&self.dir)?;
        Ok(())
    }

    /// Starts (or restarts, as a reboot does) `host`'s sshd in its own root.
    fn start_sshd(&self, host: usize) -> Result<(), LabError> {
        let h = &self.plan.hosts[host];
        let log = self.dir.join("logs").join(format!("{}.sshd.log", h.name));
        if let Some(mut old) = lock(&self.runtime).get_mut(&host).and_then(|r| r.sshd.take()) {
            old.kill();
        }
        let p = self.spawner.spawn(&h.ns, &self.dir.join("bin/n3x"), &hostroot::init_args(&self.dir, &h.name), &log)?;
        if let Some(rec) = ProcessRecord::of(p.pid(), format!("sshd {}", h.name)) {
            lock(&self.store).record_process(rec)?;
        }
        lock(&self.runtime).entry(host).or_default().sshd = Some(p);
        Ok(())
    }

    pub(super) fn start_all_sshd(&self) -> Result<(), LabError> {
        let hosts: Vec<usize> = self.plan.inventory_hosts().map(|h| h.index).collect();
        for &h in &hosts {
            self.start_sshd(h)?;
        }
        hosts.iter().try_for_each(|&h| self.wait_sshd(h, Duration::from_secs(10)))
    }

    /// Waits until `host`'s sshd accepts connections on its cluster address.
    fn wait_sshd(&self, host: usize, timeout: Duration) -> Result<(), LabError> {
        let h = &self.plan.hosts[host];
        let addr = std::net::SocketAddr::from((h.cluster_ip, 22));
        let up = system::in_netns(&h.ns, move || {
            let deadline = Instant::now() + timeout;
            loop {
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return true;
                }
                if Instant::now() > deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })?;
        if up {
            Ok(())
        } else {
            Err(LabError::SshdDown {
                host: h.name.clone(),
                log: self.dir.join("logs").join(format!("{}.sshd.log", h.name)),
            })
        }
    }

    /// `switch-to-configuration`: the host now runs `generation`. A server's k3s restart
    /// is its etcd member stopped hard (SIGKILL: no leadership hand-over of its own, so
    /// what the deployer does first is what counts) and started with the new timings.
    pub(super) fn activate(&self, host: usize, generation: String, settings: Settings) -> Result<(), LabError> {
        let _one_at_a_time = lock(&self.host_locks[host]);
        if !lock(&self.runtime).get(&host).is_some_and(|r| r.installed) {
            return Err(LabError::NotInstalled { host: self.plan.hosts[host].name.clone() });
        }
        // A server whose generation carries a token the cluster does not know: k3s refuses
        // to start (its bootstrap data is encrypted with the cluster's token).
        let refused = self.plan.hosts[host].is_server() && !self.token_is_the_clusters(&settings)?;
        if refused {
            self.log_line(host, TOKEN_REFUSED);
        }
        let carries_token = settings.token_sha256.is_some();
        let broken = settings.fault == Fault::BreakServices || refused;
        {
            let mut rt = lock(&self.runtime);
            let r = rt.entry(host).or_default();
            r.generation = Some(generation);
            r.settings = Some(settings);
            r.activated_ms = Some(self.now_ms());
            r.k3s_active = false;
        }
        if self.plan.hosts[host].is_server() {
            self.stop_member(host);
            if !broken {
                self.start_member(host, true, None)?;
                self.wait_peer_serving(host, Duration::from_secs(10))?;
                if carries_token {
                    // k3s writes the token it started with where it keeps it.
                    hostroot::write_server_token(&self.dir, &self.plan.hosts[host].name)?;
                }
            }
        }
        lock(&self.runtime).entry(host).or_default().k3s_active = !broken;
        Ok(())
    }

    /// Whether `settings`' server token is the cluster's now (none: the lab's first token).
    fn token_is_the_clusters(&self, settings: &Settings) -> Result<bool, LabError> {
        let want = settings.token_sha256.as_deref().unwrap_or(&self.first_token_sha256);
        Ok(generation::token_hash(&hostroot::lab_token(&self.dir)?) == want)
    }

    /// Appends `line` to the host's service log (what `n3x lab logs HOST` shows).
    fn log_line(&self, host: usize, line: &str) {
        use std::io::Write;
        let log = self.dir.join("logs").join(format!("{}.log", self.plan.hosts[host].name));
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{line}");
        }
    }

    /// `k3s token rotate` on `host`: the cluster's server token becomes `new` (k3s
    /// re-encrypts its bootstrap data with it). Every server must then restart with it.
    pub(super) fn rotate_token(&self, host: usize, new: &str) -> Result<(), LabError> {
        let h = &self.plan.hosts[host];
        if !h.is_server() || !lock(&self.runtime).get(&host).is_some_and(|r| r.k3s_active) {
            return Err(LabError::Command {
                command: format!("k3s token rotate on {}", h.name),
                stderr: "the API server at 127.0.0.1:6443 does not answer (k3s is not running here)".into(),
            });
        }
        hostroot::set_lab_token(&self.dir, new)?;
        // k3s rewrites the token file of the server the rotation ran on.
        hostroot::write_server_token(&self.dir, &h.name)
    }

    fn stop_member(&self, host: usize) {
        if let Some(mut p) = lock(&self.members).get_mut(&host).and_then(|m| m.process.take()) {
            p.kill();
        }
    }

    /// `nixos-anywhere`: the host's disk is wiped and NixOS installed with its first
    /// generation; it "reboots" with the host key from the extra files; a server's member
    /// joins the cluster.
    pub(super) fn install(&self, host: usize, host_key: Option<&Path>) -> Result<(), LabError> {
        let _one_at_a_time = lock(&self.host_locks[host]);
        let h = &self.plan.hosts[host];
        let root = generation::host_root(&self.dir, &h.name);
        self.stop_member(host);
        wipe(&root.join("nix/var/nix/profiles"))?;
        wipe(&root.join("var/lib"))?;
        if h.is_server() {
            hostroot::write_server_token(&self.dir, &h.name)?;
        }
        if let Some(k) = host_key {
            hostroot::set_host_key(&root, k)?;
        }
        let mut settings = Settings::of(&self.plan, h, &self.opts.k3s_version);
        // A server installed after a token rotation carries the cluster's token now (a real
        // install builds from the current secrets).
        let token = generation::token_hash(&hostroot::lab_token(&self.dir)?);
        if h.is_server() && token != self.first_token_sha256 {
            settings.token_sha256 = Some(token);
        }
        let path = generation::write(&root.join("nix/store"), &settings)?;
        generation::install_first(&root, &path)?;
        {
            let mut rt = lock(&self.runtime);
            let r = rt.entry(host).or_default();
            *r = HostRuntime {
                generation: Some(path),
                settings: Some(settings),
                activated_ms: Some(self.now_ms()),
                k3s_active: false,
                installed: true,
                sshd: r.sshd.take(),
            };
        }
        if self.opts.ssh {
            self.start_sshd(host)?;
            self.wait_sshd(host, Duration::from_secs(10))?;
        }
        if h.is_server() {
            self.join_member(host, true)?;
        } else if let Some(ordinal) = self.plan.agents.iter().position(|&a| a == host) {
            self.probes.set_gone(ordinal, false);
        }
        lock(&self.runtime).entry(host).or_default().k3s_active = true;
        Ok(())
    }

    fn set_k3s_active(&self, host: usize, active: bool) {
        lock(&self.runtime).entry(host).or_default().k3s_active = active;
    }

    /// `systemctl stop|start k3s`. A server's start runs its member on its data, or, when
    /// that was wiped, joins it to the running members as a new one (k3s joins through
    /// the server URL the same way).
    pub(super) fn k3s_unit(&self, host: usize, run: bool) -> Result<(), LabError> {
        let _one_at_a_time = lock(&self.host_locks[host]);
        if !run {
            self.stop_member(host);
            self.set_k3s_active(host, false);
            return Ok(());
        }
        if self.plan.hosts[host].is_server() {
            let settings = lock(&self.runtime).get(&host).and_then(|r| r.settings.clone());
            let refused = match settings {
                Some(s) => !self.token_is_the_clusters(&s)?,
                None => false,
            };
            if refused {
                self.log_line(host, TOKEN_REFUSED);
                return Err(LabError::Command {
                    command: format!("k3s server on {}", self.plan.hosts[host].name),
                    stderr: TOKEN_REFUSED.into(),
                });
            }
            if self.data_dir(host).join("member").is_dir() {
                self.start_member(host, true, None)?;
                self.wait_peer_serving(host, Duration::from_secs(10))?;
            } else {
                self.join_member(host, false)?;
            }
        }
        self.set_k3s_active(host, true);
        Ok(())
    }

    /// `k3s server --cluster-reset --cluster-reset-restore-path=FILE`: the member's data
    /// becomes a cluster of one restored from the snapshot (`etcdctl snapshot restore`,
    /// which checks the snapshot's own sha256). k3s must be stopped, as on a real server
    /// (its ports would be taken).
    pub(super) fn cluster_reset(&self, host: usize, snapshot: &str) -> Result<(), LabError> {
        let _one_at_a_time = lock(&self.host_locks[host]);
        let h = &self.plan.hosts[host];
        if !h.is_server() {
            return Err(LabError::NotAServer { host: h.name.clone() });
        }
        if lock(&self.members).get_mut(&host).and_then(|m| m.process.as_mut()).is_some_and(|p| p.running()) {
            return Err(LabError::Command {
                command: format!("k3s server --cluster-reset on {}", h.name),
                stderr: "k3s is running: stop it first (`systemctl stop k3s`)".into(),
            });
        }
        let file = generation::host_root(&self.dir, &h.name).join(snapshot.trim_start_matches('/'));
        let data = self.data_dir(host);
        wipe(&data)?;
        let etcdctl = self.opts.etcd.with_file_name("etcdctl");
        let etcdctl = if etcdctl.is_file() { etcdctl } else { "etcdctl".into() };
        let peer = h.etcd_peer_url();
        let out = std::process::Command::new(&etcdctl)
            .env("ETCDCTL_API", "3")
            .arg("snapshot")
            .arg("restore")
            .arg(&file)
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--name={}", h.name))
            .arg(format!("--initial-cluster={}={peer}", h.name))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster-token=n3x-lab-{}", self.plan.cluster))
            .output()
            .map_err(|e| LabError::io(format!("run {}", etcdctl.display()), e))?;
        if !out.status.success() {
            return Err(LabError::Command {
                command: format!("etcdctl snapshot restore {}", file.display()),
                stderr: String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default().to_owned(),
            });
        }
        Ok(())
    }

    /// The host is lost: a server's member killed and its data wiped; an agent's k3s state
    /// (`/var/lib`) wiped and its workload (the probe) stopped until it is installed again,
    /// as a failed board would be replaced. Its sshd keeps answering: the new board's
    /// installer is what `n3x install` reaches.
    pub(super) fn destroy(&self, host: usize) -> Result<(), LabError> {
        let _one_at_a_time = lock(&self.host_locks[host]);
        if self.plan.hosts[host].is_server() {
            self.stop_member(host);
            wipe(&self.data_dir(host))?;
        } else {
            let root = generation::host_root(&self.dir, &self.plan.hosts[host].name);
            if let Some(ordinal) = self.plan.agents.iter().position(|&a| a == host) {
                self.probes.set_gone(ordinal, true);
            }
            wipe(&root.join("var/lib"))?;
            lock(&self.runtime).entry(host).or_default().installed = false;
        }
        self.set_k3s_active(host, false);
        Ok(())
    }

    /// A k3s server joining: the first one (when `may_bootstrap`, as at install) starts a
    /// cluster of one; the next ones are added through a running member (`member add`) and
    /// start with the members it names.
    fn join_member(&self, host: usize, may_bootstrap: bool) -> Result<(), LabError> {
        self.stop_member(host);
        let h = &self.plan.hosts[host];
        wipe(&self.data_dir(host))?;
        let via = self.member_statuses().into_iter().find(|m| m.host != host && m.status.is_ok()).map(|m| m.host);
        let Some(via) = via else {
            if !may_bootstrap {
                return Err(LabError::Command {
                    command: format!("k3s joining {} to the cluster", h.name),
                    stderr: "no other server's etcd member answers".into(),
                });
            }
            self.start_member(host, false, Some(format!("{}={}", h.name, h.etcd_peer_url())))?;
            return self.wait_peer_serving(host, Duration::from_secs(10));
        };
        let v = &self.plan.hosts[via];
        let (ip, peer, name) = (v.cluster_ip, h.etcd_peer_url(), h.name.clone());
        // etcd refuses a new voting member until the members have been connected for a few
        // seconds ("unhealthy cluster"); k3s retries its join, and so does this.
        let deadline = Instant::now() + Duration::from_secs(30);
        let members = loop {
            let (peer, tr) = (peer.clone(), self.etcd.clone());
            let r = system::in_netns(&v.ns, move || {
                let t = Duration::from_secs(5);
                let add = n3x_etcd::member_add_body(std::slice::from_ref(&peer));
                etcd::call(&tr, ip, n3x_etcd::MEMBER_ADD, &add, t).and_then(|b| Ok(n3x_etcd::parse_added(&b)?))?;
                let list = etcd::call(&tr, ip, n3x_etcd::MEMBER_LIST, "{}", t)?;
                Ok::<_, etcd::EtcdError>(n3x_etcd::parse_members(&list)?)
            })?;
            match r {
                Ok(m) => break m,
                Err(e) if e.to_string().contains("unhealthy cluster") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => {
                    return Err(LabError::Command {
                        command: format!("etcd member add via {}", v.name),
                        stderr: e.to_string(),
                    });
                }
            }
        };
        let cluster: Vec<String> = members
            .iter()
            .filter_map(|m| {
                let n = if m.name.is_empty() { name.clone() } else { m.name.clone() };
                Some(format!("{n}={}", m.peer_urls.first()?))
            })
            .collect();
        self.start_member(host, true, Some(cluster.join(",")))?;
        self.wait_peer_serving(host, Duration::from_secs(10))
    }
}
