//! The flake and the CLI derive the same facts from `n3x.toml`.
//!
//! `nix/lib/facts.nix` (builtins only) is evaluated with `nix-instantiate` on several
//! inventories and its JSON must equal `n3x show --json` exactly; the pure helpers the
//! NixOS modules use (networkd units, k3s config, sops files, host ids) are checked against
//! the same Rust facts; the flake's wiring is evaluated with stub inputs; and every `.nix`
//! file in the repository must parse. Without `nix-instantiate` each test is skipped (a
//! failure when `CI` is set; CI installs Debian's `nix-bin`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn have_nix() -> bool {
    let ok = Command::new("nix-instantiate").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        n3x_testkit::skip("nix facts test", "nix-instantiate is not installed (apt-get install nix-bin)");
    }
    ok
}

/// A Nix string literal for a path (paths here have no `"`, `\` or `${`).
fn lit(p: &Path) -> String {
    let s = p.to_str().unwrap();
    assert!(!s.contains(['"', '\\', '$']), "unexpected character in path {s}");
    format!("\"{s}\"")
}

fn nix_eval(expr: &str) -> Value {
    let out = Command::new("nix-instantiate").args(["--eval", "--strict", "--json", "-E", expr]).output().unwrap();
    assert!(out.status.success(), "nix-instantiate failed on\n{expr}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn show_json(inventory: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_n3x")).args(["show", "--json", "-f"]).arg(inventory).output().unwrap();
    assert!(out.status.success(), "n3x show failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn nix_facts(inventory: &Path) -> Value {
    let lib = root().join("nix/lib/facts.nix");
    nix_eval(&format!(
        "import {} {{ inventory = builtins.fromTOML (builtins.readFile {}); }}",
        lit(&lib),
        lit(inventory)
    ))
}

/// Lab impairments are `f64` in Rust (`50.0`), while Nix prints a whole float as `50`;
/// serde_json keeps those apart (`PosInt` vs `Float`). Only there, compare as f64. Every
/// other number (MTUs, VLAN ids, timings) must match in kind and value.
fn normalise_impairments(v: &mut Value) {
    fn floats(p: &mut Value) {
        if let Value::Object(m) = p {
            for x in m.values_mut() {
                if let Some(f) = x.as_f64() {
                    *x = Value::from(f);
                }
            }
        }
    }
    if let Some(ps) = v.pointer_mut("/lab/profiles").and_then(Value::as_object_mut) {
        ps.values_mut().for_each(floats);
    }
    if let Some(hs) = v.pointer_mut("/lab/hosts").and_then(Value::as_object_mut) {
        for h in hs.values_mut() {
            if let Some(i) = h.get_mut("impairments") {
                floats(i);
            }
        }
    }
}

/// A scratch directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("n3x-nix-facts-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The inventories every test runs on: the reference, the five-server example (untagged
/// networks, two NICs per host, a user lab profile) and a generated 7-host cluster.
fn inventories(scratch: &Scratch) -> Vec<PathBuf> {
    let generated = scratch.0.join("generated.toml");
    std::fs::write(&generated, n3x_gen::inventory("gen", 7, 3)).unwrap();
    vec![root().join("n3x.toml"), root().join("examples/five-servers.toml"), generated]
}

/// Every inventory the facts must agree on: the above, every test case without errors,
/// generated clusters of several sizes, and inventories with odd `[secrets].file` names.
fn all_clean_inventories(scratch: &Scratch) -> Vec<PathBuf> {
    let mut out = inventories(scratch);
    let cases = root().join("crates/n3x/tests/cases");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&cases).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for p in names {
        let text = std::fs::read_to_string(&p).unwrap();
        if !text.lines().any(|l| l.starts_with("# expect: error")) {
            out.push(p);
        }
    }
    for (hosts, servers) in [(1, 1), (3, 3), (12, 5), (40, 3)] {
        let p = scratch.0.join(format!("gen-{hosts}-{servers}.toml"));
        std::fs::write(&p, n3x_gen::inventory("gen", hosts, servers)).unwrap();
        out.push(p);
    }
    for (i, file) in
        ["k3s.yaml", "a.b/c", "deep/dir/x.json", "secrets/.k3s", "secrets/k3s", "x.tar.gz"].iter().enumerate()
    {
        let p = scratch.0.join(format!("secrets-file-{i}.toml"));
        let text = std::fs::read_to_string(root().join("n3x.toml")).unwrap();
        std::fs::write(&p, text.replace("file = \"secrets/k3s.yaml\"", &format!("file = \"{file}\""))).unwrap();
        out.push(p);
    }
    out
}

