//! `n3x lab run`: bring a lab up, run scenarios against it, write the report, tear it
//! down. The session reports what happens as events (one renderer in the binary draws
//! them) and returns every outcome, including a failed teardown or report write, so the
//! exit code can say so.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::lifecycle::{self, DownReport, UpFailed, UpReport};
use crate::preflight::Prepared;
use crate::report::{LabInfo, Report};
use crate::scenario::{self, Ctx, ScenarioResult};
use crate::system::System;

#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Scenario names; empty runs [`scenario::DEFAULT`].
    pub scenarios: Vec<String>,
    pub report_dir: PathBuf,
    /// Leave the lab up afterwards.
    pub keep: bool,
}

/// What happens, in order, for the renderer.
#[derive(Debug)]
pub enum SessionEvent<'a> {
    /// A step of building the lab.
    Building(&'a str),
    Up(&'a UpReport),
    ScenarioStarted {
        index: usize,
        total: usize,
        name: &'a str,
    },
    ScenarioStep {
        name: &'a str,
        message: &'a str,
    },
    ScenarioDone(&'a ScenarioResult),
}

/// How a session ended, worst first: the binary maps each to an exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Something of the lab could not be removed: `n3x lab down` must finish the job.
    TeardownFailed,
    /// The report could not be written: nobody can read what happened.
    ReportNotWritten,
    ScenarioFailed,
    Passed,
}

#[derive(Debug)]
pub struct SessionOutcome {
    pub report: Report,
    /// None with `keep`.
    pub teardown: Option<DownReport>,
    pub report_error: Option<std::io::Error>,
}

impl SessionOutcome {
    pub fn verdict(&self) -> Verdict {
        verdict(self.teardown.as_ref().is_some_and(|d| !d.ok()), self.report_error.is_some(), self.report.passed)
    }
}

fn verdict(teardown_failed: bool, report_failed: bool, passed: bool) -> Verdict {
    if teardown_failed {
        Verdict::TeardownFailed
    } else if report_failed {
        Verdict::ReportNotWritten
    } else if !passed {
        Verdict::ScenarioFailed
    } else {
        Verdict::Passed
    }
}

/// Runs the whole session. Fails only when the lab could not be brought up.
pub fn run(
    sys: &dyn System,
    root: &Path,
    exe: &Path,
    p: &Prepared,
    opts: &SessionOptions,
    on: &mut dyn FnMut(SessionEvent<'_>),
) -> Result<SessionOutcome, Box<UpFailed>> {
    let names: Vec<String> = if opts.scenarios.is_empty() {
        scenario::DEFAULT.iter().map(|s| s.to_string()).collect()
    } else {
        opts.scenarios.clone()
    };
    let plan = &p.opts.plan;
    let up = lifecycle::up(sys, root, exe, &p.opts, &p.inventory, &mut |m| on(SessionEvent::Building(m)))?;
    on(SessionEvent::Up(&up));
    let dir = root.join(&plan.cluster);
    let mut results = Vec::new();
    for (index, name) in names.iter().enumerate() {
        on(SessionEvent::ScenarioStarted { index, total: names.len(), name });
        let mut on_step = |m: &str| on(SessionEvent::ScenarioStep { name, message: m });
        let mut ctx = Ctx {
            dir: &dir,
            plan,
            bringup_ms: up.bringup_ms,
            quorum_ms: up.quorum_ms,
            probe_interval_ms: p.opts.probe_interval_ms as f64,
            probe_timeout_ms: crate::supervisor::probe_timeout_ms(plan) as f64,
            on_step: &mut on_step,
        };
        let r = scenario::run(name, &mut ctx);
        on(SessionEvent::ScenarioDone(&r));
        results.push(r);
    }
    let (teardown, teardown_ms) = if opts.keep {
        (None, None)
    } else {
        let t = Instant::now();
        let d = lifecycle::down(sys, root, &plan.cluster, Some(plan));
        (Some(d), Some(t.elapsed().as_secs_f64() * 1000.0))
    };
    let passed = results.iter().all(|r| r.passed);
    let report = Report {
        lab: LabInfo {
            cluster: plan.cluster.clone(),
            inventory: p.inventory.clone(),
            hosts: plan.hosts.len(),
            servers: plan.servers.len(),
            networks: plan.networks.len(),
            fabric: p.opts.fabric.as_str().into(),
            fabric_reason: p.fabric_reason.clone(),
            seed: plan.seed,
            bringup_ms: up.bringup_ms,
            quorum_ms: up.quorum_ms,
            teardown_ms,
        },
        scenarios: results,
        passed,
        topology: Some(p.topology.clone()),
    };
    let report_error = crate::report::write(&opts.report_dir, &report).err();
    Ok(SessionOutcome { report, teardown, report_error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_outcome_decides() {
        assert_eq!(verdict(false, false, true), Verdict::Passed);
        assert_eq!(verdict(false, false, false), Verdict::ScenarioFailed);
        assert_eq!(verdict(false, true, false), Verdict::ReportNotWritten);
        assert_eq!(verdict(true, true, false), Verdict::TeardownFailed);
        assert_eq!(verdict(true, false, true), Verdict::TeardownFailed);
    }
}
