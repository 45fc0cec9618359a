//! Diagnostics: what `n3x check` reports. Every problem has a stable code, a severity,
//! a primary labelled span, optional related spans ("first defined here") and a fix.

use crate::span::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($($variant:ident = $name:literal, $sev:ident, $summary:literal;)*) => {
        /// Every diagnostic n3x can report. The string form is a stable public contract:
        /// scripts match on it, and `docs/diagnostics.md` lists each one.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$sev,)* }
            }

            /// One line saying what the check is about.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }

            pub fn from_name(name: &str) -> Option<Code> {
                match name { $($name => Some(Code::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    TomlSyntax = "toml-syntax", Error, "the file is not valid TOML";
    UnknownKey = "unknown-key", Error, "a key that schema v1 does not define";
    InvalidType = "invalid-type", Error, "a value of the wrong TOML type";
    MissingKey = "missing-key", Error, "a required key or table is absent";
    UnsupportedVersion = "unsupported-version", Error, "`version` is not a schema this n3x reads";
    InvalidName = "invalid-name", Error, "a cluster, host or interface name that breaks its naming rule";
    InvalidValue = "invalid-value", Error, "a value outside its allowed set or format";
    InvalidCidr = "invalid-cidr", Error, "a CIDR that is not IPv4 `a.b.c.d/len` with no host bits set";
    InvalidAddress = "invalid-address", Error, "an address that is not a dotted IPv4 address";
    OutOfRange = "out-of-range", Error, "a number outside its allowed range";
    MissingClusterNetwork = "missing-cluster-network", Error, "no network called `cluster`";
    UnknownNetwork = "unknown-network", Error, "a reference to a network that `[networks]` does not define";
    HostWithoutClusterNetwork = "host-without-cluster-network", Error, "a host that does not carry the `cluster` network";
    DuplicateAddress = "duplicate-address", Error, "two hosts with the same address";
    AddressOutsideCidr = "address-outside-cidr", Error, "an address outside its network's CIDR";
    AddressReserved = "address-reserved", Error, "an address equal to its network's network or broadcast address";
    MissingAddress = "missing-address", Error, "a host carries a network but has no address on it";
    AddressNotCarried = "address-not-carried", Error, "an address for a network none of the host's interfaces carry";
    NetworkOnTwoInterfaces = "network-on-two-interfaces", Error, "one host carries the same network on two interfaces";
    DuplicateVlan = "duplicate-vlan", Error, "two networks with the same VLAN id";
    OverlappingCidrs = "overlapping-cidrs", Error, "two networks whose CIDRs overlap";
    K3sCidrOverlap = "k3s-cidr-overlap", Error, "the pod or service CIDR overlaps a host network or each other";
    ClusterDnsOutsideServiceCidr = "cluster-dns-outside-service-cidr", Error, "`cluster_dns` is not inside `service_cidr`";
    NicInTwoBonds = "nic-in-two-bonds", Error, "a NIC listed as a member of two bonds";
    NicBondAndInterface = "nic-bond-and-interface", Error, "a NIC that is a bond member and also its own interface";
    TwoUntaggedNetworks = "two-untagged-networks", Error, "two untagged networks on one interface";
    NoServer = "no-server", Error, "no host has `role = \"server\"`";
    NoInitServer = "no-init-server", Error, "no server has `init = true`";
    SeveralInitServers = "several-init-servers", Error, "more than one server has `init = true`";
    InitOnAgent = "init-on-agent", Error, "`init = true` on an agent";
    EvenServers = "even-servers", Error, "an even number of servers (etcd quorum gains nothing from the extra one)";
    EtcdTiming = "etcd-timing", Error, "etcd timings that etcd itself refuses";
    JetsonFirmwareBroken = "jetson-firmware-broken", Error, "Jetson firmware 35.3.1, whose USB boot is broken";
    FirmwareOnNonJetson = "firmware-on-non-jetson", Error, "`firmware` on hardware that is not a Jetson";
    LonghornWithoutKyverno = "longhorn-without-kyverno", Error, "Longhorn enabled without the Kyverno PATH policy";
    LonghornNetworkNotExposed = "longhorn-network-not-exposed", Error, "Longhorn's network is not exposed by Multus";
    LonghornReplicas = "longhorn-replicas", Error, "more Longhorn replicas than hosts";
    SecretInInventory = "secret-in-inventory", Error, "a secret value where n3x.toml expects a path or a public key";
    UnknownProfile = "unknown-profile", Error, "a lab profile that is neither built in nor defined";
    UnknownLabHost = "unknown-lab-host", Error, "`[lab.hosts.<name>]` for a host that does not exist";
    InvalidSshKey = "invalid-ssh-key", Error, "an `access.ssh_keys` entry that is not an OpenSSH public key";
    GatewayOutsideNetwork = "gateway-outside-network", Error, "a gateway that is not a host address of its network";
    GatewayIsHostAddress = "gateway-is-host-address", Error, "a gateway equal to a cluster host's address";
    SeveralDefaultRoutes = "several-default-routes", Error, "more than one network has a `gateway`";
    DuplicateMac = "duplicate-mac", Error, "two interfaces with the same MAC address";
    UnsupportedK3sVersion = "unsupported-k3s-version", Error, "a k3s track the pinned nixpkgs does not carry";
    InvalidTlsSan = "invalid-tls-san", Error, "a `security.tls_san` entry that is neither a DNS name nor an IPv4 address";
    MonitoringStorageUnavailable = "monitoring-storage-unavailable", Error, "monitoring's volume on a storage class the cluster does not have";
    JetsonServer = "jetson-server", Warning, "a Jetson (SD/eMMC-class storage) as an etcd server";
    SingleServer = "single-server", Warning, "a single server: no HA control plane";
    StorageMtuSmaller = "storage-mtu-smaller", Warning, "the storage network's MTU is smaller than the cluster network's";
    LabRttTooHigh = "lab-rtt-too-high", Warning, "lab delays put etcd's election timeout below 10 x round trip";
    NoDefaultRoute = "no-default-route", Warning, "no network has a `gateway`, so hosts have no default route";
    NoDnsServers = "no-dns-servers", Warning, "a default route but no `dns` servers";
    NoAdminKey = "no-admin-key", Warning, "no `access.ssh_keys`: nobody can log in after an install";
    KernelInterfaceName = "kernel-interface-name", Warning, "a physical host's NIC named `eth*`: it will not exist, or races with the kernel's names";
    SecretsEncryptionOff = "secrets-encryption-off", Warning, "Kubernetes secrets stored unencrypted in etcd and in every snapshot";
    KernelDefaultsUnprotected = "kernel-defaults-unprotected", Warning, "`protect_kernel_defaults = false`: kubelet runs whatever the kernel's sysctls are";
    AuditLogOff = "audit-log-off", Warning, "the API server keeps no audit log";
    PodSecurityPrivileged = "pod-security-privileged", Warning, "no Pod Security Standard is enforced";
    MonitoringDataOnOneNode = "monitoring-data-on-one-node", Warning, "Prometheus' data on one node's local disk: lost with that node";
}

/// A span with a message, drawn under the user's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    /// Lowercase, with backticked names: "address `192.168.200.12` of `n100-2` is already used by `n100-1`".
    pub message: String,
    pub primary: Label,
    /// Other places that explain the problem ("first defined here").
    pub related: Vec<Label>,
    /// The fix, as an instruction.
    pub help: Option<String>,
    /// Spans whose text is a secret: renderers must mask them, never print them.
    pub secret_spans: Vec<Span>,
}

impl Diagnostic {
    pub fn new(code: Code, span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            primary: Label { span, message: label.into() },
            related: Vec::new(),
            help: None,
            secret_spans: Vec::new(),
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a related label. A default value that no table in the file holds carries the
    /// empty span `0..0`; pointing at it would mislead, so such labels are left out.
    pub fn related(mut self, span: Span, message: impl Into<String>) -> Self {
        if span != (0..0) {
            self.related.push(Label { span, message: message.into() });
        }
        self
    }

    pub fn secret(mut self, span: Span) -> Self {
        self.secret_spans.push(span);
        self
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }
}

/// `source` with every secret span of `diagnostics` replaced by `*`, byte for byte, so
/// offsets stay valid and a rendered snippet never shows the secret.
pub fn mask_secrets(source: &str, diagnostics: &[Diagnostic]) -> String {
    let mut bytes = source.as_bytes().to_vec();
    for span in diagnostics.iter().flat_map(|d| &d.secret_spans) {
        let end = span.end.min(bytes.len());
        for b in bytes.iter_mut().take(end).skip(span.start) {
            // Keep line breaks so line numbers do not move.
            if *b != b'\n' {
                *b = b'*';
            }
        }
    }
    // Replacing whole UTF-8 sequences byte by byte with ASCII keeps the text valid.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
