//! `n3x install`: NixOS onto new machines with nixos-anywhere, in the order an etcd
//! cluster can grow: the init server first and waited for, then the other servers one at
//! a time (a stale member of the same host removed first), then the agents. Each host gets
//! its SSH host key (made by `n3x secrets add-host --generate`) through `--extra-files`,
//! so sops-nix can decrypt its token on first boot; the key is then pinned in known_hosts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use n3x_remote::Remote;
use serde::Serialize;

use crate::error::DeployError;
use crate::observe::{Ask, ClusterView, is_member_of};
use crate::{ClusterSpec, Event, Events, HostSpec, Phase, gate};

/// The host key inside an extra-files tree (where sops-nix looks by default).
pub const HOST_KEY: &str = "etc/ssh/ssh_host_ed25519_key";

/// Where a host's extra-files tree is (by host name).
pub type ExtraFiles = std::sync::Arc<dyn Fn(&str) -> Option<PathBuf> + Send + Sync>;

#[derive(Clone)]
pub struct InstallOptions {
    /// The nixos-anywhere command (`nixos-anywhere`; the lab's double in a rehearsal).
    pub program: Vec<String>,
    pub flake: String,
    /// The extra-files tree of a host.
    pub extra_files: ExtraFiles,
    /// Where host keys are pinned.
    pub known_hosts: PathBuf,
    /// Print what would run; run nothing.
    pub dry_run: bool,
    pub command_timeout: Duration,
    /// How long one host may take to install and pass its gates.
    pub host_timeout: Duration,
    pub gate_interval: Duration,
}

impl InstallOptions {
    /// nixos-anywhere from PATH; 30 s per remote command, 30 min per host, gates every 2 s.
    pub fn new(flake: String, extra_files: ExtraFiles, known_hosts: PathBuf) -> InstallOptions {
        InstallOptions {
            program: vec!["nixos-anywhere".into()],
            flake,
            extra_files,
            known_hosts,
            dry_run: false,
            command_timeout: Duration::from_secs(30),
            host_timeout: Duration::from_secs(1800),
            gate_interval: Duration::from_secs(2),
        }
    }
}

/// The user's known_hosts, where `ssh` looks: `~/.ssh/known_hosts`. `env` is
/// `std::env::var_os` in the binary.
pub fn default_known_hosts(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    env("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".ssh/known_hosts"))
}

/// The hosts in install order: the init server, the other servers, then the agents (each
/// group in name order, as the user listed them otherwise).
pub fn order<'a>(selected: &[&'a HostSpec]) -> Vec<&'a HostSpec> {
    let mut v: Vec<&HostSpec> = selected.to_vec();
    v.sort_by_key(|h| (!h.init, !h.server, h.name.clone()));
    v.dedup_by_key(|h| h.name.clone());
    v
}

/// nixos-anywhere's command line for `host`. Jetsons cannot kexec reliably: they are
/// booted into an installer (after flashing with jetpack-nixos) and skip the kexec phase.
pub fn argv(program: &[String], flake: &str, host: &HostSpec, extra_files: &Path) -> Vec<String> {
    let mut a = program.to_vec();
    a.extend(["--flake".into(), format!("{flake}#{}", host.name)]);
    a.extend(["--target-host".into(), host.dest.clone()]);
    a.extend(["--extra-files".into(), extra_files.display().to_string()]);
    if host.jetson {
        a.extend(["--phases".into(), "disko,install,reboot".into()]);
    }
    a
}

/// An extra-files tree as nixos-anywhere copies it: (path, mode), files and directories.
pub fn tree(root: &Path) -> std::io::Result<Vec<(String, u32)>> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let md = e.metadata()?;
            let rel = e.path().strip_prefix(root).map(|p| p.display().to_string()).unwrap_or_default();
            let kind = if md.is_dir() { "/" } else { "" };
            out.push((format!("{rel}{kind}"), md.permissions().mode() & 0o7777));
            if md.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `known_hosts` with every line for `name` replaced by `name key` (written atomically).
