//! TUN receive offload (`core::gro`): what the core writes to the TUN device with offload on.
//! The reference for "what the kernel receives" is `tun_rs::gso_split`, the same code that
//! splits the super-packets the worker reads from its TUN device: a coalesced packet split
//! again must give back exactly the segments that went in.

use std::net::IpAddr;

use isthmus_worker::core::gro::{TunQueue, VNET_HDR_LEN, pseudo_header};
use isthmus_worker::core::packet::{TcpFields, ipv4_udp, tcp_segment};
use proptest::prelude::*;
use tun_rs::VirtioNetHdr;

const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
/// A TCP timestamp option (NOP, NOP, kind 8, length 10), as Linux sends on every segment.
const TS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn fields(seq: u32, flags: u8, ip_id: u16) -> TcpFields<'static> {
    TcpFields {
        sport: 40_000,
        dport: 5201,
        seq,
        ack: 77,
        flags,
        options: &TS,
        ip_id,
    }
}

/// Segments of one flow: `sizes[i]` payload bytes each, in sequence, the last with PSH.
fn flow(src: &str, dst: &str, sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut seq = 1_000u32;
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let flags = if i + 1 == sizes.len() { ACK | PSH } else { ACK };
            let payload: Vec<u8> = (0..n).map(|b| (b as u8) ^ (i as u8)).collect();
            let p = tcp_segment(
                ip(src),
                ip(dst),
                &fields(seq, flags, 100 + i as u16),
                &payload,
            );
            seq = seq.wrapping_add(n as u32);
            p
        })
        .collect()
}

/// What the kernel gets from one TUN write: the packet itself, or the segments of a
/// super-packet.
fn as_kernel_sees_it(written: &[u8]) -> Vec<Vec<u8>> {
    let hdr = VirtioNetHdr::decode(written).expect("header");
    let mut packet = written[VNET_HDR_LEN..].to_vec();
    if hdr.gso_type == 0 {
        assert_eq!(hdr.flags, 0, "a single packet keeps its own checksum");
        return vec![packet];
    }
    let v6 = packet[0] >> 4 == 6;
    let mut bufs = vec![vec![0u8; 65_536]; 64];
    let mut sizes = vec![0usize; 64];
    let n = tun_rs::gso_split(&mut packet, hdr, &mut bufs, &mut sizes, 0, v6).expect("splits");
    bufs.iter()
        .zip(&sizes)
        .take(n)
        .map(|(b, &len)| b[..len].to_vec())
        .collect()
}

fn run(queue: &mut TunQueue, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    for p in packets {
        queue.push(p);
    }
    std::iter::from_fn(|| queue.pop()).collect()
}

fn offloaded() -> TunQueue {
    let mut q = TunQueue::default();
    q.set_offload(true);
    q
}

/// The kernel completes a `NEEDS_CSUM` checksum by summing from `csum_start` with the field
/// as found: the field must hold the pseudo-header sum for the result to be right.
fn kernel_checksum_is_right(written: &[u8]) {
    let hdr = VirtioNetHdr::decode(written).expect("header");
    let mut p = written[VNET_HDR_LEN..].to_vec();
    let start = usize::from(hdr.csum_start);
    let at = start + usize::from(hdr.csum_offset);
    let c = !tun_rs::checksum(&p[start..], 0);
    p[at..at + 2].copy_from_slice(&c.to_be_bytes());
    let (addrs, v6) = if p[0] >> 4 == 6 {
        (8..40, true)
    } else {
        (12..20, false)
    };
    let pseudo = pseudo_header(&p[addrs], p.len() - start);
    assert_eq!(
        tun_rs::checksum(&p[start..], pseudo),
        0xffff,
        "completed checksum (v6: {v6})"
    );
    if !v6 {
        assert_eq!(
            tun_rs::checksum(&p[..20], 0),
            0xffff,
            "IPv4 header checksum"
        );
    }
}

#[test]
fn gro_consecutive_segments_of_one_flow_leave_as_one_super_packet_v4_and_v6() {
    for (src, dst, mss) in [
        ("10.1.0.7", "10.2.0.5", 1_368),
        ("fd00:1::7", "fd00:2::5", 1_348),
    ] {
        let mut sizes = vec![mss; 40];
        sizes.push(500);
        let input = flow(src, dst, &sizes);
        let out = run(&mut offloaded(), &input);
        assert_eq!(out.len(), 1, "{src}: one write for 41 segments");
        let hdr = VirtioNetHdr::decode(&out[0]).expect("header");
        assert_eq!(hdr.flags, 1, "NEEDS_CSUM");
        assert_eq!(hdr.gso_type, if src.contains(':') { 4 } else { 1 });
        assert_eq!(usize::from(hdr.gso_size), mss);
        assert_eq!(hdr.hdr_len, hdr.csum_start + 32, "IP + TCP with timestamps");
        assert_eq!(hdr.csum_offset, 16);
        kernel_checksum_is_right(&out[0]);
        assert_eq!(as_kernel_sees_it(&out[0]), input, "{src}");
    }
}

