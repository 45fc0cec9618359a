//! IPv4 networks. Small on purpose: n3x needs containment, overlap and the two reserved
//! addresses of a network, nothing more.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network `a.b.c.d/len` whose host bits are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrError {
    /// Not `address/prefix` at all.
    Syntax,
    /// Prefix length not in 0..=32.
    Prefix,
    /// Host bits are set; carries the network the user probably meant.
    HostBits(Ipv4Net),
}

impl Ipv4Net {
    /// k3s' default pod network.
    pub const DEFAULT_CLUSTER_CIDR: Ipv4Net = Ipv4Net { addr: Ipv4Addr::new(10, 42, 0, 0), prefix: 16 };
    /// k3s' default service network.
    pub const DEFAULT_SERVICE_CIDR: Ipv4Net = Ipv4Net { addr: Ipv4Addr::new(10, 43, 0, 0), prefix: 16 };

    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        let net = Ipv4Net { addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)), prefix };
        (prefix <= 32 && net.addr == addr).then_some(net)
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn first(&self) -> u32 {
        u32::from(self.addr)
    }

    fn last(&self) -> u32 {
        self.first() | !mask(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.first()
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// The network address, which hosts may not use (except on /31 and /32 point-to-point nets).
    pub fn network_address(&self) -> Option<Ipv4Addr> {
        (self.prefix <= 30).then_some(self.addr)
    }

    /// The broadcast address, which hosts may not use (except on /31 and /32).
    pub fn broadcast_address(&self) -> Option<Ipv4Addr> {
        (self.prefix <= 30).then(|| Ipv4Addr::from(self.last()))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) }
}

impl FromStr for Ipv4Net {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, CidrError> {
        let (addr, prefix) = s.split_once('/').ok_or(CidrError::Syntax)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| CidrError::Syntax)?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 2 {
            return Err(CidrError::Prefix);
        }
        let prefix: u8 = prefix.parse().map_err(|_| CidrError::Prefix)?;
        if prefix > 32 {
            return Err(CidrError::Prefix);
        }
        let net = Ipv4Net { addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)), prefix };
        if net.addr != addr {
            return Err(CidrError::HostBits(net));
        }
        Ok(net)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl serde::Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_rejects() {
        let n: Ipv4Net = "192.168.200.0/24".parse().unwrap();
        assert!(n.contains("192.168.200.11".parse().unwrap()));
        assert!(!n.contains("192.168.201.1".parse().unwrap()));
        assert_eq!(n.broadcast_address(), Some("192.168.200.255".parse().unwrap()));
        assert_eq!("10.0.0.0/33".parse::<Ipv4Net>(), Err(CidrError::Prefix));
        assert_eq!("10.0.0.0".parse::<Ipv4Net>(), Err(CidrError::Syntax));
        assert_eq!("10.0.0.1/8".parse::<Ipv4Net>(), Err(CidrError::HostBits("10.0.0.0/8".parse().unwrap())));
        assert!("0.0.0.0/0".parse::<Ipv4Net>().unwrap().contains(Ipv4Addr::BROADCAST));
    }

    proptest! {
        #[test]
        fn overlap_is_symmetric_and_matches_containment(a: u32, la in 0u8..=32, b: u32, lb in 0u8..=32) {
            let na = Ipv4Net { addr: Ipv4Addr::from(a & mask(la)), prefix: la };
            let nb = Ipv4Net { addr: Ipv4Addr::from(b & mask(lb)), prefix: lb };
            prop_assert_eq!(na.overlaps(&nb), nb.overlaps(&na));
            // Two prefix-aligned networks overlap exactly when one contains the other's base.
            prop_assert_eq!(na.overlaps(&nb), na.contains(nb.addr()) || nb.contains(na.addr()));
            prop_assert_eq!(na.to_string().parse::<Ipv4Net>(), Ok(na));
        }
    }
}
