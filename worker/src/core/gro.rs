//! The packets the core hands to the TUN device, with receive offload ("GRO") when the device
//! takes it: consecutive TCP segments of one flow leave as one super-packet.
//!
//! A TUN device opened with `IFF_VNET_HDR` takes a virtio-net header in front of every packet.
//! A header that says "TCP, segments of N bytes, checksum still to do" lets the kernel take up
//! to 64 KiB of one TCP flow in one write and run its TCP receive path once for all of it,
//! instead of once per 1,400-byte packet. That is most of what a tunnel endpoint costs.
//!
//! The rules follow the kernel's own GRO (`tcp_gro_receive`) and wireguard-go's
//! `tun/offload_linux.go`: only plain data segments (ACK, optionally PSH; a payload) of one flow
//! coalesce, in sequence order, with identical IP and TCP headers apart from the sequence number,
//! length and checksums; all segments but the last have the same size, and nothing follows a
//! shorter segment or a PSH. Every segment's TCP checksum is verified before it joins: the
//! coalesced packet's checksum is left for the kernel (`NEEDS_CSUM`), which would otherwise hide
//! a segment that arrived corrupt. Only consecutive packets coalesce (packets of one peer arrive
//! together, one UDP batch at a time), so the queue keeps no flow table.

use std::collections::VecDeque;

/// Length of the virtio-net header in front of each packet when offload is on.
pub const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` is still to do.
const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV4` / `_TCPV6`.
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
/// Offset of the checksum in the TCP header.
const TCP_CSUM_OFFSET: usize = 16;
const TCP_FLAGS: usize = 13;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
const PROTO_TCP: u8 = 6;
/// The most bytes of IP packet one write may carry.
const MAX_SUPER_PACKET: usize = 65_535;

/// The headers of a TCP data segment that may coalesce.
#[derive(Debug, Clone, Copy)]
struct Segment {
    v6: bool,
    /// IP header length.
    iph: usize,
    /// TCP header length.
    tcph: usize,
    seq: u32,
    psh: bool,
    payload: usize,
}

/// The super-packet at the back of the queue, while it may still grow.
#[derive(Debug, Clone, Copy)]
struct Open {
    seg: Segment,
    /// Sequence number the next segment must carry.
    next_seq: u32,
    /// Segments in it.
    count: usize,
    /// A shorter segment or a PSH came last: nothing more may join.
    closed: bool,
}

