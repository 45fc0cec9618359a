# Network constraints: each host's lab profile from the inventory (delay, jitter, loss,
# rate) is applied with tc netem to its cluster interface, and the cluster must stay
# healthy: every node Ready, etcd ready, the API answering on every server, a deployment
# rolling out.
{ t }:
let
  inherit (t) facts;
  fmt =
    x:
    let
      i = builtins.floor x;
    in
    if i == x then toString i else toString x;
  netemArgs =
    p:
    builtins.concatStringsSep " " (
      (if p.delay_ms != null then [ "delay ${fmt p.delay_ms}ms" ] else [ ])
      ++ (if p.delay_ms != null && p.jitter_ms != null then [ "${fmt p.jitter_ms}ms" ] else [ ])
      ++ (if p.loss_pct != null then [ "loss ${fmt p.loss_pct}%" ] else [ ])
      ++ (if p.rate_mbit != null then [ "rate ${fmt p.rate_mbit}mbit" ] else [ ])
    );
  # Hosts without an impairment in the inventory get the built-in `constrained` profile,
  # so the test always exercises something.
  impair = builtins.listToAttrs (
    map (
      h:
      let
        args = netemArgs facts.lab.hosts.${h.name}.impairments;
      in
      {
        name = h.name;
        value = {
          dev = t.ethOf h "cluster";
          netem = if args == "" then netemArgs facts.lab.profiles.constrained else args;
        };
      }
    ) facts.hosts
  );
  deployment = t.json "under-netem" {
    apiVersion = "apps/v1";
    kind = "Deployment";
    metadata.name = "under-netem";
    spec = {
      replicas = 2;
      selector.matchLabels.app = "under-netem";
      template = {
        metadata.labels.app = "under-netem";
        spec = t.podSpec { } [
          "sleep"
          "3600"
        ];
      };
    };
  };
in
t.mkTest {
  name = "constraints";
  testScript = ''
    import json

    impair = json.loads('${builtins.toJSON impair}')
    with subtest("apply the inventory's lab profiles with netem"):
        for m in machines:
            i = impair[m.name]
            m.succeed(f"tc qdisc replace dev {i['dev']} root netem {i['netem']}")
            m.succeed(f"tc qdisc show dev {i['dev']} | grep -q netem")

    with subtest("the cluster stays healthy under impairment"):
        init.sleep(120)
        kubectl("wait --for=condition=Ready node --all --timeout=600s")
        kubectl("get --raw /readyz/etcd")
        for s in servers:
            by_name[s].wait_until_succeeds("k3s kubectl get --raw /readyz", timeout=600)
        kubectl("apply -f ${deployment}")
        kubectl("rollout status deployment/under-netem --timeout=600s")

    with subtest("removing the impairment leaves a healthy cluster"):
        for m in machines:
            m.succeed(f"tc qdisc del dev {impair[m.name]['dev']} root")
        kubectl("wait --for=condition=Ready node --all --timeout=300s")
  '';
}
