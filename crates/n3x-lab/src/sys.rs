//! The machine: commands (`ip`, `nft`), network namespaces and processes inside them.
//! Everything the lab does to the kernel goes through here.

#![allow(unsafe_code)] // `pre_exec` for setns/pdeathsig in the child; see the SAFETY notes.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sched::CloneFlags;

use crate::error::LabError;

/// Where `ip netns add` mounts namespaces.
pub const NETNS_DIR: &str = "/run/netns";

pub fn require_root() -> Result<(), LabError> {
    if nix::unistd::geteuid().is_root() { Ok(()) } else { Err(LabError::NotRoot) }
}

/// Finds a program: `explicit` if given (it must exist), else on PATH.
pub fn find_binary(name: &str, explicit: Option<&Path>, fix: &str) -> Result<PathBuf, LabError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(LabError::MissingBinary { name: name.into(), looked: Some(p.display().to_string()), fix: fix.into() })
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| LabError::MissingBinary { name: name.into(), looked: Some("PATH".into()), fix: fix.into() })
}

/// Runs a command to completion, feeding `stdin`; returns stdout, or an error with stderr.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, LabError> {
    let command = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LabError::io(format!("start `{command}`"), e))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).map_err(|e| LabError::io(format!("write to `{command}`"), e))?;
    }
    let out = child.wait_with_output().map_err(|e| LabError::io(format!("wait for `{command}`"), e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        Err(LabError::Command { command, stderr: if stderr.is_empty() { out.status.to_string() } else { stderr } })
    }
}

/// Runs `ip` commands in one process (`ip -batch -`), optionally inside namespace `ns`.
pub fn ip_batch(ns: Option<&str>, lines: &[String]) -> Result<(), LabError> {
    if lines.is_empty() {
        return Ok(());
    }
    let script = lines.join("\n") + "\n";
    let mut args = vec![];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    args.extend(["-batch", "-"]);
    run("ip", &args, Some(&script)).map(|_| ())
}

/// Loads an nftables script inside namespace `ns`.
pub fn nft(ns: &str, script: &str) -> Result<(), LabError> {
    run("ip", &["netns", "exec", ns, "nft", "-f", "-"], Some(script)).map(|_| ())
}

pub fn netns_exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

pub fn list_netns() -> Vec<String> {
    std::fs::read_dir(NETNS_DIR)
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}

fn open_netns(ns: &str) -> Result<File, LabError> {
    File::open(Path::new(NETNS_DIR).join(ns)).map_err(|e| LabError::io(format!("open namespace `{ns}`"), e))
}

/// Runs `f` on a new thread that has entered namespace `ns`. `setns` changes only the
/// calling thread, so namespace work never happens on a shared or async worker thread.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, LabError> {
    match spawn_in_netns_thread(ns, f)?.join() {
        Ok(Some(v)) => Ok(v),
        _ => Err(LabError::Lab(format!("a thread in namespace `{ns}` panicked"))),
    }
}

/// Like `in_netns`, but returns the running thread. Its result is `None` only if entering
/// the namespace failed, which this function has already reported as an error.
pub fn spawn_in_netns_thread<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<Option<T>>, LabError> {
    let file = open_netns(ns)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("ns:{ns}"))
        .spawn(move || {
            let entered = nix::sched::setns(file.as_fd(), CloneFlags::CLONE_NEWNET);
            let ok = entered.is_ok();
            let _ = tx.send(entered);
            ok.then(f)
        })
        .map_err(|e| LabError::io(format!("start a thread for namespace `{ns}`"), e))?;
    match rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(LabError::io(format!("enter namespace `{ns}`"), e.into())),
        Err(_) => Err(LabError::Lab(format!("the thread for namespace `{ns}` died"))),
    }
}

/// Starts `program` inside namespace `ns`, with stdout and stderr appended to `log`. The
/// child is killed by the kernel if the process that started it dies (PR_SET_PDEATHSIG),
/// so a crashed supervisor leaves no service behind.
pub fn spawn_in_netns(ns: &str, program: &Path, args: &[String], log: &Path) -> Result<Child, LabError> {
    let netns = open_netns(ns)?;
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| LabError::io(format!("open log {}", log.display()), e))?;
    let err_file = log_file.try_clone().map_err(|e| LabError::io("duplicate log handle", e))?;
    let fd = netns.as_raw_fd();
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(log_file).stderr(err_file);
    // SAFETY: the closure runs in the forked child before exec and only makes two
    // async-signal-safe system calls (setns, prctl) on an fd the parent keeps open until
    // `spawn` returns; it allocates nothing and touches no locks.
    unsafe {
        cmd.pre_exec(move || {
            let netns = std::os::fd::BorrowedFd::borrow_raw(fd);
            nix::sched::setns(netns, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| LabError::io(format!("start `{}` in `{ns}`", program.display()), e))?;
    drop(netns);
    Ok(child)
}

/// Sends SIGKILL to `pid` if it is still the recorded process, and reaps it if it is our child.
pub fn kill_recorded(rec: &crate::state::ProcessRecord) -> bool {
    if !rec.is_alive() {
        return false;
    }
    let pid = nix::unistd::Pid::from_raw(rec.pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    true
}

/// Waits (up to `timeout`) until none of `pids` names a live process.
pub fn wait_gone(recs: &[crate::state::ProcessRecord], timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if recs.iter().all(|r| !r.is_alive() || is_zombie(r.pid)) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').and_then(|i| s.get(i + 2..i + 3).map(|c| c == "Z")))
        .unwrap_or(false)
}
