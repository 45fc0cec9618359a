//! The switch between real TAP devices in two network namespaces. Needs root; skipped
//! otherwise (a failure when `CI` is set).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{IP_A, IP_B, Netns, Pair, binomial_99, percentile, root_or_skip, serial};
use n3x_switch::{Impairment, JitterDist, Loss, Switch, Tap};

fn delay(ms: u64) -> Impairment {
    Impairment { delay: Duration::from_millis(ms), ..Default::default() }
}

/// Round trip times in ms of `ping -c count -i interval` from `ns` to `ip`.
fn ping(ns: &Netns, ip: &str, count: u32, interval: &str) -> Vec<f64> {
    let out = ns.exec(&["ping", "-n", "-c", &count.to_string(), "-i", interval, "-W", "2", ip]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("time="))
        .map(|t| t.parse::<f64>().unwrap())
        .collect()
}

fn have_ping() -> bool {
    let found = std::process::Command::new("ping").arg("-V").output().is_ok();
    if !found {
        n3x_testkit::skip("ping test", "`ping` is not installed (Debian: iputils-ping)");
    }
    found
}

#[test]
fn ping_crosses_the_switch_and_rtt_is_the_sum_of_both_egress_delays() {
    if !root_or_skip("ping_rtt") || !have_ping() {
        return;
    }
    let _serial = serial();
    let p = Pair::new("ping", 1);
    let rtt = ping(&p.a, IP_B, 3, "0.2");
    assert_eq!(rtt.len(), 3, "ping without impairment");
    assert!(rtt.iter().all(|t| *t < 20.0), "{rtt:?}");
    let s = p.switch.stats();
    assert!(s.link("a", "b").frames >= 3 && s.link("b", "a").frames >= 3, "{s:?}");

    p.switch.set_egress("a", delay(50));
    p.switch.set_egress("b", delay(50));
    let mut rtt = ping(&p.a, IP_B, 10, "0.2");
    assert_eq!(rtt.len(), 10, "ping with 50 ms each way: {rtt:?}");
    rtt.sort_by(f64::total_cmp);
    assert!(rtt[0] >= 99.0, "min RTT {} < 99 ms", rtt[0]);
    assert!(percentile(&rtt, 0.5) <= 120.0, "median RTT {} > 120 ms", percentile(&rtt, 0.5));
}

/// Sends `n` numbered datagrams from `a` to `b`, `per_ms` per millisecond, and returns the
/// numbers received.
fn udp_burst(p: &Pair, n: u64, per_ms: u64) -> BTreeSet<u64> {
    let rx = p.b.run(|| UdpSocket::bind((IP_B, 7001))).unwrap();
    let tx = p.a.run(|| UdpSocket::bind((IP_A, 0))).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            let mut got = BTreeSet::new();
            let mut buf = [0u8; 2048];
            loop {
                match rx.recv(&mut buf) {
                    Ok(n) if n >= 8 => {
                        got.insert(u64::from_be_bytes(buf[..8].try_into().unwrap()));
                    }
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        if done.load(Ordering::Relaxed) {
                            return got;
                        }
                    }
                    Err(e) => panic!("recv: {e}"),
                }
            }
        });
        let start = Instant::now();
        let mut payload = [0u8; 64];
        for i in 0..n {
            payload[..8].copy_from_slice(&i.to_be_bytes());
            tx.send_to(&payload, (IP_B, 7001)).unwrap();
            if (i + 1) % per_ms == 0 {
                let target = start + Duration::from_millis((i + 1) / per_ms);
                if let Some(wait) = target.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        done.store(true, Ordering::Relaxed);
        receiver.join().unwrap()
    })
}

#[test]
fn udp_loss_is_binomial_and_the_seed_reproduces_the_drop_sequence() {
    if !root_or_skip("udp_loss") {
        return;
    }
    let _serial = serial();
    let n = 10_000;
    let p_loss = 0.05;
    let run = |seed: u64| {
        let p = Pair::new("loss", seed);
        p.switch.set_link("a", "b", Impairment { loss: Loss::Bernoulli { p: p_loss }, ..Default::default() });
        let got = udp_burst(&p, n, 10);
        let s = p.switch.stats().link("a", "b");
        // Nothing else crosses the link (no IPv6, static neighbours): the counters add up.
        assert_eq!(s.frames + s.dropped_loss, n, "{s:?}");
        assert_eq!(s.frames, got.len() as u64, "every forwarded datagram arrived: {s:?}");
        got
    };
    let first = run(7);
    let lost = (n - first.len() as u64) as f64;
    let (lo, hi) = binomial_99(n, p_loss);
    assert!((lo..=hi).contains(&lost), "lost {lost} of {n}, 99% interval [{lo:.0}, {hi:.0}]");
    assert_eq!(run(7), first, "the same seed must drop the same datagrams");
    assert_ne!(run(8), first, "another seed must drop other datagrams");
}