#[test]
fn gro_stops_at_64_kib_a_gap_a_psh_another_flow_or_a_bad_checksum() {
    // 60 full segments: more than one super-packet can hold.
    let input = flow("10.1.0.7", "10.2.0.5", &[1_368; 60]);
    let out = run(&mut offloaded(), &input);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|p| p.len() <= VNET_HDR_LEN + 65_535));
    let back: Vec<Vec<u8>> = out.iter().flat_map(|p| as_kernel_sees_it(p)).collect();
    assert_eq!(back, input);

    // A gap in the sequence, a second flow in between, a corrupt segment, a PSH mid-way.
    let a = flow("10.1.0.7", "10.2.0.5", &[1_000; 8]);
    let b = flow("10.1.0.8", "10.2.0.5", &[1_000; 2]);
    let mut corrupt = a[5].clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let mut psh = a[2].clone();
    psh[20 + 13] |= PSH;
    let fix = |p: &mut Vec<u8>| {
        // Recompute the TCP checksum after the flag change.
        p[36..38].fill(0);
        let c = !tun_rs::checksum(&p[20..], pseudo_header(&p[12..20], p.len() - 20));
        p[36..38].copy_from_slice(&c.to_be_bytes());
    };
    fix(&mut psh);
    let input = vec![
        a[0].clone(),
        a[1].clone(),
        psh,          // joins, then nothing more may
        a[3].clone(), // new super-packet
        b[0].clone(), // another flow: new packet
        a[4].clone(), // back to flow a: new packet
        corrupt,      // bad checksum: alone, unchanged
        a[6].clone(), // after the corrupt one, a new start
        a[7].clone(), // joins a[6]
        ipv4_udp(
            "10.1.0.7".parse().expect("v4"),
            "10.2.0.5".parse().expect("v4"),
            1,
            2,
            b"x",
        ),
    ];
    let out = run(&mut offloaded(), &input);
    assert_eq!(
        out.len(),
        7,
        "{:?}",
        out.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let back: Vec<Vec<u8>> = out.iter().flat_map(|p| as_kernel_sees_it(p)).collect();
    assert_eq!(back, input);
}

#[test]
fn gro_without_offload_packets_pass_unchanged_and_headerless() {
    let input = flow("10.1.0.7", "10.2.0.5", &[1_368; 5]);
    let mut q = TunQueue::default();
    assert_eq!(run(&mut q, &input), input);
}

/// A stream of segments from a few flows, some out of order, some with PSH or corrupt.
fn arb_stream() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let step = (0usize..3, 1usize..1_500, 0u8..10, any::<bool>());
    proptest::collection::vec(step, 1..120).prop_map(|steps| {
        let mut next_seq = [5_000u32, 9_000, 1u32 << 31];
        let mut ids = [1u16, 500, 9_000];
        let srcs = ["10.1.0.7", "10.1.0.8", "fd00:1::7"];
        let dsts = ["10.2.0.5", "10.2.0.5", "fd00:2::5"];
        steps
            .into_iter()
            .map(|(f, len, kind, big)| {
                // Mostly full-size segments, as a bulk sender produces.
                let len = if big { 1_200 } else { len };
                let flags = if kind == 0 { ACK | PSH } else { ACK };
                let seq = if kind == 1 {
                    next_seq[f].wrapping_add(7)
                } else {
                    next_seq[f]
                };
                let payload = vec![kind ^ (len as u8); len];
                let mut p = tcp_segment(
                    ip(srcs[f]),
                    ip(dsts[f]),
                    &fields(seq, flags, ids[f]),
                    &payload,
                );
                next_seq[f] = seq.wrapping_add(len as u32);
                ids[f] = ids[f].wrapping_add(1);
                if kind == 2 {
                    let last = p.len() - 1;
                    p[last] ^= 0x5a;
                }
                p
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Coalescing never changes what the kernel receives: every write, split as the kernel
    /// splits it, gives back exactly the packets pushed, in order; and a run of segments
    /// that can join never costs more writes than segments.
    #[test]
    fn gro_prop_the_kernel_receives_exactly_the_packets_pushed(input in arb_stream()) {
        let out = run(&mut offloaded(), &input);
        prop_assert!(out.len() <= input.len());
        for p in &out {
            if VirtioNetHdr::decode(p).map(|h| h.gso_type).unwrap_or(0) != 0 {
                kernel_checksum_is_right(p);
            }
        }
        let back: Vec<Vec<u8>> = out.iter().flat_map(|p| as_kernel_sees_it(p)).collect();
        prop_assert_eq!(back, input);
    }
}
