//! The real [`System`]: namespaces and links in-process (netlink), nftables and qdiscs by
//! the `nft` and `tc` commands run inside the namespace, processes with `setns` and
//! `PR_SET_PDEATHSIG` before `exec`.

#![allow(unsafe_code)] // `pre_exec` for setns/pdeathsig in the child; see the SAFETY note.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sched::CloneFlags;

use super::netlink::Netlink;
use super::{LinkOp, NETNS_DIR, Process, System, netns};
use crate::error::LabError;
use crate::state::{ProcessRecord, process_start_time};

/// This machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Linux;

struct ChildProcess(Child);

impl Process for ChildProcess {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A command run to completion, optionally inside namespace `ns`, fed `stdin`.
fn run(ns: Option<&str>, program: &str, args: &[String], stdin: Option<&str>) -> Result<String, LabError> {
    let command = format!("{}{program} {}", ns.map(|n| format!("(in {n}) ")).unwrap_or_default(), args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let netns = ns.map(netns::open).transpose()?;
    if let Some(f) = &netns {
        enter_before_exec(&mut cmd, f.as_raw_fd(), false);
    }
    let mut child = cmd.spawn().map_err(|e| LabError::io(format!("start `{command}`"), e))?;
    drop(netns);
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

/// Makes the child enter the namespace `fd` (and, with `pdeathsig`, die with its parent)
/// between fork and exec.
fn enter_before_exec(cmd: &mut Command, fd: i32, pdeathsig: bool) {
    // SAFETY: the closure runs in the forked child before exec and only makes two
    // async-signal-safe system calls (setns, prctl) on an fd the parent keeps open until
    // `spawn` returns; it allocates nothing and touches no locks.
    unsafe {
        cmd.pre_exec(move || {
            let netns = std::os::fd::BorrowedFd::borrow_raw(fd);
            nix::sched::setns(netns, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            if pdeathsig {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').and_then(|i| s.get(i + 2..i + 3).map(|c| c == "Z")))
        .unwrap_or(false)
}

fn sysctl_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key)
}

impl System for Linux {
    fn netns_exists(&self, name: &str) -> bool {
        netns::path(name).exists()
    }

    fn list_netns(&self) -> Vec<String> {
        std::fs::read_dir(NETNS_DIR)
            .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
            .unwrap_or_default()
    }

    fn create_netns(&self, name: &str) -> Result<(), LabError> {
        netns::create(name)
    }

    fn delete_netns(&self, name: &str) -> Result<(), LabError> {
        netns::delete(name)
    }

    fn processes_in(&self, names: &[String]) -> Vec<ProcessRecord> {
        // A namespace is identified by the inode of its file; a process by the inode its
        // /proc/<pid>/ns/net points at. One pass over /proc serves every namespace.
        let inodes: BTreeMap<u64, &String> =
            names.iter().filter_map(|n| Some((std::fs::metadata(netns::path(n)).ok()?.ino(), n))).collect();
        let mut out = Vec::new();
        if inodes.is_empty() {
            return out;
        }
        let Ok(procs) = std::fs::read_dir("/proc") else { return out };
        for e in procs.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
            let Ok(ns) = std::fs::metadata(format!("/proc/{pid}/ns/net")) else { continue };
            if let Some(rec) =
                inodes.get(&ns.ino()).and_then(|name| ProcessRecord::of(pid, format!("process in {name}")))
            {
                out.push(rec);
            }
        }
        out
    }

    fn link_aliases(&self, ns: &str) -> Result<Vec<String>, LabError> {
        Netlink::open(ns)?.aliases()
    }

    fn links(&self, ns: &str, ops: &[LinkOp]) -> Result<(), LabError> {
        Netlink::open(ns)?.apply(ops)
    }

    fn nft(&self, ns: &str, script: &str) -> Result<(), LabError> {
        run(Some(ns), "nft", &["-f".into(), "-".into()], Some(script)).map(|_| ())
    }

    fn tc(&self, ns: &str, args: &[String]) -> Result<(), LabError> {
        run(Some(ns), "tc", args, None).map(|_| ())
    }

    fn probe_netem(&self) -> bool {
        let ns = format!("n3x-probe-{}", std::process::id());
        let netem = self.create_netns(&ns).is_ok()
            && self.links(&ns, &[LinkOp::LoopbackUp]).is_ok()
            && self.tc(&ns, &["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"].map(String::from)).is_ok();
        let _ = self.delete_netns(&ns);
        netem
    }

    fn read_sysctl(&self, key: &str) -> Option<u64> {
        std::fs::read_to_string(sysctl_path(key)).ok()?.trim().parse().ok()
    }

    fn write_sysctl(&self, key: &str, value: u64) -> Result<(), LabError> {
        std::fs::write(sysctl_path(key), format!("{value}\n"))
            .map_err(|e| LabError::io(format!("set sysctl {} to {value}", key.replace('/', ".")), e))
    }

    fn spawn(&self, ns: &str, program: &Path, args: &[String], log: &Path) -> Result<Box<dyn Process>, LabError> {
        let netns = netns::open(ns)?;
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| LabError::io(format!("open log {}", log.display()), e))?;
        let err_file = log_file.try_clone().map_err(|e| LabError::io("duplicate log handle", e))?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(log_file).stderr(err_file);
        enter_before_exec(&mut cmd, netns.as_raw_fd(), true);
        let child = cmd.spawn().map_err(|e| LabError::io(format!("start `{}` in `{ns}`", program.display()), e))?;
        drop(netns);
        Ok(Box::new(ChildProcess(child)))
    }

    fn kill(&self, rec: &ProcessRecord) -> bool {
        if !rec.is_alive() {
            return false;
        }
        let pid = nix::unistd::Pid::from_raw(rec.pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        true
    }

    fn alive(&self, rec: &ProcessRecord) -> bool {
        process_start_time(rec.pid) == Some(rec.start_time) && !is_zombie(rec.pid)
    }

    fn attach_tap(
        &self,
        ns: &str,
        ifname: &str,
        mtu: u32,
        switch: &n3x_switch::Switch,
        host: &str,
    ) -> Result<(), LabError> {
        let name = ifname.to_owned();
        let tap = netns::in_netns(ns, move || n3x_switch::Tap::create(&name, mtu))?
            .map_err(|e| LabError::io(format!("create TAP `{ifname}` in `{ns}`"), e))?;
        switch.add_port(host, tap).map_err(|e| LabError::io(format!("attach `{ifname}` of `{host}` to the switch"), e))
    }
}
