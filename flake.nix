{
  description = "n3x: a k3s edge cluster of NixOS machines, every host built from n3x.toml";

  # No flake.lock is committed yet: the first `nix flake lock` on a machine with network
  # access pins these. nixos-25.11 is chosen deliberately; the modules only use k3s options
  # that exist both before and after nixpkgs' 25.11 rewrite of the k3s module (see
  # docs/nixos.md).
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
    disko = {
      url = "github:nix-community/disko";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    sops-nix = {
      url = "github:Mic92/sops-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    nixos-anywhere = {
      url = "github:nix-community/nixos-anywhere";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.disko.follows = "disko";
    };
    # Jetson hosts only.
    jetpack-nixos = {
      url = "github:anduril/jetpack-nixos";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      disko,
      sops-nix,
      nixos-anywhere,
      jetpack-nixos,
      ...
    }:
    let
      # The wiring below uses builtins only (no nixpkgs.lib), like nix/lib: the inventory
      # is read once, here, and every host configuration consumes the same `facts` that
      # crates/n3x/tests/nix_facts.rs proves equal to `n3x show --json`.
      n3xLib = import ./nix/lib;
      facts = n3xLib.fromFile ./n3x.toml;

      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems =
        f:
        builtins.listToAttrs (
          map (system: {
            name = system;
            value = f system nixpkgs.legacyPackages.${system};
          }) systems
        );

      modules = {
        core = ./nix/modules/core.nix;
        hardware = ./nix/modules/hardware.nix;
        network = ./nix/modules/network.nix;
        k3s = ./nix/modules/k3s.nix;
        addons = ./nix/modules/addons.nix;
        storage = {
          imports = [
            disko.nixosModules.disko
            ./nix/modules/storage.nix
          ];
        };
        secrets = {
          imports = [
            sops-nix.nixosModules.sops
            ./nix/modules/secrets.nix
          ];
        };
        hardware-jetson-orin-nano = {
          imports = [
            jetpack-nixos.nixosModules.default
            ./nix/modules/jetson-orin-nano.nix
          ];
        };
      };

      # Everything except the Jetson module (which pulls in jetpack-nixos).
      defaultModule = {
        imports = with modules; [
          core
          hardware
          network
          k3s
          storage
          addons
          secrets
        ];
      };

      # Hand-written extras for one host, if any. They must not repeat inventory facts.
      extras =
        name:
        let
          p = ./hosts + "/${name}.nix";
        in
        if builtins.pathExists p then [ p ] else [ ];

      hostModules =
        h:
        [ defaultModule ]
        ++ (if n3xLib.isJetson h then [ modules.hardware-jetson-orin-nano ] else [ ])
        ++ [
          {
            nixpkgs.hostPlatform = h.arch;
            n3x = {
              enable = true;
              inherit facts;
              hostName = h.name;
              root = ./.;
            };
          }
        ]
        ++ extras h.name;
    in
    {
      lib = n3xLib // {
        inherit facts;
      };

      nixosModules = modules // {
        default = defaultModule;
      };

      nixosConfigurations = builtins.listToAttrs (
        map (h: {
          name = h.name;
          value = nixpkgs.lib.nixosSystem { modules = hostModules h; };
        }) facts.hosts
      );

      packages = forAllSystems (
        system: pkgs: {
          default = pkgs.rustPlatform.buildRustPackage {
            pname = "n3x";
            version = "0.1.0";
            src = pkgs.lib.cleanSource ./.;
            cargoLock.lockFile = ./Cargo.lock;
            cargoBuildFlags = [
              "-p"
              "n3x"
            ];
            # The workspace tests need root (lab) or Nix itself (nix_facts); CI runs them.
            doCheck = false;
            meta = {
              description = "Define, test and ship a k3s edge cluster of NixOS machines from one file";
              mainProgram = "n3x";
            };
          };
        }
      );

      checks.x86_64-linux =
        let
          pkgs = nixpkgs.legacyPackages.x86_64-linux;
        in
        import ./nix/tests {
          inherit pkgs facts;
          n3xModules = [ defaultModule ];
          root = ./.;
        }
        // {
          # The inventory itself: `n3x check` (errors fail the check; warnings are printed).
          inventory = pkgs.runCommand "n3x-inventory-check" { } ''
            ${self.packages.x86_64-linux.default}/bin/n3x check -f ${./n3x.toml}
            touch $out
          '';
          # The facts the flake uses equal the CLI's (also a cargo test; this one runs
          # under `nix flake check` with the packaged binary). jq prints 50.0 and 50 alike.
          facts = pkgs.runCommand "n3x-facts-agree" { nativeBuildInputs = [ pkgs.jq ]; } ''
            ${self.packages.x86_64-linux.default}/bin/n3x show --json -f ${./n3x.toml} | jq -S . > rust.json
            jq -S . ${pkgs.writeText "facts.json" (builtins.toJSON facts)} > nix.json
            diff -u rust.json nix.json
            touch $out
          '';
        };

      devShells = forAllSystems (
        system: pkgs: {
          default = pkgs.mkShell {
            packages = [
              pkgs.cargo
              pkgs.rustc
              pkgs.clippy
              pkgs.rustfmt
              pkgs.rust-analyzer
              pkgs.etcd
              pkgs.nftables
              pkgs.iproute2
              pkgs.age
              pkgs.sops
              pkgs.ssh-to-age
              pkgs.jq
              nixos-anywhere.packages.${system}.default
            ];
          };
        }
      );

      formatter = forAllSystems (system: pkgs: pkgs.nixfmt-rfc-style or pkgs.nixfmt);
    };
}