#[test]
fn udp_rate_is_within_five_percent() {
    if !root_or_skip("udp_rate") {
        return;
    }
    let _serial = serial();
    let p = Pair::new("rate", 3);
    let rate = 10_000_000u64;
    p.switch.set_link("a", "b", Impairment { rate_bps: Some(rate), ..Default::default() });
    let rx = p.b.run(|| UdpSocket::bind((IP_B, 7002))).unwrap();
    let tx = p.a.run(|| UdpSocket::bind((IP_A, 0))).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let payload = [0x5a_u8; 1000];
    let secs = 3;
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            let mut buf = [0u8; 2048];
            let mut first = None;
            let mut last = Instant::now();
            let mut bytes_after_first = 0u64;
            while let Ok(n) = rx.recv(&mut buf) {
                let now = Instant::now();
                if first.is_none() {
                    first = Some(now);
                } else {
                    bytes_after_first += n as u64;
                }
                last = now;
            }
            (first.unwrap(), last, bytes_after_first)
        });
        // Offer 20 Mbit/s: twice the rate, so the queue stays full.
        let per_ms = 2.5;
        let start = Instant::now();
        let mut sent = 0.0;
        while start.elapsed() < Duration::from_secs(secs) {
            let due = start.elapsed().as_secs_f64() * 1000.0 * per_ms;
            while sent < due {
                tx.send_to(&payload, (IP_B, 7002)).unwrap();
                sent += 1.0;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let (first, last, bytes) = receiver.join().unwrap();
        // Goodput: each 1000-byte payload takes 1042 bytes on the wire (Ethernet, IPv4, UDP).
        let expected = rate as f64 * 1000.0 / 1042.0;
        let got = bytes as f64 * 8.0 / (last - first).as_secs_f64();
        let err = (got - expected).abs() / expected;
        assert!(err < 0.05, "goodput {got:.0} bit/s, expected {expected:.0} (error {:.1}%)", err * 100.0);
        let st = p.switch.stats().link("a", "b");
        assert!(st.dropped_queue > 0, "a saturating sender must see tail drops: {st:?}");
    });
}

/// Whether a request from `a` to the echo server in `b` got its answer in time.
fn echo_ok(client: &UdpSocket, nonce: u64) -> bool {
    client.send_to(&nonce.to_be_bytes(), (IP_B, 7003)).unwrap();
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        match client.recv(&mut buf) {
            Ok(8) if buf[..8] == nonce.to_be_bytes() => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
    false
}

#[test]
fn partition_cuts_both_directions_and_heal_restores() {
    if !root_or_skip("partition") {
        return;
    }
    let _serial = serial();
    let p = Pair::new("part", 4);
    let server = p.b.run(|| UdpSocket::bind((IP_B, 7003))).unwrap();
    server.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let client = p.a.run(|| UdpSocket::bind((IP_A, 0))).unwrap();
    client.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, from)) = server.recv_from(&mut buf) {
                    server.send_to(&buf[..n], from).unwrap();
                }
            }
        });
        assert!(echo_ok(&client, 1), "echo before the partition");
        p.switch.partition(&["a"], &["b"]);
        assert!(!echo_ok(&client, 2), "echo through a partition");
        let s = p.switch.stats().link("a", "b");
        assert!(s.dropped_partition >= 1, "{s:?}");
        // Only one direction cut by a link impairment: the request passes, the answer does not.
        p.switch.heal();
        p.switch.set_link("b", "a", Impairment { partitioned: true, ..Default::default() });
        assert!(!echo_ok(&client, 3), "echo with b -> a partitioned");
        let s = p.switch.stats();
        assert!(s.link("b", "a").dropped_partition >= 1, "{s:?}");
        // heal() lifts partitions made by partition(), not impairments.
        p.switch.heal();
        assert!(!echo_ok(&client, 4), "heal must not remove an impairment");
        p.switch.set_link("b", "a", Impairment::default());
        assert!(echo_ok(&client, 5), "echo after the impairment is cleared");
        stop.store(true, Ordering::Relaxed);
    });
}

/// Sends `n` numbered datagrams a -> b, one every `gap`, and returns the numbers in arrival order.
fn arrival_order(p: &Pair, port: u16, n: u64, gap: Duration, midway: impl Fn()) -> Vec<u64> {
    let rx = p.b.run(|| UdpSocket::bind((IP_B, port))).unwrap();
    let tx = p.a.run(|| UdpSocket::bind((IP_A, 0))).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            let mut order = Vec::new();
            let mut buf = [0u8; 64];
            while let Ok(k) = rx.recv(&mut buf) {
                assert_eq!(k, 8);
                order.push(u64::from_be_bytes(buf[..8].try_into().unwrap()));
            }
            order
        });
        for i in 0..n {
            if i == n / 2 {
                midway();
            }
            tx.send_to(&i.to_be_bytes(), (IP_B, port)).unwrap();
            std::thread::sleep(gap);
        }
        receiver.join().unwrap()
    })
}

