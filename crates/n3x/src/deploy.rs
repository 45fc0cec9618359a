//! `n3x deploy` and `n3x install`: pick the transport and the builder (the real `ssh` and
//! `nix`, or the running lab's), call `n3x-deploy`, render its report.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use n3x_deploy::install::{ExtraFiles, InstallOptions, Installed};
use n3x_deploy::plan::{Class, Goal};
use n3x_deploy::rollout::{self, Options, Report};
use n3x_deploy::{Builder, ClusterSpec, DeployError, Event, NixBuilder};
use n3x_lab::rehearse::{self, Rehearsal};
use n3x_remote::{Remote, Ssh, SshOptions};

use crate::cli::{DeployArgs, GoalArg, InstallArgs, InventoryArg, TargetArgs};
use crate::error::Error;
use crate::exit;
use crate::inventory::{self, Purpose};
use crate::progress::Progress;
use crate::render::print_stdout;

/// Where a deploy, a status or a backup goes: the machines, or a running lab.
pub(crate) struct Target {
    pub spec: ClusterSpec,
    pub remote: Box<dyn Remote>,
    pub lab: Option<Rehearsal>,
}

pub(crate) fn target(
    inv: &InventoryArg,
    lab: bool,
    cluster: Option<&String>,
    purpose: Purpose,
) -> Result<(Target, n3x_model::Resolved), Error> {
    let loaded = inventory::resolve(inv.file.as_deref(), purpose)?;
    let r = loaded.resolved;
    if !lab {
        let t = Target {
            spec: ClusterSpec::from_resolved(&r),
            remote: Box::new(Ssh::new(SshOptions::default())),
            lab: None,
        };
        return Ok((t, r));
    }
    let args =
        TargetArgs { inventory: InventoryArg { file: inv.file.clone() }, cluster: cluster.cloned(), json: false };
    let (_, dir) = crate::lab::running(&args)?;
    let rehearsal = Rehearsal::open(&dir, Some(&r))?;
    let t = Target { spec: rehearsal.spec.clone(), remote: Box::new(rehearsal.ssh.clone()), lab: Some(rehearsal) };
    Ok((t, r))
}

fn usage(message: String, help: &str) -> Error {
    Error::Usage { message, help: help.into() }
}

fn owner() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{user}@{}", host.trim())
}

/// Ctrl-C or SIGTERM: stop before the next host (the host in progress finishes its step;
/// its guard covers it), leave the journal resumable.
pub(crate) fn cancel_on_signal() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    flag
}

fn progress_events(p: &Mutex<Progress>) -> impl FnMut(Event) + Send + '_ {
    move |e| {
        let mut p = p.lock().unwrap_or_else(|x| x.into_inner());
        match e {
            Event::Step { host: Some(h), message, .. } => p.step(&format!("{h}: {message}")),
            Event::Step { host: None, message, .. } => p.step(&message),
            Event::Host { host, outcome } => p.done(&format!("{host}: {outcome}")),
        }
    }
}

/// The k3s server token the new generations carry (the secrets file next to the
/// inventory, decrypted with the admin key), for the deploy to rotate into the cluster
/// when `n3x secrets rotate` changed it. None when there is no secrets file; None with a
/// note when it cannot be decrypted here (the deploy then cannot rotate it).
fn server_token(inv: &InventoryArg, resolved: &n3x_model::Resolved) -> Option<n3x_deploy::token::Token> {
    let path = inv.file.clone().unwrap_or_else(|| std::path::PathBuf::from("n3x.toml"));
    if path == std::path::Path::new("-") || !path.is_file() {
        return None;
    }
    let key = n3x_secrets::locations::admin_key_file(&|k| std::env::var_os(k));
    match n3x_secrets::repo::server_token(&path, &resolved.secrets.file, key) {
        Ok(t) => t.map(|t| n3x_deploy::token::Token::new(t.as_str())),
        Err(e) => {
            eprintln!(
                "note: the server token in {} was not compared with the cluster's ({e}); after `n3x secrets rotate`, \
                 deploy with the admin key (SOPS_AGE_KEY_FILE) so the deploy rotates it into the cluster first",
                path.parent().unwrap_or(std::path::Path::new(".")).join(&resolved.secrets.file).display()
            );
            None
        }
    }
}

