# The resolved cluster, computed from the inventory with builtins only.
#
# This is the Nix twin of `crates/n3x-model/src/resolve.rs`: the same shape and values as
# `n3x show --json` (hosts sorted by name, every default filled in, `null` for absent
# optionals). `crates/n3x/tests/nix_facts.rs` evaluates this file on several inventories
# and demands JSON equality with the Rust output, so a change on either side that is not
# made on the other fails CI.
#
# Input: `inventory`, the attrset `builtins.fromTOML` returns for an `n3x.toml` that
# `n3x check` accepts. Like `resolve`, this does not re-check the inventory; on an
# inventory with errors it may throw.
{ inventory }:
let
  inherit (builtins)
    attrNames
    elemAt
    filter
    foldl'
    head
    length
    listToAttrs
    map
    split
    ;

  inv = inventory;

  # model.rs `K3S_TRACKS`: the k3s tracks nixos-25.11 carries.
  k3sTracks = {
    "v1.31" = "k3s_1_31";
    "v1.32" = "k3s_1_32";
    "v1.33" = "k3s_1_33";
    "v1.34" = "k3s_1_34";
  };

  # `a.b.c/len` -> len
  prefixLength = cidr: builtins.fromJSON (elemAt (split "/" cidr) 2);

  max = a: b: if a > b then a else b;

  # --- networks -------------------------------------------------------------------------
  networks = builtins.mapAttrs (_: n: {
    cidr = n.cidr;
    prefix_length = prefixLength n.cidr;
    vlan = n.vlan or null;
    mtu = n.mtu or 1500;
    gateway = n.gateway or null;
    dns = n.dns or [ ];
  }) inv.networks;
  netNames = attrNames networks; # sorted, like the BTreeMap in the model

  # resolve.rs `default_route`: through the (one) network with a gateway.
  gatewayNets = filter (n: networks.${n}.gateway != null) netNames;

  uniqueList = foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];

  # resolve.rs `vlan_device`: a tagged network lives on `vlan<id>` on top of its interface.
  vlanDevice = vlan: "vlan${toString vlan}";

  # --- k3s ------------------------------------------------------------------------------
  k = inv.k3s or { };
  etcd = k.etcd or { };
  k3sVersion = k.version or "v1.31";

  hostNames = attrNames inv.hosts; # sorted, like the BTreeMap in the model
  isServer = h: (h.role or null) == "server";
  isInit = h: h.init or false;

  initNames = filter (n: isServer inv.hosts.${n} && isInit inv.hosts.${n}) hostNames;
  initHost =
    if initNames == [ ] then
      throw "n3x facts: no init server; run `n3x check`"
    else
      inv.hosts.${head initNames};
  serverUrl = "https://${initHost.addresses.cluster}:6443";

  # --- hosts ----------------------------------------------------------------------------
  # model.rs `Hardware::arch`, one table for facts.nix and default.nix.
  archOf = (import ./hardware.nix).archOf;

  defaultConsole = hw: if hw == "jetson-orin-nano" then "ttyTCU0" else null;

  resolveInterface =
    h: ifname:
    let
      i = h.interfaces.${ifname};
      atts = map (
        net:
        let
          n = networks.${net};
        in
        {
          network = net;
          vlan = n.vlan;
          device = if n.vlan == null then ifname else vlanDevice n.vlan;
          address = h.addresses.${net};
          prefix_length = n.prefix_length;
          mtu = n.mtu;
        }
      ) (i.networks or [ ]);
    in
    {
      name = ifname;
      members = if i ? bond then i.bond.members or [ ] else [ ];
      # decode.rs: a bond without `mode` is active-backup.
      bond_mode = if i ? bond then i.bond.mode or "active-backup" else null;
      # The parent must pass the biggest frame of anything stacked on it.
      mtu = if atts == [ ] then 1500 else foldl' max 0 (map (a: a.mtu) atts);
      networks = atts;
      mac = i.mac or null;
    };

  resolveHost =
    name:
    let
      h = inv.hosts.${name};
      nodeIp = h.addresses.cluster;
      init = isInit h;
      interfaces = map (resolveInterface h) (attrNames (h.interfaces or { }));
      attachments = builtins.concatLists (map (i: i.networks) interfaces);
      defaultRoute =
        if gatewayNets == [ ] then
          null
        else
          let
            net = head gatewayNets;
            on = filter (a: a.network == net) attachments;
          in
          if on == [ ] then
            null
          else
            {
              gateway = networks.${net}.gateway;
              device = (head on).device;
            };
    in
    {
      inherit name init;
      role = h.role;
      hardware = h.hardware;
      arch = archOf h.hardware;
      ssh = h.ssh or "root@${nodeIp}";
      disk = h.disk or null;
      layout = h.layout or "standard";
      firmware = h.firmware or null;
      console = h.console or (defaultConsole h.hardware);
      addresses = h.addresses or { };
      node_ip = nodeIp;
      inherit interfaces;
      server_url = if init then null else serverUrl;
      etcd_peer_url = if isServer h then "https://${nodeIp}:2380" else null;
      labels = h.labels or { };
      taints = h.taints or [ ];
      age = h.age or null;
      # resolve.rs `host_id`: ZFS's host id, 8 hex digits of sha256(name).
      host_id = builtins.substring 0 8 (builtins.hashString "sha256" name);
      default_route = defaultRoute;
      # resolve.rs `host_dns`: the DNS servers of the networks the host carries.
      dns = uniqueList (builtins.concatLists (map (n: networks.${n}.dns) (filter (n: (h.addresses or { }) ? ${n}) netNames)));
    };

  hosts = map resolveHost hostNames;

  # --- add-ons --------------------------------------------------------------------------
  a = inv.addons or { };
  # An add-on table defaults to `enable = true`: writing the table is the intent.
  enabled = t: a ? ${t} && (a.${t}.enable or true);

  mon = a.monitoring or { };

  # --- security -------------------------------------------------------------------------
  sec = inv.security or { };
  audit = sec.audit or { };
  protectKernel = sec.protect_kernel_defaults or true;

  secretsFile = (inv.secrets or { }).file or "secrets/k3s.yaml";

  # --- lab ------------------------------------------------------------------------------
  lab = inv.lab or { };
  float = x: if x == null then null else x * 1.0;
  noImpairment = {
    delay_ms = null;
    jitter_ms = null;
    loss_pct = null;
    rate_mbit = null;
  };
  # model.rs BUILTIN_PROFILES (inventory.md's table; 0 means "not impaired": null).
  builtinProfiles = {
    default = noImpairment;
    constrained = noImpairment // {
      delay_ms = 50.0;
      jitter_ms = 10.0;
    };
    lossy = noImpairment // {
      loss_pct = 5.0;
    };
    slow = noImpairment // {
      rate_mbit = 10.0;
    };
    edge = {
      delay_ms = 50.0;
      jitter_ms = 10.0;
      loss_pct = 2.0;
      rate_mbit = 10.0;
    };
  };
  # A user profile replaces a built-in of the same name as a whole; keys it omits are null.
  userProfiles = builtins.mapAttrs (_: p: {
    delay_ms = float (p.delay_ms or null);
    jitter_ms = float (p.jitter_ms or null);
    loss_pct = float (p.loss_pct or null);
    rate_mbit = float (p.rate_mbit or null);
  }) (lab.profiles or { });
  profiles = builtinProfiles // userProfiles;
  labProfile = lab.profile or "default";
  labHosts = listToAttrs (
    map (
      name:
      let
        p = (lab.hosts or { }).${name}.profile or labProfile;
      in
      {
        inherit name;
        value = {
          profile = p;
          impairments = profiles.${p} or noImpairment;
        };
      }
    ) hostNames
  );
