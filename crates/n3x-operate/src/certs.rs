//! `n3x certs rotate`: k3s's certificate rotation, one host at a time, so the cluster
//! keeps quorum and keeps taking writes.
//!
//! For each host: `systemctl stop k3s`, `k3s certificate rotate` (new certificates from the
//! cluster's CAs, etcd's included), `systemctl start k3s`, then wait until it is back (a
//! server's etcd member answers with a leader and is a voting member; an agent's node is
//! Ready). Servers go first, followers before the leader, whose leadership is first moved
//! to a server already rotated; the agents follow. Refused (nothing changed) unless every
//! etcd member answers with one leader: a rolling restart of a degraded cluster can lose
//! its quorum. Every step is safe to repeat, so a stopped rotation is run again.

use std::time::{Duration, Instant};

use n3x_deploy::observe::{Ask, ClusterView};
use n3x_deploy::{ClusterSpec, HostSpec, commands};
use serde::Serialize;

use crate::backup::{Progress, Step, wait_member};
use crate::error::OperateError;
use crate::status::{CertExpiry, earliest_expiry};

pub struct RotateOptions {
    /// Print the steps, run none.
    pub plan_only: bool,
    /// Rotate even when not every member answers (a host being down is what is fixed).
    pub force: bool,
    /// Each command's timeout.
    pub timeout: Duration,
    /// How long a host may take to be back after its k3s starts.
    pub start_timeout: Duration,
    /// Now, in seconds since the epoch (for the expiry before and after).
    pub now_unix: u64,
}

#[derive(Debug, Serialize)]
pub struct Rotated {
    pub steps: Vec<Step>,
    /// Done (false for `--plan`).
    pub ran: bool,
    /// The first k3s certificate to expire, read on a server before and after.
    pub before: Option<CertExpiry>,
    pub after: Option<CertExpiry>,
    pub took_ms: u64,
}

/// The hosts in rotation order: followers, the leader (`leader`), then the agents.
pub fn order<'s>(spec: &'s ClusterSpec, leader: Option<&str>) -> Vec<&'s HostSpec> {
    let mut out: Vec<&HostSpec> = spec.servers().filter(|h| Some(h.name.as_str()) != leader).collect();
    out.extend(spec.servers().filter(|h| Some(h.name.as_str()) == leader));
    out.extend(spec.hosts.iter().filter(|h| !h.server));
    out
}

/// The procedure, as steps, for hosts in `order`.
pub fn plan(hosts: &[&HostSpec], t: Duration) -> Vec<Step> {
    let mut steps = Vec::new();
    for h in hosts {
        let step = |what: &str, c: n3x_remote::Command| Step {
            host: h.name.clone(),
            what: what.into(),
            command: c.display(),
            took_ms: None,
        };
        steps.push(step("stop k3s", commands::k3s_stop(t)));
        steps.push(step("rotate its certificates", commands::certificate_rotate(t)));
        let back =
            if h.server { "start k3s; wait for its etcd member" } else { "start k3s; wait until its node is Ready" };
        steps.push(step(back, commands::k3s_start(t)));
    }
    steps
}

fn expiry(ask: Ask<'_>, via: &HostSpec, now_unix: u64) -> Option<CertExpiry> {
    let pem = ask.run(via, "reading the certificates", &commands::read_certs(ask.timeout)).ok()?;
    earliest_expiry(&pem, now_unix).ok()
}

/// Waits until node `name` is Ready in the node list a server gives.
fn wait_ready(ask: Ask<'_>, spec: &ClusterSpec, name: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match spec.servers().find_map(|s| ask.nodes(s).ok()) {
            Some(nodes) if nodes.iter().any(|n| n.name == name && n.ready) => return Ok(()),
            Some(_) => format!("node `{name}` is not Ready"),
            None => "no server answered the node list".to_owned(),
        };
        if Instant::now() > deadline {
            return Err(last);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Rotates every host's k3s certificates (see the module's documentation).
