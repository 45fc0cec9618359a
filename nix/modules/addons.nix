# Cluster add-ons, deployed by k3s' manifest directory on every server.
#
# Mechanism and order. k3s applies any file in /var/lib/rancher/k3s/server/manifests and
# re-applies it when it changes, but in no particular order and without waiting for
# anything. Longhorn on NixOS must not start before Kyverno's PATH policy is active: a
# Longhorn pod admitted earlier keeps a PATH without /run/current-system/sw/bin and fails
# to find iscsiadm. So:
#   1. `services.k3s.manifests` (tmpfiles links, in place before k3s starts) carries what
#      has no prerequisite: the Kyverno and Multus HelmCharts.
#   2. `n3x-addons.service` (after k3s) waits for each prerequisite with `kubectl wait`, then
#      links the next file into the same directory:
#        Multus' NetworkAttachmentDefinition CRD established -> the NADs;
#        Kyverno's ClusterPolicy CRD established and its deployments available -> the PATH
#        policy (with its namespace and ConfigMap);
#        the ClusterPolicy reports Ready -> the Longhorn HelmChart;
#        Longhorn's StorageClass exists -> the monitoring HelmChart, when Prometheus keeps
#        its data on Longhorn (on local-path it goes in with step 1).
#      It is idempotent (ln -sfn), restarts on failure, and runs on every server, so the
#      add-ons come up whichever server boots first.
{ config, lib, pkgs, ... }:
let
  n3xLib = import ../lib;
  cfg = config.n3x.addons;
  facts = config.n3x.facts;
  isServer = config.n3x.host.role == "server";
  # The module's options over the inventory's monitoring settings.
  withOptions = facts // {
    addons = facts.addons // {
      monitoring = facts.addons.monitoring // {
        inherit (cfg.monitoring) enable retention storage size;
      };
    };
  };
  m = n3xLib.manifests withOptions {
    kyvernoVersion = cfg.kyverno.chartVersion;
    multusVersion = cfg.multus.chartVersion;
    longhornVersion = cfg.longhorn.chartVersion;
    monitoringVersion = cfg.monitoring.chartVersion;
  };
  monitoring = list "monitoring" [ m.monitoring ];
  # On Longhorn, Prometheus' volume waits for Longhorn's StorageClass.
  monitoringOnLonghorn = cfg.monitoring.enable && cfg.monitoring.storage == "longhorn";
  list = name: items:
    pkgs.writeText "n3x-${name}.yaml" (
      builtins.toJSON {
        apiVersion = "v1";
        kind = "List";
        inherit items;
      }
    );
  nads = list "network-attachments" m.networkAttachments;
  policy = list "longhorn-nixos-path" m.longhornPathPolicy;
  longhorn = list "longhorn" [ m.longhorn ];
  manifestDir = "/var/lib/rancher/k3s/server/manifests";
  chartVersion =
    what:
    lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "Chart version of ${what}; null lets the helm controller take the newest. Pin it for reproducible clusters.";
      example = "1.7.2";
    };
