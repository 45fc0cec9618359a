//! The typed inventory. Built by `decode` even when the file has errors: a field that could
//! not be read is `None` (or its default), so the semantic checks still run on the rest and
//! the user sees every problem in one round.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::net::Ipv4Net;
use crate::span::{Sp, Span};

/// The schema version this n3x reads.
pub const SCHEMA_VERSION: i64 = 1;

#[derive(Clone, Debug)]
pub struct Inventory {
    pub version: Option<Sp<i64>>,
    pub cluster: Cluster,
    pub k3s: K3s,
    pub networks: BTreeMap<String, Network>,
    pub hosts: BTreeMap<String, Host>,
    pub addons: Addons,
    pub security: Security,
    pub secrets: Secrets,
    pub access: Access,
    pub lab: Lab,
    /// Dotted paths (`hosts.s1.init`) of values present in the file but unreadable; each
    /// already has its diagnostic.
    pub unreadable: BTreeSet<String>,
}

impl Inventory {
    pub fn is_unreadable(&self, path: &str) -> bool {
        self.unreadable.contains(path)
    }
}

#[derive(Clone, Debug)]
pub struct Cluster {
    pub name: Option<Sp<String>>,
    pub domain: Option<Sp<String>>,
}

#[derive(Clone, Debug)]
pub struct K3s {
    pub span: Span,
    pub version: Sp<String>,
    pub cluster_cidr: Sp<Ipv4Net>,
    pub service_cidr: Sp<Ipv4Net>,
    pub cluster_dns: Sp<Ipv4Addr>,
    pub disable: Vec<Sp<String>>,
    pub token_file: Sp<String>,
    pub agent_token_file: Sp<String>,
    pub etcd: Etcd,
}

#[derive(Clone, Debug)]
pub struct Etcd {
    pub heartbeat_ms: Sp<u64>,
    pub election_ms: Sp<u64>,
    pub snapshot_schedule: Sp<String>,
    pub snapshot_retention: Sp<u64>,
}

/// The k3s minor tracks the flake's pinned nixpkgs (nixos-25.11) carries, with the
/// nixpkgs attribute the flake pins `services.k3s.package` to. 1.30 was removed in 25.11
/// (end of life); 1.35 arrived after it.
pub const K3S_TRACKS: &[(&str, &str)] =
    &[("v1.31", "k3s_1_31"), ("v1.32", "k3s_1_32"), ("v1.33", "k3s_1_33"), ("v1.34", "k3s_1_34")];

/// The nixpkgs attribute of a k3s track, if the pinned nixpkgs carries it.
pub fn k3s_package(track: &str) -> Option<&'static str> {
    K3S_TRACKS.iter().find(|(t, _)| *t == track).map(|(_, p)| *p)
}

/// Where the API server writes its audit log unless `[security.audit] log_path` says otherwise
/// (k3s' hardening guide's path).
pub const DEFAULT_AUDIT_LOG: &str = "/var/lib/rancher/k3s/server/logs/audit.log";
/// Prometheus' retention and volume size unless `[addons.monitoring]` says otherwise.
pub const DEFAULT_RETENTION: &str = "15d";
pub const DEFAULT_MONITORING_SIZE: &str = "20Gi";
/// The sysctls kubelet checks when `protect-kernel-defaults` is on: it refuses to start
/// when the kernel's values differ (k3s' hardening guide).
pub const KERNEL_DEFAULTS: &[(&str, i64)] =
    &[("vm.panic_on_oom", 0), ("vm.overcommit_memory", 1), ("kernel.panic", 10), ("kernel.panic_on_oops", 1)];

pub const DISABLEABLE: &[&str] = &["traefik", "servicelb", "local-storage", "metrics-server", "coredns"];

#[derive(Clone, Debug)]
pub struct Network {
    pub name: Sp<String>,
    pub cidr: Option<Sp<Ipv4Net>>,
    /// `None`: untagged.
    pub vlan: Option<Sp<u16>>,
    pub mtu: Sp<u16>,
    /// The router of this network; the one network with a gateway carries every host's
    /// default route.
    pub gateway: Option<Sp<Ipv4Addr>>,
    /// DNS servers, for the hosts that carry this network.
    pub dns: Vec<Sp<Ipv4Addr>>,
}

