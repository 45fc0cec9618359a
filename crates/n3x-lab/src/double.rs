//! Named test doubles of the NixOS side, for `n3x lab double <name>`. NixOS cannot run
//! here, so a lab host answers the deployer's commands with these: the same command lines a
//! NixOS host receives, acting on the lab instead of on systemd and Nix.
//!
//! | double | stands in for | acts on |
//! |---|---|---|
//! | `nix-env --profile P --set S` | Nix's profile switch | the host's profile links |
//! | `switch-to-configuration` | NixOS's activation | `/run/current-system`; the supervisor restarts the host's etcd with the generation's timings |
//! | `systemd-run --unit --on-active` | a transient timer | a detached process that runs the command unless stopped |
//! | `systemctl stop/is-active` | systemd | those processes; k3s's state from the supervisor |
//! | `systemctl start/stop k3s` | k3s's unit | the supervisor starts or stops the server's etcd member (a wiped one joins as new) |
//! | `k3s kubectl get nodes`, `k3s --version`, `k3s etcd-snapshot save` | k3s | the lab's status; the host's etcd member (a real snapshot, named `NAME-<node>-<time>` as k3s names it) |
//! | `k3s token rotate --new-token N` (old in `K3S_TOKEN`) | k3s's server token rotation | checks the old token is the lab's; the lab's token becomes N; servers started after with another token refuse to start |
//! | `k3s certificate rotate` | k3s's rotation (k3s stopped) | a server's etcd certificate re-issued from the CA kept on the host, valid a year |
//! | `k3s server --cluster-reset --cluster-reset-restore-path=F --token-file=T` | k3s's restore | checks the token is the lab's; the supervisor restores the member's data from `F` with `etcdctl snapshot restore` |
//! | `curl --cacert C --cert X --key K ... https://127.0.0.1:2379/...` | curl | the host's member over mutual TLS with the certificate given (refused without one) |
//! | `nixos-anywhere` (operator side) | the installer | records argv and extra files; the supervisor installs the host |
//!
//! Except `nixos-anywhere`, they run inside a lab host's root (see `hostroot`), where the
//! lab's directory is at `/n3x-lab`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::control::{self, LabStatus, Request};
use crate::generation::{self, Fault, LAB_MOUNT, SETTINGS_FILE};
use crate::hostroot::{HOST_FILE, HostFile};

/// Where transient units live on a lab host.
const UNITS: &str = "/run/n3x-units";

