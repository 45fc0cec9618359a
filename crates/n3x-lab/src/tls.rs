//! The lab's etcd PKI: mutual TLS as k3s's embedded etcd runs it.
//!
//! At `lab up` the lab makes its own CA (ECDSA P-256, with rcgen) in `<lab>/tls/`, and a
//! client certificate for itself (the supervisor, the probes and the scenarios). Each
//! server gets, where k3s keeps them (`/var/lib/rancher/k3s/server/tls/etcd/` in its root),
//! the CA as `server-ca.crt` and `peer-ca.crt` (with its key, as k3s keeps it), and one
//! certificate for both its client and
//! peer listeners, also good as a client certificate (`server-client.{crt,key}`,
//! `peer-server-client.{crt,key}`): what k3s's own clients on the host (`curl --cert`)
//! present. Members demand a certificate from that CA on both ports
//! (`--client-cert-auth`, `--peer-client-cert-auth`), so a member or client holding
//! another CA's certificate is refused.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

use crate::error::LabError;

/// Where k3s keeps its etcd certificates, in a host's root.
pub const ETCD_TLS: &str = "var/lib/rancher/k3s/server/tls/etcd";
/// The lab's own files, in the lab's directory.
pub const LAB_TLS: &str = "tls";
/// How long a member's certificate is valid when issued at `lab up` (k3s's leaf
/// certificates last a year; its CAs ten).
pub const MEMBER_DAYS: i64 = 365;
const CA_DAYS: i64 = 3650;