/// `[access]`: who may log in to the installed machines.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// The `[access]` table, if present.
    pub span: Option<Span>,
    /// OpenSSH public keys of the admins, installed for root (password login stays off).
    pub ssh_keys: Vec<Sp<String>>,
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),* }
        impl $name {
            pub const NAMES: &'static [&'static str] = &[$($s),*];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),* } }
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some($name::$variant),)* _ => None } }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_str(self.as_str()) }
        }
    };
}

string_enum!(Hardware {
    N100 = "n100",
    JetsonOrinNano = "jetson-orin-nano",
    X86_64Generic = "x86_64-generic",
    QemuX86_64 = "qemu-x86_64",
    QemuAarch64 = "qemu-aarch64",
});

impl Hardware {
    /// The Nix system string; the hardware profile fixes it.
    pub fn arch(self) -> &'static str {
        match self {
            Hardware::N100 | Hardware::X86_64Generic | Hardware::QemuX86_64 => "x86_64-linux",
            Hardware::JetsonOrinNano | Hardware::QemuAarch64 => "aarch64-linux",
        }
    }

    pub fn is_jetson(self) -> bool {
        self == Hardware::JetsonOrinNano
    }

    /// A VM, whose NICs are named by the hypervisor's setup rather than found on a board.
    pub fn is_virtual(self) -> bool {
        matches!(self, Hardware::QemuX86_64 | Hardware::QemuAarch64)
    }

    /// Serial console when the inventory names none.
    pub fn default_console(self) -> Option<&'static str> {
        self.is_jetson().then_some("ttyTCU0")
    }
}

string_enum!(Role { Server = "server", Agent = "agent" });
string_enum!(
    /// The Pod Security Standard the API server enforces by default.
    PodSecurity { Restricted = "restricted", Baseline = "baseline", Privileged = "privileged" }
);
string_enum!(
    /// Where Prometheus keeps its data: a Longhorn volume or k3s' local-path provisioner.
    MonitoringStorage { Longhorn = "longhorn", LocalPath = "local-path" }
);
string_enum!(Layout { Standard = "standard", Zfs = "zfs" });
string_enum!(
    /// Linux bonding modes, as systemd-networkd spells them.
    BondMode {
        BalanceRr = "balance-rr",
        ActiveBackup = "active-backup",
        BalanceXor = "balance-xor",
        Broadcast = "broadcast",
        Lacp = "802.3ad",
        BalanceTlb = "balance-tlb",
        BalanceAlb = "balance-alb",
    }
);

#[derive(Clone, Debug)]
pub struct Host {
    /// The hostname, spanning its key in `[hosts.<name>]`.
    pub name: Sp<String>,
    pub hardware: Option<Sp<Hardware>>,
    pub role: Option<Sp<Role>>,
    pub init: Option<Sp<bool>>,
    pub ssh: Option<Sp<String>>,
    pub disk: Option<Sp<String>>,
    pub layout: Option<Sp<Layout>>,
    pub firmware: Option<Sp<String>>,
    pub console: Option<Sp<String>>,
    pub labels: Vec<(Sp<String>, Sp<String>)>,
    pub taints: Vec<Sp<String>>,
    pub interfaces: Vec<Interface>,
    /// `(network, address)` in source order.
    pub addresses: Vec<(Sp<String>, Sp<Ipv4Addr>)>,
    pub age: Option<Sp<String>>,
}

impl Host {
    pub fn is_server(&self) -> bool {
        self.role.as_ref().is_some_and(|r| r.value == Role::Server)
    }

    pub fn is_init(&self) -> bool {
        self.init.as_ref().is_some_and(|i| i.value)
    }

    pub fn address(&self, network: &str) -> Option<Ipv4Addr> {
        self.addresses.iter().find(|(n, _)| n.value == network).map(|(_, a)| a.value)
    }
}

#[derive(Clone, Debug)]
pub struct Interface {
    pub name: Sp<String>,
    pub bond: Option<Bond>,
    pub networks: Vec<Sp<String>>,
    /// The NIC's MAC address, lowercase `aa:bb:cc:dd:ee:ff`: the host finds the NIC by it
    /// and gives it this interface's name (predictable names rarely match `eth0`).
    pub mac: Option<Sp<String>>,
}

