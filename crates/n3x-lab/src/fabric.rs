//! The kernel fabric: a namespace holding one bridge per network, a veth pair per host
//! and network, nftables in the fabric namespace for partitions and loss, `tbf` for rate,
//! and `netem` for delay and jitter where the kernel has it.
//!
//! A host's profile impairs what the host sends (its egress), as netem on its interface
//! would: a round trip between A and B is delayed by delay(A) + delay(B).

use n3x_model::model::Profile;

use crate::error::LabError;
use crate::plan::{ALIAS_PREFIX, HostPlan, LabPlan, Needs};
use crate::system::{LinkOp, System};

/// nftables objects in the fabric namespace. They vanish with the namespace.
const NFT_TABLE: &str = "n3x";

/// What this kernel can do, probed once per boot and cached under /run/n3x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelCaps {
    pub netem: bool,
}

pub fn probe_caps(sys: &dyn System, root: &std::path::Path) -> KernelCaps {
    let cache = root.join(".kernel-netem");
    if let Ok(s) = std::fs::read_to_string(&cache) {
        return KernelCaps { netem: s.trim() == "yes" };
    }
    let netem = sys.probe_netem();
    let _ = std::fs::create_dir_all(root);
    let _ = std::fs::write(&cache, if netem { "yes\n" } else { "no\n" });
    KernelCaps { netem }
}

/// Why the kernel fabric cannot serve `needs`, if it cannot.
pub fn kernel_gap(needs: Needs, caps: KernelCaps) -> Option<&'static str> {
    (needs.delay && !caps.netem).then_some("delay or jitter (this kernel has no sch_netem)")
}

pub fn alias(cluster: &str) -> String {
    format!("{ALIAS_PREFIX}{cluster}")
}

/// The bridges (in the fabric namespace), one per network.
pub fn bridge_ops(plan: &LabPlan) -> Vec<LinkOp> {
    let mut l = vec![LinkOp::LoopbackUp];
    for n in &plan.networks {
        l.push(LinkOp::Bridge { name: n.bridge.clone(), mtu: n.mtu, alias: alias(&plan.cluster) });
    }
    l
}

/// `host`'s veth pairs (fabric namespace side), peers created straight in its namespace.
pub fn veth_ops(plan: &LabPlan, host: &HostPlan) -> Vec<LinkOp> {
    host.ifaces
        .iter()
        .map(|i| LinkOp::Veth {
            name: i.port.clone(),
            mtu: i.mtu,
            master: plan.networks[i.net_index].bridge.clone(),
            alias: alias(&plan.cluster),
            peer: i.ifname.clone(),
            peer_ns: host.ns.clone(),
        })
        .collect()
}

/// `host`'s side (its namespace): loopback, then each interface's address, then up.
pub fn host_ops(plan: &LabPlan, host: &HostPlan) -> Vec<LinkOp> {
    let mut l = vec![LinkOp::LoopbackUp];
    for i in &host.ifaces {
        l.push(LinkOp::Addr { dev: i.ifname.clone(), address: i.address, prefix: i.prefix });
        l.push(LinkOp::Up { name: i.ifname.clone(), alias: alias(&plan.cluster) });
    }
    l
}

/// The nftables table of the fabric: a set of cut (in port, out port) pairs for
/// partitions, and a chain where per-host loss rules go.
pub fn nft_table_script() -> String {
    format!(
        "table bridge {NFT_TABLE} {{\n\
         \x20 set cut {{ type ifname . ifname; }}\n\
         \x20 chain impair {{ }}\n\
         \x20 chain forward {{ type filter hook forward priority 0; policy accept;\n\
         \x20   iifname . oifname @cut counter drop\n\
         \x20   jump impair\n\
         \x20 }}\n\
         }}\n"
    )
}

/// Replaces every loss rule with those of the hosts' current profiles.
pub fn loss_script(plan: &LabPlan, profiles: &[(usize, Profile)]) -> String {
    let mut s = format!("flush chain bridge {NFT_TABLE} impair\n");
    for (host, p) in profiles {
        let Some(loss) = p.loss_pct.filter(|l| *l > 0.0) else { continue };
        // numgen draws 0..1_000_000: loss resolves to 0.0001 %.
        let threshold = (loss * 10_000.0).round() as u64;
        for i in &plan.hosts[*host].ifaces {
            s.push_str(&format!(
                "add rule bridge {NFT_TABLE} impair iifname \"{}\" numgen random mod 1000000 < {threshold} counter drop\n",
                i.port
            ));
        }
    }
    s
}