#[test]
fn nix_facts_equal_n3x_show_json() {
    if !have_nix() {
        return;
    }
    let scratch = Scratch::new("equal");
    let all = all_clean_inventories(&scratch);
    // 3 + the clean cases (9 today) + 4 generated + 6 secrets-file variants.
    assert!(all.len() >= 20, "only {} inventories compared", all.len());
    for inv in all {
        let mut rust = show_json(&inv);
        let mut nix = nix_facts(&inv);
        normalise_impairments(&mut rust);
        normalise_impairments(&mut nix);
        assert_eq!(
            nix,
            rust,
            "nix/lib/facts.nix disagrees with `n3x show --json` on {}\nnix:  {}\nrust: {}",
            inv.display(),
            serde_json::to_string(&nix).unwrap(),
            serde_json::to_string(&rust).unwrap()
        );
    }
}

#[test]
fn the_comparison_catches_a_difference() {
    // Guard against a comparison that cannot fail: a one-field change must be seen.
    if !have_nix() {
        return;
    }
    let inv = root().join("n3x.toml");
    let rust = show_json(&inv);
    let mut nix = nix_facts(&inv);
    assert_eq!(
        nix["hosts"][0]["interfaces"][0]["networks"][0]["device"],
        rust["hosts"][0]["interfaces"][0]["networks"][0]["device"]
    );
    nix["hosts"][0]["interfaces"][0]["networks"][0]["device"] = Value::from("eth0.200");
    assert_ne!(nix, rust);
}

fn lib_eval(inv: &Path, body: &str) -> Value {
    let lib = root().join("nix/lib");
    nix_eval(&format!("let l = import {}; f = l.fromFile {}; in {body}", lit(&lib), lit(inv)))
}