pub fn deploy(a: &DeployArgs) -> Result<u8, Error> {
    let (t, resolved) = target(&a.inventory, a.lab, a.cluster.as_ref(), Purpose::Deploy)?;
    let journal = match (&a.journal, &t.lab) {
        (Some(j), _) => j.clone(),
        (None, Some(lab)) => lab.journal(),
        (None, None) => n3x_deploy::journal::default_path(&|k| std::env::var_os(k), &t.spec.name).ok_or_else(|| {
            usage(
                "cannot tell where the deploy journal goes: neither $XDG_STATE_HOME nor $HOME is set".into(),
                "pass `--journal FILE`",
            )
        })?,
    };
    let mut opts = Options::new(journal);
    opts.goal = match a.goal {
        GoalArg::Switch => Goal::Switch,
        GoalArg::Boot => Goal::Boot,
    };
    opts.confirm_timeout = Duration::from_secs(a.confirm_timeout);
    opts.command_timeout = Duration::from_secs(a.command_timeout);
    opts.agents_at_once = a.agents_at_once as usize;
    opts.resume = a.resume;
    opts.plan_only = a.plan;
    opts.owner = owner();
    opts.cancel = cancel_on_signal();
    if !a.plan && !a.unlock {
        opts.server_token = server_token(&a.inventory, &resolved);
    }
    if a.unlock {
        let held = rollout::unlock(&t.spec, t.remote.as_ref(), &opts).map_err(Error::Deploy)?;
        eprintln!(
            "released the deploy lock{}; the journal {} is marked abandoned",
            held.map(|o| format!(" (held by {o})")).unwrap_or_default(),
            opts.journal.display()
        );
        return Ok(exit::OK);
    }
    let builder: Box<dyn Builder> = match &t.lab {
        Some(lab) => {
            let faults = rehearse::parse_faults(&a.lab_fault, &t.spec)?;
            Box::new(lab.builder(lab.settings_with_token(
                Some(&resolved),
                &faults,
                opts.server_token.as_ref().map(|t| t.expose()),
            )))
        }
        None => Box::new(NixBuilder { nix: "nix".into(), flake: a.flake.clone(), ssh_opts: Vec::new() }),
    };
    let progress = Mutex::new(Progress::new());
    let mut events = progress_events(&progress);
    let result = rollout::deploy(&t.spec, &a.hosts, t.remote.as_ref(), builder.as_ref(), &opts, &mut events);
    drop(events);
    // The spinner goes before the report is printed.
    drop(progress);
    match result {
        Ok(report) => {
            render(&report, a.json, None);
            Ok(exit::OK)
        }
        Err(halt) => {
            if let Some(r) = &halt.report {
                render(r, a.json, Some(&halt.error));
            }
            Err(Error::Deploy(halt.error))
        }
    }
}

fn short(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn render(r: &Report, json: bool, error: Option<&DeployError>) {
    if json {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        if let Some(e) = error {
            v["error"] = serde_json::json!({ "message": e.to_string(), "help": e.help(), "outcome": format!("{:?}", e.outcome()) });
        }
        print_stdout(&format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()));
        return;
    }
    let mut out = String::new();
    let planning = r.id.is_none();
    out.push_str(&format!(
        "{} of `{}` ({}, {} host(s) to update):\n",
        if planning { "Plan" } else { "Deploy" },
        r.cluster,
        r.plan.goal.as_str(),
        r.plan.updates()
    ));
    let w = r.hosts.iter().map(|h| h.host.len()).max().unwrap_or(4).max(4);
    out.push_str(&format!(
        "  {:<3} {:<w$}  {:<6}  {:<9}  {:<12}  generation\n",
        "#", "HOST", "ROLE", "CHANGE", "STATE"
    ));
    for h in &r.hosts {
        let batch = r
            .plan
            .hosts
            .iter()
            .find(|p| p.host == h.host)
            .and_then(|p| p.batch)
            .map_or("-".into(), |b| (b + 1).to_string());
        let change = match h.class {
            Class::Update => "update",
            Class::Unchanged => "unchanged",
        };
        let generation = if h.class == Class::Update {
            format!("{} -> {}", short(&h.from), short(&h.to))
        } else {
            short(&h.to).to_owned()
        };
        out.push_str(&format!(
            "  {:<3} {:<w$}  {:<6}  {:<9}  {:<12}  {generation}\n",
            batch,
            h.host,
            if h.server { "server" } else { "agent" },
            change,
            h.state,
        ));
        if let Some(d) = &h.detail {
            out.push_str(&format!("      {:<w$}  {d}\n", ""));
        }
    }
    if let Some((from, to)) = &r.plan.transfer {
        out.push_str(&format!("etcd leadership: {from} hands over to {to} before its turn\n"));
    }
    for t in &r.transfers {
        out.push_str(&format!("moved etcd leadership {} -> {} in {} ms\n", t.from, t.to, t.ms));
    }
    if let Some(k) = &r.plan.k3s_minor {
        out.push_str(&format!("k3s {} -> {}: one-way; an etcd snapshot is taken first\n", k.from, k.to));
    }
    if let Some(s) = &r.snapshot {
        out.push_str(&format!("etcd snapshot: {s}\n"));
    }
    if let Some(j) = &r.journal {
        out.push_str(&format!("journal: {} ({} ms)\n", j.display(), r.duration_ms));
    }
    print_stdout(&out);
}

