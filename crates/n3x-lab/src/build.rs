//! Building a lab's network from its plan, through the [`System`] seam: the order of
//! operations, and the record written before each object exists. The supervisor calls
//! these; unit tests run them against the recording fake.
//!
//! Order (kernel fabric): the neighbour-table sysctls if the lab is big, every namespace
//! (fabric first, then hosts in plan order), the bridges, the nftables table, then per host
//! its veth pairs and its addresses. Each step is reported before it starts, so a crash
//! at any step leaves a record from which `down` removes everything.

use crate::error::LabError;
use crate::fabric;
use crate::plan::LabPlan;
use crate::state::{StateStore, SysctlRecord};
use crate::system::System;

/// The kernel's neighbour (ARP) table is shared by every namespace. Past `gc_thresh2`
/// entries it starts refusing new neighbours, and a lab where every agent talks to every
/// server needs about (agents x servers x 2) of them: 1000 hosts would need ~6000, far
/// above the default 512/1024.
pub const NEIGH_THRESH2: &str = "net/ipv4/neigh/default/gc_thresh2";
pub const NEIGH_THRESH3: &str = "net/ipv4/neigh/default/gc_thresh3";

/// The neighbour entries a lab can need: each server knows every host on the cluster
/// network, each agent its servers; plus headroom for `lab exec` and the other networks.
pub fn neighbours_needed(plan: &LabPlan) -> u64 {
    let hosts = plan.hosts.len() as u64;
    let servers = plan.servers.len() as u64;
    2 * hosts * servers + 256
}

/// Raises the neighbour table's thresholds when the lab needs more than they allow,
/// recording the old values first so `down` can restore them.
pub fn neighbour_table(
    sys: &dyn System,
    plan: &LabPlan,
    store: &mut StateStore,
    step: &mut dyn FnMut(&str),
) -> Result<(), LabError> {
    let need = neighbours_needed(plan);
    for (key, want) in [(NEIGH_THRESH2, need), (NEIGH_THRESH3, 2 * need)] {
        let Some(now) = sys.read_sysctl(key) else { continue };
        if now >= want {
            continue;
        }
        store.will_set_sysctl(SysctlRecord { key: key.into(), original: now, set: want })?;
        step(&format!("raising {} from {now} to {want} for {} hosts", key.replace('/', "."), plan.hosts.len()));
        sys.write_sysctl(key, want)?;
    }
    Ok(())
}

/// Creates `names`, recording all of them first (one write), then one step each.
pub fn namespaces(
    sys: &dyn System,
    names: &[&str],
    store: &mut StateStore,
    step: &mut dyn FnMut(&str),
) -> Result<(), LabError> {
    store.will_create_namespaces(names)?;
    for ns in names {
        step(&format!("creating namespace {ns}"));
        sys.create_netns(ns)?;
    }
    Ok(())
}

/// Refuses names that exist and are not this lab's: nothing is created.
pub fn refuse_foreign(sys: &dyn System, plan: &LabPlan, store: &StateStore) -> Result<(), LabError> {
    let ours: Vec<&str> = store.state.namespaces.iter().map(String::as_str).collect();
    for ns in std::iter::once(&plan.fabric_ns).chain(plan.hosts.iter().map(|h| &h.ns)) {
        if sys.netns_exists(ns) && !ours.contains(&ns.as_str()) {
            return Err(LabError::Collision { name: format!("network namespace {ns}") });
        }
    }
    Ok(())
}

/// The kernel fabric: a namespace with a bridge per network, a veth pair per host and
/// network, nftables for partitions and loss.
pub fn kernel(
    sys: &dyn System,
    plan: &LabPlan,
    store: &mut StateStore,
    step: &mut dyn FnMut(&str),
) -> Result<(), LabError> {
    let mut names: Vec<&str> = vec![&plan.fabric_ns];
    names.extend(plan.hosts.iter().map(|h| h.ns.as_str()));
    namespaces(sys, &names, store, step)?;
    step("creating bridges");
    sys.links(&plan.fabric_ns, &fabric::bridge_ops(plan))?;
    step("loading nftables (partitions, loss)");
    sys.nft(&plan.fabric_ns, &fabric::nft_table_script())?;
    for h in &plan.hosts {
        step(&format!("wiring {}", h.name));
        sys.links(&plan.fabric_ns, &fabric::veth_ops(plan, h))?;
        sys.links(&h.ns, &fabric::host_ops(plan, h))?;
    }
    Ok(())
}

