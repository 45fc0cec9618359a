//! The kernel fabric: a namespace holding one bridge per network, a veth pair per host
//! and network, nftables in the fabric namespace for partitions and loss, `tbf` for rate,
//! and `netem` for delay and jitter where the kernel has it.
//!
//! A host's profile impairs what the host sends (its egress), as netem on its interface
//! would: a round trip between A and B is delayed by delay(A) + delay(B).

use n3x_model::model::Profile;

use crate::error::LabError;
use crate::plan::{ALIAS_PREFIX, HostPlan, LabPlan, Needs};
use crate::sys;

/// nftables objects in the fabric namespace. They vanish with the namespace.
const NFT_TABLE: &str = "n3x";

/// What this kernel can do, probed once per boot and cached under /run/n3x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelCaps {
    pub netem: bool,
}

pub fn probe_caps() -> KernelCaps {
    let cache = std::path::Path::new(crate::plan::STATE_ROOT).join(".kernel-netem");
    if let Ok(s) = std::fs::read_to_string(&cache) {
        return KernelCaps { netem: s.trim() == "yes" };
    }
    let ns = format!("n3x-probe-{}", std::process::id());
    let netem = sys::run("ip", &["netns", "add", &ns], None).is_ok()
        && sys::run("ip", &["-n", &ns, "link", "set", "lo", "up"], None).is_ok()
        && sys::run("tc", &["-n", &ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"], None).is_ok();
    let _ = sys::run("ip", &["netns", "del", &ns], None);
    let _ = std::fs::create_dir_all(crate::plan::STATE_ROOT);
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

/// `ip` lines (run in the fabric namespace) creating the bridges.
pub fn bridge_lines(plan: &LabPlan) -> Vec<String> {
    let mut l = vec!["link set lo up".to_owned()];
    for n in &plan.networks {
        l.push(format!("link add {} type bridge forward_delay 0 stp_state 0 mcast_snooping 0", n.bridge));
        l.push(format!("link set {} mtu {} alias {} up", n.bridge, n.mtu, alias(&plan.cluster)));
    }
    l
}

/// `ip` lines (fabric namespace) creating `host`'s veth pairs, peers straight into its namespace.
pub fn veth_lines(plan: &LabPlan, host: &HostPlan) -> Vec<String> {
    let mut l = Vec::new();
    for i in &host.ifaces {
        let bridge = &plan.networks[i.net_index].bridge;
        l.push(format!(
            "link add {} mtu {} type veth peer name {} mtu {} netns {}",
            i.port, i.mtu, i.ifname, i.mtu, host.ns
        ));
        l.push(format!("link set {} master {bridge} alias {} up", i.port, alias(&plan.cluster)));
    }
    l
}

/// `ip` lines (host namespace) giving `host` its addresses.
pub fn host_lines(plan: &LabPlan, host: &HostPlan) -> Vec<String> {
    let mut l = vec!["link set lo up".to_owned()];
    for i in &host.ifaces {
        l.push(format!("link set {} alias {}", i.ifname, alias(&plan.cluster)));
        l.push(format!("addr add {}/{} dev {}", i.address, i.prefix, i.ifname));
        l.push(format!("link set {} up", i.ifname));
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

/// Applies `profiles` (host index, profile) to the running kernel fabric.
pub fn apply_profiles(plan: &LabPlan, profiles: &[(usize, Profile)], caps: KernelCaps) -> Result<(), LabError> {
    for (host, p) in profiles {
        let h = &plan.hosts[*host];
        for i in &h.ifaces {
            match qdisc_args(&i.ifname, p, caps) {
                Some(args) => {
                    let mut full = vec!["-n".to_owned(), h.ns.clone()];
                    full.extend(args);
                    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
                    sys::run("tc", &refs, None)?;
                }
                None => {
                    // Back to the default qdisc; "no qdisc to delete" is fine.
                    let _ = sys::run("tc", &["-n", &h.ns, "qdisc", "del", "dev", &i.ifname, "root"], None);
                }
            }
        }
    }
    sys::nft(&plan.fabric_ns, &loss_script(plan, profiles))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn plan() -> LabPlan {
        let a = n3x_model::analyze(include_str!("../../../n3x.toml"));
        crate::plan::plan(&a.resolve().unwrap(), None)
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