pub fn install(a: &InstallArgs) -> Result<u8, Error> {
    let (t, resolved) = target(&a.inventory, a.lab, a.cluster.as_ref(), Purpose::Deploy)?;
    let cluster = resolved.cluster.name.clone();
    let extra_files: ExtraFiles =
        Arc::new(move |h: &str| n3x_secrets::locations::extra_files(&|k| std::env::var_os(k), &cluster, h));
    let mut opts = match (&t.lab, &a.known_hosts) {
        (Some(lab), _) => lab.install_options(a.flake.clone(), extra_files),
        (None, Some(k)) => InstallOptions::new(a.flake.clone(), extra_files, k.clone()),
        (None, None) => {
            let k = n3x_deploy::install::default_known_hosts(&|k| std::env::var_os(k)).ok_or_else(|| {
                usage("$HOME is not set, so there is no ~/.ssh/known_hosts".into(), "pass `--known-hosts FILE`")
            })?;
            InstallOptions::new(a.flake.clone(), extra_files, k)
        }
    };
    if let Some(k) = &a.known_hosts {
        opts.known_hosts = k.clone();
    }
    opts.dry_run = a.dry_run;
    opts.host_timeout = Duration::from_secs(a.timeout);
    let progress = Mutex::new(Progress::new());
    let mut events = progress_events(&progress);
    let done = n3x_deploy::install::install(&t.spec, &a.hosts, t.remote.as_ref(), &opts, &mut events);
    drop(events);
    // The spinner goes before the report is printed.
    drop(progress);
    let done = done.map_err(Error::Deploy)?;
    render_install(&done, a.json, a.dry_run, &opts);
    Ok(exit::OK)
}

fn render_install(done: &[Installed], json: bool, dry_run: bool, opts: &InstallOptions) {
    if json {
        let v: Vec<serde_json::Value> = done
            .iter()
            .map(|i| {
                let tree = (opts.extra_files)(&i.host).and_then(|d| n3x_deploy::install::tree(&d).ok()).unwrap_or_default();
                serde_json::json!({ "host": i.host, "argv": i.argv, "extra_files": tree, "removed_member": i.removed_member, "seconds": i.seconds })
            })
            .collect();
        print_stdout(&format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()));
        return;
    }
    let mut out = String::new();
    for i in done {
        out.push_str(&format!("{}: {}\n", i.host, n3x_remote::shell_line(&i.argv)));
        if dry_run {
            if let Some(d) = (opts.extra_files)(&i.host) {
                for (p, mode) in n3x_deploy::install::tree(&d).unwrap_or_default() {
                    out.push_str(&format!("    {mode:04o} {p}\n"));
                }
            }
        } else {
            out.push_str(&format!(
                "    installed in {:.1} s{}; host key pinned in {}\n",
                i.seconds,
                i.removed_member.as_ref().map(|m| format!(", stale etcd member {m} removed first")).unwrap_or_default(),
                opts.known_hosts.display()
            ));
        }
    }
    print_stdout(&out);
}
