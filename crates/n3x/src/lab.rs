//! `n3x lab ...`: argument handling and output for the lab. The lab itself lives in the
//! `n3x-lab` crate; this module validates, decides, renders and maps errors to exit codes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use n3x_lab::fabric::{self, FabricChoice};
use n3x_lab::lifecycle;
use n3x_lab::plan::{self, LabPlan, STATE_ROOT};
use n3x_lab::report::{LabInfo, Report};
use n3x_lab::scenario::{self, Ctx};
use n3x_lab::supervisor::LabOptions;
use n3x_lab::{LabError, control};
use n3x_model::model::Profile;

use crate::cli::InventoryArg;
use crate::exit;

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build the lab and return; a supervisor process keeps it running.
    ///
    /// Each host becomes a network namespace (n3x-<cluster>-<host>), each network an L2
    /// segment, each server runs a real etcd member with the inventory's timings, and each
    /// agent runs a probe writing through any server. Returns once etcd has quorum and every
    /// agent's first write is acknowledged.
    #[command(
        after_help = "Examples:\n  sudo n3x lab up\n  sudo n3x lab up -f site.toml --fabric userspace --profile constrained"
    )]
    Up(UpArgs),
    /// Show the running lab: hosts, etcd members, the leader.
    Status(TargetArgs),
    /// Run a command inside a lab host's network namespace.
    #[command(after_help = "Example:\n  sudo n3x lab exec n100-1 -- ip -br addr")]
    Exec(ExecArgs),
    /// Print a host's log: etcd's for servers, the probe's recent writes for agents.
    Logs(LogsArgs),
    /// Change the impairment of hosts' links (what each host sends) in the running lab.
    #[command(
        after_help = "Examples:\n  sudo n3x lab impair jetson-1 --profile lossy\n  sudo n3x lab impair n100-2 --delay-ms 20 --loss-pct 1"
    )]
    Impair(ImpairArgs),
    /// Cut hosts off from others (both directions, every network) until `heal`.
    #[command(
        after_help = "Examples:\n  sudo n3x lab partition n100-1                 # from every other host\n  sudo n3x lab partition n100-1 --from n100-2,n100-3"
    )]
    Partition(PartitionArgs),
    /// Remove every partition (impairments stay).
    Heal(TargetArgs),
    /// Remove everything the lab created. Idempotent; works after a crash.
    Down(TargetArgs),
    /// Up, run scenarios, write the report, down. Exit 0 only if every scenario passed.
    ///
    /// Scenarios: formation, server-loss, quorum-loss, partition (the default set) and
    /// profiles. Writes report.json and junit.xml into --report.
    #[command(after_help = "Examples:\n  sudo n3x lab run\n  sudo n3x lab run --scenario partition --report out/")]
    Run(RunArgs),
    /// Internal: the lab's supervisor process.
    #[command(hide = true)]
    Supervise {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FabricArg {
    /// kernel when it can do every impairment asked for, else userspace
    Auto,
    /// bridges + veth; netem (if present), tbf, nftables
    Kernel,
    /// TAP devices + the n3x switch: seeded delay, jitter, loss, rate
    Userspace,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    #[arg(long, value_enum, default_value_t = FabricArg::Auto)]
    pub fabric: FabricArg,
    /// Apply this profile to every host's links, instead of the inventory's.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// The etcd binary (default: `etcd` on PATH).
    #[arg(long, value_name = "PATH")]
    pub etcd: Option<PathBuf>,
    /// Milliseconds between two writes of one agent's probe.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub probe_interval_ms: u64,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// The lab's cluster name, instead of reading it from the inventory.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Print JSON (status).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    pub host: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub host: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Lines to print from the end.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: usize,
}

#[derive(Debug, Args)]
pub struct ImpairArgs {
    /// Hosts whose links to impair.
    #[arg(required = true)]
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// A built-in or inventory profile.
    #[arg(long, conflicts_with_all = ["delay_ms", "jitter_ms", "loss_pct", "rate_mbit"])]
    pub profile: Option<String>,
    #[arg(long)]
    pub delay_ms: Option<f64>,
    #[arg(long)]
    pub jitter_ms: Option<f64>,
    #[arg(long)]
    pub loss_pct: Option<f64>,
    #[arg(long)]
    pub rate_mbit: Option<f64>,
}

#[derive(Debug, Args)]
pub struct PartitionArgs {
    /// Hosts to cut off, comma-separated.
    #[arg(value_delimiter = ',', required = true)]
    pub hosts: Vec<String>,
    /// Cut them from these hosts only (default: every other host).
    #[arg(long, value_delimiter = ',')]
    pub from: Vec<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub up: UpArgs,
    /// A scenario to run (repeat for several); default: formation, server-loss, quorum-loss, partition.
    #[arg(long = "scenario", value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(scenario::BUILTIN))]
    pub scenarios: Vec<String>,
    /// Directory for report.json and junit.xml.
    #[arg(long, default_value = "n3x-lab-report", value_name = "DIR")]
    pub report: PathBuf,
    /// Leave the lab up after the scenarios (tear it down later with `n3x lab down`).
    #[arg(long)]
    pub keep: bool,
}

fn root() -> PathBuf {
    PathBuf::from(STATE_ROOT)
}

/// Prints an error with its fix and returns the exit code it maps to.
fn lab_fail(e: &LabError) -> u8 {
    eprintln!("error: {e}\n  help: {}", e.help());
    match e {
        _ if e.is_environment() => exit::ENVIRONMENT,
        LabError::Collision { .. } => exit::ENVIRONMENT,
        LabError::Io { .. } => exit::USAGE_OR_IO,
        _ => exit::LAB,
    }
}

/// Progress lines on stderr: one rewritten line on a terminal, plain lines otherwise.
struct Progress {
    tty: bool,
    start: Instant,
}

impl Progress {
    fn new() -> Self {
        Progress { tty: std::io::stderr().is_terminal(), start: Instant::now() }
    }

    fn step(&mut self, msg: &str) {
        let t = self.start.elapsed().as_secs_f64();
        if self.tty {
            eprint!("\r\x1b[K[{t:6.2}s] {msg}");
        } else {
            eprintln!("[{t:6.2}s] {msg}");
        }
    }

    fn done(&mut self, msg: &str) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
        eprintln!("{msg}");
    }
}

