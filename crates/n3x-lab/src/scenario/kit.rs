//! What every scenario uses: the context, the result being built, the control calls,
//! waiting, converging, and reading every acknowledged write back.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

pub(crate) use crate::control::Request;
use crate::control::{self, LabStatus, Response};
use crate::error::LabError;
use crate::plan::LabPlan;
use crate::probe::Write;

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
    /// Fault windows and actions, on the lab's clock, for the timeline.
    pub(crate) windows: Vec<n3x_pictures::timeline::Window>,
}

impl Run {
    pub(crate) fn new() -> Run {
        Run { metrics: Map::new(), failures: Vec::new(), windows: Vec::new() }
    }

    /// Records a window of the scenario (lab clock; the series makes it relative).
    pub(crate) fn window(&mut self, kind: &str, label: impl Into<String>, from_ms: f64, to_ms: f64) {
        self.windows.push(n3x_pictures::timeline::Window { kind: kind.into(), label: label.into(), from_ms, to_ms });
    }

    pub(crate) fn metric(&mut self, k: &str, v: impl Into<Value>) {
        self.metrics.insert(k.into(), v.into());
    }

    pub(crate) fn require(&mut self, ok: bool, why: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(why());
        }
    }
}

pub(crate) fn call(ctx: &Ctx, req: Request) -> Result<Response, LabError> {
    control::call(ctx.dir, &req, Duration::from_secs(60))
}

pub(crate) fn at(ctx: &Ctx, req: Request) -> Result<f64, LabError> {
    control::act(ctx.dir, &req, Duration::from_secs(60))
}

pub fn status(dir: &Path) -> Result<LabStatus, LabError> {
    control::status(dir)
}

/// Wall-clock seconds since the epoch (what backups and certificate expiry are judged by).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `n3x status` of the lab, over its SSH, as `n3x status --lab` asks it (no journal, no
/// backup directory).
pub(crate) fn operator_status(
    ask: n3x_deploy::observe::Ask<'_>,
    spec: &n3x_deploy::ClusterSpec,
) -> n3x_operate::status::Report {
    let ctx = n3x_operate::status::Context { lab: true, journal: None, newest_backup: None, now_unix: unix_now() };
    n3x_operate::status::collect(ask, spec, &ctx)
}

/// The lab's clock now (milliseconds since the supervisor started), as the write log uses.
pub(crate) fn now_ms(ctx: &Ctx) -> Result<f64, LabError> {
    Ok(status(ctx.dir)?.now_ms)
}

pub(crate) fn writes(ctx: &Ctx) -> Result<Vec<Write>, LabError> {
    control::writes(ctx.dir, 0)
}

pub(crate) fn election(ctx: &Ctx) -> Duration {
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

pub(crate) fn agents(ctx: &Ctx) -> Vec<String> {
    ctx.plan.agents.iter().map(|&a| ctx.plan.hosts[a].name.clone()).collect()
}

pub(crate) fn server_names(ctx: &Ctx) -> Vec<String> {
    ctx.plan.servers.iter().map(|&s| ctx.plan.hosts[s].name.clone()).collect()
}

/// For each agent, the first write sent at or after `t` and acknowledged: (agent, ack time).
pub(crate) fn first_acks_after(ws: &[Write], agents: &[String], t: f64) -> Vec<(String, Option<f64>)> {
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
pub(crate) fn leader_among(s: &LabStatus, hosts: &[String]) -> Option<String> {
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
pub(crate) fn converge(ctx: &mut Ctx, run: &mut Run, timeout: Duration) -> Result<(), LabError> {
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
