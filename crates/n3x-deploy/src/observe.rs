//! What a host and the cluster look like, asked over SSH: the running generation, k3s's
//! unit, the nodes' Ready condition, and each server's own etcd member (status, members,
//! alarms) through k3s's etcd client certificate.

use std::time::Duration;

use n3x_etcd::{Member, Status};
use n3x_remote::{Command, Remote};
use serde::{Deserialize, Serialize};

use crate::commands;
use crate::error::DeployError;
use crate::{ClusterSpec, HostSpec};

/// Asks hosts questions over a [`Remote`], each command with `timeout`.
#[derive(Clone, Copy)]
pub struct Ask<'a> {
    pub remote: &'a dyn Remote,
    pub timeout: Duration,
}

/// A node as `kubectl get nodes` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub ready: bool,
}

/// The nodes of `kubectl get nodes -o json`, with their Ready condition.
pub fn parse_nodes(json: &str) -> Result<Vec<Node>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("not a node list: {e}"))?;
    let items = v["items"].as_array().ok_or("not a node list: no `items`")?;
    Ok(items
        .iter()
        .map(|n| Node {
            name: n["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
            ready: n["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")),
        })
        .collect())
}

/// The version in `k3s --version`'s first line (`k3s version v1.31.4+k3s1 (abc)`).
pub fn parse_k3s_version(out: &str) -> Option<&str> {
    out.split_whitespace().nth(2)
}

/// Whether etcd member `m` is `host`'s: its peer URL carries the host's cluster address
/// (k3s names members `<node>-<random>`, so the name alone does not say).
pub fn is_member_of(m: &Member, host: &HostSpec) -> bool {
    let ip = format!("//{}:", host.cluster_ip);
    m.peer_urls.iter().any(|u| u.contains(&ip))
}

impl Ask<'_> {
    pub fn run(&self, h: &HostSpec, step: &str, cmd: &Command) -> Result<String, DeployError> {
        self.remote.run_ok(&h.target(), cmd).map(|o| o.stdout).map_err(|e| DeployError::remote(&h.name, step, e))
    }

    /// Opens a new connection and runs `true`: sshd answers, with the pinned host key.
    pub fn reachable(&self, h: &HostSpec) -> Result<(), DeployError> {
        self.run(h, "connecting", &Command::new(["true"], self.timeout)).map(|_| ())
    }

    /// The generation `h` runs now.
    pub fn current_system(&self, h: &HostSpec) -> Result<String, DeployError> {
        self.store_path(h, "the running generation", &commands::current_system(self.timeout), commands::RUNNING)
    }

    /// The generation `h` boots next.
    pub fn boot_system(&self, h: &HostSpec) -> Result<String, DeployError> {
        self.store_path(h, "the boot generation", &commands::boot_system(self.timeout), commands::PROFILE)
    }

    fn store_path(&self, h: &HostSpec, what: &str, cmd: &Command, link: &str) -> Result<String, DeployError> {
        let out = self.run(h, &format!("reading {what}"), cmd)?;
        match out.trim() {
            p if p.starts_with('/') => Ok(p.to_owned()),
            other => Err(DeployError::Unexpected {
                host: h.name.clone(),
                what: what.into(),
                detail: format!("`readlink -f {link}` printed `{other}`"),
            }),
        }
    }

    /// `systemctl is-active k3s`: true only for `active`.
    pub fn k3s_active(&self, h: &HostSpec) -> Result<bool, DeployError> {
        let out = self
            .remote
            .run(&h.target(), &commands::is_active("k3s", self.timeout))
            .map_err(|e| DeployError::remote(&h.name, "checking k3s", e))?;
        Ok(out.stdout.trim() == "active")
    }

    pub fn k3s_version(&self, h: &HostSpec) -> Result<String, DeployError> {
        let out = self.run(h, "reading the k3s version", &commands::k3s_version(self.timeout))?;
        Ok(parse_k3s_version(&out).unwrap_or_default().to_owned())
    }

    pub fn nodes(&self, via: &HostSpec) -> Result<Vec<Node>, DeployError> {
        let out = self.run(via, "listing the nodes", &commands::nodes(self.timeout))?;
        parse_nodes(&out).map_err(|detail| DeployError::Unexpected {
            host: via.name.clone(),
            what: "the node list".into(),
            detail,
        })
    }

    /// A call to `h`'s own etcd member.
    pub fn etcd<T>(
        &self,
        h: &HostSpec,
        what: &str,
        path: &str,
        body: &str,
        parse: impl Fn(&str) -> Result<T, n3x_etcd::DecodeError>,
    ) -> Result<T, DeployError> {
        let out = self.run(h, what, &commands::etcd(path, body, self.timeout))?;
        parse(&out).map_err(|e| DeployError::Unexpected { host: h.name.clone(), what: what.into(), detail: e.0 })
    }

    pub fn status(&self, h: &HostSpec) -> Result<Status, DeployError> {
        self.etcd(h, "etcd status", n3x_etcd::STATUS, &n3x_etcd::empty_body(), n3x_etcd::parse_status)
    }

    pub fn members(&self, h: &HostSpec) -> Result<Vec<Member>, DeployError> {
        self.etcd(h, "etcd member list", n3x_etcd::MEMBER_LIST, &n3x_etcd::empty_body(), n3x_etcd::parse_members)
    }

    pub fn alarms(&self, h: &HostSpec) -> Result<Vec<(u64, String)>, DeployError> {
        self.etcd(h, "etcd alarms", n3x_etcd::ALARMS, &n3x_etcd::alarm_list_body(), n3x_etcd::parse_alarms)
    }

    /// Asks `leader`'s member to hand leadership to member `to`.
    pub fn move_leader(&self, leader: &HostSpec, to: u64) -> Result<(), DeployError> {
        self.etcd(
            leader,
            "moving etcd leadership",
            n3x_etcd::MOVE_LEADER,
            &n3x_etcd::move_leader_body(to),
            n3x_etcd::parse_ok,
        )
    }

    /// Every server's own member status, asked in parallel.
    pub fn statuses<'s>(&self, servers: &[&'s HostSpec]) -> Vec<(&'s HostSpec, Result<Status, DeployError>)> {
        std::thread::scope(|sc| {
            let handles: Vec<_> = servers.iter().map(|h| (*h, sc.spawn(move || self.status(h)))).collect();
            handles
                .into_iter()
                .map(|(h, j)| {
                    let r = j.join().unwrap_or_else(|_| {
                        Err(DeployError::Unexpected {
                            host: h.name.clone(),
                            what: "etcd status".into(),
                            detail: "panicked".into(),
                        })
                    });
                    (h, r)
                })
                .collect()
        })
    }
}

