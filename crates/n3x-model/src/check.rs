//! Semantic checks over the decoded model: the mistakes that are valid TOML but would
//! break the cluster on the hardware. Each check reads only what decoded cleanly.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use crate::diag::{Code, Diagnostic};
use crate::model::*;
use crate::span::{Sp, Span};
use crate::suggest::did_you_mean;

/// The network every host must carry: k3s node IPs, the API server, etcd and flannel use it.
pub const CLUSTER_NETWORK: &str = "cluster";

pub(crate) fn check(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    networks(inv, out);
    k3s(inv, out);
    for host in inv.hosts.values() {
        host_interfaces(inv, host, out);
        host_hardware(host, out);
    }
    addresses(inv, out);
    roles(inv, out);
    addons(inv, out);
    monitoring(inv, out);
    security(inv, out);
    lab(inv, out);
    storage_mtu(inv, out);
    routing(inv, out);
    access(inv, out);
    nic_names(inv, out);
}

fn unknown_network(inv: &Inventory, net: &Sp<String>, context: &str) -> Diagnostic {
    let help = match did_you_mean(&net.value, inv.networks.keys().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`? or define `[networks.{}]`", net.value),
        None => format!("define `[networks.{}]`, or use one of: {}", net.value, list(inv.networks.keys())),
    };
    Diagnostic::new(
        Code::UnknownNetwork,
        net.span.clone(),
        format!("{context} refers to network `{}`, which is not defined", net.value),
        "no such network",
    )
    .help(help)
}

fn list<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let v: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    if v.is_empty() { "(none defined)".into() } else { v.join(", ") }
}

fn networks(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    if !inv.networks.is_empty() && !inv.networks.contains_key(CLUSTER_NETWORK) {
        let first = inv.networks.values().min_by_key(|n| n.name.span.start).map(|n| n.name.span.clone());
        out.push(
            Diagnostic::new(
                Code::MissingClusterNetwork,
                first.unwrap_or(0..0),
                "no network is called `cluster`",
                "networks are defined here, but none is `cluster`",
            )
            .help("k3s node IPs, the API server, etcd and flannel use the `cluster` network: rename one network or add `[networks.cluster]`"),
        );
    }
    let nets: Vec<&Network> = sorted_by_span(inv.networks.values(), |n| n.name.span.start);
    for (i, a) in nets.iter().enumerate() {
        for b in &nets[i + 1..] {
            if let (Some(va), Some(vb)) = (&a.vlan, &b.vlan) {
                if va.value == vb.value {
                    out.push(
                        Diagnostic::new(
                            Code::DuplicateVlan,
                            vb.span.clone(),
                            format!(
                                "VLAN {} of network `{}` is already used by `{}`",
                                vb.value, b.name.value, a.name.value
                            ),
                            "duplicate VLAN id",
                        )
                        .related(va.span.clone(), format!("first used by `{}` here", a.name.value))
                        .help("give each network its own VLAN id: one VLAN, one L2 segment"),
                    );
                }
            }
            if let (Some(ca), Some(cb)) = (&a.cidr, &b.cidr) {
                if ca.value.overlaps(&cb.value) {
                    out.push(
                        Diagnostic::new(
                            Code::OverlappingCidrs,
                            cb.span.clone(),
                            format!(
                                "network `{}` ({}) overlaps network `{}` ({})",
                                b.name.value, cb.value, a.name.value, ca.value
                            ),
                            "overlapping CIDR",
                        )
                        .related(ca.span.clone(), format!("`{}` is defined here", a.name.value))
                        .help("give each network a disjoint CIDR, or the hosts cannot route between them"),
                    );
                }
            }
        }
    }
}

fn sorted_by_span<'a, T>(items: impl Iterator<Item = &'a T>, key: impl Fn(&T) -> usize) -> Vec<&'a T> {
    let mut v: Vec<&T> = items.collect();
    v.sort_by_key(|t| key(t));
    v
}

fn k3s(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    let k = &inv.k3s;
    for (key, cidr) in [("cluster_cidr", &k.cluster_cidr), ("service_cidr", &k.service_cidr)] {
        for net in sorted_by_span(inv.networks.values(), |n| n.name.span.start) {
            let Some(nc) = &net.cidr else { continue };
            if cidr.value.overlaps(&nc.value) {
                out.push(
                    Diagnostic::new(
                        Code::K3sCidrOverlap,
                        cidr.span.clone(),
                        format!(
                            "`k3s.{key}` ({}) overlaps host network `{}` ({})",
                            cidr.value, net.name.value, nc.value
                        ),
                        "overlaps a host network",
                    )
                    .related(nc.span.clone(), format!("`{}` is defined here", net.name.value))
                    .help(format!(
                        "move `k3s.{key}` or the network: pods and services must not share addresses with hosts"
                    )),
                );
            }
        }
    }
    if k.cluster_cidr.value.overlaps(&k.service_cidr.value) {
        out.push(
            Diagnostic::new(
                Code::K3sCidrOverlap,
                k.service_cidr.span.clone(),
                format!(
                    "`k3s.service_cidr` ({}) overlaps `k3s.cluster_cidr` ({})",
                    k.service_cidr.value, k.cluster_cidr.value
                ),
                "overlaps the pod network",
            )
            .related(k.cluster_cidr.span.clone(), "the pod network")
            .help("use disjoint pod and service networks, e.g. the defaults `10.42.0.0/16` and `10.43.0.0/16`"),
        );
    }
    if !k.service_cidr.value.contains(k.cluster_dns.value) {
        out.push(
            Diagnostic::new(
                Code::ClusterDnsOutsideServiceCidr,
                k.cluster_dns.span.clone(),
                format!(
                    "`k3s.cluster_dns` {} is outside `k3s.service_cidr` {}",
                    k.cluster_dns.value, k.service_cidr.value
                ),
                "not in the service network",
            )
            .related(k.service_cidr.span.clone(), "the service network")
            .help(format!(
                "CoreDNS gets a service IP: pick an address inside {}, conventionally the tenth (`{}`)",
                k.service_cidr.value,
                Ipv4Addr::from(u32::from(k.service_cidr.value.addr()) + 10)
            )),
        );
    }
    let e = &k.etcd;
    let (hb, el) = (e.heartbeat_ms.value, e.election_ms.value);
    if el < 5 * hb {
        out.push(
            Diagnostic::new(
                Code::EtcdTiming,
                e.election_ms.span.clone(),
                format!("etcd election timeout {el} ms is less than 5 x the heartbeat of {hb} ms"),
                "etcd refuses to start with this",
            )
            .related(e.heartbeat_ms.span.clone(), "the heartbeat interval")
            .help(format!("raise `k3s.etcd.election_ms` to at least {} (etcd suggests 10 x heartbeat)", 5 * hb)),
        );
    } else if el > 50_000 {
        out.push(
            Diagnostic::new(
                Code::EtcdTiming,
                e.election_ms.span.clone(),
                format!("etcd election timeout {el} ms is above etcd's limit of 50000 ms"),
                "etcd refuses to start with this",
            )
            .help("lower `k3s.etcd.election_ms` to 50000 or less"),
        );
    }
}

/// Interfaces of one host: bonds, untagged networks, networks carried twice.
fn host_interfaces(inv: &Inventory, host: &Host, out: &mut Vec<Diagnostic>) {
    let h = &host.name.value;
    // NIC name -> (span, bond it belongs to).
    let mut members: HashMap<&str, (&Span, &str)> = HashMap::new();
    for iface in &host.interfaces {
        let Some(bond) = &iface.bond else { continue };
        for m in &bond.members {
            if let Some((first, other)) = members.get(m.value.as_str()) {
                let same = *other == iface.name.value;
                out.push(
                    Diagnostic::new(
                        Code::NicInTwoBonds,
                        m.span.clone(),
                        if same {
                            format!("NIC `{}` is listed twice in bond `{}` of `{h}`", m.value, iface.name.value)
                        } else {
                            format!(
                                "NIC `{}` of `{h}` is a member of bonds `{other}` and `{}`",
                                m.value, iface.name.value
                            )
                        },
                        "already a bond member",
                    )
                    .related((*first).clone(), format!("first listed in `{other}` here"))
                    .help("a NIC can belong to one bond only: remove it from one of them"),
                );
            } else {
                members.insert(&m.value, (&m.span, &iface.name.value));
            }
        }
    }
    for iface in &host.interfaces {
        if let Some((span, bond)) = members.get(iface.name.value.as_str()) {
            out.push(
                Diagnostic::new(
                    Code::NicBondAndInterface,
                    iface.name.span.clone(),
                    format!("`{}` of `{h}` is a member of bond `{bond}` and also its own interface", iface.name.value),
                    "configured as an interface",
                )
                .related((*span).clone(), format!("member of `{bond}` here"))
                .help(format!("put the networks on `{bond}` and remove `interfaces.{}`", iface.name.value)),
            );
        }
    }

    let mut carried: HashMap<&str, &Sp<String>> = HashMap::new();
    for iface in &host.interfaces {
        let mut untagged: Option<&Sp<String>> = None;
        for net in &iface.networks {
            let Some(def) = inv.networks.get(&net.value) else {
                out.push(unknown_network(inv, net, &format!("interface `{}` of `{h}`", iface.name.value)));
                continue;
            };
            if let Some(first) = carried.get(net.value.as_str()) {
                out.push(
                    Diagnostic::new(
                        Code::NetworkOnTwoInterfaces,
                        net.span.clone(),
                        format!("`{h}` carries network `{}` twice", net.value),
                        "carried again here",
                    )
                    .related(first.span.clone(), "first carried here")
                    .help("carry each network on one interface; bond the NICs to use both"),
                );
                continue;
            }
            carried.insert(&net.value, net);
            if def.vlan.is_none() {
                if let Some(first) = untagged {
                    out.push(
                        Diagnostic::new(
                            Code::TwoUntaggedNetworks,
                            net.span.clone(),
                            format!(
                                "interface `{}` of `{h}` carries two untagged networks, `{}` and `{}`",
                                iface.name.value, first.value, net.value
                            ),
                            "second untagged network",
                        )
                        .related(first.span.clone(), "first untagged network")
                        .help(format!("give `[networks.{}]` a `vlan` id, or move it to another interface", net.value)),
                    );
                } else {
                    untagged = Some(net);
                }
            }
        }
    }

    if !host.interfaces.is_empty() || !host.addresses.is_empty() {
        for (net, addr) in &host.addresses {
            if !carried.contains_key(net.value.as_str()) && inv.networks.contains_key(&net.value) {
                out.push(
                    Diagnostic::new(
                        Code::AddressNotCarried,
                        addr.span.clone(),
                        format!(
                            "`{h}` has an address on `{}`, but none of its interfaces carries `{}`",
                            net.value, net.value
                        ),
                        "address for an uncarried network",
                    )
                    .help(format!("add \"{}\" to an interface's `networks`, or remove this address", net.value)),
                );
            }
        }
    }
    let mut carried_sorted: Vec<&&Sp<String>> = carried.values().collect();
    carried_sorted.sort_by_key(|n| n.span.start);
    for net in carried_sorted {
        let unreadable = inv.is_unreadable(&format!("hosts.{h}.addresses.{}", net.value));
        if !unreadable && !host.addresses.iter().any(|(n, _)| n.value == net.value) {
            let hint = inv
                .networks
                .get(&net.value)
                .and_then(|n| n.cidr.as_ref())
                .map(|c| format!(" (an address inside {})", c.value))
                .unwrap_or_default();
            out.push(
                Diagnostic::new(
                    Code::MissingAddress,
                    net.span.clone(),
                    format!("`{h}` carries network `{}` but has no address on it", net.value),
                    "carried without an address",
                )
                .help(format!("add `{} = \"...\"`{hint} to `hosts.{h}.addresses`", net.value)),
            );
        }
    }
    if inv.networks.contains_key(CLUSTER_NETWORK) && !carried.contains_key(CLUSTER_NETWORK) {
        out.push(
            Diagnostic::new(
                Code::HostWithoutClusterNetwork,
                host.name.span.clone(),
                format!("`{h}` does not carry the `cluster` network"),
                "no interface carries `cluster`",
            )
            .help(format!(
                "every node joins k3s over `cluster`: add it to an interface, e.g. `interfaces.eth0 = {{ networks = [\"cluster\"] }}`, and give `{h}` a cluster address"
            )),
        );
    }
}

