//! Scenarios that deploy to the lab: the deployer (`n3x_deploy`) runs here exactly as
//! `n3x deploy` does, over SSH from the operator's namespace, while the agents write; the
//! scenario judges by the write log and by what the supervisor sees on each host.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use n3x_deploy::plan::Strategy;
use n3x_deploy::rollout::{self, Halt, Options, Report};
use n3x_deploy::{DeployError, Event, Outcome, Phase};

use super::kit::{Ctx, Run, agents, at, now_ms, server_names, status, verify, wait_for, writes};
use crate::control::{LabStatus, Request};
use crate::error::LabError;
use crate::generation::{Fault, Settings};
use crate::plan::OPERATOR;
use crate::probe::Write;
use crate::rehearse::Rehearsal;

pub const NAMES: &[&str] =
    &["rolling-deploy", "bad-deploy", "deploy-cut", "all-at-once", "rolling-no-transfer", "token-rotation"];

/// Each host's settings now, from the supervisor.
fn current(s: &LabStatus) -> BTreeMap<String, Settings> {
    s.hosts.iter().filter_map(|h| Some((h.name.clone(), h.settings.clone()?))).collect()
}

fn generations(s: &LabStatus) -> BTreeMap<String, String> {
    s.hosts.iter().filter_map(|h| Some((h.name.clone(), h.generation.clone()?))).collect()
}

/// A change every server feels: the etcd heartbeat moves by 10 ms (and back on the next
/// deploy), keeping the election timeout at least five heartbeats as etcd requires.
fn changed(now: &BTreeMap<String, Settings>, ctx: &Ctx) -> BTreeMap<String, Settings> {
    let base = ctx.plan.etcd.heartbeat_ms;
    now.iter()
        .map(|(h, s)| {
            let mut t = s.clone();
            t.fault = Fault::None;
            t.etcd.heartbeat_ms = if s.etcd.heartbeat_ms != base {
                base
            } else if 5 * (base + 10) <= s.etcd.election_ms {
                base + 10
            } else {
                base.saturating_sub(10).max(1)
            };
            (h.clone(), t)
        })
        .collect()
}

/// The longest time the cluster acknowledged no write at all (from any agent) in `[from, to]`:
/// the write outage.
pub fn longest_outage(ws: &[Write], from: f64, to: f64) -> f64 {
    max_gap(ws.iter().filter_map(|w| w.acked_ms), from, to)
}

/// The longest stretch of `[from, to]` without one of `times` (those outside are ignored).
fn max_gap(times: impl Iterator<Item = f64>, from: f64, to: f64) -> f64 {
    let mut ts: Vec<f64> = times.filter(|t| *t >= from && *t <= to).collect();
    ts.sort_by(f64::total_cmp);
    let mut prev = from;
    let mut gap: f64 = 0.0;
    for t in ts {
        gap = gap.max(t - prev);
        prev = t;
    }
    gap.max(to - prev)
}

/// The longest time any one agent went without an acknowledged write in `[from, to]`. This
/// includes what the agent's own link does (a TCP retransmission on a lossy link), which
/// the outage of the cluster does not.
pub fn longest_gap(ws: &[Write], agents: &[String], from: f64, to: f64) -> f64 {
    agents
        .iter()
        .map(|a| max_gap(ws.iter().filter(|w| w.agent == *a).filter_map(|w| w.acked_ms), from, to))
        .fold(0.0, f64::max)
}

struct Deployed {
    result: Result<Report, Halt>,
    /// Lab clock at the start and end of the deploy.
    from_ms: f64,
    to_ms: f64,
    /// Fewest servers answering at any status sample, of how many.
    min_healthy: usize,
    servers: usize,
    samples: usize,
    /// Each host's activation, from its switch to its outcome (lab clock): (host, from, to, outcome).
    activations: Vec<(String, f64, f64, String)>,
}

