//! The agents' workload: each agent writes keys through any server, the way a k3s agent's
//! load balancer reaches any API server, and records every write with its outcome. A
//! write counts as acknowledged only when etcd answered it; "no acknowledged write is
//! lost" is then checked by reading every acknowledged key back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::plan::LabPlan;

/// One write attempt. Times are milliseconds since the lab's epoch (the supervisor's start).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Write {
    pub agent: String,
    pub seq: u64,
    /// Index into the plan's hosts of the server the write went to.
    pub server: usize,
    pub sent_ms: f64,
    /// When etcd acknowledged it; `None` if it failed or timed out (outcome unknown).
    pub acked_ms: Option<f64>,
    pub revision: u64,
    pub value: String,
}

impl Write {
    pub fn key(&self) -> String {
        key(&self.agent, self.seq)
    }
}

pub fn prefix(agent: &str) -> String {
    format!("/n3x/probe/{agent}/")
}

pub fn key(agent: &str, seq: u64) -> String {
    format!("{}{seq:010}", prefix(agent))
}

/// The interval between two writes of one agent when `--probe-interval-ms` is not given:
/// 100 ms, slowed to one ms per agent above 100 agents, so a lab writes at most about a
/// thousand times a second however many agents it has (a 2-core machine runs the three
/// etcd members too).
pub fn default_interval_ms(agents: usize) -> u64 {
    (agents as u64).max(100)
}

/// Everything the probes share with the supervisor.
pub struct Probes {
    pub epoch: Instant,
    pub log: Mutex<Vec<Write>>,
    pub paused: AtomicBool,
    pub stop: AtomicBool,
    pub interval: Duration,
    /// Per agent (by position in the plan's agents): a write of it was acknowledged.
    first_acked: Vec<AtomicBool>,
    /// Per agent: its host is gone (destroyed, not installed again yet): it writes nothing.
    gone: Vec<AtomicBool>,
}

impl Probes {
    pub fn new(epoch: Instant, interval: Duration, agents: usize) -> Arc<Self> {
        Arc::new(Probes {
            epoch,
            log: Mutex::new(Vec::new()),
            paused: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            interval,
            first_acked: (0..agents).map(|_| AtomicBool::new(false)).collect(),
            gone: (0..agents).map(|_| AtomicBool::new(false)).collect(),
        })
    }

    /// Marks the `ordinal`-th agent's host gone (its workload stops) or back.
    pub fn set_gone(&self, ordinal: usize, gone: bool) {
        if let Some(g) = self.gone.get(ordinal) {
            g.store(gone, Ordering::Relaxed);
        }
    }

    pub fn now_ms(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64() * 1000.0
    }

    pub fn snapshot(&self, since: usize) -> Vec<Write> {
        crate::state::lock(&self.log).get(since..).map(<[Write]>::to_vec).unwrap_or_default()
    }

    /// The positions (in the plan's agents) of agents with no write acknowledged yet.
    pub fn without_ack(&self) -> Vec<usize> {
        self.first_acked.iter().enumerate().filter(|(_, a)| !a.load(Ordering::Relaxed)).map(|(i, _)| i).collect()
    }
}

/// The loop of the `ordinal`-th agent, on a thread inside the agent's namespace. It starts
/// on server `ordinal % servers` and moves to the next server whenever a write fails, like
/// a client-side load balancer. It keeps one connection to its current server.
pub fn run(plan: Arc<LabPlan>, etcd: crate::etcd::Transport, ordinal: usize, probes: Arc<Probes>, timeout: Duration) {
    let Some(&agent) = plan.agents.get(ordinal) else { return };
    let name = plan.hosts[agent].name.clone();
    let servers = plan.servers.clone();
    if servers.is_empty() {
        return;
    }
    let mut cur = ordinal % servers.len();
    let connect =
        |s: usize| crate::http::Conn::new(etcd.clone(), crate::etcd::client_addr(plan.hosts[servers[s]].cluster_ip));
    let mut conn = connect(cur);
    let mut seq = 0u64;
    // A value that differs between runs, so a stale key from an earlier lab never matches.
    let nonce = probes.epoch.elapsed().as_nanos() as u64 ^ u64::from(std::process::id()) << 32;
    // Many agents start spread over one interval, so they do not all write in the same
    // millisecond forever after (small labs start at once: their bring-up is measured).
    if plan.agents.len() > 100 {
        let offset = probes.interval.as_secs_f64() * ordinal as f64 / plan.agents.len() as f64;
        std::thread::sleep(Duration::from_secs_f64(offset.min(1.0)));
    }
    while !probes.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        if probes.paused.load(Ordering::Relaxed) || probes.gone[ordinal].load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        seq += 1;
        let server = servers[cur];
        let value = format!("{name}:{seq}:{nonce:016x}");
        let sent_ms = probes.now_ms();
        let result = crate::etcd::put_on(&mut conn, &key(&name, seq), &value, timeout);
        let acked_ms = result.as_ref().ok().map(|_| probes.now_ms());
        let revision = result.as_ref().copied().unwrap_or(0);
        match &result {
            Ok(_) => probes.first_acked[ordinal].store(true, Ordering::Relaxed),
            Err(_) => {
                cur = (cur + 1) % servers.len();
                conn = connect(cur);
            }
        }
        crate::state::lock(&probes.log).push(Write {
            agent: name.clone(),
            seq,
            server,
            sent_ms,
            acked_ms,
            revision,
            value,
        });
        if let Some(rest) = probes.interval.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

/// Summary statistics of a set of writes.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WriteStats {
    pub attempted: usize,
    pub acked: usize,
    pub success_pct: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub fn stats<'a>(writes: impl IntoIterator<Item = &'a Write>) -> WriteStats {
    let mut attempted = 0;
    let mut lat: Vec<f64> = Vec::new();
    for w in writes {
        attempted += 1;
        if let Some(a) = w.acked_ms {
            lat.push(a - w.sent_ms);
        }
    }
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| if lat.is_empty() { 0.0 } else { lat[((lat.len() - 1) as f64 * q).round() as usize] };
    WriteStats {
        attempted,
        acked: lat.len(),
        success_pct: if attempted == 0 { 0.0 } else { 100.0 * lat.len() as f64 / attempted as f64 },
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(sent: f64, acked: Option<f64>) -> Write {
        Write {
            agent: "a".into(),
            seq: 1,
            server: 0,
            sent_ms: sent,
            acked_ms: acked,
            revision: 0,
            value: String::new(),
        }
    }

    #[test]
    fn stats_count_only_acknowledged_latencies() {
        let s = stats(&[w(0.0, Some(10.0)), w(0.0, Some(30.0)), w(0.0, None), w(5.0, Some(25.0))]);
        assert_eq!((s.attempted, s.acked), (4, 3));
        assert_eq!(s.success_pct, 75.0);
        assert_eq!(s.p50_ms, 20.0);
        assert_eq!(s.p99_ms, 30.0);
        assert_eq!(key("jetson-1", 42), "/n3x/probe/jetson-1/0000000042");
    }

    #[test]
    fn the_default_interval_keeps_a_big_lab_near_a_thousand_writes_a_second() {
        assert_eq!(default_interval_ms(2), 100);
        assert_eq!(default_interval_ms(97), 100);
        assert_eq!(default_interval_ms(997), 997);
        let p = Probes::new(Instant::now(), Duration::from_millis(100), 3);
        p.first_acked[1].store(true, Ordering::Relaxed);
        assert_eq!(p.without_ack(), [0, 2]);
    }
}