/// Packets for the TUN device, in order.
#[derive(Debug, Default)]
pub struct TunQueue {
    offload: bool,
    ready: VecDeque<Vec<u8>>,
    open: Option<Open>,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The one's-complement sum (unfolded) of a TCP pseudo header: `addrs` is the source and
/// destination address as they stand in the IP header, `len` the TCP length.
pub fn pseudo_header(addrs: &[u8], len: usize) -> u64 {
    let mut sum = u64::from(PROTO_TCP) + len as u64;
    for w in addrs.chunks_exact(2) {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    sum
}

/// The headers of `p` if it is a TCP data segment that may coalesce, with a valid checksum.
fn segment(p: &[u8]) -> Option<Segment> {
    let (v6, iph, addrs) = match p.first()? >> 4 {
        4 => {
            let h = p.get(..20)?;
            // No IP options, no fragments, TCP, a length that matches.
            if h[0] != 0x45
                || h[9] != PROTO_TCP
                || usize::from(be16(h, 2)) != p.len()
                || be16(h, 6) & 0x3fff != 0
            {
                return None;
            }
            (false, 20, 12..20)
        }
        6 => {
            let h = p.get(..40)?;
            // TCP right after the fixed header (no extension headers).
            if h[6] != PROTO_TCP || usize::from(be16(h, 4)) + 40 != p.len() {
                return None;
            }
            (true, 40, 8..40)
        }
        _ => return None,
    };
    let tcp = p.get(iph..)?;
    let tcph = usize::from(tcp.get(12)? >> 4) * 4;
    let flags = *tcp.get(TCP_FLAGS)?;
    if tcph < 20 || tcp.len() <= tcph || (flags != TCP_ACK && flags != TCP_ACK | TCP_PSH) {
        return None;
    }
    let sum = tun_rs::checksum(tcp, pseudo_header(&p[addrs], tcp.len()));
    if sum != 0xffff {
        return None;
    }
    Some(Segment {
        v6,
        iph,
        tcph,
        seq: be32(tcp, 4),
        psh: flags & TCP_PSH != 0,
        payload: tcp.len() - tcph,
    })
}

/// Whether segment `s` (packet `p`) may join super-packet `head` (after its header room).
fn joins(open: &Open, head: &[u8], p: &[u8], s: &Segment) -> bool {
    let o = &open.seg;
    if open.closed
        || s.v6 != o.v6
        || s.tcph != o.tcph
        || s.seq != open.next_seq
        || s.payload > o.payload
        || head.len() + s.payload > VNET_HDR_LEN + MAX_SUPER_PACKET
    {
        return false;
    }
    let h = &head[VNET_HDR_LEN..];
    let same_ip = if s.v6 {
        // Traffic class, hop limit, addresses.
        h[0] == p[0] && h[1] >> 4 == p[1] >> 4 && h[7] == p[7] && h[8..40] == p[8..40]
    } else {
        // TOS, DF, TTL, addresses.
        h[1] == p[1] && h[6] >> 5 == p[6] >> 5 && h[8] == p[8] && h[12..20] == p[12..20]
    };
    let t = s.iph;
    // Ports, acknowledgement number, options.
    same_ip
        && h[t..t + 4] == p[t..t + 4]
        && h[t + 8..t + 12] == p[t + 8..t + 12]
        && h[t + 20..t + s.tcph] == p[t + 20..t + s.tcph]
}

/// Turns a super-packet of `open.count` segments into what the kernel expects: IP length and
/// header checksum for the whole, the TCP checksum field holding the pseudo-header sum, and a
/// virtio-net header asking the kernel to segment (if it forwards) and checksum.
fn seal(head: &mut [u8], open: &Open) {
    let s = &open.seg;
    let (hdr, p) = head.split_at_mut(VNET_HDR_LEN);
    let len = p.len();
    let tcp_len = len - s.iph;
    let addrs = if s.v6 {
        p[4..6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
        8..40
    } else {
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[10..12].fill(0);
        let c = !tun_rs::checksum(&p[..20], 0);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        12..20
    };
    let pseudo = tun_rs::checksum(&[], pseudo_header(&p[addrs], tcp_len));
    let at = s.iph + TCP_CSUM_OFFSET;
    p[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
    // struct virtio_net_hdr, native byte order (the TUN device's default).
    hdr[0] = F_NEEDS_CSUM;
    hdr[1] = if s.v6 { GSO_TCPV6 } else { GSO_TCPV4 };
    hdr[2..4].copy_from_slice(&((s.iph + s.tcph) as u16).to_ne_bytes());
    hdr[4..6].copy_from_slice(&(s.payload as u16).to_ne_bytes());
    hdr[6..8].copy_from_slice(&(s.iph as u16).to_ne_bytes());
    hdr[8..10].copy_from_slice(&(TCP_CSUM_OFFSET as u16).to_ne_bytes());
}

impl TunQueue {
    /// With offload, every packet [`TunQueue::pop`] returns starts with a virtio-net header
    /// ([`VNET_HDR_LEN`] bytes) and TCP segments coalesce. Without, packets pass unchanged.
    pub fn set_offload(&mut self, on: bool) {
        self.close();
        self.offload = on;
    }

    /// Queues an IP packet.
    pub fn push(&mut self, p: &[u8]) {
        if !self.offload {
            self.ready.push_back(p.to_vec());
            return;
        }
        let seg = segment(p);
        if let (Some(s), Some(open), Some(head)) = (&seg, &mut self.open, self.ready.back_mut())
            && joins(open, head, p, s)
        {
            if open.count == 1 {
                // It grows: room for the whole super-packet at once.
                head.reserve_exact(VNET_HDR_LEN + MAX_SUPER_PACKET - head.len());
            }
            head.extend_from_slice(&p[s.iph + s.tcph..]);
            open.count += 1;
            open.next_seq = open.next_seq.wrapping_add(s.payload as u32);
            if s.psh {
                head[VNET_HDR_LEN + s.iph + TCP_FLAGS] |= TCP_PSH;
            }
            open.closed = s.psh || s.payload < open.seg.payload;
            return;
        }
        self.close();
        let mut v = Vec::with_capacity(VNET_HDR_LEN + p.len());
        v.resize(VNET_HDR_LEN, 0);
        v.extend_from_slice(p);
        self.ready.push_back(v);
        self.open = seg.map(|s| Open {
            seg: s,
            next_seq: s.seq.wrapping_add(s.payload as u32),
            count: 1,
            closed: s.psh,
        });
    }

    /// Finishes the super-packet at the back: nothing more joins it.
    fn close(&mut self) {
        if let Some(open) = self.open.take()
            && open.count > 1
            && let Some(head) = self.ready.back_mut()
        {
            seal(head, &open);
        }
    }

    /// The next packet for the TUN device.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        if self.ready.len() == 1 {
            self.close();
        }
        self.ready.pop_front()
    }
}