in
{
  options.n3x.addons = {
    enable = lib.mkEnableOption "the inventory's add-ons (deployed from servers only)" // {
      default = config.n3x.enable;
      defaultText = lib.literalExpression "config.n3x.enable";
    };
    kyverno = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = facts.addons.kyverno;
        defaultText = lib.literalExpression "config.n3x.facts.addons.kyverno";
        description = "Kyverno and the ClusterPolicy adding the NixOS system paths to PATH in Longhorn's pods.";
        example = true;
      };
      chartVersion = chartVersion "Kyverno";
    };
    multus = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = facts.addons.multus.enable;
        defaultText = lib.literalExpression "config.n3x.facts.addons.multus.enable";
        description = "Multus with whereabouts IPAM and a NetworkAttachmentDefinition per exposed network.";
        example = true;
      };
      chartVersion = chartVersion "rke2-multus";
    };
    longhorn = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = facts.addons.longhorn.enable;
        defaultText = lib.literalExpression "config.n3x.facts.addons.longhorn.enable";
        description = "Longhorn, replicating over the inventory's `addons.longhorn.network`.";
        example = true;
      };
      chartVersion = chartVersion "Longhorn";
    };
    monitoring = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = facts.addons.monitoring.enable;
        defaultText = lib.literalExpression "config.n3x.facts.addons.monitoring.enable";
        description = "kube-prometheus-stack (Prometheus, node-exporter, kube-state-metrics, Alertmanager) with n3x's alert rules; etcd's metrics exposed on the servers.";
        example = true;
      };
      retention = lib.mkOption {
        type = lib.types.strMatching "[0-9]+(ms|s|m|h|d|w|y)";
        default = facts.addons.monitoring.retention;
        defaultText = lib.literalExpression "config.n3x.facts.addons.monitoring.retention";
        description = "How long Prometheus keeps samples (`prometheusSpec.retention`).";
        example = "30d";
      };
      storage = lib.mkOption {
        type = lib.types.enum [ "longhorn" "local-path" ];
        default = facts.addons.monitoring.storage;
        defaultText = lib.literalExpression "config.n3x.facts.addons.monitoring.storage";
        description = "StorageClass of Prometheus' volume: `longhorn` (replicated; the chart waits for Longhorn) or `local-path` (one node's disk).";
        example = "local-path";
      };
      size = lib.mkOption {
        type = lib.types.strMatching "[0-9]+(Mi|Gi|Ti)";
        default = facts.addons.monitoring.size;
        defaultText = lib.literalExpression "config.n3x.facts.addons.monitoring.size";
        description = "Size of Prometheus' volume.";
        example = "50Gi";
      };
      chartVersion = chartVersion "kube-prometheus-stack";
    };
    timeout = lib.mkOption {
      type = lib.types.str;
      default = "30min";
      description = "How long n3x-addons.service waits for the add-ons' prerequisites before it fails (and retries).";
      example = "1h";
    };
  };

  config = lib.mkIf (cfg.enable && isServer) {
    assertions = [
      {
        assertion = cfg.longhorn.enable -> cfg.kyverno.enable;
        message = "n3x.addons.longhorn.enable needs n3x.addons.kyverno.enable: Longhorn on NixOS needs the PATH policy";
      }
      {
        assertion = monitoringOnLonghorn -> cfg.longhorn.enable;
        message = "n3x.addons.monitoring.storage is `longhorn` but n3x.addons.longhorn.enable is false; use `local-path` or enable Longhorn";
      }
      {
        assertion = cfg.longhorn.enable && facts.addons.longhorn.network != null -> cfg.multus.enable;
        message = "n3x.addons.longhorn.enable with a storage network needs n3x.addons.multus.enable";
      }
    ]
    ++ map (net: {
      assertion = n3xLib.multusMaster facts net != null;
      message = "n3x.addons.multus: network `${net}` is on different devices across hosts; a NetworkAttachmentDefinition needs one `master` (tag the network, so every host calls it vlan<id>)";
    }) (lib.optionals cfg.multus.enable facts.addons.multus.networks);

    services.k3s.manifests = lib.mkMerge [
      (lib.mkIf cfg.kyverno.enable { n3x-10-kyverno.content = m.kyverno; })
      (lib.mkIf cfg.multus.enable { n3x-10-multus.content = m.multus; })
      (lib.mkIf (cfg.monitoring.enable && !monitoringOnLonghorn) { n3x-10-monitoring.content = m.monitoring; })
    ];

    systemd.services.n3x-addons = lib.mkIf (cfg.multus.enable || cfg.kyverno.enable) {
      description = "n3x add-ons in order: NADs after Multus, Longhorn after Kyverno's PATH policy, monitoring after Longhorn";
      after = [ "k3s.service" ];
      wants = [ "k3s.service" ];
      wantedBy = [ "multi-user.target" ];
      path = [
        config.services.k3s.package
        pkgs.coreutils
        pkgs.gnugrep
      ];
      restartTriggers = [ nads policy longhorn monitoring ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        TimeoutStartSec = cfg.timeout;
        Restart = "on-failure";
        RestartSec = "30s";
      };
      script = ''
        set -euo pipefail
        kc() { k3s kubectl "$@"; }
        wait_crd() {
          until kc get crd "$1" >/dev/null 2>&1; do sleep 5; done
          kc wait --for=condition=Established "crd/$1" --timeout=300s
        }
        ${lib.optionalString (cfg.multus.enable && m.networkAttachments != [ ]) ''
          wait_crd network-attachment-definitions.k8s.cni.cncf.io
          ln -sfn ${nads} ${manifestDir}/n3x-20-network-attachments.yaml
        ''}
        ${lib.optionalString cfg.kyverno.enable ''
          wait_crd clusterpolicies.kyverno.io
          until kc -n kyverno get deployment -o name | grep -q .; do sleep 5; done
          kc -n kyverno wait --for=condition=Available deployment --all --timeout=600s
          ln -sfn ${policy} ${manifestDir}/n3x-30-longhorn-nixos-path.yaml
          until kc wait --for=condition=Ready clusterpolicy/longhorn-add-nixos-path --timeout=60s; do
            sleep 5
          done
        ''}
        ${lib.optionalString cfg.longhorn.enable ''
          ln -sfn ${longhorn} ${manifestDir}/n3x-40-longhorn.yaml
        ''}
        ${lib.optionalString monitoringOnLonghorn ''
          until kc get storageclass longhorn >/dev/null 2>&1; do sleep 5; done
          ln -sfn ${monitoring} ${manifestDir}/n3x-50-monitoring.yaml
        ''}
      '';
    };
  };
}
