//! The health gates a host must pass after a switch (and after a rollback), checked from
//! the deployer over new SSH connections: sshd answers, k3s is active, the node is Ready,
//! and on servers the etcd member is healthy and caught up with the leader, with quorum
//! intact.

use std::time::{Duration, Instant};

use n3x_remote::RemoteError;

use crate::error::DeployError;
use crate::observe::{Ask, ClusterView, is_member_of};
use crate::{ClusterSpec, HostSpec};

/// A failed check in a few words: what the host answered, not the whole command line.
pub fn reason(e: &DeployError) -> String {
    let DeployError::Remote { source, .. } = e else { return e.to_string() };
    match source.as_ref() {
        RemoteError::Failed { stderr, status, .. } => {
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
            if last.is_empty() { format!("exit {status}") } else { last.trim().to_owned() }
        }
        RemoteError::Timeout { secs, .. } => format!("no answer within {secs} s"),
        other => other.to_string(),
    }
}

/// Why `host` does not pass now; empty when it does.
pub fn check(ask: Ask<'_>, spec: &ClusterSpec, host: &HostSpec) -> Vec<String> {
    if let Err(e) = ask.reachable(host) {
        return vec![format!("sshd does not answer ({})", reason(&e))];
    }
    let mut failures = Vec::new();
    match ask.k3s_active(host) {
        Ok(true) => {}
        Ok(false) => failures.push("k3s is not active".to_owned()),
        Err(e) => failures.push(format!("k3s's state is unknown ({})", reason(&e))),
    }
    if host.server {
        failures.extend(server(ask, spec, host));
    }
    // The node's Ready condition, from the API of the host itself (a server) or of a server.
    let via: Vec<&HostSpec> = if host.server { vec![host] } else { spec.servers().collect() };
    let mut last_err = None;
    let mut answered = false;
    for v in via {
        match ask.nodes(v) {
            Ok(nodes) => {
                answered = true;
                match nodes.iter().find(|n| n.name == host.name) {
                    Some(n) if n.ready => {}
                    Some(_) => failures.push("the node is not Ready".into()),
                    None => failures.push("the node is not registered".into()),
                }
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    if !answered {
        failures.push(last_err.map_or_else(
            || "no server answers for the node list".into(),
            |e| format!("the node list is unavailable ({})", reason(&e)),
        ));
    }
    failures
}

/// The etcd part: the member answers, the members agree on a leader, a majority of the
/// servers answer, and the member has applied everything the leader had before it asked.
fn server(ask: Ask<'_>, spec: &ClusterSpec, host: &HostSpec) -> Vec<String> {
    let view = ClusterView::ask(ask, spec);
    let mut failures = Vec::new();
    // Quorum counts the voting members etcd has (a cluster being installed has fewer than
    // the inventory's servers), and which of them answer.
    match ask.members(host) {
        Ok(members) => {
            let voting: Vec<_> = members.iter().filter(|m| !m.is_learner).collect();
            let answering = voting
                .iter()
                .filter(|m| spec.servers().find(|s| is_member_of(m, s)).and_then(|s| view.status_of(&s.name)).is_some())
                .count();
            if answering <= voting.len() / 2 {
                failures.push(format!("quorum lost: {answering} of {} etcd members answer", voting.len()));
            }
        }
        Err(e) => failures.push(format!("the etcd member list is unavailable ({})", reason(&e))),
    }
    let Some(leader) = view.leader() else {
        failures.push("the etcd members do not agree on a leader".into());
        return failures;
    };
    let Some(leader_index) = view.status_of(&leader.name).map(|s| s.raft_index) else {
        failures.push("the etcd leader does not answer".into());
        return failures;
    };
    // Asked after the leader: "caught up" means it applied what the leader had then.
    match ask.status(host) {
        Ok(s) => {
            let applied = if s.raft_applied_index > 0 { s.raft_applied_index } else { s.raft_index };
            if applied < leader_index {
                failures.push(format!("etcd member behind the leader: applied {applied} of {leader_index}"));
            }
        }
        Err(e) => failures.push(format!("its etcd member does not answer ({})", reason(&e))),
    }
    failures
}

/// Checks `host` every `interval` until it passes (Ok) or `deadline` (the last failures).
pub fn wait(
    ask: Ask<'_>,
    spec: &ClusterSpec,
    host: &HostSpec,
    deadline: Instant,
    interval: Duration,
) -> Result<Duration, Vec<String>> {
    let started = Instant::now();
    loop {
        let failures = check(ask, spec, host);
        if failures.is_empty() {
            return Ok(started.elapsed());
        }
        if Instant::now() + interval >= deadline {
            return Err(failures);
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use n3x_remote::fake::{self, Fake};

    use super::*;

    use crate::testing::healthy;

    fn ask(f: &Fake) -> Ask<'_> {
        Ask { remote: f, timeout: Duration::from_secs(1) }
    }

    #[test]
    fn a_healthy_server_and_agent_pass() {
        let spec = crate::testing::reference();
        let f = healthy();
        assert_eq!(check(ask(&f), &spec, spec.host("n100-2").unwrap()), Vec::<String>::new());
        assert_eq!(check(ask(&f), &spec, spec.host("jetson-1").unwrap()), Vec::<String>::new());
        // The first thing asked is a new connection running `true`.
        assert_eq!(f.calls()[0], ("n100-2".to_string(), vec!["true".to_string()]));
    }

    #[test]
    fn each_failure_is_named() {
        let spec = crate::testing::reference();
        let h = spec.host("n100-2").unwrap();
        // k3s down and its member gone.
        let f = healthy();
        f.on(|t, argv| (t.host == "n100-2" && argv[0] == "systemctl").then(|| fake::exit(3, "")));
        f.on(|t, argv| {
            (t.host == "n100-2" && argv[0] == "curl" && argv.last()?.ends_with(n3x_etcd::STATUS))
                .then(|| fake::exit(7, "connection refused"))
        });
        let fails = check(ask(&f), &spec, h);
        assert!(fails.contains(&"k3s is not active".to_string()), "{fails:?}");
        assert!(fails.iter().any(|m| m.starts_with("its etcd member does not answer")), "{fails:?}");
        // Behind the leader.
        let f = healthy();
        f.on(|t, argv| {
            (t.host == "n100-2" && argv[0] == "curl" && argv.last()?.ends_with(n3x_etcd::STATUS)).then(|| {
                fake::ok(r#"{"header":{"member_id":"2"},"leader":"1","raftIndex":"90","raftAppliedIndex":"80"}"#)
            })
        });
        assert_eq!(check(ask(&f), &spec, h), ["etcd member behind the leader: applied 80 of 100"]);
        // Two members gone: no quorum.
        let f = healthy();
        f.on(|t, argv| {
            (t.host != "n100-1" && argv[0] == "curl" && argv.last()?.ends_with(n3x_etcd::STATUS))
                .then(|| fake::exit(7, "refused"))
        });
        let fails = check(ask(&f), &spec, h);
        assert!(fails[0].starts_with("quorum lost: 1 of 3"), "{fails:?}");
        // Not Ready.
        let f = healthy();
        f.on(|_, argv| {
            (argv[0] == "k3s").then(|| fake::ok(r#"{"items":[{"metadata":{"name":"jetson-1"},"status":{}}]}"#))
        });
        assert_eq!(check(ask(&f), &spec, spec.host("jetson-1").unwrap()), ["the node is not Ready"]);
        // Unreachable: one reason, nothing else asked.
        let f = healthy();
        f.on(|t, _| {
            Some(Err(n3x_remote::RemoteError::Unreachable {
                host: t.host.clone(),
                dest: t.dest.clone(),
                detail: "No route to host".into(),
            }))
        });
        let fails = check(ask(&f), &spec, h);
        assert_eq!(fails.len(), 1);
        assert!(fails[0].starts_with("sshd does not answer"), "{fails:?}");
        assert_eq!(f.calls().len(), 1);
    }

    #[test]
    fn waiting_gives_the_last_failures_at_the_deadline() {
        let spec = crate::testing::reference();
        let f = healthy();
        f.on(|_, argv| (argv[0] == "systemctl").then(|| fake::ok("activating\n")));
        let deadline = Instant::now() + Duration::from_millis(100);
        let e = wait(ask(&f), &spec, spec.host("jetson-2").unwrap(), deadline, Duration::from_millis(20)).unwrap_err();
        assert_eq!(e, ["k3s is not active"]);
        assert!(f.calls().iter().filter(|(_, a)| a[0] == "true").count() >= 2, "it retried");
    }
}
