# NVIDIA Jetson Orin Nano (devkit carrier) through jetpack-nixos. Import this module only
# together with jetpack-nixos' module (the flake's `nixosModules.hardware-jetson-orin-nano`
# does both): `hardware.nvidia-jetpack` does not exist without it.
#
# GPU workloads: jetpack-nixos says `hardware.graphics.enable` is needed even for CUDA in
# containers; the NVIDIA container toolkit writes a CDI spec of the Jetson's devices
# (jetpack-nixos puts it in CSV mode); and k3s adds `nvidia` (and `nvidia-cdi`) runtimes
# to its containerd when it finds `nvidia-container-runtime` on its PATH, with the
# RuntimeClass `nvidia` it ships. Pods then set `runtimeClassName: nvidia`.
{ config, lib, pkgs, ... }:
let
  cfg = config.n3x.hardware;
  firmware = config.n3x.host.firmware;
  # L4T 35.x ships with JetPack 5, 36.x with JetPack 6, 38.x with JetPack 7.
  majorFromFirmware =
    if firmware == null then
      "6"
    else if lib.hasPrefix "35." firmware then
      "5"
    else if lib.hasPrefix "36." firmware then
      "6"
    else if lib.hasPrefix "38." firmware then
      "7"
    else
      null;
in
{
  options.n3x.hardware.jetson.majorVersion = lib.mkOption {
    type = lib.types.nullOr (
      lib.types.enum [
        "5"
        "6"
        "7"
      ]
    );
    default = majorFromFirmware;
    defaultText = lib.literalMD "`5` for an L4T 35.x `firmware`, `6` for 36.x or none, `7` for 38.x";
    description = ''
      JetPack major version (jetpack-nixos `hardware.nvidia-jetpack.majorVersion`, which
      accepts 5, 6 and 7; jetpack-nixos notes Orin support on 7 as not there yet). The exact
      L4T release is fixed by the pinned jetpack-nixos input, not by an option.
    '';
    example = "6";
  };

  options.n3x.hardware.jetson.gpu = lib.mkOption {
    type = lib.types.bool;
    default = true;
    description = "Let containers use the GPU: graphics driver, the NVIDIA container toolkit (CDI) and k3s' `nvidia` containerd runtime.";
    example = false;
  };

  config = lib.mkIf (cfg.enable && cfg.profile == "jetson-orin-nano") {
    assertions = [
      {
        assertion = cfg.jetson.majorVersion != null;
        message = "n3x.hardware.jetson.majorVersion: firmware `${toString firmware}` of `${config.n3x.hostName}` is neither L4T 35.x nor 36.x; set the option";
      }
    ];
    hardware.nvidia-jetpack = {
      enable = true;
      som = "orin-nano";
      carrierBoard = "devkit";
      majorVersion = cfg.jetson.majorVersion;
      # jetpack-nixos adds `console=tty0 console=ttyTCU0,115200` for Orin.
      console.enable = true;
    };
    boot.kernelParams = lib.mkIf (
      cfg.console != null && cfg.console != "ttyTCU0"
    ) [ "console=${cfg.console},115200" ];

    hardware.graphics.enable = lib.mkIf cfg.jetson.gpu true;
    hardware.nvidia-container-toolkit.enable = lib.mkIf cfg.jetson.gpu true;
    # k3s looks for the runtimes on its PATH when it writes containerd's config.
    systemd.services.k3s.path = lib.mkIf (cfg.jetson.gpu && config.services.k3s.enable) [
      pkgs.nvidia-container-toolkit.tools
    ];
  };
}