impl Interface {
    /// Names the kernel gives NICs itself (`eth0`), which NixOS' predictable names replace.
    pub fn kernel_style_name(name: &str) -> bool {
        name.strip_prefix("eth").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }
}

#[derive(Clone, Debug)]
pub struct Bond {
    pub members: Vec<Sp<String>>,
    pub mode: Sp<BondMode>,
}

#[derive(Clone, Debug, Default)]
pub struct Addons {
    pub kyverno: Option<Kyverno>,
    pub multus: Option<Multus>,
    pub longhorn: Option<Longhorn>,
    pub monitoring: Option<Monitoring>,
}

impl Addons {
    pub fn kyverno_enabled(&self) -> bool {
        self.kyverno.as_ref().is_some_and(|k| k.enable.value)
    }
    pub fn multus_enabled(&self) -> bool {
        self.multus.as_ref().is_some_and(|m| m.enable.value)
    }
    pub fn longhorn_enabled(&self) -> bool {
        self.longhorn.as_ref().is_some_and(|l| l.enable.value)
    }
    pub fn monitoring_enabled(&self) -> bool {
        self.monitoring.as_ref().is_some_and(|m| m.enable.value)
    }
    /// Where Prometheus keeps its data when `storage` is not given: replicated on Longhorn
    /// when the cluster has it.
    pub fn default_monitoring_storage(&self) -> MonitoringStorage {
        if self.longhorn_enabled() { MonitoringStorage::Longhorn } else { MonitoringStorage::LocalPath }
    }
}

/// `enable` defaults to true: writing the table is the intent, `enable = false` turns it off.
#[derive(Clone, Debug)]
pub struct Kyverno {
    pub enable: Sp<bool>,
}

#[derive(Clone, Debug)]
pub struct Multus {
    pub enable: Sp<bool>,
    pub networks: Vec<Sp<String>>,
}

#[derive(Clone, Debug)]
pub struct Longhorn {
    pub enable: Sp<bool>,
    pub network: Option<Sp<String>>,
    pub replicas: Sp<u64>,
    pub data_path: Sp<String>,
}

/// `[addons.monitoring]`: kube-prometheus-stack with n3x's alert rules.
#[derive(Clone, Debug)]
pub struct Monitoring {
    pub enable: Sp<bool>,
    /// Prometheus' `retention`, e.g. `15d`.
    pub retention: Sp<String>,
    /// The StorageClass of Prometheus' volume; None: `longhorn` when Longhorn is on, else `local-path`.
    pub storage: Option<Sp<MonitoringStorage>>,
    /// The volume's size, e.g. `20Gi`.
    pub size: Sp<String>,
}

/// `[security]`: k3s hardening. Every default is the hardened choice.
#[derive(Clone, Debug)]
pub struct Security {
    /// The table's span, or 0..0 when absent.
    pub span: Span,
    pub secrets_encryption: Sp<bool>,
    pub protect_kernel_defaults: Sp<bool>,
    pub pod_security: Sp<PodSecurity>,
    /// Extra names and addresses in the API server's certificate.
    pub tls_san: Vec<Sp<String>>,
    pub audit: Audit,
}

#[derive(Clone, Debug)]
pub struct Audit {
    pub enable: Sp<bool>,
    /// The user's policy, relative to the repository root; None: n3x's default policy.
    pub policy_file: Option<Sp<String>>,
    pub log_path: Sp<String>,
    pub max_age_days: Sp<u64>,
    pub max_backups: Sp<u64>,
    pub max_size_mb: Sp<u64>,
}

#[derive(Clone, Debug)]
pub struct Secrets {
    pub file: Sp<String>,
    pub admins: Vec<Sp<String>>,
}

#[derive(Clone, Debug)]
pub struct Lab {
    pub seed: Sp<u64>,
    pub profile: Sp<String>,
    /// User profiles; a built-in name here overrides the built-in.
    pub profiles: BTreeMap<String, (Sp<String>, Profile)>,
    /// `[lab.hosts.<name>]`: (host name as written, its profile).
    pub hosts: Vec<(Sp<String>, Option<Sp<String>>)>,
}

/// Link impairments. `None` means "not impaired in this way".
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub delay_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_pct: Option<f64>,
    pub rate_mbit: Option<f64>,
}

