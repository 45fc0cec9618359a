//! Reading what the switch needs from a TAP frame: `virtio_net_hdr` followed by an
//! Ethernet frame. The header is never modified: it goes to the destination TAP as read.

/// `sizeof(struct virtio_net_hdr)`, the TAP default (`TUNSETVNETHDRSZ` is never changed).
pub const VNET_HDR_LEN: usize = 10;
/// Largest frame a TAP hands out with TSO: 64 KiB of IP plus Ethernet and VLAN headers, plus the vnet header.
pub const MAX_FRAME: usize = VNET_HDR_LEN + 65_535 + 32;
/// Smallest thing worth forwarding: the vnet header and the Ethernet header.
pub const MIN_FRAME: usize = VNET_HDR_LEN + 14;

const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
const VIRTIO_NET_HDR_GSO_TCPV6: u8 = 4;
const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;

pub type Mac = [u8; 6];

/// Destination MAC of a `vnet header + Ethernet` buffer at least [`MIN_FRAME`] long.
pub fn dst_mac(buf: &[u8]) -> Mac {
    let mut m = [0; 6];
    m.copy_from_slice(&buf[VNET_HDR_LEN..VNET_HDR_LEN + 6]);
    m
}

/// Source MAC of a `vnet header + Ethernet` buffer at least [`MIN_FRAME`] long.
pub fn src_mac(buf: &[u8]) -> Mac {
    let mut m = [0; 6];
    m.copy_from_slice(&buf[VNET_HDR_LEN + 6..VNET_HDR_LEN + 12]);
    m
}

/// Broadcast and multicast MACs have the group bit set; they are flooded.
pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 == 1
}

/// Layer 2 bytes this frame puts on the emulated wire: its length, plus, for a TCP
/// segmentation-offload super-frame, the headers every further segment repeats. This is
/// what the rate limit counts, like the kernel's qdiscs do.
pub fn wire_len(buf: &[u8]) -> u64 {
    if buf.len() < MIN_FRAME {
        return buf.len().saturating_sub(VNET_HDR_LEN) as u64;
    }
    let frame = &buf[VNET_HDR_LEN..];
    let len = frame.len();
    let flags = buf[0];
    let gso_type = buf[1] & !VIRTIO_NET_HDR_GSO_ECN;
    // virtio_net_hdr fields are in native byte order for a TAP without TUNSETVNETLE/BE.
    let gso_size = usize::from(u16::from_ne_bytes([buf[4], buf[5]]));
    let csum_start = usize::from(u16::from_ne_bytes([buf[6], buf[7]]));
    if gso_type == VIRTIO_NET_HDR_GSO_NONE || gso_size == 0 {
        return len as u64;
    }
    let header = if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0
        && matches!(gso_type, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_TCPV6)
        && csum_start + 13 <= len
    {
        csum_start + usize::from(frame[csum_start + 12] >> 4) * 4
    } else {
        // UDP fragmentation or segmentation: the L4 header is 8 bytes (or the field says).
        let hdr_len = usize::from(u16::from_ne_bytes([buf[2], buf[3]]));
        if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 { csum_start + 8 } else { hdr_len }
    };
    if header == 0 || header >= len {
        return len as u64;
    }
    let segments = (len - header).div_ceil(gso_size);
    (len + segments.saturating_sub(1) * header) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vnet(flags: u8, gso_type: u8, hdr_len: u16, gso_size: u16, csum_start: u16) -> Vec<u8> {
        let mut h = vec![flags, gso_type];
        h.extend_from_slice(&hdr_len.to_ne_bytes());
        h.extend_from_slice(&gso_size.to_ne_bytes());
        h.extend_from_slice(&csum_start.to_ne_bytes());
        h.extend_from_slice(&16u16.to_ne_bytes());
        h
    }

    #[test]
    fn macs_and_group_bit() {
        let mut buf = vec![0u8; VNET_HDR_LEN];
        buf.extend_from_slice(&[0xff; 6]);
        buf.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        buf.extend_from_slice(&[0x08, 0x00]);
        assert_eq!(dst_mac(&buf), [0xff; 6]);
        assert_eq!(src_mac(&buf), [2, 0, 0, 0, 0, 1]);
        assert!(is_group(&dst_mac(&buf)));
        assert!(!is_group(&src_mac(&buf)));
        assert!(is_group(&[0x33, 0x33, 0, 0, 0, 1]));
    }

    #[test]
    fn plain_frame_counts_its_length() {
        let mut buf = vnet(0, 0, 0, 0, 0);
        buf.resize(VNET_HDR_LEN + 1514, 0);
        assert_eq!(wire_len(&buf), 1514);
    }

    #[test]
    fn tso_super_frame_counts_repeated_headers() {
        // Ethernet 14 + IPv4 20 + TCP 32 (data offset 8) = 66 bytes of headers, then
        // 10 segments of 1448 bytes.
        let mut buf = vnet(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 66, 1448, 34);
        buf.resize(VNET_HDR_LEN + 66 + 10 * 1448, 0);
        buf[VNET_HDR_LEN + 34 + 12] = 8 << 4;
        assert_eq!(wire_len(&buf), 10 * (66 + 1448));
        // A partial last segment still repeats the headers.
        buf.truncate(buf.len() - 1000);
        assert_eq!(wire_len(&buf), 10 * 66 + 9 * 1448 + 448);
        // ECN bit set: same thing.
        buf[1] |= VIRTIO_NET_HDR_GSO_ECN;
        assert_eq!(wire_len(&buf), 10 * 66 + 9 * 1448 + 448);
    }

    #[test]
    fn garbage_headers_fall_back_to_length() {
        let mut buf = vnet(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 0, 1448, 60_000);
        buf.resize(VNET_HDR_LEN + 3000, 0);
        assert_eq!(wire_len(&buf), 3000);
        assert_eq!(wire_len(&[0u8; 5]), 0);
    }
}
