//! A small synchronous rtnetlink client: the few link and address requests the lab makes,
//! pipelined over one socket per namespace (up to `WINDOW` requests in flight, then their
//! acknowledgements are read). A netlink socket belongs to the namespace it was opened in,
//! so it is opened on a thread inside that namespace and then used from any thread.
//!
//! The message layouts come from `netlink-packet-route`; what is here is the order of
//! requests, the flags, and turning a kernel error into one that names the request.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    BridgeStpState, InfoBridge, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::LinkOp;
use super::netns;
use crate::error::LabError;

/// Requests in flight before their acknowledgements are read: enough to hide the round
/// trips, few enough that the acknowledgements never overflow the socket's buffer.
const WINDOW: usize = 64;

pub struct Netlink {
    ns: String,
    sock: Socket,
    seq: u32,
    /// Requests sent and not yet acknowledged: (sequence number, what it does).
    pending: Vec<(u32, String)>,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a route netlink socket inside namespace `ns`.
    pub fn open(ns: &str) -> Result<Netlink, LabError> {
        let sock = netns::in_netns(ns, || -> std::io::Result<Socket> {
            let mut s = Socket::new(NETLINK_ROUTE)?;
            s.bind_auto()?;
            s.connect(&SocketAddr::new(0, 0))?;
            Ok(s)
        })?
        .map_err(|e| LabError::Netlink { ns: ns.to_owned(), op: "open a socket".into(), source: e })?;
        Ok(Netlink { ns: ns.to_owned(), sock, seq: 0, pending: Vec::new(), buf: vec![0; 1 << 16] })
    }

    fn error(&self, op: impl Into<String>, source: std::io::Error) -> LabError {
        LabError::Netlink { ns: self.ns.clone(), op: op.into(), source }
    }

    fn encode(&mut self, msg: RouteNetlinkMessage, flags: u16) -> (u32, Vec<u8>) {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut bytes = vec![0; m.buffer_len()];
        m.serialize(&mut bytes);
        (self.seq, bytes)
    }