/// Reads, checks and resolves the inventory; on errors prints them and returns exit 1.
fn resolve(inv: &InventoryArg) -> Result<(n3x_model::Resolved, String), u8> {
    let src = crate::load(inv.file.as_deref())?;
    let analysis = n3x_model::analyze(&src.text);
    match analysis.resolve() {
        Ok(r) => Ok((r, src.name)),
        Err(_) => {
            eprint!("{}", crate::render::human(&src.name, &src.text, &analysis, crate::render::color_stderr()));
            Err(crate::fail(
                &format!("cannot build a lab from `{}`: it has errors", src.name),
                "fix them (`n3x check` lists them); nothing was created",
                exit::INVENTORY,
            ))
        }
    }
}

fn profile_override(r: &n3x_model::Resolved, name: Option<&str>) -> Result<Option<(String, Profile)>, u8> {
    let Some(name) = name else { return Ok(None) };
    match plan::find_profile(r, name) {
        Some(p) => Ok(Some((name.to_owned(), p))),
        None => Err(crate::fail(
            &format!("lab profile `{name}` does not exist"),
            &format!("use one of {}", r.lab.profiles.keys().cloned().collect::<Vec<_>>().join(", ")),
            exit::USAGE_OR_IO,
        )),
    }
}

/// Everything `up` and `run` decide before touching the machine.
struct Prepared {
    opts: LabOptions,
    fabric_reason: String,
    inventory: String,
}

