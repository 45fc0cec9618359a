//! Scenarios: break the running lab on purpose and check what etcd (the datastore inside
//! k3s servers) does. They act only through the supervisor's control socket, and judge by
//! the probes' write log: a write counts as acknowledged only when etcd answered it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::control::{self, LabStatus, Request, Response};
use crate::error::LabError;
use crate::plan::LabPlan;
use crate::probe::{self, Write};

pub const BUILTIN: &[&str] = &[
    "formation",
    "server-loss",
    "quorum-loss",
    "partition",
    "profiles",
    "rolling-deploy",
    "bad-deploy",
    "deploy-cut",
    "all-at-once",
    "rolling-no-transfer",
];
/// What `n3x lab run` runs when no `--scenario` is given.
pub const DEFAULT: &[&str] = &["formation", "server-loss", "quorum-loss", "partition"];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub name: String,
    pub passed: bool,
    pub duration_ms: f64,
    pub metrics: Map<String, Value>,
    /// Why it failed, one line per broken condition.
    pub failures: Vec<String>,
}

pub struct Ctx<'a> {
    pub dir: &'a Path,
    pub plan: &'a LabPlan,
    pub bringup_ms: f64,
    pub quorum_ms: f64,
    pub probe_interval_ms: f64,
    pub probe_timeout_ms: f64,
    pub on_step: &'a mut dyn FnMut(&str),
}

pub(crate) struct Run {
    pub(crate) metrics: Map<String, Value>,
    pub(crate) failures: Vec<String>,
}

impl Run {
    pub(crate) fn metric(&mut self, k: &str, v: impl Into<Value>) {
        self.metrics.insert(k.into(), v.into());
    }

    pub(crate) fn require(&mut self, ok: bool, why: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(why());
        }
    }
}

fn call(ctx: &Ctx, req: Request) -> Result<Response, LabError> {
    control::call(ctx.dir, &req, Duration::from_secs(60))
}

pub(crate) fn at(ctx: &Ctx, req: Request) -> Result<f64, LabError> {
    control::act(ctx.dir, &req, Duration::from_secs(60))
}

pub fn status(dir: &Path) -> Result<LabStatus, LabError> {
    control::status(dir)
}

pub(crate) fn writes(ctx: &Ctx) -> Result<Vec<Write>, LabError> {
    control::writes(ctx.dir, 0)
}

fn election(ctx: &Ctx) -> Duration {
    Duration::from_millis(ctx.plan.etcd.election_ms)
}

