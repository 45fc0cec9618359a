//! The resolved cluster: every default filled in and every derived fact computed (arch,
//! server URL, etcd peer URL, VLAN devices). `n3x show` prints it, the lab and the flake
//! consume the same facts; `nix/lib/facts.nix` computes them again from `n3x.toml`
//! and a test proves both agree, so this shape is a contract.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::check::CLUSTER_NETWORK;
use crate::model::*;
use crate::net::Ipv4Net;

/// The k3s supervisor/API port that agents and joining servers dial.
pub const K3S_API_PORT: u16 = 6443;
/// etcd's client and peer ports.
pub const ETCD_CLIENT_PORT: u16 = 2379;
pub const ETCD_PEER_PORT: u16 = 2380;

#[derive(Clone, Debug, Serialize)]
pub struct Resolved {
    pub cluster: ResolvedCluster,
    pub k3s: ResolvedK3s,
    pub networks: BTreeMap<String, ResolvedNetwork>,
    /// Sorted by name.
    pub hosts: Vec<ResolvedHost>,
    pub addons: ResolvedAddons,
    pub security: ResolvedSecurity,
    pub secrets: ResolvedSecrets,
    pub access: ResolvedAccess,
    pub lab: ResolvedLab,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedAccess {
    /// Installed for root on every host; password login is off.
    pub ssh_keys: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedCluster {
    pub name: String,
    pub domain: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedK3s {
    pub version: String,
    /// The nixpkgs attribute of that track (`k3s_1_31`): the flake pins `services.k3s.package` to it.
    pub package: String,
    pub cluster_cidr: Ipv4Net,
    pub service_cidr: Ipv4Net,
    pub cluster_dns: Ipv4Addr,
    pub disable: Vec<String>,
    pub token_file: String,
    pub agent_token_file: String,
    /// `https://<init server's cluster address>:6443`.
    pub server_url: String,
    pub etcd: ResolvedEtcd,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedEtcd {
    pub heartbeat_ms: u64,
    pub election_ms: u64,
    pub snapshot_schedule: String,
    pub snapshot_retention: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedNetwork {
    pub cidr: Ipv4Net,
    pub prefix_length: u8,
    pub vlan: Option<u16>,
    pub mtu: u16,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedHost {
    pub name: String,
    pub role: Role,
    pub init: bool,
    pub hardware: Hardware,
    pub arch: &'static str,
    pub ssh: String,
    pub disk: Option<String>,
    pub layout: Layout,
    pub firmware: Option<String>,
    pub console: Option<String>,
    /// network name -> address.
    pub addresses: BTreeMap<String, Ipv4Addr>,
    /// The k3s node IP: the address on `cluster`.
    pub node_ip: Ipv4Addr,
    pub interfaces: Vec<ResolvedInterface>,
    /// The URL this host joins; `None` for the init server, which bootstraps.
    pub server_url: Option<String>,
    /// Servers only: `https://<cluster address>:2380`.
    pub etcd_peer_url: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<String>,
    pub age: Option<String>,
    /// ZFS's host id: the first 8 hex digits of sha256(name), stable and distinct per host.
    pub host_id: String,
    /// The default route, when the host carries the network that has the gateway.
    pub default_route: Option<DefaultRoute>,
    /// DNS servers of the networks this host carries, in network name order, without repeats.
    pub dns: Vec<Ipv4Addr>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DefaultRoute {
    pub gateway: Ipv4Addr,
    /// The device holding the host's address on that network.
    pub device: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedInterface {
    pub name: String,
    /// Bond members; empty for a plain NIC.
    pub members: Vec<String>,
    pub bond_mode: Option<BondMode>,
    /// The largest MTU among the networks it carries: the parent must pass the biggest frame.
    pub mtu: u16,
    pub networks: Vec<Attachment>,
    /// The NIC's MAC, when the inventory pins it: the host finds the NIC by it and names
    /// it `name`.
    pub mac: Option<String>,
}

/// A network as a host sees it on one interface.
#[derive(Clone, Debug, Serialize)]
pub struct Attachment {
    pub network: String,
    pub vlan: Option<u16>,
    /// The Linux device holding the address: the interface itself when untagged,
    /// `vlan<id>` on top of it when tagged.
    pub device: String,
    pub address: Ipv4Addr,
    pub prefix_length: u8,
    pub mtu: u16,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedAddons {
    pub kyverno: bool,
    pub multus: ResolvedMultus,
    pub longhorn: ResolvedLonghorn,
    pub monitoring: ResolvedMonitoring,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedMonitoring {
    pub enable: bool,
    pub retention: String,
    /// The StorageClass of Prometheus' volume (`longhorn` or `local-path`).
    pub storage: MonitoringStorage,
    pub size: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedSecurity {
    pub secrets_encryption: bool,
    pub protect_kernel_defaults: bool,
    /// The sysctls every host gets so that kubelet's check passes; empty when
    /// `protect_kernel_defaults` is off.
    pub kernel_sysctls: BTreeMap<String, i64>,
    pub pod_security: PodSecurity,
    pub tls_san: Vec<String>,
    pub audit: ResolvedAudit,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedAudit {
    pub enable: bool,
    /// Relative to the repository root; null: n3x's default policy.
    pub policy_file: Option<String>,
    pub log_path: String,
    pub max_age_days: u64,
    pub max_backups: u64,
    pub max_size_mb: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedMultus {
    pub enable: bool,
    pub networks: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedLonghorn {
    pub enable: bool,
    pub network: Option<String>,
    pub replicas: u64,
    pub data_path: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedSecrets {
    pub file: String,
    /// The agents' file: `file` with `-agent` before its extension (`secrets/k3s.yaml` ->
    /// `secrets/k3s-agent.yaml`; no extension, or a dot-file: appended).
    pub agent_file: String,
    pub admins: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedLab {
    pub seed: u64,
    pub profile: String,
    /// Every profile a lab command may name: the built-ins, overridden or extended by
    /// `[lab.profiles]`.
    pub profiles: BTreeMap<String, Profile>,
    /// host name -> the profile its links get, resolved.
    pub hosts: BTreeMap<String, LabHost>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LabHost {
    pub profile: String,
    pub impairments: Profile,
}

/// Why an inventory could not be resolved. Only reachable when `resolve` is called on an
/// inventory that still has errors; callers check first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved(pub String);

pub fn vlan_device(vlan: u16) -> String {
    format!("vlan{vlan}")
}

/// `secrets/k3s.yaml` -> `secrets/k3s-agent.yaml`; `secrets/k3s` and `secrets/.k3s` get
/// `-agent` appended (a leading dot starts a name, not an extension).
pub fn agent_file_path(file: &str) -> String {
    let (dir, name) = match file.rfind('/') {
        Some(i) => file.split_at(i + 1),
        None => ("", file),
    };
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{dir}{}-agent{}", &name[..dot], &name[dot..]),
        _ => format!("{dir}{name}-agent"),
    }
}

/// ZFS's `networking.hostId`: 8 hex digits from sha256 of the host name.
pub fn host_id(name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The route through the one network with a gateway, on the device holding the host's
/// address there (None when the host does not carry that network).
fn default_route(
    networks: &BTreeMap<String, ResolvedNetwork>,
    interfaces: &[ResolvedInterface],
) -> Option<DefaultRoute> {
    let (net, gateway) = networks.iter().find_map(|(name, n)| Some((name, n.gateway?)))?;
    let att = interfaces.iter().flat_map(|i| &i.networks).find(|a| a.network == *net)?;
    Some(DefaultRoute { gateway, device: att.device.clone() })
}

/// The DNS servers of the networks `h` carries, in network name order, without repeats.
fn host_dns(networks: &BTreeMap<String, ResolvedNetwork>, h: &Host) -> Vec<Ipv4Addr> {
    let mut dns = Vec::new();
    for d in networks.iter().filter(|(net, _)| h.address(net).is_some()).flat_map(|(_, n)| &n.dns) {
        if !dns.contains(d) {
            dns.push(*d);
        }
    }
    dns
}

/// Resolves an inventory that checked without errors.
pub fn resolve(inv: &Inventory) -> Result<Resolved, Unresolved> {
    let missing = |what: &str| Unresolved(format!("the inventory has errors ({what}); run `n3x check`"));
    let mut networks = BTreeMap::new();
    for (name, n) in &inv.networks {
        let cidr = n.cidr.as_ref().ok_or_else(|| missing("a network without cidr"))?.value;
        networks.insert(
            name.clone(),
            ResolvedNetwork {
                cidr,
                prefix_length: cidr.prefix(),
                vlan: n.vlan.as_ref().map(|v| v.value),
                mtu: n.mtu.value,
                gateway: n.gateway.as_ref().map(|g| g.value),
                dns: n.dns.iter().map(|d| d.value).collect(),
            },
        );
    }
    let init = inv.hosts.values().find(|h| h.is_server() && h.is_init()).ok_or_else(|| missing("no init server"))?;
    let init_ip = init.address(CLUSTER_NETWORK).ok_or_else(|| missing("init server without a cluster address"))?;
    let server_url = format!("https://{init_ip}:{K3S_API_PORT}");

    let mut hosts = Vec::new();
    for h in inv.hosts.values() {
        let hardware = h.hardware.as_ref().ok_or_else(|| missing("a host without hardware"))?.value;
        let role = h.role.as_ref().ok_or_else(|| missing("a host without role"))?.value;
        let node_ip = h.address(CLUSTER_NETWORK).ok_or_else(|| missing("a host without a cluster address"))?;
        let is_init = h.is_init();
        let mut interfaces = Vec::new();
        for i in &h.interfaces {
            let mut atts = Vec::new();
            for net in &i.networks {
                let n = networks.get(&net.value).ok_or_else(|| missing("an unknown network"))?;
                let address = h.address(&net.value).ok_or_else(|| missing("a carried network without address"))?;
                atts.push(Attachment {
                    network: net.value.clone(),
                    vlan: n.vlan,
                    device: n.vlan.map_or_else(|| i.name.value.clone(), vlan_device),
                    address,
                    prefix_length: n.prefix_length,
                    mtu: n.mtu,
                });
            }
            interfaces.push(ResolvedInterface {
                name: i.name.value.clone(),
                members: i
                    .bond
                    .as_ref()
                    .map(|b| b.members.iter().map(|m| m.value.clone()).collect())
                    .unwrap_or_default(),
                bond_mode: i.bond.as_ref().map(|b| b.mode.value),
                mtu: atts.iter().map(|a| a.mtu).max().unwrap_or(1500),
                networks: atts,
                mac: i.mac.as_ref().map(|m| m.value.clone()),
            });
        }
        hosts.push(ResolvedHost {
            name: h.name.value.clone(),
            role,
            init: is_init,
            hardware,
            arch: hardware.arch(),
            ssh: h.ssh.as_ref().map_or_else(|| format!("root@{node_ip}"), |s| s.value.clone()),
            disk: h.disk.as_ref().map(|d| d.value.clone()),
            layout: h.layout.as_ref().map_or(Layout::Standard, |l| l.value),
            firmware: h.firmware.as_ref().map(|f| f.value.clone()),
            console: h
                .console
                .as_ref()
                .map(|c| c.value.clone())
                .or_else(|| hardware.default_console().map(str::to_owned)),
            addresses: h.addresses.iter().map(|(n, a)| (n.value.clone(), a.value)).collect(),
            node_ip,
            server_url: (!is_init).then(|| server_url.clone()),
            etcd_peer_url: (role == Role::Server).then(|| format!("https://{node_ip}:{ETCD_PEER_PORT}")),
            labels: h.labels.iter().map(|(k, v)| (k.value.clone(), v.value.clone())).collect(),
            taints: h.taints.iter().map(|t| t.value.clone()).collect(),
            age: h.age.as_ref().map(|a| a.value.clone()),
            host_id: host_id(&h.name.value),
            default_route: default_route(&networks, &interfaces),
            dns: host_dns(&networks, h),
            interfaces,
        });
    }

    let k = &inv.k3s;
    let a = &inv.addons;
    let lab = &inv.lab;
    Ok(Resolved {
        cluster: ResolvedCluster {
            name: inv.cluster.name.as_ref().ok_or_else(|| missing("no cluster name"))?.value.clone(),
            domain: inv.cluster.domain.as_ref().map(|d| d.value.clone()),
        },
        k3s: ResolvedK3s {
            version: k.version.value.clone(),
            package: k3s_package(&k.version.value)
                .ok_or_else(|| missing("a k3s track nixpkgs does not carry"))?
                .to_owned(),
            cluster_cidr: k.cluster_cidr.value,
            service_cidr: k.service_cidr.value,
            cluster_dns: k.cluster_dns.value,
            disable: k.disable.iter().map(|d| d.value.clone()).collect(),
            token_file: k.token_file.value.clone(),
            agent_token_file: k.agent_token_file.value.clone(),
            server_url,
            etcd: ResolvedEtcd {
                heartbeat_ms: k.etcd.heartbeat_ms.value,
                election_ms: k.etcd.election_ms.value,
                snapshot_schedule: k.etcd.snapshot_schedule.value.clone(),
                snapshot_retention: k.etcd.snapshot_retention.value,
            },
        },
        networks,
        addons: ResolvedAddons {
            kyverno: a.kyverno_enabled(),
            multus: ResolvedMultus {
                enable: a.multus_enabled(),
                networks: a.multus.iter().flat_map(|m| m.networks.iter().map(|n| n.value.clone())).collect(),
            },
            longhorn: ResolvedLonghorn {
                enable: a.longhorn_enabled(),
                network: a.longhorn.as_ref().and_then(|l| l.network.as_ref()).map(|n| n.value.clone()),
                replicas: a.longhorn.as_ref().map_or(3, |l| l.replicas.value),
                data_path: a
                    .longhorn
                    .as_ref()
                    .map_or_else(|| "/var/lib/longhorn".into(), |l| l.data_path.value.clone()),
            },
            monitoring: match &a.monitoring {
                Some(m) => ResolvedMonitoring {
                    enable: m.enable.value,
                    retention: m.retention.value.clone(),
                    storage: m.storage.as_ref().map_or_else(|| a.default_monitoring_storage(), |s| s.value),
                    size: m.size.value.clone(),
                },
                None => ResolvedMonitoring {
                    enable: false,
                    retention: DEFAULT_RETENTION.into(),
                    storage: a.default_monitoring_storage(),
                    size: DEFAULT_MONITORING_SIZE.into(),
                },
            },
        },
        security: {
            let s = &inv.security;
            let au = &s.audit;
            ResolvedSecurity {
                secrets_encryption: s.secrets_encryption.value,
                protect_kernel_defaults: s.protect_kernel_defaults.value,
                kernel_sysctls: if s.protect_kernel_defaults.value {
                    KERNEL_DEFAULTS.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
                } else {
                    BTreeMap::new()
                },
                pod_security: s.pod_security.value,
                tls_san: s.tls_san.iter().map(|t| t.value.clone()).collect(),
                audit: ResolvedAudit {
                    enable: au.enable.value,
                    policy_file: au.policy_file.as_ref().map(|p| p.value.clone()),
                    log_path: au.log_path.value.clone(),
                    max_age_days: au.max_age_days.value,
                    max_backups: au.max_backups.value,
                    max_size_mb: au.max_size_mb.value,
                },
            }
        },
        secrets: ResolvedSecrets {
            file: inv.secrets.file.value.clone(),
            agent_file: agent_file_path(&inv.secrets.file.value),
            admins: inv.secrets.admins.iter().map(|a| a.value.clone()).collect(),
        },
        access: ResolvedAccess { ssh_keys: inv.access.ssh_keys.iter().map(|k| k.value.clone()).collect() },
        lab: ResolvedLab {
            seed: lab.seed.value,
            profile: lab.profile.value.clone(),
            profiles: lab.profile_names().into_iter().filter_map(|n| Some((n.to_owned(), lab.profile(n)?))).collect(),
            hosts: hosts
                .iter()
                .map(|h| {
                    let name = lab.profile_name_for(&h.name).to_owned();
                    let impairments = lab.profile(&name).unwrap_or_default();
                    (h.name.clone(), LabHost { profile: name, impairments })
                })
                .collect(),
        },
        hosts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_follow_one_rule() {
        assert_eq!(agent_file_path("secrets/k3s.yaml"), "secrets/k3s-agent.yaml");
        assert_eq!(agent_file_path("k3s.yaml"), "k3s-agent.yaml");
        assert_eq!(agent_file_path("secrets/k3s"), "secrets/k3s-agent");
        // A dot-file's leading dot starts its name: no extension to keep.
        assert_eq!(agent_file_path("secrets/.k3s"), "secrets/.k3s-agent");
        assert_eq!(agent_file_path("a.b/c"), "a.b/c-agent");
        // sha256("n100-1") and sha256("jetson-1"), first 8 hex digits (`sha256sum`).
        assert_eq!(host_id("n100-1"), "55bb7317");
        assert_eq!(host_id("jetson-1"), "8c6d02c5");
    }
}
