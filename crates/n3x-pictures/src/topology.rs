//! The cluster's topology, from the resolved inventory: hosts by role, their NICs and bonds,
//! the VLANs on them, each network with its CIDR and MTU, each address. Serializable, so
//! `report.json` carries it and `n3x lab report` can draw it again.

use n3x_model::Resolved;
use n3x_model::model::Role;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub cluster: String,
    pub networks: Vec<Network>,
    /// Servers first, then agents, each by name.
    pub hosts: Vec<Host>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub cidr: String,
    pub vlan: Option<u16>,
    pub mtu: u16,
    pub gateway: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    /// `server` or `agent`.
    pub role: String,
    pub init: bool,
    pub hardware: String,
    pub arch: String,
    pub interfaces: Vec<Interface>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    /// Bond members; empty for a plain NIC.
    pub members: Vec<String>,
    pub bond_mode: Option<String>,
    pub attachments: Vec<Attachment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub network: String,
    pub vlan: Option<u16>,
    /// The device holding the address (`vlan200` on a bond, or the interface itself).
    pub device: String,
    /// `address/prefix`.
    pub address: String,
}

impl Topology {
    pub fn from_resolved(r: &Resolved) -> Topology {
        let mut hosts: Vec<Host> = r
            .hosts
            .iter()
            .map(|h| Host {
                name: h.name.clone(),
                role: if h.role == Role::Server { "server".into() } else { "agent".into() },
                init: h.init,
                hardware: h.hardware.as_str().into(),
                arch: h.arch.into(),
                interfaces: h
                    .interfaces
                    .iter()
                    .map(|i| Interface {
                        name: i.name.clone(),
                        members: i.members.clone(),
                        bond_mode: i.bond_mode.map(|m| m.as_str().to_owned()),
                        attachments: i
                            .networks
                            .iter()
                            .map(|a| Attachment {
                                network: a.network.clone(),
                                vlan: a.vlan,
                                device: a.device.clone(),
                                address: format!("{}/{}", a.address, a.prefix_length),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        hosts.sort_by(|a, b| (a.role != "server", &a.name).cmp(&(b.role != "server", &b.name)));
        Topology {
            cluster: r.cluster.name.clone(),
            networks: r
                .networks
                .iter()
                .map(|(name, n)| Network {
                    name: name.clone(),
                    cidr: n.cidr.to_string(),
                    vlan: n.vlan,
                    mtu: n.mtu,
                    gateway: n.gateway.map(|g| g.to_string()),
                })
                .collect(),
            hosts,
        }
    }

    pub fn servers(&self) -> usize {
        self.hosts.iter().filter(|h| h.role == "server").count()
    }

    /// One line per network: `cluster 192.168.200.0/24 · VLAN 200 · MTU 1500 · gw ...`.
    pub fn network_label(n: &Network) -> String {
        let mut s = format!("{} {}", n.name, n.cidr);
        match n.vlan {
            Some(v) => s.push_str(&format!(" · VLAN {v}")),
            None => s.push_str(" · untagged"),
        }
        s.push_str(&format!(" · MTU {}", n.mtu));
        if let Some(g) = &n.gateway {
            s.push_str(&format!(" · gw {g}"));
        }
        s
    }

    /// What a host's box says about it: `server · n100 · x86_64-linux · init`.
    pub fn host_label(h: &Host) -> String {
        let mut s = format!("{} · {} · {}", h.role, h.hardware, h.arch);
        if h.init {
            s.push_str(" · init");
        }
        s
    }

    /// An interface's line: `bond0 = eno1 + eno2 (802.3ad)`, or its name.
    pub fn interface_label(i: &Interface) -> String {
        if i.members.is_empty() {
            return i.name.clone();
        }
        let mode = i.bond_mode.as_deref().map(|m| format!(" ({m})")).unwrap_or_default();
        format!("{} = {}{mode}", i.name, i.members.join(" + "))
    }

    /// An attachment's line: `vlan200 -> cluster 192.168.200.11/24`.
    pub fn attachment_label(a: &Attachment) -> String {
        format!("{} → {} {}", a.device, a.network, a.address)
    }
}
