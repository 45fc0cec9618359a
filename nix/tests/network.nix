# Network: pods on different nodes reach each other over flannel on the cluster network,
# and CoreDNS resolves services.
{ t }:
let
  inherit (t) facts;
  first = (builtins.head facts.hosts).name;
  last = (builtins.elemAt facts.hosts (builtins.length facts.hosts - 1)).name;
  pod = name: node: cmd: {
    apiVersion = "v1";
    kind = "Pod";
    metadata = {
      inherit name;
      labels.app = name;
    };
    spec = t.podSpec { } cmd // {
      nodeName = node;
    };
  };
  objects = t.json "pods" [
    (pod "echo" first [
      "socat"
      "TCP4-LISTEN:8000,fork"
      "EXEC:echo pong"
    ])
    (pod "client" last [
      "sleep"
      "3600"
    ])
    {
      apiVersion = "v1";
      kind = "Service";
      metadata.name = "echo";
      spec = {
        selector.app = "echo";
        ports = [ { port = 8000; } ];
      };
    }
  ];
in
t.mkTest {
  name = "network";
  testScript = ''
    with subtest("pod to pod across nodes (${first} -> ${last})"):
        kubectl("apply -f ${objects}")
        kubectl("wait --for=condition=Ready pod/echo pod/client --timeout=600s")
        ip = kubectl("get pod echo -o jsonpath='{.status.podIP}'").strip()
        out = kubectl(f"exec client -- socat -T5 TCP:{ip}:8000 -")
        assert out.strip() == "pong", f"pod-to-pod got {out!r}"

    with subtest("CoreDNS resolves the service"):
        kubectl("exec client -- nslookup kubernetes.default.svc.cluster.local")
        out = kubectl("exec client -- socat -T5 TCP:echo.default.svc.cluster.local:8000 -")
        assert out.strip() == "pong", f"service by name got {out!r}"
  '';
}