/// Polls `f` every 20 ms until it returns Some, or `timeout` passes.
pub(crate) fn wait_for<T>(
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>, LabError>,
) -> Result<Option<T>, LabError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f()? {
            return Ok(Some(v));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn agents(ctx: &Ctx) -> Vec<String> {
    ctx.plan.agents.iter().map(|&a| ctx.plan.hosts[a].name.clone()).collect()
}

fn server_names(ctx: &Ctx) -> Vec<String> {
    ctx.plan.servers.iter().map(|&s| ctx.plan.hosts[s].name.clone()).collect()
}

/// For each agent, the first write sent at or after `t` and acknowledged: (agent, ack time).
fn first_acks_after(ws: &[Write], agents: &[String], t: f64) -> Vec<(String, Option<f64>)> {
    agents
        .iter()
        .map(|a| {
            let first =
                ws.iter().filter(|w| w.agent == *a && w.sent_ms >= t).filter_map(|w| w.acked_ms).reduce(f64::min);
            (a.clone(), first)
        })
        .collect()
}

/// The leader that every running member among `hosts` agrees on, if it is one of them
/// (the view of one side of a partition).
fn leader_among(s: &LabStatus, hosts: &[String]) -> Option<String> {
    let side: Vec<(&str, crate::etcd::Status)> = s
        .hosts
        .iter()
        .filter(|h| hosts.contains(&h.name))
        .filter_map(|h| Some((h.name.as_str(), h.member.as_ref()?.status?)))
        .collect();
    let leader = side.first()?.1.leader;
    if leader == 0 || side.iter().any(|(_, st)| st.leader != leader) {
        return None;
    }
    side.iter().find(|(_, st)| st.member_id == leader).map(|(n, _)| n.to_string())
}

/// Pauses the probes, waits until every running member reports one revision, resumes.
fn converge(ctx: &mut Ctx, run: &mut Run, timeout: Duration) -> Result<(), LabError> {
    at(ctx, Request::PauseProbes)?;
    let started = Instant::now();
    let agreed = wait_for(timeout, || {
        let s = status(ctx.dir)?;
        let revs: Vec<u64> = s.hosts.iter().filter_map(|h| h.member.as_ref()?.status.map(|st| st.revision)).collect();
        let members = s.hosts.iter().filter(|h| h.member.is_some()).count();
        Ok((revs.len() == members && revs.windows(2).all(|w| w[0] == w[1])).then(|| revs.first().copied().unwrap_or(0)))
    })?;
    at(ctx, Request::ResumeProbes)?;
    run.metric("converge_ms", started.elapsed().as_secs_f64() * 1000.0);
    match agreed {
        Some(rev) => run.metric("revision", rev),
        None => run.failures.push(format!("members did not converge to one revision within {} s", timeout.as_secs())),
    }
    Ok(())
}

/// Every acknowledged write read back.
pub(crate) fn verify_result(ctx: &Ctx) -> Result<crate::control::VerifyResult, LabError> {
    match call(ctx, Request::Verify { via: None })? {
        Response::Verify(v) => Ok(v),
        _ => Err(LabError::UnexpectedAnswer { request: "verify".into() }),
    }
}

pub(crate) fn verify(ctx: &Ctx, run: &mut Run) -> Result<(), LabError> {
    match call(ctx, Request::Verify { via: None })? {
        Response::Verify(v) => {
            run.metric("acked_writes", v.acked);
            run.metric("lost_writes", v.lost.len());
            run.require(v.lost.is_empty() && v.mismatched.is_empty(), || {
                format!(
                    "{} acknowledged write(s) lost, {} with another value (first: {})",
                    v.lost.len(),
                    v.mismatched.len(),
                    v.lost.first().or(v.mismatched.first()).cloned().unwrap_or_default()
                )
            });
            Ok(())
        }
        _ => Err(LabError::UnexpectedAnswer { request: "verify".into() }),
    }
}

pub fn run(name: &str, ctx: &mut Ctx) -> ScenarioResult {
    let started = Instant::now();
    let mut run = Run { metrics: Map::new(), failures: Vec::new() };
    let result = match name {
        "formation" => formation(ctx, &mut run),
        "server-loss" => server_loss(ctx, &mut run),
        "quorum-loss" => quorum_loss(ctx, &mut run),
        "partition" => partition(ctx, &mut run),
        "profiles" => profiles(ctx, &mut run),
        d if crate::deploy_scenarios::NAMES.contains(&d) => crate::deploy_scenarios::run(d, ctx, &mut run),
        other => Err(LabError::UnknownScenario {
            name: other.to_owned(),
            known: BUILTIN.iter().map(|s| s.to_string()).collect(),
        }),
    };
    if let Err(e) = result {
        run.failures.push(format!("could not run: {e}"));
        // Leave the lab usable for the next scenario.
        let _ = at(ctx, Request::Heal);
        let _ = at(ctx, Request::ResumeProbes);
    }
    ScenarioResult {
        name: name.to_owned(),
        passed: run.failures.is_empty(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        metrics: run.metrics,
        failures: run.failures,
    }
}

fn formation(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
    (ctx.on_step)("checking every member and the leader");
    let s = status(ctx.dir)?;
    run.metric("bringup_ms", ctx.bringup_ms);
    run.metric("quorum_ms", ctx.quorum_ms);
    let members: Vec<_> = s.hosts.iter().filter_map(|h| h.member.as_ref().map(|m| (h.name.clone(), m))).collect();
    let healthy = members.iter().filter(|(_, m)| m.status.is_some()).count();
    run.metric("members", members.len());
    run.metric("healthy_members", healthy);
    run.require(healthy == members.len(), || format!("{} of {} etcd members healthy", healthy, members.len()));
    run.require(s.leader.is_some(), || "the members do not agree on one leader".into());
    if let Some(l) = &s.leader {
        run.metric("leader", l.clone());
    }
    let ws = writes(ctx)?;
    let firsts = first_acks_after(&ws, &agents(ctx), 0.0);
    for (a, t) in &firsts {
        run.require(t.is_some(), || format!("agent `{a}`'s first write was never acknowledged"));
    }
    let first_write =
        ws.iter().filter(|w| w.acked_ms.is_some()).map(|w| w.acked_ms.unwrap_or(0.0) - w.sent_ms).reduce(f64::max);
    run.metric("first_writes_max_latency_ms", first_write.unwrap_or(0.0));
    Ok(())
}

fn server_loss(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
    let s = status(ctx.dir)?;
    let leader = s.leader.ok_or_else(|| LabError::NoLeader { action: "kill".into() })?;
    run.metric("killed", leader.clone());
    // The measured margin: the slowest recent write, plus the wait between two probe writes.
    let ws = writes(ctx)?;
    let recent: Vec<&Write> = ws.iter().filter(|w| w.sent_ms >= s.now_ms - 3000.0).collect();
    let before = probe::stats(recent.iter().copied());
    (ctx.on_step)(&format!("killing the leader `{leader}`"));
    let t_kill = at(ctx, Request::Kill { host: leader.clone() })?;
    let limit = 2.0 * ctx.plan.etcd.election_ms as f64;
    // A probe notices the recovered cluster at its next attempt: a write stuck on a member
    // that lost its leader is abandoned after the probe's timeout, then retried.
    let margin = before.p99_ms.max(10.0) + ctx.probe_timeout_ms + ctx.probe_interval_ms;
    let agents = agents(ctx);
    // Every agent must get through again; the pass condition is on the first write the
    // cluster acknowledges after the kill (writes resumed), and each agent's own resume
    // time is reported too: it adds that agent's retry luck on its own lossy link.
    let all = wait_for(election(ctx) * 10, || {
        let ws = writes(ctx)?;
        let acks = first_acks_after(&ws, &agents, t_kill);
        Ok(acks.iter().all(|(_, t)| t.is_some()).then_some(acks))
    })?;
    run.metric("election_timeout_ms", ctx.plan.etcd.election_ms);
    run.metric("margin_ms", margin);
    match all {
        Some(acks) => {
            let first = acks.iter().filter_map(|(_, t)| *t).fold(f64::MAX, f64::min) - t_kill;
            let last = acks.iter().filter_map(|(_, t)| *t).fold(0.0, f64::max) - t_kill;
            run.metric("writes_resumed_ms", first);
            run.metric("all_agents_resumed_ms", last);
            run.require(first <= limit + margin, || {
                format!(
                    "writes resumed after {first:.0} ms, more than 2 x election timeout ({limit:.0} ms) + margin {margin:.0} ms"
                )
            });
        }
        None => run
            .failures
            .push(format!("some agent's writes did not resume within {} ms", 10 * ctx.plan.etcd.election_ms)),
    }
    let new_leader = wait_for(election(ctx) * 5, || Ok(status(ctx.dir)?.leader.filter(|l| *l != leader)))?;
    run.require(new_leader.is_some(), || "no new leader was elected".into());
    if let Some(l) = new_leader {
        run.metric("new_leader", l);
    }
    (ctx.on_step)(&format!("restarting `{leader}`"));
    at(ctx, Request::Start { host: leader })?;
    std::thread::sleep(election(ctx));
    converge(ctx, run, Duration::from_secs(20))?;
    verify(ctx, run)
}

/// The majority to kill: the leader first, then the other servers in order.
fn majority(servers: &[String], leader: Option<&String>) -> Vec<String> {
    let mut order: Vec<String> = leader.into_iter().cloned().collect();
    order.extend(servers.iter().filter(|s| Some(*s) != leader).cloned());
    order.truncate(servers.len() / 2 + 1);
    order
}

fn quorum_loss(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
    let s = status(ctx.dir)?;
    let servers = server_names(ctx);
    let down = majority(&servers, s.leader.as_ref());
    run.metric("killed", down.join(","));
    (ctx.on_step)(&format!("killing a majority: {}", down.join(", ")));
    let mut t_down = 0.0;
    for h in &down {
        t_down = at(ctx, Request::Kill { host: h.clone() })?;
    }
    let hold = Duration::from_millis((3 * ctx.plan.etcd.election_ms).max(3000));
    std::thread::sleep(hold);
    (ctx.on_step)("restoring the majority");
    let mut t_restore = f64::MAX;
    for h in &down {
        t_restore = t_restore.min(at(ctx, Request::Start { host: h.clone() })?);
    }
    let ws = writes(ctx)?;
    let during: Vec<&Write> = ws.iter().filter(|w| w.sent_ms >= t_down && w.sent_ms < t_restore).collect();
    let acked_during = during.iter().filter(|w| w.acked_ms.is_some_and(|a| a < t_restore)).count();
    run.metric("writes_tried_without_quorum", during.len());
    run.metric("writes_acked_without_quorum", acked_during);
    run.require(!during.is_empty(), || "no write was attempted while the majority was down".into());
    run.require(acked_during == 0, || format!("{acked_during} write(s) acknowledged while the majority was down"));
    let agents = agents(ctx);
    let resumed = wait_for(Duration::from_secs(30), || {
        let ws = writes(ctx)?;
        let acks = first_acks_after(&ws, &agents, t_restore);
        Ok(acks
            .iter()
            .all(|(_, t)| t.is_some())
            .then(|| acks.iter().filter_map(|(_, t)| *t).fold(0.0, f64::max) - t_restore))
    })?;
    match resumed {
        Some(ms) => run.metric("writes_resumed_ms", ms),
        None => run.failures.push("writes did not resume within 30 s of the restore".into()),
    }
    converge(ctx, run, Duration::from_secs(20))?;
    verify(ctx, run)
}

fn partition(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
    let s = status(ctx.dir)?;
    let leader = s.leader.ok_or_else(|| LabError::NoLeader { action: "isolate".into() })?;
    let others: Vec<String> = server_names(ctx).into_iter().filter(|n| *n != leader).collect();
    let leader_index = ctx.plan.host(&leader).map(|h| h.index).unwrap_or(usize::MAX);
    run.metric("isolated", leader.clone());
    (ctx.on_step)(&format!("cutting the leader `{leader}` off from {}", others.join(", ")));
    let t_cut = at(ctx, Request::Partition { a: vec![leader.clone()], b: others.clone() })?;
    let new_leader = wait_for(election(ctx) * 10, || Ok(leader_among(&status(ctx.dir)?, &others)))?;
    let elected_ms = status(ctx.dir)?.now_ms - t_cut;
    run.require(new_leader.is_some(), || "the majority side elected no leader".into());
    if let Some(l) = &new_leader {
        run.metric("new_leader", l.clone());
        run.metric("elected_within_ms", elected_ms);
    }
    // Let both sides take writes for a while.
    std::thread::sleep(Duration::from_millis((3 * ctx.plan.etcd.election_ms).max(2000)));
    let ws = writes(ctx)?;
    let after: Vec<&Write> = ws.iter().filter(|w| w.sent_ms >= t_cut).collect();
    let majority_acks = after.iter().filter(|w| w.server != leader_index && w.acked_ms.is_some()).count();
    let isolated_tries = after.iter().filter(|w| w.server == leader_index).count();
    let isolated_acks = after.iter().filter(|w| w.server == leader_index && w.acked_ms.is_some()).count();
    run.metric("majority_acked", majority_acks);
    run.metric("isolated_tried", isolated_tries);
    run.metric("isolated_acked", isolated_acks);
    run.require(majority_acks > 0, || "the majority side acknowledged no write".into());
    run.require(isolated_acks == 0, || format!("the isolated old leader acknowledged {isolated_acks} write(s)"));
    (ctx.on_step)("healing the partition");
    at(ctx, Request::Heal)?;
    converge(ctx, run, Duration::from_secs(20))?;
    verify(ctx, run)
}

/// A steady write workload under each built-in profile on every host's links. Reports
/// success %, latency and leader changes; passes when the cluster stays available under
/// `constrained`.
fn profiles(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
    let hosts: Vec<String> = ctx.plan.hosts.iter().map(|h| h.name.clone()).collect();
    let original: Vec<(String, String, n3x_model::model::Profile)> =
        ctx.plan.hosts.iter().map(|h| (h.name.clone(), h.profile_name.clone(), h.profile)).collect();
    let mut table = Map::new();
    for (name, profile) in n3x_model::model::BUILTIN_PROFILES {
        (ctx.on_step)(&format!("profile `{name}` on every link"));
        let t0 = at(ctx, Request::Impair { hosts: hosts.clone(), profile_name: (*name).into(), profile: *profile })?;
        let mut leaders = Vec::new();
        let window = Duration::from_secs(6);
        let until = Instant::now() + window;
        while Instant::now() < until {
            if let Some(l) = status(ctx.dir)?.leader {
                if leaders.last() != Some(&l) {
                    leaders.push(l);
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let ws = writes(ctx)?;
        // Writes sent in the window, less the last probe timeout: every one of them has an outcome.
        let end = t0 + window.as_secs_f64() * 1000.0 - ctx.probe_timeout_ms - 100.0;
        let st = probe::stats(ws.iter().filter(|w| w.sent_ms >= t0 && w.sent_ms < end));
        let changes = leaders.len().saturating_sub(1);
        table.insert(
            (*name).into(),
            json!({"success_pct": st.success_pct, "p50_ms": st.p50_ms, "p99_ms": st.p99_ms, "writes": st.attempted, "leader_changes": changes}),
        );
        if *name == "constrained" {
            run.require(st.acked > 0 && st.success_pct >= 90.0, || {
                format!("under `constrained` only {:.1}% of {} writes succeeded", st.success_pct, st.attempted)
            });
        }
    }
    for (host, name, profile) in original {
        at(ctx, Request::Impair { hosts: vec![host], profile_name: name, profile })?;
    }
    run.metric("profiles", Value::Object(table));
    verify(ctx, run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_starts_with_the_leader() {
        let s: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
        assert_eq!(majority(&s, Some(&"c".to_string())), ["c", "a", "b"]);
        assert_eq!(majority(&s[..3], None), ["a", "b"]);
    }

    #[test]
    fn first_acks_only_count_writes_sent_after_the_event() {
        let w = |agent: &str, sent: f64, acked: Option<f64>| Write {
            agent: agent.into(),
            seq: 0,
            server: 0,
            sent_ms: sent,
            acked_ms: acked,
            revision: 0,
            value: String::new(),
        };
        let ws = [w("a", 90.0, Some(120.0)), w("a", 110.0, None), w("a", 130.0, Some(180.0)), w("b", 50.0, Some(60.0))];
        let r = first_acks_after(&ws, &["a".into(), "b".into()], 100.0);
        assert_eq!(r, [("a".to_string(), Some(180.0)), ("b".to_string(), None)]);
    }
}