fn host_hardware(host: &Host, out: &mut Vec<Diagnostic>) {
    let Some(hw) = &host.hardware else { return };
    let h = &host.name.value;
    if let Some(fw) = &host.firmware {
        if !hw.value.is_jetson() {
            out.push(
                Diagnostic::new(
                    Code::FirmwareOnNonJetson,
                    fw.span.clone(),
                    format!("`firmware` is set on `{h}`, whose hardware `{}` is not a Jetson", hw.value.as_str()),
                    "only Jetsons take an L4T firmware",
                )
                .related(hw.span.clone(), "hardware set here")
                .help("remove `firmware`: it pins the NVIDIA L4T release of Jetson boards"),
            );
        } else if fw.value == "35.3.1" {
            out.push(
                Diagnostic::new(
                    Code::JetsonFirmwareBroken,
                    fw.span.clone(),
                    format!("L4T firmware 35.3.1 on `{h}` cannot boot from USB"),
                    "USB boot is broken in this release",
                )
                .help("pin `firmware = \"35.2.1\"`"),
            );
        }
    }
    if hw.value.is_jetson() && host.is_server() {
        if let Some(role) = &host.role {
            out.push(
                Diagnostic::new(
                    Code::JetsonServer,
                    role.span.clone(),
                    format!("`{h}` is a Jetson running as an etcd server"),
                    "etcd on SD/eMMC-class storage",
                )
                .related(hw.span.clone(), "Jetson hardware")
                .help("etcd fsyncs on every write and wears out or stalls slow flash: make the Jetson an agent and use x86 servers with NVMe"),
            );
        }
    }
}