/// The derived names the flake uses come from the facts, computed once per side: the
/// agents' secrets file (dot-files and files without extension included) and ZFS host ids.
#[test]
fn derived_names_come_from_the_facts() {
    if !have_nix() {
        return;
    }
    let scratch = Scratch::new("derived");
    let mut seen = Vec::new();
    for inv in all_clean_inventories(&scratch).iter().filter(|p| p.to_string_lossy().contains("secrets-file-")) {
        let facts = nix_facts(inv);
        assert_eq!(facts["secrets"]["agent_file"], show_json(inv)["secrets"]["agent_file"], "{}", inv.display());
        seen.push(facts["secrets"]["agent_file"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        seen,
        [
            "k3s-agent.yaml",
            "a.b/c-agent",
            "deep/dir/x-agent.json",
            "secrets/.k3s-agent",
            "secrets/k3s-agent",
            "x.tar-agent.gz"
        ]
    );
    let reference = nix_facts(&root().join("n3x.toml"));
    let id = |name: &str| {
        reference["hosts"].as_array().unwrap().iter().find(|h| h["name"] == name).unwrap()["host_id"].clone()
    };
    // The first 8 hex digits of sha256("n100-1") / sha256("jetson-1") (`sha256sum`).
    assert_eq!((id("n100-1"), id("jetson-1")), (Value::from("55bb7317"), Value::from("8c6d02c5")));
}

#[test]
fn sops_secrets_follow_role_and_inventory_paths() {
    if !have_nix() {
        return;
    }
    let scratch = Scratch::new("sops");
    for inv in inventories(&scratch) {
        let facts = show_json(&inv);
        let plan = lib_eval(&inv, "l.plan f");
        let file = facts["secrets"]["file"].as_str().unwrap();
        let agent_file = facts["secrets"]["agent_file"].as_str().unwrap();
        for (h, p) in facts["hosts"].as_array().unwrap().iter().zip(plan.as_array().unwrap()) {
            assert_eq!(h["name"], p["name"]);
            let s = &p["secrets"];
            let agent = &s["k3s-agent-token"];
            assert_eq!(agent["path"], facts["k3s"]["agent_token_file"]);
            assert_eq!(agent["key"], "k3s-agent-token");
            if h["role"] == "server" {
                assert_eq!(agent["file"], file, "{}: servers read both tokens from [secrets].file", h["name"]);
                assert_eq!(s["k3s-token"]["file"], file);
                assert_eq!(s["k3s-token"]["key"], "k3s-token");
                assert_eq!(s["k3s-token"]["path"], facts["k3s"]["token_file"]);
            } else {
                assert_eq!(agent["file"], agent_file, "{}: agents read the -agent file", h["name"]);
                assert!(s.get("k3s-token").is_none(), "{}: an agent must not get the server token", h["name"]);
            }
        }
    }
}

/// The device holding `net` on host `h` of `n3x show --json`.
fn device_of<'a>(h: &'a Value, net: &str) -> Option<&'a Value> {
    h["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["networks"].as_array().unwrap())
        .find(|a| a["network"] == net)
        .map(|a| &a["device"])
}

#[test]
fn k3s_config_matches_the_facts() {
    if !have_nix() {
        return;
    }
    let scratch = Scratch::new("k3s");
    let mut invs = inventories(&scratch);
    for case in ["ok-hardened", "audit-log-off", "secrets-encryption-off", "kernel-defaults-unprotected"] {
        invs.push(root().join(format!("crates/n3x/tests/cases/{case}.toml")));
    }
    for inv in invs {
        let facts = show_json(&inv);
        let plan = lib_eval(&inv, "l.plan f");
        let k = &facts["k3s"];
        for (h, p) in facts["hosts"].as_array().unwrap().iter().zip(plan.as_array().unwrap()) {
            let c = &p["k3s"];
            assert_eq!(c["node-ip"], h["node_ip"]);
            assert_eq!(
                Some(&c["flannel-iface"]),
                device_of(h, "cluster"),
                "{}: flannel on the cluster device",
                h["name"]
            );
            let mut labels: Vec<String> =
                h["labels"].as_object().unwrap().iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap())).collect();
            labels.sort();
            assert_eq!(c["node-label"], serde_json::json!(labels));
            assert_eq!(c["node-taint"], h["taints"]);
            assert_eq!(p["system"], h["arch"]);
            let sec = &facts["security"];
            assert_eq!(c["protect-kernel-defaults"], sec["protect_kernel_defaults"]);
            let kubelet = c["kubelet-arg"].as_array().unwrap();
            assert!(kubelet.contains(&serde_json::json!("streaming-connection-idle-timeout=5m")));
            assert!(kubelet.iter().any(|a| a.as_str().unwrap().starts_with("tls-cipher-suites=TLS_ECDHE_")));
            if h["role"] == "server" {
                assert_eq!(c["secrets-encryption"], sec["secrets_encryption"]);
                assert_eq!(c["etcd-expose-metrics"], facts["addons"]["monitoring"]["enable"]);
                let sans = sec["tls_san"].as_array().unwrap();
                assert_eq!(c.get("tls-san").map_or(0, |v| v.as_array().unwrap().len()), sans.len());
                if !sans.is_empty() {
                    assert_eq!(c["tls-san"], sec["tls_san"]);
                }
                let api: Vec<&str> =
                    c["kube-apiserver-arg"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
                assert!(api.contains(&"enable-admission-plugins=NodeRestriction,EventRateLimit"), "{api:?}");
                assert!(api.contains(&"admission-control-config-file=/etc/rancher/k3s/admission.yaml"));
                let au = &sec["audit"];
                let audit = [
                    format!("audit-log-path={}", au["log_path"].as_str().unwrap()),
                    "audit-policy-file=/etc/rancher/k3s/audit-policy.yaml".to_owned(),
                    format!("audit-log-maxage={}", au["max_age_days"]),
                    format!("audit-log-maxbackup={}", au["max_backups"]),
                    format!("audit-log-maxsize={}", au["max_size_mb"]),
                ];
                for a in &audit {
                    assert_eq!(api.contains(&a.as_str()), au["enable"] == true, "{}: `{a}` in {api:?}", h["name"]);
                }
                let e = &k["etcd"];
                assert_eq!(
                    c["etcd-arg"],
                    serde_json::json!([
                        format!("heartbeat-interval={}", e["heartbeat_ms"]),
                        format!("election-timeout={}", e["election_ms"])
                    ])
                );
                assert_eq!(c["etcd-snapshot-schedule-cron"], e["snapshot_schedule"]);
                assert_eq!(c["etcd-snapshot-retention"], e["snapshot_retention"]);
                assert_eq!(c["disable"], k["disable"]);
                assert_eq!(c["cluster-cidr"], k["cluster_cidr"]);
                assert_eq!(c["service-cidr"], k["service_cidr"]);
                assert_eq!(c["cluster-dns"], k["cluster_dns"]);
                assert_eq!(c["agent-token-file"], k["agent_token_file"]);
            } else {
                for key in [
                    "etcd-arg",
                    "cluster-cidr",
                    "disable",
                    "agent-token-file",
                    "secrets-encryption",
                    "kube-apiserver-arg",
                    "tls-san",
                ] {
                    assert!(c.get(key).is_none(), "{}: server-only key `{key}` in an agent's config", h["name"]);
                }
            }
        }
    }
}