pub fn pin(known_hosts: &Path, name: &str, public_key: &str) -> Result<(), DeployError> {
    let err = |e: std::io::Error| DeployError::Journal { path: known_hosts.to_owned(), detail: e.to_string() };
    let old = match std::fs::read_to_string(known_hosts) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(err(e)),
    };
    let key: Vec<&str> = public_key.split_whitespace().take(2).collect();
    let mut out: String = old
        .lines()
        .filter(|l| l.split_whitespace().next().is_none_or(|names| !names.split(',').any(|n| n == name)))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!("{name} {}\n", key.join(" ")));
    if let Some(dir) = known_hosts.parent() {
        n3x_fs::create_dir_all(dir, 0o700).map_err(err)?;
    }
    n3x_fs::write(known_hosts, out.as_bytes(), Some(0o644)).map_err(err)
}

#[derive(Clone, Debug, Serialize)]
pub struct Installed {
    pub host: String,
    pub argv: Vec<String>,
    /// A stale etcd member of the host, removed first.
    pub removed_member: Option<String>,
    pub seconds: f64,
}

fn step(events: &mut Events<'_>, host: &str, phase: Phase, message: impl Into<String>) {
    events(Event::Step { host: Some(host.to_owned()), phase, message: message.into() });
}

/// Installs `names` (all hosts when empty) in order.
pub fn install(
    spec: &ClusterSpec,
    names: &[String],
    remote: &dyn Remote,
    opts: &InstallOptions,
    mut events: Events<'_>,
) -> Result<Vec<Installed>, DeployError> {
    let ask = Ask { remote, timeout: opts.command_timeout };
    let selected = spec.select(names)?;
    let hosts = order(&selected);
    // Every host's key first: stop before anything is installed.
    let mut trees = Vec::new();
    for h in &hosts {
        let dir = (opts.extra_files)(&h.name).unwrap_or_default();
        let key = dir.join(HOST_KEY);
        if !key.is_file() || !key.with_extension("pub").is_file() {
            return Err(DeployError::MissingHostKey { host: h.name.clone(), path: key });
        }
        trees.push(dir);
    }
    let mut done = Vec::new();
    for (h, dir) in hosts.iter().zip(&trees) {
        let started = Instant::now();
        let argv = argv(&opts.program, &opts.flake, h, dir);
        if opts.dry_run {
            done.push(Installed { host: h.name.clone(), argv, removed_member: None, seconds: 0.0 });
            continue;
        }
        let removed_member = if h.server && !h.init { remove_stale_member(ask, spec, h, &mut events)? } else { None };
        step(&mut events, &h.name, Phase::Install, format!("running {}", n3x_remote::shell_line(&argv)));
        run_local(&argv, opts.host_timeout)?;
        let public = std::fs::read_to_string(dir.join(HOST_KEY).with_extension("pub"))
            .map_err(|e| DeployError::Journal { path: dir.join(HOST_KEY), detail: e.to_string() })?;
        step(&mut events, &h.name, Phase::Pin, format!("pinning its host key in {}", opts.known_hosts.display()));
        pin(&opts.known_hosts, &n3x_remote::host_part(&h.dest), &public)?;
        step(&mut events, &h.name, Phase::Gates, "waiting for sshd, k3s, the node and its etcd member");
        let deadline = Instant::now() + opts.host_timeout;
        if let Err(reasons) = gate::wait(ask, spec, h, deadline, opts.gate_interval) {
            return Err(DeployError::Unexpected {
                host: h.name.clone(),
                what: "the new installation".into(),
                detail: format!("not healthy within {} s: {}", opts.host_timeout.as_secs(), reasons.join("; ")),
            });
        }
        events(Event::Host {
            host: h.name.clone(),
            outcome: format!("installed in {:.1} s", started.elapsed().as_secs_f64()),
        });
        done.push(Installed { host: h.name.clone(), argv, removed_member, seconds: started.elapsed().as_secs_f64() });
    }
    Ok(done)
}

