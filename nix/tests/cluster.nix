# Cluster formation: every inventory host joins with its role; the servers form etcd; the
# inventory's labels arrive; a workload spread over all nodes runs.
{ t }:
let
  inherit (t) facts;
  labelled = builtins.filter (h: h.labels != { }) facts.hosts;
  daemonSet = t.json "hello" {
    apiVersion = "apps/v1";
    kind = "DaemonSet";
    metadata.name = "hello";
    spec = {
      selector.matchLabels.app = "hello";
      template = {
        metadata.labels.app = "hello";
        spec = t.podSpec { } [
          "socat"
          "TCP4-LISTEN:8000,fork"
          "EXEC:echo hello"
        ];
      };
    };
  };
in
t.mkTest {
  name = "cluster";
  testScript = ''
    import json

    with subtest("servers are etcd members, agents are not"):
        out = kubectl("get nodes -l node-role.kubernetes.io/etcd=true -o json")
        etcd = sorted(n["metadata"]["name"] for n in json.loads(out)["items"])
        assert etcd == sorted(servers), f"etcd members {etcd} != servers {servers}"

    with subtest("inventory labels are on the nodes"):
        expected = json.loads('${builtins.toJSON (builtins.listToAttrs (map (h: { name = h.name; value = h.labels; }) labelled))}')
        for node, labels in expected.items():
            got = json.loads(kubectl(f"get node {node} -o json"))["metadata"]["labels"]
            for k, v in labels.items():
                assert got.get(k) == v, f"{node}: label {k}={got.get(k)!r}, want {v!r}"

    with subtest("a workload runs on every node"):
        kubectl("apply -f ${daemonSet}")
        init.wait_until_succeeds(
            f"[ $(k3s kubectl get ds hello -o jsonpath='{{.status.numberReady}}') -eq {len(hosts)} ]", timeout=600
        )
  '';
}
