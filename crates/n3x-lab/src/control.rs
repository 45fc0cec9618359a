//! The supervisor's control socket, `/run/n3x/<cluster>/control.sock`: one JSON request
//! per line, one JSON response per line. `lab status`, `impair`, `partition`, `heal` and
//! the scenarios all speak it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use n3x_model::model::Profile;
use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::probe::Write as ProbeWrite;

pub const SOCKET: &str = "control.sock";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    Status,
    /// SIGKILL a server's etcd.
    Kill {
        host: String,
    },
    /// Restart a server's etcd on its existing data.
    Start {
        host: String,
    },
    Partition {
        a: Vec<String>,
        b: Vec<String>,
    },
    Heal,
    Impair {
        hosts: Vec<String>,
        profile_name: String,
        profile: Profile,
    },
    /// Probe writes from index `since` on.
    Writes {
        since: usize,
    },
    PauseProbes,
    ResumeProbes,
    /// Read every acknowledged write back through `via` (a server), or any running one.
    Verify {
        via: Option<String>,
    },
    /// From the `switch-to-configuration` double: `host` now runs `generation`; restart
    /// its services with `settings`.
    Activate {
        host: String,
        generation: String,
        settings: Box<crate::generation::Settings>,
    },
    /// From the `nixos-anywhere` double: `host` is installed (with `host_key` as its new
    /// SSH host key); a server's etcd member joins the cluster as a k3s server does.
    Install {
        host: String,
        host_key: Option<std::path::PathBuf>,
    },
    /// From the `systemctl start|stop k3s` double: a server's member stops, or starts (on
    /// its data, or joining the running members when its data was wiped, as k3s does).
    K3s {
        host: String,
        run: bool,
    },
    /// From the `k3s server --cluster-reset` double: `host`'s member data becomes a cluster
    /// of one restored from `snapshot` (a path in the host's root).
    ClusterReset {
        host: String,
        snapshot: String,
    },
    /// `k3s token rotate` on a server: the cluster's server token becomes `new`.
    RotateToken {
        host: String,
        new: String,
    },
    /// A disaster: a server's member is killed and its data wiped; an agent's k3s state is
    /// wiped and its workload stops until it is installed again.
    Destroy {
        host: String,
    },
    /// Writes sent before `before_ms` are settled: later read-backs (`Verify`) skip them
    /// (a restore from a backup lost the newer ones by design).
    Settle {
        before_ms: f64,
    },
    Shutdown,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Response {
    /// Done; `at_ms` is when, on the lab's clock (the probes' clock).
    Ok {
        at_ms: f64,
    },
    Status(Box<LabStatus>),
    Writes {
        writes: Vec<ProbeWrite>,
    },
    Verify(VerifyResult),
    Error {
        message: String,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabStatus {
    pub cluster: String,
    pub fabric: String,
    pub now_ms: f64,
    pub bringup_ms: f64,
    pub hosts: Vec<HostStatus>,
    /// The host every running member agrees is leader, if they agree.
    pub leader: Option<String>,
    pub partitioned: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostStatus {
    pub name: String,
    pub role: String,
    pub namespace: String,
    pub profile: String,
    pub addresses: Vec<String>,
    /// Servers only.
    pub member: Option<MemberStatus>,
    /// The generation it runs (labs with SSH).
    #[serde(default)]
    pub generation: Option<String>,
    #[serde(default)]
    pub settings: Option<crate::generation::Settings>,
    /// When it was last activated, on the lab's clock.
    #[serde(default)]
    pub activated_ms: Option<f64>,
    /// k3s's unit: up unless the generation broke it (or the host is not installed).
    #[serde(default)]
    pub k3s_active: bool,
    /// False in an empty lab until `n3x install` put NixOS on it.
    #[serde(default)]
    pub installed: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberStatus {
    pub running: bool,
    pub pid: Option<i32>,
    pub status: Option<crate::etcd::Status>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyResult {
    pub via: String,
    pub acked: usize,
    pub lost: Vec<String>,
    pub mismatched: Vec<String>,
}

impl Request {
    /// The request's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Kill { .. } => "kill",
            Request::Start { .. } => "start",
            Request::Partition { .. } => "partition",
            Request::Heal => "heal",
            Request::Impair { .. } => "impair",
            Request::Writes { .. } => "writes",
            Request::PauseProbes => "pause-probes",
            Request::ResumeProbes => "resume-probes",
            Request::Verify { .. } => "verify",
            Request::Activate { .. } => "activate",
            Request::Install { .. } => "install",
            Request::K3s { run: true, .. } => "k3s-start",
            Request::K3s { run: false, .. } => "k3s-stop",
            Request::ClusterReset { .. } => "cluster-reset",
            Request::Destroy { .. } => "destroy",
            Request::RotateToken { .. } => "rotate-token",
            Request::Settle { .. } => "settle",
            Request::Shutdown => "shutdown",
        }
    }
}

/// Sends one request and waits for its answer.
pub fn call(dir: &Path, req: &Request, timeout: Duration) -> Result<Response, LabError> {
    let path = dir.join(SOCKET);
    let mut s = UnixStream::connect(&path)
        .map_err(|e| LabError::io(format!("connect to the lab supervisor at {}", path.display()), e))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| LabError::io("set socket timeout", e))?;
    let line = serde_json::to_string(req)
        .map_err(|e| LabError::Encode { what: format!("the `{}` request", req.name()), message: e.to_string() })?
        + "\n";
    s.write_all(line.as_bytes()).map_err(|e| LabError::io("send to the lab supervisor", e))?;
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer).map_err(|e| LabError::io("read from the lab supervisor", e))?;
    let resp: Response =
        serde_json::from_str(&answer).map_err(|_| LabError::UnexpectedAnswer { request: req.name().into() })?;
    match resp {
        Response::Error { message } => Err(LabError::Refused { request: req.name().into(), message }),
        r => Ok(r),
    }
}

/// `call`, expecting `Ok`: returns when it happened on the lab's clock.
pub fn act(dir: &Path, req: &Request, timeout: Duration) -> Result<f64, LabError> {
    match call(dir, req, timeout)? {
        Response::Ok { at_ms } => Ok(at_ms),
        _ => Err(LabError::UnexpectedAnswer { request: req.name().into() }),
    }
}

/// The running lab's status.
pub fn status(dir: &Path) -> Result<LabStatus, LabError> {
    match call(dir, &Request::Status, Duration::from_secs(30))? {
        Response::Status(s) => Ok(*s),
        _ => Err(LabError::UnexpectedAnswer { request: "status".into() }),
    }
}

/// Every probe write from index `since` on.
pub fn writes(dir: &Path, since: usize) -> Result<Vec<ProbeWrite>, LabError> {
    match call(dir, &Request::Writes { since }, Duration::from_secs(30))? {
        Response::Writes { writes } => Ok(writes),
        _ => Err(LabError::UnexpectedAnswer { request: "writes".into() }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A supervisor stand-in that answers each connection with the next canned line.
    fn answering(lines: &'static [&'static str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let l = UnixListener::bind(dir.path().join(SOCKET)).unwrap();
        std::thread::spawn(move || {
            for (conn, line) in l.incoming().zip(lines) {
                let mut conn = conn.unwrap();
                let mut req = String::new();
                BufReader::new(&conn).read_line(&mut req).unwrap();
                conn.write_all(line.as_bytes()).unwrap();
            }
        });
        dir
    }

    #[test]
    fn answers_become_values_or_errors_that_name_the_request() {
        let d = answering(&[
            "{\"result\":\"ok\",\"at_ms\":12.5}\n",
            "{\"result\":\"error\",\"message\":\"`x` is not a host\"}\n",
            "not json\n",
            "{\"result\":\"ok\",\"at_ms\":1.0}\n",
        ]);
        let t = Duration::from_secs(5);
        assert_eq!(act(d.path(), &Request::Heal, t).unwrap(), 12.5);
        let e = act(d.path(), &Request::Kill { host: "x".into() }, t).unwrap_err();
        assert_eq!(e.to_string(), "the lab supervisor refused `kill`: `x` is not a host");
        let e = status(d.path()).unwrap_err();
        assert!(matches!(e, LabError::UnexpectedAnswer { ref request } if request == "status"), "{e}");
        // An answer of the wrong kind is as unexpected as garbage.
        let e = writes(d.path(), 0).unwrap_err();
        assert!(matches!(e, LabError::UnexpectedAnswer { .. }));
    }

    #[test]
    fn no_supervisor_is_an_io_error_naming_the_socket() {
        let d = tempfile::tempdir().unwrap();
        let e = call(d.path(), &Request::Status, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("control.sock"), "{e}");
    }
}