/// nftables commands cutting every port of `a` from every port of `b` on each network.
pub fn partition_script(plan: &LabPlan, a: &[usize], b: &[usize]) -> String {
    let mut pairs = Vec::new();
    for &x in a {
        for &y in b {
            for ix in &plan.hosts[x].ifaces {
                for iy in plan.hosts[y].ifaces.iter().filter(|iy| iy.net_index == ix.net_index) {
                    pairs.push(format!("\"{}\" . \"{}\"", ix.port, iy.port));
                    pairs.push(format!("\"{}\" . \"{}\"", iy.port, ix.port));
                }
            }
        }
    }
    if pairs.is_empty() {
        return String::new();
    }
    format!("add element bridge {NFT_TABLE} cut {{ {} }}\n", pairs.join(", "))
}

pub fn heal_script() -> String {
    format!("flush set bridge {NFT_TABLE} cut\n")
}

/// `tc` arguments shaping `iface`'s egress in its host namespace for `p`, or None when
/// the profile asks for nothing the qdisc does. Netem carries delay, jitter and rate
/// together; without netem only rate (tbf) is possible here.
pub fn qdisc_args(iface: &str, p: &Profile, caps: KernelCaps) -> Option<Vec<String>> {
    let delay = p.delay_ms.unwrap_or(0.0);
    let jitter = p.jitter_ms.unwrap_or(0.0);
    let mut a: Vec<String> = ["qdisc", "replace", "dev", iface, "root"].iter().map(|s| s.to_string()).collect();
    if caps.netem && (delay > 0.0 || jitter > 0.0) {
        a.extend(["netem".into(), "delay".into(), format!("{delay}ms")]);
        if jitter > 0.0 {
            a.extend([format!("{jitter}ms"), "distribution".into(), "normal".into()]);
        }
        if let Some(r) = p.rate_mbit {
            a.extend(["rate".into(), format!("{r}mbit")]);
        }
        return Some(a);
    }
    let rate = p.rate_mbit?;
    // Burst: at least one jumbo frame plus headroom; latency bounds the queue (tail drop).
    let burst = ((rate * 1_000_000.0 / 8.0 / 250.0) as u64).max(16 * 1024);
    a.extend(["tbf".into(), "rate".into(), format!("{rate}mbit"), "burst".into(), burst.to_string()]);
    a.extend(["latency".into(), "100ms".into()]);
    Some(a)
}

/// What applying `new` profiles (host index, profile) to the kernel fabric takes, after
/// `old` (None at build time: no qdisc is set yet). Pure: the caller runs the commands.
pub struct ProfileCommands {
    /// (namespace, `tc` arguments), in order.
    pub tc: Vec<(String, Vec<String>)>,
    /// The nftables script replacing every loss rule.
    pub nft: String,
}

pub fn profile_commands(
    plan: &LabPlan,
    old: Option<&[(usize, Profile)]>,
    new: &[(usize, Profile)],
    caps: KernelCaps,
) -> ProfileCommands {
    let mut tc = Vec::new();
    for (host, p) in new {
        let h = &plan.hosts[*host];
        let had = old.and_then(|o| o.iter().find(|(x, _)| x == host)).map(|(_, p)| *p);
        for i in &h.ifaces {
            match qdisc_args(&i.ifname, p, caps) {
                Some(args) => tc.push((h.ns.clone(), args)),
                // Back to the default qdisc, only where one was set.
                None if had.is_some_and(|o| qdisc_args(&i.ifname, &o, caps).is_some()) => tc.push((
                    h.ns.clone(),
                    ["qdisc", "del", "dev", i.ifname.as_str(), "root"].iter().map(|s| s.to_string()).collect(),
                )),
                None => {}
            }
        }
    }
    ProfileCommands { tc, nft: loss_script(plan, new) }
}

