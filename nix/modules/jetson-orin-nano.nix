# NVIDIA Jetson Orin Nano (devkit carrier) through jetpack-nixos. Import this module only
# together with jetpack-nixos' module (the flake's `nixosModules.hardware-jetson-orin-nano`
# does both): `hardware.nvidia-jetpack` does not exist without it.
{ config, lib, ... }:
let
  cfg = config.n3x.hardware;
  firmware = config.n3x.host.firmware;
  # L4T 35.x ships with JetPack 5, 36.x with JetPack 6.
  majorFromFirmware =
    if firmware == null then
      "6"
    else if lib.hasPrefix "35." firmware then
      "5"
    else if lib.hasPrefix "36." firmware then
      "6"
    else
      null;
in
{
  options.n3x.hardware.jetson.majorVersion = lib.mkOption {
    type = lib.types.nullOr (
      lib.types.enum [
        "5"
        "6"
      ]
    );
    default = majorFromFirmware;
    defaultText = lib.literalMD "`5` for an L4T 35.x `firmware`, `6` for 36.x or none";
    description = ''
      JetPack major version (jetpack-nixos `hardware.nvidia-jetpack.majorVersion`). The exact
      L4T release is fixed by the pinned jetpack-nixos input, not by an option.
    '';
    example = "6";
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
  };
}