#[test]
fn jitter_keeps_order_unless_reorder_is_asked() {
    if !root_or_skip("order") {
        return;
    }
    let _serial = serial();
    let p = Pair::new("order", 5);
    let jittery = |reorder| Impairment {
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(2),
        jitter_dist: JitterDist::Uniform,
        reorder,
        ..Default::default()
    };
    let n = 1000;
    let gap = Duration::from_micros(200);
    p.switch.set_link("a", "b", jittery(false));
    let order = arrival_order(&p, 7004, n, gap, || {});
    assert_eq!(order, (0..n).collect::<Vec<_>>(), "reorder = false must keep order and lose nothing");

    p.switch.set_link("a", "b", jittery(true));
    let order = arrival_order(&p, 7005, n, gap, || {});
    assert_eq!(order.len() as u64, n);
    let overtaken = order.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(overtaken > 10, "reorder = true with 2 ms jitter and 0.2 ms gaps overtook only {overtaken} times");

    // Removing a delay mid-stream: frames still in the delay line are not overtaken by
    // frames taking the direct path.
    p.switch.set_link("a", "b", delay(20));
    let order = arrival_order(&p, 7006, n, gap, || p.switch.set_link("a", "b", Impairment::default()));
    assert_eq!(order, (0..n).collect::<Vec<_>>(), "order across removing an impairment");
}

#[test]
fn tcp_bulk_transfer_is_intact_and_uses_offloaded_super_frames() {
    if !root_or_skip("tcp_bulk") {
        return;
    }
    let _serial = serial();
    let p = Pair::new("tcp", 6);
    let listener = p.b.run(|| TcpListener::bind((IP_B, 7007))).unwrap();
    // A block whose length is not a power of two, sent 128 times: a lost, duplicated or
    // corrupted segment (say, a checksum offload gone wrong) shows up as a mismatch.
    let block: Vec<u8> = (0..1_048_583usize).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let repeats = 128;
    let total = block.len() * repeats;
    let start = Instant::now();
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 1 << 16];
            let mut at = 0usize;
            loop {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    return at;
                }
                let mut done = 0;
                while done < n {
                    let off = (at + done) % block.len();
                    let k = (n - done).min(block.len() - off);
                    assert!(buf[done..done + k] == block[off..off + k], "stream corrupted near byte {}", at + done);
                    done += k;
                }
                at += n;
            }
        });
        let mut conn = p.a.run(|| TcpStream::connect((IP_B, 7007))).unwrap();
        for _ in 0..repeats {
            conn.write_all(&block).unwrap();
        }
        drop(conn);
        assert_eq!(server.join().unwrap(), total);
    });
    let secs = start.elapsed().as_secs_f64();
    let s = p.switch.stats().link("a", "b");
    let avg = s.bytes as f64 / s.frames as f64;
    eprintln!(
        "tcp_bulk: {:.2} Gbit/s, {} frames, {avg:.0} wire bytes per frame",
        total as f64 * 8.0 / secs / 1e9,
        s.frames
    );
    assert!(avg > 3000.0, "TCP should cross as offloaded super-frames, but frames average {avg:.0} bytes: {s:?}");
    assert_eq!(s.dropped_write, 0);
}

#[test]
fn duplicate_host_is_refused_and_shutdown_removes_the_devices() {
    if !root_or_skip("ports") {
        return;
    }
    let _serial = serial();
    let ns = Netns::new("ports");
    let sw = Switch::new("portnet", 1);
    let t1 = ns.run(|| Tap::create("n3xt1", 9000)).unwrap();
    let t2 = ns.run(|| Tap::create("n3xt2", 1500)).unwrap();
    assert!(ns.ip(&["link", "show", "n3xt1"]).contains("mtu 9000"));
    sw.add_port("h1", t1).unwrap();
    let e = sw.add_port("h1", t2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.to_string().contains("h1"), "{e}");
    // The refused TAP was dropped with the error: its device is gone.
    assert!(!ns.exec(&["ip", "link", "show", "n3xt2"]).status.success());
    assert!(ns.exec(&["ip", "link", "show", "n3xt1"]).status.success());
    let started = Instant::now();
    sw.shutdown();
    assert!(started.elapsed() < Duration::from_millis(500), "shutdown took {:?}", started.elapsed());
    assert!(!ns.exec(&["ip", "link", "show", "n3xt1"]).status.success(), "TAP left after shutdown");
    // A name already taken by another kind of device is an error naming the device and the call.
    ns.ip(&["link", "add", "n3xv0", "type", "veth", "peer", "name", "n3xv1"]);
    let e = ns.run(|| Tap::create("n3xv0", 1500)).unwrap_err();
    assert!(e.to_string().contains("n3xv0") && e.to_string().contains("TUNSETIFF"), "{e}");
}