/// The cluster as its servers see it.
#[derive(Debug)]
pub struct ClusterView<'s> {
    pub statuses: Vec<(&'s HostSpec, Result<Status, DeployError>)>,
}

impl<'s> ClusterView<'s> {
    pub fn ask(ask: Ask<'_>, spec: &'s ClusterSpec) -> ClusterView<'s> {
        let servers: Vec<&HostSpec> = spec.servers().collect();
        ClusterView { statuses: ask.statuses(&servers) }
    }

    /// The host every answering member agrees is leader.
    pub fn leader(&self) -> Option<&'s HostSpec> {
        let ok: Vec<(&HostSpec, &Status)> =
            self.statuses.iter().filter_map(|(h, s)| Some((*h, s.as_ref().ok()?))).collect();
        let id = ok.first()?.1.leader;
        if id == 0 || ok.iter().any(|(_, s)| s.leader != id) {
            return None;
        }
        ok.iter().find(|(_, s)| s.member_id == id).map(|(h, _)| *h)
    }

    pub fn status_of(&self, host: &str) -> Option<&Status> {
        self.statuses.iter().find(|(h, _)| h.name == host).and_then(|(_, s)| s.as_ref().ok())
    }

    pub fn member_id(&self, host: &str) -> Option<u64> {
        self.status_of(host).map(|s| s.member_id)
    }

    /// Servers whose member answers.
    pub fn healthy(&self) -> usize {
        self.statuses.iter().filter(|(_, s)| s.is_ok()).count()
    }
}

/// Why the cluster is not fit for a deploy (empty when it is): every voting member healthy,
/// no alarm, no learner, every node Ready. `skip` names hosts not judged (a resumed
/// deploy's host that is mid-activation and gets gated anyway).
pub fn preflight(ask: Ask<'_>, spec: &ClusterSpec, skip: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let view = ClusterView::ask(ask, spec);
    for (h, s) in &view.statuses {
        if let Err(e) = s {
            if !skip.contains(&h.name) {
                problems.push(format!("the etcd member of `{}` does not answer ({e})", h.name));
            }
        }
    }
    let Some(via) = view.statuses.iter().find(|(_, s)| s.is_ok()).map(|(h, _)| *h) else {
        problems.push("no server's etcd member answers".into());
        return problems;
    };
    if view.leader().is_none() {
        problems.push("the etcd members do not agree on a leader".into());
    }
    match ask.members(via) {
        Ok(members) => {
            for m in members.iter().filter(|m| m.is_learner) {
                problems.push(format!("etcd member `{}` is a learner (a join left unfinished)", m.name));
            }
            for m in &members {
                if !spec.servers().any(|s| is_member_of(m, s)) {
                    problems.push(format!(
                        "etcd member `{}` ({}) is not a server of the inventory",
                        m.name,
                        m.peer_urls.join(", ")
                    ));
                }
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    match ask.alarms(via) {
        Ok(alarms) => problems.extend(alarms.iter().map(|(id, a)| format!("etcd alarm {a} on member {id:x}"))),
        Err(e) => problems.push(e.to_string()),
    }
    match ask.nodes(via) {
        Ok(nodes) => {
            for h in spec.hosts.iter().filter(|h| !skip.contains(&h.name)) {
                match nodes.iter().find(|n| n.name == h.name) {
                    None => problems.push(format!("node `{}` is not in the cluster", h.name)),
                    Some(n) if !n.ready => problems.push(format!("node `{}` is not Ready", h.name)),
                    Some(_) => {}
                }
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    problems
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn nodes_are_ready_only_with_a_true_ready_condition() {
        let json = r#"{"items":[
          {"metadata":{"name":"n100-1"},"status":{"conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True"}]}},
          {"metadata":{"name":"jetson-1"},"status":{"conditions":[{"type":"Ready","status":"Unknown"}]}},
          {"metadata":{"name":"jetson-2"},"status":{}}]}"#;
        let n = parse_nodes(json).unwrap();
        assert_eq!(
            n,
            [
                Node { name: "n100-1".into(), ready: true },
                Node { name: "jetson-1".into(), ready: false },
                Node { name: "jetson-2".into(), ready: false }
            ]
        );
        assert!(parse_nodes("error: the server doesn't have a resource type").is_err());
        assert!(parse_nodes("{}").is_err());
    }

    #[test]
    fn members_are_matched_by_address_not_name() {
        let spec = crate::testing::reference();
        let h = spec.host("n100-1").unwrap();
        let m = |url: &str| Member {
            id: 1,
            name: "n100-1-4f2a9c1e".into(),
            peer_urls: vec![url.into()],
            client_urls: vec![],
            is_learner: false,
        };
        assert!(is_member_of(&m("https://192.168.200.11:2380"), h));
        assert!(!is_member_of(&m("https://192.168.200.111:2380"), h));
    }
}
