//! `n3x lab ...`: calls the `n3x-lab` library and renders what it returns. Deciding (the
//! preflight, which lab is meant, the session, the logs) happens in the library.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use n3x_lab::control::{self, LabStatus, Request};
use n3x_lab::lifecycle;
use n3x_lab::plan::{self, STATE_ROOT};
use n3x_lab::session::{self, SessionEvent, Verdict};
use n3x_lab::system::{Linux, System};
use n3x_lab::target::{self, Inventory, Target};
use n3x_lab::{LabError, LabPlan, preflight};

use crate::cli::{ExecArgs, ImpairArgs, LabCommand, LogsArgs, PartitionArgs, RunArgs, TargetArgs, UpArgs};
use crate::config::{self, Impairment};
use crate::error::Error;
use crate::exit;
use crate::inventory::{self, Purpose};
use crate::progress::Progress;
use crate::render::print_stdout;

type Outcome = Result<u8, Error>;

fn root() -> PathBuf {
    PathBuf::from(STATE_ROOT)
}

pub fn run(cmd: LabCommand) -> Outcome {
    match cmd {
        LabCommand::Up(a) => up(&a),
        LabCommand::Status(t) => status(&t),
        LabCommand::Exec(a) => exec(&a),
        LabCommand::Logs(a) => logs(&a),
        LabCommand::Impair(a) => impair(&a),
        LabCommand::Partition(a) => partition(&a),
        LabCommand::Heal(t) => {
            let (_, dir) = running(&t)?;
            control::act(&dir, &Request::Heal, Duration::from_secs(30))?;
            eprintln!("healed every partition");
            Ok(exit::OK)
        }
        LabCommand::Down(t) => down(&t),
        LabCommand::Run(a) => run_session(&a),
        LabCommand::Report(a) => {
            let html = n3x_lab::report::rerender(&a.dir)?;
            println!("{}", html.display());
            Ok(exit::OK)
        }
        LabCommand::HostInit { lab_dir, host } => {
            // Returns only if the host could not become sshd; its stderr is the host's log.
            let e = n3x_lab::hostroot::exec_init(&lab_dir, &host);
            eprintln!("host-init {host}: {e}");
            Ok(exit::LAB)
        }
        LabCommand::Double { args } => Ok(u8::try_from(n3x_lab::double::run(&args)).unwrap_or(1)),
        LabCommand::Supervise { dir } => match n3x_lab::supervisor::supervise(&dir) {
            Ok(()) => Ok(exit::OK),
            Err(e) => {
                // The supervisor's stderr is its log; `up` reports the error itself.
                eprintln!("supervisor: {e}");
                Ok(exit::LAB)
            }
        },
    }
}

fn prepare(a: &UpArgs) -> Result<preflight::Prepared, Error> {
    let loaded = inventory::resolve(a.inventory.file.as_deref(), Purpose::Lab)?;
    Ok(preflight::prepare(&Linux, &root(), &loaded.resolved, &loaded.source.name, &config::up_request(a))?)
}

fn exe() -> Result<PathBuf, Error> {
    std::env::current_exe().map_err(|e| Error::Usage {
        message: format!("cannot find the n3x binary: {e}"),
        help: "run n3x by its path".into(),
    })
}

/// On Ctrl-C (or SIGTERM) while `up` or `run` works, remove the lab and exit 128+signal:
/// an interrupted command leaves nothing behind. The supervisor runs in its own process
/// group, so the signal reaches only this process, which tears the lab down itself.
fn teardown_on_interrupt(plan: &LabPlan) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else { return };
    let plan = plan.clone();
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            eprintln!("\ninterrupted: removing lab `{}`", plan.cluster);
            let r = lifecycle::down(&Linux, &root(), &plan.cluster, Some(&plan));
            for e in &r.errors {
                eprintln!("error: {e}\n  help: {}", e.help());
            }
            std::process::exit(exit::interrupted(sig));
        }
    });
}