/// The userspace fabric: a TAP per host and network, plugged into one switch per network.
pub fn userspace(
    sys: &dyn System,
    plan: &LabPlan,
    store: &mut StateStore,
    step: &mut dyn FnMut(&str),
) -> Result<Vec<n3x_switch::Switch>, LabError> {
    let names: Vec<&str> = plan.hosts.iter().map(|h| h.ns.as_str()).collect();
    namespaces(sys, &names, store, step)?;
    let switches: Vec<n3x_switch::Switch> =
        plan.networks.iter().map(|n| n3x_switch::Switch::new(&n.name, plan.seed)).collect();
    for h in &plan.hosts {
        step(&format!("wiring {}", h.name));
        for i in &h.ifaces {
            sys.attach_tap(&h.ns, &i.ifname, u32::from(i.mtu), &switches[i.net_index], &h.name)?;
        }
        sys.links(&h.ns, &fabric::host_ops(plan, h))?;
    }
    Ok(switches)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::system::LinkOp;
    use crate::system::fake::{Call, Fail, Fake};

    fn plan() -> LabPlan {
        crate::plan::reference()
    }

    fn store(name: &str) -> (tempfile::TempDir, StateStore) {
        let root = tempfile::tempdir().unwrap();
        let s = StateStore::open(root.path(), name).unwrap();
        s.save().unwrap();
        (root, s)
    }

    #[test]
    fn kernel_fabric_builds_in_order_and_records_before_creating() {
        let p = plan();
        let (_root, mut st) = store("n3x");
        let sys = Fake::new();
        sys.check_record(&st.dir.join(crate::state::STATE_FILE));
        let mut steps = Vec::new();
        kernel(&sys, &p, &mut st, &mut |m| steps.push(m.to_owned())).unwrap();
        assert_eq!(sys.violations(), Vec::<String>::new());
        let calls = sys.calls();
        // Namespaces first: the fabric's, then every host's in plan order.
        let created: Vec<String> =
            calls.iter().filter_map(|c| if let Call::CreateNetns(n) = c { Some(n.clone()) } else { None }).collect();
        let mut want = vec![p.fabric_ns.clone()];
        want.extend(p.hosts.iter().map(|h| h.ns.clone()));
        assert_eq!(created, want);
        assert!(calls[..want.len()].iter().all(|c| matches!(c, Call::CreateNetns(_))));
        // Then the bridges and the table, before any host is wired.
        assert!(
            matches!(&calls[want.len()], Call::Links(ns, ops) if *ns == p.fabric_ns && matches!(ops[1], LinkOp::Bridge { .. }))
        );
        assert!(matches!(&calls[want.len() + 1], Call::Nft(ns, s) if *ns == p.fabric_ns && s.contains("set cut")));
        // Then each host: its veths in the fabric, then its own side.
        for (i, h) in p.hosts.iter().enumerate() {
            let at = want.len() + 2 + 2 * i;
            assert!(
                matches!(&calls[at], Call::Links(ns, ops) if *ns == p.fabric_ns && matches!(ops[0], LinkOp::Veth { .. }))
            );
            assert!(matches!(&calls[at + 1], Call::Links(ns, _) if *ns == h.ns));
        }
        assert_eq!(calls.len(), want.len() + 2 + 2 * p.hosts.len());
        // One step per kill point: 6 namespaces, bridges, nftables, 5 hosts.
        assert_eq!(steps.len(), 6 + 2 + 5, "{steps:?}");
        // Everything carries the lab's alias, so teardown recognises it.
        assert!(sys.link_aliases(&p.fabric_ns).unwrap().iter().all(|a| a == "n3x-lab:n3x"));
        assert!(!sys.link_aliases("n3x-n3x-n100-1").unwrap().is_empty());
    }

    #[test]
    fn a_failure_stops_the_build_with_everything_recorded() {
        let p = plan();
        let (_root, mut st) = store("n3x");
        let sys = Fake::new();
        sys.fail(Fail::Links("n3x-n3x-n100-1".into()));
        let err = kernel(&sys, &p, &mut st, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("n3x-n3x-n100-1"), "{err}");
        // Every namespace made so far is in the record, for `down`.
        let again = StateStore::open(st.dir.parent().unwrap(), "n3x").unwrap();
        for ns in sys.namespaces() {
            assert!(again.state.namespaces.contains(&ns), "{ns} made but not recorded");
        }
    }

    #[test]
    fn userspace_fabric_has_no_fabric_namespace() {
        let p = plan();
        let (_root, mut st) = store("n3x");
        let sys = Fake::new();
        let switches = userspace(&sys, &p, &mut st, &mut |_| {}).unwrap();
        assert_eq!(switches.len(), p.networks.len());
        assert!(!sys.namespaces().contains(&p.fabric_ns));
        let taps = sys.calls().iter().filter(|c| matches!(c, Call::AttachTap { .. })).count();
        assert_eq!(taps, p.hosts.iter().map(|h| h.ifaces.len()).sum::<usize>());
        switches.into_iter().for_each(n3x_switch::Switch::shutdown);
    }

    #[test]
    fn the_neighbour_table_grows_only_when_needed_and_is_recorded_first() {
        let small = plan();
        let (_root, mut st) = store("n3x");
        let sys = Fake::new();
        sys.set_sysctl(NEIGH_THRESH2, 512);
        sys.set_sysctl(NEIGH_THRESH3, 1024);
        neighbour_table(&sys, &small, &mut st, &mut |_| {}).unwrap();
        assert!(sys.calls().is_empty(), "the reference lab needs no change");
        let big = crate::plan::plan(&n3x_model::analyze(&n3x_gen::inventory("big", 1000, 3)).resolve().unwrap(), None);
        let mut steps = Vec::new();
        neighbour_table(&sys, &big, &mut st, &mut |m| steps.push(m.to_owned())).unwrap();
        assert_eq!(sys.sysctl(NEIGH_THRESH2), Some(6256));
        assert_eq!(sys.sysctl(NEIGH_THRESH3), Some(12512));
        assert_eq!(st.state.sysctls.len(), 2);
        assert_eq!(st.state.sysctls[0], SysctlRecord { key: NEIGH_THRESH2.into(), original: 512, set: 6256 });
        assert!(steps[0].contains("net.ipv4.neigh.default.gc_thresh2 from 512 to 6256"), "{steps:?}");
    }

    #[test]
    fn foreign_namespaces_are_refused() {
        let p = plan();
        let (_root, st) = store("n3x");
        let sys = Fake::new();
        sys.add_foreign_netns("n3x-n3x-n100-2", &[]);
        let e = refuse_foreign(&sys, &p, &st).unwrap_err();
        assert!(e.to_string().contains("n3x-n3x-n100-2"));
        assert!(sys.calls().is_empty());
    }
}