fn prepare(a: &UpArgs) -> Result<Prepared, u8> {
    let (r, inventory) = resolve(&a.inventory)?;
    let over = profile_override(&r, a.profile.as_deref())?;
    let plan = plan::plan(&r, over.as_ref().map(|(n, p)| (n.as_str(), *p)));
    let env = || -> Result<(LabOptions, String), LabError> {
        n3x_lab::sys::require_root()?;
        let etcd = n3x_lab::sys::find_binary(
            "etcd",
            a.etcd.as_deref(),
            "install it (`apt-get install etcd-server`) or pass `--etcd /path/to/etcd`",
        )?;
        for bin in ["ip", "nft", "tc"] {
            n3x_lab::sys::find_binary(
                bin,
                None,
                "install iproute2 and nftables (`apt-get install iproute2 nftables`)",
            )?;
        }
        let caps = fabric::probe_caps();
        let choice = match a.fabric {
            FabricArg::Auto => FabricChoice::Auto,
            FabricArg::Kernel => FabricChoice::Kernel,
            FabricArg::Userspace => FabricChoice::Userspace,
        };
        let (kind, reason) = fabric::choose(choice, plan.needs(), caps)?;
        Ok((
            LabOptions {
                fabric: kind,
                netem: caps.netem,
                etcd,
                probe_interval_ms: a.probe_interval_ms.max(10),
                plan: plan.clone(),
            },
            reason,
        ))
    };
    match env() {
        Ok((opts, fabric_reason)) => Ok(Prepared { opts, fabric_reason, inventory }),
        Err(e) => Err(lab_fail(&e)),
    }
}

fn exe() -> Result<PathBuf, u8> {
    std::env::current_exe()
        .map_err(|e| crate::fail(&format!("cannot find the n3x binary: {e}"), "run n3x by its path", exit::USAGE_OR_IO))
}

/// On Ctrl-C (or SIGTERM) while `up` or `run` works, remove the lab and exit 130: an
/// interrupted command leaves nothing behind. The supervisor runs in its own process
/// group, so the signal reaches only this process, which tears the lab down itself.
fn teardown_on_interrupt(plan: &LabPlan) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else { return };
    let plan = plan.clone();
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            eprintln!("\ninterrupted: removing lab `{}`", plan.cluster);
            let r = lifecycle::down(&root(), &plan.cluster, Some(&plan));
            for e in &r.errors {
                eprintln!("error: {e}");
            }
            std::process::exit(128 + sig);
        }
    });
}

fn bring_up(p: &Prepared, progress: &mut Progress) -> Result<lifecycle::UpReport, u8> {
    let exe = exe()?;
    teardown_on_interrupt(&p.opts.plan);
    progress.step(&format!("fabric: {} ({})", p.opts.fabric.as_str(), p.fabric_reason));
    lifecycle::up(&root(), &exe, &p.opts, &p.inventory, &mut |m| progress.step(m)).map_err(|e| {
        progress.done("");
        lab_fail(&e)
    })
}

pub fn run(cmd: LabCommand) -> u8 {
    match cmd {
        LabCommand::Up(a) => up(&a),
        LabCommand::Status(t) => status(&t),
        LabCommand::Exec(a) => exec(&a),
        LabCommand::Logs(a) => logs(&a),
        LabCommand::Impair(a) => impair(&a),
        LabCommand::Partition(a) => partition(&a),
        LabCommand::Heal(t) => simple(&t, control::Request::Heal, "healed every partition"),
        LabCommand::Down(t) => down(&t),
        LabCommand::Run(a) => run_scenarios(&a),
        LabCommand::Supervise { dir } => match n3x_lab::supervisor::supervise(&dir) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("supervisor: {e}");
                exit::LAB
            }
        },
    }
}

fn up(a: &UpArgs) -> u8 {
    let p = match prepare(a) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut progress = Progress::new();
    match bring_up(&p, &mut progress) {
        Ok(r) => {
            progress.done(&format!(
                "lab `{}` is up: {} hosts, {} fabric, quorum in {:.0} ms, ready in {:.0} ms\n  next: `n3x lab status`, `n3x lab exec <host> -- <cmd>`, `n3x lab down`",
                p.opts.plan.cluster,
                p.opts.plan.hosts.len(),
                p.opts.fabric.as_str(),
                r.quorum_ms,
                r.bringup_ms
            ));
            exit::OK
        }
        Err(code) => code,
    }
}