in
assert length hostNames > 0;
{
  cluster = {
    name = inv.cluster.name;
    domain = inv.cluster.domain or null;
  };
  k3s = {
    version = k3sVersion;
    # model.rs `K3S_TRACKS`: the nixpkgs attribute of the track.
    package =
      k3sTracks.${k3sVersion} or (throw "n3x facts: k3s `${k3sVersion}` is not in the pinned nixpkgs; run `n3x check`");
    cluster_cidr = k.cluster_cidr or "10.42.0.0/16";
    service_cidr = k.service_cidr or "10.43.0.0/16";
    cluster_dns = k.cluster_dns or "10.43.0.10";
    disable = k.disable or [ ];
    token_file = k.token_file or "/run/secrets/k3s-token";
    agent_token_file = k.agent_token_file or "/run/secrets/k3s-agent-token";
    server_url = serverUrl;
    etcd = {
      heartbeat_ms = etcd.heartbeat_ms or 100;
      election_ms = etcd.election_ms or 1000;
      snapshot_schedule = etcd.snapshot_schedule or "0 */6 * * *";
      snapshot_retention = etcd.snapshot_retention or 10;
    };
  };
  inherit networks hosts;
  addons = {
    kyverno = enabled "kyverno";
    multus = {
      enable = enabled "multus";
      networks = (a.multus or { }).networks or [ ];
    };
    longhorn = {
      enable = enabled "longhorn";
      network = (a.longhorn or { }).network or null;
      replicas = (a.longhorn or { }).replicas or 3;
      data_path = (a.longhorn or { }).data_path or "/var/lib/longhorn";
    };
    monitoring = {
      enable = enabled "monitoring";
      retention = mon.retention or "15d";
      # model.rs `default_monitoring_storage`: replicated on Longhorn when the cluster has it.
      storage = mon.storage or (if enabled "longhorn" then "longhorn" else "local-path");
      size = mon.size or "20Gi";
    };
  };
  security = {
    secrets_encryption = sec.secrets_encryption or true;
    protect_kernel_defaults = protectKernel;
    # model.rs `KERNEL_DEFAULTS`: what kubelet checks under protect-kernel-defaults.
    kernel_sysctls =
      if protectKernel then
        {
          "kernel.panic" = 10;
          "kernel.panic_on_oops" = 1;
          "vm.overcommit_memory" = 1;
          "vm.panic_on_oom" = 0;
        }
      else
        { };
    pod_security = sec.pod_security or "restricted";
    tls_san = sec.tls_san or [ ];
    audit = {
      enable = audit.enable or true;
      policy_file = audit.policy_file or null;
      log_path = audit.log_path or "/var/lib/rancher/k3s/server/logs/audit.log";
      max_age_days = audit.max_age_days or 30;
      max_backups = audit.max_backups or 10;
      max_size_mb = audit.max_size_mb or 100;
    };
  };
  secrets = {
    file = secretsFile;
    # resolve.rs `agent_file_path`: `-agent` before the extension; a leading dot starts a
    # name, not an extension; no extension: appended.
    agent_file =
      let
        m = builtins.match "(.*/)?([^/]+)\\.([^./]+)" secretsFile;
      in
      if m == null then
        "${secretsFile}-agent"
      else
        "${if elemAt m 0 == null then "" else elemAt m 0}${elemAt m 1}-agent.${elemAt m 2}";
    admins = (inv.secrets or { }).admins or [ ];
  };
  access = {
    ssh_keys = (inv.access or { }).ssh_keys or [ ];
  };
  lab = {
    seed = lab.seed or 1;
    profile = labProfile;
    inherit profiles;
    hosts = labHosts;
  };
}
