# n3x's pure Nix library: builtins only, no nixpkgs, so it evaluates anywhere
# (`nix-instantiate --eval` on a machine without a nixpkgs checkout) and the tests in
# `crates/n3x/tests/nix_facts.rs` pin it.
#
# `facts` is the resolved inventory (same JSON as `n3x show --json`). Everything else
# derives NixOS-shaped data from one host's facts: the k3s config file, the
# systemd-networkd units, the disko layout, the sops secrets and the cluster manifests.
# The NixOS modules in `nix/modules` are thin: they declare the typed `n3x.*` options
# (defaults taken from these functions) and hand the values to NixOS options.
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    elemAt
    filter
    head
    length
    listToAttrs
    map
    ;

  unique = foldl (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
  foldl = builtins.foldl';
  concatMap = f: l: concatLists (map f l);
  nameValue = name: value: { inherit name value; };
in
rec {
  facts = import ./facts.nix;

  fromToml = text: facts { inventory = builtins.fromTOML text; };
  fromFile = path: fromToml (builtins.readFile path);

  hostNames = f: map (h: h.name) f.hosts;

  host =
    f: name:
    let
      hs = filter (h: h.name == name) f.hosts;
    in
    if hs == [ ] then
      throw "n3x: no host `${name}` in the inventory (n3x.hostName); hosts: ${toString (hostNames f)}"
    else
      head hs;

  isServer = h: h.role == "server";

  # The Nix system of a hardware profile (model.rs `Hardware::arch`): the one table, shared
  # with facts.nix. A host's own `arch` is in its facts.
  inherit (import ./hardware.nix) archOf;
  isJetson = h: h.hardware == "jetson-orin-nano";

  # The sops-nix secrets a host needs: relative file names (the module anchors them at the
  # flake root), the key inside the file and where the decrypted value lands. Servers hold
  # both tokens from the server file; agents only the agent token, from the agent file
  # (`f.secrets.agent_file`, resolved once in facts.nix like resolve.rs does).
  secretsFor =
    f: h:
    let
      serverFile = f.secrets.file;
    in
    {
      "k3s-agent-token" = {
        key = "k3s-agent-token";
        file = if isServer h then serverFile else f.secrets.agent_file;
        path = f.k3s.agent_token_file;
      };
    }
    // (
      if isServer h then
        {
          "k3s-token" = {
            key = "k3s-token";
            file = serverFile;
            path = f.k3s.token_file;
          };
        }
      else
        { }
    );

  # --- network ----------------------------------------------------------------------
  attachments = h: concatMap (i: i.networks) h.interfaces;
  attachment =
    h: net:
    let
      as = filter (a: a.network == net) (attachments h);
    in
    if as == [ ] then null else head as;

  # The Linux device holding the host's address on `net` (flannel's interface for `cluster`).
  deviceOf =
    h: net:
    let
      a = attachment h net;
    in
    if a == null then null else a.device;

  # systemd-networkd units for one host, in the shape of `systemd.network.{netdevs,networks,links}`.
  # `h` needs `interfaces`, and may carry `default_route` and `dns` (as in the host's facts).
  # Numeric prefixes order the units: bonds (10), bond members (20), parents (30),
  # VLAN devices (40/50). A NIC with a `mac` is found by its permanent MAC (a VLAN device
  # or bond shares the MAC, never the permanent one) and named as in the inventory by a
  # .link file; the default route and DNS go on the device that reaches the gateway.
  networkd =
    h:
    let
      cidrOf = a: "${a.address}/${toString a.prefix_length}";
      isBond = i: i.bond_mode != null;
      route = h.default_route or null;
      dns = h.dns or [ ];
      # The device carrying the routes: the default route's, else the node IP's (cluster).
      routeDevice = if route != null then route.device else deviceOf h "cluster";
      routing =
        device:
        (if route != null && device == route.device then { gateway = [ route.gateway ]; } else { })
        // (if dns != [ ] && device == routeDevice then { inherit dns; } else { });
      perInterface =
        i:
        let
          tagged = filter (a: a.vlan != null) i.networks;
          untagged = filter (a: a.vlan == null) i.networks;
          mtu = toString i.mtu;
          mac = i.mac or null;
        in
        {
          links =
            if mac == null then
              [ ]
            else
              [
                (nameValue "10-${i.name}" {
                  matchConfig.PermanentMACAddress = mac;
                  linkConfig.Name = i.name;
                })
              ];
          netdevs =
            (
              if isBond i then
                [
                  (nameValue "10-${i.name}" {
                    netdevConfig = {
                      Kind = "bond";
                      Name = i.name;
                      MTUBytes = mtu;
                    };
                    bondConfig =
                      {
                        Mode = i.bond_mode;
                        MIIMonitorSec = "100ms";
                      }
                      // (
                        if i.bond_mode == "802.3ad" || i.bond_mode == "balance-xor" then
                          { TransmitHashPolicy = "layer3+4"; }
                        else
                          { }
                      );
                  })
                ]
              else
                [ ]
            )
            ++ map (
              a:
              nameValue "40-${a.device}" {
                netdevConfig = {
                  Kind = "vlan";
                  Name = a.device;
                  MTUBytes = toString a.mtu;
                };
                vlanConfig.Id = a.vlan;
              }
            ) tagged;
          networks =
            map (
              m:
              nameValue "20-${m}" {
                matchConfig.Name = m;
                networkConfig.Bond = i.name;
                linkConfig.MTUBytes = mtu;
              }
            ) i.members
            ++ [
              (nameValue "30-${i.name}" (
                {
                  matchConfig = if mac == null then { Name = i.name; } else { PermanentMACAddress = mac; };
                  vlan = map (a: a.device) tagged;
                  address = map cidrOf untagged;
                  networkConfig =
                    {
                      DHCP = "no";
                    }
                    // (if untagged == [ ] then { LinkLocalAddressing = "no"; } else { });
                  linkConfig = {
                    MTUBytes = mtu;
                    RequiredForOnline = if untagged == [ ] then "carrier" else "routable";
                  };
                }
                // routing i.name
              ))
            ]
            ++ map (
              a:
              nameValue "50-${a.device}" (
                {
                  matchConfig.Name = a.device;
                  address = [ (cidrOf a) ];
                  networkConfig.DHCP = "no";
                  linkConfig.RequiredForOnline = "routable";
                }
                // routing a.device
              )
            ) tagged;
        };
      parts = map perInterface h.interfaces;
    in
    {
      links = listToAttrs (concatMap (p: p.links) parts);
      netdevs = listToAttrs (concatMap (p: p.netdevs) parts);
      networks = listToAttrs (concatMap (p: p.networks) parts);
    };

  # Ports each role must accept on the cluster network (k3s docs "Inbound rules"):
  # API/supervisor 6443, etcd client+peer 2379-2380 (servers), kubelet 10250,
  # flannel VXLAN 8472/udp. Longhorn's iSCSI 3260 goes on the storage network. With
  # monitoring, Prometheus (a pod, masqueraded onto the cluster NIC) scrapes etcd's metrics
  # on servers (2381) and node-exporter on every host (9100, host network).
  firewall =
    f: h:
    let
      monitoring = f.addons.monitoring.enable;
    in
    {
      clusterTCP =
        [ 10250 ]
        ++ (if isServer h then [ 6443 2379 2380 ] else [ ])
        ++ (if monitoring then [ 9100 ] ++ (if isServer h then [ 2381 ] else [ ]) else [ ]);
      clusterUDP = [ 8472 ];
      storageTCP = [ 3260 ];
    };

  # --- k3s --------------------------------------------------------------------------
  # Everything k3s needs beyond `role`, `serverAddr`, `clusterInit` and `tokenFile` goes in
  # its config file (`--config`), which takes every CLI flag as a key. Values with spaces
  # (the snapshot cron) survive there; on the ExecStart line they would be split.
  k3sArgs = f: h: {
    role = h.role;
    clusterInit = h.init;
    serverAddr = if h.server_url == null then "" else h.server_url;
    tokenFile = if isServer h then f.k3s.token_file else f.k3s.agent_token_file;
    agentTokenFile = if isServer h then f.k3s.agent_token_file else null;
    nodeIP = h.node_ip;
    flannelIface = deviceOf h "cluster";
    labels = h.labels;
    taints = h.taints;
    disable = f.k3s.disable;
    clusterCidr = f.k3s.cluster_cidr;
    serviceCidr = f.k3s.service_cidr;
    clusterDns = f.k3s.cluster_dns;
    etcd = {
      heartbeatMs = f.k3s.etcd.heartbeat_ms;
      electionMs = f.k3s.etcd.election_ms;
      snapshotSchedule = f.k3s.etcd.snapshot_schedule;
      snapshotRetention = f.k3s.etcd.snapshot_retention;
    };
    # Prometheus scrapes etcd's metrics listener (2381) on each server's node IP.
    etcdExposeMetrics = f.addons.monitoring.enable;
    secretsEncryption = f.security.secrets_encryption;
    protectKernelDefaults = f.security.protect_kernel_defaults;
    tlsSan = f.security.tls_san;
    audit = {
      enable = f.security.audit.enable;
      logPath = f.security.audit.log_path;
      maxAgeDays = f.security.audit.max_age_days;
      maxBackups = f.security.audit.max_backups;
      maxSizeMb = f.security.audit.max_size_mb;
    };
  };

  # The sysctls kubelet checks under protect-kernel-defaults (model.rs `KERNEL_DEFAULTS`;
  # facts.nix's `kernel_sysctls` when the inventory keeps it on).
  kernelDefaults = {
    "kernel.panic" = 10;
    "kernel.panic_on_oops" = 1;
    "vm.overcommit_memory" = 1;
    "vm.panic_on_oom" = 0;
  };

  # Where the servers' admission and audit policy files live: /etc, written by
  # nix/modules/k3s.nix from `admissionConfig` and the audit policy.
  admissionConfigPath = "/etc/rancher/k3s/admission.yaml";
  auditPolicyPath = "/etc/rancher/k3s/audit-policy.yaml";

  # kubelet's TLS ciphers, k3s' hardening guide's list (no CBC, no RSA key exchange).
  kubeletCipherSuites = concatStringsSep "," [
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"
  ];

  k3sConfig =
    a:
    let
      # kubelet runs on every node: its hardening applies to agents too.
      agentKeys = {
        node-ip = a.nodeIP;
        node-label = map (k: "${k}=${a.labels.${k}}") (attrNames a.labels);
        node-taint = a.taints;
        protect-kernel-defaults = a.protectKernelDefaults;
        kubelet-arg = [
          "streaming-connection-idle-timeout=5m"
          "tls-cipher-suites=${kubeletCipherSuites}"
        ];
      }
      // (if a.flannelIface == null then { } else { flannel-iface = a.flannelIface; });
      au = a.audit;
      auditArgs =
        if au.enable then
          [
            "audit-log-path=${au.logPath}"
            "audit-policy-file=${auditPolicyPath}"
            "audit-log-maxage=${toString au.maxAgeDays}"
            "audit-log-maxbackup=${toString au.maxBackups}"
            "audit-log-maxsize=${toString au.maxSizeMb}"
          ]
        else
          [ ];
      serverKeys = {
        cluster-cidr = a.clusterCidr;
        service-cidr = a.serviceCidr;
        cluster-dns = a.clusterDns;
        disable = a.disable;
        etcd-arg = [
          "heartbeat-interval=${toString a.etcd.heartbeatMs}"
          "election-timeout=${toString a.etcd.electionMs}"
        ];
        etcd-snapshot-schedule-cron = a.etcd.snapshotSchedule;
        etcd-snapshot-retention = a.etcd.snapshotRetention;
        etcd-expose-metrics = a.etcdExposeMetrics;
        secrets-encryption = a.secretsEncryption;
        # k3s' hardening guide: PodSecurity and EventRateLimit admission, the audit log,
        # service account tokens that expire, and dead pods collected early.
        kube-apiserver-arg = [
          "enable-admission-plugins=NodeRestriction,EventRateLimit"
          "admission-control-config-file=${admissionConfigPath}"
          "service-account-extend-token-expiration=false"
        ]
        ++ auditArgs;
        kube-controller-manager-arg = [ "terminated-pod-gc-threshold=100" ];
      }
      // (if a.tlsSan == [ ] then { } else { tls-san = a.tlsSan; })
      // (if a.agentTokenFile == null then { } else { agent-token-file = a.agentTokenFile; });
    in
    agentKeys // (if a.role == "server" then serverKeys else { });

  # --- storage ----------------------------------------------------------------------
  # disko layouts. `standard`: ESP + ext4 root. `zfs`: ESP + a pool `zroot` with legacy
  # datasets, plus ext4 zvols for /var/lib/rancher (k3s' containerd keeps its default
  # overlayfs snapshotter there; see nix/modules/storage.nix) and for Longhorn's data path
  # (Longhorn supports ext4/XFS disks only).
  disko =
    {
      disk,
      layout,
      espSize ? "1G",
      rancherSize ? "64G",
      longhornSize ? "128G",
      longhornPath ? null,
    }:
    let
      esp = {
        type = "EF00";
        size = espSize;
        content = {
          type = "filesystem";
          format = "vfat";
          mountpoint = "/boot";
          mountOptions = [ "umask=0077" ];
        };
      };
      ext4Volume = size: mountpoint: {
        type = "zfs_volume";
        inherit size;
        content = {
          type = "filesystem";
          format = "ext4";
          inherit mountpoint;
        };
      };
      legacy = mountpoint: {
        type = "zfs_fs";
        inherit mountpoint;
        options.mountpoint = "legacy";
      };
      # One GPT disk: the ESP plus `rest` (the layout's root partition).
      gptDisk = rest: {
        disk.main = {
          type = "disk";
          device = disk;
          content = {
            type = "gpt";
            partitions = {
              ESP = esp;
            }
            // rest;
          };
        };
      };
    in
    if layout == "standard" then
      gptDisk {
        root = {
          size = "100%";
          content = {
            type = "filesystem";
            format = "ext4";
            mountpoint = "/";
          };
        };
      }
    else if layout == "zfs" then
      gptDisk {
        zfs = {
          size = "100%";
          content = {
            type = "zfs";
            pool = "zroot";
          };
        };
      }
      // {
        zpool.zroot = {
          type = "zpool";
          options = {
            ashift = "12";
            autotrim = "on";
          };
          rootFsOptions = {
            compression = "zstd";
            acltype = "posixacl";
            xattr = "sa";
            atime = "off";
            mountpoint = "none";
          };
          datasets =
            {
              root = legacy "/";
              nix = legacy "/nix";
              var = legacy "/var";
              home = legacy "/home";
              rancher = ext4Volume rancherSize "/var/lib/rancher";
            }
            // (if longhornPath == null then { } else { longhorn = ext4Volume longhornSize longhornPath; });
        };
      }
    else
      throw "n3x: unknown layout `${layout}`";

  # --- add-ons ----------------------------------------------------------------------
  # The device carrying `net` on every host that carries it; null when hosts disagree
  # (a NetworkAttachmentDefinition names one `master` for the whole cluster).
  multusMaster =
    f: net:
    let
      devs = unique (filter (d: d != null) (map (h: deviceOf h net) f.hosts));
    in
    if length devs == 1 then head devs else null;

  nixosPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/run/wrappers/bin:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin";

  # Namespaces the Pod Security Standard does not apply to: k3s' own and the add-ons'
  # (Longhorn, Multus and node-exporter need host access by design).
  podSecurityExempt =
    f:
    [ "kube-system" ]
    ++ (if f.addons.kyverno then [ "kyverno" ] else [ ])
    ++ (if f.addons.longhorn.enable then [ "longhorn-system" ] else [ ])
    ++ (if f.addons.monitoring.enable then [ "monitoring" ] else [ ]);

  # The API server's admission configuration (`admission-control-config-file`): the
  # inventory's Pod Security Standard for every namespace but the exempt ones, and an
  # event rate limit (the hardening guide's numbers).
  admissionConfig = f: {
    apiVersion = "apiserver.config.k8s.io/v1";
    kind = "AdmissionConfiguration";
    plugins = [
      {
        name = "PodSecurity";
        configuration = {
          apiVersion = "pod-security.admission.config.k8s.io/v1";
          kind = "PodSecurityConfiguration";
          defaults =
            let
              level = f.security.pod_security;
            in
            {
              enforce = level;
              enforce-version = "latest";
              audit = level;
              audit-version = "latest";
              warn = level;
              warn-version = "latest";
            };
          exemptions = {
            usernames = [ ];
            runtimeClasses = [ ];
            namespaces = podSecurityExempt f;
          };
        };
      }
      {
        name = "EventRateLimit";
        configuration = {
          apiVersion = "eventratelimit.admission.k8s.io/v1alpha1";
          kind = "Configuration";
          limits = [
            {
              type = "Server";
              qps = 5000;
              burst = 20000;
            }
          ];
        };
      }
    ];
  };

  # n3x's audit policy when the inventory names none: who did what, never a body. Health
  # probes and kube-proxy's and the nodes' own watches are left out (they are most of the
  # traffic and say nothing); Secrets, ConfigMaps and token reviews at Metadata only, so
  # no secret value reaches the log; every other request at Metadata too.
  defaultAuditPolicy = {
    apiVersion = "audit.k8s.io/v1";
    kind = "Policy";
    omitStages = [ "RequestReceived" ];
    rules = [
      {
        level = "None";
        nonResourceURLs = [
          "/healthz*"
          "/livez*"
          "/readyz*"
          "/version"
          "/metrics"
        ];
      }
      {
        level = "None";
        users = [ "system:kube-proxy" ];
        verbs = [ "watch" ];
      }
      {
        level = "None";
        userGroups = [ "system:nodes" ];
        verbs = [
          "get"
          "list"
          "watch"
        ];
      }
      {
        level = "Metadata";
        resources = [
          {
            group = "";
            resources = [
              "secrets"
              "configmaps"
            ];
          }
          {
            group = "authentication.k8s.io";
            resources = [ "tokenreviews" ];
          }
        ];
      }
      { level = "Metadata"; }
    ];
  };

  # n3x's alert rules (a Prometheus rule file's `groups`). `crates/n3x/tests/alerts.rs`
  # checks them with promtool and fires each one on made-up series.
  alertGroups =
    f:
    let
      rule = alert: expr: for: severity: summary: {
        inherit alert expr for;
        labels.severity = severity;
        annotations.summary = summary;
      };
    in
    [
      {
        name = "n3x.etcd";
        rules = [
          (rule "EtcdMemberDown" ''up{job="kube-etcd"} == 0'' "2m" "critical"
            "etcd member {{ $labels.instance }} does not answer: quorum has one member less to lose (runbook docs/runbooks/lost-server.md)"
          )
          (rule "EtcdNoLeader" ''etcd_server_has_leader{job="kube-etcd"} == 0'' "1m" "critical"
            "etcd member {{ $labels.instance }} has no leader: writes are refused (runbook docs/runbooks/lost-quorum.md)"
          )
          (rule "EtcdDatabaseNearQuota"
            ''etcd_mvcc_db_total_size_in_bytes{job="kube-etcd"} / etcd_server_quota_backend_bytes{job="kube-etcd"} > 0.8''
            "10m"
            "warning"
            "etcd member {{ $labels.instance }} uses {{ $value | humanizePercentage }} of its space quota: at 100% etcd refuses writes (defragment, or raise the quota)"
          )
        ];
      }
      {
        name = "n3x.nodes";
        rules = [
          (rule "NodeNotReady" ''kube_node_status_condition{condition="Ready",status="true"} == 0'' "5m" "warning"
            "node {{ $labels.node }} has not been Ready for 5 minutes"
          )
          (rule "CertificateNearExpiry"
            ''apiserver_client_certificate_expiration_seconds_count{job="apiserver"} > 0 and on (job) histogram_quantile(0.01, sum by (job, le) (rate(apiserver_client_certificate_expiration_seconds_bucket{job="apiserver"}[5m]))) < 2592000''
            "1h"
            "warning"
            "client certificates presented to the API server expire within 30 days: k3s renews its certificates on a restart within 90 days of expiry (runbook docs/runbooks/certificate-expiry.md)"
          )
        ];
      }
    ]
    ++ (
      if f.addons.longhorn.enable then
        [
          {
            name = "n3x.longhorn";
            # longhorn_volume_robustness: up to Longhorn 1.10 one series per volume valued
            # 0 unknown, 1 healthy, 2 degraded, 3 faulted; from 1.11 one series per state
            # (`state` label), 1 for the current one. Both are matched.
            rules =
              let
                robustness = n: state: ''longhorn_volume_robustness{state=""} == ${n} or longhorn_volume_robustness{state="${state}"} == 1'';
              in
              [
                (rule "LonghornVolumeDegraded" (robustness "2" "degraded") "10m" "warning"
                  "Longhorn volume {{ $labels.volume }} is degraded: fewer healthy replicas than it asks for"
                )
                (rule "LonghornVolumeFaulted" (robustness "3" "faulted") "1m" "critical"
                  "Longhorn volume {{ $labels.volume }} is faulted: no healthy replica, its workload cannot run"
                )
              ];
          }
        ]
      else
        [ ]
    );

  helmChart =
    {
      name,
      repo,
      chart,
      version ? null,
      targetNamespace,
      values ? { },
    }:
    {
      apiVersion = "helm.cattle.io/v1";
      kind = "HelmChart";
      metadata = {
        inherit name;
        namespace = "kube-system";
      };
      spec =
        {
          inherit repo chart targetNamespace;
          createNamespace = true;
          # JSON is YAML; the helm controller reads valuesContent as YAML.
          valuesContent = builtins.toJSON values;
        }
        // (if version == null then { } else { inherit version; });
    };

  # Kubernetes objects of the add-ons, grouped by deployment stage (see nix/modules/addons.nix
  # for how the stages are ordered).
  manifests =
    f:
    {
      kyvernoVersion ? null,
      multusVersion ? null,
      longhornVersion ? null,
      monitoringVersion ? null,
    }:
    let
      lh = f.addons.longhorn;
      mon = f.addons.monitoring;
      servers = filter isServer f.hosts;
      multusNets = f.addons.multus.networks;
    in
    {
      kyverno = helmChart {
        name = "kyverno";
        repo = "https://kyverno.github.io/kyverno/";
        chart = "kyverno";
        version = kyvernoVersion;
        targetNamespace = "kyverno";
      };
      # Longhorn runs host binaries (iscsiadm, mount, ...) via nsenter with a PATH that has
      # no NixOS directories; this policy adds them to every container in longhorn-system
      # (nixpkgs pkgs/applications/networking/cluster/k3s/docs/examples/STORAGE.md).
      longhornPathPolicy = [
        {
          apiVersion = "v1";
          kind = "Namespace";
          metadata.name = "longhorn-system";
        }
        {
          apiVersion = "v1";
          kind = "ConfigMap";
          metadata = {
            name = "longhorn-nixos-path";
            namespace = "longhorn-system";
          };
          data.PATH = nixosPath;
        }
        {
          apiVersion = "kyverno.io/v1";
          kind = "ClusterPolicy";
          metadata.name = "longhorn-add-nixos-path";
          spec.rules = [
            {
              name = "add-env-vars";
              match.any = [
                {
                  resources = {
                    kinds = [ "Pod" ];
                    namespaces = [ "longhorn-system" ];
                  };
                }
              ];
              mutate.patchStrategicMerge.spec =
                let
                  withPath = [
                    {
                      "(name)" = "*";
                      envFrom = [ { configMapRef.name = "longhorn-nixos-path"; } ];
                    }
                  ];
                in
                {
                  initContainers = withPath;
                  containers = withPath;
                };
            }
          ];
        }
      ];
      multus = helmChart {
        name = "multus";
        repo = "https://rke2-charts.rancher.io";
        chart = "rke2-multus";
        version = multusVersion;
        targetNamespace = "kube-system";
        # docs.k3s.io/networking/multus-ipams: k3s' CNI directories, whereabouts for IPAM.
        values = {
          config = {
            fullnameOverride = "multus";
            cni_conf = {
              confDir = "/var/lib/rancher/k3s/agent/etc/cni/net.d";
              binDir = "/var/lib/rancher/k3s/data/cni/";
              kubeconfig = "/var/lib/rancher/k3s/agent/etc/cni/net.d/multus.d/multus.kubeconfig";
            };
          };
          rke2-whereabouts = {
            fullnameOverride = "whereabouts";
            enabled = true;
            cniConf = {
              confDir = "/var/lib/rancher/k3s/agent/etc/cni/net.d";
              binDir = "/var/lib/rancher/k3s/data/cni/";
            };
          };
        };
      };
      # One NetworkAttachmentDefinition per exposed network: macvlan on the device that
      # carries it, addresses from whereabouts over the network's CIDR minus every host
      # address on it.
      networkAttachments = map (net: {
        apiVersion = "k8s.cni.cncf.io/v1";
        kind = "NetworkAttachmentDefinition";
        metadata = {
          name = net;
          namespace = "kube-system";
        };
        spec.config = builtins.toJSON {
          cniVersion = "0.3.1";
          type = "macvlan";
          master = multusMaster f net;
          mode = "bridge";
          mtu = f.networks.${net}.mtu;
          ipam = {
            type = "whereabouts";
            range = f.networks.${net}.cidr;
            exclude = map (h: "${h.addresses.${net}}/32") (filter (h: h.addresses ? ${net}) f.hosts);
          };
        };
      }) multusNets;
      longhorn = helmChart {
        name = "longhorn";
        repo = "https://charts.longhorn.io";
        chart = "longhorn";
        version = longhornVersion;
        targetNamespace = "longhorn-system";
        values = {
          persistence.defaultClassReplicaCount = lh.replicas;
          defaultSettings =
            {
              defaultReplicaCount = lh.replicas;
              defaultDataPath = lh.data_path;
            }
            // (if lh.network == null then { } else { storageNetwork = "kube-system/${lh.network}"; });
        };
      };
      # kube-prometheus-stack: Prometheus (with node-exporter and kube-state-metrics) and
      # Alertmanager. k3s runs the controller manager, scheduler and proxy inside its own
      # process on localhost, so their scrapes are off; etcd is scraped on each server's
      # metrics listener (`etcd-expose-metrics`, port 2381). Grafana is off: it ships a
      # default admin password.
      monitoring = helmChart {
        name = "kube-prometheus-stack";
        repo = "https://prometheus-community.github.io/helm-charts";
        chart = "kube-prometheus-stack";
        version = monitoringVersion;
        targetNamespace = "monitoring";
        values = {
          grafana.enabled = false;
          kubeControllerManager.enabled = false;
          kubeScheduler.enabled = false;
          kubeProxy.enabled = false;
          kubeEtcd = {
            enabled = true;
            endpoints = map (h: h.node_ip) servers;
            service = {
              enabled = true;
              port = 2381;
              targetPort = 2381;
            };
          };
          defaultRules.rules = {
            etcd = false;
            kubeControllerManager = false;
            kubeSchedulerAlerting = false;
            kubeSchedulerRecording = false;
            kubeProxy = false;
          };
          additionalPrometheusRulesMap.n3x.groups = alertGroups f;
          prometheus = {
            prometheusSpec = {
              inherit (mon) retention;
              ruleSelectorNilUsesHelmValues = false;
              serviceMonitorSelectorNilUsesHelmValues = false;
              storageSpec.volumeClaimTemplate.spec = {
                storageClassName = mon.storage;
                accessModes = [ "ReadWriteOnce" ];
                resources.requests.storage = mon.size;
              };
            };
            # Longhorn's manager serves its metrics on the `manager` port.
            additionalServiceMonitors =
              if lh.enable then
                [
                  {
                    name = "longhorn";
                    selector.matchLabels.app = "longhorn-manager";
                    namespaceSelector.matchNames = [ "longhorn-system" ];
                    endpoints = [ { port = "manager"; } ];
                  }
                ]
              else
                [ ];
          };
        };
      };
    };

  # What the flake builds for each host, as plain data: the tests pin it without nixpkgs.
  plan =
    f:
    map (h: {
      inherit (h) name arch;
      system = h.arch;
      jetson = isJetson h;
      hostId = h.host_id;
      secrets = secretsFor f h;
      k3s = k3sConfig (k3sArgs f h);
    }) f.hosts;
}