/// The lab a command is about: `--cluster`, else the inventory's cluster name, else the
/// only lab that is up.
fn target(t: &TargetArgs) -> Result<(String, Option<LabPlan>), u8> {
    if let Some(c) = &t.cluster {
        return Ok((c.clone(), None));
    }
    let src = crate::load(t.inventory.file.as_deref())?;
    let analysis = n3x_model::analyze(&src.text);
    if let Ok(r) = analysis.resolve() {
        return Ok((r.cluster.name.clone(), Some(plan::plan(&r, None))));
    }
    let labs = lifecycle::labs(&root());
    match labs.as_slice() {
        [one] => Ok((one.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned(), None)),
        _ => Err(crate::fail(
            &format!("`{}` has errors, so it does not say which lab", src.name),
            "name the lab with `--cluster NAME`",
            exit::INVENTORY,
        )),
    }
}

fn lab_dir(t: &TargetArgs) -> Result<(String, PathBuf), u8> {
    let (cluster, _) = target(t)?;
    let dir = root().join(&cluster);
    if !dir.join(control::SOCKET).exists() {
        return Err(lab_fail(&LabError::NotUp { cluster }));
    }
    Ok((cluster, dir))
}

fn status(t: &TargetArgs) -> u8 {
    let (_, dir) = match lab_dir(t) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let s = match scenario::status(&dir) {
        Ok(s) => s,
        Err(e) => return lab_fail(&e),
    };
    if t.json {
        crate::print_stdout(&(serde_json::to_string_pretty(&s).unwrap_or_default() + "\n"));
        return exit::OK;
    }
    let mut o = format!(
        "lab `{}`: {} fabric, up {:.1} s (ready after {:.0} ms), leader {}{}\n",
        s.cluster,
        s.fabric,
        s.now_ms / 1000.0,
        s.bringup_ms,
        s.leader.as_deref().unwrap_or("none agreed"),
        if s.partitioned { ", partitioned" } else { "" }
    );
    let w = s.hosts.iter().map(|h| h.name.len()).max().unwrap_or(4).max(4);
    let aw = s.hosts.iter().map(|h| h.addresses.join(", ").len()).max().unwrap_or(9).max(9);
    o.push_str(&format!("  {:w$}  {:6}  {:11}  {:aw$}  etcd\n", "HOST", "ROLE", "PROFILE", "ADDRESSES"));
    for h in &s.hosts {
        let etcd = match &h.member {
            None => "-".to_owned(),
            Some(m) => match (m.running, m.status) {
                (true, Some(st)) => {
                    format!("rev {} term {}{}", st.revision, st.raft_term, if st.is_leader() { " leader" } else { "" })
                }
                (true, None) => format!("unreachable ({})", m.error.as_deref().unwrap_or("?")),
                (false, _) => "stopped".into(),
            },
        };
        o.push_str(&format!(
            "  {:w$}  {:6}  {:11}  {:aw$}  {etcd}\n",
            h.name,
            h.role,
            h.profile,
            h.addresses.join(", ")
        ));
    }
    crate::print_stdout(&o);
    exit::OK
}

fn exec(a: &ExecArgs) -> u8 {
    use std::os::unix::process::CommandExt;
    let (cluster, _) = match lab_dir(&a.target) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let ns = plan::host_ns(&cluster, &a.host);
    if !n3x_lab::sys::netns_exists(&ns) {
        return crate::fail(
            &format!("lab `{cluster}` has no host `{}`", a.host),
            "`n3x lab status` lists the hosts",
            exit::LAB,
        );
    }
    let err = std::process::Command::new("ip").args(["netns", "exec", &ns]).args(&a.command).exec();
    crate::fail(
        &format!("cannot run `{}` in `{ns}`: {err}", a.command.join(" ")),
        "check the command name",
        exit::USAGE_OR_IO,
    )
}