fn addresses(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<Ipv4Addr, (&str, &Span)> = BTreeMap::new();
    let mut all: Vec<(&Host, &Sp<String>, &Sp<Ipv4Addr>)> =
        inv.hosts.values().flat_map(|h| h.addresses.iter().map(move |(n, a)| (h, n, a))).collect();
    all.sort_by_key(|(_, _, a)| a.span.start);
    for (host, net, addr) in all {
        let h = &host.name.value;
        let Some(def) = inv.networks.get(&net.value) else {
            out.push(unknown_network(inv, net, &format!("`hosts.{h}.addresses`")));
            continue;
        };
        if let Some(cidr) = &def.cidr {
            if !cidr.value.contains(addr.value) {
                out.push(
                    Diagnostic::new(
                        Code::AddressOutsideCidr,
                        addr.span.clone(),
                        format!(
                            "address `{}` of `{h}` is outside network `{}` ({})",
                            addr.value, net.value, cidr.value
                        ),
                        format!("not in {}", cidr.value),
                    )
                    .related(cidr.span.clone(), format!("`{}` is defined here", net.value))
                    .help(format!("pick an address inside {}", cidr.value)),
                );
            } else if cidr.value.network_address() == Some(addr.value)
                || cidr.value.broadcast_address() == Some(addr.value)
            {
                let which = if cidr.value.network_address() == Some(addr.value) { "network" } else { "broadcast" };
                out.push(
                    Diagnostic::new(
                        Code::AddressReserved,
                        addr.span.clone(),
                        format!(
                            "address `{}` of `{h}` is the {which} address of `{}` ({})",
                            addr.value, net.value, cidr.value
                        ),
                        format!("the {which} address"),
                    )
                    .help(format!("pick a host address inside {}, not its first or last", cidr.value)),
                );
            }
        }
        if let Some((first, span)) = seen.get(&addr.value) {
            out.push(
                Diagnostic::new(
                    Code::DuplicateAddress,
                    addr.span.clone(),
                    format!("address `{}` of `{h}` is already used by `{first}`", addr.value),
                    "duplicate address",
                )
                .related((*span).clone(), format!("used by `{first}` here"))
                .help("give every host its own address on each network"),
            );
        } else {
            seen.insert(addr.value, (h, &addr.span));
        }
    }
}

