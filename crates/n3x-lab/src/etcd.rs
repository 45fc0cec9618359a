//! Real etcd: the flags each member starts with, and the few calls the lab makes through
//! etcd's v3 JSON gateway (put, range, status). Calls must run on a thread inside a lab
//! namespace (see `sys::in_netns`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::plan::{HostPlan, LabPlan};

pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;

/// The command line of `host`'s member. `existing` restarts a member on its old data.
pub fn args(plan: &LabPlan, host: &HostPlan, data_dir: &Path, existing: bool) -> Vec<String> {
    let ip = host.cluster_ip;
    [
        ("--name", host.name.clone()),
        ("--data-dir", data_dir.display().to_string()),
        ("--listen-peer-urls", format!("http://{ip}:2380")),
        ("--initial-advertise-peer-urls", host.etcd_peer_url()),
        ("--listen-client-urls", format!("http://{ip}:{CLIENT_PORT}")),
        ("--advertise-client-urls", host.etcd_client_url()),
        ("--initial-cluster", plan.initial_cluster()),
        ("--initial-cluster-state", if existing { "existing" } else { "new" }.into()),
        ("--initial-cluster-token", format!("n3x-lab-{}", plan.cluster)),
        ("--heartbeat-interval", plan.etcd.heartbeat_ms.to_string()),
        ("--election-timeout", plan.etcd.election_ms.to_string()),
        ("--logger", "zap".into()),
        ("--log-outputs", "stderr".into()),
        // A lab member's data lives on tmpfs and dies with the lab: keep the backend small.
        ("--quota-backend-bytes", (256u64 << 20).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| format!("{k}={v}"))
    .collect()
}

/// Whether the member at `ip` serves its peer API yet (`GET /version` on the peer port).
pub fn peer_serving(ip: Ipv4Addr, timeout: Duration) -> bool {
    crate::http::get(SocketAddr::from((ip, PEER_PORT)), "/version", timeout).is_ok_and(|r| r.status == 200)
}

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("etcd answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unexpected etcd answer: {0}")]
    Decode(String),
}

fn call(ip: Ipv4Addr, path: &str, body: Value, timeout: Duration) -> Result<Value, EtcdError> {
    decode(crate::http::post_json(SocketAddr::from((ip, CLIENT_PORT)), path, &body.to_string(), timeout)?)
}

/// etcd's JSON encodes 64-bit integers as strings.
fn int(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn decode(r: crate::http::Response) -> Result<Value, EtcdError> {
    if r.status != 200 {
        return Err(EtcdError::Status { status: r.status, body: r.body.chars().take(200).collect() });
    }
    serde_json::from_str(&r.body).map_err(|e| EtcdError::Decode(format!("{e}: {}", r.body)))
}

fn put_body(key: &str, value: &str) -> String {
    json!({"key": B64.encode(key), "value": B64.encode(value)}).to_string()
}

/// Writes `key = value`; returns the revision of the write once etcd acknowledges it.
pub fn put(ip: Ipv4Addr, key: &str, value: &str, timeout: Duration) -> Result<u64, EtcdError> {
    let r = crate::http::post_json(SocketAddr::from((ip, CLIENT_PORT)), "/v3/kv/put", &put_body(key, value), timeout)?;
    Ok(int(&decode(r)?["header"]["revision"]))
}

/// Like [`put`], over a kept-alive connection to the member.
pub fn put_on(conn: &mut crate::http::Conn, key: &str, value: &str, timeout: Duration) -> Result<u64, EtcdError> {
    let r = conn.post_json("/v3/kv/put", &put_body(key, value), timeout)?;
    Ok(int(&decode(r)?["header"]["revision"]))
}

/// The client address of the member at `ip`.
pub fn client_addr(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::from((ip, CLIENT_PORT))
}

/// Every key under `prefix` with its value (a linearizable read).
pub fn range_prefix(ip: Ipv4Addr, prefix: &str, timeout: Duration) -> Result<Vec<(String, String)>, EtcdError> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let v = call(ip, "/v3/kv/range", json!({"key": B64.encode(prefix), "range_end": B64.encode(&end)}), timeout)?;
    let decode = |x: &Value| {
        x.as_str()
            .and_then(|s| B64.decode(s).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    Ok(v["kvs"]
        .as_array()
        .map(|kvs| kvs.iter().map(|kv| (decode(&kv["key"]), decode(&kv["value"]))).collect())
        .unwrap_or_default())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub member_id: u64,
    /// The member this one believes is leader; 0 when it knows none.
    pub leader: u64,
    pub revision: u64,
    pub raft_term: u64,
    pub raft_index: u64,
}

impl Status {
    pub fn is_leader(&self) -> bool {
        self.leader != 0 && self.leader == self.member_id
    }
}

pub fn status(ip: Ipv4Addr, timeout: Duration) -> Result<Status, EtcdError> {
    let v = call(ip, "/v3/maintenance/status", json!({}), timeout)?;
    Ok(Status {
        member_id: int(&v["header"]["member_id"]),
        leader: int(&v["leader"]),
        revision: int(&v["header"]["revision"]),
        raft_term: int(&v["raftTerm"]),
        raft_index: int(&v["raftIndex"]),
    })
}
