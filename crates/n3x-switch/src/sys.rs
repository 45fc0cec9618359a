//! The only module that talks to the kernel through raw system calls: TAP creation
//! (ioctls), waiting for a TAP or a stop signal (poll, eventfd) and the timer slack of the
//! scheduler thread. Everything else uses the safe wrappers here.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

/// `struct ifreq` with the short (flags) member of its union.
#[repr(C)]
struct IfReqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// `struct ifreq` with the int (mtu) member of its union.
#[repr(C)]
struct IfReqInt {
    name: [u8; libc::IFNAMSIZ],
    value: libc::c_int,
    _pad: [u8; 20],
}

// The kernel copies `sizeof(struct ifreq)`, 40 bytes on 64-bit Linux.
const _: () = assert!(std::mem::size_of::<IfReqFlags>() >= 40 && std::mem::size_of::<IfReqInt>() >= 40);

fn ctx(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// A TAP device with a `virtio_net_hdr` in front of every frame and segmentation offloads
/// on, so the kernel hands over (and accepts) TCP super-frames of up to 64 KiB.
/// The device exists while this value (its only file descriptor) does.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    /// Creates a TAP device named `ifname` in the calling thread's current network namespace
    /// (the lab calls it from a thread that has setns'd into the host's namespace), with
    /// `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR` and offloads (`TUNSETOFFLOAD` `TUN_F_CSUM |
    /// TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN`) so GSO super-frames pass through. Sets the
    /// MTU. Does not set the link up or add addresses.
    pub fn create(ifname: &str, mtu: u32) -> io::Result<Tap> {
        let name = if_name(ifname)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| ctx(e, format!("TAP {ifname}: open /dev/net/tun")))?;
        let mut req =
            IfReqFlags { name, flags: (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as _, _pad: [0; 22] };
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`; `req` is a live, properly sized
        // (>= 40 bytes, checked above) `repr(C)` struct with the same layout for the members used.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReqFlags) };
        if rc < 0 {
            return Err(ctx(io::Error::last_os_error(), format!("TAP {ifname}: ioctl TUNSETIFF")));
        }
        let offloads = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;
        // SAFETY: TUNSETOFFLOAD takes its argument by value (an unsigned int), no memory is passed.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETOFFLOAD, libc::c_ulong::from(offloads)) };
        if rc < 0 {
            return Err(ctx(io::Error::last_os_error(), format!("TAP {ifname}: ioctl TUNSETOFFLOAD")));
        }
        let actual = String::from_utf8_lossy(&req.name).trim_end_matches('\0').to_string();
        set_mtu(&req.name, mtu).map_err(|e| ctx(e, format!("TAP {actual}: ioctl SIOCSIFMTU {mtu}")))?;
        Ok(Tap { file, name: actual })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one frame (vnet header included). Non-blocking: `WouldBlock` when none waits.
    pub(crate) fn read_frame(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Writes one frame (vnet header included) into the device: the kernel receives it.
    pub(crate) fn write_frame(&self, buf: &[u8]) -> io::Result<usize> {
        (&self.file).write(buf)
    }

    /// Blocks until the TAP has a frame to read or `stop` is signalled. Returns true when
    /// stopped.
    pub(crate) fn wait_readable(&self, stop: &EventFd) -> io::Result<bool> {
        let mut fds = [
            libc::pollfd { fd: self.file.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: stop.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call, and
        // its length is passed alongside.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(ctx(e, format!("TAP {}: poll", self.name)));
        }
        Ok(fds[1].revents != 0)
    }
}

#[cfg(test)]
impl Tap {
    /// A `Tap` over `/dev/null`, for tests of data structures that hold one.
    pub(crate) fn for_tests() -> Tap {
        let file = OpenOptions::new().read(true).write(true).open("/dev/null").expect("open /dev/null");
        Tap { file, name: "test".to_string() }
    }
}

fn if_name(ifname: &str) -> io::Result<[u8; libc::IFNAMSIZ]> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty()
        || bytes.len() >= libc::IFNAMSIZ
        || bytes.iter().any(|b| *b == 0 || *b == b'/' || b.is_ascii_whitespace())
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("TAP name {ifname:?}: must be 1 to 15 bytes without '/', whitespace or NUL"),
        ));
    }
    let mut name = [0u8; libc::IFNAMSIZ];
    name[..bytes.len()].copy_from_slice(bytes);
    Ok(name)
}

fn set_mtu(name: &[u8; libc::IFNAMSIZ], mtu: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(mtu).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "MTU too large"))?;
    // SAFETY: socket() takes no pointers; the returned descriptor is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(ctx(io::Error::last_os_error(), "socket(AF_INET, SOCK_DGRAM)".to_string()));
    }
    // SAFETY: `fd` was just returned by socket() and is owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReqInt { name: *name, value, _pad: [0; 20] };
    // SAFETY: SIOCSIFMTU reads a `struct ifreq`; `req` is a live `repr(C)` struct of at
    // least its size with the name and the int member at the kernel's offsets.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFMTU, &mut req as *mut IfReqInt) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An eventfd used as a level-triggered stop flag: once signalled it stays readable.
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: File,
}

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd() takes no pointers; the returned descriptor is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(ctx(io::Error::last_os_error(), "eventfd".to_string()));
        }
        // SAFETY: `fd` was just returned by eventfd() and is owned by nothing else.
        Ok(EventFd { fd: File::from(unsafe { OwnedFd::from_raw_fd(fd) }) })
    }

    pub(crate) fn signal(&self) -> io::Result<()> {
        (&self.fd).write_all(&1u64.to_ne_bytes())
    }
}

/// Sets the calling thread's timer slack (how late the kernel may wake it), in nanoseconds.
pub(crate) fn set_timer_slack(ns: u64) -> io::Result<()> {
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long by value; no memory is passed.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) };
    if rc < 0 {
        return Err(ctx(io::Error::last_os_error(), "prctl(PR_SET_TIMERSLACK)".to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_names_before_any_syscall() {
        for bad in ["", "sixteen-chars-xx", "a/b", "a b", "a\0b"] {
            let e = Tap::create(bad, 1500).expect_err(bad);
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }
}
