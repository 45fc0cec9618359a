//! The lab plan: every name, address and process of a lab, derived from the resolved
//! inventory. Pure: the same inventory always gives the same plan, and nothing here
//! touches the machine.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use n3x_model::model::{Profile, Role};
use n3x_model::{CLUSTER_NETWORK, Resolved};
use serde::{Deserialize, Serialize};

/// Where every lab keeps its state: `/run/n3x/<cluster>/`. `/run` is a tmpfs, so a reboot
/// (which also removes every namespace) clears it.
pub const STATE_ROOT: &str = "/run/n3x";

/// Prefix of the alias every link of a lab carries, so teardown can recognise its own.
pub const ALIAS_PREFIX: &str = "n3x-lab:";

/// How frames move between hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FabricKind {
    /// Bridges and veth pairs; netem (if the kernel has it), tbf and nftables impair.
    Kernel,
    /// TAP devices and the n3x switch in the supervisor: seeded delay, jitter, loss, rate.
    Userspace,
}

impl FabricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FabricKind::Kernel => "kernel",
            FabricKind::Userspace => "userspace",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabPlan {
    pub cluster: String,
    /// The namespace holding the bridges (kernel fabric): `n3x-<cluster>`.
    pub fabric_ns: String,
    pub seed: u64,
    pub hosts: Vec<HostPlan>,
    pub networks: Vec<NetPlan>,
    pub etcd: EtcdTimings,
    /// `hosts[i]` for the servers, in name order.
    pub servers: Vec<usize>,
    pub agents: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdTimings {
    pub heartbeat_ms: u64,
    pub election_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetPlan {
    pub name: String,
    /// Bridge name inside the fabric namespace (names there only need to be unique there).
    pub bridge: String,
    pub mtu: u16,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostPlan {
    pub name: String,
    pub index: usize,
    pub ns: String,
    pub role: LabRole,
    pub init: bool,
    /// The address on `cluster`: etcd and the probe use it.
    pub cluster_ip: Ipv4Addr,
    pub ifaces: Vec<IfacePlan>,
    pub profile_name: String,
    pub profile: Profile,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabRole {
    Server,
    Agent,
    /// Not a host of the inventory: the operator's machine, wired to the cluster network
    /// on a free address. The deployer's SSH starts here, so partitions and impairments
    /// apply to it as to any host.
    Operator,
}

/// The operator's name in the lab (`lab exec operator`, partitions).
pub const OPERATOR: &str = "operator";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IfacePlan {
    pub network: String,
    /// Index into `LabPlan::networks`.
    pub net_index: usize,
    /// The interface inside the host's namespace: named after the network (at most 15
    /// characters, which `n3x check` enforces), so `ip addr` in a lab host reads naturally.
    pub ifname: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub mtu: u16,
    /// The fabric-side veth in the fabric namespace: `h<host>n<net>`.
    pub port: String,
}

impl HostPlan {
    pub fn is_server(&self) -> bool {
        self.role == LabRole::Server
    }

    pub fn etcd_client_url(&self) -> String {
        format!("https://{}:2379", self.cluster_ip)
    }

    pub fn etcd_peer_url(&self) -> String {
        format!("https://{}:2380", self.cluster_ip)
    }
}

impl LabPlan {
    pub fn state_dir(&self) -> PathBuf {
        state_dir(&self.cluster)
    }

    pub fn host(&self, name: &str) -> Option<&HostPlan> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The operator's place in `hosts`, when the lab has one.
    pub fn operator(&self) -> Option<&HostPlan> {
        self.hosts.iter().find(|h| h.role == LabRole::Operator)
    }

    /// The hosts of the inventory (everything but the operator).
    pub fn inventory_hosts(&self) -> impl Iterator<Item = &HostPlan> {
        self.hosts.iter().filter(|h| h.role != LabRole::Operator)
    }

    /// Adds the operator: a namespace on the cluster network at the highest address no
    /// host and no gateway uses. Refused when a host is called `operator` or the network
    /// is full.
    pub fn add_operator(&mut self, r: &Resolved) -> Result<(), String> {
        if self.host(OPERATOR).is_some() {
            return Err(format!("a host is named `{OPERATOR}`, the lab's name for the operator's machine"));
        }
        let net = r.networks.get(CLUSTER_NETWORK).ok_or("the inventory has no `cluster` network")?;
        let net_index = self.networks.iter().position(|n| n.name == CLUSTER_NETWORK).ok_or("no cluster network")?;
        let used: Vec<Ipv4Addr> = self.hosts.iter().flat_map(|h| h.ifaces.iter().map(|i| i.address)).collect();
        let (Some(first), Some(last)) = (net.cidr.network_address(), net.cidr.broadcast_address()) else {
            return Err("the cluster network has no room for the operator".into());
        };
        let free = (u32::from(first) + 1..u32::from(last))
            .rev()
            .map(Ipv4Addr::from)
            .find(|a| !used.contains(a) && net.gateway != Some(*a))
            .ok_or("the cluster network has no free address for the operator")?;
        let index = self.hosts.len();
        let mtu = self.networks[net_index].mtu;
        self.hosts.push(HostPlan {
            name: OPERATOR.into(),
            index,
            ns: host_ns(&self.cluster, OPERATOR),
            role: LabRole::Operator,
            init: false,
            cluster_ip: free,
            ifaces: vec![IfacePlan {
                network: CLUSTER_NETWORK.into(),
                net_index,
                ifname: CLUSTER_NETWORK.into(),
                address: free,
                prefix: net.prefix_length,
                mtu,
                port: format!("h{index}n{net_index}"),
            }],
            profile_name: "default".into(),
            profile: Profile::default(),
        });
        Ok(())
    }

    /// `name1=https://ip1:2380,...` for etcd's `--initial-cluster`.
    pub fn initial_cluster(&self) -> String {
        self.servers
            .iter()
            .map(|&i| format!("{}={}", self.hosts[i].name, self.hosts[i].etcd_peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The impairments any host's links need, to decide which fabric can serve them.
    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        for h in &self.hosts {
            n.add(&h.profile);
        }
        n
    }
}

/// Which kinds of impairment a lab asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub delay: bool,
    pub loss: bool,
    pub rate: bool,
}

impl Needs {
    pub fn add(&mut self, p: &Profile) {
        self.delay |= p.delay_ms.is_some_and(|d| d > 0.0) || p.jitter_ms.is_some_and(|j| j > 0.0);
        self.loss |= p.loss_pct.is_some_and(|l| l > 0.0);
        self.rate |= p.rate_mbit.is_some();
    }
}

pub fn state_dir(cluster: &str) -> PathBuf {
    PathBuf::from(STATE_ROOT).join(cluster)
}

pub fn host_ns(cluster: &str, host: &str) -> String {
    format!("n3x-{cluster}-{host}")
}

/// A named profile, the user's first, then the built-in.
pub fn find_profile(r: &Resolved, name: &str) -> Option<Profile> {
    r.lab.profiles.get(name).copied()
}

/// Builds the plan. `profile_override` (`n3x lab up --profile P`) replaces every host's
/// profile; it must already be resolved by the caller.
pub fn plan(r: &Resolved, profile_override: Option<(&str, Profile)>) -> LabPlan {
    let cluster = r.cluster.name.clone();
    let networks: Vec<NetPlan> = r
        .networks
        .iter()
        .enumerate()
        .map(|(i, (name, n))| NetPlan { name: name.clone(), bridge: format!("br{i}"), mtu: n.mtu })
        .collect();
    let net_index = |name: &str| networks.iter().position(|n| n.name == name).unwrap_or(0);
    let mut hosts = Vec::new();
    for (index, h) in r.hosts.iter().enumerate() {
        let mut ifaces = Vec::new();
        for i in &h.interfaces {
            for a in &i.networks {
                let ni = net_index(&a.network);
                ifaces.push(IfacePlan {
                    network: a.network.clone(),
                    net_index: ni,
                    ifname: a.network.clone(),
                    address: a.address,
                    prefix: a.prefix_length,
                    mtu: a.mtu,
                    port: format!("h{index}n{ni}"),
                });
            }
        }
        ifaces.sort_by_key(|i| i.net_index);
        let (profile_name, profile) = match profile_override {
            Some((n, p)) => (n.to_owned(), p),
            None => r
                .lab
                .hosts
                .get(&h.name)
                .map_or(("default".into(), Profile::default()), |l| (l.profile.clone(), l.impairments)),
        };
        hosts.push(HostPlan {
            name: h.name.clone(),
            index,
            ns: host_ns(&cluster, &h.name),
            role: if h.role == Role::Server { LabRole::Server } else { LabRole::Agent },
            init: h.init,
            cluster_ip: h.addresses.get(CLUSTER_NETWORK).copied().unwrap_or(h.node_ip),
            ifaces,
            profile_name,
            profile,
        });
    }
    let servers = hosts.iter().filter(|h| h.is_server()).map(|h| h.index).collect();
    let agents = hosts.iter().filter(|h| !h.is_server()).map(|h| h.index).collect();
    LabPlan {
        fabric_ns: format!("n3x-{cluster}"),
        cluster,
        seed: r.lab.seed,
        hosts,
        networks,
        etcd: EtcdTimings { heartbeat_ms: r.k3s.etcd.heartbeat_ms, election_ms: r.k3s.etcd.election_ms },
        servers,
        agents,
    }
}

/// The reference inventory's plan, for tests.
#[cfg(test)]
pub fn reference() -> LabPlan {
    let r = n3x_model::analyze(include_str!("../../../n3x.toml")).resolve();
    plan(&r.unwrap_or_else(|e| panic!("the reference inventory resolves: {e:?}")), None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reference_plan() {
        let p = reference();
        assert_eq!(p.fabric_ns, "n3x-n3x");
        assert_eq!(p.hosts.len(), 5);
        assert_eq!(p.servers.len(), 3);
        let j1 = p.host("jetson-1").unwrap();
        assert_eq!(j1.ns, "n3x-n3x-jetson-1");
        assert_eq!(j1.profile_name, "edge");
        assert_eq!(j1.profile.delay_ms, Some(50.0));
        assert_eq!(j1.ifaces.iter().map(|i| i.ifname.as_str()).collect::<Vec<_>>(), ["cluster", "storage"]);
        assert_eq!(p.initial_cluster().split(',').count(), 3);
        assert!(p.initial_cluster().starts_with("n100-1=https://192.168.200.11:2380"));
        assert!(p.needs().delay && p.needs().loss && p.needs().rate);
        // Every port name is unique in the fabric namespace and fits Linux's 15 characters.
        let mut ports: Vec<&str> = p.hosts.iter().flat_map(|h| h.ifaces.iter().map(|i| i.port.as_str())).collect();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), 10);
        assert!(ports.iter().all(|p| p.len() <= 15));
    }

    #[test]
    fn the_operator_takes_a_free_cluster_address() {
        let r = n3x_model::analyze(include_str!("../../../n3x.toml")).resolve().unwrap();
        let mut p = plan(&r, None);
        p.add_operator(&r).unwrap();
        let op = p.operator().unwrap();
        assert_eq!(op.ns, "n3x-n3x-operator");
        assert_eq!(op.cluster_ip, Ipv4Addr::new(192, 168, 200, 254));
        assert_eq!(op.ifaces.len(), 1);
        assert_eq!(p.inventory_hosts().count(), 5);
        assert_eq!((p.servers.len(), p.agents.len()), (3, 2));
        assert!(p.add_operator(&r).unwrap_err().contains("named `operator`"));
    }

    #[test]
    fn override_replaces_every_profile() {
        let a = n3x_model::analyze(include_str!("../../../n3x.toml"));
        let r = a.resolve().unwrap();
        let p = plan(&r, Some(("default", Profile::default())));
        assert!(p.hosts.iter().all(|h| h.profile_name == "default"));
        assert_eq!(p.needs(), Needs::default());
    }
}
