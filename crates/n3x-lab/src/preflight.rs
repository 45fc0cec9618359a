//! Everything `lab up` and `lab run` decide before touching the machine: the profile
//! override, the plan, root, the binaries, the kernel's abilities and the fabric. A
//! refusal here creates nothing.

use std::path::{Path, PathBuf};

use n3x_model::Resolved;
use n3x_model::model::Profile;

use crate::error::LabError;
use crate::fabric::{self, FabricChoice};
use crate::plan;
use crate::supervisor::LabOptions;
use crate::system::System;

/// The shortest interval between two writes of a probe: below it, the lab measures its
/// own load more than etcd.
pub const MIN_PROBE_INTERVAL_MS: u64 = 10;

/// What the user asked `up` for.
#[derive(Clone, Debug)]
pub struct UpRequest {
    pub fabric: FabricChoice,
    /// Apply this profile to every host's links instead of the inventory's.
    pub profile: Option<String>,
    /// The etcd binary; default `etcd` on PATH.
    pub etcd: Option<PathBuf>,
    /// Default: [`crate::probe::default_interval_ms`].
    pub probe_interval_ms: Option<u64>,
    /// Whether every host runs sshd (and the lab has an operator namespace to reach them).
    pub ssh: SshChoice,
    /// Start with no host installed: no etcd, no probes, until `n3x install --lab`.
    pub empty: bool,
}

/// `--ssh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SshChoice {
    /// On up to [`SSH_AUTO_MAX`] hosts when Debian's sshd is installed.
    Auto,
    On,
    Off,
}

/// `--ssh auto` turns SSH on up to this many hosts (a few MiB and a process each).
pub const SSH_AUTO_MAX: usize = 100;

const SSHD_FIX: &str = "install Debian's OpenSSH server (`apt-get install openssh-server`), or pass `--ssh off`";

/// Decides `--ssh`: on, off, or why not.
pub fn decide_ssh(choice: SshChoice, hosts: usize, empty: bool, sshd_present: bool) -> Result<bool, LabError> {
    let on = match choice {
        SshChoice::Off => false,
        SshChoice::On => true,
        SshChoice::Auto => empty || (hosts <= SSH_AUTO_MAX && sshd_present),
    };
    if empty && !on {
        return Err(LabError::BadValue {
            flag: "--empty".into(),
            value: "with --ssh off".into(),
            why: "an empty lab waits for `n3x install --lab`, which needs SSH".into(),
        });
    }
    if on && !sshd_present {
        return Err(LabError::MissingBinary {
            name: "sshd".into(),
            looked: Some(crate::hostroot::SSHD.into()),
            fix: SSHD_FIX.into(),
        });
    }
    Ok(on)
}

/// A lab ready to be built.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub opts: LabOptions,
    /// Why this fabric: "asked for", or what `auto` saw.
    pub fabric_reason: String,
    /// The inventory, as the user named it.
    pub inventory: String,
    /// Its topology, for the report's picture.
    pub topology: n3x_pictures::Topology,
}

/// A named profile (the inventory's first, then the built-in), or a usage error.
pub fn profile(r: &Resolved, name: &str) -> Result<Profile, LabError> {
    plan::find_profile(r, name).ok_or_else(|| LabError::UnknownProfile {
        name: name.to_owned(),
        known: r.lab.profiles.keys().cloned().collect(),
    })
}

pub fn require_root() -> Result<(), LabError> {
    if nix::unistd::geteuid().is_root() { Ok(()) } else { Err(LabError::NotRoot) }
}

/// Finds a program: `explicit` if given (it must exist), else on PATH (and the sbin
/// directories, which root's PATH may lack under sudo).
pub fn find_binary(name: &str, explicit: Option<&Path>, fix: &str) -> Result<PathBuf, LabError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(LabError::MissingBinary { name: name.into(), looked: Some(p.display().to_string()), fix: fix.into() })
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| LabError::MissingBinary { name: name.into(), looked: Some("PATH".into()), fix: fix.into() })
}