fn roles(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    let hosts = sorted_by_span(inv.hosts.values(), |h| h.name.span.start);
    let all_roles_known = hosts.iter().all(|h| h.role.is_some());
    let servers: Vec<&&Host> = hosts.iter().filter(|h| h.is_server()).collect();
    for h in &hosts {
        if let (Some(init), false) = (&h.init, h.is_server()) {
            if init.value && h.role.is_some() {
                out.push(
                    Diagnostic::new(
                        Code::InitOnAgent,
                        init.span.clone(),
                        format!("`{}` is an agent but has `init = true`", h.name.value),
                        "only a server can bootstrap etcd",
                    )
                    .help(format!("remove `init` from `{}`, and set `init = true` on one server", h.name.value)),
                );
            }
        }
    }
    // A role or init that could not be read already has its error; counting without it
    // would only add a misleading one.
    let unreadable = hosts.iter().any(|h| inv.is_unreadable(&format!("hosts.{}.init", h.name.value)));
    if hosts.is_empty() || !all_roles_known || unreadable {
        return;
    }
    if servers.is_empty() {
        out.push(
            Diagnostic::new(
                Code::NoServer,
                hosts[0].name.span.clone(),
                "no host is a server: the cluster has no control plane",
                "every host is an agent",
            )
            .help("set `role = \"server\"` and `init = true` on one host (three servers for HA)"),
        );
        return;
    }
    let inits: Vec<&&&Host> = servers.iter().filter(|h| h.is_init()).collect();
    match inits.len() {
        0 => out.push(
            Diagnostic::new(
                Code::NoInitServer,
                servers[0].name.span.clone(),
                "no server has `init = true`: nothing bootstraps etcd",
                "first server",
            )
            .help(format!("set `init = true` on exactly one server, e.g. `{}`", servers[0].name.value)),
        ),
        1 => {}
        _ => {
            let mut d = Diagnostic::new(
                Code::SeveralInitServers,
                inits[1].init.as_ref().map_or(inits[1].name.span.clone(), |i| i.span.clone()),
                format!("{} servers have `init = true`: each would bootstrap its own etcd cluster", inits.len()),
                format!("`{}` also bootstraps", inits[1].name.value),
            )
            .help(format!(
                "keep `init = true` on one server only (e.g. `{}`); the others join it",
                inits[0].name.value
            ));
            if let Some(i) = &inits[0].init {
                d = d.related(i.span.clone(), format!("`{}` bootstraps here", inits[0].name.value));
            }
            for extra in &inits[2..] {
                if let Some(i) = &extra.init {
                    d = d.related(i.span.clone(), format!("and `{}` here", extra.name.value));
                }
            }
            out.push(d);
        }
    }
    let n = servers.len();
    let last = servers[n - 1];
    let role_span = last.role.as_ref().map_or(last.name.span.clone(), |r| r.span.clone());
    if n == 1 {
        out.push(
            Diagnostic::new(
                Code::SingleServer,
                role_span,
                "a single server: the control plane is not highly available",
                "the only server",
            )
            .help("this works, but losing this host stops the cluster: use 3 servers for HA"),
        );
    } else if n % 2 == 0 {
        let tolerated = (n - 1) / 2;
        let mut d = Diagnostic::new(
            Code::EvenServers,
            role_span,
            format!("{n} servers is an even number: etcd needs {} for quorum and tolerates {tolerated} failure{}, no more than {} servers", n / 2 + 1, if tolerated == 1 { "" } else { "s" }, n - 1),
            format!("server number {n}"),
        )
        .help(format!("use {} or {} servers: make one server an agent, or add one", n - 1, n + 1));
        if let Some(r) = &servers[0].role {
            d = d.related(r.span.clone(), "the first server");
        }
        out.push(d);
    }
}