/// The files one party presents: a CA to trust, its certificate and key.
#[derive(Clone, Debug)]
pub struct Identity {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Identity {
    /// The transport that dials members with this identity.
    pub fn transport(&self) -> Result<n3x_etcd::http::Transport, LabError> {
        n3x_etcd::http::Transport::from_files(&self.ca, &self.cert, &self.key)
            .map_err(|message| LabError::Tls { what: "loading the client certificate".into(), message })
    }
}

fn tls_err(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> LabError {
    let what = what.into();
    move |e| LabError::Tls { what, message: e.to_string() }
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> LabError {
    move |e| LabError::io(what, e)
}

fn validity(p: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // An hour back: a member started right away must not see a certificate from the future.
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(days);
}

/// The lab's CA in `dir` (`ca.crt`, `ca.key`), made on first use.
pub fn ensure_ca(dir: &Path) -> Result<(), LabError> {
    let (crt, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    if crt.is_file() && key.is_file() {
        return Ok(());
    }
    n3x_fs::create_dir_all(dir, 0o700).map_err(io(format!("create {}", dir.display())))?;
    let (cert_pem, key_pem) = new_ca("n3x-lab etcd CA")?;
    n3x_fs::write(&key, key_pem.as_bytes(), Some(0o600)).map_err(io(format!("write {}", key.display())))?;
    n3x_fs::write(&crt, cert_pem.as_bytes(), Some(0o644)).map_err(io(format!("write {}", crt.display())))
}

/// A self-signed CA: (certificate PEM, key PEM).
pub fn new_ca(name: &str) -> Result<(String, String), LabError> {
    let key = KeyPair::generate().map_err(tls_err("generating the CA key"))?;
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut p, CA_DAYS);
    let cert = p.self_signed(&key).map_err(tls_err("signing the CA"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Signs a certificate for `name` with the CA in `ca_dir` (`ca.crt`, `ca.key`), valid for
/// `days`: (certificate PEM, key PEM). With `ips`, usable as a server for them (and for
/// the name, `localhost` and 127.0.0.1) and as a client; without, a client certificate
/// with no address at all: etcd's peer port refuses a client certificate that names
/// addresses unless the connection comes from one of them.
pub fn issue(ca_dir: &Path, name: &str, ips: &[Ipv4Addr], days: i64) -> Result<(String, String), LabError> {
    issue_with(&ca_dir.join("ca.crt"), &ca_dir.join("ca.key"), name, ips, days)
}

/// [`issue`] with the CA's certificate and key given by path.
pub fn issue_with(
    ca_crt: &Path,
    ca_key: &Path,
    name: &str,
    ips: &[Ipv4Addr],
    days: i64,
) -> Result<(String, String), LabError> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(io(format!("read {}", p.display())));
    let key = KeyPair::from_pem(&read(ca_key)?).map_err(tls_err("reading the CA key"))?;
    let issuer = Issuer::from_ca_cert_pem(&read(ca_crt)?, key).map_err(tls_err("reading the CA"))?;
    issue_by(&issuer, name, ips, days)
}

fn issue_by(
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    ips: &[Ipv4Addr],
    days: i64,
) -> Result<(String, String), LabError> {
    let key = KeyPair::generate().map_err(tls_err(format!("generating the key of `{name}`")))?;
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if !ips.is_empty() {
        p.subject_alt_names = vec![SanType::DnsName(name.try_into().map_err(tls_err(format!("the name `{name}`")))?)];
        p.subject_alt_names.push(SanType::DnsName("localhost".try_into().map_err(tls_err("localhost"))?));
        p.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        p.subject_alt_names.extend(ips.iter().map(|ip| SanType::IpAddress(IpAddr::V4(*ip))));
        p.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    validity(&mut p, days);
    let cert = p.signed_by(&key, issuer).map_err(tls_err(format!("signing the certificate of `{name}`")))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The lab's own client identity (`<lab>/tls/client.{crt,key}`), made on first use.
pub fn lab_client(lab_dir: &Path) -> Result<Identity, LabError> {
    let dir = lab_dir.join(LAB_TLS);
    ensure_ca(&dir)?;
    let id = Identity { ca: dir.join("ca.crt"), cert: dir.join("client.crt"), key: dir.join("client.key") };
    if !(id.cert.is_file() && id.key.is_file()) {
        let (cert, key) = issue(&dir, "n3x-lab", &[], CA_DAYS)?;
        n3x_fs::write(&id.key, key.as_bytes(), Some(0o600)).map_err(io(format!("write {}", id.key.display())))?;
        n3x_fs::write(&id.cert, cert.as_bytes(), Some(0o644)).map_err(io(format!("write {}", id.cert.display())))?;
    }
    Ok(id)
}

/// A member's files in `dir`, as k3s names them.
pub struct MemberFiles {
    pub server: Identity,
    pub peer: Identity,
}

impl MemberFiles {
    pub fn in_dir(dir: &Path) -> MemberFiles {
        MemberFiles {
            server: Identity {
                ca: dir.join("server-ca.crt"),
                cert: dir.join("server-client.crt"),
                key: dir.join("server-client.key"),
            },
            peer: Identity {
                ca: dir.join("peer-ca.crt"),
                cert: dir.join("peer-server-client.crt"),
                key: dir.join("peer-server-client.key"),
            },
        }
    }

    /// etcd's TLS flags for these files: mutual TLS on the client and the peer port.
    pub fn etcd_args(&self) -> Vec<String> {
        let f = |k: &str, p: &Path| format!("--{k}={}", p.display());
        vec![
            f("cert-file", &self.server.cert),
            f("key-file", &self.server.key),
            f("trusted-ca-file", &self.server.ca),
            "--client-cert-auth=true".into(),
            f("peer-cert-file", &self.peer.cert),
            f("peer-key-file", &self.peer.key),
            f("peer-trusted-ca-file", &self.peer.ca),
            "--peer-client-cert-auth=true".into(),
        ]
    }
}

/// Gives member `name` (at `ip`) its files in `dir`, issued by the lab's CA, unless they
/// are there already (a restarted member keeps its certificate, as on a k3s server).
pub fn ensure_member(lab_dir: &Path, dir: &Path, name: &str, ip: Ipv4Addr) -> Result<MemberFiles, LabError> {
    let files = MemberFiles::in_dir(dir);
    let all =
        [&files.server.ca, &files.server.cert, &files.server.key, &files.peer.ca, &files.peer.cert, &files.peer.key];
    if all.iter().all(|p| p.is_file()) {
        return Ok(files);
    }
    let ca_dir = lab_dir.join(LAB_TLS);
    ensure_ca(&ca_dir)?;
    write_member(&ca_dir, dir, name, ip, MEMBER_DAYS)?;
    Ok(files)
}

/// Issues and writes member `name`'s files in `dir` (replacing any), valid for `days`,
/// with the CA of `ca_dir`. The CA's key goes beside its certificate (`server-ca.key`,
/// `peer-ca.key`), as on a k3s server, where `k3s certificate rotate` signs with it.
pub fn write_member(ca_dir: &Path, dir: &Path, name: &str, ip: Ipv4Addr, days: i64) -> Result<(), LabError> {
    let files = MemberFiles::in_dir(dir);
    n3x_fs::create_dir_all(dir, 0o700).map_err(io(format!("create {}", dir.display())))?;
    let read = |p: PathBuf| std::fs::read(&p).map_err(io(format!("read {}", p.display())));
    let (ca, ca_key) = (read(ca_dir.join("ca.crt"))?, read(ca_dir.join("ca.key"))?);
    for id in [&files.server, &files.peer] {
        n3x_fs::write(&id.ca, &ca, Some(0o644)).map_err(io(format!("write {}", id.ca.display())))?;
        let k = id.ca.with_extension("key");
        n3x_fs::write(&k, &ca_key, Some(0o600)).map_err(io(format!("write {}", k.display())))?;
    }
    renew_member(dir, name, ip, days)
}

/// Re-issues member `name`'s certificate in `dir` with the CA kept there (what
/// `k3s certificate rotate` does on a server): a new key, valid for `days` from now.
pub fn renew_member(dir: &Path, name: &str, ip: Ipv4Addr, days: i64) -> Result<(), LabError> {
    let files = MemberFiles::in_dir(dir);
    let (cert, key) = issue_with(&files.server.ca, &files.server.ca.with_extension("key"), name, &[ip], days)?;
    for id in [&files.server, &files.peer] {
        n3x_fs::write(&id.key, key.as_bytes(), Some(0o600)).map_err(io(format!("write {}", id.key.display())))?;
        n3x_fs::write(&id.cert, cert.as_bytes(), Some(0o644)).map_err(io(format!("write {}", id.cert.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use x509_parser::prelude::*;

    #[test]
    fn a_member_certificate_names_its_address_and_serves_both_ways() {
        let d = tempfile::tempdir().unwrap();
        let ca_dir = d.path().join("tls");
        ensure_ca(&ca_dir).unwrap();
        let ip = Ipv4Addr::new(192, 168, 200, 11);
        let member = d.path().join("m");
        let files = ensure_member(d.path(), &member, "n100-1", ip).unwrap();
        let pem = std::fs::read(&files.server.cert).unwrap();
        let (_, p) = parse_x509_pem(&pem).unwrap();
        let cert = p.parse_x509().unwrap();
        let sans: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        // x509-parser prints addresses in hex: 192.168.200.11, 127.0.0.1.
        assert!(sans.contains(&"IPAddress(c0:a8:c8:0b)".to_owned()), "{sans:?}");
        assert!(sans.contains(&"IPAddress(7f:00:00:01)".to_owned()), "{sans:?}");
        assert!(sans.contains(&"DNSName(n100-1)".to_owned()), "{sans:?}");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        let days = (cert.validity().not_after.timestamp() - ::time::OffsetDateTime::now_utc().unix_timestamp()) / 86400;
        assert!((MEMBER_DAYS - 1..=MEMBER_DAYS).contains(&days), "{days}");
        // Issued by the lab's CA (etcd checking the signature is the test in tests/tls.rs).
        let (_, ca) = parse_x509_pem(&std::fs::read(ca_dir.join("ca.crt")).unwrap()).unwrap();
        let ca = ca.parse_x509().unwrap();
        assert_eq!(cert.issuer(), ca.subject());
        assert!(ca.is_ca());
        // Keys are private; a second call keeps the files.
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&files.server.key).unwrap().permissions().mode() & 0o777, 0o600);
        ensure_member(d.path(), &member, "n100-1", ip).unwrap();
        assert_eq!(std::fs::read(&files.server.cert).unwrap(), pem);
        // Both ports, both directions.
        let args = files.etcd_args().join(" ");
        for flag in
            ["--client-cert-auth=true", "--peer-client-cert-auth=true", "--trusted-ca-file=", "--peer-key-file="]
        {
            assert!(args.contains(flag), "{args}");
        }
    }
}