fn up(a: &UpArgs) -> Outcome {
    let p = prepare(a)?;
    let mut progress = Progress::new();
    teardown_on_interrupt(&p.opts.plan);
    progress.step(&format!("fabric: {} ({})", p.opts.fabric.as_str(), p.fabric_reason));
    let r = lifecycle::up(&Linux, &root(), &exe()?, &p.opts, &p.inventory, &mut |m| progress.step(m)).map_err(|f| {
        progress.done("");
        Error::LabUp(f)
    })?;
    let c = &p.opts.plan.cluster;
    progress.done(&format!(
        "lab `{c}` is up: {} hosts, {} fabric, quorum in {:.0} ms, ready in {:.0} ms\n  next: `n3x lab status`, `n3x lab exec <host> -- <cmd>`, `n3x lab down` (or add `--cluster {c}` when several labs are up)",
        p.opts.plan.hosts.len(),
        p.opts.fabric.as_str(),
        r.quorum_ms,
        r.bringup_ms
    ));
    Ok(exit::OK)
}

fn run_session(a: &RunArgs) -> Outcome {
    let p = prepare(&a.up)?;
    let opts = config::session(a);
    let mut progress = Progress::new();
    teardown_on_interrupt(&p.opts.plan);
    progress.step(&format!("fabric: {} ({})", p.opts.fabric.as_str(), p.fabric_reason));
    let cluster = p.opts.plan.cluster.clone();
    let outcome = session::run(&Linux, &root(), &exe()?, &p, &opts, &mut |e| match e {
        SessionEvent::Building(m) => progress.step(m),
        SessionEvent::Up(r) => {
            progress.done(&format!("lab `{cluster}` up in {:.0} ms (quorum {:.0} ms)", r.bringup_ms, r.quorum_ms))
        }
        SessionEvent::ScenarioStarted { index, total, name } => {
            progress.step(&format!("scenario {}/{total}: {name}", index + 1))
        }
        SessionEvent::ScenarioStep { name, message } => progress.step(&format!("{name}: {message}")),
        SessionEvent::ScenarioDone(r) => progress.done(&format!(
            "{} {} ({:.1} s){}",
            if r.passed { "pass" } else { "FAIL" },
            r.name,
            r.duration_ms / 1000.0,
            r.failures.first().map(|f| format!(": {f}")).unwrap_or_default()
        )),
    });
    // The spinner goes before the report is printed.
    drop(progress);
    let outcome = outcome.map_err(Error::LabUp)?;
    if let Some(d) = &outcome.teardown {
        for e in &d.errors {
            eprintln!("error: removing the lab: {e}\n  help: {}", e.help());
        }
    }
    match &outcome.report_error {
        Some(e) => eprintln!(
            "error: cannot write the report to {}: {e}\n  help: check that the directory is writable, or pass `--report DIR`",
            opts.report_dir.display()
        ),
        None => eprintln!(
            "report: {}, {}, {}",
            opts.report_dir.join("report.html").display(),
            opts.report_dir.join("report.json").display(),
            opts.report_dir.join("junit.xml").display()
        ),
    }
    eprint!("\n{}", n3x_lab::report::summary(&outcome.report));
    Ok(match outcome.verdict() {
        Verdict::Passed => exit::OK,
        Verdict::ScenarioFailed => exit::SCENARIO_FAILED,
        Verdict::ReportNotWritten => exit::USAGE_OR_IO,
        Verdict::TeardownFailed => {
            eprintln!("  note: part of the lab is left; `n3x lab down --cluster {cluster}` removes it");
            exit::LAB
        }
    })
}

/// The lab a command is about (see `n3x_lab::target`).
fn target(t: &TargetArgs) -> Result<Target, Error> {
    let inventory = match &t.inventory.file {
        Some(f) => {
            let loaded = inventory::resolve(Some(f), Purpose::Lab)?;
            Inventory::Given(plan::plan(&loaded.resolved, None))
        }
        // The default inventory only helps to name the lab; its errors are not this command's.
        None => Inventory::Default(
            inventory::load(None)
                .ok()
                .and_then(|s| n3x_model::analyze(&s.text).resolve().ok())
                .map(|r| plan::plan(&r, None)),
        ),
    };
    let mut tg = target::choose(t.cluster.as_deref(), inventory, &lifecycle::labs(&root()))?;
    // The inventory at hand may describe another cluster: the lab knows its own plan.
    if tg.plan.is_none() {
        tg.plan = lifecycle::recorded_plan(&root(), &tg.cluster);
    }
    Ok(tg)
}