fn addons(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    let a = &inv.addons;
    if let Some(m) = &a.multus {
        for net in &m.networks {
            if !inv.networks.contains_key(&net.value) {
                out.push(unknown_network(inv, net, "`addons.multus.networks`"));
            }
        }
    }
    let Some(l) = a.longhorn.as_ref().filter(|l| l.enable.value) else { return };
    if !a.kyverno_enabled() {
        let mut d = Diagnostic::new(
            Code::LonghornWithoutKyverno,
            l.enable.span.clone(),
            "Longhorn is enabled without Kyverno",
            "Longhorn's pods cannot find iscsiadm on NixOS without the PATH policy",
        )
        .help("add `[addons.kyverno]` with `enable = true`: its policy puts the NixOS system paths on Longhorn's PATH");
        if let Some(k) = &a.kyverno {
            d = d.related(k.enable.span.clone(), "Kyverno is disabled here");
        }
        out.push(d);
    }
    if let Some(net) = &l.network {
        if !inv.networks.contains_key(&net.value) {
            out.push(unknown_network(inv, net, "`addons.longhorn.network`"));
        } else {
            let exposed = a
                .multus
                .as_ref()
                .filter(|m| m.enable.value)
                .and_then(|m| m.networks.iter().find(|n| n.value == net.value));
            if exposed.is_none() {
                let mut d = Diagnostic::new(
                    Code::LonghornNetworkNotExposed,
                    net.span.clone(),
                    format!("Longhorn replicates over `{}`, but Multus does not expose it", net.value),
                    "not exposed to pods",
                );
                d = match &a.multus {
                    Some(m) if m.enable.value => d
                        .related(
                            m.networks.first().map_or(m.enable.span.clone(), |n| n.span.clone()),
                            "Multus exposes these networks",
                        )
                        .help(format!("add \"{}\" to `addons.multus.networks`", net.value)),
                    _ => d.help(format!(
                        "add `[addons.multus]` with `enable = true` and `networks = [\"{}\"]`",
                        net.value
                    )),
                };
                out.push(d);
            }
        }
    }
    let hosts = inv.hosts.len() as u64;
    if l.replicas.value > hosts && hosts > 0 {
        out.push(
            Diagnostic::new(
                Code::LonghornReplicas,
                l.replicas.span.clone(),
                format!(
                    "{} Longhorn replicas but only {hosts} host{}",
                    l.replicas.value,
                    if hosts == 1 { "" } else { "s" }
                ),
                "more replicas than hosts",
            )
            .help(format!("Longhorn places each replica on a different node: use at most {hosts}")),
        );
    }
}

/// Prometheus' volume needs a storage class the cluster has; on one node's disk its
/// history goes with that node.
fn monitoring(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    let a = &inv.addons;
    let Some(m) = a.monitoring.as_ref().filter(|m| m.enable.value) else { return };
    if inv.is_unreadable("addons.monitoring.storage") {
        return;
    }
    let storage = m.storage.as_ref().map_or_else(|| a.default_monitoring_storage(), |s| s.value);
    let at = m.storage.as_ref().map_or(m.enable.span.clone(), |s| s.span.clone());
    match storage {
        MonitoringStorage::Longhorn if !a.longhorn_enabled() => {
            let mut d = Diagnostic::new(
                Code::MonitoringStorageUnavailable,
                at,
                "monitoring keeps its data on Longhorn, but Longhorn is not enabled",
                "no `longhorn` storage class",
            )
            .help("enable `[addons.longhorn]` (with Kyverno and Multus), or set `storage = \"local-path\"`");
            if let Some(l) = &a.longhorn {
                d = d.related(l.enable.span.clone(), "Longhorn is disabled here");
            }
            out.push(d);
        }
        MonitoringStorage::LocalPath => {
            let disabled = inv.k3s.disable.iter().find(|c| c.value == "local-storage");
            if let Some(c) = disabled {
                out.push(
                    Diagnostic::new(
                        Code::MonitoringStorageUnavailable,
                        at,
                        "monitoring keeps its data on k3s' local-path provisioner, which `k3s.disable` turns off",
                        "no `local-path` storage class",
                    )
                    .related(c.span.clone(), "disabled here")
                    .help("remove \"local-storage\" from `k3s.disable`, or enable Longhorn and set `storage = \"longhorn\"`"),
                );
            } else {
                out.push(
                    Diagnostic::new(
                        Code::MonitoringDataOnOneNode,
                        at,
                        "Prometheus keeps its data on one node's disk (local-path): its history and alert state go with that node",
                        "one copy, one node",
                    )
                    .help("enable `[addons.longhorn]` and set `storage = \"longhorn\"` to replicate it"),
                );
            }
        }
        MonitoringStorage::Longhorn => {}
    }
}

