//! `n3x show` as text: the resolved cluster, compact enough to read on one screen.

use std::fmt::Write;

use n3x_model::model::Role;
use n3x_model::resolve::{Resolved, ResolvedHost};

pub fn text(r: &Resolved) -> String {
    let mut o = String::new();
    let k = &r.k3s;
    let domain = r.cluster.domain.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
    let _ = writeln!(
        o,
        "cluster {}{domain}: k3s {} (nixpkgs {}), API {}",
        r.cluster.name, k.version, k.package, k.server_url
    );
    let disabled = if k.disable.is_empty() { "none".to_owned() } else { k.disable.join(", ") };
    let _ = writeln!(
        o,
        "  pods {}, services {}, dns {}, disabled: {disabled}",
        k.cluster_cidr, k.service_cidr, k.cluster_dns
    );
    let _ = writeln!(
        o,
        "  etcd heartbeat {} ms, election {} ms, snapshots `{}` (keep {})",
        k.etcd.heartbeat_ms, k.etcd.election_ms, k.etcd.snapshot_schedule, k.etcd.snapshot_retention
    );
    let _ = writeln!(o, "  tokens: {} (servers), {} (agents)", k.token_file, k.agent_token_file);

    let _ = writeln!(o, "\nnetworks");
    let w = r.networks.keys().map(String::len).max().unwrap_or(4).max(4);
    let _ = writeln!(o, "  {:w$}  {:18}  {:>4}  {:>4}  {:15}  DNS", "NAME", "CIDR", "VLAN", "MTU", "GATEWAY");
    for (name, n) in &r.networks {
        let vlan = n.vlan.map_or("-".to_owned(), |v| v.to_string());
        let gw = n.gateway.map_or("-".to_owned(), |g| g.to_string());
        let dns = if n.dns.is_empty() {
            "-".to_owned()
        } else {
            n.dns.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(o, "  {name:w$}  {:18}  {vlan:>4}  {:>4}  {gw:15}  {dns}", n.cidr.to_string(), n.mtu);
    }

    let _ = writeln!(o, "\nhosts");
    for h in &r.hosts {
        host(&mut o, h);
    }

    let a = &r.addons;
    let mut addons = Vec::new();
    if a.kyverno {
        addons.push("kyverno (Longhorn PATH policy)".to_owned());
    }
    if a.multus.enable {
        addons.push(format!("multus ({})", a.multus.networks.join(", ")));
    }
    if a.longhorn.enable {
        let net = a.longhorn.network.as_deref().map(|n| format!("over {n}, ")).unwrap_or_default();
        addons.push(format!("longhorn ({net}{} replicas, {})", a.longhorn.replicas, a.longhorn.data_path));
    }
    if a.monitoring.enable {
        let m = &a.monitoring;
        addons.push(format!(
            "monitoring (Prometheus on {}, {}, keep {}; etcd metrics exposed)",
            m.storage.as_str(),
            m.size,
            m.retention
        ));
    }
    let _ = writeln!(o, "\naddons: {}", if addons.is_empty() { "none".into() } else { addons.join("; ") });
    security(&mut o, r);
    let keys = r.access.ssh_keys.len();
    let _ = writeln!(
        o,
        "access: {} admin SSH key{} for root, password login off",
        if keys == 0 { "no".to_owned() } else { keys.to_string() },
        if keys == 1 { "" } else { "s" }
    );
    let admins = r.secrets.admins.len();
    let _ = writeln!(o, "secrets: {} ({admins} admin recipient{})", r.secrets.file, if admins == 1 { "" } else { "s" });
    let special: Vec<String> = r
        .lab
        .hosts
        .iter()
        .filter(|(_, h)| h.profile != r.lab.profile)
        .map(|(n, h)| format!("{n}: {}", h.profile))
        .collect();
    let _ = write!(o, "lab: seed {}, profile {}", r.lab.seed, r.lab.profile);
    if !special.is_empty() {
        let _ = write!(o, "; {}", special.join(", "));
    }
    o.push('\n');
    o
}

fn security(o: &mut String, r: &Resolved) {
    let s = &r.security;
    let onoff = |b: bool| if b { "on" } else { "OFF" };
    let sans = if s.tls_san.is_empty() { "none".to_owned() } else { s.tls_san.join(", ") };
    let _ = writeln!(
        o,
        "security: secrets encryption {}, pod security {}, protect-kernel-defaults {}, extra TLS SANs: {sans}",
        onoff(s.secrets_encryption),
        s.pod_security.as_str(),
        onoff(s.protect_kernel_defaults),
    );
    let a = &s.audit;
    if a.enable {
        let policy = a.policy_file.as_deref().unwrap_or("n3x default policy");
        let _ = writeln!(
            o,
            "  audit log {} ({policy}), rotated at {} MB, keep {} files for {} days",
            a.log_path, a.max_size_mb, a.max_backups, a.max_age_days
        );
    } else {
        let _ = writeln!(o, "  audit log OFF");
    }
}

fn host(o: &mut String, h: &ResolvedHost) {
    let role = match (h.role, h.init) {
        (Role::Server, true) => "server, init",
        (Role::Server, false) => "server",
        (Role::Agent, _) => "agent",
    };
    let _ = writeln!(o, "  {} ({role}) {} {}", h.name, h.hardware.as_str(), h.arch);
    let mut install = vec![format!("ssh {}", h.ssh)];
    if let Some(d) = &h.disk {
        install.push(format!("disk {d} ({})", h.layout.as_str()));
    }
    if let Some(f) = &h.firmware {
        install.push(format!("firmware L4T {f}"));
    }
    if let Some(c) = &h.console {
        install.push(format!("console {c}"));
    }
    let _ = writeln!(o, "    {}", install.join(", "));
    for i in &h.interfaces {
        let bond = h_bond(i);
        let nets: Vec<String> = i
            .networks
            .iter()
            .map(|a| {
                let tag = a.vlan.map_or("untagged".to_owned(), |v| format!("vlan {v}"));
                format!("{} {}/{} on {} ({tag}, mtu {})", a.network, a.address, a.prefix_length, a.device, a.mtu)
            })
            .collect();
        let mac = i.mac.as_deref().map(|m| format!(" (mac {m})")).unwrap_or_default();
        let _ = writeln!(o, "    {}{mac}{bond}: {}", i.name, nets.join("; "));
    }
    let mut net = Vec::new();
    if let Some(d) = &h.default_route {
        net.push(format!("default via {} on {}", d.gateway, d.device));
    }
    if !h.dns.is_empty() {
        net.push(format!("dns {}", h.dns.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")));
    }
    if !net.is_empty() {
        let _ = writeln!(o, "    {}", net.join(", "));
    }
    match &h.server_url {
        Some(url) => {
            let _ = writeln!(o, "    joins {url}");
        }
        None => {
            let _ = writeln!(o, "    bootstraps the cluster (--cluster-init)");
        }
    }
    if let Some(p) = &h.etcd_peer_url {
        let _ = writeln!(o, "    etcd peer {p}");
    }
    if !h.labels.is_empty() {
        let labels: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(o, "    labels {}", labels.join(", "));
    }
    if !h.taints.is_empty() {
        let _ = writeln!(o, "    taints {}", h.taints.join(", "));
    }
}

fn h_bond(i: &n3x_model::resolve::ResolvedInterface) -> String {
    match i.bond_mode {
        Some(mode) => format!(" (bond {}: {})", mode.as_str(), i.members.join(", ")),
        None => String::new(),
    }
}
