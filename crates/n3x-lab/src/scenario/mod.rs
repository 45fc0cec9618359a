//! Scenarios: break the running lab on purpose and check what etcd (the datastore inside
//! k3s servers) does. They act only through the supervisor's control socket, and judge by
//! the probes' write log: a write counts as acknowledged only when etcd answered it.
//!
//! - `kit`: what every scenario uses: the context, the result being built, the control
//!   calls, waiting, converging and reading every acknowledged write back.
//! - `cluster`: formation, server-loss, quorum-loss, partition, profiles.
//! - `deploy`: deploys rehearsed over SSH (rolling, bad, cut, and the baselines).
//! - `recovery`: disaster-recovery, a backup and a restore over SSH.

mod cluster;
mod deploy;
mod kit;
mod recovery;

use std::time::Instant;

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
    recovery::NAME,
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

pub fn run(name: &str, ctx: &mut Ctx) -> ScenarioResult {
    let started = Instant::now();
    let mut run = Run { metrics: Map::new(), failures: Vec::new() };
    let result = match name {
        "formation" => cluster::formation(ctx, &mut run),
        "server-loss" => cluster::server_loss(ctx, &mut run),
        "quorum-loss" => cluster::quorum_loss(ctx, &mut run),
        "partition" => cluster::partition(ctx, &mut run),
        "profiles" => cluster::profiles(ctx, &mut run),
        d if deploy::NAMES.contains(&d) => deploy::run(d, ctx, &mut run),
        recovery::NAME => recovery::run(ctx, &mut run),
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