/// Runs a deploy against the lab while sampling the members' health every 100 ms.
fn deploy(
    ctx: &mut Ctx,
    lab: &Rehearsal,
    targets: BTreeMap<String, Settings>,
    hosts: &[String],
    tune: impl FnOnce(&mut Options),
    on_event: &mut (dyn FnMut(&Event) + Send),
) -> Result<Deployed, LabError> {
    let mut opts = options(lab);
    tune(&mut opts);
    let builder = lab.builder(targets);
    let from_ms = now_ms(ctx)?;
    let stop = AtomicBool::new(false);
    let dir = ctx.dir;
    let servers = ctx.plan.servers.len();
    let (result, (min_healthy, samples)) = std::thread::scope(|sc| {
        let sampler = sc.spawn(|| {
            let (mut min, mut n) = (usize::MAX, 0);
            while !stop.load(Ordering::SeqCst) {
                if let Ok(s) = status(dir) {
                    let up = s.hosts.iter().filter(|h| h.member.as_ref().is_some_and(|m| m.status.is_some())).count();
                    min = min.min(up);
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (min, n)
        });
        // Steps come back to this thread (the renderer is not `Send`); the deploy runs on another.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let spec = &lab.spec;
        let (ssh, builder, opts) = (&lab.ssh, &builder, &opts);
        let started = std::time::Instant::now();
        let deployer = sc.spawn(move || {
            let mut switching: BTreeMap<String, f64> = BTreeMap::new();
            let mut activations = Vec::new();
            let mut events = |e: Event| {
                on_event(&e);
                let now = from_ms + started.elapsed().as_secs_f64() * 1000.0;
                match &e {
                    Event::Step { host: Some(h), phase: Phase::Switch, .. } => {
                        switching.entry(h.clone()).or_insert(now);
                    }
                    Event::Host { host, outcome } => {
                        if let Some(t) = switching.remove(host) {
                            activations.push((host.clone(), t, now, outcome.clone()));
                        }
                    }
                    _ => {}
                }
                if let Event::Step { host, message, .. } = &e {
                    let _ = tx.send(match host {
                        Some(h) => format!("{h}: {message}"),
                        None => message.clone(),
                    });
                }
            };
            let r = rollout::deploy(spec, hosts, ssh, builder, opts, &mut events);
            (r, activations)
        });
        for line in rx {
            (ctx.on_step)(&line);
        }
        let r = deployer.join().unwrap_or_else(|_| {
            let error =
                DeployError::Unexpected { host: "-".into(), what: "the deploy".into(), detail: "panicked".into() };
            (Err(Halt { error, report: None }), Vec::new())
        });
        stop.store(true, Ordering::SeqCst);
        (r, sampler.join().unwrap_or((0, 0)))
    });
    let (result, activations) = result;
    let to_ms = now_ms(ctx)?;
    Ok(Deployed { result, from_ms, to_ms, min_healthy, servers, samples, activations })
}

/// How the scenarios deploy: the lab's journal, short timeouts (the lab answers in
/// milliseconds), gates checked every 200 ms, the agents two at a time.
fn options(lab: &Rehearsal) -> Options {
    let mut opts = Options::new(lab.journal());
    opts.owner = format!("n3x lab run ({})", std::process::id());
    opts.confirm_timeout = Duration::from_secs(30);
    opts.command_timeout = Duration::from_secs(10);
    opts.gate_interval = Duration::from_millis(200);
    opts.agents_at_once = 2;
    opts
}

/// Drops whatever a failed scenario left: the lock on the cluster and the journal.
fn cleanup(lab: &Rehearsal) {
    let _ = rollout::unlock(&lab.spec, &lab.ssh, &options(lab));
}

pub(super) fn run(name: &str, ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
    let lab = Rehearsal::open(ctx.dir, None)?;
    let r = match name {
        "rolling-deploy" => rolling(ctx, run, &lab, true),
        "rolling-no-transfer" => rolling(ctx, run, &lab, false),
        "all-at-once" => all_at_once(ctx, run, &lab),
        "bad-deploy" => bad_deploy(ctx, run, &lab),
        "deploy-cut" => deploy_cut(ctx, run, &lab),
        "token-rotation" => token_rotation(ctx, run, &lab),
        other => {
            Err(LabError::UnknownScenario { name: other.into(), known: NAMES.iter().map(|s| s.to_string()).collect() })
        }
    };
    if r.is_err() || !run.failures.is_empty() {
        cleanup(&lab);
    }
    r
}

fn report_gap(ctx: &Ctx, run: &mut Run, d: &Deployed) -> Result<(), LabError> {
    for (host, from, to, outcome) in &d.activations {
        run.window("deploy", format!("{host}: {outcome}"), *from, *to);
    }
    let ws = writes(ctx)?;
    run.metric("longest_write_gap_ms", longest_outage(&ws, d.from_ms, d.to_ms));
    run.metric("longest_agent_gap_ms", longest_gap(&ws, &agents(ctx), d.from_ms, d.to_ms));
    // The same measure over the 10 s before the deploy: what the links alone give.
    let idle_from = (d.from_ms - 10_000.0).max(ws.first().map_or(d.from_ms, |w| w.sent_ms + 1000.0));
    if idle_from < d.from_ms - 1000.0 {
        run.metric("idle_agent_gap_ms", longest_gap(&ws, &agents(ctx), idle_from, d.from_ms));
    }
    run.metric("deploy_ms", d.to_ms - d.from_ms);
    run.metric("election_timeout_ms", ctx.plan.etcd.election_ms);
    run.metric("health_samples", d.samples);
    run.metric("fewest_members_answering", d.min_healthy);
    Ok(())
}

fn describe(h: &Halt) -> String {
    format!("{} ({})", h.error, h.error.help())
}

/// Rolls a change out to every host, followers first, the leader last (after handing its
/// leadership over, unless `transfer` is off: the measurement of what that saves).
fn rolling(ctx: &mut Ctx, run: &mut Run, lab: &Rehearsal, transfer: bool) -> Result<(), LabError> {
    let before = status(ctx.dir)?;
    let targets = changed(&current(&before), ctx);
    run.metric("heartbeat_ms", targets.values().next().map_or(0, |s| s.etcd.heartbeat_ms));
    let d = deploy(ctx, lab, targets.clone(), &[], |o| o.transfer_leadership = transfer, &mut |_| {})?;
    report_gap(ctx, run, &d)?;
    match &d.result {
        Ok(rep) => {
            run.metric(
                "transfers",
                rep.transfers
                    .iter()
                    .map(|t| format!("{}->{} {} ms", t.from, t.to, t.ms))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            let after = generations(&status(ctx.dir)?);
            for (h, s) in &targets {
                run.require(after.get(h) == Some(&s.store_path()), || format!("`{h}` is not on its new generation"));
            }
        }
        Err(h) => run.failures.push(format!("the deploy stopped: {}", describe(h))),
    }
    if transfer {
        let majority = d.servers / 2 + 1;
        run.require(d.min_healthy >= majority, || {
            format!("quorum lost: at one sample only {} of {} members answered", d.min_healthy, d.servers)
        });
    }
    verify(ctx, run)
}

/// The baseline: the same change to every server at once, as a deploy tool that knows
/// nothing of etcd does. Measured, not judged.
fn all_at_once(ctx: &mut Ctx, run: &mut Run, lab: &Rehearsal) -> Result<(), LabError> {
    let before = status(ctx.dir)?;
    let targets = changed(&current(&before), ctx);
    let servers = server_names(ctx);
    let d = deploy(
        ctx,
        lab,
        targets,
        &servers,
        |o| {
            o.strategy = Strategy::AllAtOnce;
            o.transfer_leadership = false;
        },
        &mut |_| {},
    )?;
    report_gap(ctx, run, &d)?;
    if let Err(h) = &d.result {
        run.metric("deploy_error", describe(h));
    }
    // Measured, not judged: losses are reported, and the lab is left converged for the next.
    let v = super::kit::verify_result(ctx)?;
    run.metric("acked_writes", v.acked);
    run.metric("lost_writes", v.lost.len());
    Ok(())
}

/// The first follower in the rollout: the first server by name that is not the leader.
fn first_follower(s: &LabStatus, ctx: &Ctx) -> Result<String, LabError> {
    let leader = s.leader.clone().ok_or_else(|| LabError::NoLeader { action: "deploy around".into() })?;
    server_names(ctx)
        .into_iter()
        .find(|n| *n != leader)
        .ok_or_else(|| LabError::NoLeader { action: "find a follower".into() })
}

/// A generation that breaks its host's etcd: the host goes back by itself, healthy; the
/// rollout stops there; nobody else changed.
fn bad_deploy(ctx: &mut Ctx, run: &mut Run, lab: &Rehearsal) -> Result<(), LabError> {
    let before = status(ctx.dir)?;
    let victim = first_follower(&before, ctx)?;
    let mut targets = changed(&current(&before), ctx);
    if let Some(s) = targets.get_mut(&victim) {
        s.fault = Fault::BreakServices;
    }
    run.metric("broken_host", victim.clone());
    let confirm = Duration::from_secs(10);
    let d = deploy(ctx, lab, targets, &[], |o| o.confirm_timeout = confirm, &mut |_| {})?;
    report_gap(ctx, run, &d)?;
    let gens_before = generations(&before);
    let after = status(ctx.dir)?;
    match &d.result {
        Err(h) => {
            run.metric("outcome", format!("{:?}", h.error.outcome()));
            run.require(h.error.outcome() == Outcome::RolledBack, || {
                format!("the deploy ended otherwise: {}", describe(h))
            });
            if let DeployError::RolledBack { host, healthy, .. } = &h.error {
                run.require(host == &victim, || format!("`{host}` rolled back, not `{victim}`"));
                run.require(*healthy, || format!("`{victim}` is not healthy on its previous generation"));
            }
        }
        Ok(_) => run.failures.push("the deploy succeeded with a generation that breaks etcd".into()),
    }
    for h in after.hosts.iter().filter(|h| h.role != "operator") {
        run.require(h.generation == gens_before.get(&h.name).cloned(), || {
            format!("`{}` is not on the generation it ran before the deploy", h.name)
        });
    }
    let v = after.hosts.iter().find(|h| h.name == victim);
    run.require(v.is_some_and(|h| h.k3s_active && h.member.as_ref().is_some_and(|m| m.status.is_some())), || {
        format!("`{victim}`'s k3s and etcd member are not back")
    });
    verify(ctx, run)
}

/// `token-rotation`: a new server token (what `n3x secrets rotate` writes) deployed. First
/// in the wrong order, as a control: generations carrying the new token without k3s's
/// rotation; the first server's k3s refuses to start and the deploy takes it back. Then
/// with the deploy's token step: `k3s token rotate` on the leader, then every server
/// restarted on the new token one at a time (the lab does not model the agent token: the
/// agents' generations do not change). Passes when the wrong order
/// changed nothing (rolled back, the cluster's token the old one), the right order put
/// every server on the new token with quorum kept, and no acknowledged write is lost.
fn token_rotation(ctx: &mut Ctx, run: &mut Run, lab: &Rehearsal) -> Result<(), LabError> {
    use crate::generation::token_hash;
    use n3x_deploy::token::secret_of;
    let old = crate::hostroot::lab_token(ctx.dir)?;
    let new = n3x_secrets::generate_token().to_string();
    let before = status(ctx.dir)?;
    let servers = server_names(ctx);
    let targets: BTreeMap<String, Settings> = current(&before)
        .into_iter()
        .map(|(h, mut s)| {
            s.fault = Fault::None;
            if servers.contains(&h) {
                s.token_sha256 = Some(token_hash(&new));
            }
            (h, s)
        })
        .collect();

    (ctx.on_step)("the wrong order: the new token deployed without rotating it first");
    let wrong = deploy(
        ctx,
        lab,
        targets.clone(),
        &[],
        |o| {
            o.server_token = None;
            o.confirm_timeout = Duration::from_secs(10);
        },
        &mut |_| {},
    )?;
    for (host, from, to, outcome) in &wrong.activations {
        run.window("deploy", format!("{host}: {outcome} (no rotation)"), *from, *to);
    }
    match &wrong.result {
        Err(h) => run.require(h.error.outcome() == Outcome::RolledBack, || {
            format!("the deploy without rotation ended otherwise: {}", describe(h))
        }),
        Ok(_) => run.failures.push("servers started with a token the cluster does not know".into()),
    }
    let token_now = crate::hostroot::lab_token(ctx.dir)?;
    run.require(secret_of(&token_now) == secret_of(&old), || "the cluster's token changed without a rotation".into());

    (ctx.on_step)("the right order: n3x deploy rotates the token, then restarts each server on it");
    let rotated = std::sync::Arc::new(AtomicBool::new(false));
    let seen = rotated.clone();
    let right = deploy(
        ctx,
        lab,
        targets.clone(),
        &[],
        |o| o.server_token = Some(n3x_deploy::token::Token::new(new.as_str())),
        &mut move |e| {
            if matches!(e, Event::Step { phase: Phase::Token, .. }) {
                seen.store(true, Ordering::SeqCst);
            }
        },
    )?;
    report_gap(ctx, run, &right)?;
    run.require(rotated.load(Ordering::SeqCst), || "the deploy did not rotate the token".into());
    match &right.result {
        Ok(_) => {
            let after = generations(&status(ctx.dir)?);
            for (h, s) in &targets {
                run.require(after.get(h) == Some(&s.store_path()), || format!("`{h}` is not on its new generation"));
            }
        }
        Err(h) => run.failures.push(format!("the deploy with the rotation stopped: {}", describe(h))),
    }
    let token_now = crate::hostroot::lab_token(ctx.dir)?;
    run.require(secret_of(&token_now) == new, || "the cluster's token is not the new one".into());
    for s in &servers {
        let file = crate::generation::host_root(ctx.dir, s).join(crate::hostroot::SERVER_TOKEN);
        let on_disk = std::fs::read_to_string(&file).unwrap_or_default();
        run.require(secret_of(&on_disk) == new, || format!("`{s}` does not run with the new token"));
    }
    let majority = right.servers / 2 + 1;
    run.require(right.min_healthy >= majority, || {
        format!("quorum lost: at one sample only {} of {} members answered", right.min_healthy, right.servers)
    });
    verify(ctx, run)
}

/// The deployer's link to a host is cut while it checks the gates: the guard on the host
/// takes it back to its previous generation by itself within the confirm timeout.
fn deploy_cut(ctx: &mut Ctx, run: &mut Run, lab: &Rehearsal) -> Result<(), LabError> {
    let before = status(ctx.dir)?;
    let victim = first_follower(&before, ctx)?;
    let previous = generations(&before).get(&victim).cloned().unwrap_or_default();
    let targets = changed(&current(&before), ctx);
    let confirm = Duration::from_secs(8);
    run.metric("cut_host", victim.clone());
    run.metric("confirm_timeout_ms", confirm.as_millis() as u64);
    let dir = ctx.dir.to_path_buf();
    let cut_at = std::sync::Mutex::new(None::<f64>);
    let guard_at = std::sync::Mutex::new(None::<f64>);
    let mut on_event = |e: &Event| {
        if let Event::Step { host: Some(h), phase: Phase::Guard, .. } = e {
            if h == &victim {
                *guard_at.lock().unwrap_or_else(|p| p.into_inner()) = status(&dir).ok().map(|s| s.now_ms);
            }
        }
        if let Event::Step { host: Some(h), phase: Phase::Gates, .. } = e {
            let mut c = cut_at.lock().unwrap_or_else(|p| p.into_inner());
            if h == &victim && c.is_none() {
                let req = Request::Partition { a: vec![OPERATOR.into()], b: vec![victim.clone()] };
                *c = crate::control::act(&dir, &req, Duration::from_secs(10)).ok();
            }
        }
    };
    let d = deploy(ctx, lab, targets, std::slice::from_ref(&victim), |o| o.confirm_timeout = confirm, &mut on_event)?;
    let cut = cut_at.lock().unwrap_or_else(|p| p.into_inner()).take();
    run.require(cut.is_some(), || "the link was never cut (no gate was checked)".into());
    match &d.result {
        Err(h) => {
            run.metric("deployer_outcome", format!("{:?}", h.error.outcome()));
            run.require(matches!(h.error, DeployError::LostContact { .. }), || {
                format!("the deployer should have lost the host: {}", describe(h))
            });
        }
        Ok(_) => run.failures.push("the deploy confirmed a host it could not reach".into()),
    }
    // The guard's own rollback, seen from the supervisor (which the cut does not affect).
    let switched = wait_for(Duration::from_secs(1), || {
        Ok(status(ctx.dir)?.hosts.iter().find(|h| h.name == victim).and_then(|h| h.activated_ms))
    })?;
    let back = wait_for(confirm + Duration::from_secs(10), || {
        let s = status(ctx.dir)?;
        Ok(s.hosts
            .iter()
            .find(|h| h.name == victim && h.generation.as_deref() == Some(&previous))
            .and_then(|h| h.activated_ms))
    })?;
    let guard = guard_at.lock().unwrap_or_else(|p| p.into_inner()).take();
    match (back, cut, guard) {
        (Some(t_back), Some(t_cut), Some(t_guard)) => {
            run.metric("rolled_back_after_cut_ms", t_back - t_cut);
            run.metric("rolled_back_after_guard_start_ms", t_back - t_guard);
            // The guard starts just after this event, and fires after the confirm timeout;
            // 2 s covers the SSH round trips around it and the activation.
            run.require(t_back - t_guard <= confirm.as_millis() as f64 + 2000.0, || {
                format!(
                    "the guard rolled back {:.0} ms after it was started, beyond the {} s timeout",
                    t_back - t_guard,
                    confirm.as_secs()
                )
            });
            run.require(t_back - t_guard >= confirm.as_millis() as f64 - 500.0, || {
                format!("the host went back after {:.0} ms, before its guard could have fired", t_back - t_guard)
            });
        }
        _ => run.failures.push(format!(
            "`{victim}` is not back on its previous generation (it ran {}; switched at {switched:?})",
            status(ctx.dir)?
                .hosts
                .iter()
                .find(|h| h.name == victim)
                .and_then(|h| h.generation.clone())
                .unwrap_or_default()
        )),
    }
    (ctx.on_step)("healing the cut");
    at(ctx, Request::Heal)?;
    // The deploy is unfinished (the deployer lost the host): resuming sees the guard's
    // rollback, records it, and frees the cluster.
    (ctx.on_step)("resuming the deploy");
    let mut opts = options(lab);
    opts.resume = true;
    opts.confirm_timeout = confirm;
    let builder = lab.builder(BTreeMap::new());
    let resumed = rollout::deploy(&lab.spec, std::slice::from_ref(&victim), &lab.ssh, &builder, &opts, &mut |_| {});
    match resumed {
        Err(h) => {
            run.require(
                matches!(&h.error, DeployError::RolledBack { reasons, healthy: true, .. } if reasons.iter().any(|r| r.contains("guard"))),
                || format!("the resume should report the guard's rollback: {}", describe(&h)),
            );
        }
        Ok(_) => run.failures.push("the resume confirmed a host its guard rolled back".into()),
    }
    let healthy = wait_for(Duration::from_secs(10), || {
        let s = status(ctx.dir)?;
        Ok(s.hosts
            .iter()
            .find(|h| h.name == victim)
            .filter(|h| h.member.as_ref().is_some_and(|m| m.status.is_some()))
            .map(|_| ()))
    })?;
    run.require(healthy.is_some(), || format!("`{victim}` is not healthy after the rollback"));
    verify(ctx, run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(agent: &str, acked: Option<f64>) -> Write {
        Write {
            agent: agent.into(),
            seq: 0,
            server: 0,
            sent_ms: 0.0,
            acked_ms: acked,
            revision: 0,
            value: String::new(),
        }
    }

    #[test]
    fn the_outage_is_the_longest_time_nobody_got_an_ack() {
        let ws = [w("a", Some(110.0)), w("b", Some(150.0)), w("a", Some(600.0)), w("b", None), w("b", Some(640.0))];
        // 100->110, 110->150, 150->600 (450), 600->640, 640->700.
        assert_eq!(longest_outage(&ws, 100.0, 700.0), 450.0);
        assert_eq!(longest_outage(&[], 0.0, 50.0), 50.0);
    }

    #[test]
    fn the_longest_gap_is_per_agent_and_counts_the_edges() {
        let ws = [w("a", Some(110.0)), w("a", Some(200.0)), w("a", None), w("a", Some(650.0)), w("b", Some(120.0))];
        // a: 100->110, 110->200, 200->650 (450), 650->700; b: 120->700 (580).
        assert_eq!(longest_gap(&ws, &["a".into()], 100.0, 700.0), 450.0);
        assert_eq!(longest_gap(&ws, &["a".into(), "b".into()], 100.0, 700.0), 580.0);
        assert_eq!(longest_gap(&[], &["a".into()], 0.0, 50.0), 50.0);
    }
}