/// The hardened defaults, and what turning each off costs.
fn security(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    let s = &inv.security;
    if !s.secrets_encryption.value {
        out.push(
            Diagnostic::new(
                Code::SecretsEncryptionOff,
                s.secrets_encryption.span.clone(),
                "secrets encryption is off: every Kubernetes Secret is stored in plaintext in etcd and in every snapshot",
                "plaintext secrets",
            )
            .help(
                "remove `secrets_encryption = false` before the first install: k3s does not support starting \
                 without encryption and turning it on later",
            ),
        );
    }
    if !s.protect_kernel_defaults.value {
        let sysctls = KERNEL_DEFAULTS.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
        out.push(
            Diagnostic::new(
                Code::KernelDefaultsUnprotected,
                s.protect_kernel_defaults.span.clone(),
                "kubelet will not check the kernel settings it depends on (`protect-kernel-defaults` is off)",
                "off",
            )
            .help(format!(
                "remove `protect_kernel_defaults = false`: n3x sets the sysctls kubelet checks ({sysctls}) on every host"
            )),
        );
    }
    if !s.audit.enable.value {
        out.push(
            Diagnostic::new(
                Code::AuditLogOff,
                s.audit.enable.span.clone(),
                "the API server keeps no audit log: who changed or read what cannot be found out afterwards",
                "no audit log",
            )
            .help("remove `enable = false` from `[security.audit]`; size and age of the logs are set there"),
        );
    }
    if s.pod_security.value == PodSecurity::Privileged {
        out.push(
            Diagnostic::new(
                Code::PodSecurityPrivileged,
                s.pod_security.span.clone(),
                "pods may run privileged in every namespace: no Pod Security Standard is enforced",
                "nothing enforced",
            )
            .help(
                "use \"restricted\" (the default) or \"baseline\"; system and add-on namespaces are exempt either way, \
                 and a namespace label `pod-security.kubernetes.io/enforce` opens one namespace only",
            ),
        );
    }
}

fn lab(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    let lab = &inv.lab;
    let names = lab.profile_names();
    let unknown = |p: &Sp<String>, out: &mut Vec<Diagnostic>| {
        if lab.profile(&p.value).is_none() {
            let help = match did_you_mean(&p.value, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? or define `[lab.profiles.{}]`", p.value),
                None => format!(
                    "use one of {}, or define `[lab.profiles.{}]`",
                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                    p.value
                ),
            };
            out.push(
                Diagnostic::new(
                    Code::UnknownProfile,
                    p.span.clone(),
                    format!("lab profile `{}` does not exist", p.value),
                    "unknown profile",
                )
                .help(help),
            );
            false
        } else {
            true
        }
    };
    unknown(&lab.profile, out);
    for (host, profile) in &lab.hosts {
        if !inv.hosts.contains_key(&host.value) {
            let help = match did_you_mean(&host.value, inv.hosts.keys().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the hosts are: {}", list(inv.hosts.keys())),
            };
            out.push(
                Diagnostic::new(
                    Code::UnknownLabHost,
                    host.span.clone(),
                    format!("`[lab.hosts.{}]` names a host that does not exist", host.value),
                    "no such host",
                )
                .help(help),
            );
        }
        if let Some(p) = profile {
            unknown(p, out);
        }
    }

    // etcd guidance: election timeout at least 10 x the round trip between members. With
    // a host's profile delaying its own egress, a round trip between a and b is
    // delay(a) + delay(b).
    let delay = |h: &Host| lab.profile(lab.profile_name_for(&h.name.value)).and_then(|p| p.delay_ms).unwrap_or(0.0);
    let servers: Vec<&Host> =
        sorted_by_span(inv.hosts.values(), |h| h.name.span.start).into_iter().filter(|h| h.is_server()).collect();
    let mut worst: Option<(f64, &Host, &Host)> = None;
    for (i, a) in servers.iter().enumerate() {
        for b in &servers[i + 1..] {
            let rtt = delay(a) + delay(b);
            if worst.is_none_or(|(w, _, _)| rtt > w) {
                worst = Some((rtt, a, b));
            }
        }
    }
    let election = inv.k3s.etcd.election_ms.value as f64;
    if let Some((rtt, a, b)) = worst.filter(|(rtt, _, _)| election < 10.0 * rtt) {
        let profile_span = |h: &Host| {
            lab.hosts
                .iter()
                .find(|(n, _)| n.value == h.name.value)
                .and_then(|(_, p)| p.as_ref())
                .map_or(lab.profile.span.clone(), |p| p.span.clone())
        };
        out.push(
            Diagnostic::new(
                Code::LabRttTooHigh,
                profile_span(b),
                format!(
                    "lab delays give servers `{}` and `{}` a {rtt} ms round trip, but etcd's election timeout is {} ms (less than 10 x)",
                    a.name.value, b.name.value, inv.k3s.etcd.election_ms.value
                ),
                "this profile's delay",
            )
            .related(inv.k3s.etcd.election_ms.span.clone(), "election timeout")
            .help(format!(
                "expect leader elections under this profile: raise `k3s.etcd.election_ms` to at least {} or lower the servers' delay",
                (10.0 * rtt).ceil()
            )),
        );
    }
}

