//! The order of a rollout and each host's classification. Pure: the same observations give
//! the same plan, and unit tests pin the rules.
//!
//! - Servers go one at a time, followers before the leader; the leader hands etcd
//!   leadership to a follower already on its new generation before its own turn.
//! - Agents follow, `agents_at_once` at a time.
//! - A host whose running system is already the built one is unchanged and skipped.
//! - A k3s minor change is one-way: a snapshot comes first, and skipping a minor is refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::DeployError;
use crate::{ClusterSpec, HostSpec};

/// What a deploy makes of the new generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    /// Activate now (`switch-to-configuration switch`), gated and guarded.
    Switch,
    /// Make it the boot default only (`switch-to-configuration boot`); it runs after the
    /// next reboot, which n3x does not do.
    Boot,
}

impl Goal {
    pub fn as_str(self) -> &'static str {
        match self {
            Goal::Switch => "switch",
            Goal::Boot => "boot",
        }
    }
}

/// How hosts are activated. Only `Rolling` is offered to users; `AllAtOnce` is the
/// baseline the lab measures (what a parallel deploy tool does to a cluster).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    Rolling,
    AllAtOnce,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Already runs the built generation: skipped.
    Unchanged,
    /// Gets the built generation.
    Update,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedHost {
    pub host: String,
    pub server: bool,
    pub class: Class,
    /// The generation it runs now.
    pub current: String,
    /// The generation it gets.
    pub target: String,
    /// The etcd leader when the plan was made (its turn comes last among the servers).
    pub leader: bool,
    /// Hosts of one batch are activated together; batches go in order. `None` when unchanged.
    pub batch: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct K3sChange {
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub cluster: String,
    pub goal: Goal,
    pub strategy: Strategy,
    /// Every selected host, in activation order (unchanged ones last, in name order).
    pub hosts: Vec<PlannedHost>,
    /// Where leadership goes before the leader's turn, as planned: (from, to).
    pub transfer: Option<(String, String)>,
    /// A k3s minor change: one-way, so an etcd snapshot is taken first.
    pub k3s_minor: Option<K3sChange>,
}

impl Plan {
    pub fn batches(&self) -> Vec<Vec<&PlannedHost>> {
        let mut out: Vec<Vec<&PlannedHost>> = Vec::new();
        for h in &self.hosts {
            if let Some(b) = h.batch {
                if out.len() <= b {
                    out.resize_with(b + 1, Vec::new);
                }
                out[b].push(h);
            }
        }
        out
    }

    pub fn updates(&self) -> usize {
        self.hosts.iter().filter(|h| h.class == Class::Update).count()
    }
}

/// What the deployer saw before planning.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Each host's running generation.
    pub current: BTreeMap<String, String>,
    /// The etcd leader's host name.
    pub leader: Option<String>,
    /// The k3s version each server runs (`k3s --version`'s `v1.32.5+k3s1`).
    pub k3s: BTreeMap<String, String>,
}

