# The host's identity: which inventory, which host. Every other n3x module reads
# `config.n3x.facts` / `config.n3x.host` (computed by nix/lib/facts.nix, pinned against
# `n3x show --json` by crates/n3x/tests/nix_facts.rs) instead of repeating inventory facts.
{ config, lib, ... }:
let
  n3xLib = import ../lib;
  cfg = config.n3x;
in
{
  options.n3x = {
    enable = lib.mkEnableOption "every n3x concern (hardware, network, k3s, storage, add-ons, secrets) for this host";

    facts = lib.mkOption {
      type = lib.types.attrs;
      description = "The resolved inventory: the value of nix/lib/facts.nix, the same data as `n3x show --json`.";
      example = lib.literalExpression "(import ./nix/lib).fromFile ./n3x.toml";
    };

    hostName = lib.mkOption {
      type = lib.types.strMatching "[a-z][a-z0-9-]*";
      description = "This machine's name in `[hosts.<name>]` of the inventory.";
      example = "n100-1";
    };

    host = lib.mkOption {
      type = lib.types.attrs;
      readOnly = true;
      default = n3xLib.host cfg.facts cfg.hostName;
      defaultText = lib.literalExpression "the entry of config.n3x.facts.hosts named config.n3x.hostName";
      description = "This host's resolved facts (one element of `n3x.facts.hosts`).";
    };

    adminKeys = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = cfg.facts.access.ssh_keys;
      defaultText = lib.literalExpression "config.n3x.facts.access.ssh_keys";
      description = "SSH public keys that may log in as root (`[access].ssh_keys` in n3x.toml). Password login is off.";
      example = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... admin@laptop" ];
    };

    root = lib.mkOption {
      type = lib.types.path;
      description = "The repository (flake) root; `[secrets].file` in the inventory is relative to it.";
      example = lib.literalExpression "./.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = builtins.elem cfg.hostName (n3xLib.hostNames cfg.facts);
        message = "n3x.hostName `${cfg.hostName}` is not a host of n3x.facts (hosts: ${toString (n3xLib.hostNames cfg.facts)})";
      }
    ];
    warnings = lib.optional (cfg.adminKeys == [ ]) "n3x.adminKeys is empty: nobody can log in to `${cfg.hostName}` (add `[access].ssh_keys` to n3x.toml)";

    networking.hostName = cfg.hostName;
    networking.domain = lib.mkIf (cfg.facts.cluster.domain != null) cfg.facts.cluster.domain;

    # nixos-anywhere, `nixos-rebuild --target-host` and `n3x deploy` log in as root with a
    # key: the admins' keys from `[access].ssh_keys`. Passwords never work.
    services.openssh = {
      enable = true;
      settings = {
        PasswordAuthentication = false;
        KbdInteractiveAuthentication = false;
        PermitRootLogin = "prohibit-password";
      };
    };
    users.users.root.openssh.authorizedKeys.keys = cfg.adminKeys;
    nix.settings.experimental-features = [
      "nix-command"
      "flakes"
    ];
    system.stateVersion = lib.mkDefault "25.05";
  };
}
