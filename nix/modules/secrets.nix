# k3s tokens from sops-nix. Import together with sops-nix's module (the flake's
# `nixosModules.secrets` does both).
#
# Hosts decrypt with their SSH host key (converted to age by sops-nix), so `n3x secrets`
# encrypts to each host's `age` recipient from n3x.toml. Servers read both tokens from
# `[secrets].file`; agents read the agent token from the `-agent` file next to it
# (nix/lib `agentSecretsFile`), which is encrypted to no server-only key. Decrypted tokens
# live under /run/secrets (ramfs) and never in the Nix store.
{ config, lib, ... }:
let
  n3xLib = import ../lib;
  cfg = config.n3x.secrets;
  facts = config.n3x.facts;
  host = config.n3x.host;
  wanted = n3xLib.secretsFor facts host;
  fileFor = s: if s.file == facts.secrets.file then cfg.sopsFile else cfg.agentSopsFile;
  needed = lib.unique (map fileFor (lib.attrValues wanted));
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
      default = config.n3x.root + "/${n3xLib.agentSecretsFile facts.secrets.file}";
      defaultText = lib.literalMD "`[secrets].file` with `-agent` before the extension";
      description = "The agents' sops file (the agent token only).";
      example = lib.literalExpression "./secrets/k3s-agent.yaml";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = map (file: {
      assertion = builtins.pathExists file;
      message = "n3x.secrets: `${toString file}` (n3x.secrets.sopsFile / n3x.secrets.agentSopsFile) does not exist; run `n3x secrets` and commit the file";
    }) needed;

    sops.defaultSopsFile = cfg.sopsFile;
    sops.age.sshKeyPaths = [ "/etc/ssh/ssh_host_ed25519_key" ];
    sops.secrets = lib.mapAttrs (_: s: {
      inherit (s) key path;
      sopsFile = fileFor s;
      restartUnits = lib.optional config.services.k3s.enable "k3s.service";
    }) wanted;
  };
}
