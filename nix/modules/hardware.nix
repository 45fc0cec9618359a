# Hardware profiles other than the Jetson (which needs jetpack-nixos: see
# jetson-orin-nano.nix, imported only for Jetson hosts).
{ config, lib, pkgs, ... }:
let
  n3xLib = import ../lib;
  cfg = config.n3x.hardware;
  inherit (cfg) profile;
  isQemu = profile == "qemu-x86_64" || profile == "qemu-aarch64";
  # What the initrd needs to find a root disk on x86 mini PCs: USB 3, SATA, NVMe, USB storage.
  x86DiskModules = [
    "xhci_pci"
    "ahci"
    "nvme"
    "usb_storage"
    "uas"
    "sd_mod"
  ];
in
{
  options.n3x.hardware = {
    enable = lib.mkEnableOption "the hardware profile named by the inventory" // {
      default = config.n3x.enable;
      defaultText = lib.literalExpression "config.n3x.enable";
    };

    profile = lib.mkOption {
      type = lib.types.enum [
        "n100"
        "jetson-orin-nano"
        "x86_64-generic"
        "qemu-x86_64"
        "qemu-aarch64"
      ];
      default = config.n3x.host.hardware;
      defaultText = lib.literalExpression "config.n3x.host.hardware";
      description = "The hardware profile; it fixes the architecture.";
      example = "n100";
    };

    console = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = config.n3x.host.console;
      defaultText = lib.literalExpression "config.n3x.host.console";
      description = "Serial console device (without /dev/), added as `console=<dev>,115200`; null for none.";
      example = "ttyS0";
    };

    n100.kernelParams = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      # GuC/HuC firmware loading for the Alder Lake-N iGPU (hardware video decode); the same
      # setting nixos-hardware uses for Intel Gen12 graphics.
      default = [ "i915.enable_guc=3" ];
      description = "Kernel parameters for Intel N100 (Alder Lake-N) machines.";
      example = [
        "i915.enable_guc=3"
        "intel_iommu=on"
      ];
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        assertions = [
          {
            assertion = n3xLib.archOf profile == pkgs.stdenv.hostPlatform.system;
            message = "n3x.hardware.profile `${profile}` is ${n3xLib.archOf profile} but nixpkgs.hostPlatform is ${pkgs.stdenv.hostPlatform.system}";
          }
        ];
        # Jetson consoles are configured by jetpack-nixos (hardware.nvidia-jetpack.console).
        boot.kernelParams = lib.mkIf (
          cfg.console != null && profile != "jetson-orin-nano"
        ) [ "console=${cfg.console},115200" ];
      }
      (lib.mkIf (profile == "n100") {
        hardware.cpu.intel.updateMicrocode = true;
        hardware.enableRedistributableFirmware = true;
        boot.initrd.availableKernelModules = x86DiskModules;
        boot.kernelModules = [ "kvm-intel" ];
        boot.kernelParams = cfg.n100.kernelParams;
      })
      (lib.mkIf (profile == "x86_64-generic") {
        hardware.cpu.intel.updateMicrocode = lib.mkDefault true;
        hardware.cpu.amd.updateMicrocode = lib.mkDefault true;
        hardware.enableRedistributableFirmware = lib.mkDefault true;
        boot.initrd.availableKernelModules = x86DiskModules ++ [
          "virtio_pci"
          "virtio_blk"
          "virtio_scsi"
        ];
      })
      (lib.mkIf isQemu {
        # What nixos/modules/profiles/qemu-guest.nix sets, without importing it (imports
        # cannot depend on the profile option).
        boot.initrd.availableKernelModules = [
          "virtio_net"
          "virtio_pci"
          "virtio_mmio"
          "virtio_blk"
          "virtio_scsi"
          "9p"
          "9pnet_virtio"
        ];
        boot.initrd.kernelModules = [
          "virtio_balloon"
          "virtio_console"
          "virtio_rng"
        ];
        services.qemuGuest.enable = lib.mkDefault true;
      })
    ]
  );
}
