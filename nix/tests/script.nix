# The pure part of the VM tests: which VLAN and ethN each inventory network becomes, the
# Python every test script starts with, and pod specs. Builtins only: the VM tests use it
# through lib.nix, and crates/n3x/tests/nix_facts.rs evaluates it (with a stand-in store
# path for the image) to generate every test script and lint it with pyflakes, as the
# NixOS test driver does before it runs one.
{ facts, testImage }:
let
  netNames = builtins.attrNames facts.networks;
  indexOf =
    x: list:
    let
      go = i: if i >= builtins.length list then null else if builtins.elemAt list i == x then i else go (i + 1);
    in
    go 0;
  servers = builtins.filter (h: h.role == "server") facts.hosts;
  initName = (builtins.head (builtins.filter (h: h.init) facts.hosts)).name;
in
rec {
  netIndex = net: indexOf net netNames;
  # The networks a host carries, in name order; the k-th becomes eth<k> in its VM.
  carried = h: builtins.filter (n: h.addresses ? ${n}) netNames;
  ethOf = h: net: "eth${toString (indexOf net (carried h) + 1)}";

  # Python shared by every test: start the cluster and wait until every host is a Ready
  # node. Imports are each test's own (the driver's linter rejects unused ones).
  prelude = ''
    by_name = {m.name: m for m in machines}
    init = by_name["${initName}"]
    hosts = ${builtins.toJSON (map (h: h.name) facts.hosts)}
    servers = ${builtins.toJSON (map (h: h.name) servers)}

    def kubectl(cmd, timeout=900):
        return init.wait_until_succeeds(f"k3s kubectl {cmd}", timeout=timeout)

    start_all()
    init.wait_for_unit("k3s")
    for m in machines:
        m.wait_for_unit("k3s")
        m.succeed("${testImage} | k3s ctr image import -")
    with subtest("every inventory host joins"):
        init.wait_until_succeeds(
            f"[ $(k3s kubectl get nodes -o name | wc -l) -eq {len(hosts)} ]", timeout=1200
        )
        kubectl("wait --for=condition=Ready node --all --timeout=600s")
  '';

  # A pod (or pod template spec) running the test image.
  podSpec = extra: cmd: {
    tolerations = [ { operator = "Exists"; } ];
    containers = [
      ({
        name = "c";
        image = "test.local/n3x:local";
        imagePullPolicy = "Never";
        command = cmd;
      }
      // extra)
    ];
  };
}