/// A reinstalled server would join next to its own old member: remove that first.
fn remove_stale_member(
    ask: Ask<'_>,
    spec: &ClusterSpec,
    host: &HostSpec,
    events: &mut Events<'_>,
) -> Result<Option<String>, DeployError> {
    let view = ClusterView::ask(ask, spec);
    let via =
        view.statuses.iter().find(|(h, s)| h.name != host.name && s.is_ok()).map(|(h, _)| *h).ok_or_else(|| {
            DeployError::Refused {
                reasons: vec![format!("no server's etcd member answers, so `{}` has no cluster to join", host.name)],
            }
        })?;
    let members = ask.members(via)?;
    let Some(stale) = members.iter().find(|m| is_member_of(m, host)) else { return Ok(None) };
    step(events, &host.name, Phase::Install, format!("removing its stale etcd member {:x} via {}", stale.id, via.name));
    ask.etcd(
        via,
        "removing a stale etcd member",
        n3x_etcd::MEMBER_REMOVE,
        &n3x_etcd::member_remove_body(stale.id),
        n3x_etcd::parse_ok,
    )?;
    Ok(Some(format!("{:x}", stale.id)))
}

/// Runs a local command with its output passed through, killed past `timeout`.
fn run_local(argv: &[String], timeout: Duration) -> Result<(), DeployError> {
    let tool = |detail: String| DeployError::Tool { command: argv.join(" "), detail };
    let mut child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| tool(format!("cannot start it: {e}")))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(tool(format!("it exited with {st}"))),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(tool(format!("it took longer than {} s", timeout.as_secs())));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(tool(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The exact nixos-anywhere command line of every reference host, and the tree its
    /// `--extra-files` carries.
    #[test]
    fn golden_nixos_anywhere_argv_per_reference_host() {
        let spec = crate::testing::reference();
        let all: Vec<&HostSpec> = spec.hosts.iter().collect();
        let program = vec!["nixos-anywhere".to_string()];
        let lines: Vec<String> = order(&all)
            .iter()
            .map(|h| {
                let dir = PathBuf::from(format!("/home/ops/.local/share/n3x/n3x/extra-files/{}", h.name));
                argv(&program, ".", h, &dir).join(" ")
            })
            .collect();
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn known_hosts_are_the_users() {
        let home = |v: &'static str| move |k: &str| (k == "HOME").then(|| std::ffi::OsString::from(v));
        assert_eq!(default_known_hosts(&home("/h")), Some(PathBuf::from("/h/.ssh/known_hosts")));
        assert_eq!(default_known_hosts(&home("")), None);
        assert_eq!(default_known_hosts(&|_| None), None);
    }

    #[test]
    fn install_order_is_init_then_servers_then_agents() {
        let spec = crate::testing::reference();
        let picked: Vec<&HostSpec> =
            ["jetson-2", "n100-3", "n100-1", "jetson-1", "n100-2"].iter().map(|n| spec.host(n).unwrap()).collect();
        let names: Vec<&str> = order(&picked).iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["n100-1", "n100-2", "n100-3", "jetson-1", "jetson-2"]);
    }

    #[test]
    fn pinning_replaces_the_hosts_old_key_and_keeps_the_others() {
        let d = tempfile::tempdir().unwrap();
        let kh = d.path().join("ssh/known_hosts");
        std::fs::create_dir_all(kh.parent().unwrap()).unwrap();
        std::fs::write(
            &kh,
            "192.168.200.11 ssh-ed25519 OLD\nother,192.168.200.11 ssh-ed25519 OLD2\nkeep ssh-ed25519 K\n",
        )
        .unwrap();
        pin(&kh, "192.168.200.11", "ssh-ed25519 NEW root@n100-1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&kh).unwrap(), "keep ssh-ed25519 K\n192.168.200.11 ssh-ed25519 NEW\n");
        // A new file is made, with its directory.
        let fresh = d.path().join("new/dir/known_hosts");
        pin(&fresh, "[h]:2222", "ssh-ed25519 AAAA").unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "[h]:2222 ssh-ed25519 AAAA\n");
    }

    #[test]
    fn a_missing_host_key_stops_before_anything_runs() {
        let spec = crate::testing::reference();
        let f = n3x_remote::fake::Fake::new();
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        let mut opts = InstallOptions::new(
            ".".into(),
            std::sync::Arc::new(move |h: &str| Some(root.join(h))),
            d.path().join("known_hosts"),
        );
        opts.program = vec!["/bin/false".into()];
        let e = install(&spec, &["n100-1".into()], &f, &opts, &mut |_| {}).unwrap_err();
        assert!(matches!(e, DeployError::MissingHostKey { ref host, .. } if host == "n100-1"), "{e}");
        assert!(e.help().contains("n3x secrets add-host n100-1 --generate"));
        assert!(f.calls().is_empty());
    }
}
