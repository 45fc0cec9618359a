//! Property tests of what the deployer parses (hosts' answers, versions, its journal,
//! known_hosts) and of the rollout order.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use n3x_deploy::observe::parse_nodes;
use n3x_deploy::plan::{self, Class, Goal, Observed, Strategy, k3s_change, minor_of};
use n3x_deploy::{ClusterSpec, HostSpec};
use proptest::prelude::*;

fn reference() -> ClusterSpec {
    let r = n3x_model::analyze(include_str!("../../../n3x.toml")).resolve().unwrap();
    ClusterSpec::from_resolved(&r)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn node_lists_never_panic(s in ".{0,200}") {
        let _ = parse_nodes(&s);
    }

    #[test]
    fn ready_is_read_from_the_ready_condition_only(nodes in prop::collection::vec(("[a-z][a-z0-9-]{0,12}", prop::bool::ANY, prop::bool::ANY), 0..8)) {
        let items: Vec<serde_json::Value> = nodes
            .iter()
            .map(|(name, ready, pressure)| serde_json::json!({
                "metadata": {"name": name},
                "status": {"conditions": [
                    {"type": "MemoryPressure", "status": if *pressure { "True" } else { "False" }},
                    {"type": "Ready", "status": if *ready { "True" } else { "False" }},
                ]}
            }))
            .collect();
        let parsed = parse_nodes(&serde_json::json!({"items": items}).to_string()).unwrap();
        prop_assert_eq!(parsed.len(), nodes.len());
        for (p, (name, ready, _)) in parsed.iter().zip(&nodes) {
            prop_assert_eq!(&p.name, name);
            prop_assert_eq!(p.ready, *ready);
        }
    }

    #[test]
    fn versions_parse_to_their_minor(a in 0u32..5, b in 0u32..100, c in 0u32..100, s in ".{0,30}") {
        prop_assert_eq!(minor_of(&format!("v{a}.{b}.{c}+k3s1")), Some((a, b)));
        prop_assert_eq!(minor_of(&format!("v{a}.{b}")), Some((a, b)));
        let _ = minor_of(&s);
    }

    #[test]
    fn minors_move_by_one_or_not_at_all(from in 20u32..40, to in 20u32..40) {
        let running = BTreeMap::from([("s".to_string(), format!("v1.{from}.3+k3s1"))]);
        let r = k3s_change(&running, &format!("v1.{to}"));
        if from == to {
            prop_assert_eq!(r.unwrap(), None);
        } else if to == from + 1 {
            prop_assert!(r.unwrap().is_some());
        } else {
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn a_journal_of_any_bytes_is_read_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("j.json");
        std::fs::write(&p, &bytes).unwrap();
        if let Err(e) = n3x_deploy::journal::load(&p) {
            prop_assert!(e.to_string().contains("j.json"));
        }
    }

    #[test]
    fn pinning_keeps_every_other_host(lines in prop::collection::vec(("[a-c]\\.[0-9]", "[A-Za-z0-9]{4,8}"), 0..10), name in "[a-c]\\.[0-9]", key in "[A-Za-z0-9]{4,8}") {
        let d = tempfile::tempdir().unwrap();
        let kh = d.path().join("known_hosts");
        let before: String = lines.iter().map(|(n, k)| format!("{n} ssh-ed25519 {k}\n")).collect();
        std::fs::write(&kh, &before).unwrap();
        n3x_deploy::install::pin(&kh, &name, &format!("ssh-ed25519 {key} comment")).unwrap();
        let after = std::fs::read_to_string(&kh).unwrap();
        let others: Vec<String> = lines.iter().filter(|(n, _)| *n != name).map(|(n, k)| format!("{n} ssh-ed25519 {k}")).collect();
        let kept: Vec<&str> = after.lines().filter(|l| !l.starts_with(&format!("{name} "))).collect();
        prop_assert_eq!(kept, others.iter().map(String::as_str).collect::<Vec<_>>());
        let mine: Vec<&str> = after.lines().filter(|l| l.starts_with(&format!("{name} "))).collect();
        let want = format!("{name} ssh-ed25519 {key}");
        prop_assert_eq!(mine, vec![want.as_str()]);
    }

    /// Whatever runs where and whoever leads: servers before agents, the leader last of the
    /// servers, every changed host once, agent batches at most N, unchanged hosts skipped.
    #[test]
    fn the_order_keeps_quorum_first(changed in prop::collection::vec(prop::bool::ANY, 5), leader in 0usize..3, n in 1usize..4) {
        let spec = reference();
        let all: Vec<&HostSpec> = spec.hosts.iter().collect();
        let servers: Vec<String> = spec.servers().map(|h| h.name.clone()).collect();
        let current: BTreeMap<String, String> = spec.hosts.iter().map(|h| (h.name.clone(), format!("/old/{}", h.name))).collect();
        let target: BTreeMap<String, String> = spec
            .hosts
            .iter()
            .zip(&changed)
            .map(|(h, c)| (h.name.clone(), if *c { format!("/new/{}", h.name) } else { format!("/old/{}", h.name) }))
            .collect();
        let k3s = spec.servers().map(|h| (h.name.clone(), format!("{}.1+k3s1", spec.k3s_version))).collect();
        let observed = Observed { current, leader: Some(servers[leader].clone()), k3s };
        let p = plan::plan(&spec, &all, &observed, &target, Goal::Switch, Strategy::Rolling, n).unwrap();
        let updates: Vec<&plan::PlannedHost> = p.hosts.iter().filter(|h| h.class == Class::Update).collect();
        prop_assert_eq!(updates.len(), changed.iter().filter(|c| **c).count());
        prop_assert_eq!(p.hosts.len(), 5);
        let first_agent = updates.iter().position(|h| !h.server).unwrap_or(updates.len());
        prop_assert!(updates[first_agent..].iter().all(|h| !h.server), "servers first");
        if let Some(pos) = updates.iter().position(|h| h.leader) {
            prop_assert_eq!(pos + 1, first_agent, "the leader is the last server");
            prop_assert!(p.transfer.is_some() == (servers.len() > 1));
        }
        for b in p.batches() {
            prop_assert!(b.len() == 1 || (b.iter().all(|h| !h.server) && b.len() <= n));
        }
        prop_assert!(p.hosts.iter().filter(|h| h.class == Class::Unchanged).all(|h| h.batch.is_none()));
    }
}