/// Why a value of a profile field cannot work. The inventory (`n3x check`) and `n3x lab
/// impair` both judge values with [`profile_value_problem`], so they accept the same ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueProblem {
    /// Negative, infinite or not a number.
    NotFiniteOrNegative,
    LossAbove100,
    /// A rate of 0 lets nothing through.
    ZeroRate,
}

impl ValueProblem {
    /// The message, with `name` the field as the user wrote it (a TOML path or a flag).
    pub fn message(self, name: &str, value: f64) -> String {
        match self {
            ValueProblem::NotFiniteOrNegative => format!("{name} must be a finite number of at least 0"),
            ValueProblem::LossAbove100 => format!("{name} is {value}, more than 100"),
            ValueProblem::ZeroRate => format!("{name} is 0: nothing would pass"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ValueProblem::NotFiniteOrNegative | ValueProblem::LossAbove100 => "out of range",
            ValueProblem::ZeroRate => "zero rate",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            ValueProblem::NotFiniteOrNegative => "use 0 or a positive number",
            ValueProblem::LossAbove100 => "a loss is a percentage from 0 to 100",
            ValueProblem::ZeroRate => "use a positive rate, or a partition (`n3x lab partition`) to cut a link",
        }
    }
}

/// The fields of a lab profile, as the inventory names them.
pub const PROFILE_FIELDS: [&str; 4] = ["delay_ms", "jitter_ms", "loss_pct", "rate_mbit"];

/// Whether `value` can be a profile's `field` (one of [`PROFILE_FIELDS`]).
pub fn profile_value_problem(field: &str, value: f64) -> Option<ValueProblem> {
    if !value.is_finite() || value < 0.0 {
        Some(ValueProblem::NotFiniteOrNegative)
    } else if field == "loss_pct" && value > 100.0 {
        Some(ValueProblem::LossAbove100)
    } else if field == "rate_mbit" && value == 0.0 {
        Some(ValueProblem::ZeroRate)
    } else {
        None
    }
}

/// The built-in profiles, from inventory.md.
pub const BUILTIN_PROFILES: &[(&str, Profile)] = &[
    ("default", Profile { delay_ms: None, jitter_ms: None, loss_pct: None, rate_mbit: None }),
    ("constrained", Profile { delay_ms: Some(50.0), jitter_ms: Some(10.0), loss_pct: None, rate_mbit: None }),
    ("lossy", Profile { delay_ms: None, jitter_ms: None, loss_pct: Some(5.0), rate_mbit: None }),
    ("slow", Profile { delay_ms: None, jitter_ms: None, loss_pct: None, rate_mbit: Some(10.0) }),
    ("edge", Profile { delay_ms: Some(50.0), jitter_ms: Some(10.0), loss_pct: Some(2.0), rate_mbit: Some(10.0) }),
];

impl Lab {
    /// A profile by name: the user's definition first, then the built-in.
    pub fn profile(&self, name: &str) -> Option<Profile> {
        self.profiles
            .get(name)
            .map(|(_, p)| *p)
            .or_else(|| BUILTIN_PROFILES.iter().find(|(n, _)| *n == name).map(|(_, p)| *p))
    }

    /// The profile name that applies to `host`'s links.
    pub fn profile_name_for(&self, host: &str) -> &str {
        self.hosts
            .iter()
            .find(|(h, _)| h.value == host)
            .and_then(|(_, p)| p.as_ref())
            .map_or(self.profile.value.as_str(), |p| p.value.as_str())
    }

    /// Every profile name a user can refer to, built-in first.
    pub fn profile_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = BUILTIN_PROFILES.iter().map(|(n, _)| *n).collect();
        for n in self.profiles.keys() {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_values_are_judged_by_one_rule() {
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            for f in PROFILE_FIELDS {
                assert_eq!(profile_value_problem(f, bad), Some(ValueProblem::NotFiniteOrNegative), "{f} = {bad}");
            }
        }
        assert_eq!(profile_value_problem("loss_pct", 100.5), Some(ValueProblem::LossAbove100));
        assert_eq!(profile_value_problem("loss_pct", 100.0), None);
        assert_eq!(profile_value_problem("rate_mbit", 0.0), Some(ValueProblem::ZeroRate));
        assert_eq!(profile_value_problem("delay_ms", 0.0), None);
        assert_eq!(ValueProblem::LossAbove100.message("--loss-pct", 150.0), "--loss-pct is 150, more than 100");
    }
}