#[test]
fn networkd_units_carry_the_facts() {
    if !have_nix() {
        return;
    }
    let scratch = Scratch::new("networkd");
    for inv in inventories(&scratch) {
        let facts = show_json(&inv);
        let units = lib_eval(&inv, "map (h: l.networkd h) f.hosts");
        assert!(units.as_array().unwrap().iter().all(|u| u.get("links").is_some()));
        for (h, u) in facts["hosts"].as_array().unwrap().iter().zip(units.as_array().unwrap()) {
            let name = &h["name"];
            for i in h["interfaces"].as_array().unwrap() {
                let ifname = i["name"].as_str().unwrap();
                let parent = &u["networks"][format!("30-{ifname}")];
                match i["mac"].as_str() {
                    // Found by its burned-in MAC (a VLAN device or bond shares the MAC,
                    // never the permanent one) and named as in the inventory.
                    Some(mac) => {
                        assert_eq!(parent["matchConfig"], serde_json::json!({"PermanentMACAddress": mac}), "{name}");
                        let link = &u["links"][format!("10-{ifname}")];
                        assert_eq!(link["matchConfig"]["PermanentMACAddress"], mac, "{name}");
                        assert_eq!(link["linkConfig"]["Name"], ifname, "{name}");
                    }
                    None => {
                        assert_eq!(parent["matchConfig"], serde_json::json!({"Name": ifname}), "{name}");
                        assert!(u["links"].get(format!("10-{ifname}")).is_none(), "{name}");
                    }
                }
                assert_eq!(
                    parent["linkConfig"]["MTUBytes"],
                    i["mtu"].to_string(),
                    "{name}: {ifname} MTU = max of its networks"
                );
                if i["bond_mode"].is_null() {
                    assert!(u["netdevs"].get(format!("10-{ifname}")).is_none());
                } else {
                    let bond = &u["netdevs"][format!("10-{ifname}")];
                    assert_eq!(bond["netdevConfig"]["Kind"], "bond", "{name}");
                    assert_eq!(bond["bondConfig"]["Mode"], i["bond_mode"], "{name}");
                    for m in i["members"].as_array().unwrap() {
                        let member = &u["networks"][format!("20-{}", m.as_str().unwrap())];
                        assert_eq!(member["networkConfig"]["Bond"], ifname, "{name}: {m} enslaved");
                    }
                }
                for a in i["networks"].as_array().unwrap() {
                    let cidr = format!("{}/{}", a["address"].as_str().unwrap(), a["prefix_length"]);
                    let dev = a["device"].as_str().unwrap();
                    if a["vlan"].is_null() {
                        assert_eq!(dev, ifname);
                        assert!(
                            parent["address"].as_array().unwrap().contains(&Value::from(cidr.clone())),
                            "{name}: {cidr} on {ifname}"
                        );
                    } else {
                        let nd = &u["netdevs"][format!("40-{dev}")];
                        assert_eq!(nd["netdevConfig"]["Kind"], "vlan", "{name}: {dev}");
                        assert_eq!(nd["vlanConfig"]["Id"], a["vlan"], "{name}: {dev}");
                        assert_eq!(nd["netdevConfig"]["MTUBytes"], a["mtu"].to_string(), "{name}: {dev}");
                        assert!(
                            parent["vlan"].as_array().unwrap().contains(&Value::from(dev)),
                            "{name}: {dev} on {ifname}"
                        );
                        assert_eq!(u["networks"][format!("50-{dev}")]["address"], serde_json::json!([cidr]), "{name}");
                    }
                }
            }
            // The default route and DNS sit on exactly the unit of the device that reaches
            // the gateway.
            let units = u["networks"].as_object().unwrap();
            let with_gw: Vec<&Value> = units.values().filter(|n| n.get("gateway").is_some()).collect();
            match h["default_route"].as_object() {
                Some(r) => {
                    assert_eq!(with_gw.len(), 1, "{name}: one unit carries the default route");
                    assert_eq!(with_gw[0]["gateway"], serde_json::json!([r["gateway"]]), "{name}");
                    assert_eq!(with_gw[0]["matchConfig"]["Name"], r["device"], "{name}");
                    if !h["dns"].as_array().unwrap().is_empty() {
                        assert_eq!(with_gw[0]["dns"], h["dns"], "{name}: DNS with the route");
                    }
                }
                None => assert!(with_gw.is_empty(), "{name}: no gateway, no default route"),
            }
        }
    }
}

