# systemd-networkd from the inventory: bonds, one `vlan<id>` device per tagged network
# (resolve.rs `vlan_device`), addresses, MTUs (a parent carries the largest MTU of its
# networks; jumbo frames on storage), and the firewall openings of k3s, etcd, flannel and
# Longhorn on the networks that carry them.
{ config, lib, ... }:
let
  n3xLib = import ../lib;
  cfg = config.n3x.network;
  host = config.n3x.host;
  facts = config.n3x.facts;
  fw = n3xLib.firewall config.n3x.facts host;
  storageNet = if facts.addons.longhorn.network != null then facts.addons.longhorn.network else "storage";
in
{
  options.n3x.network = {
    enable = lib.mkEnableOption "the inventory's interfaces, addresses and firewall" // {
      default = config.n3x.enable;
      defaultText = lib.literalExpression "config.n3x.enable";
    };

    manageInterfaces = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Whether to write systemd-networkd units for `n3x.network.interfaces`. The VM tests
        turn this off: their NICs come from `virtualisation.vlans`.
      '';
      example = false;
    };

    interfaces = lib.mkOption {
      type = lib.types.listOf lib.types.attrs;
      default = host.interfaces;
      defaultText = lib.literalExpression "config.n3x.host.interfaces";
      description = "Interfaces as `n3x show --json` prints them: name, members, bond_mode, mtu, networks[{network, vlan, device, address, prefix_length, mtu}].";
      example = lib.literalExpression ''[ { name = "eth0"; members = [ ]; bond_mode = null; mtu = 1500; networks = [ { network = "cluster"; vlan = null; device = "eth0"; address = "10.0.0.1"; prefix_length = 24; mtu = 1500; } ]; } ]'';
    };

    defaultRoute = lib.mkOption {
      type = lib.types.nullOr (
        lib.types.submodule {
          options = {
            gateway = lib.mkOption {
              type = lib.types.str;
              description = "The router's address.";
            };
            device = lib.mkOption {
              type = lib.types.str;
              description = "The device that reaches it.";
            };
          };
        }
      );
      default = host.default_route;
      defaultText = lib.literalExpression "config.n3x.host.default_route";
      description = "The default route: the `gateway` of the inventory's one network that has one, on the device carrying it. k3s needs it, and the add-ons pull images over it.";
      example = {
        gateway = "192.168.200.1";
        device = "vlan200";
      };
    };

    dns = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = host.dns;
      defaultText = lib.literalExpression "config.n3x.host.dns";
      description = "DNS servers (`dns` of the networks this host carries).";
      example = [ "192.168.200.1" ];
    };

    clusterDevice = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = n3xLib.deviceOf host "cluster";
      defaultText = lib.literalMD "the device holding the host's `cluster` address";
      description = "The device on the `cluster` network: k3s, etcd and flannel traffic.";
      example = "vlan200";
    };

    storageDevice = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = n3xLib.deviceOf host storageNet;
      defaultText = lib.literalMD "the device holding the host's address on Longhorn's network (`storage` when unset)";
      description = "The device on the storage network (Longhorn's iSCSI); null when the host has none.";
      example = "vlan100";
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Open 6443, 2379-2380 (servers), 10250 and 8472/udp on `clusterDevice` and 3260 on `storageDevice`.";
      example = false;
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        warnings = lib.optional (cfg.defaultRoute == null) "n3x.network.defaultRoute is null on `${config.n3x.hostName}`: no default route, so k3s and the add-ons cannot reach the internet (add `gateway` to a network in n3x.toml)";
        assertions = [
          {
            assertion = cfg.clusterDevice != null;
            message = "n3x.network.clusterDevice is null: host `${config.n3x.hostName}` carries no `cluster` network (check `interfaces` in n3x.toml)";
          }
        ];
      }
      (lib.mkIf cfg.manageInterfaces (
        let
          units = n3xLib.networkd {
            inherit (cfg) interfaces dns;
            default_route = cfg.defaultRoute;
          };
        in
        {
          networking.useNetworkd = true;
          networking.useDHCP = false;
          systemd.network.enable = true;
          systemd.network.links = units.links;
          systemd.network.netdevs = units.netdevs;
          systemd.network.networks = units.networks;
        }
      ))
      (lib.mkIf (cfg.openFirewall && cfg.clusterDevice != null) {
        networking.firewall.enable = true;
        networking.firewall.interfaces.${cfg.clusterDevice} = {
          allowedTCPPorts = fw.clusterTCP;
          allowedUDPPorts = fw.clusterUDP;
        };
        # Pod traffic arrives on flannel's VXLAN device and the CNI bridge (the nixpkgs
        # k3s tests trust flannel.1; cni0 carries pod -> host traffic such as CoreDNS ->
        # API server).
        networking.firewall.trustedInterfaces = [
          "flannel.1"
          "cni0"
        ];
      })
      (lib.mkIf (cfg.openFirewall && cfg.storageDevice != null && facts.addons.longhorn.enable) {
        networking.firewall.interfaces.${cfg.storageDevice}.allowedTCPPorts = fw.storageTCP;
      })
    ]
  );
}
