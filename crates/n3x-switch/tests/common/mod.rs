//! Network namespaces for the IO tests: created with `ip netns`, entered by single
//! threads (setns affects only the calling thread), removed on drop even after a panic.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs::File;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};

use n3x_switch::{Switch, Tap};
use nix::sched::{CloneFlags, setns};

/// Tests that need root say so and return early when not root.
pub fn root_or_skip(test: &str) -> bool {
    let root = n3x_testkit::is_root();
    if !root {
        n3x_testkit::skip(test, "needs root (network namespaces and TAP devices); CI runs it as root");
    }
    root
}

/// The IO tests measure time and throughput: run them one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("n3xsw-test-{}-{tag}", std::process::id());
        // A leftover of a killed earlier run with the same pid would make `add` fail.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(Command::new("ip").args(["netns", "add", &name]));
        Netns { name }
    }

    /// Runs `f` on a thread inside this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = File::open(format!("/var/run/netns/{}", self.name)).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap()
        })
    }

    pub fn ip(&self, args: &[&str]) -> String {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// `ip netns exec NAME args...`, returning the output whatever the exit status.
    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", &self.name]).args(args).output().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

pub const TAP: &str = "n3x0";

/// Two namespaces `a` (10.77.0.1) and `b` (10.77.0.2), each with a TAP on one switch.
/// IPv6 is off and the neighbours are static, so the only frames on the links are the
/// ones a test sends.
pub struct Pair {
    pub switch: Switch,
    // Dropped after the switch (fields drop in order): the TAPs go first.
    pub a: Netns,
    pub b: Netns,
}

pub const IP_A: &str = "10.77.0.1";
pub const IP_B: &str = "10.77.0.2";

impl Pair {
    pub fn new(tag: &str, seed: u64) -> Pair {
        let a = Netns::new(&format!("{tag}-a"));
        let b = Netns::new(&format!("{tag}-b"));
        let switch = Switch::new("testnet", seed);
        for (ns, host, ip, mac) in [(&a, "a", IP_A, "02:00:00:00:00:0a"), (&b, "b", IP_B, "02:00:00:00:00:0b")] {
            let tap = ns.run(|| {
                // Absent when the kernel has no IPv6: then there is nothing to turn off.
                let _ = std::fs::write("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
                let _ = std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
                Tap::create(TAP, 1500)
            });
            let tap = tap.unwrap_or_else(|e| panic!("creating the TAP in {}: {e}", ns.name));
            assert_eq!(tap.name(), TAP);
            ns.ip(&["link", "set", TAP, "address", mac]);
            ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", TAP]);
            ns.ip(&["link", "set", TAP, "up"]);
            ns.ip(&["link", "set", "lo", "up"]);
            switch.add_port(host, tap).unwrap();
        }
        a.ip(&["neigh", "replace", IP_B, "lladdr", "02:00:00:00:00:0b", "dev", TAP, "nud", "permanent"]);
        b.ip(&["neigh", "replace", IP_A, "lladdr", "02:00:00:00:00:0a", "dev", TAP, "nud", "permanent"]);
        Pair { switch, a, b }
    }
}

pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The 99% two-sided normal-approximation interval of a Binomial(n, p) count.
pub fn binomial_99(n: u64, p: f64) -> (f64, f64) {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (mean - 2.576 * sd, mean + 2.576 * sd)
}
