//! `n3x install` and `n3x deploy`: putting NixOS on the machines in quorum-safe order, and
//! rolling a change out without ever dropping etcd quorum, with a guard on each host that
//! takes it back to its previous generation by itself when the change breaks it.
//!
//! The deployer talks to hosts only through [`n3x_remote::Remote`] (the system `ssh`) and
//! builds systems only through [`Builder`] (`nix build`/`nix copy`). The lab implements
//! both for its emulated hosts, so the same code path is rehearsed there.
//!
//! - [`commands`]: the exact commands a host receives (golden-tested).
//! - [`plan`]: the order (servers: followers, then the leader after a leadership transfer;
//!   then agents in batches) and each host's classification. Pure.
//! - [`observe`], [`gate`]: what a host and the cluster look like, and whether a host passes.
//! - [`journal`]: the atomic record that lets `--resume` finish a rollout.
//! - [`rollout`]: the deploy itself. [`install`]: the install order and nixos-anywhere.

pub mod commands;
pub mod error;
pub mod gate;
pub mod install;
pub mod journal;
pub mod nix;
pub mod observe;
pub mod plan;
pub mod rollout;
pub mod token;

use std::net::Ipv4Addr;

pub use error::{DeployError, Outcome};
pub use nix::{Builder, NixBuilder};

use n3x_model::Resolved;
use n3x_model::model::Role;
use n3x_remote::Target;

/// A host as the deployer needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    pub server: bool,
    pub init: bool,
    /// Where SSH goes: `user@host[:port]`.
    pub dest: String,
    pub cluster_ip: Ipv4Addr,
    pub jetson: bool,
}

impl HostSpec {
    pub fn target(&self) -> Target {
        Target::new(&self.name, &self.dest)
    }
}

/// The cluster being deployed: its hosts in name order.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub name: String,
    pub hosts: Vec<HostSpec>,
    pub k3s_version: String,
    /// What `[security] secrets_encryption` asks for.
    pub secrets_encryption: bool,
}

impl ClusterSpec {
    pub fn from_resolved(r: &Resolved) -> ClusterSpec {
        ClusterSpec {
            name: r.cluster.name.clone(),
            k3s_version: r.k3s.version.clone(),
            secrets_encryption: r.security.secrets_encryption,
            hosts: r
                .hosts
                .iter()
                .map(|h| HostSpec {
                    name: h.name.clone(),
                    server: h.role == Role::Server,
                    init: h.init,
                    dest: h.ssh.clone(),
                    cluster_ip: h.node_ip,
                    jetson: h.hardware.is_jetson(),
                })
                .collect(),
        }
    }

    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn servers(&self) -> impl Iterator<Item = &HostSpec> {
        self.hosts.iter().filter(|h| h.server)
    }

    pub fn init(&self) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.init)
    }

    /// Hosts named on the command line (all when none), or the unknown name.
    pub fn select(&self, names: &[String]) -> Result<Vec<&HostSpec>, DeployError> {
        if names.is_empty() {
            return Ok(self.hosts.iter().collect());
        }
        names
            .iter()
            .map(|n| {
                self.host(n).ok_or_else(|| DeployError::UnknownHost {
                    name: n.clone(),
                    known: self.hosts.iter().map(|h| h.name.clone()).collect(),
                })
            })
            .collect()
    }
}

/// Where a deploy or an install is, for progress and for tests that act at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Build,
    Preflight,
    Lock,
    Plan,
    Push,
    Snapshot,
    /// The k3s server token rotated into the cluster.
    Token,
    Transfer,
    Guard,
    Switch,
    Gates,
    Confirm,
    Rollback,
    Install,
    Pin,
    Done,
}

/// Progress, for the renderer.
#[derive(Clone, Debug)]
pub enum Event {
    /// A step, optionally about one host.
    Step { host: Option<String>, phase: Phase, message: String },
    /// What happened to a host, when it is settled.
    Host { host: String, outcome: String },
}

pub type Events<'a> = &'a mut (dyn FnMut(Event) + Send);

/// Fakes of a healthy reference cluster, for this crate's tests and its users' (feature
/// `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use n3x_remote::fake::{self, Fake};

    use super::*;

    /// A healthy reference cluster as a fake: n100-1 leads, every node Ready.
    pub fn healthy() -> Fake {
        let f = Fake::new();
        let ids = [("n100-1", 1u64), ("n100-2", 2), ("n100-3", 3)];
        f.on(|_, argv| (argv[0] == "curl" && argv.last()?.ends_with(n3x_etcd::ALARMS)).then(|| fake::ok("{}")));
        f.on(|_, argv| {
            (argv[0] == "curl" && argv.last()?.ends_with(n3x_etcd::MEMBER_LIST)).then(|| {
                fake::ok(
                    r#"{"members":[{"ID":"1","name":"n100-1","peerURLs":["https://192.168.200.11:2380"]},
                    {"ID":"2","name":"n100-2","peerURLs":["https://192.168.200.12:2380"]},
                    {"ID":"3","name":"n100-3","peerURLs":["https://192.168.200.13:2380"]}]}"#,
                )
            })
        });
        f.on(move |t, argv| {
            let url = argv.last()?;
            if argv[0] != "curl" || !url.ends_with(n3x_etcd::STATUS) {
                return None;
            }
            let id = ids.iter().find(|(h, _)| *h == t.host)?.1;
            Some(fake::ok(&format!(
                r#"{{"header":{{"member_id":"{id}","revision":"9"}},"leader":"1","raftIndex":"100","raftAppliedIndex":"100","raftTerm":"2"}}"#
            )))
        });
        f.on(|_, argv| {
            (argv.get(..2) == Some(&["systemctl".to_string(), "is-active".to_string()][..]))
                .then(|| fake::ok("active\n"))
        });
        f.on(|_, argv| {
            (argv[0] == "k3s" && argv.get(1).is_some_and(|a| a == "kubectl")).then(|| {
                let items: Vec<String> = ["n100-1", "n100-2", "n100-3", "jetson-1", "jetson-2"]
                    .iter()
                    .map(|n| format!(r#"{{"metadata":{{"name":"{n}"}},"status":{{"conditions":[{{"type":"Ready","status":"True"}}]}}}}"#))
                    .collect();
                fake::ok(&format!(r#"{{"items":[{}]}}"#, items.join(",")))
            })
        });
        f
    }

    pub fn reference() -> ClusterSpec {
        let r = n3x_model::analyze(include_str!("../../../n3x.toml")).resolve();
        ClusterSpec::from_resolved(&r.unwrap_or_else(|e| panic!("{e:?}")))
    }
}
