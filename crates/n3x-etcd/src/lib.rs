//! etcd's v3 JSON gateway (the HTTP face of its gRPC API): the paths, the request bodies
//! and the parsing of answers, all pure: the lab sends these over HTTP from inside a
//! namespace, the deployer over SSH with `curl` on the host, and both read the answers
//! with the same code. [`http`] is the small blocking client the lab and `backup verify`
//! use where they reach a member directly.
//!
//! The gateway encodes 64-bit integers as strings and keys and values as base64.

pub mod http;

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
pub const SNAPSHOT: &str = "/v3/maintenance/snapshot";

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

/// One page of a range over raw keys: each key and value as bytes, whether etcd has more
/// after them, and the store's revision the read saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangePage {
    pub kvs: Vec<(Vec<u8>, Vec<u8>)>,
    pub more: bool,
    pub revision: u64,
}

pub fn parse_range_page(body: &str) -> Result<RangePage, DecodeError> {
    let v = parse(body)?;
    let bytes = |x: &Value, what: &str| -> Result<Vec<u8>, DecodeError> {
        match x.as_str() {
            None => Ok(Vec::new()),
            Some(s) => B64.decode(s).map_err(|e| DecodeError(format!("a {what} is not base64: {e}"))),
        }
    };
    let mut kvs = Vec::new();
    for kv in v["kvs"].as_array().map(Vec::as_slice).unwrap_or_default() {
        kvs.push((bytes(&kv["key"], "key")?, bytes(&kv["value"], "value")?));
    }
    Ok(RangePage { kvs, more: v["more"].as_bool().unwrap_or(false), revision: int(&v["header"]["revision"]) })
}

/// A page of every key from `from` on (inclusive; `b"\0"` for the start of the keyspace),
/// at most `limit` keys, in key order. With `revision` > 0 the read is at that revision, so
/// every page of one listing sees the same store.
pub fn range_from_body(from: &[u8], limit: u64, revision: u64) -> String {
    let mut v = json!({"key": B64.encode(from), "range_end": B64.encode([0u8]), "limit": limit.to_string()});
    if revision > 0 {
        v["revision"] = json!(revision.to_string());
    }
    v.to_string()
}

/// The key right after `key` in etcd's order (for the next page).
pub fn next_key(key: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    k.push(0);
    k
}

/// The snapshot bytes of a `/v3/maintenance/snapshot` answer: the gateway streams one JSON
/// object per chunk (`{"result":{"blob":...,"remaining_bytes":...}}`), or an error object.
/// The bytes are what `etcdctl snapshot save` writes: the database with its sha256 at the end.
pub fn parse_snapshot_stream(body: &str) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let mut chunks = 0usize;
    let mut last_remaining = None;
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_str(line).map_err(|e| DecodeError(format!("not a snapshot stream: {e}")))?;
        if let Some(e) = v.get("error") {
            let msg = e.get("message").and_then(Value::as_str).map_or_else(|| e.to_string(), str::to_owned);
            return Err(DecodeError(format!("etcd refused the snapshot: {msg}")));
        }
        let r = v.get("result").ok_or_else(|| DecodeError("not a snapshot stream: a chunk without `result`".into()))?;
        if let Some(b) = r.get("blob").and_then(Value::as_str) {
            out.extend(B64.decode(b).map_err(|e| DecodeError(format!("a snapshot chunk is not base64: {e}")))?);
        }
        last_remaining = Some(int(&r["remaining_bytes"]));
        chunks += 1;
    }
    match (chunks, last_remaining) {
        (0, _) => Err(DecodeError("an empty snapshot stream".into())),
        (_, Some(n)) if n > 0 => Err(DecodeError(format!("the snapshot stream ended {n} bytes early"))),
        _ if out.len() <= 32 => Err(DecodeError(format!("a snapshot of {} bytes is too short", out.len()))),
        _ => Ok(out),
    }
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
    fn snapshot_streams_decode_to_bytes_and_refuse_damage() {
        let blob =
            |b: &[u8], rem: u64| format!(r#"{{"result":{{"blob":"{}","remaining_bytes":"{rem}"}}}}"#, B64.encode(b));
        let a = vec![7u8; 40];
        let body = format!("{}\n{}\n", blob(&a[..30], 10), blob(&a[30..], 0));
        assert_eq!(parse_snapshot_stream(&body), Ok(a.clone()));
        // remaining_bytes is left out when zero, as etcd's gateway does.
        let body = format!("{}\n{{\"result\":{{\"blob\":\"{}\"}}}}\n", blob(&a[..30], 10), B64.encode(&a[30..]));
        assert_eq!(parse_snapshot_stream(&body), Ok(a.clone()));
        assert!(parse_snapshot_stream(&blob(&a[..30], 10)).unwrap_err().0.contains("10 bytes early"));
        assert!(parse_snapshot_stream("").is_err());
        assert!(
            parse_snapshot_stream(r#"{"error":{"message":"etcdserver: no leader"}}"#)
                .unwrap_err()
                .0
                .contains("no leader")
        );
        assert!(parse_snapshot_stream(&blob(b"tiny", 0)).is_err());
    }

    #[test]
    fn range_pages_carry_bytes_more_and_revision() {
        let body = r#"{"header":{"revision":"12"},"kvs":[{"key":"YQ==","value":"AP8="}],"more":true,"count":"3"}"#;
        let p = parse_range_page(body).unwrap_or_default();
        assert_eq!(p, RangePage { kvs: vec![(b"a".to_vec(), vec![0, 255])], more: true, revision: 12 });
        assert_eq!(parse_range_page(r#"{"header":{"revision":"3"}}"#).map(|p| p.kvs.len()), Ok(0));
        assert!(parse_range_page(r#"{"kvs":[{"key":"!!"}]}"#).is_err());
        assert_eq!(range_from_body(b"a", 10, 0), r#"{"key":"YQ==","limit":"10","range_end":"AA=="}"#);
        assert!(range_from_body(b"a", 10, 5).contains(r#""revision":"5""#));
        assert_eq!(next_key(b"a"), b"a\0");
    }

    #[test]
    fn bodies_encode_as_the_gateway_wants() {
        assert_eq!(move_leader_body(42), r#"{"targetID":"42"}"#);
        assert_eq!(member_remove_body(7), r#"{"ID":"7"}"#);
        assert_eq!(range_prefix_body("/a/"), r#"{"key":"L2Ev","range_end":"L2Ew"}"#);
        assert_eq!(put_body("k", "v"), r#"{"key":"aw==","value":"dg=="}"#);
    }
}
