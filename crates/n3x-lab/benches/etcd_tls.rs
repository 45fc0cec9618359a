//! What mutual TLS costs one etcd request: two real etcd members on loopback, one plain
//! HTTP and one with the lab's TLS flags (`tls::MemberFiles::etcd_args`), asked alike and
//! interleaved (plain, TLS, plain, TLS) so a noisy machine hits both the same. Measures a
//! put over a kept-alive connection (what the lab's probes do), a put on a new connection
//! each time (what status and the gates do; for TLS this includes the handshake), and a
//! status call on a new connection. Prints a markdown table of medians and p99s.
//!
//! Run: `cargo bench -p n3x-lab --bench etcd_tls` (needs `etcd`; no root).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use n3x_etcd::http::{self, Conn, Transport};
use n3x_lab::tls;

const ROUNDS: usize = 10;
const PER_ROUND: usize = 200;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr().map(|a| a.port()).unwrap_or(0)).unwrap_or(0)
}

struct Member(Child);

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, name: &str, tls: Option<&tls::MemberFiles>) -> (Member, SocketAddr) {
    let (client, peer) = (free_port(), free_port());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut cmd = Command::new("etcd");
    cmd.arg(format!("--name={name}"))
        .arg(format!("--data-dir={}", dir.join(name).display()))
        .arg(format!("--listen-peer-urls={scheme}://127.0.0.1:{peer}"))
        .arg(format!("--initial-advertise-peer-urls={scheme}://127.0.0.1:{peer}"))
        .arg(format!("--initial-cluster={name}={scheme}://127.0.0.1:{peer}"))
        .arg(format!("--listen-client-urls={scheme}://127.0.0.1:{client}"))
        .arg(format!("--advertise-client-urls={scheme}://127.0.0.1:{client}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(f) = tls {
        cmd.args(f.etcd_args());
    }
    let child = cmd.spawn().expect("etcd is installed (apt-get install etcd-server)");
    (Member(child), SocketAddr::from(([127, 0, 0, 1], client)))
}

fn wait_ready(t: &Transport, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if http::has_leader(t, addr, Duration::from_secs(1)) {
            return;
        }
        assert!(Instant::now() < deadline, "etcd at {addr} did not become ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Microseconds of each of `n` calls of `f`.
fn timed(n: usize, mut f: impl FnMut(usize)) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect()
}

fn kept_alive(t: &Transport, addr: SocketAddr, round: usize) -> Vec<f64> {
    let mut conn = Conn::new(t.clone(), addr);
    // The first put opens the connection (and for TLS, shakes hands): not counted.
    let _ = conn.post_json(n3x_etcd::PUT, &n3x_etcd::put_body("/bench/warm", "x"), Duration::from_secs(5));
    timed(PER_ROUND, |i| {
        let body = n3x_etcd::put_body(&format!("/bench/k/{round}/{i}"), "value-of-about-thirty-bytes....");
        let r = conn.post_json(n3x_etcd::PUT, &body, Duration::from_secs(5)).expect("put");
        assert_eq!(r.status, 200);
    })
}

fn new_each(t: &Transport, addr: SocketAddr, path: &str, round: usize) -> Vec<f64> {
    timed(PER_ROUND, |i| {
        let body = if path == n3x_etcd::PUT {
            n3x_etcd::put_body(&format!("/bench/n/{round}/{i}"), "value-of-about-thirty-bytes....")
        } else {
            "{}".to_owned()
        };
        let r = http::post_json(t, addr, path, &body, Duration::from_secs(5)).expect("request");
        assert_eq!(r.status, 200);
    })
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

fn main() {
    let base = std::env::temp_dir().join(format!("n3x-bench-etcd-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("scratch dir");
    let lab = base.join("lab");
    let client = tls::lab_client(&lab).expect("lab CA");
    let secure = client.transport().expect("transport");
    let files = tls::ensure_member(&lab, &base.join("member-tls"), "tls", Ipv4Addr::LOCALHOST).expect("member");
    let (_p, plain_addr) = start(&base, "plain", None);
    let (_s, tls_addr) = start(&base, "tls", Some(&files));
    wait_ready(&Transport::Plain, plain_addr);
    wait_ready(&secure, tls_addr);

    let kinds = ["put, kept-alive connection", "put, new connection each", "status, new connection each"];
    let mut plain: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut mtls: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for round in 0..ROUNDS {
        for (t, addr, out) in [(&Transport::Plain, plain_addr, &mut plain), (&secure, tls_addr, &mut mtls)] {
            out[0].extend(kept_alive(t, addr, round));
            out[1].extend(new_each(t, addr, n3x_etcd::PUT, round));
            out[2].extend(new_each(t, addr, n3x_etcd::STATUS, round));
        }
    }
    println!("{ROUNDS} rounds of {PER_ROUND} requests per kind, interleaved, one etcd member each on loopback\n");
    println!("| request | plain p50 (µs) | mTLS p50 (µs) | ratio | plain p99 (µs) | mTLS p99 (µs) | ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (k, name) in kinds.iter().enumerate() {
        let (a50, b50) = (quantile(&mut plain[k], 0.5), quantile(&mut mtls[k], 0.5));
        let (a99, b99) = (quantile(&mut plain[k], 0.99), quantile(&mut mtls[k], 0.99));
        println!("| {name} | {a50:.0} | {b50:.0} | {:.2} | {a99:.0} | {b99:.0} | {:.2} |", b50 / a50, b99 / a99);
    }
    let _ = std::fs::remove_dir_all(&base);
}
