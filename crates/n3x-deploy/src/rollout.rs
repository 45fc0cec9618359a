//! `n3x deploy`: build, preflight, lock, plan, push, then activate one batch at a time
//! with a guard on each host, gates over fresh connections, and confirm or roll back and
//! halt. Every step goes to the journal first; `--resume` continues from it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use n3x_remote::{Remote, RemoteError};
use serde::Serialize;

use crate::error::DeployError;
use crate::journal::{self, Finish, HostState, Journal, JournalHost, Record};
use crate::nix::Builder;
use crate::observe::{Ask, ClusterView};
use crate::plan::{self, Class, Goal, Observed, Plan, PlannedHost, Strategy};
use crate::{ClusterSpec, Event, Events, HostSpec, Phase, commands, gate};

#[derive(Clone, Debug)]
pub struct Options {
    pub goal: Goal,
    pub strategy: Strategy,
    /// Move etcd leadership off the leader before its turn. Always on for users; the lab
    /// turns it off once to measure what it saves.
    pub transfer_leadership: bool,
    /// How long the guard waits for the confirmation before it rolls the host back.
    pub confirm_timeout: Duration,
    /// How long one remote command may take (a switch gets the time left before the guard).
    pub command_timeout: Duration,
    /// How often the gates are checked while a host settles.
    pub gate_interval: Duration,
    pub agents_at_once: usize,
    pub journal: PathBuf,
    pub resume: bool,
    /// Stop after the plan: build and observe, change nothing.
    pub plan_only: bool,
    /// Set on SIGINT/SIGTERM: stop before the next host, resumable.
    pub cancel: Arc<AtomicBool>,
    /// Who deploys, recorded in the lock (`user@machine`).
    pub owner: String,
    /// The k3s server token the new generations carry (decrypted from the secrets file);
    /// when it differs from the cluster's, `k3s token rotate` runs on the leader before any
    /// host is switched (see [`crate::token`]). None: the token is not checked.
    pub server_token: Option<crate::token::Token>,
}

impl Options {
    pub fn new(journal: PathBuf) -> Options {
        Options {
            goal: Goal::Switch,
            strategy: Strategy::Rolling,
            transfer_leadership: true,
            confirm_timeout: Duration::from_secs(120),
            command_timeout: Duration::from_secs(30),
            gate_interval: Duration::from_millis(500),
            agents_at_once: 1,
            journal,
            resume: false,
            plan_only: false,
            cancel: Arc::new(AtomicBool::new(false)),
            owner: String::new(),
            server_token: None,
        }
    }

