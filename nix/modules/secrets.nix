# k3s tokens from sops-nix. Import together with sops-nix's module (the flake's
# `nixosModules.secrets` does both).
#
# Hosts decrypt with their SSH host key (converted to age by sops-nix), so `n3x secrets`
# encrypts to each host's `age` recipient from n3x.toml. Servers read both tokens from
# `[secrets].file`; agents read the agent token from the agents' file next to it
# (`secrets.agent_file` of the facts), which is encrypted to no server-only key. Decrypted
# tokens live under /run/secrets (ramfs) and never in the Nix store.
#
# A fresh clone has no secrets yet. Its configurations still evaluate (so `nix flake
# check` passes), but without the files this module configures no sops secret and adds
# a check that fails the system's *build*: installing or deploying the host stops with a
# message naming `n3x secrets init`, while evaluating it does not.
{ config, lib, pkgs, ... }:
let
  n3xLib = import ../lib;
  cfg = config.n3x.secrets;
  facts = config.n3x.facts;
  host = config.n3x.host;
  wanted = n3xLib.secretsFor facts host;
  fileFor = s: if s.file == facts.secrets.file then cfg.sopsFile else cfg.agentSopsFile;
  needed = lib.unique (map fileFor (lib.attrValues wanted));
  missing = builtins.filter (f: !builtins.pathExists f) needed;
  missingCheck = pkgs.runCommand "n3x-secrets-missing-${config.n3x.hostName}" { } ''
    echo "n3x: the k3s token files of ${config.n3x.hostName} do not exist: ${toString missing}" >&2
    echo "n3x: run \`n3x secrets init\`, \`n3x secrets add-host ${config.n3x.hostName} ...\` and \`n3x secrets tokens\`, then commit secrets/ (it is encrypted)" >&2
    exit 1
  '';
in
{
  options.n3x.secrets = {
    enable = lib.mkEnableOption "k3s tokens from the inventory's sops file" // {
      default = config.n3x.enable;
      defaultText = lib.literalExpression "config.n3x.enable";
    };

    sopsFile = lib.mkOption {
      type = lib.types.path;
      default = config.n3x.root + "/${facts.secrets.file}";
      defaultText = lib.literalExpression ''config.n3x.root + "/''${config.n3x.facts.secrets.file}"'';
      description = "The servers' sops file (both tokens): `[secrets].file`, relative to the flake.";
      example = lib.literalExpression "./secrets/k3s.yaml";
    };

    agentSopsFile = lib.mkOption {
      type = lib.types.path;
      default = config.n3x.root + "/${facts.secrets.agent_file}";
      defaultText = lib.literalExpression ''config.n3x.root + "/''${config.n3x.facts.secrets.agent_file}"'';
      description = "The agents' sops file (the agent token only).";
      example = lib.literalExpression "./secrets/k3s-agent.yaml";
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      (lib.mkIf (missing == [ ]) {
        sops.defaultSopsFile = cfg.sopsFile;
        sops.age.sshKeyPaths = [ "/etc/ssh/ssh_host_ed25519_key" ];
        sops.secrets = lib.mapAttrs (_: s: {
          inherit (s) key path;
          sopsFile = fileFor s;
          restartUnits = lib.optional config.services.k3s.enable "k3s.service";
        }) wanted;
      })
      (lib.mkIf (missing != [ ]) {
        # sops-nix would fail evaluation hashing a missing file: configure nothing, and
        # fail the build of the system instead (install and deploy build it first).
        system.checks = [ missingCheck ];
        warnings = [
          "n3x.secrets: ${toString missing} missing; `${config.n3x.hostName}` cannot be installed or deployed until `n3x secrets init` and `n3x secrets tokens` write them"
        ];
      })
    ]
  );
}