pub fn rotate(
    ask: Ask<'_>,
    spec: &ClusterSpec,
    opts: &RotateOptions,
    progress: Progress<'_>,
) -> Result<Rotated, OperateError> {
    let t0 = Instant::now();
    let view = ClusterView::ask(ask, spec);
    let leader = view.leader().map(|h| h.name.clone());
    let hosts = order(spec, leader.as_deref());
    let mut steps = plan(&hosts, opts.timeout);
    if opts.plan_only {
        return Ok(Rotated { steps, ran: false, before: None, after: None, took_ms: t0.elapsed().as_millis() as u64 });
    }
    let servers = spec.servers().count();
    if !opts.force && (leader.is_none() || view.healthy() < servers) {
        return Err(OperateError::Unhealthy {
            cluster: spec.name.clone(),
            detail: format!(
                "{} of {servers} etcd members answer, {}",
                view.healthy(),
                leader.as_deref().map_or("no leader".to_owned(), |l| format!("`{l}` leads"))
            ),
        });
    }
    let via = view.leader().or_else(|| spec.servers().next()).ok_or_else(|| OperateError::NoServer {
        cluster: spec.name.clone(),
        detail: "the inventory has no server".into(),
    })?;
    let before = expiry(ask, via, opts.now_unix);
    let t = opts.timeout;
    let long = t.max(Duration::from_secs(300));
    let mut rotated: Vec<String> = Vec::new();
    for (n, h) in hosts.iter().enumerate() {
        let fail =
            |what: &str, detail: String| OperateError::Rotate { step: format!("{what} on `{}`", h.name), detail };
        // The leader's turn: hand leadership to a server already rotated, as a deploy does.
        if h.server && leader.as_deref() == Some(h.name.as_str()) {
            let now = ClusterView::ask(ask, spec);
            let to = rotated.iter().find_map(|r| now.status_of(r).and_then(|_| now.member_id(r)).map(|id| (r, id)));
            if let (Some(current), Some((to, id))) = (now.leader().filter(|l| l.name == h.name), to) {
                progress(&format!("{}: moving etcd leadership to {to}", h.name));
                ask.move_leader(current, id).map_err(|e| fail("moving etcd leadership", e.to_string()))?;
            }
        }
        for (k, cmd) in [commands::k3s_stop(t), commands::certificate_rotate(long), commands::k3s_start(long)]
            .into_iter()
            .enumerate()
        {
            let i = n * 3 + k;
            let s = Instant::now();
            progress(&format!("{}: {}", h.name, steps[i].what));
            let ran = ask.remote.run_ok(&h.target(), &cmd).map_err(|e| fail(&steps[i].what, e.to_string()));
            if let Err(e) = ran {
                // Stopped by us and not rotated: start it again on its old certificates, so a
                // failed rotation leaves no host down.
                if k == 1 {
                    let _ = ask.remote.run_ok(&h.target(), &commands::k3s_start(long));
                }
                return Err(e);
            }
            if k == 2 {
                let back = if h.server {
                    wait_member(ask, h, opts.start_timeout)
                } else {
                    wait_ready(ask, spec, &h.name, opts.start_timeout)
                };
                back.map_err(|d| fail("waiting for it to be back", d))?;
            }
            steps[i].took_ms = Some(s.elapsed().as_millis() as u64);
        }
        rotated.push(h.name.clone());
    }
    let after = expiry(ask, ClusterView::ask(ask, spec).leader().unwrap_or(via), opts.now_unix);
    Ok(Rotated { steps, ran: true, before, after, took_ms: t0.elapsed().as_millis() as u64 })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use n3x_deploy::testing::{healthy, reference};
    use n3x_remote::fake;

    use super::*;

    fn opts() -> RotateOptions {
        RotateOptions {
            plan_only: false,
            force: false,
            timeout: Duration::from_secs(1),
            start_timeout: Duration::from_secs(1),
            now_unix: 0,
        }
    }

    fn run(f: &fake::Fake, o: &RotateOptions) -> Result<Rotated, OperateError> {
        f.on(|_, argv| (argv[0] == "curl" && argv.last()?.ends_with(n3x_etcd::MOVE_LEADER)).then(|| fake::ok("{}")));
        let spec = reference();
        rotate(Ask { remote: f, timeout: Duration::from_secs(1) }, &spec, o, &mut |_| {})
    }

    /// Followers, then the leader (after its leadership moved to a rotated server), then
    /// the agents; each host stopped, rotated and started in that order.
    #[test]
    fn hosts_rotate_one_at_a_time_leader_last_agents_after() {
        let f = healthy();
        let r = run(&f, &opts()).unwrap();
        assert!(r.ran);
        let hosts: Vec<&str> = r.steps.iter().step_by(3).map(|s| s.host.as_str()).collect();
        assert_eq!(hosts, ["n100-2", "n100-3", "n100-1", "jetson-1", "jetson-2"]);
        let calls = f.calls();
        let rotations: Vec<&str> = calls
            .iter()
            .filter(|(_, argv)| {
                argv.first().is_some_and(|a| a == "k3s") && argv.get(1).is_some_and(|a| a == "certificate")
            })
            .map(|(host, _)| host.as_str())
            .collect();
        assert_eq!(rotations, hosts);
        // Each host: stop, rotate, start, in that order, before the next host.
        let mine: Vec<String> = calls
            .iter()
            .filter(|(host, argv)| host == "n100-2" && argv.first().is_some_and(|a| a == "systemctl" || a == "k3s"))
            .filter(|(_, argv)| argv.get(1).is_some_and(|a| a != "kubectl"))
            .map(|(_, argv)| argv[..2].join(" "))
            .collect();
        assert_eq!(mine, ["systemctl stop", "k3s certificate", "systemctl start"]);
        let moved =
            calls.iter().position(|(h, argv)| h == "n100-1" && argv.iter().any(|a| a.contains("transfer-leadership")));
        let stopped = calls.iter().position(|(h, argv)| h == "n100-1" && argv.get(1).is_some_and(|a| a == "stop"));
        assert!(moved.is_some() && moved < stopped, "the leader's leadership was not moved before it stopped");
    }

    #[test]
    fn the_plan_runs_nothing_and_a_degraded_cluster_is_refused() {
        let f = healthy();
        let mut o = opts();
        o.plan_only = true;
        let r = run(&f, &o).unwrap();
        assert!(!r.ran);
        assert_eq!(r.steps.len(), 15);
        assert!(f.calls().iter().all(|(_, argv)| !argv.iter().any(|a| a == "certificate" || a == "stop")));

        let f = healthy();
        f.on(|t, argv| {
            (t.host == "n100-3" && argv.iter().any(|a| a.contains("/v3/maintenance/status")))
                .then(|| fake::exit(7, "curl: (7) Failed to connect"))
        });
        let e = run(&f, &opts()).unwrap_err();
        assert!(matches!(e, OperateError::Unhealthy { .. }), "{e}");
        assert_eq!(e.kind(), crate::Kind::Refused);
        assert!(f.calls().iter().all(|(_, argv)| !argv.iter().any(|a| a == "certificate")));
    }

    #[test]
    fn a_failing_step_names_itself_and_leaves_no_host_down() {
        let f = healthy();
        f.on(|t, argv| {
            (t.host == "n100-3" && argv.get(1).is_some_and(|a| a == "certificate"))
                .then(|| fake::exit(1, "rotate: permission denied"))
        });
        let e = run(&f, &opts()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("n100-3") && msg.contains("rotate its certificates"), "{msg}");
        assert_eq!(e.kind(), crate::Kind::Interrupted);
        // The k3s it stopped is started again.
        let calls = f.calls();
        let last = calls.iter().rev().find(|(h, _)| h == "n100-3").unwrap();
        assert_eq!(last.1[..2], ["systemctl".to_string(), "start".to_string()], "n100-3 was left stopped");
    }
}