/// Copies what the flake reads (flake.nix, nix/, hosts/) next to `inventory` as n3x.toml.
fn flake_copy(scratch: &Scratch, inventory: &Path) -> PathBuf {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
    let dir = scratch.0.join(inventory.file_stem().unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(root().join("flake.nix"), dir.join("flake.nix")).unwrap();
    copy_dir(&root().join("nix"), &dir.join("nix"));
    if root().join("hosts").is_dir() {
        copy_dir(&root().join("hosts"), &dir.join("hosts"));
    }
    std::fs::copy(inventory, dir.join("n3x.toml")).unwrap();
    dir
}

#[test]
fn flake_has_one_configuration_per_host() {
    // The flake's outputs function, called with stub inputs (nixosSystem returns its
    // arguments): no nixpkgs needed to see which modules and facts each host gets.
    if !have_nix() {
        return;
    }
    let scratch = Scratch::new("flake");
    for inv in inventories(&scratch) {
        let facts = show_json(&inv);
        let dir = flake_copy(&scratch, &inv);
        let got = nix_eval(&format!(
            r#"let
                 flake = import {};
                 stub = {{ nixosModules = {{ disko = "disko"; sops = "sops"; default = "jetpack"; }}; }};
                 out = flake.outputs {{
                   self = out; nixpkgs.lib.nixosSystem = args: args;
                   disko = stub; sops-nix = stub; nixos-anywhere = stub; jetpack-nixos = stub;
                 }};
                 hostCfg = ms: builtins.head (builtins.filter (m: builtins.isAttrs m && m ? n3x) ms);
                 usesJetpack = ms: builtins.any (m: builtins.isAttrs m && m ? imports && builtins.elem "jetpack" m.imports) ms;
               in builtins.mapAttrs (name: v: {{
                 platform = (hostCfg v.modules).nixpkgs.hostPlatform;
                 hostName = (hostCfg v.modules).n3x.hostName;
                 factsHosts = map (h: h.name) (hostCfg v.modules).n3x.facts.hosts;
                 jetpack = usesJetpack v.modules;
               }}) out.nixosConfigurations"#,
            lit(&dir.join("flake.nix"))
        ));
        let hosts = facts["hosts"].as_array().unwrap();
        let names: Vec<&Value> = hosts.iter().map(|h| &h["name"]).collect();
        assert_eq!(got.as_object().unwrap().len(), hosts.len(), "{}: one nixosConfiguration per host", inv.display());
        for h in hosts {
            let name = h["name"].as_str().unwrap();
            let c = &got[name];
            assert_eq!(c["platform"], h["arch"], "{name}");
            assert_eq!(c["hostName"], name);
            assert_eq!(c["factsHosts"].as_array().unwrap().iter().collect::<Vec<_>>(), names);
            assert_eq!(c["jetpack"], h["hardware"] == "jetson-orin-nano", "{name}: jetpack-nixos only on Jetsons");
        }
    }
}

#[test]
fn every_nix_file_parses() {
    if !have_nix() {
        return;
    }
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let name = e.file_name();
            if e.file_type().unwrap().is_dir() {
                if !matches!(name.to_str(), Some("target" | ".git" | "node_modules")) {
                    walk(&p, out);
                }
            } else if p.extension().is_some_and(|x| x == "nix") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root(), &mut files);
    for must in ["flake.nix", "nix/lib/facts.nix", "nix/lib/default.nix", "nix/tests/default.nix"] {
        assert!(files.contains(&root().join(must)), "{must} not found");
    }
    let mut failed = Vec::new();
    for f in &files {
        let out = Command::new("nix-instantiate").arg("--parse").arg(f).output().unwrap();
        if !out.status.success() {
            failed.push(format!("{}: {}", f.display(), String::from_utf8_lossy(&out.stderr)));
        }
    }
    assert!(failed.is_empty(), "Nix files that do not parse:\n{}", failed.join("\n"));
}

