//! The cluster scenarios: formation, server-loss, quorum-loss, partition, profiles. They act
//! only through the control socket and judge by the probes' write log.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::kit::*;
use crate::error::LabError;
use crate::probe::{self, Write};

pub(super) fn formation(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
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

pub(super) fn server_loss(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
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
    let t_start = at(ctx, Request::Start { host: leader.clone() })?;
    run.window("kill", format!("{leader} killed"), t_kill, t_start);
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

pub(super) fn quorum_loss(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
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
    run.window("quorum-loss", format!("{} killed (no quorum)", down.join(", ")), t_down, t_restore);
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

pub(super) fn partition(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
    let s = status(ctx.dir)?;
    let leader = s.leader.ok_or_else(|| LabError::NoLeader { action: "isolate".into() })?;
    let others: Vec<String> = server_names(ctx).into_iter().filter(|n| *n != leader).collect();
    let leader_index = ctx.plan.host(&leader).map(|h| h.index).unwrap_or(usize::MAX);
    run.metric("isolated", leader.clone());
    (ctx.on_step)(&format!("cutting the leader `{leader}` off from {}", others.join(", ")));
    let t_cut = at(ctx, Request::Partition { a: vec![leader.clone()], b: others.clone() })?;
    let new_leader = wait_for(election(ctx) * 10, || Ok(leader_among(&status(ctx.dir)?, &others)))?;
    let elected_ms = now_ms(ctx)? - t_cut;
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
    let t_heal = at(ctx, Request::Heal)?;
    run.window("partition", format!("{leader} cut off"), t_cut, t_heal);
    converge(ctx, run, Duration::from_secs(20))?;
    verify(ctx, run)
}

/// A steady write workload under each built-in profile on every host's links. Reports
/// success %, latency and leader changes; passes when the cluster stays available under
/// `constrained`.
pub(super) fn profiles(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
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
        run.window("profile", *name, t0, t0 + window.as_secs_f64() * 1000.0);
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
