# Disks (disko) and Longhorn's host prerequisites. Import together with disko's module
# (the flake's `nixosModules.storage` does both).
#
# ZFS and k3s: k3s' embedded containerd snapshots images with overlayfs by default. The
# `zfs` layout puts /var/lib/rancher on an ext4-formatted zvol so that default keeps
# working with no flag and no special dataset. (nixpkgs'
# pkgs/applications/networking/cluster/k3s/docs/examples/STORAGE.md describes the other
# route: a dataset mounted at .../io.containerd.snapshotter.v1.zfs and
# `--snapshotter=zfs`.) Longhorn needs ext4/XFS too, so its data path gets its own zvol.
{ config, lib, pkgs, ... }:
let
  n3xLib = import ../lib;
  cfg = config.n3x.storage;
  host = config.n3x.host;
  lh = config.n3x.facts.addons.longhorn;
in
{
  options.n3x.storage = {
    enable = lib.mkEnableOption "the inventory's disk layout and Longhorn prerequisites" // {
      default = config.n3x.enable;
      defaultText = lib.literalExpression "config.n3x.enable";
    };

    disko = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Whether to declare `disko.devices` (off in VM tests, whose disks come from qemu-vm).";
      example = false;
    };

    disk = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = host.disk;
      defaultText = lib.literalExpression "config.n3x.host.disk";
      description = "The install disk. Prefer a /dev/disk/by-id/ path in n3x.toml.";
      example = "/dev/nvme0n1";
    };

    layout = lib.mkOption {
      type = lib.types.enum [
        "standard"
        "zfs"
      ];
      default = host.layout;
      defaultText = lib.literalExpression "config.n3x.host.layout";
      description = "`standard`: EFI + ext4 root. `zfs`: EFI + zpool `zroot` with datasets and ext4 zvols for /var/lib/rancher and Longhorn.";
      example = "zfs";
    };

    zfs = {
      rancherSize = lib.mkOption {
        type = lib.types.strMatching "[0-9]+[KMGT]";
        default = "64G";
        description = "Size of the ext4 zvol for /var/lib/rancher (k3s state and container images).";
        example = "100G";
      };
      longhornSize = lib.mkOption {
        type = lib.types.strMatching "[0-9]+[KMGT]";
        default = "128G";
        description = "Size of the ext4 zvol for Longhorn's data path.";
        example = "400G";
      };
    };

    longhorn = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = lh.enable;
        defaultText = lib.literalExpression "config.n3x.facts.addons.longhorn.enable";
        description = "Install Longhorn's host prerequisites (open-iscsi, kernel modules, data path).";
        example = false;
      };
      dataPath = lib.mkOption {
        type = lib.types.strMatching "/.*";
        default = lh.data_path;
        defaultText = lib.literalExpression "config.n3x.facts.addons.longhorn.data_path";
        description = "Where Longhorn keeps replicas on every node.";
        example = "/var/lib/longhorn";
      };
      initiatorName = lib.mkOption {
        type = lib.types.str;
        default = "iqn.2024-01.io.n3x:${config.n3x.hostName}";
        defaultText = lib.literalExpression ''"iqn.2024-01.io.n3x:''${config.n3x.hostName}"'';
        description = "The iSCSI initiator name (`services.openiscsi.name`, which has no default).";
        example = "iqn.2024-01.io.n3x:n100-1";
      };
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        assertions = [
          {
            assertion = !cfg.disko || cfg.disk != null;
            message = "n3x.storage.disk is null for `${config.n3x.hostName}`: set `disk` in n3x.toml (or n3x.storage.disko = false to manage disks yourself)";
          }
        ];
      }
      (lib.mkIf (cfg.disko && cfg.disk != null) {
        disko.devices = n3xLib.disko {
          inherit (cfg) disk layout;
          inherit (cfg.zfs) rancherSize longhornSize;
          longhornPath = if cfg.longhorn.enable then cfg.longhorn.dataPath else null;
        };
        boot.loader.systemd-boot.enable = lib.mkDefault true;
        boot.loader.efi.canTouchEfiVariables = lib.mkDefault true;
      })
      (lib.mkIf (cfg.layout == "zfs") {
        boot.supportedFilesystems = [ "zfs" ];
        # ZFS refuses to import pools without a host id: the host's `host_id` fact (first 8
        # hex digits of the hostname's SHA-256), stable and distinct, no inventory key.
        networking.hostId = host.host_id;
      })
      (lib.mkIf cfg.longhorn.enable {
        services.openiscsi = {
          enable = true;
          name = cfg.longhorn.initiatorName;
        };
        # iscsi_tcp for volumes (openiscsi also loads it); dm_crypt for encrypted volumes.
        boot.kernelModules = [
          "iscsi_tcp"
          "dm_crypt"
        ];
        environment.systemPackages = [
          pkgs.nfs-utils # RWX volumes
          pkgs.openiscsi
          pkgs.cryptsetup
        ];
        systemd.tmpfiles.rules = [ "d ${cfg.longhorn.dataPath} 0700 root root -" ];
      })
    ]
  );
}
