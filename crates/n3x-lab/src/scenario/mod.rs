//! Scenarios: break the running lab on purpose and check what etcd (the datastore inside
//! k3s servers) does. They act only through the supervisor's control socket, and judge by
//! the probes' write log: a write counts as acknowledged only when etcd answered it.
//!
//! - `kit`: what every scenario uses: the context, the result being built, the control
//!   calls, waiting, converging and reading every acknowledged write back.
//! - `cluster`: formation, server-loss, quorum-loss, partition, profiles.
//! - `deploy`: deploys rehearsed over SSH (rolling, bad, cut, and the baselines).
//! - `recovery`: disaster-recovery, a backup and a restore over SSH.
//! - `rotation`: cert-rotation, certificates near expiry renewed over SSH host by host.
//! - `replace`: agent-replace, a lost agent installed again over SSH.

mod cluster;
mod deploy;
mod kit;
mod recovery;
mod replace;
mod rotation;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use n3x_pictures::timeline::{LeaderChange, Series, Window, WritePoint};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use kit::{Ctx, status};

use crate::error::LabError;
use kit::{Request, Run, at};

/// Every scenario, by name.
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
    "token-rotation",
    recovery::NAME,
    rotation::NAME,
    replace::NAME,
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
    /// What the timeline draws: every write, the fault windows, the leader changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<Series>,
}

/// At most this many acknowledged writes go into a scenario's series (evenly thinned;
/// every failed one is kept).
const MAX_POINTS: usize = 20_000;

/// Samples the leader every 100 ms until `stop`: (lab time, leader) at each change.
fn watch_leader(dir: &std::path::Path, stop: &AtomicBool) -> Vec<(f64, Option<String>)> {
    let mut changes: Vec<(f64, Option<String>)> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        if let Ok(s) = status(dir) {
            if changes.last().is_none_or(|(_, l)| *l != s.leader) {
                changes.push((s.now_ms, s.leader));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    changes
}

/// The scenario's time series, from the write log between `from` and `to` (lab clock).
fn series(ctx: &Ctx, run: &Run, from: f64, to: f64, leaders: Vec<(f64, Option<String>)>) -> Option<Series> {
    let agents = kit::agents(ctx);
    let ws = kit::writes(ctx).ok()?;
    let writes = ws
        .iter()
        .filter(|w| w.sent_ms >= from && w.sent_ms <= to)
        .filter_map(|w| {
            Some(WritePoint {
                agent: agents.iter().position(|a| *a == w.agent)?,
                at_ms: w.sent_ms - from,
                latency_ms: w.acked_ms.map(|a| a - w.sent_ms),
            })
        })
        .collect();
    let rel = |t: f64| (t - from).max(0.0);
    let mut s = Series {
        from_ms: from,
        to_ms: to,
        agents,
        writes,
        windows: run
            .windows
            .iter()
            .map(|w| Window { from_ms: rel(w.from_ms), to_ms: rel(w.to_ms), ..w.clone() })
            .collect(),
        // The first sample is the leader the scenario started with, not a change.
        leaders: leaders.into_iter().skip(1).map(|(t, leader)| LeaderChange { at_ms: rel(t), leader }).collect(),
        longest_gap: None,
        dropped: 0,
    };
    s.longest_gap = s.compute_longest_gap();
    s.thin(MAX_POINTS);
    Some(s)
}

pub fn run(name: &str, ctx: &mut Ctx) -> ScenarioResult {
    let started = Instant::now();
    let mut run = Run::new();
    let from = kit::now_ms(ctx).ok();
    let stop = AtomicBool::new(false);
    let dir = ctx.dir;
    let (result, leaders) = std::thread::scope(|sc| {
        let watcher = sc.spawn(|| watch_leader(dir, &stop));
        let r = run_one(name, ctx, &mut run);
        stop.store(true, Ordering::SeqCst);
        (r, watcher.join().unwrap_or_default())
    });
    let to = kit::now_ms(ctx).ok();
    let series = match (from, to) {
        (Some(f), Some(t)) => series(ctx, &run, f, t, leaders),
        _ => None,
    };
    finish(name, started, run, result, ctx, series)
}

fn run_one(name: &str, ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
    match name {
        "formation" => cluster::formation(ctx, run),
        "server-loss" => cluster::server_loss(ctx, run),
        "quorum-loss" => cluster::quorum_loss(ctx, run),
        "partition" => cluster::partition(ctx, run),
        "profiles" => cluster::profiles(ctx, run),
        d if deploy::NAMES.contains(&d) => deploy::run(d, ctx, run),
        recovery::NAME => recovery::run(ctx, run),
        rotation::NAME => rotation::run(ctx, run),
        replace::NAME => replace::run(ctx, run),
        other => Err(LabError::UnknownScenario {
            name: other.to_owned(),
            known: BUILTIN.iter().map(|s| s.to_string()).collect(),
        }),
    }
}

fn finish(
    name: &str,
    started: Instant,
    mut run: Run,
    result: Result<(), LabError>,
    ctx: &Ctx,
    series: Option<Series>,
) -> ScenarioResult {
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
        series,
    }
}
