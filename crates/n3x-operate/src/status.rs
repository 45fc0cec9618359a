//! `n3x status`: what every host runs and how the cluster is, asked over SSH with the
//! deployer's questions ([`n3x_deploy::observe::Ask`]), judged here.
//!
//! A fact is known, not applicable (an agent's etcd member; the lab's secrets
//! encryption), or unknown (the question failed, with why): never guessed. The verdict is
//! healthy, degraded (with every problem named) or unreachable (no server answered over
//! SSH, so nothing can be judged).

use std::time::Instant;

use n3x_deploy::journal::Record;
use n3x_deploy::observe::{Ask, is_member_of};
use n3x_deploy::{ClusterSpec, DeployError, HostSpec, commands};
use n3x_etcd::{Member, Status};
use n3x_remote::{Output, RemoteError};
use serde::Serialize;

/// A fact about a host or the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Fact<T> {
    Known(T),
    NotApplicable { not_applicable: String },
    Unknown { unknown: String },
}

impl<T> Fact<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Fact::Known(v) => Some(v),
            _ => None,
        }
    }

    fn from_result(r: Result<T, DeployError>) -> Fact<T> {
        match r {
            Ok(v) => Fact::Known(v),
            Err(e) => Fact::Unknown { unknown: e.to_string() },
        }
    }

    fn na(why: &str) -> Fact<T> {
        Fact::NotApplicable { not_applicable: why.into() }
    }

    fn unknown(why: impl Into<String>) -> Fact<T> {
        Fact::Unknown { unknown: why.into() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Healthy,
    Degraded,
    Unreachable,
}

#[derive(Clone, Debug, Serialize)]
pub struct Generations {
    /// What runs now (`/run/current-system`).
    pub current: Fact<String>,
    /// What boots next (the system profile).
    pub booted: Fact<String>,
    /// What the last deploy put there (its journal's target).
    pub expected: Fact<String>,
    /// Runs something other than expected.
    pub drift: Fact<bool>,
    /// Boots something other than what runs.
    pub reboot_pending: Fact<bool>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EtcdMember {
    /// The member id, hex, as etcdctl prints it.
    pub id: String,
    pub leader: bool,
    pub learner: bool,
    /// Raft entries behind the leader's.
    pub behind: Fact<u64>,
    pub raft_index: u64,
    pub revision: u64,
    pub db_size: u64,
    pub alarms: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LastDeploy {
    pub id: String,
    pub started_unix: u64,
    /// The host's state in that deploy (confirmed, rolled back, ...).
    pub state: String,
    pub finished: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostReport {
    pub name: String,
    pub role: &'static str,
    pub reachable: bool,
    /// Why it is not reachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub generation: Generations,
    pub k3s_active: Fact<bool>,
    pub node_ready: Fact<bool>,
    /// For servers: its etcd member.
    pub etcd: Fact<EtcdMember>,
    pub last_deploy: Option<LastDeploy>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Quorum {
    /// Voting members that answer.
    pub healthy: usize,
    /// Voting members in the member list.
    pub members: usize,
    /// How many must answer for writes to go on.
    pub needed: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct NewestSnapshot {
    pub file: String,
    pub age_s: u64,
    pub revision: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CertExpiry {
    /// Whole days until the first k3s server certificate expires (negative: expired).
    pub days: i64,
    pub subject: String,
    pub certificates: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub cluster: String,
    pub lab: bool,
    pub verdict: Verdict,
    /// What makes it degraded or unreachable, one line each.
    pub problems: Vec<String>,
    pub quorum: Fact<Quorum>,
    pub leader: Option<String>,
    pub learners: Vec<String>,
    pub newest_snapshot: Fact<NewestSnapshot>,
    pub certificates: Fact<CertExpiry>,
    /// Whether k3s encrypts Secrets at rest (`k3s secrets-encrypt status`).
    pub secrets_encryption: Fact<bool>,
    pub hosts: Vec<HostReport>,
    pub took_ms: u64,
}

/// What status knows besides the hosts' answers.
pub struct Context<'a> {
    /// The target is a lab (its NixOS and k3s are test doubles; its etcd certificates are
    /// the lab CA's, where k3s keeps them).
    pub lab: bool,
    /// The last deploy's journal, if any.
    pub journal: Option<&'a Record>,
    /// The newest backup in the backup directory, if any: (file, created, revision).
    pub newest_backup: Option<(String, u64, u64)>,
    pub now_unix: u64,
}

/// Certificates this close to expiry make the cluster degraded.
pub const CERT_WARN_DAYS: i64 = 30;

/// What one host answered.
struct HostAnswers {
    reach: Result<String, DeployError>,
    booted: Option<Result<String, DeployError>>,
    k3s: Option<Result<bool, DeployError>>,
    status: Option<Result<Status, DeployError>>,
}

fn unreachable_kind(e: &DeployError) -> bool {
    matches!(
        e,
        DeployError::Remote { source, .. } if matches!(
            **source,
            RemoteError::Unreachable { .. }
                | RemoteError::HostKeyChanged { .. }
                | RemoteError::HostKeyUnknown { .. }
                | RemoteError::Denied { .. }
                | RemoteError::Timeout { .. }
                | RemoteError::Spawn { .. }
        )
    )
}

fn unexpected(h: &HostSpec, what: &str, detail: impl Into<String>) -> DeployError {
    DeployError::Unexpected { host: h.name.clone(), what: what.into(), detail: detail.into() }
}

/// One answer of a batch: its output when it exited 0, parsed.
fn part<T>(
    h: &HostSpec,
    outs: &[Output],
    i: usize,
    what: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, DeployError> {
    n3x_remote::answer(outs, i).and_then(parse).map_err(|d| unexpected(h, what, d))
}

fn store_path(s: &str) -> Result<String, String> {
    match s.trim() {
        p if p.starts_with('/') => Ok(p.to_owned()),
        other => Err(format!("not a store path: `{other}`")),
    }
}

/// A JSON answer, past any warning lines a tool printed before it.
fn json_part(s: &str) -> &str {
    s.find(['{', '[']).map_or(s, |i| &s[i..])
}

/// Every per-host question in one connection: the generations, k3s, and on servers the
/// member's status.
fn ask_host(ask: Ask<'_>, h: &HostSpec) -> HostAnswers {
    let t = ask.timeout;
    let mut cmds = vec![commands::current_system(t), commands::boot_system(t), commands::is_active("k3s", t)];
    if h.server {
        cmds.push(commands::etcd_inline(n3x_etcd::STATUS, &n3x_etcd::empty_body(), t));
    }
    let outs = match ask.remote.run_all(&h.target(), &cmds) {
        Ok(o) => o,
        Err(e) => {
            let e = DeployError::remote(&h.name, "asking its status", e);
            return HostAnswers { reach: Err(e), booted: None, k3s: None, status: None };
        }
    };
    HostAnswers {
        reach: part(h, &outs, 0, "the running generation", store_path),
        booted: Some(part(h, &outs, 1, "the boot generation", store_path)),
        // `is-active` exits 3 for an inactive unit: its answer is the word, whatever the status.
        k3s: Some(
            outs.get(2).map_or_else(|| Err(unexpected(h, "k3s", "no answer")), |o| Ok(o.stdout.trim() == "active")),
        ),
        status: h
            .server
            .then(|| part(h, &outs, 3, "etcd status", |s| n3x_etcd::parse_status(json_part(s)).map_err(|e| e.0))),
    }
}

/// The cluster-wide questions, asked of one server in one connection.
type ClusterAnswers = (
    Result<Vec<Member>, DeployError>,
    Result<Vec<(u64, String)>, DeployError>,
    Result<Vec<n3x_deploy::observe::Node>, DeployError>,
    Result<String, DeployError>,
    Result<bool, DeployError>,
);

fn ask_cluster(ask: Ask<'_>, via: &HostSpec) -> ClusterAnswers {
    let t = ask.timeout;
    let cmds = [
        commands::etcd_inline(n3x_etcd::MEMBER_LIST, &n3x_etcd::empty_body(), t),
        commands::etcd_inline(n3x_etcd::ALARMS, &n3x_etcd::alarm_list_body(), t),
        commands::nodes(t),
        commands::read_certs(t),
        commands::secrets_encryption(t),
    ];
    match ask.remote.run_all(&via.target(), &cmds) {
        Ok(o) => (
            part(via, &o, 0, "etcd member list", |s| n3x_etcd::parse_members(json_part(s)).map_err(|e| e.0)),
            part(via, &o, 1, "etcd alarms", |s| n3x_etcd::parse_alarms(json_part(s)).map_err(|e| e.0)),
            part(via, &o, 2, "the node list", |s| n3x_deploy::observe::parse_nodes(json_part(s))),
            part(via, &o, 3, "the k3s certificates", |s| Ok(s.to_owned())),
            part(via, &o, 4, "k3s secrets-encrypt status", parse_encryption_status),
        ),
        Err(e) => {
            let e = || DeployError::remote(&via.name, "asking the cluster", e.clone());
            (Err(e()), Err(e()), Err(e()), Err(e()), Err(e()))
        }
    }
}

/// Asks every host, then the cluster through one answering server, and judges.
pub fn collect(ask: Ask<'_>, spec: &ClusterSpec, ctx: &Context<'_>) -> Report {
    let t0 = Instant::now();
    let answers: Vec<HostAnswers> = std::thread::scope(|sc| {
        let hs: Vec<_> = spec.hosts.iter().map(|h| sc.spawn(move || ask_host(ask, h))).collect();
        hs.into_iter()
            .zip(&spec.hosts)
            .map(|(j, h)| {
                j.join().unwrap_or_else(|_| HostAnswers {
                    reach: Err(DeployError::Unexpected {
                        host: h.name.clone(),
                        what: "status".into(),
                        detail: "panicked".into(),
                    }),
                    booted: None,
                    k3s: None,
                    status: None,
                })
            })
            .collect()
    });
    let owned: Vec<(&HostSpec, Option<Status>)> = spec
        .hosts
        .iter()
        .zip(&answers)
        .map(|(h, a)| (h, a.status.as_ref().and_then(|s| s.as_ref().ok()).cloned()))
        .collect();
    let statuses: Vec<(&HostSpec, Option<&Status>)> = owned.iter().map(|(h, s)| (*h, s.as_ref())).collect();
    let leader_id = agreed_leader(&statuses);
    let leader = leader_id.and_then(|id| statuses.iter().find(|(_, s)| s.is_some_and(|s| s.member_id == id)));
    // The cluster-wide questions go to the leader, else to any server whose member answers.
    let via = leader.map(|(h, _)| *h).or_else(|| statuses.iter().find(|(_, s)| s.is_some()).map(|(h, _)| *h));
    let (members, alarms, nodes, certs, encryption) = match via {
        Some(v) => ask_cluster(ask, v),
        None => {
            let e = || DeployError::Unexpected {
                host: spec.name.clone(),
                what: "the cluster".into(),
                detail: "no server's etcd member answers".into(),
            };
            (Err(e()), Err(e()), Err(e()), Err(e()), Err(e()))
        }
    };
    let leader_raft = leader.and_then(|(_, s)| s.map(|s| s.raft_index));

    let mut problems = Vec::new();
    let hosts: Vec<HostReport> = spec
        .hosts
        .iter()
        .zip(answers)
        .map(|(h, a)| {
            host_report(
                h,
                a,
                leader_id,
                leader_raft,
                members.as_ref().ok(),
                alarms.as_ref().ok(),
                &nodes,
                ctx,
                &mut problems,
            )
        })
        .collect();

    let quorum = match &members {
        Ok(ms) => {
            let voting: Vec<&Member> = ms.iter().filter(|m| !m.is_learner).collect();
            let healthy =
                voting.iter().filter(|m| statuses.iter().any(|(_, s)| s.is_some_and(|s| s.member_id == m.id))).count();
            let q = Quorum { healthy, members: voting.len(), needed: voting.len() / 2 + 1 };
            if q.healthy < q.members {
                problems
                    .push(format!("etcd: {} of {} members answer (quorum needs {})", q.healthy, q.members, q.needed));
            }
            for m in ms.iter().filter(|m| !spec.servers().any(|s| is_member_of(m, s))) {
                problems.push(format!(
                    "etcd member `{}` ({}) is not a server of the inventory",
                    m.name,
                    m.peer_urls.join(", ")
                ));
            }
            Fact::Known(q)
        }
        Err(e) => Fact::unknown(e.to_string()),
    };
    let learners: Vec<String> = members
        .as_ref()
        .map(|ms| {
            ms.iter()
                .filter(|m| m.is_learner)
                .map(|m| if m.name.is_empty() { format!("{:x}", m.id) } else { m.name.clone() })
                .collect()
        })
        .unwrap_or_default();
    for l in &learners {
        problems.push(format!("etcd member `{l}` is a learner (a join left unfinished)"));
    }
    let leader_name = leader.map(|(h, _)| h.name.clone());
    if via.is_some() && leader_name.is_none() {
        problems.push("etcd: the members do not agree on a leader".into());
    }
    let certificates = match &certs {
        Ok(pem) => match earliest_expiry(pem, ctx.now_unix) {
            Ok(c) => {
                if c.days < CERT_WARN_DAYS {
                    problems.push(format!("k3s certificate `{}` expires in {} days", c.subject, c.days));
                }
                Fact::Known(c)
            }
            Err(e) => Fact::unknown(e),
        },
        Err(e) => Fact::unknown(e.to_string()),
    };
    let secrets_encryption = match encryption {
        _ if ctx.lab => Fact::na("the lab runs etcd without k3s's API server: it stores no Kubernetes Secrets"),
        Ok(on) => {
            if !on && spec.secrets_encryption {
                problems.push(
                    "k3s does not encrypt Secrets at rest although n3x.toml asks for it: the cluster was \
                     started without `secrets-encryption`, which k3s cannot turn on later"
                        .into(),
                );
            }
            Fact::Known(on)
        }
        Err(e) => Fact::unknown(e.to_string()),
    };
    let newest_snapshot = match &ctx.newest_backup {
        Some((file, created, revision)) => Fact::Known(NewestSnapshot {
            file: file.clone(),
            age_s: ctx.now_unix.saturating_sub(*created),
            revision: *revision,
        }),
        None => Fact::unknown("no backup in the backup directory (`n3x backup snapshot` takes one)"),
    };
    let reachable_servers = hosts.iter().filter(|h| h.role == "server" && h.reachable).count();
    let verdict = if reachable_servers == 0 {
        problems.insert(0, "no server answers over SSH".into());
        Verdict::Unreachable
    } else if problems.is_empty() {
        Verdict::Healthy
    } else {
        Verdict::Degraded
    };
    Report {
        cluster: spec.name.clone(),
        lab: ctx.lab,
        verdict,
        problems,
        quorum,
        leader: leader_name,
        learners,
        newest_snapshot,
        certificates,
        secrets_encryption,
        hosts,
        took_ms: t0.elapsed().as_millis() as u64,
    }
}

/// The leader every answering member names, if they agree.
fn agreed_leader(statuses: &[(&HostSpec, Option<&Status>)]) -> Option<u64> {
    let mut ids = statuses.iter().filter_map(|(_, s)| s.map(|s| s.leader));
    let first = ids.next()?;
    (first != 0 && ids.all(|id| id == first)).then_some(first)
}

#[allow(clippy::too_many_arguments)]
fn host_report(
    h: &HostSpec,
    a: HostAnswers,
    leader_id: Option<u64>,
    leader_raft: Option<u64>,
    members: Option<&Vec<Member>>,
    alarms: Option<&Vec<(u64, String)>>,
    nodes: &Result<Vec<n3x_deploy::observe::Node>, DeployError>,
    ctx: &Context<'_>,
    problems: &mut Vec<String>,
) -> HostReport {
    let role = if h.server { "server" } else { "agent" };
    let deploy = ctx.journal.and_then(|r| {
        let state = r.host(&h.name)?;
        let target = r.plan.hosts.iter().find(|p| p.host == h.name).map(|p| p.target.clone());
        Some((
            LastDeploy {
                id: r.id.clone(),
                started_unix: r.started,
                state: state.label().into(),
                finished: r.finished.is_some(),
            },
            target,
        ))
    });
    let (last_deploy, expected) = match deploy {
        Some((d, t)) => (Some(d), t),
        None => (None, None),
    };
    let expected = match expected {
        Some(t) => Fact::Known(t),
        None => Fact::unknown("no deploy recorded in the journal (`n3x deploy` records what it puts on each host)"),
    };
    if let Err(e) = a.reach.as_ref().map(|_| ()).or_else(|e| if unreachable_kind(e) { Err(e) } else { Ok(()) }) {
        problems.push(format!("`{}` does not answer over SSH: {e}", h.name));
        fn down<T>() -> Fact<T> {
            Fact::unknown("unreachable")
        }
        return HostReport {
            name: h.name.clone(),
            role,
            reachable: false,
            error: Some(e.to_string()),
            generation: Generations {
                current: down(),
                booted: down(),
                expected,
                drift: down(),
                reboot_pending: down(),
            },
            k3s_active: down(),
            node_ready: node_ready(h, nodes),
            etcd: if h.server { down() } else { Fact::na("agents run no etcd member") },
            last_deploy,
        };
    }
    let current = Fact::from_result(a.reach);
    let booted = a.booted.map_or_else(|| Fact::unknown("not asked"), Fact::from_result);
    let drift = match (current.known(), expected.known()) {
        (Some(c), Some(e)) => Fact::Known(c != e),
        _ => Fact::unknown("needs the running and the expected generation"),
    };
    let reboot_pending = match (current.known(), booted.known()) {
        (Some(c), Some(b)) => Fact::Known(c != b),
        _ => Fact::unknown("needs the running and the boot generation"),
    };
    if drift.known() == Some(&true) {
        problems.push(format!("`{}` does not run the generation its last deploy put there", h.name));
    }
    if reboot_pending.known() == Some(&true) {
        problems.push(format!("`{}` boots a different generation than it runs (a reboot is pending)", h.name));
    }
    let k3s_active = a.k3s.map_or_else(|| Fact::unknown("not asked"), Fact::from_result);
    if k3s_active.known() == Some(&false) {
        problems.push(format!("k3s is not active on `{}`", h.name));
    }
    let node_ready = node_ready(h, nodes);
    if node_ready.known() == Some(&false) {
        problems.push(format!("node `{}` is not Ready", h.name));
    }
    let etcd = match a.status {
        None => Fact::na("agents run no etcd member"),
        Some(Err(e)) => {
            problems.push(format!("the etcd member of `{}` does not answer: {e}", h.name));
            Fact::unknown(e.to_string())
        }
        Some(Ok(s)) => {
            let learner = members.is_some_and(|ms| ms.iter().any(|m| m.id == s.member_id && m.is_learner));
            let mine: Vec<String> = alarms
                .map(|al| al.iter().filter(|(id, _)| *id == s.member_id).map(|(_, a)| a.clone()).collect())
                .unwrap_or_default();
            for a in &mine {
                problems.push(format!("etcd alarm {a} on `{}`", h.name));
            }
            Fact::Known(EtcdMember {
                id: format!("{:x}", s.member_id),
                leader: leader_id == Some(s.member_id),
                learner,
                behind: match leader_raft {
                    Some(l) => Fact::Known(l.saturating_sub(s.raft_index)),
                    None => Fact::unknown("no agreed leader"),
                },
                raft_index: s.raft_index,
                revision: s.revision,
                db_size: s.db_size,
                alarms: mine,
            })
        }
    };
    HostReport {
        name: h.name.clone(),
        role,
        reachable: true,
        error: None,
        generation: Generations { current, booted, expected, drift, reboot_pending },
        k3s_active,
        node_ready,
        etcd,
        last_deploy,
    }
}

fn node_ready(h: &HostSpec, nodes: &Result<Vec<n3x_deploy::observe::Node>, DeployError>) -> Fact<bool> {
    match nodes {
        Ok(ns) => match ns.iter().find(|n| n.name == h.name) {
            Some(n) => Fact::Known(n.ready),
            None => Fact::unknown("not in the API's node list"),
        },
        Err(e) => Fact::unknown(e.to_string()),
    }
}

/// `k3s secrets-encrypt status`: its `Encryption Status: Enabled|Disabled` line.
pub fn parse_encryption_status(out: &str) -> Result<bool, String> {
    let status = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Encryption Status:"))
        .ok_or("no `Encryption Status:` line in the answer")?;
    // k3s says `Disabled, no configuration file found` for a cluster started without it.
    match status.trim() {
        s if s.starts_with("Enabled") => Ok(true),
        s if s.starts_with("Disabled") => Ok(false),
        other => Err(format!("unknown encryption status `{other}`")),
    }
}

/// The certificate in `pem` (concatenated PEM blocks) that expires first.
pub fn earliest_expiry(pem: &str, now_unix: u64) -> Result<CertExpiry, String> {
    let mut first: Option<(i64, String)> = None;
    let mut count = 0;
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| format!("not PEM: {e}"))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let cert = block.parse_x509().map_err(|e| format!("not an X.509 certificate: {e}"))?;
        count += 1;
        let until = cert.validity().not_after.timestamp();
        if first.as_ref().is_none_or(|(t, _)| until < *t) {
            first = Some((until, cert.subject().to_string()));
        }
    }
    let (until, subject) = first.ok_or("no certificate found")?;
    let days = (until - now_unix as i64).div_euclid(86_400);
    Ok(CertExpiry { days, subject, certificates: count })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use n3x_deploy::testing::{healthy, reference};
    use n3x_remote::fake::{self, Fake};

    use super::*;

    const GEN: &str = "/nix/store/aaaa-nixos-system";
    /// Two real certificates (openssl): `k3s-serving` until 2026-12-07 15:01:44 UTC, and a
    /// CA for ten years.
    const CERTS: &str = include_str!("../tests/data/k3s-certs.pem");
    const NOW: u64 = 1_795_791_704; // 2026-11-27 15:01:44 UTC

    fn cluster() -> Fake {
        let f = healthy();
        f.on(|_, argv| (argv[0] == "readlink").then(|| fake::ok(&format!("{GEN}\n"))));
        f.on(|_, argv| (argv[0] == "find" && argv[1].ends_with("/tls")).then(|| fake::ok(CERTS)));
        f.on(|_, argv| {
            (argv[0] == "k3s" && argv.get(1).is_some_and(|a| a == "secrets-encrypt"))
                .then(|| fake::ok("Encryption Status: Enabled\nCurrent Rotation Stage: start\nServer Encryption Hashes: All hashes match\n"))
        });
        f
    }

    fn ctx() -> Context<'static> {
        Context { lab: false, journal: None, newest_backup: Some(("b".into(), NOW - 3600, 9)), now_unix: NOW }
    }

    fn run(f: &Fake, ctx: &Context<'_>) -> Report {
        let ask = Ask { remote: f, timeout: Duration::from_secs(1) };
        collect(ask, &reference(), ctx)
    }

    #[test]
    fn a_healthy_cluster_is_healthy_with_every_fact_known() {
        let f = cluster();
        // Certificates 30+ days away: only the CA is there.
        f.on(|_, argv| {
            (argv[0] == "find").then(|| fake::ok(&CERTS[..CERTS.find("-----END CERTIFICATE-----").unwrap() + 25]))
        });
        let r = run(&f, &ctx());
        assert_eq!(r.verdict, Verdict::Healthy, "{:?}", r.problems);
        assert_eq!(r.leader.as_deref(), Some("n100-1"));
        let q = r.quorum.known().unwrap();
        assert_eq!((q.healthy, q.members, q.needed), (3, 3, 2));
        assert_eq!(r.newest_snapshot.known().unwrap().age_s, 3600);
        let n1 = &r.hosts[r.hosts.iter().position(|h| h.name == "n100-1").unwrap()];
        let m = n1.etcd.known().unwrap();
        assert!(m.leader && !m.learner);
        assert_eq!((m.id.as_str(), m.behind.known(), m.raft_index), ("1", Some(&0), 100));
        let j = r.hosts.iter().find(|h| h.name == "jetson-1").unwrap();
        assert!(matches!(j.etcd, Fact::NotApplicable { .. }));
        assert_eq!(j.node_ready.known(), Some(&true));
        assert_eq!(j.generation.reboot_pending.known(), Some(&false));
        // No deploy recorded: expected and drift are unknown, said so, not guessed.
        assert!(matches!(j.generation.expected, Fact::Unknown { .. }));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["verdict"], "healthy");
        assert!(json["hosts"][0]["generation"]["expected"]["unknown"].is_string());
    }

    #[test]
    fn a_dead_member_and_a_near_certificate_make_it_degraded_and_say_why() {
        let f = cluster();
        f.on(|t, argv| {
            (t.host == "n100-2" && argv[0] == "curl")
                .then(|| fake::exit(7, "curl: (7) Failed to connect to 127.0.0.1 port 2379"))
        });
        let r = run(&f, &ctx());
        assert_eq!(r.verdict, Verdict::Degraded);
        let q = r.quorum.known().unwrap();
        assert_eq!((q.healthy, q.members), (2, 3));
        assert!(r.problems.iter().any(|p| p.contains("etcd member of `n100-2` does not answer")), "{:?}", r.problems);
        assert!(r.problems.iter().any(|p| p.contains("2 of 3 members answer")));
        let c = r.certificates.known().unwrap();
        assert_eq!((c.days, c.certificates), (10, 2));
        assert!(c.subject.contains("k3s-serving"));
        assert!(r.problems.iter().any(|p| p.contains("expires in 10 days")));
        // The leader is still agreed by the members that answer.
        assert_eq!(r.leader.as_deref(), Some("n100-1"));
    }

    #[test]
    fn no_server_over_ssh_is_unreachable() {
        let f = cluster();
        f.on(|t, _| {
            Some(Err(RemoteError::Unreachable {
                host: t.host.clone(),
                dest: t.dest.clone(),
                detail: "No route to host".into(),
            }))
        });
        let r = run(&f, &ctx());
        assert_eq!(r.verdict, Verdict::Unreachable);
        assert!(r.hosts.iter().all(|h| !h.reachable && h.error.as_deref().is_some_and(|e| e.contains("No route"))));
        assert!(matches!(r.quorum, Fact::Unknown { .. }));
        // Nothing but the first question was asked of an unreachable host.
        assert_eq!(f.calls().len(), 5);
    }

    /// A cluster started without secrets encryption, which n3x.toml asks for, is degraded
    /// and says why; the lab stores no Secrets, so there it is not applicable.
    #[test]
    fn secrets_encryption_off_against_the_inventory_is_a_problem() {
        let f = cluster();
        f.on(|_, argv| {
            (argv[0] == "k3s" && argv[1] == "secrets-encrypt")
                .then(|| fake::ok("Encryption Status: Disabled, no configuration file found\n"))
        });
        let r = run(&f, &ctx());
        assert_eq!(r.secrets_encryption.known(), Some(&false));
        assert_eq!(r.verdict, Verdict::Degraded);
        assert!(r.problems.iter().any(|p| p.contains("does not encrypt Secrets")), "{:?}", r.problems);
        let mut c = ctx();
        c.lab = true;
        assert!(matches!(run(&f, &c).secrets_encryption, Fact::NotApplicable { .. }));
        assert_eq!(parse_encryption_status("Encryption Status: Enabled\nCurrent Rotation Stage: start"), Ok(true));
        assert_eq!(parse_encryption_status("Encryption Status: Disabled\nCurrent Rotation Stage: start"), Ok(false));
        assert!(parse_encryption_status("Encryption Status: Maybe").is_err());
        assert!(parse_encryption_status("").is_err());
    }

    /// The lab's servers have certificates where k3s keeps them (its etcd runs mutual
    /// TLS): a lab whose certificates cannot be read is unknown, as a real cluster is.
    #[test]
    fn unreadable_certificates_are_unknown_in_the_lab_too() {
        let f = cluster();
        f.on(|_, argv| {
            (argv[0] == "find")
                .then(|| fake::exit(1, "find: '/var/lib/rancher/k3s/server/tls': No such file or directory"))
        });
        let mut c = ctx();
        c.lab = true;
        assert!(matches!(run(&f, &c).certificates, Fact::Unknown { .. }));
        c.lab = false;
        assert!(matches!(run(&f, &c).certificates, Fact::Unknown { .. }));
    }

    #[test]
    fn drift_and_pending_reboots_come_from_the_journal_and_the_profile() {
        let f = cluster();
        f.on(|t, argv| {
            (t.host == "jetson-2" && argv.get(2).is_some_and(|a| a == "/nix/var/nix/profiles/system"))
                .then(|| fake::ok("/nix/store/bbbb-nixos-system\n"))
        });
        let rec: Record = serde_json::from_value(serde_json::json!({
            "version": 1, "id": "d1", "cluster": "n3x", "started": 5, "confirm_timeout_s": 90, "finished": "done",
            "plan": {"cluster": "n3x", "goal": "switch", "strategy": "rolling", "transfer": null, "k3s_minor": null, "hosts": [
                {"host": "jetson-1", "server": false, "class": "update", "current": "/nix/store/old", "target": "/nix/store/cccc-new", "leader": false, "batch": 0}
            ]},
            "hosts": [{"host": "jetson-1", "state": {"state": "rolled-back", "previous": "/nix/store/old", "reasons": ["k3s"], "healthy": true}, "at_ms": 10}]
        }))
        .unwrap();
        let c = Context { journal: Some(&rec), ..ctx() };
        let r = run(&f, &c);
        let j1 = r.hosts.iter().find(|h| h.name == "jetson-1").unwrap();
        assert_eq!(j1.generation.drift.known(), Some(&true));
        assert_eq!(j1.last_deploy.as_ref().unwrap().state, "rolled back");
        let j2 = r.hosts.iter().find(|h| h.name == "jetson-2").unwrap();
        assert_eq!(j2.generation.reboot_pending.known(), Some(&true));
        assert!(r.problems.iter().any(|p| p.contains("`jetson-1` does not run the generation")));
        assert!(r.problems.iter().any(|p| p.contains("`jetson-2` boots a different generation")));
        assert_eq!(r.verdict, Verdict::Degraded);
    }

    #[test]
    fn certificates_that_do_not_parse_are_unknown_not_invented() {
        assert!(earliest_expiry("", NOW).is_err());
        assert!(earliest_expiry("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", NOW).is_err());
        assert_eq!(earliest_expiry(CERTS, NOW + 11 * 86_400).unwrap().days, -1);
    }
}