    /// Sends a request that the kernel acknowledges; reads acknowledgements when the
    /// window is full.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, what: String) -> Result<(), LabError> {
        let (seq, bytes) = self.encode(msg, NLM_F_REQUEST | NLM_F_ACK | flags);
        self.sock.send(&bytes, 0).map_err(|e| self.error(what.clone(), e))?;
        self.pending.push((seq, what));
        if self.pending.len() >= WINDOW { self.flush() } else { Ok(()) }
    }

    /// Reads every outstanding acknowledgement. All of them are read even after a failure,
    /// so the socket stays usable; the first failure is returned.
    pub fn flush(&mut self) -> Result<(), LabError> {
        let mut first_err = None;
        while !self.pending.is_empty() {
            let n = self.sock.recv(&mut &mut self.buf[..], 0).map_err(|e| self.error("read acknowledgements", e))?;
            for (seq, code) in acks(&self.buf[..n]) {
                let Some(i) = self.pending.iter().position(|(s, _)| *s == seq) else { continue };
                let (_, what) = self.pending.remove(i);
                if code != 0 && first_err.is_none() {
                    first_err = Some(self.error(what, std::io::Error::from_raw_os_error(-code)));
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Sends one request that answers with messages (a lookup or a dump) and collects them.
    fn query(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, LabError> {
        self.flush()?;
        let (seq, bytes) = self.encode(msg, NLM_F_REQUEST | flags);
        self.sock.send(&bytes, 0).map_err(|e| self.error(what, e))?;
        let mut out = Vec::new();
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0).map_err(|e| self.error(what, e))?;
            let mut off = 0;
            while let Ok(b) = NetlinkBuffer::new_checked(&self.buf[off..n]) {
                let len = b.length() as usize;
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..off + len])
                    .map_err(|e| self.error(what, std::io::Error::other(e.to_string())))?;
                off += align(len);
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                        if flags & NLM_F_DUMP == 0 {
                            return Ok(out);
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        let code = e.code.map_or(0, |c| c.get());
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(self.error(what, std::io::Error::from_raw_os_error(-code)));
                    }
                    _ => {}
                }
                if off >= n {
                    break;
                }
            }
        }
    }

    /// The index of link `name` in this namespace.
    pub fn index(&mut self, name: &str) -> Result<u32, LabError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        let what = format!("find link `{name}`");
        let answer = self.query(RouteNetlinkMessage::GetLink(m), 0, &what)?;
        match answer.first() {
            Some(RouteNetlinkMessage::NewLink(l)) => Ok(l.header.index),
            _ => Err(self.error(what, std::io::Error::from_raw_os_error(nix::libc::ENODEV))),
        }
    }

    /// The alias of every link in this namespace that has one.
    pub fn aliases(&mut self) -> Result<Vec<String>, LabError> {
        let answer = self.query(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP, "list links")?;
        Ok(answer
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfAlias(s) => Some(s),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// Applies `ops` in order; returns once the kernel has acknowledged all of them.
    pub fn apply(&mut self, ops: &[LinkOp]) -> Result<(), LabError> {
        let mut masters: Vec<(String, u32)> = Vec::new();
        for op in ops {
            match op {
                LinkOp::LoopbackUp => self.set(up("lo"), "bring `lo` up".into())?,
                LinkOp::Bridge { name, mtu, alias } => {
                    let mut m = up(name);
                    m.attributes.push(LinkAttribute::LinkInfo(vec![
                        LinkInfo::Kind(InfoKind::Bridge),
                        LinkInfo::Data(InfoData::Bridge(vec![
                            InfoBridge::ForwardDelay(0),
                            InfoBridge::StpState(BridgeStpState::Disabled),
                            InfoBridge::MulticastSnooping(false),
                        ])),
                    ]));
                    self.request(
                        RouteNetlinkMessage::NewLink(m),
                        NLM_F_CREATE | NLM_F_EXCL,
                        format!("create bridge `{name}`"),
                    )?;
                    // Set after creation, like `ip link set mtu`, so the bridge keeps it as
                    // chosen instead of following its ports.
                    let mut s = named(name);
                    s.attributes.push(LinkAttribute::Mtu(u32::from(*mtu)));
                    s.attributes.push(LinkAttribute::IfAlias(alias.clone()));
                    self.set(s, format!("set mtu and alias of `{name}`"))?;
                }
                LinkOp::Veth { name, mtu, master, alias, peer, peer_ns } => {
                    let master_index = match masters.iter().find(|(m, _)| m == master) {
                        Some((_, i)) => *i,
                        None => {
                            let i = self.index(master)?;
                            masters.push((master.clone(), i));
                            i
                        }
                    };
                    let target = netns::open(peer_ns)?;
                    let mut p = named(peer);
                    p.attributes.push(LinkAttribute::Mtu(u32::from(*mtu)));
                    p.attributes.push(LinkAttribute::NetNsFd(target.as_raw_fd()));
                    let mut m = up(name);
                    m.attributes.push(LinkAttribute::Mtu(u32::from(*mtu)));
                    m.attributes.push(LinkAttribute::Controller(master_index));
                    m.attributes.push(LinkAttribute::LinkInfo(vec![
                        LinkInfo::Kind(InfoKind::Veth),
                        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
                    ]));
                    self.request(
                        RouteNetlinkMessage::NewLink(m),
                        NLM_F_CREATE | NLM_F_EXCL,
                        format!("create veth `{name}` (peer `{peer}` in `{peer_ns}`)"),
                    )?;
                    // The namespace handle must stay open until the kernel has read it.
                    self.flush()?;
                    drop(target);
                    let mut s = named(name);
                    s.attributes.push(LinkAttribute::IfAlias(alias.clone()));
                    self.set(s, format!("set the alias of `{name}`"))?;
                }
                LinkOp::Up { name, alias } => {
                    let mut m = up(name);
                    m.attributes.push(LinkAttribute::IfAlias(alias.clone()));
                    self.set(m, format!("bring `{name}` up"))?;
                }
                LinkOp::Addr { dev, address, prefix } => {
                    let index = self.index(dev)?;
                    self.request(
                        RouteNetlinkMessage::NewAddress(ipv4(index, *address, *prefix)),
                        NLM_F_CREATE | NLM_F_EXCL,
                        format!("add address {address}/{prefix} to `{dev}`"),
                    )?;
                }
            }
        }
        self.flush()
    }

    fn set(&mut self, m: LinkMessage, what: String) -> Result<(), LabError> {
        self.request(RouteNetlinkMessage::SetLink(m), 0, what)
    }
}

/// A link message naming `name` (the kernel looks links up by name when the index is 0).
fn named(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_owned()));
    m
}