fn logs(a: &LogsArgs) -> u8 {
    let (cluster, dir) = match lab_dir(&a.target) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let plan = target(&a.target).ok().and_then(|(_, p)| p);
    let server_name =
        |i: usize| plan.as_ref().and_then(|p| p.hosts.get(i)).map_or(format!("host #{i}"), |h| h.name.clone());
    let log = dir.join("logs").join(format!("{}.log", a.host));
    if let Ok(text) = std::fs::read_to_string(&log) {
        let lines: Vec<&str> = text.lines().collect();
        crate::print_stdout(&(lines[lines.len().saturating_sub(a.lines)..].join("\n") + "\n"));
        return exit::OK;
    }
    // Agents have no process: their log is the probe's write record.
    match control::call(&dir, &control::Request::Writes { since: 0 }, std::time::Duration::from_secs(10)) {
        Ok(control::Response::Writes { writes }) => {
            let mine: Vec<_> = writes.iter().filter(|w| w.agent == a.host).collect();
            if mine.is_empty() {
                return crate::fail(
                    &format!("lab `{cluster}` has no log for `{}`", a.host),
                    "`n3x lab status` lists the hosts",
                    exit::LAB,
                );
            }
            let mut o = String::new();
            for w in &mine[mine.len().saturating_sub(a.lines)..] {
                let outcome = w
                    .acked_ms
                    .map_or("no ack".to_owned(), |t| format!("acked in {:.1} ms, rev {}", t - w.sent_ms, w.revision));
                o.push_str(&format!(
                    "{:>10.1} ms  write {} via {}: {outcome}\n",
                    w.sent_ms,
                    w.key(),
                    server_name(w.server)
                ));
            }
            crate::print_stdout(&o);
            exit::OK
        }
        Ok(_) => exit::LAB,
        Err(e) => lab_fail(&e),
    }
}

fn simple(t: &TargetArgs, req: control::Request, done: &str) -> u8 {
    let (_, dir) = match lab_dir(t) {
        Ok(x) => x,
        Err(c) => return c,
    };
    match control::call(&dir, &req, std::time::Duration::from_secs(30)) {
        Ok(_) => {
            eprintln!("{done}");
            exit::OK
        }
        Err(e) => lab_fail(&e),
    }
}

fn impair(a: &ImpairArgs) -> u8 {
    let (name, profile) = match &a.profile {
        Some(p) => {
            let (r, _) = match resolve(&a.target.inventory) {
                Ok(r) => r,
                Err(c) => return c,
            };
            match profile_override(&r, Some(p)) {
                Ok(Some(x)) => x,
                Ok(None) | Err(_) => return exit::USAGE_OR_IO,
            }
        }
        None => {
            let p =
                Profile { delay_ms: a.delay_ms, jitter_ms: a.jitter_ms, loss_pct: a.loss_pct, rate_mbit: a.rate_mbit };
            if p.loss_pct.is_some_and(|l| !(0.0..=100.0).contains(&l)) || p.rate_mbit.is_some_and(|r| r <= 0.0) {
                return crate::fail(
                    "--loss-pct must be 0 to 100 and --rate-mbit positive",
                    "fix the value",
                    exit::USAGE_OR_IO,
                );
            }
            ("custom".to_owned(), p)
        }
    };
    let msg = format!("{} now use profile `{name}`", a.hosts.join(", "));
    simple(&a.target, control::Request::Impair { hosts: a.hosts.clone(), profile_name: name, profile }, &msg)
}

fn partition(a: &PartitionArgs) -> u8 {
    let (_, plan) = match target(&a.target) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let from = if a.from.is_empty() {
        match plan {
            Some(p) => p.hosts.iter().map(|h| h.name.clone()).filter(|n| !a.hosts.contains(n)).collect(),
            None => {
                return crate::fail(
                    "without an inventory, say which hosts to cut from",
                    "add `--from host,host`",
                    exit::USAGE_OR_IO,
                );
            }
        }
    } else {
        a.from.clone()
    };
    let msg = format!("cut {} from {}", a.hosts.join(", "), from.join(", "));
    simple(&a.target, control::Request::Partition { a: a.hosts.clone(), b: from }, &msg)
}