/// The target lab, which must be running.
pub(crate) fn running(t: &TargetArgs) -> Result<(Target, PathBuf), Error> {
    let tg = target(t)?;
    let dir = target::running(&root(), &tg.cluster)?;
    Ok((tg, dir))
}

fn status(t: &TargetArgs) -> Outcome {
    let (_, dir) = running(t)?;
    let s = control::status(&dir)?;
    if t.json {
        let json = serde_json::to_string_pretty(&s)
            .map_err(|e| LabError::Encode { what: "the status".into(), message: e.to_string() })?;
        print_stdout(&(json + "\n"));
    } else {
        print_stdout(&status_table(&s));
    }
    Ok(exit::OK)
}

fn status_table(s: &LabStatus) -> String {
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
    o
}

fn exec(a: &ExecArgs) -> Outcome {
    use std::os::unix::process::CommandExt;
    let (tg, _) = running(&a.target)?;
    let ns = plan::host_ns(&tg.cluster, &a.host);
    if !Linux.netns_exists(&ns) {
        return Err(LabError::UnknownHost { host: a.host.clone(), cluster: tg.cluster }.into());
    }
    let err = std::process::Command::new("ip").args(["netns", "exec", &ns]).args(&a.command).exec();
    Err(Error::Usage {
        message: format!("cannot run `{}` in `{ns}`: {err}", a.command.join(" ")),
        help: "check the command name".into(),
    })
}

fn logs(a: &LogsArgs) -> Outcome {
    let (tg, dir) = running(&a.target)?;
    print_stdout(&n3x_lab::report::host_log(&dir, &tg.cluster, tg.plan.as_ref(), &a.host, a.lines)?);
    Ok(exit::OK)
}

fn impair(a: &ImpairArgs) -> Outcome {
    let (profile_name, profile) = match config::impairment(a)? {
        Impairment::Named(name) => {
            let loaded = inventory::resolve(a.target.inventory.file.as_deref(), Purpose::Lab)?;
            let p = preflight::profile(&loaded.resolved, &name)?;
            (name, p)
        }
        Impairment::Custom(p) => ("custom".to_owned(), p),
    };
    let (_, dir) = running(&a.target)?;
    let msg = format!("{} now use profile `{profile_name}`", a.hosts.join(", "));
    let req = Request::Impair { hosts: a.hosts.clone(), profile_name, profile };
    control::act(&dir, &req, Duration::from_secs(30))?;
    eprintln!("{msg}");
    Ok(exit::OK)
}

fn partition(a: &PartitionArgs) -> Outcome {
    let (tg, dir) = running(&a.target)?;
    let from = if a.from.is_empty() {
        match &tg.plan {
            Some(p) => p.hosts.iter().map(|h| h.name.clone()).filter(|n| !a.hosts.contains(n)).collect(),
            None => return Err(LabError::PartitionFromWhom { hosts: a.hosts.join(",") }.into()),
        }
    } else {
        a.from.clone()
    };
    control::act(&dir, &Request::Partition { a: a.hosts.clone(), b: from.clone() }, Duration::from_secs(30))?;
    eprintln!("cut {} from {}", a.hosts.join(", "), from.join(", "));
    Ok(exit::OK)
}

fn down(t: &TargetArgs) -> Outcome {
    preflight::require_root()?;
    let tg = match target(t) {
        Err(Error::Lab(LabError::NoLab)) => {
            eprintln!("no lab is up; nothing to remove");
            return Ok(exit::OK);
        }
        other => other?,
    };
    let started = Instant::now();
    let r = lifecycle::down(&Linux, &root(), &tg.cluster, tg.plan.as_ref());
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let cluster = &tg.cluster;
    for e in &r.errors {
        eprintln!("error: {e}\n  help: {}", e.help());
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
    for (key, value) in &r.restored {
        eprintln!("restored {} to {value}", key.replace('/', "."));
    }
    if r.ok() {
        Ok(exit::OK)
    } else {
        eprintln!(
            "  note: the lab record stays in {}; run `n3x lab down --cluster {cluster}` again",
            root().join(cluster).display()
        );
        Ok(exit::LAB)
    }
}