/// `v1.32.5+k3s1` or `v1.32` -> (1, 32).
pub fn minor_of(version: &str) -> Option<(u32, u32)> {
    let v = version.trim().trim_start_matches('v');
    let mut parts = v.split(['.', '+', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Refuses a skipped minor; returns the change when the minor moves by one.
pub fn k3s_change(running: &BTreeMap<String, String>, target: &str) -> Result<Option<K3sChange>, DeployError> {
    let Some(to) = minor_of(target) else { return Ok(None) };
    let mut change = None;
    for v in running.values() {
        let Some(from) = minor_of(v) else { continue };
        if from == to {
            continue;
        }
        if from.0 != to.0 || to.1 != from.1 + 1 {
            return Err(DeployError::SkippedMinor { from: v.trim().to_owned(), to: target.to_owned() });
        }
        change = Some(K3sChange { from: format!("v{}.{}", from.0, from.1), to: format!("v{}.{}", to.0, to.1) });
    }
    Ok(change)
}

/// The plan for `selected` hosts, given what runs (`observed`) and what was built (`target`).
pub fn plan(
    spec: &ClusterSpec,
    selected: &[&HostSpec],
    observed: &Observed,
    target: &BTreeMap<String, String>,
    goal: Goal,
    strategy: Strategy,
    agents_at_once: usize,
) -> Result<Plan, DeployError> {
    let k3s_minor = k3s_change(&observed.k3s, &spec.k3s_version)?;
    let class_of = |h: &HostSpec| {
        let cur = observed.current.get(&h.name);
        if cur.is_some() && cur == target.get(&h.name) { Class::Unchanged } else { Class::Update }
    };
    let entry = |h: &HostSpec, batch: Option<usize>| PlannedHost {
        host: h.name.clone(),
        server: h.server,
        class: class_of(h),
        current: observed.current.get(&h.name).cloned().unwrap_or_default(),
        target: target.get(&h.name).cloned().unwrap_or_default(),
        leader: observed.leader.as_deref() == Some(h.name.as_str()),
        batch,
    };
    let is_leader = |h: &HostSpec| observed.leader.as_deref() == Some(h.name.as_str());
    let mut servers: Vec<&HostSpec> =
        selected.iter().copied().filter(|h| h.server && class_of(h) == Class::Update).collect();
    // Followers in name order, the leader last.
    servers.sort_by_key(|h| (is_leader(h), h.name.clone()));
    let mut agents: Vec<&HostSpec> =
        selected.iter().copied().filter(|h| !h.server && class_of(h) == Class::Update).collect();
    agents.sort_by_key(|h| h.name.clone());

    let mut hosts = Vec::new();
    let mut batch = 0;
    match strategy {
        Strategy::Rolling => {
            for s in &servers {
                hosts.push(entry(s, Some(batch)));
                batch += 1;
            }
            for chunk in agents.chunks(agents_at_once.max(1)) {
                for a in chunk {
                    hosts.push(entry(a, Some(batch)));
                }
                batch += 1;
            }
        }
        Strategy::AllAtOnce => {
            for h in servers.iter().chain(&agents) {
                hosts.push(entry(h, Some(0)));
            }
        }
    }
    let mut unchanged: Vec<&HostSpec> = selected.iter().copied().filter(|h| class_of(h) == Class::Unchanged).collect();
    unchanged.sort_by_key(|h| h.name.clone());
    hosts.extend(unchanged.into_iter().map(|h| entry(h, None)));

    let transfer = match (strategy, servers.last()) {
        (Strategy::Rolling, Some(last)) if is_leader(last) => {
            // Any other server will be on its new generation by then (updated before, or
            // unchanged); prefer one this rollout updates.
            let others: Vec<&HostSpec> = spec.servers().filter(|s| s.name != last.name).collect();
            let updated = servers.iter().find(|s| s.name != last.name).copied();
            updated.or(others.first().copied()).map(|to| (last.name.clone(), to.name.clone()))
        }
        _ => None,
    };
    Ok(Plan { cluster: spec.name.clone(), goal, strategy, hosts, transfer, k3s_minor })
}

/// A follower to hand leadership to at the leader's turn: on its target generation (updated
/// by this rollout, unchanged, or not part of it), not `leader`, and healthy by the caller's
/// judgement. Prefers one this rollout updated: it has just proven its new generation.
pub fn transfer_target<'a>(
    planned: &'a [PlannedHost],
    all_servers: &'a [String],
    leader: &str,
    done: &[String],
    healthy: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    let updated = planned.iter().filter(|h| h.server && done.contains(&h.host)).map(|h| h.host.as_str());
    let current = planned.iter().filter(|h| h.server && h.class == Class::Unchanged).map(|h| h.host.as_str());
    let outside = all_servers.iter().map(String::as_str).filter(|s| !planned.iter().any(|h| h.host == *s));
    updated.chain(current).chain(outside).find(|h| *h != leader && healthy(h))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::reference;

    fn observed(spec: &ClusterSpec, generation: &str, leader: &str) -> Observed {
        Observed {
            current: spec
                .hosts
                .iter()
                .map(|h| (h.name.clone(), format!("/nix/store/{generation}-{}", h.name)))
                .collect(),
            leader: Some(leader.into()),
            k3s: spec.servers().map(|h| (h.name.clone(), format!("{}.5+k3s1", spec.k3s_version))).collect(),
        }
    }

    fn targets(spec: &ClusterSpec, generation: &str) -> BTreeMap<String, String> {
        spec.hosts.iter().map(|h| (h.name.clone(), format!("/nix/store/{generation}-{}", h.name))).collect()
    }

    /// Every server changes; n100-1 leads.
    fn servers_changed(spec: &ClusterSpec, strategy: Strategy) -> Plan {
        let servers: Vec<&HostSpec> = spec.servers().collect();
        let (o, t) = (observed(spec, "a", "n100-1"), targets(spec, "b"));
        plan(spec, &servers, &o, &t, Goal::Switch, strategy, 1).unwrap()
    }

    #[test]
    fn followers_first_the_leader_last_then_agents_in_batches() {
        let spec = reference();
        let all: Vec<&HostSpec> = spec.hosts.iter().collect();
        let p = plan(
            &spec,
            &all,
            &observed(&spec, "a", "n100-1"),
            &targets(&spec, "b"),
            Goal::Switch,
            Strategy::Rolling,
            2,
        )
        .unwrap();
        let order: Vec<(&str, Option<usize>)> = p.hosts.iter().map(|h| (h.host.as_str(), h.batch)).collect();
        assert_eq!(
            order,
            [
                ("n100-2", Some(0)),
                ("n100-3", Some(1)),
                ("n100-1", Some(2)),
                ("jetson-1", Some(3)),
                ("jetson-2", Some(3))
            ]
        );
        assert_eq!(p.transfer, Some(("n100-1".into(), "n100-2".into())));
        assert!(p.hosts.iter().all(|h| h.class == Class::Update));
        assert_eq!(p.batches().len(), 4);
        // One agent at a time: a batch each.
        let p = plan(
            &spec,
            &all,
            &observed(&spec, "a", "n100-3"),
            &targets(&spec, "b"),
            Goal::Switch,
            Strategy::Rolling,
            1,
        )
        .unwrap();
        let order: Vec<&str> = p.hosts.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(order, ["n100-1", "n100-2", "n100-3", "jetson-1", "jetson-2"]);
        assert_eq!(p.batches().len(), 5);
        assert_eq!(p.transfer, Some(("n100-3".into(), "n100-1".into())));
    }

    #[test]
    fn unchanged_hosts_are_skipped_and_listed_last() {
        let spec = reference();
        let all: Vec<&HostSpec> = spec.hosts.iter().collect();
        let mut t = targets(&spec, "a");
        t.insert("n100-2".into(), "/nix/store/b-n100-2".into());
        t.insert("jetson-2".into(), "/nix/store/b-jetson-2".into());
        let p = plan(&spec, &all, &observed(&spec, "a", "n100-1"), &t, Goal::Switch, Strategy::Rolling, 4).unwrap();
        let order: Vec<(&str, Class)> = p.hosts.iter().map(|h| (h.host.as_str(), h.class)).collect();
        assert_eq!(
            order,
            [
                ("n100-2", Class::Update),
                ("jetson-2", Class::Update),
                ("jetson-1", Class::Unchanged),
                ("n100-1", Class::Unchanged),
                ("n100-3", Class::Unchanged)
            ]
        );
        // The leader is unchanged: nothing to hand over.
        assert_eq!(p.transfer, None);
        assert_eq!(p.updates(), 2);
        // Only the leader changes: leadership goes to a follower that is already current.
        let mut t = targets(&spec, "a");
        t.insert("n100-1".into(), "/nix/store/b-n100-1".into());
        let p = plan(&spec, &all, &observed(&spec, "a", "n100-1"), &t, Goal::Switch, Strategy::Rolling, 4).unwrap();
        assert_eq!(p.transfer, Some(("n100-1".into(), "n100-2".into())));
        // A host that reports nothing (never deployed) is an update.
        let mut o = observed(&spec, "a", "n100-1");
        o.current.remove("jetson-1");
        let p = plan(&spec, &all, &o, &targets(&spec, "a"), Goal::Switch, Strategy::Rolling, 4).unwrap();
        assert_eq!(p.hosts[0].host, "jetson-1");
        assert_eq!(p.hosts[0].class, Class::Update);
    }

    #[test]
    fn all_at_once_is_one_batch_without_a_transfer() {
        let spec = reference();
        let p = servers_changed(&spec, Strategy::AllAtOnce);
        assert_eq!(p.batches().len(), 1);
        assert_eq!(p.batches()[0].len(), 3);
        assert_eq!(p.transfer, None);
    }

    #[test]
    fn k3s_minors_go_one_at_a_time() {
        let run = |v: &str| BTreeMap::from([("n100-1".to_string(), v.to_string())]);
        assert_eq!(k3s_change(&run("v1.32.5+k3s1"), "v1.32").unwrap(), None);
        assert_eq!(
            k3s_change(&run("k3s version v1.32.5+k3s1 (abc)".trim_start_matches("k3s version ")), "v1.33").unwrap(),
            Some(K3sChange { from: "v1.32".into(), to: "v1.33".into() })
        );
        let e = k3s_change(&run("v1.31.9+k3s1"), "v1.33").unwrap_err();
        assert!(matches!(e, DeployError::SkippedMinor { .. }), "{e}");
        // A downgrade is a skip too: etcd's data does not go back.
        assert!(k3s_change(&run("v1.33.1+k3s1"), "v1.32").is_err());
        assert_eq!(minor_of("v1.34"), Some((1, 34)));
        assert_eq!(minor_of("garbage"), None);
    }

    #[test]
    fn the_transfer_target_is_a_healthy_updated_follower() {
        let spec = reference();
        let p = servers_changed(&spec, Strategy::Rolling);
        let names: Vec<String> = spec.servers().map(|s| s.name.clone()).collect();
        let done = vec!["n100-2".to_string(), "n100-3".to_string()];
        assert_eq!(transfer_target(&p.hosts, &names, "n100-1", &done, |_| true), Some("n100-2"));
        assert_eq!(transfer_target(&p.hosts, &names, "n100-1", &done, |h| h != "n100-2"), Some("n100-3"));
        assert_eq!(transfer_target(&p.hosts, &names, "n100-1", &done, |_| false), None);
        // A follower outside the rollout counts: it is on its generation already.
        let only_leader: Vec<PlannedHost> = p.hosts.iter().filter(|h| h.host == "n100-1").cloned().collect();
        assert_eq!(transfer_target(&only_leader, &names, "n100-1", &[], |_| true), Some("n100-2"));
    }
}
