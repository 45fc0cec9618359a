//! The lab's etcd PKI against real etcd: members started with the lab's TLS flags
//! (`tls::MemberFiles::etcd_args`) serve a client holding the lab's certificate, refuse a
//! client without one or with another CA's, and refuse a member whose certificate another
//! CA signed; the same member with the lab's certificate joins. Loopback only, no root.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use n3x_etcd::http::{self, Transport};
use n3x_lab::tls;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Member {
    child: Child,
    client: SocketAddr,
    log: PathBuf,
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Ports {
    client: u16,
    peer: u16,
}

fn start(
    dir: &Path,
    (name, log): (&str, &str),
    ports: &Ports,
    cluster: &str,
    state: &str,
    files: &tls::MemberFiles,
) -> Member {
    let data = dir.join(format!("{name}.etcd"));
    let log = dir.join(format!("{log}.log"));
    let child = Command::new("etcd")
        .arg(format!("--name={name}"))
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!("--listen-peer-urls=https://127.0.0.1:{}", ports.peer))
        .arg(format!("--initial-advertise-peer-urls=https://127.0.0.1:{}", ports.peer))
        .arg(format!("--listen-client-urls=https://127.0.0.1:{}", ports.client))
        .arg(format!("--advertise-client-urls=https://127.0.0.1:{}", ports.client))
        .arg(format!("--initial-cluster={cluster}"))
        .arg(format!("--initial-cluster-state={state}"))
        .args(["--heartbeat-interval=50", "--election-timeout=500"])
        .args(files.etcd_args())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Member { child, client: SocketAddr::from(([127, 0, 0, 1], ports.client)), log }
}

fn status(t: &Transport, addr: SocketAddr) -> Result<n3x_etcd::Status, String> {
    let r = http::post_json(t, addr, n3x_etcd::STATUS, "{}", Duration::from_secs(2)).map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!("answered {}: {}", r.status, r.body));
    }
    n3x_etcd::parse_status(&r.body).map_err(|e| e.to_string())
}

fn wait_leader(t: &Transport, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http::has_leader(t, addr, Duration::from_secs(2)) {
        assert!(Instant::now() < deadline, "no leader: {:?}", status(t, addr));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The names of the members `addr` knows, sorted (etcd lists them by id); a member added
/// but never connected has none.
fn started_members(t: &Transport, addr: SocketAddr) -> Vec<String> {
    let r = http::post_json(t, addr, n3x_etcd::MEMBER_LIST, "{}", Duration::from_secs(2)).unwrap();
    let mut names: Vec<String> =
        n3x_etcd::parse_members(&r.body).unwrap().into_iter().map(|m| m.name).filter(|n| !n.is_empty()).collect();
    names.sort();
    names
}

#[test]
fn members_demand_the_lab_ca_from_clients_and_peers() {
    if !n3x_testkit::have("etcd") {
        n3x_testkit::skip("etcd mutual TLS", "etcd is not installed (apt-get install etcd-server)");
        return;
    }
    let base = n3x_testkit::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "etcd-tls");
    let lab = base.join("lab");
    let client = tls::lab_client(&lab).unwrap();
    let good = client.transport().unwrap();
    let lo = Ipv4Addr::LOCALHOST;
    let m1_files = tls::ensure_member(&lab, &base.join("m1-tls"), "m1", lo).unwrap();
    let p1 = Ports { client: free_port(), peer: free_port() };
    let m1 = start(&base, ("m1", "m1"), &p1, &format!("m1=https://127.0.0.1:{}", p1.peer), "new", &m1_files);
    wait_leader(&good, m1.client);

    // Clients: the lab's certificate is served; none, or another CA's, is refused.
    assert!(status(&good, m1.client).is_ok());
    assert!(status(&Transport::Plain, m1.client).is_err(), "plain HTTP was served");
    let impostor = base.join("impostor-ca");
    std::fs::create_dir_all(&impostor).unwrap();
    let (ca, key) = tls::new_ca("impostor CA").unwrap();
    std::fs::write(impostor.join("ca.crt"), ca).unwrap();
    std::fs::write(impostor.join("ca.key"), key).unwrap();
    let (cert, key) = tls::issue(&impostor, "n3x-lab", &[], 30).unwrap();
    let wrong_client =
        Transport::mutual_tls(&std::fs::read(&client.ca).unwrap(), cert.as_bytes(), key.as_bytes()).unwrap();
    let e = status(&wrong_client, m1.client).unwrap_err();
    assert!(!e.is_empty());
    // The member's own certificate is a client certificate too (k3s's clients use it).
    assert!(status(&m1_files.server.transport().unwrap(), m1.client).is_ok());

    // A peer with another CA's certificate: added to the cluster, started, and refused.
    let p2 = Ports { client: free_port(), peer: free_port() };
    let peer_url = format!("https://127.0.0.1:{}", p2.peer);
    let r = http::post_json(
        &good,
        m1.client,
        n3x_etcd::MEMBER_ADD,
        &n3x_etcd::member_add_body(std::slice::from_ref(&peer_url)),
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let cluster = format!("m1=https://127.0.0.1:{},m2={peer_url}", p1.peer);
    let wrong_dir = base.join("m2-wrong");
    tls::write_member(&impostor, &wrong_dir, "m2", lo, 30).unwrap();
    let wrong = start(&base, ("m2", "m2-wrong"), &p2, &cluster, "existing", &tls::MemberFiles::in_dir(&wrong_dir));
    let watch = Instant::now() + Duration::from_secs(6);
    while Instant::now() < watch {
        assert_eq!(started_members(&good, m1.client), ["m1"], "a member with another CA's certificate joined");
        std::thread::sleep(Duration::from_millis(250));
    }
    let m1_log = std::fs::read_to_string(&m1.log).unwrap();
    assert!(
        m1_log.contains("rejected connection") || m1_log.contains("bad certificate"),
        "m1 logged no refusal:\n{}",
        m1_log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    let wrong_log = wrong.log.clone();
    drop(wrong);

    // The control: the same member with the lab's certificate joins.
    let _ = std::fs::remove_dir_all(base.join("m2.etcd"));
    let right = tls::ensure_member(&lab, &base.join("m2-tls"), "m2", lo).unwrap();
    let m2 = start(&base, ("m2", "m2"), &p2, &cluster, "existing", &right);
    let deadline = Instant::now() + Duration::from_secs(20);
    while started_members(&good, m1.client) != ["m1", "m2"] {
        assert!(
            Instant::now() < deadline,
            "m2 with the lab's certificate did not join; its log:\n{}\nthe refused one's log:\n{}",
            std::fs::read_to_string(&m2.log).unwrap_or_default(),
            std::fs::read_to_string(&wrong_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_leader(&good, m2.client);
    drop(m2);
    drop(m1);
    let _ = std::fs::remove_dir_all(&base);
}
