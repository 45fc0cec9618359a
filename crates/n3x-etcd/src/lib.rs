//! etcd's v3 JSON gateway (the HTTP face of its gRPC API): the paths, the request bodies
//! and the parsing of answers. Pure: the lab sends these over HTTP from inside a
//! namespace, the deployer over SSH with `curl` on the host, and both read the answers
//! with the same code.
//!
//! The gateway encodes 64-bit integers as strings and keys and values as base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;

pub const PUT: &str = "/v3/kv/put";
pub const RANGE: &str = "/v3/kv/range";
pub const STATUS: &str = "/v3/maintenance/status";
pub const ALARMS: &str = "/v3/maintenance/alarm";
pub const MOVE_LEADER: &str = "/v3/maintenance/transfer-leadership";
pub const MEMBER_LIST: &str = "/v3/cluster/member/list";
pub const MEMBER_ADD: &str = "/v3/cluster/member/add";
pub const MEMBER_REMOVE: &str = "/v3/cluster/member/remove";

/// An answer that is not what was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

fn parse(body: &str) -> Result<Value, DecodeError> {
    let v: Value = serde_json::from_str(body).map_err(|e| DecodeError(format!("not JSON ({e}): {}", snippet(body))))?;
    if let Some(err) = v.get("error").and_then(Value::as_str) {
        return Err(DecodeError(format!("etcd refused: {err}")));
    }
    Ok(v)
}

fn snippet(s: &str) -> String {
    s.chars().take(200).collect()
}

/// A 64-bit integer as the gateway writes it (a string), or a JSON number.
pub fn int(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

/// A member's view of the cluster (`maintenance/status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub member_id: u64,
    /// The member this one believes is leader; 0 when it knows none.
    pub leader: u64,
    pub revision: u64,
    pub raft_term: u64,
    pub raft_index: u64,
    #[serde(default)]
    pub raft_applied_index: u64,
    #[serde(default)]
    pub db_size: u64,
}

impl Status {
    pub fn is_leader(&self) -> bool {
        self.leader != 0 && self.leader == self.member_id
    }
}

pub fn parse_status(body: &str) -> Result<Status, DecodeError> {
    let v = parse(body)?;
    if v.get("header").is_none() {
        return Err(DecodeError(format!("no status in the answer: {}", snippet(body))));
    }
    Ok(Status {
        member_id: int(&v["header"]["member_id"]),
        leader: int(&v["leader"]),
        revision: int(&v["header"]["revision"]),
        raft_term: int(&v["raftTerm"]),
        raft_index: int(&v["raftIndex"]),
        raft_applied_index: int(&v["raftAppliedIndex"]),
        db_size: int(&v["dbSize"]),
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    /// Empty for a member added but not started yet.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

pub fn parse_members(body: &str) -> Result<Vec<Member>, DecodeError> {
    let v = parse(body)?;
    let members =
        v["members"].as_array().ok_or_else(|| DecodeError(format!("no members in the answer: {}", snippet(body))))?;
    Ok(members
        .iter()
        .map(|m| Member {
            id: int(&m["ID"]),
            name: m["name"].as_str().unwrap_or_default().to_owned(),
            peer_urls: strings(&m["peerURLs"]),
            client_urls: strings(&m["clientURLs"]),
            is_learner: m["isLearner"].as_bool().unwrap_or(false),
        })
        .collect())
}

/// The member `member/add` created.
pub fn parse_added(body: &str) -> Result<u64, DecodeError> {
    let v = parse(body)?;
    match int(&v["member"]["ID"]) {
        0 => Err(DecodeError(format!("no member in the answer: {}", snippet(body)))),
        id => Ok(id),
    }
}

/// Active alarms as `(member id, alarm)`, e.g. `NOSPACE`.
pub fn parse_alarms(body: &str) -> Result<Vec<(u64, String)>, DecodeError> {
    let v = parse(body)?;
    Ok(v["alarms"]
        .as_array()
        .map(|a| a.iter().map(|x| (int(&x["memberID"]), x["alarm"].as_str().unwrap_or("NOSPACE").to_owned())).collect())
        .unwrap_or_default())
}

/// Checks an answer that carries nothing but success (move-leader, member remove).
pub fn parse_ok(body: &str) -> Result<(), DecodeError> {
    parse(body).map(|_| ())
}

/// The revision of an acknowledged put.
pub fn parse_put(body: &str) -> Result<u64, DecodeError> {
    Ok(int(&parse(body)?["header"]["revision"]))
}

/// Every key with its value from a range answer.
pub fn parse_range(body: &str) -> Result<Vec<(String, String)>, DecodeError> {
    let v = parse(body)?;
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

pub fn put_body(key: &str, value: &str) -> String {
    json!({"key": B64.encode(key), "value": B64.encode(value)}).to_string()
}

/// Every key starting with `prefix` (a linearizable read).
pub fn range_prefix_body(prefix: &str) -> String {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    json!({"key": B64.encode(prefix), "range_end": B64.encode(&end)}).to_string()
}

pub fn empty_body() -> String {
    "{}".into()
}

pub fn alarm_list_body() -> String {
    json!({"action": "GET"}).to_string()
}

pub fn move_leader_body(target: u64) -> String {
    json!({"targetID": target.to_string()}).to_string()
}

pub fn member_add_body(peer_urls: &[String]) -> String {
    json!({"peerURLs": peer_urls}).to_string()
}

pub fn member_remove_body(id: u64) -> String {
    json!({"ID": id.to_string()}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Answers of etcd 3.4.23 (Debian's etcd-server), captured from its gateway.
    const STATUS_ANSWER: &str = r#"{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"1","raft_term":"2"},"version":"3.4.23","dbSize":"20480","leader":"13668033151171901709","raftIndex":"4","raftTerm":"2","raftAppliedIndex":"4","dbSizeInUse":"16384"}"#;
    const MEMBERS_ANSWER: &str = r#"{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","raft_term":"2"},"members":[{"ID":"1658481005385063476","peerURLs":["http://127.0.0.1:23802"]},{"ID":"13668033151171901709","name":"e1","peerURLs":["http://127.0.0.1:23801"],"clientURLs":["http://127.0.0.1:23791"]}]}"#;

    #[test]
    fn answers_of_a_real_etcd_parse() {
        let s = parse_status(STATUS_ANSWER).unwrap_or_default();
        assert!(s.is_leader());
        assert_eq!((s.revision, s.raft_index, s.raft_applied_index, s.db_size), (1, 4, 4, 20480));
        let m = parse_members(MEMBERS_ANSWER).unwrap_or_default();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].name, "", "added, not started");
        assert_eq!(m[1].client_urls, ["http://127.0.0.1:23791"]);
        assert_eq!(parse_alarms("{}"), Ok(vec![]));
        let refused =
            r#"{"error":"etcdserver: bad leader transferee","message":"etcdserver: bad leader transferee","code":9}"#;
        assert_eq!(parse_ok(refused), Err(DecodeError("etcd refused: etcdserver: bad leader transferee".into())));
        assert!(parse_status("curl: (7) Failed to connect").is_err());
    }

    #[test]
    fn bodies_encode_as_the_gateway_wants() {
        assert_eq!(move_leader_body(42), r#"{"targetID":"42"}"#);
        assert_eq!(member_remove_body(7), r#"{"ID":"7"}"#);
        assert_eq!(range_prefix_body("/a/"), r#"{"key":"L2Ev","range_end":"L2Ew"}"#);
        assert_eq!(put_body("k", "v"), r#"{"key":"aw==","value":"dg=="}"#);
    }
}