/// `named`, asking for the link to be up.
fn up(name: &str) -> LinkMessage {
    let mut m = named(name);
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    m
}

fn ipv4(index: u32, address: Ipv4Addr, prefix: u8) -> AddressMessage {
    let mut a = AddressMessage::default();
    a.header.family = AddressFamily::Inet;
    a.header.prefix_len = prefix;
    a.header.index = index;
    a.attributes.push(AddressAttribute::Local(address.into()));
    a.attributes.push(AddressAttribute::Address(address.into()));
    let host_bits = 32 - u32::from(prefix.min(32));
    if host_bits >= 2 {
        let broadcast = u32::from(address) | ((1u32 << host_bits) - 1);
        a.attributes.push(AddressAttribute::Broadcast(Ipv4Addr::from(broadcast)));
    }
    a
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// The (sequence number, error code) of every acknowledgement in a datagram; code 0 is success.
fn acks(buf: &[u8]) -> Vec<(u32, i32)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < buf.len() {
        let Ok(b) = NetlinkBuffer::new_checked(&buf[off..]) else { break };
        let len = b.length() as usize;
        if len == 0 {
            break;
        }
        if let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..off + len]) {
            if let NetlinkPayload::Error(e) = m.payload {
                out.push((m.header.sequence_number, e.code.map_or(0, |c| c.get())));
            }
        }
        off += align(len);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_carry_their_broadcast() {
        let a = ipv4(7, Ipv4Addr::new(192, 168, 200, 11), 24);
        assert_eq!(a.header.index, 7);
        assert!(a.attributes.contains(&AddressAttribute::Broadcast(Ipv4Addr::new(192, 168, 200, 255))));
        let p2p = ipv4(7, Ipv4Addr::new(10, 0, 0, 1), 31);
        assert!(!p2p.attributes.iter().any(|a| matches!(a, AddressAttribute::Broadcast(_))));
    }

    #[test]
    fn acks_are_read_from_a_datagram_of_several() {
        // Two NLMSG_ERROR messages back to back: seq 5 succeeded, seq 6 failed with EEXIST.
        let mut buf = Vec::new();
        for (seq, code) in [(5u32, 0i32), (6, -17)] {
            let mut m = Vec::new();
            m.extend_from_slice(&36u32.to_ne_bytes()); // length: header 16 + code 4 + echoed header 16
            m.extend_from_slice(&2u16.to_ne_bytes()); // NLMSG_ERROR
            m.extend_from_slice(&0u16.to_ne_bytes());
            m.extend_from_slice(&seq.to_ne_bytes());
            m.extend_from_slice(&0u32.to_ne_bytes());
            m.extend_from_slice(&code.to_ne_bytes());
            m.extend_from_slice(&[0u8; 16]);
            buf.extend_from_slice(&m);
        }
        assert_eq!(acks(&buf), [(5, 0), (6, -17)]);
        assert_eq!(acks(&buf[..10]), []);
    }
}