/// Checks the request and the machine and decides the lab's options.
pub fn prepare(
    sys: &dyn System,
    root: &Path,
    resolved: &Resolved,
    inventory: &str,
    req: &UpRequest,
) -> Result<Prepared, LabError> {
    if let Some(ms) = req.probe_interval_ms.filter(|ms| *ms < MIN_PROBE_INTERVAL_MS) {
        return Err(LabError::BadValue {
            flag: "--probe-interval-ms".into(),
            value: ms.to_string(),
            why: format!("the shortest interval is {MIN_PROBE_INTERVAL_MS} ms"),
        });
    }
    let over = match &req.profile {
        Some(name) => Some((name.clone(), profile(resolved, name)?)),
        None => None,
    };
    let mut plan = plan::plan(resolved, over.as_ref().map(|(n, p)| (n.as_str(), *p)));
    let ssh = decide_ssh(req.ssh, plan.hosts.len(), req.empty, Path::new(crate::hostroot::SSHD).is_file())?;
    if ssh {
        plan.add_operator(resolved).map_err(|why| LabError::BadValue {
            flag: "--ssh".into(),
            value: "on".into(),
            why,
        })?;
    }
    require_root()?;
    let etcd = find_binary(
        "etcd",
        req.etcd.as_deref(),
        "install it (`apt-get install etcd-server`) or pass `--etcd /path/to/etcd`",
    )?;
    for bin in ["ip", "nft", "tc"] {
        find_binary(bin, None, "install iproute2 and nftables (`apt-get install iproute2 nftables`)")?;
    }
    let caps = fabric::probe_caps(sys, root);
    let (kind, fabric_reason) = fabric::choose(req.fabric, plan.needs(), caps)?;
    let probe_interval_ms =
        req.probe_interval_ms.unwrap_or_else(|| crate::probe::default_interval_ms(plan.agents.len()));
    Ok(Prepared {
        opts: LabOptions {
            fabric: kind,
            netem: caps.netem,
            etcd,
            probe_interval_ms,
            plan,
            ssh,
            empty: req.empty,
            n3x: std::env::current_exe().ok(),
            k3s_version: resolved.k3s.version.clone(),
        },
        fabric_reason,
        inventory: inventory.to_owned(),
        topology: n3x_pictures::Topology::from_resolved(resolved),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::system::fake::Fake;

    fn reference() -> Resolved {
        n3x_model::analyze(include_str!("../../../n3x.toml")).resolve().unwrap()
    }

    fn req() -> UpRequest {
        UpRequest {
            fabric: FabricChoice::Auto,
            profile: None,
            etcd: None,
            probe_interval_ms: None,
            ssh: SshChoice::Off,
            empty: false,
        }
    }

    #[test]
    fn usage_errors_come_before_the_machine_is_looked_at() {
        let root = tempfile::tempdir().unwrap();
        let sys = Fake::new();
        let r = reference();
        let e = prepare(&sys, root.path(), &r, "n3x.toml", &UpRequest { profile: Some("nope".into()), ..req() })
            .unwrap_err();
        assert!(matches!(e, LabError::UnknownProfile { .. }), "{e}");
        assert!(e.help().contains("constrained") && e.help().contains("edge"), "{}", e.help());
        let e =
            prepare(&sys, root.path(), &r, "n3x.toml", &UpRequest { probe_interval_ms: Some(5), ..req() }).unwrap_err();
        assert_eq!(e.to_string(), "--probe-interval-ms is 5: the shortest interval is 10 ms");
        assert_eq!(e.kind(), crate::error::ErrorKind::Usage);
        assert!(sys.calls().is_empty(), "nothing was touched");
    }

    #[test]
    fn ssh_is_on_for_small_labs_and_required_by_empty_ones() {
        assert!(decide_ssh(SshChoice::Auto, 5, false, true).unwrap());
        assert!(!decide_ssh(SshChoice::Auto, SSH_AUTO_MAX + 1, false, true).unwrap());
        assert!(!decide_ssh(SshChoice::Auto, 5, false, false).unwrap(), "auto without sshd is off");
        assert!(decide_ssh(SshChoice::On, 1000, false, true).unwrap());
        let e = decide_ssh(SshChoice::On, 5, false, false).unwrap_err();
        assert!(e.is_environment() && e.help().contains("openssh-server"), "{e}");
        let e = decide_ssh(SshChoice::Off, 5, true, true).unwrap_err();
        assert!(e.to_string().contains("--empty"), "{e}");
        assert!(decide_ssh(SshChoice::Auto, 5000, true, true).unwrap(), "empty turns auto on");
    }

    #[test]
    fn an_explicit_binary_must_exist() {
        let e = find_binary("etcd", Some(Path::new("/no/such/etcd")), "fix").unwrap_err();
        assert_eq!(e.to_string(), "`etcd` was not found (looked for /no/such/etcd)");
        assert!(e.is_environment());
    }
}
