//! A minimal HTTP/1.1 client for etcd's JSON gateway: one request per connection,
//! bounded by a timeout. Small on purpose: the lab calls it from threads that sit in a
//! network namespace, where an async runtime's shared workers must not go.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// POSTs `body` (JSON) to `http://addr/path`. Every step (connect, write, read) is bounded
/// by `timeout`, so a partitioned or dead server costs at most that long.
pub fn post_json(addr: SocketAddr, path: &str, body: &str, timeout: Duration) -> std::io::Result<Response> {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    request(addr, &req, timeout)
}

/// GETs `http://addr/path`, bounded by `timeout` like `post_json`.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<Response> {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"), timeout)
}

fn request(addr: SocketAddr, req: &str, timeout: Duration) -> std::io::Result<Response> {
    let mut s = connect(addr, timeout)?;
    exchange(&mut s, req)
}

fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Writes one request and reads one response on `s`.
fn exchange(s: &mut TcpStream, req: &str) -> std::io::Result<Response> {
    s.write_all(req.as_bytes())?;
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
    addr: SocketAddr,
    stream: Option<TcpStream>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Conn {
        Conn { addr, stream: None }
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
            None => connect(self.addr, timeout)?,
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
        let mut conn = Conn::new(addr);
        for _ in 0..3 {
            let r = conn.post_json("/v3/kv/put", "{}", Duration::from_secs(5)).unwrap();
            assert_eq!((r.status, r.body.as_str()), (200, "{}"));
        }
        assert_eq!(server.join().unwrap(), 2, "three requests over two connections");
    }
}
