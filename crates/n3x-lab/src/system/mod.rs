//! The seam between the lab's decisions and the machine. Everything the lab does to the
//! kernel (namespaces, links, addresses, nftables, qdiscs, sysctls, processes, TAP ports)
//! goes through [`System`]. [`Linux`] is the one real implementation; unit tests use a
//! recording fake (`fake.rs`) to check the order of builds and teardowns and that every
//! error is collected, and the integration tests in `crates/n3x/tests/lab.rs` exercise the
//! real one.
//!
//! Network clients that run *inside* a namespace (the probes, etcd status calls) are not
//! side effects on the machine and do not go through the trait: see [`netns_thread`].

mod linux;
mod netlink;
mod netns;

#[cfg(test)]
pub mod fake;

use std::net::Ipv4Addr;
use std::path::Path;

pub use linux::Linux;
pub use netns::{in_netns, netns_thread};

use crate::error::LabError;
use crate::state::ProcessRecord;

/// Where `ip netns` (and the lab) mount named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// One change to the links of a namespace, applied in order by [`System::links`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkOp {
    /// Bring `lo` up.
    LoopbackUp,
    /// A bridge without STP or multicast snooping, up, with an MTU and an alias.
    Bridge { name: String, mtu: u16, alias: String },
    /// A veth pair: `name` stays here, enslaved to `master`, up, with `alias`; `peer` is
    /// created directly in namespace `peer_ns` (down, without an address).
    Veth { name: String, mtu: u16, master: String, alias: String, peer: String, peer_ns: String },
    /// Give an existing link an alias and bring it up.
    Up { name: String, alias: String },
    /// Add an IPv4 address to a link.
    Addr { dev: String, address: Ipv4Addr, prefix: u8 },
}

/// A process the lab started: etcd, usually.
pub trait Process: Send {
    fn pid(&self) -> i32;
    /// Whether it still runs (reaping it if it has exited).
    fn running(&mut self) -> bool;
    /// SIGKILL, then reap. Killing an exited process is not an error.
    fn kill(&mut self);
}

/// Everything the lab does to the machine.
pub trait System: Send + Sync {
    // Namespaces.
    fn netns_exists(&self, name: &str) -> bool;
    fn list_netns(&self) -> Vec<String>;
    /// Creates a named network namespace, as `ip netns add` does.
    fn create_netns(&self, name: &str) -> Result<(), LabError>;
    /// Removes a named namespace (its links go with it), as `ip netns del` does.
    fn delete_netns(&self, name: &str) -> Result<(), LabError>;
    /// The processes whose network namespace is one of `names`, found in one pass.
    fn processes_in(&self, names: &[String]) -> Vec<ProcessRecord>;
    /// The aliases of every link in namespace `ns`.
    fn link_aliases(&self, ns: &str) -> Result<Vec<String>, LabError>;

    // Links, nftables, qdiscs, sysctls.
    fn links(&self, ns: &str, ops: &[LinkOp]) -> Result<(), LabError>;
    /// Loads an nftables script inside namespace `ns`.
    fn nft(&self, ns: &str, script: &str) -> Result<(), LabError>;
    /// Runs `tc` with `args` inside namespace `ns`.
    fn tc(&self, ns: &str, args: &[String]) -> Result<(), LabError>;
    /// Whether this kernel can delay packets (`sch_netem`).
    fn probe_netem(&self) -> bool;
    /// A sysctl of the initial namespace, by its path under /proc/sys.
    fn read_sysctl(&self, key: &str) -> Option<u64>;
    fn write_sysctl(&self, key: &str, value: u64) -> Result<(), LabError>;

    // Processes.
    /// Starts `program` in namespace `ns` with output appended to `log`. It dies with the
    /// process that started it.
    fn spawn(&self, ns: &str, program: &Path, args: &[String], log: &Path) -> Result<Box<dyn Process>, LabError>;
    /// SIGKILL to a recorded process, if it is still that process; true if it was alive.
    fn kill(&self, rec: &ProcessRecord) -> bool;
    /// Whether `rec` still names a live (not zombie) process.
    fn alive(&self, rec: &ProcessRecord) -> bool;

    // The userspace fabric.
    /// Creates TAP `ifname` in namespace `ns` and plugs it into `switch` as `host`'s port.
    fn attach_tap(
        &self,
        ns: &str,
        ifname: &str,
        mtu: u32,
        switch: &n3x_switch::Switch,
        host: &str,
    ) -> Result<(), LabError>;
}