/// Replication traffic wants jumbo frames; a storage MTU below the cluster's is a slip.
fn storage_mtu(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    let mtu_of = |name: &str| inv.networks.get(name).map(|n| &n.mtu);
    let storage = inv.addons.longhorn.as_ref().and_then(|l| l.network.as_ref()).map_or("storage", |n| n.value.as_str());
    if let (Some(s), Some(c)) = (mtu_of(storage), mtu_of(CLUSTER_NETWORK)) {
        if storage != CLUSTER_NETWORK && s.value < c.value {
            out.push(
                Diagnostic::new(
                    Code::StorageMtuSmaller,
                    s.span.clone(),
                    format!("the storage network `{storage}` has MTU {} but `cluster` has {}", s.value, c.value),
                    "smaller than the cluster MTU",
                )
                .related(c.span.clone(), "cluster MTU")
                .help(format!("storage replication wants jumbo frames: set `[networks.{storage}] mtu = 9000` if your switch allows it")),
            );
        }
    }
}

/// The default route: exactly one network's `gateway`, inside that network, not a host's
/// address; and DNS servers for the hosts.
fn routing(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    let nets = sorted_by_span(inv.networks.values(), |n| n.name.span.start);
    let with_gateway: Vec<&&Network> = nets.iter().filter(|n| n.gateway.is_some()).collect();
    for n in &with_gateway {
        let Some(gw) = &n.gateway else { continue };
        let net = &n.name.value;
        if let Some(cidr) = &n.cidr {
            let reserved =
                cidr.value.network_address() == Some(gw.value) || cidr.value.broadcast_address() == Some(gw.value);
            if !cidr.value.contains(gw.value) || reserved {
                out.push(
                    Diagnostic::new(
                        Code::GatewayOutsideNetwork,
                        gw.span.clone(),
                        if reserved {
                            format!(
                                "gateway `{}` is the network or broadcast address of `{net}` ({})",
                                gw.value, cidr.value
                            )
                        } else {
                            format!("gateway `{}` is outside network `{net}` ({})", gw.value, cidr.value)
                        },
                        "not a host address of this network",
                    )
                    .related(cidr.span.clone(), format!("`{net}` is defined here"))
                    .help(format!("the gateway is the router's address on {}: hosts reach it directly", cidr.value)),
                );
            }
        }
        for host in sorted_by_span(inv.hosts.values(), |h| h.name.span.start) {
            if let Some((_, addr)) = host.addresses.iter().find(|(a, v)| a.value == *net && v.value == gw.value) {
                out.push(
                    Diagnostic::new(
                        Code::GatewayIsHostAddress,
                        gw.span.clone(),
                        format!("gateway `{}` of `{net}` is the address of host `{}`", gw.value, host.name.value),
                        "a cluster host, not a router",
                    )
                    .related(addr.span.clone(), format!("`{}` has this address", host.name.value))
                    .help("give the router's address; a host that routes for the others is not modelled by n3x"),
                );
            }
        }
    }
    if let [first, rest @ ..] = with_gateway.as_slice() {
        for other in rest {
            let (Some(a), Some(b)) = (&first.gateway, &other.gateway) else { continue };
            out.push(
                Diagnostic::new(
                    Code::SeveralDefaultRoutes,
                    b.span.clone(),
                    format!(
                        "networks `{}` and `{}` both have a gateway: a host has one default route",
                        first.name.value, other.name.value
                    ),
                    "second default route",
                )
                .related(a.span.clone(), format!("`{}` carries the default route", first.name.value))
                .help(
                    "keep `gateway` on the network that reaches the internet (usually `cluster`) and remove the other",
                ),
            );
        }
    }
    let anchor = inv.networks.get(CLUSTER_NETWORK).or(nets.first().copied()).map_or(0..0, |n| n.name.span.clone());
    if with_gateway.is_empty() && !inv.networks.is_empty() {
        out.push(
            Diagnostic::new(
                Code::NoDefaultRoute,
                anchor,
                "no network has a `gateway`: the hosts get no default route",
                "no gateway",
            )
            .help("k3s needs a default route, and Kyverno, Multus and Longhorn pull charts and images from the internet: add `gateway = \"<router>\"` to the network that reaches it"),
        );
    } else if nets.iter().all(|n| n.dns.is_empty()) {
        if let Some(n) = with_gateway.first() {
            out.push(
                Diagnostic::new(
                    Code::NoDnsServers,
                    n.name.span.clone(),
                    "no network lists `dns` servers: the hosts cannot resolve the registries' names",
                    "no DNS servers",
                )
                .help(format!(
                    "add `dns = [\"<resolver>\"]` to `[networks.{}]`, often the gateway itself",
                    n.name.value
                )),
            );
        }
    }
}