/// The disko layouts: `standard` is an ESP plus an ext4 root on the inventory's disk; `zfs`
/// is an ESP plus a `zroot` pool with legacy datasets and ext4 zvols for k3s' data (its
/// containerd has no zfs snapshotter) and Longhorn's data path.
#[test]
fn disko_layouts_follow_the_inventory() {
    if !have_nix() {
        return;
    }
    let lib = root().join("nix/lib");
    let eval = |args: &str| nix_eval(&format!("(import {}).disko {{ {args} }}", lit(&lib)));
    let std = eval("disk = \"/dev/nvme0n1\"; layout = \"standard\";");
    let disk = &std["disk"]["main"];
    assert_eq!(disk["device"], "/dev/nvme0n1");
    let parts = disk["content"]["partitions"].as_object().unwrap();
    assert_eq!(parts.keys().collect::<Vec<_>>(), ["ESP", "root"]);
    assert_eq!(parts["ESP"]["type"], "EF00");
    assert_eq!(parts["ESP"]["content"]["mountpoint"], "/boot");
    assert_eq!(parts["root"]["content"]["format"], "ext4");
    assert_eq!(parts["root"]["content"]["mountpoint"], "/");
    assert!(std.get("zpool").is_none());

    let zfs = eval("disk = \"/dev/sda\"; layout = \"zfs\"; longhornPath = \"/var/lib/longhorn\";");
    let parts = zfs["disk"]["main"]["content"]["partitions"].as_object().unwrap();
    assert_eq!(parts.keys().collect::<Vec<_>>(), ["ESP", "zfs"]);
    assert_eq!(parts["zfs"]["content"], serde_json::json!({"type": "zfs", "pool": "zroot"}));
    let ds = zfs["zpool"]["zroot"]["datasets"].as_object().unwrap();
    assert_eq!(ds["root"]["mountpoint"], "/");
    assert_eq!(ds["rancher"]["type"], "zfs_volume");
    assert_eq!(ds["rancher"]["content"]["mountpoint"], "/var/lib/rancher");
    assert_eq!(ds["longhorn"]["content"]["mountpoint"], "/var/lib/longhorn");

    let out = Command::new("nix-instantiate")
        .args([
            "--eval",
            "--strict",
            "-E",
            &format!("(import {}).disko {{ disk = \"/dev/sda\"; layout = \"btrfs\"; }}", lit(&lib)),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown layout `btrfs`"));
}

/// The names the NixOS test driver defines for a test script, as its linter declares them
/// (nixos/lib/testing/driver.nix: `PYFLAKES_BUILTINS` = the nodes' names, pythonized, and
/// the driver's symbols).
fn driver_builtins(nodes: &[&str]) -> String {
    let mut names: Vec<String> = nodes
        .iter()
        .map(|n| n.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect())
        .collect();
    if nodes.len() == 1 {
        names.push("machine".into());
    }
    names.extend(
        [
            "start_all",
            "test_script",
            "machines",
            "vlans",
            "driver",
            "log",
            "os",
            "create_machine",
            "subtest",
            "run_tests",
            "join_all",
            "retry",
            "serial_stdout_off",
            "serial_stdout_on",
            "polling_condition",
            "Machine",
        ]
        .map(String::from),
    );
    names.join(",")
}

/// Every VM test script, generated from nix/tests with builtins only: `script.nix` is the
/// shared part, and the store paths a build would make are stand-ins.
fn test_scripts(inventory: &Path) -> Value {
    nix_eval(&format!(
        r#"let
             root = {root};
             facts = import (root + "/nix/lib/facts.nix") {{ inventory = builtins.fromTOML (builtins.readFile {inv}); }};
             stub = name: "/nix/store/00000000000000000000000000000000-${{name}}";
             script = import (root + "/nix/tests/script.nix") {{ inherit facts; testImage = stub "n3x-test-image"; }};
             t = script // {{
               inherit facts;
               n3xLib = import (root + "/nix/lib");
               testImage = stub "n3x-test-image";
               json = name: _obj: stub "n3x-test-${{name}}.json";
               mkTest = {{ name, testScript }}: script.prelude + testScript;
             }};
             dir = root + "/nix/tests";
             helpers = [ "default.nix" "lib.nix" "script.nix" ];
             files = builtins.filter (f: builtins.match ".*\\.nix" f != null && !builtins.elem f helpers)
               (builtins.attrNames (builtins.readDir dir));
           in builtins.listToAttrs (map (f: {{ name = f; value = import (dir + "/${{f}}") {{ inherit t; }}; }}) files)"#,
        root = lit(&root()),
        inv = lit(inventory)
    ))
}

