//! A two-port n3x switch for `scripts/bench-switch.sh`: creates a TAP in each of two
//! existing network namespaces, switches between them with an optional impairment of
//! the a -> b link, prints `ready`, and runs until its standard input closes; then it
//! prints the link counters and removes the TAPs.
//!
//! Usage: bench_pair NS_A NS_B [--ifname N] [--mtu N] [--seed N] [--delay-ms F]
//!        [--jitter-ms F] [--uniform] [--reorder] [--loss-pct F] [--rate-mbit F]

use std::fs::File;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use n3x_switch::{Impairment, JitterDist, Loss, Switch, Tap};
use nix::sched::{CloneFlags, setns};

fn tap_in(ns: &str, ifname: &str, mtu: u32) -> Result<Tap, String> {
    let path = format!("/var/run/netns/{ns}");
    let file = File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
    let ifname = ifname.to_string();
    std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns into {path}: {e}"))?;
        Tap::create(&ifname, mtu).map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "TAP thread panicked".to_string())?
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut positional, mut ifname, mut mtu, mut seed) = (Vec::new(), "n3x0".to_string(), 1500u32, 1u64);
    let mut imp = Impairment::default();
    let mut it = args.iter();
    let num = |v: Option<&String>, flag: &str| -> Result<f64, String> {
        v.ok_or(format!("{flag} needs a value"))?.parse::<f64>().map_err(|e| format!("{flag}: {e}"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ifname" => ifname = it.next().ok_or("--ifname needs a value")?.clone(),
            "--mtu" => mtu = num(it.next(), a)? as u32,
            "--seed" => seed = num(it.next(), a)? as u64,
            "--delay-ms" => imp.delay = Duration::from_secs_f64(num(it.next(), a)? / 1e3),
            "--jitter-ms" => imp.jitter = Duration::from_secs_f64(num(it.next(), a)? / 1e3),
            "--uniform" => imp.jitter_dist = JitterDist::Uniform,
            "--reorder" => imp.reorder = true,
            "--loss-pct" => imp.loss = Loss::Bernoulli { p: num(it.next(), a)? / 100.0 },
            "--rate-mbit" => imp.rate_bps = Some((num(it.next(), a)? * 1e6) as u64),
            s if s.starts_with("--") => return Err(format!("unknown flag {s}")),
            _ => positional.push(a.clone()),
        }
    }
    let [ns_a, ns_b] = positional.as_slice() else {
        return Err("usage: bench_pair NS_A NS_B [flags]".to_string());
    };
    let switch = Switch::new("bench", seed);
    switch.add_port("a", tap_in(ns_a, &ifname, mtu)?).map_err(|e| e.to_string())?;
    switch.add_port("b", tap_in(ns_b, &ifname, mtu)?).map_err(|e| e.to_string())?;
    switch.set_link("a", "b", imp);
    println!("ready");
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink).map_err(|e| format!("stdin: {e}"))?;
    let stats = switch.stats();
    for ((from, to), s) in &stats.links {
        println!(
            "{from}->{to} frames={} bytes={} dropped_loss={} dropped_queue={} dropped_partition={} dropped_write={}",
            s.frames, s.bytes, s.dropped_loss, s.dropped_queue, s.dropped_partition, s.dropped_write
        );
    }
    switch.shutdown();
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_pair: {e}");
            ExitCode::FAILURE
        }
    }
}