fn down(t: &TargetArgs) -> u8 {
    if let Err(e) = n3x_lab::sys::require_root() {
        return lab_fail(&e);
    }
    let (cluster, plan) = match target(t) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let started = Instant::now();
    let r = lifecycle::down(&root(), &cluster, plan.as_ref());
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    for e in &r.errors {
        eprintln!("error: {e}");
    }
    if !r.found_anything {
        eprintln!("no lab of `{cluster}` was up; nothing to remove");
    } else {
        eprintln!(
            "lab `{cluster}` removed in {ms:.0} ms: {} namespace(s), {} process(es)",
            r.namespaces.len(),
            r.killed.len()
        );
    }
    if r.errors.is_empty() { exit::OK } else { exit::LAB }
}

fn run_scenarios(a: &RunArgs) -> u8 {
    let p = match prepare(&a.up) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let names: Vec<String> = if a.scenarios.is_empty() {
        scenario::DEFAULT.iter().map(|s| s.to_string()).collect()
    } else {
        a.scenarios.clone()
    };
    let mut progress = Progress::new();
    let up = match bring_up(&p, &mut progress) {
        Ok(r) => r,
        Err(code) => return code,
    };
    progress
        .done(&format!("lab `{}` up in {:.0} ms (quorum {:.0} ms)", p.opts.plan.cluster, up.bringup_ms, up.quorum_ms));
    let dir = root().join(&p.opts.plan.cluster);
    let mut results = Vec::new();
    for (i, name) in names.iter().enumerate() {
        progress.step(&format!("scenario {}/{}: {name}", i + 1, names.len()));
        let mut on_step = |m: &str| progress.step(&format!("{name}: {m}"));
        let mut ctx = Ctx {
            dir: &dir,
            plan: &p.opts.plan,
            bringup_ms: up.bringup_ms,
            quorum_ms: up.quorum_ms,
            probe_interval_ms: p.opts.probe_interval_ms as f64,
            probe_timeout_ms: n3x_lab::supervisor::probe_timeout_ms(&p.opts.plan) as f64,
            on_step: &mut on_step,
        };
        let r = scenario::run(name, &mut ctx);
        progress.done(&format!(
            "{} {name} ({:.1} s){}",
            if r.passed { "pass" } else { "FAIL" },
            r.duration_ms / 1000.0,
            r.failures.first().map(|f| format!(": {f}")).unwrap_or_default()
        ));
        results.push(r);
    }
    let teardown_ms = if a.keep {
        None
    } else {
        let t = Instant::now();
        let d = lifecycle::down(&root(), &p.opts.plan.cluster, Some(&p.opts.plan));
        for e in &d.errors {
            eprintln!("teardown error: {e}");
        }
        Some(t.elapsed().as_secs_f64() * 1000.0)
    };
    let passed = results.iter().all(|r| r.passed);
    let report = Report {
        lab: LabInfo {
            cluster: p.opts.plan.cluster.clone(),
            inventory: p.inventory.clone(),
            hosts: p.opts.plan.hosts.len(),
            servers: p.opts.plan.servers.len(),
            networks: p.opts.plan.networks.len(),
            fabric: p.opts.fabric.as_str().into(),
            fabric_reason: p.fabric_reason.clone(),
            seed: p.opts.plan.seed,
            bringup_ms: up.bringup_ms,
            quorum_ms: up.quorum_ms,
            teardown_ms,
        },
        scenarios: results,
        passed,
    };
    if let Err(e) = n3x_lab::report::write(&a.report, &report) {
        eprintln!("error: cannot write the report to {}: {e}", a.report.display());
    }
    eprintln!("report: {}, {}", a.report.join("report.json").display(), a.report.join("junit.xml").display());
    eprint!("\n{}", n3x_lab::report::summary(&report));
    if passed { exit::OK } else { exit::SCENARIO_FAILED }
}