fn me() -> Result<HostFile, String> {
    let p = Path::new("/").join(HOST_FILE);
    let text = std::fs::read_to_string(&p).map_err(|e| format!("not inside a lab host ({}: {e})", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

fn lab_call(req: &Request, timeout: Duration) -> Result<control::Response, String> {
    control::call(Path::new(LAB_MOUNT), req, timeout).map_err(|e| e.to_string())
}

fn lab_status() -> Result<LabStatus, String> {
    control::status(Path::new(LAB_MOUNT)).map_err(|e| e.to_string())
}

/// Runs double `args[0]` with the rest; returns its exit status.
pub fn run(args: &[String]) -> i32 {
    let Some((name, rest)) = args.split_first() else {
        eprintln!("n3x lab double: name a double");
        return 2;
    };
    let result = match name.as_str() {
        "nix-env" => nix_env(rest),
        "switch-to-configuration" => switch_to_configuration(rest),
        "systemd-run" => systemd_run(rest),
        "guard-timer" => guard_timer(rest),
        "systemctl" => systemctl(rest),
        "k3s" => k3s(rest),
        "curl" => curl(rest),
        "nixos-anywhere" => nixos_anywhere(rest),
        other => Err((2, format!("no double named `{other}`"))),
    };
    match result {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("{name} (n3x lab double): {message}");
            code
        }
    }
}

type Res = Result<i32, (i32, String)>;

fn fail(message: impl Into<String>) -> (i32, String) {
    (1, message.into())
}

/// The value after `flag` (as `--flag value` or `--flag=value`).
fn opt(args: &[String], flag: &str) -> Option<String> {
    let eq = format!("{flag}=");
    args.iter()
        .enumerate()
        .find_map(|(i, a)| if a == flag { args.get(i + 1).cloned() } else { a.strip_prefix(&eq).map(str::to_owned) })
}

fn nix_env(args: &[String]) -> Res {
    let (Some(profile), Some(path)) = (opt(args, "--profile"), opt(args, "--set")) else {
        return Err(fail("only `--profile P --set PATH` is emulated"));
    };
    if !Path::new(&path).join(SETTINGS_FILE).is_file() {
        return Err(fail(format!("error: path '{path}' is not valid")));
    }
    let profile = PathBuf::from(profile);
    let dir = profile.parent().ok_or_else(|| fail("a profile needs a directory"))?;
    let base = profile.file_name().and_then(|n| n.to_str()).ok_or_else(|| fail("bad profile name"))?;
    let next = std::fs::read_dir(dir)
        .map_err(|e| fail(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix(&format!("{base}-"))?.strip_suffix("-link")?.parse::<u32>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let link = format!("{base}-{next}-link");
    generation::replace_link(&dir.join(&link), Path::new(&path)).map_err(|e| fail(e.to_string()))?;
    generation::replace_link(&profile, Path::new(&link)).map_err(|e| fail(e.to_string()))?;
    Ok(0)
}

fn switch_to_configuration(args: &[String]) -> Res {
    let (Some(generation), Some(action)) = (args.first(), args.get(1)) else {
        return Err((2, "usage: switch-to-configuration {switch|boot|test|dry-activate}".into()));
    };
    let settings = generation::read_settings(Path::new(generation)).map_err(|e| fail(e.to_string()))?;
    let host = me().map_err(fail)?;
    match action.as_str() {
        "boot" => {
            eprintln!("updating the boot default (the lab boots nothing; it takes effect at the next activation)");
            return Ok(0);
        }
        "dry-activate" => return Ok(0),
        "switch" | "test" => {}
        other => return Err((2, format!("unknown action `{other}`"))),
    }
    eprintln!("activating the configuration...");
    if settings.fault == Fault::Hang {
        // Never finishes and never applies: the deployer's timeout and the guard decide.
        std::thread::sleep(Duration::from_secs(3600));
        return Err(fail("hung"));
    }
    generation::replace_link(Path::new("/run/current-system"), Path::new(generation))
        .map_err(|e| fail(e.to_string()))?;
    eprintln!("restarting the following units: k3s.service");
    lab_call(
        &Request::Activate {
            host: host.host.clone(),
            generation: generation.clone(),
            settings: Box::new(settings.clone()),
        },
        Duration::from_secs(60),
    )
    .map_err(fail)?;
    if settings.fault == Fault::FailActivation {
        eprintln!("warning: the following units failed: k3s.service");
        eprintln!("warning: error(s) occurred while switching to the new configuration");
        return Ok(4);
    }
    Ok(0)
}

fn unit_file(name: &str) -> PathBuf {
    Path::new(UNITS).join(name)
}

fn systemd_run(args: &[String]) -> Res {
    let unit = opt(args, "--unit").ok_or_else(|| fail("only `--unit=NAME --on-active=SECS CMD...` is emulated"))?;
    let secs: u64 = opt(args, "--on-active")
        .and_then(|v| v.trim_end_matches('s').trim().parse().ok())
        .ok_or_else(|| fail("`--on-active=SECONDSs` is required"))?;
    // The command starts at the first argument that is not an option of systemd-run.
    let cmd: Vec<String> = args.iter().skip_while(|a| a.starts_with("--")).cloned().collect();
    if cmd.is_empty() {
        return Err(fail("no command to run"));
    }
    let timer = unit_file(&format!("{unit}.timer"));
    if pid_in(&timer).is_some_and(alive) {
        return Err(fail(format!("Failed to start transient timer unit: Unit {unit}.timer already exists.")));
    }
    std::fs::create_dir_all(UNITS).map_err(|e| fail(format!("{UNITS}: {e}")))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(unit_file(&format!("{unit}.log")))
        .map_err(|e| fail(e.to_string()))?;
    let err = log.try_clone().map_err(|e| fail(e.to_string()))?;
    let exe = std::env::current_exe().map_err(|e| fail(e.to_string()))?;
    let _ = std::fs::remove_file(&timer);
    use std::os::unix::process::CommandExt;
    let child = std::process::Command::new(exe)
        .args(["lab", "double", "guard-timer", &unit, &secs.to_string(), "--"])
        .args(&cmd)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    // The timer exists once it says so (it writes its own pid).
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_in(&timer) != Some(child.id() as i32) {
        if Instant::now() > deadline {
            return Err(fail("the timer did not start"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("Running timer as unit: {unit}.timer");
    eprintln!("Will run service as unit: {unit}.service");
    Ok(0)
}

fn pid_in(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
}

/// The detached process behind a transient timer: waits, unless stopped, then runs.
fn guard_timer(args: &[String]) -> Res {
    let (Some(unit), Some(secs)) = (args.first(), args.get(1).and_then(|s| s.parse::<u64>().ok())) else {
        return Err((2, "usage: guard-timer UNIT SECS -- CMD...".into()));
    };
    let cmd: Vec<&String> = args.iter().skip(2).skip_while(|a| *a == "--").collect();
    let me = std::process::id() as i32;
    let timer = unit_file(&format!("{unit}.timer"));
    n3x_fs::write(&timer, format!("{me}\n").as_bytes(), Some(0o644)).map_err(|e| fail(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if pid_in(&timer) != Some(me) {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(50).min(deadline.saturating_duration_since(Instant::now())));
    }
    if pid_in(&timer) != Some(me) {
        return Ok(0);
    }
    let service = unit_file(&format!("{unit}.service"));
    let _ = std::fs::remove_file(&timer);
    n3x_fs::write(&service, format!("{me}\n").as_bytes(), Some(0o644)).map_err(|e| fail(e.to_string()))?;
    eprintln!("{unit}.timer elapsed after {secs} s: running {cmd:?}");
    let status = cmd
        .split_first()
        .map(|(p, rest)| std::process::Command::new(p).args(rest).status())
        .transpose()
        .map_err(|e| fail(e.to_string()))?;
    let _ = std::fs::remove_file(&service);
    Ok(status.and_then(|s| s.code()).unwrap_or(1))
}

fn systemctl(args: &[String]) -> Res {
    let (Some(verb), units) = (args.first(), args.get(1..).unwrap_or_default()) else {
        return Err((2, "usage: systemctl VERB UNIT...".into()));
    };
    let k3s_unit = |u: &String| u == "k3s" || u == "k3s.service";
    match verb.as_str() {
        "start" | "stop" if units.len() == 1 && k3s_unit(&units[0]) => {
            let me = me().map_err(fail)?;
            lab_call(&Request::K3s { host: me.host, run: verb == "start" }, Duration::from_secs(120))
                .map_err(|e| fail(format!("Job for k3s.service failed: {e}")))?;
            Ok(0)
        }
        "stop" => {
            for u in units {
                let f = unit_file(u);
                if let Some(pid) = pid_in(&f) {
                    let _ = std::fs::remove_file(&f);
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
                }
            }
            Ok(0)
        }
        "is-active" => {
            let u = units.first().ok_or_else(|| (2, "name a unit".to_string()))?;
            let active = match u.as_str() {
                "k3s" | "k3s.service" => {
                    let me = me().map_err(fail)?;
                    let s = lab_status().map_err(fail)?;
                    s.hosts.iter().find(|h| h.name == me.host).is_some_and(|h| h.k3s_active)
                }
                unit => pid_in(&unit_file(unit)).is_some_and(alive),
            };
            println!("{}", if active { "active" } else { "inactive" });
            Ok(if active { 0 } else { 3 })
        }
        other => Err(fail(format!("`systemctl {other}` is not emulated"))),
    }
}

const API_DOWN: &str =
    "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?";

fn k3s(args: &[String]) -> Res {
    let me = me().map_err(fail)?;
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["--version"] | ["-v"] => {
            let current =
                generation::read_settings(Path::new("/run/current-system")).map_err(|e| fail(e.to_string()))?;
            println!("k3s version {}.0+k3s1 (n3x-lab)", current.k3s_version);
            println!("go version go1.22.0");
            Ok(0)
        }
        ["kubectl", "get", "nodes", "-o", "json"] => {
            let s = lab_status().map_err(fail)?;
            let mine = s.hosts.iter().find(|h| h.name == me.host);
            let api_up = me.server
                && mine.is_some_and(|h| h.k3s_active && h.member.as_ref().is_some_and(|m| m.status.is_some()));
            if !api_up {
                return Err(fail(API_DOWN));
            }
            let items: Vec<serde_json::Value> = s
                .hosts
                .iter()
                .filter(|h| h.role != "operator" && h.installed)
                .map(|h| {
                    let ready = h.k3s_active && (h.role != "server" || h.member.as_ref().is_some_and(|m| m.status.is_some()));
                    json!({
                        "kind": "Node",
                        "metadata": { "name": h.name },
                        "status": { "conditions": [ { "type": "Ready", "status": if ready { "True" } else { "False" } } ] }
                    })
                })
                .collect();
            println!("{}", json!({ "apiVersion": "v1", "kind": "List", "items": items }));
            Ok(0)
        }
        ["etcd-snapshot", "save", "--name", name] => {
            let dir = Path::new(n3x_deploy::commands::SNAPSHOT_DIR);
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], n3x_etcd::CLIENT_PORT));
            // k3s's own etcd client: the server's certificate, as k3s keeps it on the host.
            let files = crate::tls::MemberFiles::in_dir(&Path::new("/").join(crate::tls::ETCD_TLS));
            let t = files.server.transport().map_err(|e| fail(e.to_string()))?;
            let r = crate::http::post_json(&t, addr, n3x_etcd::SNAPSHOT, "{}", Duration::from_secs(120))
                .map_err(|e| fail(format!("etcd: {e}")))?;
            if r.status != 200 {
                return Err(fail(format!("etcd answered {}", r.status)));
            }
            let bytes = n3x_etcd::parse_snapshot_stream(&r.body).map_err(|e| fail(e.0))?;
            let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let file = format!("{name}-{}-{secs}", me.host);
            let path = dir.join(&file);
            n3x_fs::write(&path, &bytes, Some(0o600)).map_err(|e| fail(e.to_string()))?;
            eprintln!("Snapshot {file} saved.");
            Ok(0)
        }
        ["token", "rotate", rest @ ..] => {
            // k3s's rotation: the old token from K3S_TOKEN (or --token), the new one from
            // --new-token; it must be run on a server whose k3s runs.
            let flag = |name: &str| {
                rest.iter()
                    .position(|a| *a == name)
                    .and_then(|i| rest.get(i + 1))
                    .map(|v| v.to_string())
                    .or_else(|| rest.iter().find_map(|a| a.strip_prefix(&format!("{name}=")).map(str::to_owned)))
            };
            let old = flag("--token")
                .or_else(|| std::env::var("K3S_TOKEN").ok())
                .ok_or_else(|| fail("--token or K3S_TOKEN is required"))?;
            let new = flag("--new-token").ok_or_else(|| fail("only `k3s token rotate --new-token NEW` is emulated"))?;
            if !me.server {
                return Err(fail("k3s token rotate runs on a server"));
            }
            let lab = std::fs::read_to_string(Path::new(LAB_MOUNT).join(crate::hostroot::LAB_TOKEN))
                .map_err(|e| fail(format!("the lab's token: {e}")))?;
            let secret = n3x_deploy::token::secret_of;
            if secret(&old) != secret(&lab) {
                return Err(fail("token rotate failed: the given token is not the server token"));
            }
            lab_call(&Request::RotateToken { host: me.host.clone(), new }, Duration::from_secs(30)).map_err(fail)?;
            eprintln!("Token rotated, restart k3s nodes with new token");
            Ok(0)
        }
        ["certificate", "rotate"] => {
            // As on a k3s server: with k3s stopped, new certificates from the CA kept on the
            // host; k3s (here its etcd member) loads them when it starts.
            if !me.server {
                eprintln!("certificates rotated (a lab agent holds no kubelet certificate)");
                return Ok(0);
            }
            let s = lab_status().map_err(fail)?;
            if s.hosts.iter().any(|h| h.name == me.host && h.k3s_active) {
                return Err(fail("k3s is running: stop it first (`systemctl stop k3s`)"));
            }
            let ip = me.cluster_ip.ok_or_else(|| fail("the lab's host record has no cluster address"))?;
            let dir = Path::new("/").join(crate::tls::ETCD_TLS);
            crate::tls::renew_member(&dir, &me.host, ip, crate::tls::MEMBER_DAYS).map_err(|e| fail(e.to_string()))?;
            eprintln!("certificates rotated for etcd (valid {} days)", crate::tls::MEMBER_DAYS);
            Ok(0)
        }
        ["server", rest @ ..] if rest.contains(&"--cluster-reset") => {
            let path = rest.iter().find_map(|a| a.strip_prefix("--cluster-reset-restore-path="));
            let token_file = rest.iter().find_map(|a| a.strip_prefix("--token-file="));
            let (Some(path), Some(token_file)) = (path, token_file) else {
                return Err(fail("only `--cluster-reset --cluster-reset-restore-path=F --token-file=T` is emulated"));
            };
            if rest.iter().any(|a| a.starts_with("--token=") || *a == "--token") {
                return Err(fail("a token in an argv is refused here: pass --token-file"));
            }
            let given = std::fs::read_to_string(token_file).map_err(|e| fail(format!("{token_file}: {e}")))?;
            let lab = std::fs::read_to_string(Path::new(LAB_MOUNT).join(crate::hostroot::LAB_TOKEN))
                .map_err(|e| fail(format!("the lab's token: {e}")))?;
            if given.trim() != lab.trim() {
                // What k3s says when the token cannot decrypt the snapshot's bootstrap data.
                return Err(fail(
                    "starting kubernetes: preparing server: bootstrap data already found and encrypted with different token",
                ));
            }
            lab_call(
                &Request::ClusterReset { host: me.host.clone(), snapshot: path.to_owned() },
                Duration::from_secs(120),
            )
            .map_err(fail)?;
            eprintln!(
                "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. Backup and delete ${{datadir}}/server/db on each peer etcd server and rejoin the nodes"
            );
            Ok(0)
        }
        _ => Err(fail(format!("`k3s {}` is not emulated", args.join(" ")))),
    }
}

/// curl to the host's member on its loopback, over mutual TLS with the certificate, key
/// and CA the command line names, as curl would (a call without them is refused by etcd).
fn curl(args: &[String]) -> Res {
    let url = args
        .iter()
        .find(|a| a.starts_with("https://") || a.starts_with("http://"))
        .ok_or_else(|| (2, "no URL".to_string()))?;
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    if authority != format!("127.0.0.1:{}", n3x_etcd::CLIENT_PORT) {
        return Err(fail(format!("only the host's own etcd member (127.0.0.1:{}) is emulated", n3x_etcd::CLIENT_PORT)));
    }
    let secs: u64 = opt(args, "--max-time").and_then(|v| v.parse().ok()).unwrap_or(30);
    let mut body = String::new();
    match opt(args, "--data-binary") {
        Some(v) if v == "@-" => {
            std::io::stdin().read_to_string(&mut body).map_err(|e| fail(e.to_string()))?;
        }
        Some(v) => body = v,
        None => {}
    }
    // curl's own TLS options: the member demands a client certificate from its CA.
    let t = match (opt(args, "--cacert"), opt(args, "--cert"), opt(args, "--key")) {
        (Some(ca), Some(cert), Some(key)) => {
            crate::http::Transport::from_files(Path::new(&ca), Path::new(&cert), Path::new(&key))
                .map_err(|e| (58, format!("curl: (58) unable to set client certificate: {e}")))?
        }
        _ => crate::http::Transport::Plain,
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], n3x_etcd::CLIENT_PORT));
    match crate::http::post_json(&t, addr, &path, &body, Duration::from_secs(secs)) {
        Ok(r) => {
            print!("{}", r.body);
            Ok(0)
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock => {
            Err((28, format!("curl: (28) Operation timed out after {secs} s")))
        }
        Err(e) => Err((7, format!("curl: (7) Failed to connect to 127.0.0.1 port {}: {e}", n3x_etcd::CLIENT_PORT))),
    }
}

/// What the nixos-anywhere double records for each install.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct InstallRecord {
    pub host: String,
    pub argv: Vec<String>,
    /// The extra-files tree: (path, mode).
    pub extra_files: Vec<(String, u32)>,
}

/// Where a lab keeps the nixos-anywhere double's records.
pub fn install_record(lab_dir: &Path, host: &str) -> PathBuf {
    lab_dir.join("installs").join(format!("{host}.json"))
}

/// The lab whose host has address `ip`: (lab directory, host name).
fn lab_of(ip: &str) -> Option<(PathBuf, String)> {
    for e in std::fs::read_dir(crate::plan::STATE_ROOT).ok()?.flatten() {
        let Ok(o) = crate::supervisor::LabOptions::read(&e.path()) else { continue };
        if let Some(h) = o.plan.inventory_hosts().find(|h| h.cluster_ip.to_string() == ip) {
            return Some((e.path(), h.name.clone()));
        }
    }
    None
}

fn nixos_anywhere(args: &[String]) -> Res {
    let flake = opt(args, "--flake").ok_or_else(|| (2, "--flake FLAKE#HOST is required".to_string()))?;
    let target = opt(args, "--target-host").ok_or_else(|| (2, "--target-host is required".to_string()))?;
    let extra = opt(args, "--extra-files").map(PathBuf::from);
    let ip = n3x_remote::host_part(&target);
    let (lab_dir, host) = lab_of(&ip).ok_or_else(|| fail(format!("no running lab has a host at {ip}")))?;
    let attr = flake.rsplit_once('#').map(|(_, a)| a).unwrap_or_default();
    if attr != host {
        return Err(fail(format!("`{flake}` installs `{attr}`, but {ip} is `{host}` in the lab")));
    }
    let tree = match &extra {
        Some(d) => n3x_deploy::install::tree(d).map_err(|e| fail(format!("{}: {e}", d.display())))?,
        None => Vec::new(),
    };
    let mut argv = vec!["nixos-anywhere".to_string()];
    argv.extend(args.iter().cloned());
    let record = InstallRecord { host: host.clone(), argv, extra_files: tree };
    let path = install_record(&lab_dir, &host);
    let _ = std::fs::create_dir_all(path.parent().unwrap_or(&lab_dir));
    n3x_fs::write(&path, serde_json::to_string_pretty(&record).unwrap_or_default().as_bytes(), Some(0o644))
        .map_err(|e| fail(e.to_string()))?;
    eprintln!("### n3x lab double of nixos-anywhere: installing {host} ({ip}) ###");
    let key = extra.map(|d| d.join(n3x_deploy::install::HOST_KEY));
    if let Some(k) = &key {
        let mode = std::fs::metadata(k).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        if mode & 0o077 != 0 {
            return Err(fail(format!("{} is readable by others (mode {mode:o}); sshd would refuse it", k.display())));
        }
    }
    control::call(&lab_dir, &Request::Install { host: host.clone(), host_key: key }, Duration::from_secs(120))
        .map_err(|e| fail(e.to_string()))?;
    eprintln!("### installation of {host} finished; it rebooted into NixOS ###");
    Ok(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn options_in_both_spellings() {
        let a: Vec<String> = ["--unit=x", "--on-active", "90s", "sh"].map(String::from).to_vec();
        assert_eq!(opt(&a, "--unit").as_deref(), Some("x"));
        assert_eq!(opt(&a, "--on-active").as_deref(), Some("90s"));
        assert_eq!(opt(&a, "--collect"), None);
    }

    #[test]
    fn unknown_doubles_and_usage_are_exit_two() {
        assert_eq!(run(&["nope".to_string()]), 2);
        assert_eq!(run(&[]), 2);
        assert_eq!(run(&["switch-to-configuration".to_string()]), 2);
    }

    #[test]
    fn nix_env_adds_a_profile_generation_and_refuses_unknown_paths() {
        let d = tempfile::tempdir().unwrap();
        let store = d.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        let s = |hb| generation::Settings {
            host: "h".into(),
            etcd: crate::plan::EtcdTimings { heartbeat_ms: hb, election_ms: 1000 },
            k3s_version: "v1.31".into(),
            fault: Fault::None,
            token_sha256: None,
        };
        let dir_of = |p: &str| store.join(p.rsplit('/').next().unwrap()).display().to_string();
        let a = dir_of(&generation::write(&store, &s(100)).unwrap());
        let b = dir_of(&generation::write(&store, &s(110)).unwrap());
        let profiles = d.path().join("profiles");
        std::fs::create_dir_all(&profiles).unwrap();
        let profile = profiles.join("system").display().to_string();
        let set = |p: &str| nix_env(&["--profile".into(), profile.clone(), "--set".into(), p.into()]);
        assert_eq!(set(&a), Ok(0));
        assert_eq!(set(&b), Ok(0));
        assert_eq!(std::fs::read_link(profiles.join("system")).unwrap(), Path::new("system-2-link"));
        assert_eq!(std::fs::read_link(profiles.join("system-1-link")).unwrap(), Path::new(&a));
        assert_eq!(std::fs::canonicalize(profiles.join("system")).unwrap(), Path::new(&b));
        // A path that is not a generation (a missing closure) is refused, nothing changes.
        let e = set("/nix/store/missing").unwrap_err();
        assert!(e.1.contains("is not valid"), "{e:?}");
        assert_eq!(std::fs::read_link(profiles.join("system")).unwrap(), Path::new("system-2-link"));
        assert!(nix_env(&["--list-generations".into()]).is_err());
    }

    #[test]
    fn settings_round_trip_through_a_generation() {
        let s = generation::Settings {
            host: "h".into(),
            etcd: crate::plan::EtcdTimings { heartbeat_ms: 100, election_ms: 1000 },
            k3s_version: "v1.31".into(),
            fault: Fault::Hang,
            token_sha256: Some("ab".repeat(32)),
        };
        let d = tempfile::tempdir().unwrap();
        let p = generation::write(d.path(), &s).unwrap();
        let dir = d.path().join(p.rsplit('/').next().unwrap());
        assert_eq!(generation::read_settings(&dir).unwrap().fault, Fault::Hang);
    }
}
