//! `backup verify`'s proof: the snapshot restored into a throwaway etcd (a real member
//! started from it, on loopback ports of its own) and every key read back.
//!
//! The scratch directory is in memory where the machine has `/dev/shm`, mode 0700, and
//! removed when the check ends, whatever happens; the member runs under
//! `setpriv --pdeathsig KILL` when available, so it dies with this process.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::OperateError;

/// The binaries the check runs.
#[derive(Clone, Debug)]
pub struct Tools {
    pub etcd: PathBuf,
    pub etcdctl: PathBuf,
}

impl Tools {
    /// `etcd` and `etcdctl` from `PATH` (each may be overridden by `N3X_ETCD`/`N3X_ETCDCTL`).
    pub fn find() -> Result<Tools, OperateError> {
        let find = |name: &str, env: &str| -> Result<PathBuf, OperateError> {
            if let Some(p) = std::env::var_os(env).filter(|v| !v.is_empty()) {
                return Ok(PathBuf::from(p));
            }
            which(name).ok_or_else(|| OperateError::Tool {
                command: name.into(),
                detail: format!("not found in PATH (set {env} to its path)"),
            })
        };
        Ok(Tools { etcd: find("etcd", "N3X_ETCD")?, etcdctl: find("etcdctl", "N3X_ETCDCTL")? })
    }
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

/// What the restored store holds.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Readback {
    /// The store's revision after the restore: the snapshot's.
    pub revision: u64,
    pub keys: u64,
    /// Keys and values, in bytes.
    pub bytes: u64,
    pub restore_ms: u64,
    pub start_ms: u64,
    pub read_ms: u64,
}

/// The scratch directory and the member; both gone on drop.
struct Scratch {
    dir: PathBuf,
    member: Option<Child>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(mut c) = self.member.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch() -> Result<Scratch, OperateError> {
    let base = ["/dev/shm"].iter().map(PathBuf::from).find(|p| p.is_dir()).unwrap_or_else(std::env::temp_dir);
    for n in 0..100u32 {
        let dir = base.join(format!("n3x-verify-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| OperateError::io("secure", &dir, e))?;
                return Ok(Scratch { dir, member: None });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(OperateError::io("create", &dir, e)),
        }
    }
    Err(OperateError::io("create", base, "no free scratch directory name"))
}

fn free_port() -> Result<u16, OperateError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| OperateError::Tool { command: "bind 127.0.0.1:0".into(), detail: e.to_string() })
}

/// Restores `snapshot` into a fresh etcd member and reads every key back. `path` names
/// the backup in errors.
pub fn restore_and_read(path: &Path, snapshot: &[u8], tools: &Tools) -> Result<Readback, OperateError> {
    let mut s = scratch()?;
    let (peer, client) = (free_port()?, free_port()?);
    let peer_url = format!("http://127.0.0.1:{peer}");
    let client_url = format!("http://127.0.0.1:{client}");
    let file = s.dir.join("snapshot.db");
    let data = s.dir.join("data");
    n3x_fs::write(&file, snapshot, Some(0o600)).map_err(|e| OperateError::io("write", &file, e))?;

    let t0 = Instant::now();
    let out = Command::new(&tools.etcdctl)
        .env("ETCDCTL_API", "3")
        .arg("snapshot")
        .arg("restore")
        .arg(&file)
        .arg(format!("--data-dir={}", data.display()))
        .arg("--name=verify")
        .arg(format!("--initial-cluster=verify={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .output()
        .map_err(|e| OperateError::Tool { command: tools.etcdctl.display().to_string(), detail: e.to_string() })?;
    let _ = std::fs::remove_file(&file);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        return Err(OperateError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("etcdctl snapshot restore refused it: {last}"),
        });
    }
    let restore_ms = t0.elapsed().as_millis() as u64;

    let t1 = Instant::now();
    let log = s.dir.join("etcd.log");
    let log_file = std::fs::File::create(&log).map_err(|e| OperateError::io("create", &log, e))?;
    let mut cmd = match which("setpriv") {
        Some(sp) => {
            let mut c = Command::new(sp);
            c.arg("--pdeathsig").arg("KILL").arg(&tools.etcd);
            c
        }
        None => Command::new(&tools.etcd),
    };
    cmd.arg("--name=verify")
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--initial-cluster=verify={peer_url}"))
        // A member alone on loopback: elect itself in 100 ms, not etcd's default second.
        .arg("--heartbeat-interval=10")
        .arg("--election-timeout=100")
        .arg("--log-outputs=stderr")
        .arg("--logger=zap")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    let child = cmd
        .spawn()
        .map_err(|e| OperateError::Tool { command: tools.etcd.display().to_string(), detail: e.to_string() })?;
    s.member = Some(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], client));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if n3x_etcd::http::has_leader(&n3x_etcd::http::Transport::Plain, addr, Duration::from_secs(1)) {
            break;
        }
        if let Some(Ok(Some(status))) = s.member.as_mut().map(Child::try_wait) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let last = text.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
            return Err(OperateError::Tool {
                command: "etcd (throwaway)".into(),
                detail: format!("exited ({status}): {last}"),
            });
        }
        if Instant::now() > deadline {
            return Err(OperateError::Tool {
                command: "etcd (throwaway)".into(),
                detail: "not ready after 30 s".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let start_ms = t1.elapsed().as_millis() as u64;

    let t2 = Instant::now();
    let (revision, keys, bytes) = read_every_key(addr)?;
    let read_ms = t2.elapsed().as_millis() as u64;
    Ok(Readback { revision, keys, bytes, restore_ms, start_ms, read_ms })
}

/// Every key and value of the member at `addr`, page by page at one revision:
/// (revision, keys, bytes).
pub fn read_every_key(addr: SocketAddr) -> Result<(u64, u64, u64), OperateError> {
    const PAGE: u64 = 5000;
    let (mut from, mut revision, mut keys, mut bytes) = (vec![0u8], 0u64, 0u64, 0u64);
    loop {
        let r = n3x_etcd::http::post_json(
            &n3x_etcd::http::Transport::Plain,
            addr,
            n3x_etcd::RANGE,
            &n3x_etcd::range_from_body(&from, PAGE, revision),
            Duration::from_secs(30),
        )
        .map_err(|e| OperateError::Tool { command: "etcd range (throwaway)".into(), detail: e.to_string() })?;
        let page = n3x_etcd::parse_range_page(&r.body)
            .map_err(|e| OperateError::Tool { command: "etcd range (throwaway)".into(), detail: e.0 })?;
        if revision == 0 {
            revision = page.revision;
        }
        keys += page.kvs.len() as u64;
        bytes += page.kvs.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum::<u64>();
        match (page.more, page.kvs.last()) {
            (true, Some((k, _))) => from = n3x_etcd::next_key(k),
            _ => return Ok((revision, keys, bytes)),
        }
    }
}