/// Applies profile commands to the running kernel fabric.
pub fn apply_profiles(sys: &dyn System, plan: &LabPlan, cmds: &ProfileCommands) -> Result<(), LabError> {
    for (ns, args) in &cmds.tc {
        sys.tc(ns, args)?;
    }
    sys.nft(&plan.fabric_ns, &cmds.nft)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn plan() -> LabPlan {
        crate::plan::reference()
    }

    #[test]
    fn partitions_cut_both_directions_on_every_shared_network() {
        let p = plan();
        let s = partition_script(&p, &[2], &[3, 4]);
        // n100-1 (index 2) against n100-2 and n100-3, two networks each, both directions.
        assert_eq!(s.matches(" . ").count(), 2 * 2 * 2);
        assert!(s.contains("\"h2n0\" . \"h3n0\"") && s.contains("\"h3n0\" . \"h2n0\""));
        assert!(!s.contains("\"h2n0\" . \"h3n1\""), "never across networks");
    }

    #[test]
    fn impairments_map_to_tc_and_nft() {
        let p = plan();
        let edge = p.host("jetson-1").unwrap().profile;
        let no_netem = KernelCaps { netem: false };
        let tbf = qdisc_args("cluster", &edge, no_netem).unwrap().join(" ");
        assert!(tbf.contains("tbf rate 10mbit"), "{tbf}");
        let netem = qdisc_args("cluster", &edge, KernelCaps { netem: true }).unwrap().join(" ");
        assert!(netem.contains("netem delay 50ms 10ms distribution normal rate 10mbit"), "{netem}");
        assert!(qdisc_args("cluster", &Profile::default(), no_netem).is_none());
        let loss = loss_script(&p, &[(0, edge)]);
        assert!(loss.contains("iifname \"h0n0\" numgen random mod 1000000 < 20000"), "{loss}");
        assert_eq!(kernel_gap(p.needs(), no_netem), Some("delay or jitter (this kernel has no sch_netem)"));
    }

    #[test]
    fn link_ops_wire_each_interface_to_its_network_bridge() {
        let p = plan();
        let bridges = bridge_ops(&p);
        assert_eq!(bridges[0], LinkOp::LoopbackUp);
        assert_eq!(bridges.len(), 1 + p.networks.len());
        let j1 = p.host("jetson-1").unwrap();
        let veths = veth_ops(&p, j1);
        assert_eq!(veths.len(), 2);
        let LinkOp::Veth { name, master, peer, peer_ns, alias, mtu } = &veths[1] else { panic!("{veths:?}") };
        assert_eq!((name.as_str(), master.as_str(), peer.as_str()), ("h0n1", "br1", "storage"));
        assert_eq!((peer_ns.as_str(), alias.as_str(), *mtu), ("n3x-n3x-jetson-1", "n3x-lab:n3x", 9000));
        // Addresses before the link comes up, loopback first.
        let host = host_ops(&p, j1);
        assert_eq!(host[0], LinkOp::LoopbackUp);
        assert!(matches!(&host[1], LinkOp::Addr { dev, prefix: 24, .. } if dev == "cluster"));
        assert!(matches!(&host[2], LinkOp::Up { name, .. } if name == "cluster"));
    }

    #[test]
    fn profile_commands_touch_only_what_changes() {
        let p = plan();
        let caps = KernelCaps { netem: false };
        let slow = Profile { rate_mbit: Some(10.0), ..Profile::default() };
        let defaults: Vec<(usize, Profile)> = p.hosts.iter().map(|h| (h.index, Profile::default())).collect();
        // Build time: every host on the default profile needs no qdisc at all.
        let c = profile_commands(&p, None, &defaults, caps);
        assert!(c.tc.is_empty(), "{:?}", c.tc);
        assert_eq!(c.nft, "flush chain bridge n3x impair\n");
        // One host slowed: a tbf on each of its interfaces, nothing elsewhere.
        let slowed = [(0, slow)];
        let c = profile_commands(&p, Some(&defaults), &slowed, caps);
        assert_eq!(c.tc.len(), 2);
        assert!(c.tc.iter().all(|(ns, a)| ns == "n3x-n3x-jetson-1" && a.join(" ").contains("tbf rate 10mbit")));
        // Back to default: the qdiscs set before are deleted.
        let c = profile_commands(&p, Some(&slowed), &[(0, Profile::default())], caps);
        assert_eq!(c.tc.len(), 2);
        assert!(c.tc.iter().all(|(_, a)| a.join(" ").starts_with("qdisc del dev")));
    }
}

/// The fabric `--fabric` asked for, or what `auto` picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FabricChoice {
    Auto,
    Kernel,
    Userspace,
}

/// Decides the fabric for `needs`, and says why. `kernel` refuses what it cannot do, never
/// skipping an impairment silently.
pub fn choose(
    choice: FabricChoice,
    needs: Needs,
    caps: KernelCaps,
) -> Result<(crate::plan::FabricKind, String), LabError> {
    use crate::plan::FabricKind;
    let gap = kernel_gap(needs, caps);
    match (choice, gap) {
        (FabricChoice::Userspace, _) => Ok((FabricKind::Userspace, "asked for with --fabric userspace".into())),
        (FabricChoice::Kernel, None) => Ok((FabricKind::Kernel, "asked for with --fabric kernel".into())),
        (FabricChoice::Kernel, Some(what)) => Err(LabError::Unsupported {
            fabric: "kernel".into(),
            what: format!("give these links {what}"),
            fix: "use `--fabric userspace` (or `auto`), or a profile without delay (`--profile default`)".into(),
        }),
        (FabricChoice::Auto, None) => {
            Ok((FabricKind::Kernel, "auto: the kernel can do every impairment asked for".into()))
        }
        (FabricChoice::Auto, Some(what)) => {
            Ok((FabricKind::Userspace, format!("auto: the profiles need {what}, which the userspace switch provides")))
        }
    }
}
