//! Real etcd: the flags each member starts with (mutual TLS on both ports, as k3s runs
//! it: see `tls`), and the few calls the lab makes through etcd's v3 JSON gateway (put,
//! range, status), each over a `Transport` holding the caller's client certificate. Calls
//! must run on a thread inside a lab namespace (see `sys::in_netns`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::plan::{EtcdTimings, HostPlan, LabPlan};
use crate::tls::MemberFiles;
pub use n3x_etcd::http::Transport;

pub use n3x_etcd::{CLIENT_PORT, PEER_PORT};

/// The command line of `host`'s member. `existing` restarts a member on its old data;
/// `timings` are the heartbeat and election timeout of the host's running generation;
/// `initial_cluster` is the lab's whole cluster, or for a member joining a running one the
/// members its `member add` named. Members listen on the host's loopback too, where k3s's
/// own clients reach them.
pub fn args_with_cluster(
    plan: &LabPlan,
    host: &HostPlan,
    data_dir: &Path,
    tls: &MemberFiles,
    existing: bool,
    timings: EtcdTimings,
    initial_cluster: &str,
) -> Vec<String> {
    let ip = host.cluster_ip;
    let mut args: Vec<String> = [
        ("--name", host.name.clone()),
        ("--data-dir", data_dir.display().to_string()),
        ("--listen-peer-urls", format!("https://{ip}:2380")),
        ("--initial-advertise-peer-urls", host.etcd_peer_url()),
        ("--listen-client-urls", format!("https://{ip}:{CLIENT_PORT},https://127.0.0.1:{CLIENT_PORT}")),
        ("--advertise-client-urls", host.etcd_client_url()),
        ("--initial-cluster", initial_cluster.to_owned()),
        ("--initial-cluster-state", if existing { "existing" } else { "new" }.into()),
        ("--initial-cluster-token", format!("n3x-lab-{}", plan.cluster)),
        ("--heartbeat-interval", timings.heartbeat_ms.to_string()),
        ("--election-timeout", timings.election_ms.to_string()),
        // As etcd 3.5 (k3s's) does by default: a member that rejoins after a restart asks
        // before it campaigns, so it does not depose a healthy leader.
        ("--pre-vote", "true".into()),
        ("--logger", "zap".into()),
        ("--log-outputs", "stderr".into()),
        // A lab member's data lives on tmpfs and dies with the lab: keep the backend small.
        ("--quota-backend-bytes", (256u64 << 20).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| format!("{k}={v}"))
    .collect();
    args.extend(tls.etcd_args());
    args
}

/// Whether the member at `ip` serves its peer API yet (`GET /version` on the peer port).
pub fn peer_serving(t: &Transport, ip: Ipv4Addr, timeout: Duration) -> bool {
    crate::http::get(t, SocketAddr::from((ip, PEER_PORT)), "/version", timeout).is_ok_and(|r| r.status == 200)
}

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("etcd answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unexpected etcd answer: {0}")]
    Decode(#[from] n3x_etcd::DecodeError),
}

fn answer(r: crate::http::Response) -> Result<String, EtcdError> {
    if r.status != 200 {
        return Err(EtcdError::Status { status: r.status, body: r.body.chars().take(200).collect() });
    }
    Ok(r.body)
}

/// POSTs `body` to the member at `ip`; returns the answer's body.
pub fn call(t: &Transport, ip: Ipv4Addr, path: &str, body: &str, timeout: Duration) -> Result<String, EtcdError> {
    answer(crate::http::post_json(t, client_addr(ip), path, body, timeout)?)
}

/// Writes `key = value`; returns the revision of the write once etcd acknowledges it.
pub fn put(t: &Transport, ip: Ipv4Addr, key: &str, value: &str, timeout: Duration) -> Result<u64, EtcdError> {
    Ok(n3x_etcd::parse_put(&call(t, ip, n3x_etcd::PUT, &n3x_etcd::put_body(key, value), timeout)?)?)
}

/// Like [`put`], over a kept-alive connection to the member.
pub fn put_on(conn: &mut crate::http::Conn, key: &str, value: &str, timeout: Duration) -> Result<u64, EtcdError> {
    let r = conn.post_json(n3x_etcd::PUT, &n3x_etcd::put_body(key, value), timeout)?;
    Ok(n3x_etcd::parse_put(&answer(r)?)?)
}

/// The client address of the member at `ip`.
pub fn client_addr(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::from((ip, CLIENT_PORT))
}

/// Every key under `prefix` with its value (a linearizable read).
pub fn range_prefix(
    t: &Transport,
    ip: Ipv4Addr,
    prefix: &str,
    timeout: Duration,
) -> Result<Vec<(String, String)>, EtcdError> {
    Ok(n3x_etcd::parse_range(&call(t, ip, n3x_etcd::RANGE, &n3x_etcd::range_prefix_body(prefix), timeout)?)?)
}

pub use n3x_etcd::Status;

pub fn status(t: &Transport, ip: Ipv4Addr, timeout: Duration) -> Result<Status, EtcdError> {
    Ok(n3x_etcd::parse_status(&call(t, ip, n3x_etcd::STATUS, &n3x_etcd::empty_body(), timeout)?)?)
}
