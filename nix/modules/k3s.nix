# k3s from the inventory. `services.k3s.{role,clusterInit,serverAddr,tokenFile}` are set
# directly (they exist in the nixpkgs k3s module before and after its 25.11 rewrite into
# services/cluster/rancher); everything else goes into a k3s config file
# (`services.k3s.configPath`, k3s `--config`), whose keys are k3s' own flag names. That
# keeps the module independent of the newer-only options (nodeIP, nodeLabel, disable, ...)
# and keeps values with spaces (the snapshot cron) intact.
{ config, lib, pkgs, ... }:
let
  n3xLib = import ../lib;
  cfg = config.n3x.k3s;
  d = n3xLib.k3sArgs config.n3x.facts config.n3x.host;
  opt =
    type: default: description: example:
    lib.mkOption {
      inherit type default description example;
    };
  t = lib.types;
  args = {
    inherit (cfg)
      role
      clusterInit
      serverAddr
      tokenFile
      agentTokenFile
      nodeIP
      flannelIface
      labels
      taints
      disable
      clusterCidr
      serviceCidr
      clusterDns
      ;
    etcd = cfg.etcd;
    inherit (cfg) secretsEncryption protectKernelDefaults tlsSan;
    # The add-on modules' options where they are imported, else the inventory's facts.
    etcdExposeMetrics = addonOn "monitoring" d.etcdExposeMetrics;
    audit = {
      inherit (cfg.audit) enable logPath maxAgeDays maxBackups maxSizeMb;
    };
  };
  isServer = cfg.role == "server";
  facts = config.n3x.facts;
  addonOn = name: default: lib.attrByPath [ "n3x" "addons" name "enable" ] default config;
  # The admission configuration exempts the namespaces of the add-ons that are on, as the
  # add-on modules' options say.
  admission = n3xLib.admissionConfig (
    facts
    // {
      security = facts.security // { pod_security = cfg.podSecurity; };
      addons = facts.addons // {
        kyverno = addonOn "kyverno" facts.addons.kyverno;
        longhorn = facts.addons.longhorn // { enable = addonOn "longhorn" facts.addons.longhorn.enable; };
        monitoring = facts.addons.monitoring // { enable = addonOn "monitoring" facts.addons.monitoring.enable; };
      };
    }
  );
  auditPolicy =
    if cfg.audit.policyFile != null then
      builtins.readFile cfg.audit.policyFile
    else
      builtins.toJSON n3xLib.defaultAuditPolicy;
  configFile = pkgs.writeText "n3x-k3s-config.yaml" (
    # JSON is YAML: k3s reads this file with its YAML parser.
    builtins.toJSON (n3xLib.k3sConfig args // cfg.extraConfig)
  );
  inStore = p: p != null && lib.hasPrefix builtins.storeDir (toString p);
in
{
  options.n3x.k3s = {
    enable = lib.mkEnableOption "k3s as the inventory describes this host" // {
      default = config.n3x.enable;
      defaultText = lib.literalExpression "config.n3x.enable";
    };
    package = lib.mkOption {
      type = t.package;
      default = pkgs.${config.n3x.facts.k3s.package};
      defaultText = lib.literalExpression "pkgs.\${config.n3x.facts.k3s.package} (the inventory's `[k3s] version`, e.g. `pkgs.k3s_1_31`)";
      description = "The k3s package: the minor track `[k3s] version` names, pinned so an unrelated nixpkgs update never changes it.";
      example = lib.literalExpression "pkgs.k3s_1_32";
    };
    role = opt (t.enum [ "server" "agent" ]) d.role "k3s role: server (control plane + etcd member) or agent." "agent";
    clusterInit = opt t.bool d.clusterInit "Bootstrap embedded etcd (`--cluster-init`); true on the inventory's init server only." true;
    serverAddr = opt t.str d.serverAddr "The server URL to join; empty on the init server." "https://192.168.200.11:6443";
    tokenFile = opt t.str d.tokenFile "Path on the host to the token (servers: the server token; agents: the agent token), put there by sops-nix. Never a store path." "/run/secrets/k3s-token";
    agentTokenFile = opt (t.nullOr t.str) d.agentTokenFile "Servers: path to the agent token (`agent-token-file`); null on agents." "/run/secrets/k3s-agent-token";
    nodeIP = opt t.str d.nodeIP "The node IP: the host's address on the `cluster` network." "192.168.200.11";
    flannelIface = opt (t.nullOr t.str) d.flannelIface "flannel's interface: the device on the `cluster` network." "vlan200";
    labels = opt (t.attrsOf t.str) d.labels "Kubernetes node labels (applied when the node registers)." { "node.n3x.io/class" = "n100"; };
    taints = opt (t.listOf t.str) d.taints "Kubernetes node taints, `key=value:Effect`." [ "gpu=true:NoSchedule" ];
    disable = opt (t.listOf t.str) d.disable "Packaged components to disable (servers)." [ "traefik" ];
    clusterCidr = opt t.str d.clusterCidr "Pod network (servers)." "10.42.0.0/16";
    serviceCidr = opt t.str d.serviceCidr "Service network (servers)." "10.43.0.0/16";
    clusterDns = opt t.str d.clusterDns "Cluster DNS service IP (servers)." "10.43.0.10";
    etcd = {
      heartbeatMs = opt t.ints.positive d.etcd.heartbeatMs "etcd heartbeat interval in ms (`--etcd-arg=heartbeat-interval=`)." 100;
      electionMs = opt t.ints.positive d.etcd.electionMs "etcd election timeout in ms (`--etcd-arg=election-timeout=`)." 1000;
      snapshotSchedule = opt t.str d.etcd.snapshotSchedule "Cron schedule of etcd snapshots (`--etcd-snapshot-schedule-cron`)." "0 */6 * * *";
      snapshotRetention = opt t.ints.positive d.etcd.snapshotRetention "Snapshots kept (`--etcd-snapshot-retention`)." 10;
    };
    secretsEncryption = opt t.bool d.secretsEncryption "Encrypt Secrets at rest in etcd (`secrets-encryption`). Takes effect at a server's first start only: k3s does not support turning it on later." true;
    protectKernelDefaults = opt t.bool d.protectKernelDefaults "kubelet refuses to start when the kernel's sysctls differ from what it needs (`protect-kernel-defaults`); n3x sets those sysctls (`boot.kernel.sysctl`)." true;
    tlsSan = opt (t.listOf t.str) d.tlsSan "Extra names and addresses in the API server's certificate (`tls-san`), e.g. a DNS name or a VIP." [ "k3s.home.arpa" "192.168.200.10" ];
    podSecurity = opt (t.enum [ "restricted" "baseline" "privileged" ]) facts.security.pod_security "The Pod Security Standard enforced in every namespace but k3s' and the add-ons' (the admission configuration file)." "baseline";
    audit = {
      enable = opt t.bool d.audit.enable "Write the API server's audit log (`audit-log-path`, `audit-policy-file`)." true;
      policyFile = opt (t.nullOr t.path) (if facts.security.audit.policy_file == null then null else config.n3x.root + "/${facts.security.audit.policy_file}") "The audit policy; null: n3x's default (metadata of every request, no bodies, health probes left out)." (lib.literalExpression "./security/audit-policy.yaml");
      logPath = opt t.str d.audit.logPath "Where the API server writes the audit log (`audit-log-path`)." "/var/lib/rancher/k3s/server/logs/audit.log";
      maxAgeDays = opt t.ints.positive d.audit.maxAgeDays "Days a rotated audit log is kept (`audit-log-maxage`)." 30;
      maxBackups = opt t.ints.positive d.audit.maxBackups "Rotated audit logs kept (`audit-log-maxbackup`)." 10;
      maxSizeMb = opt t.ints.positive d.audit.maxSizeMb "Size in MB at which the audit log is rotated (`audit-log-maxsize`)." 100;
    };
    extraConfig = opt (t.attrsOf t.anything) { } "Extra k3s config-file keys (flag names without dashes), merged over the generated ones." { "write-kubeconfig-mode" = "0640"; };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.role == "server" || !cfg.clusterInit;
        message = "n3x.k3s.clusterInit is true but n3x.k3s.role is agent: only a server bootstraps etcd";
      }
      {
        assertion = cfg.clusterInit != (cfg.serverAddr != "");
        message = "n3x.k3s.clusterInit and n3x.k3s.serverAddr: set exactly one (clusterInit on the init server, serverAddr on every other host); got clusterInit = ${lib.boolToString cfg.clusterInit}, serverAddr = `${cfg.serverAddr}`";
      }
      {
        assertion = cfg.etcd.electionMs >= 5 * cfg.etcd.heartbeatMs && cfg.etcd.electionMs <= 50000;
        message = "n3x.k3s.etcd.electionMs (${toString cfg.etcd.electionMs}) must be at least 5 x n3x.k3s.etcd.heartbeatMs (${toString cfg.etcd.heartbeatMs}) and at most 50000, or etcd refuses to start";
      }
      {
        assertion = !(inStore cfg.tokenFile) && !(inStore cfg.agentTokenFile);
        message = "n3x.k3s.tokenFile / n3x.k3s.agentTokenFile point into the Nix store, which is world-readable; use the sops-nix paths (/run/secrets/...)";
      }
      {
        assertion = cfg.role == "server" || cfg.agentTokenFile == null;
        message = "n3x.k3s.agentTokenFile is for servers; an agent joins with n3x.k3s.tokenFile (the agent token)";
      }
    ];

    services.k3s = {
      enable = true;
      inherit (cfg) package;
      inherit (cfg) role serverAddr tokenFile;
      clusterInit = cfg.clusterInit;
      configPath = configFile;
    };

    # The same settings at k3s's default config location, so what is run by hand or by
    # n3x over SSH (`k3s etcd-snapshot save`, `k3s server --cluster-reset` in `n3x backup
    # restore`) sees the data dir, node IP and snapshot settings the service runs with.
    # The service keeps `--config <store path>`, so a changed config still restarts it.
    environment.etc."rancher/k3s/config.yaml".source = configFile;

    # The API server's admission configuration and audit policy (servers), referenced by
    # path from the config file; the audit log's directory, private to root.
    environment.etc."rancher/k3s/admission.yaml" = lib.mkIf isServer { text = builtins.toJSON admission; };
    environment.etc."rancher/k3s/audit-policy.yaml" = lib.mkIf (isServer && cfg.audit.enable) { text = auditPolicy; };
    systemd.tmpfiles.rules = lib.optional (isServer && cfg.audit.enable) "d ${dirOf cfg.audit.logPath} 0700 root root -";

    # What kubelet checks under protect-kernel-defaults (k3s' hardening guide).
    boot.kernel.sysctl = lib.mkIf cfg.protectKernelDefaults n3xLib.kernelDefaults;

    environment.systemPackages = [ pkgs.iproute2 ];
  };
}
