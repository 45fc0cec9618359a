# Builds multi-node NixOS VM tests from the inventory: one VM per host of n3x.toml, with
# the host's real addresses, role, init server, labels and k3s settings. What a VM cannot
# have is replaced, and only that:
#   - hardware: every node runs the `qemu-x86_64` profile (the test runs on x86_64; Jetsons
#     become x86 VMs);
#   - interfaces: each inventory network is one test VLAN (`virtualisation.vlans`), so a
#     host's k-th carried network is eth<k>; bonds and 802.1Q tags are not emulated;
#   - disks: qemu-vm's; no disko;
#   - secrets: TEST DOUBLE. The VMs cannot decrypt the real sops file (no host keys), so
#     `testDoubleToken` below, a constant in the Nix store, is copied to the inventory's
#     token paths. It exists only in these tests;
#   - add-ons: off (their Helm charts and images need the internet, which the build
#     sandbox does not have); k3s' air-gap images give CoreDNS and local-path storage.
{ pkgs, n3xModules, facts, root }:
let
  inherit (pkgs) lib;
  n3xLib = import ../lib;

  testDoubleToken = pkgs.writeText "n3x-TEST-DOUBLE-k3s-token" "n3x-test-double-token-not-a-secret";

  # A tiny image for workloads (busybox for nslookup/wget, socat for a TCP echo).
  imageEnv = pkgs.buildEnv {
    name = "n3x-test-image-env";
    paths = [
      pkgs.tini
      pkgs.busybox
      pkgs.socat
    ];
  };
  testImage = pkgs.dockerTools.streamLayeredImage {
    name = "test.local/n3x";
    tag = "local";
    contents = imageEnv;
    config.Entrypoint = [
      "/bin/tini"
      "--"
    ];
  };

  node =
    h:
    { config, ... }:
    {
      imports = n3xModules;
      n3x = {
        enable = true;
        inherit facts root;
        hostName = h.name;
        hardware.profile = lib.mkForce "qemu-x86_64";
        # The test driver runs the serial console; a Jetson's ttyTCU0 does not exist in qemu.
        hardware.console = lib.mkForce null;
        network.manageInterfaces = false;
        network.clusterDevice = ethOf h "cluster";
        network.storageDevice = if h.addresses ? storage then ethOf h "storage" else null;
        k3s.flannelIface = ethOf h "cluster";
        storage.disko = false;
        secrets.enable = false;
        addons.enable = false;
      };
      virtualisation = {
        vlans = map (n: netIndex n + 1) (carried h);
        memorySize = if h.role == "server" then 2048 else 1536;
        cores = 2;
        diskSize = 8192;
      };
      networking.useDHCP = false;
      # The inventory's default route, on the VM's NIC for that network: k3s needs one. No
      # router answers there in the test network; the route is what k3s looks for.
      networking.defaultGateway = lib.mkIf (h.default_route != null) {
        address = h.default_route.gateway;
        interface = ethOf h (lib.findFirst (n: facts.networks.${n}.gateway != null) null (carried h));
      };
      # The test framework writes the driver's own addresses (192.168.<vlan>.<n>) into
      # /etc/hosts; these nodes have the inventory's, so the names must resolve to those.
      networking.extraHosts = lib.mkForce (
        lib.concatMapStrings (
          o:
          "${o.addresses.cluster} ${
            lib.optionalString (facts.cluster.domain != null) "${o.name}.${facts.cluster.domain} "
          }${o.name}\n"
        ) facts.hosts
      );
      networking.interfaces = lib.listToAttrs (
        map (n: {
          name = ethOf h n;
          value.ipv4.addresses = lib.mkForce [
            {
              address = h.addresses.${n};
              prefixLength = facts.networks.${n}.prefix_length;
            }
          ];
        }) (carried h)
      );
      # TEST DOUBLE: the inventory's token paths, filled from the store (see above).
      systemd.tmpfiles.rules = [
        "C ${facts.k3s.token_file} 0400 root root - ${testDoubleToken}"
        "C ${facts.k3s.agent_token_file} 0400 root root - ${testDoubleToken}"
      ];
      services.k3s.images = [ config.services.k3s.package.airgap-images ];
      environment.systemPackages = [
        pkgs.jq
        pkgs.iproute2
      ];
    };

  # The test scripts' shared Python and the pure helpers (builtins only, so the scripts
  # can be generated and linted without building anything: crates/n3x/tests/nix_facts.rs).
  script = import ./script.nix {
    inherit facts;
    testImage = "${testImage}";
  };
  inherit (script) netIndex carried ethOf;
in
{
  inherit testImage facts n3xLib ethOf;
  inherit (script) podSpec;

  # A Kubernetes object (or a list of them) as a JSON file in the store; the VMs see the
  # host's store, so `kubectl apply -f ''${t.json "x" obj}` works in test scripts.
  json =
    name: obj:
    pkgs.writeText "n3x-test-${name}.json" (
      builtins.toJSON (
        if builtins.isList obj then
          {
            apiVersion = "v1";
            kind = "List";
            items = obj;
          }
        else
          obj
      )
    );

  mkTest =
    { name, testScript }:
    pkgs.testers.runNixOSTest {
      name = "n3x-${name}";
      nodes = lib.listToAttrs (map (h: lib.nameValuePair h.name (node h)) facts.hosts);
      testScript = script.prelude + testScript;
    };
}
