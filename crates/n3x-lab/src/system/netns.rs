//! Named network namespaces, made in-process the way `ip netns add` makes them (a file
//! under /run/netns with the namespace bind-mounted on it), and threads that work inside
//! one. In-process because a lab of 1000 hosts would otherwise start 1000 `ip` processes
//! just to create its namespaces.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::NETNS_DIR;
use crate::error::LabError;

/// Stack of a thread that works in a namespace: a probe, a status call, a netlink socket.
/// Their work is a blocking HTTP request or a few syscalls; a thousand of them must fit.
const THREAD_STACK: usize = 256 * 1024;

pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

pub fn open(name: &str) -> Result<File, LabError> {
    File::open(path(name)).map_err(|e| LabError::io(format!("open namespace `{name}`"), e))
}

/// Makes /run/netns a shared mount point, as `ip netns` does, so namespaces mounted there
/// are visible from every mount namespace (and to `ip netns exec`).
fn prepare_dir() -> Result<(), LabError> {
    std::fs::create_dir_all(NETNS_DIR).map_err(|e| LabError::io(format!("create {NETNS_DIR}"), e))?;
    let shared =
        || nix::mount::mount(None::<&str>, NETNS_DIR, None::<&str>, MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>);
    match shared() {
        Ok(()) => Ok(()),
        // Not a mount point yet: bind it onto itself first.
        Err(nix::errno::Errno::EINVAL) => nix::mount::mount(
            Some(NETNS_DIR),
            NETNS_DIR,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .and_then(|_| shared())
        .map_err(|e| LabError::io(format!("make {NETNS_DIR} a shared mount"), e.into())),
        Err(e) => Err(LabError::io(format!("make {NETNS_DIR} a shared mount"), e.into())),
    }
}

/// Creates namespace `name`: a new network namespace on a short-lived thread, bind-mounted
/// onto /run/netns/<name> so it outlives the thread.
pub fn create(name: &str) -> Result<(), LabError> {
    static PREPARED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    if let Err(e) = PREPARED.get_or_init(|| prepare_dir().map_err(|e| e.to_string())) {
        return Err(LabError::io(format!("prepare {NETNS_DIR}"), std::io::Error::other(e.clone())));
    }
    let target = path(name);
    // O_EXCL: an existing name is someone else's (or a bug), never silently reused.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .map_err(|e| LabError::io(format!("create {}", target.display()), e))?;
    let mount_point = target.clone();
    let made = std::thread::Builder::new()
        .name(format!("netns-add:{name}"))
        .stack_size(THREAD_STACK)
        .spawn(move || -> nix::Result<()> {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
            ipv4_only();
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &mount_point,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        })
        .map_err(|e| LabError::io(format!("start a thread to create namespace `{name}`"), e))?
        .join();
    match made {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            let _ = std::fs::remove_file(&target);
            Err(LabError::io(format!("create namespace `{name}`"), e.into()))
        }
        Err(_) => {
            let _ = std::fs::remove_file(&target);
            Err(LabError::NamespaceThread { ns: name.to_owned() })
        }
    }
}

/// Turns IPv6 off in the calling thread's (new) namespace. The lab is IPv4 (so is the
/// inventory), and every interface with IPv6 sends router solicitations, duplicate-address
/// probes and multicast listener reports, which a bridge floods to every port: with a
/// thousand hosts that noise alone made building the lab quadratic. Best effort: a kernel
/// without IPv6 has no such sysctl and no such noise.
fn ipv4_only() {
    // /proc/sys/net shows the namespace of the thread that opens it.
    for scope in ["all", "default"] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{scope}/disable_ipv6"), "1");
    }
}

/// Removes namespace `name`: unmounts and unlinks its file. The kernel frees the namespace
/// (and every link in it) once no process and no open handle holds it.
pub fn delete(name: &str) -> Result<(), LabError> {
    let target = path(name);
    match nix::mount::umount2(&target, MntFlags::MNT_DETACH) {
        // EINVAL: not mounted (a creation that died half-way); the file still goes.
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(LabError::io(format!("unmount namespace `{name}`"), e.into())),
    }
    match std::fs::remove_file(&target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LabError::io(format!("remove {}", target.display()), e)),
    }
}

/// Runs `f` on a new thread that has entered namespace `ns`. `setns` changes only the
/// calling thread, so namespace work never happens on a shared thread.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, LabError> {
    match netns_thread(ns, f)?.join() {
        Ok(Some(v)) => Ok(v),
        _ => Err(LabError::NamespaceThread { ns: ns.to_owned() }),
    }
}

/// Like [`in_netns`], but returns the running thread. Its result is `None` only if entering
/// the namespace failed, which this function has already reported as an error.
pub fn netns_thread<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<Option<T>>, LabError> {
    let file = open(ns)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("ns:{ns}"))
        .stack_size(THREAD_STACK)
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
        Err(_) => Err(LabError::NamespaceThread { ns: ns.to_owned() }),
    }
}