/// Who may log in after an install: the admins' SSH keys.
fn access(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    // No hosts, nobody to log in to: the missing hosts are the problem to report.
    if !inv.access.ssh_keys.is_empty() || inv.is_unreadable("access.ssh_keys") || inv.hosts.is_empty() {
        return;
    }
    if out.iter().any(|d| d.code == Code::InvalidSshKey) {
        return;
    }
    out.push(
        Diagnostic::new(
            Code::NoAdminKey,
            inv.access.span.clone().unwrap_or(0..0),
            "no admin SSH key: nobody can log in to the hosts after an install",
            "no `access.ssh_keys`",
        )
        .help("add `[access]` with `ssh_keys = [\"ssh-ed25519 AAAA... you@host\"]` (your `~/.ssh/id_ed25519.pub`); password login stays off"),
    );
}

/// NIC names and MACs: each MAC names one NIC, and a physical host's kernel-style name
/// (`eth0`) will not exist under NixOS' predictable names unless a MAC pins it.
fn nic_names(inv: &Inventory, out: &mut Vec<Diagnostic>) {
    let mut macs: BTreeMap<&str, (&str, &Span)> = BTreeMap::new();
    for host in sorted_by_span(inv.hosts.values(), |h| h.name.span.start) {
        let h = &host.name.value;
        let physical = host.hardware.as_ref().is_some_and(|hw| !hw.value.is_virtual());
        for iface in &host.interfaces {
            if let Some(mac) = &iface.mac {
                if let Some((first, span)) = macs.get(mac.value.as_str()) {
                    out.push(
                        Diagnostic::new(
                            Code::DuplicateMac,
                            mac.span.clone(),
                            format!(
                                "MAC `{}` of `{h}`'s `{}` is already given to `{first}`",
                                mac.value, iface.name.value
                            ),
                            "duplicate MAC",
                        )
                        .related((*span).clone(), format!("given to `{first}` here"))
                        .help("each NIC has its own MAC: copy it from `ip link` on that machine"),
                    );
                } else {
                    macs.insert(&mac.value, (h, &mac.span));
                }
            }
            let mut names: Vec<&Sp<String>> = iface.bond.iter().flat_map(|b| b.members.iter()).collect();
            if iface.bond.is_none() {
                names.push(&iface.name);
            }
            for n in names.into_iter().filter(|n| physical && Interface::kernel_style_name(&n.value)) {
                let pinned = iface.bond.is_none() && iface.mac.is_some();
                let (message, label, help) = if pinned {
                    (
                        format!("`{h}` renames its NIC to `{}`, a name the kernel gives NICs itself", n.value),
                        "races with the kernel's names",
                        "name it outside the kernel's `eth*` namespace, e.g. `lan0` (systemd.link: udev and the kernel race for `eth*` names)".to_owned(),
                    )
                } else if iface.bond.is_some() {
                    (
                        format!("`{h}` names its NIC `{}`, a name NixOS' predictable interface names replace", n.value),
                        "this NIC will have another name",
                        "use the NIC's predictable name (`ip link` on the machine, e.g. `enp1s0`)".to_owned(),
                    )
                } else {
                    (
                        format!("`{h}` names its NIC `{}`, a name NixOS' predictable interface names replace", n.value),
                        "this NIC will have another name",
                        "add `mac = \"aa:bb:cc:dd:ee:ff\"` (the NIC's MAC, from `ip link`) and a name such as `lan0`, and the host names the NIC so; or use its predictable name such as `enp1s0`".to_owned(),
                    )
                };
                out.push(Diagnostic::new(Code::KernelInterfaceName, n.span.clone(), message, label).help(help));
            }
        }
    }
}
