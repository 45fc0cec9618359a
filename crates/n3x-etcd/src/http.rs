//! A minimal HTTP/1.1 client for etcd's JSON gateway, plain or over mutual TLS: one
//! request per connection, or a kept-alive [`Conn`], bounded by a timeout. Small on
//! purpose: the lab calls it from threads that sit in a network namespace, where an async
//! runtime's shared workers must not go.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// How to reach a member: plain HTTP, or TLS with a client certificate (what etcd started
/// with `--client-cert-auth` and `--trusted-ca-file` demands, as k3s's embedded etcd does).
#[derive(Clone)]
pub enum Transport {
    Plain,
    Tls(Arc<rustls::ClientConfig>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Plain => "Transport::Plain",
            Transport::Tls(_) => "Transport::Tls",
        })
    }
}

impl Transport {
    /// Mutual TLS: servers are trusted when their certificate chains to a CA in `ca_pem`
    /// and names the address dialled; the client presents `cert_pem` with `key_pem`.
    pub fn mutual_tls(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Result<Transport, String> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(c.map_err(|e| format!("CA certificate: {e}"))?).map_err(|e| format!("CA certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("no CA certificate in the CA file".into());
        }
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("client certificate: {e}"))?;
        if certs.is_empty() {
            return Err("no certificate in the client certificate file".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("client key: {e}"))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("client certificate and key: {e}"))?;
        Ok(Transport::Tls(Arc::new(config)))
    }

    /// [`Transport::mutual_tls`] from PEM files (etcdctl's `--cacert`, `--cert`, `--key`).
    pub fn from_files(
        ca: &std::path::Path,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Result<Transport, String> {
        let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        Transport::mutual_tls(&read(ca)?, &read(cert)?, &read(key)?)
    }

    /// `http` or `https`: the scheme of a URL this transport dials.
    pub fn scheme(&self) -> &'static str {
        match self {
            Transport::Plain => "http",
            Transport::Tls(_) => "https",
        }
    }

    fn connect(&self, addr: SocketAddr, timeout: Duration) -> std::io::Result<Stream> {
        let s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.set_nodelay(true)?;
        match self {
            Transport::Plain => Ok(Stream::Plain(s)),
            Transport::Tls(config) => {
                let name = ServerName::IpAddress(addr.ip().into());
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, s))))
            }
        }
    }
}

/// A connection: the handshake of a TLS one happens on its first write.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// POSTs `body` (JSON) to `path` at `addr`. Every step (connect, handshake, write, read) is
/// bounded by `timeout`, so a partitioned or dead server costs at most that long.
pub fn post_json(
    t: &Transport,
    addr: SocketAddr,
    path: &str,
    body: &str,
    timeout: Duration,
) -> std::io::Result<Response> {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    request(t, addr, &req, timeout)
}

/// Whether the member at `addr` answers its status with a leader (ready to serve).
pub fn has_leader(t: &Transport, addr: SocketAddr, timeout: Duration) -> bool {
    post_json(t, addr, crate::STATUS, "{}", timeout)
        .ok()
        .and_then(|r| crate::parse_status(&r.body).ok())
        .is_some_and(|s| s.leader != 0)
}

/// GETs `path` at `addr`, bounded by `timeout` like `post_json`.
pub fn get(t: &Transport, addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<Response> {
    request(t, addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"), timeout)
}

fn request(t: &Transport, addr: SocketAddr, req: &str, timeout: Duration) -> std::io::Result<Response> {
    let mut s = t.connect(addr, timeout)?;
    exchange(&mut s, req)
}

/// Writes one request and reads one response on `s`.
fn exchange(s: &mut Stream, req: &str) -> std::io::Result<Response> {
    s.write_all(req.as_bytes())?;
    s.flush()?;
    // Read until the response is complete by its own framing (Content-Length, or the last
    // chunk), not until the peer closes: some servers (etcd's peer port among them) keep
    // the connection open despite `Connection: close`.
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if is_complete(&raw) {
            break;
        }
    }
    if raw.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed before a response"));
    }
    parse_response(&raw).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP response"))
}

/// How a kept-alive connection the server has closed fails on its next use.
fn stale(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), UnexpectedEof | BrokenPipe | ConnectionReset | ConnectionAborted)
}

/// One kept-alive connection to a server, for a client that sends many requests (a probe
/// writing every 100 ms): no handshake per request, and no socket left in TIME_WAIT per
/// request. Any error drops the connection; the next request opens a new one.
pub struct Conn {
    transport: Transport,
    addr: SocketAddr,
    stream: Option<Stream>,
}

impl Conn {
    pub fn new(transport: Transport, addr: SocketAddr) -> Conn {
        Conn { transport, addr, stream: None }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// POSTs `body` (JSON) to `path`, each step bounded by `timeout`.
    pub fn post_json(&mut self, path: &str, body: &str, timeout: Duration) -> std::io::Result<Response> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let reused = self.stream.is_some();
        match self.send(&req, timeout) {
            // A kept-alive connection the server closed while idle fails before any byte
            // of an answer: the request never reached it, so one retry on a new one is safe.
            Err(e) if reused && stale(&e) => self.send(&req, timeout),
            other => other,
        }
    }

    fn send(&mut self, req: &str, timeout: Duration) -> std::io::Result<Response> {
        let mut s = match self.stream.take() {
            Some(s) => s,
            None => self.transport.connect(self.addr, timeout)?,
        };
        let r = exchange(&mut s, req)?;
        if !r.close {
            self.stream = Some(s);
        }
        Ok(r)
    }
}

/// Whether `raw` holds a whole response: headers plus Content-Length bytes, or a chunked
/// body up to its last chunk. Without either, only the close of the connection ends it.
fn is_complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    if let Some(len) =
        head.lines().find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()))
    {
        return body.len() >= len;
    }
    head.lines().any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked")) && body.ends_with(b"0\r\n\r\n")
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let body = &raw[split + 4..];
    let status = head.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let close = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("connection:") && l.contains("close")
    });
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Some(Response { status, body: String::from_utf8_lossy(&body).into_owned(), close })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_field = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_field.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_plain_and_chunked() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "{}"));
        let r = parse_response(b"HTTP/1.1 503 Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n3\r\n\":1\r\n1\r\n}\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "{\"a\":1}"));
        assert!(parse_response(b"garbage").is_none());
        assert!(!r.close);
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap().close);
        assert!(is_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"));
        assert!(!is_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{}"));
        assert!(is_complete(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"));
        assert!(!is_complete(b"HTTP/1.1 200 OK\r\n\r\n{}"));
    }

    /// A server that answers one request per connection and then hangs up without saying
    /// so, like a server closing an idle kept-alive connection.
    #[test]
    fn a_kept_alive_connection_is_reused_and_renewed_when_the_server_closed_it() {
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut conns = 0;
            for (i, c) in l.incoming().take(2).enumerate() {
                let mut c = c.unwrap();
                conns += 1;
                // The first connection serves two requests, the second one.
                for _ in 0..(2 - i) {
                    let mut buf = [0u8; 1024];
                    let n = c.read(&mut buf).unwrap();
                    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("POST /v3/kv/put"));
                    c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
                }
            }
            conns
        });
        let mut conn = Conn::new(Transport::Plain, addr);
        for _ in 0..3 {
            let r = conn.post_json("/v3/kv/put", "{}", Duration::from_secs(5)).unwrap();
            assert_eq!((r.status, r.body.as_str()), (200, "{}"));
        }
        assert_eq!(server.join().unwrap(), 2, "three requests over two connections");
    }
}
