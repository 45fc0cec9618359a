# Every test file in this directory (except this one, lib.nix and script.nix) becomes a
# check: adding `nix/tests/<name>.nix` adds `checks.x86_64-linux.<name>`.
{ pkgs, n3xModules, facts, root }:
let
  t = import ./lib.nix { inherit pkgs n3xModules facts root; };
  files = builtins.attrNames (builtins.readDir ./.);
  helpers = [
    "default.nix"
    "lib.nix"
    "script.nix"
  ];
  tests = builtins.filter (f: builtins.match ".*\\.nix" f != null && !builtins.elem f helpers) files;
in
builtins.listToAttrs (
  map (f: {
    name = builtins.replaceStrings [ ".nix" ] [ "" ] f;
    value = import (./. + "/${f}") { inherit t; };
  }) tests
)