    /// The gates must pass this long before the guard fires, or the host goes back.
    fn confirm_margin(&self) -> Duration {
        (self.confirm_timeout / 10).max(Duration::from_secs(2)).min(self.confirm_timeout / 2)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct HostReport {
    pub host: String,
    pub server: bool,
    pub class: Class,
    /// Where the host ended: `confirmed`, `unchanged`, `rolled back`, `planned` (untouched), ...
    pub state: String,
    pub from: String,
    pub to: String,
    pub detail: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Transfer {
    pub from: String,
    pub to: String,
    pub ms: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub cluster: String,
    /// The deploy's id (none for `--plan`).
    pub id: Option<String>,
    pub journal: Option<PathBuf>,
    pub plan: Plan,
    pub hosts: Vec<HostReport>,
    pub transfers: Vec<Transfer>,
    pub snapshot: Option<String>,
    pub duration_ms: u64,
}

/// A deploy that stopped: why, and what happened to each host until then.
#[derive(Debug)]
pub struct Halt {
    pub error: DeployError,
    pub report: Option<Box<Report>>,
}

impl From<DeployError> for Halt {
    fn from(error: DeployError) -> Self {
        Halt { error, report: None }
    }
}

struct Run<'a, 'e> {
    spec: &'a ClusterSpec,
    ask: Ask<'a>,
    builder: &'a dyn Builder,
    opts: &'a Options,
    journal: Mutex<Journal>,
    events: Mutex<Events<'e>>,
    transfers: Mutex<Vec<Transfer>>,
    snapshot: Option<String>,
    started: Instant,
}

fn step(events: &Mutex<Events<'_>>, host: Option<&str>, phase: Phase, message: impl Into<String>) {
    let mut e = events.lock().unwrap_or_else(|p| p.into_inner());
    e(Event::Step { host: host.map(str::to_owned), phase, message: message.into() });
}

/// Runs a deploy (or, with `plan_only`, plans one).
pub fn deploy(
    spec: &ClusterSpec,
    names: &[String],
    remote: &dyn Remote,
    builder: &dyn Builder,
    opts: &Options,
    events: Events<'_>,
) -> Result<Report, Halt> {
    let started = Instant::now();
    let ask = Ask { remote, timeout: opts.command_timeout };
    let events = Mutex::new(events);
    let selected = spec.select(names)?;

    // A plan reads no journal: it changes nothing, whatever is in flight.
    let existing = if opts.plan_only { None } else { journal::load(&opts.journal)?.filter(|r| r.finished.is_none()) };
    let resumed = match (opts.resume, existing) {
        (false, Some(_)) => {
            return Err(DeployError::Unfinished { cluster: spec.name.clone(), journal: opts.journal.clone() }.into());
        }
        (true, Some(r)) if r.cluster == spec.name => Some(r),
        (true, _) => return Err(DeployError::NothingToResume { cluster: spec.name.clone() }.into()),
        (false, None) => None,
    };

    // Build first: it can take long and touches no host.
    let targets: BTreeMap<String, String> = match &resumed {
        Some(r) => r.plan.hosts.iter().map(|h| (h.host.clone(), h.target.clone())).collect(),
        None => {
            step(&events, None, Phase::Build, format!("building {} system(s)", selected.len()));
            builder.build(&selected)?
        }
    };

    if opts.plan_only {
        step(&events, None, Phase::Plan, "reading what each host runs");
        let observed = observe(ask, spec, &selected, opts.goal)?;
        let plan = plan::plan(spec, &selected, &observed, &targets, opts.goal, opts.strategy, opts.agents_at_once)?;
        return Ok(report_of_plan(plan, started));
    }

    // Preflight: nothing is touched if the cluster is not healthy.
    let in_flight: Vec<String> = resumed
        .iter()
        .flat_map(|r| r.hosts.iter())
        .filter(|h| matches!(h.state, HostState::Guarded { .. } | HostState::Switched { .. }))
        .map(|h| h.host.clone())
        .collect();
    step(&events, None, Phase::Preflight, "checking that every etcd member is healthy and every node Ready");
    let problems = crate::observe::preflight(ask, spec, &in_flight);
    if !problems.is_empty() {
        return Err(DeployError::Refused { reasons: problems }.into());
    }

    let lock_host = spec.init().or_else(|| spec.servers().next()).ok_or_else(|| DeployError::Refused {
        reasons: vec!["the inventory has no server to hold the deploy lock".into()],
    })?;
    let id = resumed.as_ref().map_or_else(journal::new_id, |r| r.id.clone());
    step(&events, Some(&lock_host.name), Phase::Lock, "taking the deploy lock");
    take_lock(ask, lock_host, &id, &opts.owner, resumed.is_some())?;

    let mut journal = match resumed {
        Some(r) => Journal::resume(&opts.journal, r),
        None => match new_journal(ask, spec, &selected, &targets, opts, &id, &events) {
            Ok(j) => j,
            Err(e) => {
                let _ = ask.run(lock_host, "releasing the deploy lock", &commands::lock_release(opts.command_timeout));
                return Err(e.into());
            }
        },
    };
    // A new server token is rotated into the cluster before any host switches to it (a
    // server restarted with a token the cluster does not know refuses to start), and only
    // once the plan is made and journaled, so a refused plan changes nothing.
    if let Some(new) = &opts.server_token {
        let rotated = if opts.goal == Goal::Boot {
            Err(DeployError::Refused {
                reasons: vec![
                    "the server token changed: `--goal boot` would leave the servers on the old token until they \
                     reboot, after the cluster has the new one; deploy with `--goal switch`"
                        .into(),
                ],
            })
        } else {
            crate::token::rotate_if_changed(ask, spec, &selected, new.expose(), &mut |m| {
                step(&events, None, Phase::Token, m)
            })
        };
        if let Err(e) = rotated {
            let _ = journal.finish(Finish::Abandoned);
            let _ = ask.run(lock_host, "releasing the deploy lock", &commands::lock_release(opts.command_timeout));
            return Err(e.into());
        }
    }
    let mut run = Run {
        spec,
        ask,
        builder,
        opts,
        journal: Mutex::new(journal),
        events,
        transfers: Mutex::new(Vec::new()),
        snapshot: None,
        started,
    };
    match run.execute() {
        Ok(()) => {
            let finish = run.lock_journal().finish(Finish::Done);
            let released =
                ask.run(lock_host, "releasing the deploy lock", &commands::lock_release(opts.command_timeout));
            step(&run.events, None, Phase::Done, "done");
            let report = run.report();
            finish.and(released.map(|_| ())).map_err(|error| Halt { error, report: Some(Box::new(report.clone())) })?;
            Ok(report)
        }
        Err(error) => {
            if matches!(error, DeployError::RolledBack { .. }) {
                // Settled: this deploy is over, and the cluster is free for the next one.
                let _ = run.lock_journal().finish(Finish::RolledBack);
                let _ = ask.run(lock_host, "releasing the deploy lock", &commands::lock_release(opts.command_timeout));
            }
            Err(Halt { error, report: Some(Box::new(run.report())) })
        }
    }
}

/// Drops an unfinished deploy: releases the cluster's lock and marks the journal abandoned.
pub fn unlock(spec: &ClusterSpec, remote: &dyn Remote, opts: &Options) -> Result<Option<String>, DeployError> {
    let ask = Ask { remote, timeout: opts.command_timeout };
    let lock_host = spec.init().or_else(|| spec.servers().next()).ok_or_else(|| DeployError::Refused {
        reasons: vec!["the inventory has no server holding a deploy lock".into()],
    })?;
    let owner = ask.run(lock_host, "reading the deploy lock", &commands::lock_owner(opts.command_timeout)).ok();
    ask.run(lock_host, "releasing the deploy lock", &commands::lock_release(opts.command_timeout))?;
    if let Some(r) = journal::load(&opts.journal)?.filter(|r| r.finished.is_none()) {
        Journal::resume(&opts.journal, r).finish(Finish::Abandoned)?;
    }
    Ok(owner.map(|o| o.trim().to_owned()))
}

fn report_of_plan(plan: Plan, started: Instant) -> Report {
    Report {
        cluster: plan.cluster.clone(),
        id: None,
        journal: None,
        hosts: plan
            .hosts
            .iter()
            .map(|h| HostReport {
                host: h.host.clone(),
                server: h.server,
                class: h.class,
                state: "planned".into(),
                from: h.current.clone(),
                to: h.target.clone(),
                detail: None,
            })
            .collect(),
        plan,
        transfers: Vec::new(),
        snapshot: None,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// What runs where: each selected host's generation (the running one; for `--goal boot`
/// the one it boots next), the leader, the servers' k3s.
fn observe(ask: Ask<'_>, spec: &ClusterSpec, selected: &[&HostSpec], goal: Goal) -> Result<Observed, DeployError> {
    let read = move |h: &HostSpec| match goal {
        Goal::Switch => ask.current_system(h),
        Goal::Boot => ask.boot_system(h),
    };
    let current: Vec<(String, Result<String, DeployError>)> = std::thread::scope(|sc| {
        let hs: Vec<_> = selected.iter().map(|h| (h.name.clone(), sc.spawn(move || read(h)))).collect();
        hs.into_iter()
            .map(|(n, j)| {
                let r = j.join().unwrap_or_else(|_| {
                    Err(DeployError::Unexpected {
                        host: n.clone(),
                        what: "observation".into(),
                        detail: "panicked".into(),
                    })
                });
                (n, r)
            })
            .collect()
    });
    let mut o = Observed::default();
    for (n, r) in current {
        o.current.insert(n, r?);
    }
    o.leader = ClusterView::ask(ask, spec).leader().map(|h| h.name.clone());
    for s in spec.servers() {
        o.k3s.insert(s.name.clone(), ask.k3s_version(s)?);
    }
    Ok(o)
}

fn take_lock(ask: Ask<'_>, host: &HostSpec, id: &str, owner: &str, resuming: bool) -> Result<(), DeployError> {
    let t = ask.timeout;
    let record = serde_json::json!({ "id": id, "by": owner, "started": journal::now_secs() }).to_string();
    let taken = ask
        .remote
        .run(&host.target(), &commands::lock_take(&record, t))
        .map_err(|e| DeployError::remote(&host.name, "taking the deploy lock", e))?;
    if taken.status == 0 {
        return Ok(());
    }
    let held = ask.run(host, "reading the deploy lock", &commands::lock_owner(t)).unwrap_or_default();
    let holder: serde_json::Value = serde_json::from_str(&held).unwrap_or_default();
    if resuming && holder["id"] == id {
        return Ok(());
    }
    let owner = match (holder["by"].as_str(), holder["id"].as_str()) {
        (Some(by), Some(other)) => format!("deploy {other} by {by}"),
        _ if held.trim().is_empty() => format!("{} exists without an owner", commands::LOCK_DIR),
        _ => held.trim().to_owned(),
    };
    Err(DeployError::Locked { owner })
}

fn new_journal(
    ask: Ask<'_>,
    spec: &ClusterSpec,
    selected: &[&HostSpec],
    targets: &BTreeMap<String, String>,
    opts: &Options,
    id: &str,
    events: &Mutex<Events<'_>>,
) -> Result<Journal, DeployError> {
    step(events, None, Phase::Plan, "reading what each host runs");
    let observed = observe(ask, spec, selected, opts.goal)?;
    let plan = plan::plan(spec, selected, &observed, targets, opts.goal, opts.strategy, opts.agents_at_once)?;
    let hosts = plan
        .hosts
        .iter()
        .map(|h| JournalHost {
            host: h.host.clone(),
            state: if h.class == Class::Unchanged { HostState::Unchanged } else { HostState::Planned },
            at_ms: 0,
        })
        .collect();
    let record = Record {
        version: 1,
        id: id.to_owned(),
        cluster: spec.name.clone(),
        started: journal::now_secs(),
        confirm_timeout_s: opts.confirm_timeout.as_secs(),
        plan,
        hosts,
        finished: None,
    };
    let mut j = Journal::create(&opts.journal, record);
    j.save()?;
    Ok(j)
}

/// A host's failure that stops the rollout.
type Stop = DeployError;

impl<'a> Run<'a, '_> {
    fn lock_journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, host: &str, state: HostState) -> Result<(), DeployError> {
        self.lock_journal().set(host, state)
    }

    fn state(&self, host: &str) -> HostState {
        self.lock_journal().state(host)
    }

    fn step(&self, host: Option<&str>, phase: Phase, message: impl Into<String>) {
        step(&self.events, host, phase, message);
    }

    fn settled(&self, host: &str, outcome: &str) {
        let mut e = self.events.lock().unwrap_or_else(|p| p.into_inner());
        e(Event::Host { host: host.to_owned(), outcome: outcome.to_owned() });
    }

    fn plan(&self) -> Plan {
        self.lock_journal().record.plan.clone()
    }

    fn host(&self, name: &str) -> Result<&'a HostSpec, DeployError> {
        self.spec.host(name).ok_or_else(|| DeployError::UnknownHost {
            name: name.to_owned(),
            known: self.spec.hosts.iter().map(|h| h.name.clone()).collect(),
        })
    }

    fn execute(&mut self) -> Result<(), DeployError> {
        let plan = self.plan();
        // Every new generation is on its host before any host is activated.
        for h in plan.hosts.iter().filter(|h| h.class == Class::Update) {
            if self.state(&h.host) != HostState::Planned {
                continue;
            }
            self.cancelled()?;
            let spec = self.host(&h.host)?;
            self.step(Some(&h.host), Phase::Push, format!("copying {}", h.target));
            self.builder_push(spec, &h.target)?;
            self.set(&h.host, HostState::Pushed)?;
        }
        if let Some(change) = &plan.k3s_minor {
            self.snapshot = Some(self.snapshot(&change.from)?);
        }
        for batch in plan.batches() {
            self.cancelled()?;
            let todo: Vec<&PlannedHost> = batch.into_iter().filter(|h| !self.state(&h.host).settled()).collect();
            if todo.is_empty() {
                continue;
            }
            if plan.goal == Goal::Boot {
                for h in todo {
                    self.boot(h)?;
                }
                continue;
            }
            if self.opts.transfer_leadership && plan.strategy == Strategy::Rolling {
                if let [one] = todo.as_slice() {
                    if one.server {
                        self.transfer_if_leader(&plan, one)?;
                    }
                }
            }
            let results: Vec<Result<(), DeployError>> = std::thread::scope(|sc| {
                let hs: Vec<_> = todo.iter().map(|h| sc.spawn(|| self.activate(h))).collect();
                hs.into_iter()
                    .map(|j| {
                        j.join().unwrap_or_else(|_| {
                            Err(DeployError::Unexpected {
                                host: "?".into(),
                                what: "activation".into(),
                                detail: "panicked".into(),
                            })
                        })
                    })
                    .collect()
            });
            // A rollback outranks a lost host: it is the decision the user must look at.
            let mut errors: Vec<DeployError> = results.into_iter().filter_map(Result::err).collect();
            errors.sort_by_key(|e| !matches!(e, DeployError::RolledBack { .. }));
            if let Some(e) = errors.into_iter().next() {
                return Err(e);
            }
        }
        Ok(())
    }

    fn builder_push(&self, host: &HostSpec, path: &str) -> Result<(), DeployError> {
        self.builder.push(host, path)
    }

    fn cancelled(&self) -> Result<(), DeployError> {
        if self.opts.cancel.load(Ordering::SeqCst) { Err(DeployError::Interrupted) } else { Ok(()) }
    }

    /// A one-way k3s change: an etcd snapshot on the lock host first.
    fn snapshot(&self, from: &str) -> Result<String, DeployError> {
        let host = self.spec.init().or_else(|| self.spec.servers().next()).ok_or(DeployError::Interrupted)?;
        let name = format!("n3x-before-{}-{}", from.replace('.', "-"), self.lock_journal().record.id);
        self.step(Some(&host.name), Phase::Snapshot, format!("etcd snapshot `{name}` before the k3s minor change"));
        self.ask.run(host, "taking an etcd snapshot", &commands::snapshot(&name, self.opts.confirm_timeout))?;
        Ok(name)
    }

    fn boot(&self, h: &PlannedHost) -> Result<(), DeployError> {
        let spec = self.host(&h.host)?;
        let t = self.opts.command_timeout;
        self.step(Some(&h.host), Phase::Switch, "making it the boot default");
        self.ask.run(spec, "setting the system profile", &commands::profile_set(&h.target, t))?;
        self.ask.run(spec, "installing the boot entry", &commands::switch(&h.target, "boot", t))?;
        self.set(&h.host, HostState::BootDefault)?;
        self.settled(&h.host, "boot default (runs after the next reboot)");
        Ok(())
    }

    /// Before the leader's turn, hands leadership to a follower on its new generation.
    fn transfer_if_leader(&self, plan: &Plan, h: &PlannedHost) -> Result<(), DeployError> {
        let view = ClusterView::ask(self.ask, self.spec);
        if view.leader().map(|l| l.name.as_str()) != Some(h.host.as_str()) {
            return Ok(());
        }
        let done: Vec<String> = self
            .lock_journal()
            .record
            .hosts
            .iter()
            .filter(|j| j.state == HostState::Confirmed)
            .map(|j| j.host.clone())
            .collect();
        let servers: Vec<String> = self.spec.servers().map(|s| s.name.clone()).collect();
        let Some(to) = plan::transfer_target(&plan.hosts, &servers, &h.host, &done, |n| view.status_of(n).is_some())
        else {
            self.step(
                Some(&h.host),
                Phase::Transfer,
                "no healthy follower to take etcd leadership; it restarts as leader",
            );
            return Ok(());
        };
        let to = to.to_owned();
        let Some(to_id) = view.member_id(&to) else { return Ok(()) };
        self.step(Some(&h.host), Phase::Transfer, format!("moving etcd leadership to {to}"));
        let t0 = Instant::now();
        let leader = self.host(&h.host)?;
        self.ask.move_leader(leader, to_id)?;
        let deadline = t0 + Duration::from_secs(10);
        loop {
            let v = ClusterView::ask(self.ask, self.spec);
            if v.leader().is_some_and(|l| l.name == to) {
                break;
            }
            if Instant::now() > deadline {
                return Err(DeployError::Unexpected {
                    host: h.host.clone(),
                    what: "the etcd leadership transfer".into(),
                    detail: format!("`{to}` did not become leader within 10 s"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let ms = t0.elapsed().as_millis() as u64;
        self.transfers.lock().unwrap_or_else(|p| p.into_inner()).push(Transfer { from: h.host.clone(), to, ms });
        Ok(())
    }

    /// One host: guard, switch, gates, confirm; or roll back and stop.
    fn activate(&self, h: &PlannedHost) -> Result<(), Stop> {
        let spec = self.host(&h.host)?;
        let unit = self.lock_journal().record.guard_unit();
        let t = self.opts.command_timeout;
        // Resuming, the journal and what runs now say how far the host got.
        let (previous, resumed_switch) = match self.state(&h.host) {
            HostState::Guarded { previous } => {
                // The profile may or may not point at the target yet: start the step over
                // (the previous generation is the journal's), with a fresh guard.
                let _ = self.ask.run(spec, "stopping the rollback guard", &commands::guard_cancel(&unit, t));
                (previous, false)
            }
            HostState::Switched { previous } => {
                let now = self.ask.current_system(spec)?;
                let pending = self
                    .ask
                    .remote
                    .run(&spec.target(), &commands::guard_pending(&unit, t))
                    .map_err(|e| DeployError::remote(&h.host, "checking the rollback guard", e))?
                    .stdout
                    .trim()
                    == "active";
                if now == previous && !pending {
                    let reasons = vec!["its guard rolled it back: the deploy did not confirm in time".to_owned()];
                    return self.rolled_back(spec, &previous, reasons);
                }
                if now != h.target && now != previous {
                    return Err(DeployError::Unexpected {
                        host: h.host.clone(),
                        what: "the running generation".into(),
                        detail: format!("it runs {now}, neither the previous {previous} nor the target {}", h.target),
                    });
                }
                // The profile points at the target; the crash came before, during or after
                // the activation: activate it (again: it is idempotent), and the gates decide.
                (previous, true)
            }
            _ => (self.ask.current_system(spec)?, false),
        };
        let started = Instant::now();
        let deadline = started + self.opts.confirm_timeout - self.opts.confirm_margin();
        let mut failures = Vec::new();
        if !resumed_switch {
            self.set(&h.host, HostState::Guarded { previous: previous.clone() })?;
            self.step(
                Some(&h.host),
                Phase::Guard,
                format!(
                    "guard: back to the previous generation in {} s unless confirmed",
                    self.opts.confirm_timeout.as_secs()
                ),
            );
            self.ask.run(
                spec,
                "starting the rollback guard",
                &commands::guard_start(&unit, self.opts.confirm_timeout.as_secs(), &previous, t),
            )?;
            if let Err(e) = self.ask.run(spec, "setting the system profile", &commands::profile_set(&h.target, t)) {
                // Nothing switched (the new generation is not on the host?): undo the
                // guard, and let a resume copy it again.
                let _ = self.ask.run(spec, "stopping the rollback guard", &commands::guard_cancel(&unit, t));
                self.set(&h.host, HostState::Planned)?;
                return Err(e);
            }
            self.set(&h.host, HostState::Switched { previous: previous.clone() })?;
        }
        self.step(Some(&h.host), Phase::Switch, "switch-to-configuration switch");
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        match self.ask.remote.run(&spec.target(), &commands::switch(&h.target, "switch", left)) {
            Ok(o) if o.status == 0 => {}
            Ok(o) => failures.push(format!(
                "the activation failed (exit {}): {}",
                o.status,
                o.stderr.trim().lines().last().unwrap_or_default()
            )),
            Err(RemoteError::Timeout { secs, .. }) => {
                failures.push(format!("the activation did not finish within {secs} s"));
            }
            // The switch may restart the network or sshd under the connection: the gates,
            // over new connections, judge.
            Err(_) => {}
        }
        if failures.is_empty() {
            self.step(Some(&h.host), Phase::Gates, "checking the gates");
            if let Err(f) = gate::wait(self.ask, self.spec, spec, deadline, self.opts.gate_interval) {
                failures = f;
            }
        }
        if !failures.is_empty() {
            return self.roll_back(spec, &previous, failures);
        }
        self.step(Some(&h.host), Phase::Confirm, "confirming");
        self.ask.run(spec, "stopping the rollback guard", &commands::guard_cancel(&unit, t))?;
        // The guard may have fired just before: what runs now decides.
        let now = self.ask.current_system(spec)?;
        if now != h.target {
            let reasons = vec!["its guard rolled it back before the confirmation arrived".to_owned()];
            return self.rolled_back(spec, &previous, reasons);
        }
        self.set(&h.host, HostState::Confirmed)?;
        self.settled(&h.host, &format!("confirmed in {:.1} s", started.elapsed().as_secs_f64()));
        Ok(())
    }

    /// Puts `host` back on `previous`, checks it there, and stops the rollout.
    fn roll_back(&self, host: &HostSpec, previous: &str, reasons: Vec<String>) -> Result<(), Stop> {
        self.step(
            Some(&host.name),
            Phase::Rollback,
            format!("back to the previous generation: {}", reasons.join("; ")),
        );
        let unit = self.lock_journal().record.guard_unit();
        let t = self.opts.command_timeout;
        match self.ask.remote.run(&host.target(), &commands::rollback(previous, self.opts.confirm_timeout)) {
            Ok(o) if o.status == 0 => {
                let _ = self.ask.run(host, "stopping the rollback guard", &commands::guard_cancel(&unit, t));
            }
            Ok(o) => {
                return Err(DeployError::Unexpected {
                    host: host.name.clone(),
                    what: "the rollback".into(),
                    detail: format!("exit {}: {}; its guard tries again", o.status, o.stderr.trim()),
                });
            }
            Err(e) => {
                return Err(DeployError::LostContact {
                    host: host.name.clone(),
                    detail: format!("{}; rolling back failed: {e}", reasons.join("; ")),
                    guard_secs: self.opts.confirm_timeout.as_secs(),
                });
            }
        }
        self.rolled_back(host, previous, reasons)
    }

    /// `host` runs `previous` again: checks its gates there and records the halt.
    fn rolled_back(&self, host: &HostSpec, previous: &str, reasons: Vec<String>) -> Result<(), Stop> {
        self.step(Some(&host.name), Phase::Gates, "checking the gates on the previous generation");
        let deadline = Instant::now() + self.opts.confirm_timeout;
        let healthy = gate::wait(self.ask, self.spec, host, deadline, self.opts.gate_interval).is_ok();
        self.set(
            &host.name,
            HostState::RolledBack { previous: previous.to_owned(), reasons: reasons.clone(), healthy },
        )?;
        self.settled(&host.name, "rolled back");
        Err(DeployError::RolledBack { host: host.name.clone(), reasons, healthy })
    }

    fn report(&self) -> Report {
        let j = self.lock_journal();
        let r = &j.record;
        Report {
            cluster: r.cluster.clone(),
            id: Some(r.id.clone()),
            journal: Some(j.path.clone()),
            hosts: r
                .plan
                .hosts
                .iter()
                .map(|h| {
                    let state = r.host(&h.host).cloned().unwrap_or(HostState::Planned);
                    let detail = match &state {
                        HostState::RolledBack { reasons, healthy, .. } => Some(format!(
                            "{}{}",
                            reasons.join("; "),
                            if *healthy { "" } else { " (and not healthy on the previous generation)" }
                        )),
                        HostState::Planned | HostState::Pushed => Some("untouched".into()),
                        HostState::Guarded { .. } | HostState::Switched { .. } => {
                            Some("in flight: its guard decides unless `--resume` confirms it".into())
                        }
                        _ => None,
                    };
                    HostReport {
                        host: h.host.clone(),
                        server: h.server,
                        class: h.class,
                        state: state.label().into(),
                        from: h.current.clone(),
                        to: h.target.clone(),
                        detail,
                    }
                })
                .collect(),
            plan: r.plan.clone(),
            transfers: self.transfers.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            snapshot: self.snapshot.clone(),
            duration_ms: self.started.elapsed().as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use n3x_remote::fake::{self, Fake};

    use super::*;
    use crate::testing::{healthy, reference};

    /// A builder whose every host's new system is `/nix/store/new-<host>`.
    struct Built;

    impl Builder for Built {
        fn build(&self, hosts: &[&HostSpec]) -> Result<BTreeMap<String, String>, DeployError> {
            Ok(hosts.iter().map(|h| (h.name.clone(), format!("/nix/store/new-{}", h.name))).collect())
        }
        fn push(&self, _: &HostSpec, _: &str) -> Result<(), DeployError> {
            Ok(())
        }
    }

    /// Commands that change a host (everything but the reads of a preflight and a plan).
    fn writes(f: &Fake) -> Vec<String> {
        f.calls()
            .into_iter()
            .map(|(h, a)| format!("{h}: {}", a.join(" ")))
            .filter(|c| {
                !(c.contains(" readlink ")
                    || c.contains(": readlink")
                    || c.contains("curl")
                    || c.contains("kubectl")
                    || c.contains("--version")
                    || c.contains("is-active")
                    || c.ends_with(": true"))
            })
            .collect()
    }

    fn opts(d: &tempfile::TempDir) -> Options {
        let mut o = Options::new(d.path().join("journal.json"));
        o.gate_interval = Duration::from_millis(10);
        o.confirm_timeout = Duration::from_secs(10);
        o
    }

    #[test]
    fn an_unhealthy_cluster_is_refused_before_anything_changes() {
        let spec = reference();
        let f = healthy();
        f.on(|t, argv| {
            (t.host == "n100-3" && argv[0] == "curl" && argv.last()?.ends_with(n3x_etcd::STATUS))
                .then(|| fake::exit(7, "curl: (7) Failed to connect"))
        });
        let d = tempfile::tempdir().unwrap();
        let halt = deploy(&spec, &[], &f, &Built, &opts(&d), &mut |_| {}).unwrap_err();
        assert!(
            matches!(&halt.error, DeployError::Refused { reasons } if reasons[0].contains("`n100-3`")),
            "{}",
            halt.error
        );
        assert_eq!(halt.error.outcome(), crate::Outcome::Refused);
        assert_eq!(writes(&f), Vec::<String>::new());
        assert!(!d.path().join("journal.json").exists());
    }

    #[test]
    fn a_held_lock_is_refused_naming_its_owner() {
        let spec = reference();
        let f = healthy();
        f.on(|_, argv| {
            (argv[0] == "sh" && argv[2].contains("mkdir /var/lib/n3x/deploy.lock"))
                .then(|| fake::exit(1, "File exists"))
        });
        f.on(|_, argv| (argv[0] == "cat").then(|| fake::ok(r#"{"id":"abc","by":"ops@laptop","started":1}"#)));
        let d = tempfile::tempdir().unwrap();
        let halt = deploy(&spec, &[], &f, &Built, &opts(&d), &mut |_| {}).unwrap_err();
        assert_eq!(halt.error.to_string(), "another deploy holds the cluster's lock: deploy abc by ops@laptop");
        // Only the attempt to take it; no guard, no profile, no switch anywhere.
        let w = writes(&f);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("n100-1: sh -c mkdir -p /var/lib/n3x")
                && w[1] == "n100-1: cat /var/lib/n3x/deploy.lock/owner"
        );
    }

    #[test]
    fn an_unfinished_journal_needs_resume_and_resume_needs_one() {
        let spec = reference();
        let f = Fake::new();
        let d = tempfile::tempdir().unwrap();
        let o = opts(&d);
        let mut resume = o.clone();
        resume.resume = true;
        let e = deploy(&spec, &[], &f, &Built, &resume, &mut |_| {}).unwrap_err();
        assert!(matches!(e.error, DeployError::NothingToResume { .. }));
        let record = Record::empty("x", 10);
        Journal::create(&o.journal, record).save().unwrap();
        let e = deploy(&spec, &[], &f, &Built, &o, &mut |_| {}).unwrap_err();
        assert!(matches!(e.error, DeployError::Unfinished { .. }), "{}", e.error);
        assert!(f.calls().is_empty(), "refused before asking any host");
        // An unknown host is a usage error naming the known ones.
        let e = deploy(&spec, &["nope".into()], &f, &Built, &o, &mut |_| {}).unwrap_err();
        assert!(e.error.help().contains("n100-1"));
    }

    /// The new generation is not on the host (a copy that failed unnoticed, a collected
    /// path): the profile switch refuses, the guard is stopped, nothing switched, and the
    /// error names the host, the step and Nix's words; `--resume` copies it again.
    #[test]
    fn a_missing_closure_stops_before_the_switch() {
        let spec = reference();
        let f = healthy();
        f.on(|t, argv| (argv[0] == "readlink").then(|| fake::ok(&format!("/nix/store/old-{}\n", t.host))));
        f.on(|_, argv| {
            (argv.get(1).map(String::as_str) == Some("--version")).then(|| fake::ok("k3s version v1.31.4+k3s1 (x)\n"))
        });
        f.on(|t, argv| {
            (t.host == "n100-2" && argv[0] == "nix-env")
                .then(|| fake::exit(1, "error: path '/nix/store/new-n100-2' is not valid"))
        });
        let d = tempfile::tempdir().unwrap();
        let o = opts(&d);
        let halt = deploy(&spec, &["n100-2".into()], &f, &Built, &o, &mut |_| {}).unwrap_err();
        let msg = halt.error.to_string();
        assert!(msg.starts_with("setting the system profile on `n100-2`") && msg.contains("is not valid"), "{msg}");
        assert_eq!(halt.error.outcome(), crate::Outcome::Interrupted);
        let w = writes(&f);
        assert!(w.iter().any(|c| c.starts_with("n100-2: systemd-run")), "{w:?}");
        assert!(w.iter().any(|c| c.starts_with("n100-2: systemctl stop n3x-guard-")), "the guard is stopped: {w:?}");
        assert!(
            !w.iter().any(|c| c.contains(": /nix/store/new-n100-2/bin/switch-to-configuration")),
            "nothing switched: {w:?}"
        );
        let j = crate::journal::load(&o.journal).unwrap().unwrap();
        assert_eq!(j.host("n100-2"), Some(&HostState::Planned), "a resume copies it again");
    }

    #[test]
    fn the_plan_changes_nothing() {
        let spec = reference();
        let f = healthy();
        f.on(|t, argv| (argv[0] == "readlink").then(|| fake::ok(&format!("/nix/store/old-{}\n", t.host))));
        f.on(|_, argv| {
            (argv.get(1).map(String::as_str) == Some("--version")).then(|| fake::ok("k3s version v1.31.4+k3s1 (x)\n"))
        });
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(&d);
        o.plan_only = true;
        let r = deploy(&spec, &[], &f, &Built, &o, &mut |_| {}).unwrap();
        assert_eq!(r.plan.updates(), 5);
        assert_eq!(r.plan.transfer, Some(("n100-1".into(), "n100-2".into())));
        assert_eq!(writes(&f), Vec::<String>::new());
        assert!(!o.journal.exists());
    }
}