fn have_pyflakes() -> bool {
    let ok = Command::new("python3").args(["-m", "pyflakes", "--version"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        n3x_testkit::skip("pyflakes lint of the VM test scripts", "pyflakes is not installed (pip install pyflakes)");
    }
    ok
}

/// pyflakes on `script` with the driver's names declared; returns its complaints.
fn pyflakes(script: &str, nodes: &[&str], dir: &Path, name: &str) -> String {
    let f = dir.join(format!("{name}.py"));
    std::fs::write(&f, script).unwrap();
    let out = Command::new("python3")
        .args(["-m", "pyflakes"])
        .arg(&f)
        .env("PYFLAKES_BUILTINS", driver_builtins(nodes))
        .output()
        .unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The NixOS test driver lints every `testScript` with pyflakes before it runs (and fails
/// the build on any finding, unless `skipLint`, which n3x never sets). Lint them here.
#[test]
fn every_vm_test_script_passes_the_drivers_pyflakes() {
    if !have_nix() || !have_pyflakes() {
        return;
    }
    let scratch = Scratch::new("pyflakes");
    let mut linted = 0;
    for inv in inventories(&scratch) {
        let facts = show_json(&inv);
        let nodes: Vec<&str> = facts["hosts"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
        let scripts = test_scripts(&inv);
        let scripts = scripts.as_object().unwrap();
        assert!(scripts.len() >= 4, "{} test files", scripts.len());
        for (file, script) in scripts {
            let complaints = pyflakes(script.as_str().unwrap(), &nodes, &scratch.0, file);
            assert!(complaints.trim().is_empty(), "{file} for {}:\n{complaints}", inv.display());
            linted += 1;
        }
    }
    assert!(linted >= 12);
    // The harness can fail: an unused import (what broke two tests) and an unknown name.
    let bad = pyflakes("import json\nstart_all()\nnot_a_driver_name()\n", &["n100-1"], &scratch.0, "control");
    assert!(bad.contains("'json' imported but unused") && bad.contains("undefined name 'not_a_driver_name'"), "{bad}");
    assert!(
        pyflakes("start_all()\nn100_1.succeed('true')\nmachine.succeed('true')\n", &["n100-1"], &scratch.0, "ok")
            .trim()
            .is_empty()
    );
}

fn have_promtool() -> bool {
    let ok = Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        n3x_testkit::skip("alert rule tests", "promtool is not installed (apt-get install prometheus)");
    }
    ok
}

/// Writes `{ groups = alertGroups f; }` of `inv` and the unit tests beside it in `dir`; runs
/// `promtool check rules` (must pass) and returns `promtool test rules`' success and output.
fn promtool_on(inv: &Path, dir: &Path, edit: impl Fn(String) -> String) -> (bool, String) {
    std::fs::create_dir_all(dir).unwrap();
    let rules = lib_eval(inv, "{ groups = l.alertGroups f; }");
    // JSON is YAML: promtool reads the rule file as it is.
    std::fs::write(dir.join("rules.json"), edit(rules.to_string())).unwrap();
    std::fs::copy(root().join("crates/n3x/tests/data/alerts-test.yaml"), dir.join("alerts-test.yaml")).unwrap();
    let check = Command::new("promtool").args(["check", "rules", "rules.json"]).current_dir(dir).output().unwrap();
    let text = String::from_utf8_lossy(&check.stdout).into_owned() + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "promtool check rules: {text}");
    let test = Command::new("promtool").args(["test", "rules", "alerts-test.yaml"]).current_dir(dir).output().unwrap();
    let out = String::from_utf8_lossy(&test.stdout).into_owned() + &String::from_utf8_lossy(&test.stderr);
    (test.status.success(), format!("{text}{out}"))
}

/// The monitoring add-on's alert rules are valid Prometheus rules, and each one fires on
/// the series that should raise it (and not on healthy ones): promtool's unit tests in
/// `tests/data/alerts-test.yaml`. A rule changed to never fire fails them.
#[test]
fn alert_rules_pass_promtool_and_fire_on_their_series() {
    if !have_nix() || !have_promtool() {
        return;
    }
    let scratch = Scratch::new("alerts");
    let reference = root().join("n3x.toml");
    let (ok, out) = promtool_on(&reference, &scratch.0.join("ok"), |r| r);
    assert!(ok, "promtool test rules failed:\n{out}");
    assert!(out.contains("SUCCESS: 7 rules found"), "{out}");

    // The control: EtcdMemberDown made to look for a member that answers.
    let (ok, out) = promtool_on(&reference, &scratch.0.join("broken"), |r| {
        let broken = r.replace(r#"up{job=\"kube-etcd\"} == 0"#, r#"up{job=\"kube-etcd\"} == 2"#);
        assert_ne!(broken, r, "the control edit must change the rules");
        broken
    });
    assert!(!ok, "a rule that cannot fire still passed:\n{out}");
    assert!(out.contains("EtcdMemberDown"), "{out}");

    // Without Longhorn there is no Longhorn group (its metrics would never exist).
    let groups = lib_eval(&root().join("crates/n3x/tests/cases/ok-minimal.toml"), "l.alertGroups f");
    let names: Vec<&str> = groups.as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["n3x.etcd", "n3x.nodes"]);
}

/// The monitoring chart and the API server's admission configuration follow the facts:
/// etcd scraped on every server's node IP, Prometheus' volume where the inventory says,
/// Longhorn scraped only when it runs, and the Pod Security level with exactly the
/// namespaces of k3s and the enabled add-ons exempt.
#[test]
fn monitoring_and_admission_follow_the_facts() {
    if !have_nix() {
        return;
    }
    let scratch = Scratch::new("monitoring");
    let mut invs = inventories(&scratch);
    invs.push(root().join("crates/n3x/tests/cases/ok-hardened.toml"));
    invs.push(root().join("crates/n3x/tests/cases/monitoring-data-on-one-node.toml"));
    for inv in invs {
        let facts = show_json(&inv);
        let v = lib_eval(
            &inv,
            "{ chart = (l.manifests f { }).monitoring; admission = l.admissionConfig f; policy = l.defaultAuditPolicy; \
             kernel = l.kernelDefaults; firewall = map (l.firewall f) f.hosts; }",
        );
        let values: Value = serde_json::from_str(v["chart"]["spec"]["valuesContent"].as_str().unwrap()).unwrap();
        let servers: Vec<&Value> = facts["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["role"] == "server")
            .map(|h| &h["node_ip"])
            .collect();
        assert_eq!(values["kubeEtcd"]["endpoints"].as_array().unwrap().iter().collect::<Vec<_>>(), servers);
        assert_eq!(values["kubeEtcd"]["service"]["port"], 2381);
        let m = &facts["addons"]["monitoring"];
        let spec = &values["prometheus"]["prometheusSpec"];
        assert_eq!(spec["retention"], m["retention"]);
        let pvc = &spec["storageSpec"]["volumeClaimTemplate"]["spec"];
        assert_eq!(pvc["storageClassName"], m["storage"]);
        assert_eq!(pvc["resources"]["requests"]["storage"], m["size"]);
        let longhorn = facts["addons"]["longhorn"]["enable"] == true;
        assert_eq!(values["prometheus"]["additionalServiceMonitors"].as_array().unwrap().is_empty(), !longhorn);
        assert_eq!(values["grafana"]["enabled"], false, "Grafana ships a default admin password");

        let plugins = v["admission"]["plugins"].as_array().unwrap();
        let pss = &plugins.iter().find(|p| p["name"] == "PodSecurity").unwrap()["configuration"];
        assert_eq!(pss["defaults"]["enforce"], facts["security"]["pod_security"]);
        let mut want = vec!["kube-system"];
        for (on, ns) in [
            (facts["addons"]["kyverno"] == true, "kyverno"),
            (longhorn, "longhorn-system"),
            (m["enable"] == true, "monitoring"),
        ] {
            if on {
                want.push(ns);
            }
        }
        assert_eq!(pss["exemptions"]["namespaces"], serde_json::json!(want), "{}", inv.display());
        assert!(plugins.iter().any(|p| p["name"] == "EventRateLimit"));

        // The sysctls the module sets are the ones the facts name when protection is on.
        if facts["security"]["protect_kernel_defaults"] == true {
            assert_eq!(v["kernel"], facts["security"]["kernel_sysctls"]);
        }
        // Prometheus' scrapes get through the hosts' firewalls: etcd's metrics on servers,
        // node-exporter everywhere.
        for (h, fw) in facts["hosts"].as_array().unwrap().iter().zip(v["firewall"].as_array().unwrap()) {
            let tcp = fw["clusterTCP"].as_array().unwrap();
            let on = m["enable"] == true;
            assert_eq!(tcp.contains(&serde_json::json!(9100)), on, "{}: {tcp:?}", h["name"]);
            assert_eq!(tcp.contains(&serde_json::json!(2381)), on && h["role"] == "server", "{}: {tcp:?}", h["name"]);
        }
        // The default audit policy never logs a request or response body.
        for r in v["policy"]["rules"].as_array().unwrap() {
            assert!(matches!(r["level"].as_str(), Some("None" | "Metadata")), "{r}");
        }
    }
}
