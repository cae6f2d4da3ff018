//! The tunnel MTU in the core: ICMP "fragmentation needed" / ICMPv6 "packet too big" answers,
//! IPv4 fragmentation, and the TCP MSS clamp, in every direction (VNet → tunnel, tunnel → VNet,
//! tunnel → tunnel), on a virtual clock with real boringtun devices.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use isthmus_shared::desired::DesiredState;
use isthmus_worker::core::packet::{TcpFields, ipv4_udp, tcp_segment};
use isthmus_worker::core::{Core, mss, mtu};
use proptest::prelude::*;

use crate::harness::*;

const GW_V4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 4);
const VNET_HOST: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 7);
const HOST_A: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 5);
const HOST_B: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 9);

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("v6")
}

fn be16(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

/// Two sites as in `two_sites`, dual stack (VNet fd00:1::/64, sites fd00:2::/64 and
/// fd00:3::/64), the gateway's own address 10.1.0.4.
fn dual_stack() -> DesiredState {
    let mut d = two_sites();
    let g = &mut d.gateways[0];
    g.private_address = Some(IpAddr::V4(GW_V4));
    g.peers[0].allowed_ips.push(net("fd00:2::/64"));
    g.peers[1].allowed_ips.push(net("fd00:3::/64"));
    g.routes.push(vnet_route("fd00:1::/64"));
    g.routes.push(route("fd00:2::/64", s2s_hop("a")));
    g.routes.push(route("fd00:3::/64", s2s_hop("b")));
    d
}

/// A core running `desired` whose two sites have handshaken.
fn established(desired: &DesiredState, now: Instant) -> (Core, Vec<Site>) {
    let mut core = Core::new();
    assert!(core.apply(desired, now).is_empty());
    let mut sites = vec![Site::new(2, 1, site_addr(2)), Site::new(3, 1, site_addr(3))];
    for i in 0..2 {
        let hs = sites[i].rehandshake();
        pump(
            &mut core,
            &mut sites,
            hs.into_iter().map(|d| (i, d)).collect(),
            now,
        );
    }
    assert!(core.peers(&qn("gw")).iter().all(|p| p.established));
    (core, sites)
}

/// Site `i` sends `packet` through its tunnel.
fn from_site(core: &mut Core, sites: &mut [Site], i: usize, packet: &[u8], now: Instant) {
    let d = sites[i].send(packet);
    assert!(pump(core, sites, d.into_iter().map(|d| (i, d)).collect(), now).is_empty());
}

fn without_df(mut p: Vec<u8>) -> Vec<u8> {
    p[6] &= !0x40;
    p
}

/// Checks an ICMP "fragmentation needed" answer to `orig`.
fn assert_frag_needed(icmp: &[u8], orig: &[u8], from: Ipv4Addr) {
    assert_eq!(icmp[0], 0x45);
    assert_eq!(usize::from(be16(icmp, 2)), icmp.len());
    assert_eq!(
        icmp.len(),
        576,
        "as much of the original as 576 bytes allow"
    );
    assert_eq!(icmp[9], 1, "ICMP");
    assert_eq!(be16(icmp, 6) & 0x4000, 0, "no DF on an ICMP error");
    assert_eq!(&icmp[12..16], &from.octets());
    assert_eq!(&icmp[16..20], &orig[12..16], "back to the source");
    assert!(checksum_ok(&icmp[..20], 0), "IP header checksum");
    assert_eq!((icmp[20], icmp[21]), (3, 4), "fragmentation needed");
    assert_eq!(be16(icmp, 24), 0);
    assert_eq!(be16(icmp, 26), 1420, "next-hop MTU");
    assert_eq!(&icmp[28..], &orig[..548], "quoted original");
    assert!(checksum_ok(&icmp[20..], 0), "ICMP checksum");
}

/// Checks an ICMPv6 "packet too big" answer to `orig`.
fn assert_packet_too_big(icmp: &[u8], orig: &[u8], from: Ipv6Addr) {
    assert_eq!(icmp[0] >> 4, 6);
    assert_eq!(icmp.len(), 1280, "as much as the IPv6 minimum MTU allows");
    assert_eq!(usize::from(be16(icmp, 4)) + 40, icmp.len());
    assert_eq!(icmp[6], 58, "ICMPv6");
    assert_eq!(&icmp[8..24], &from.octets());
    assert_eq!(&icmp[24..40], &orig[8..24], "back to the source");
    assert_eq!((icmp[40], icmp[41]), (2, 0), "packet too big");
    assert_eq!(&icmp[44..48], &1420u32.to_be_bytes(), "MTU");
    assert_eq!(&icmp[48..], &orig[..1232], "quoted original");
    assert!(
        checksum_ok(&icmp[40..], pseudo_sum(icmp, 40, 58)),
        "ICMPv6 checksum"
    );
}

/// Puts fragments back together (RFC 815 style, in order of offset) and checks each one.
fn reassemble(frags: &[Vec<u8>], mtu: usize) -> (Vec<u8>, Vec<u8>) {
    let mut v: Vec<&Vec<u8>> = frags.iter().collect();
    v.sort_by_key(|f| be16(f, 6) & 0x1fff);
    let first = v[0];
    let first_off = usize::from(be16(first, 6) & 0x1fff) * 8;
    let mut payload = Vec::new();
    for (i, f) in v.iter().enumerate() {
        assert!(f.len() <= mtu, "fragment of {} bytes > MTU {mtu}", f.len());
        let ihl = usize::from(f[0] & 0x0f) * 4;
        assert_eq!(usize::from(be16(f, 2)), f.len());
        assert!(checksum_ok(&f[..ihl], 0), "fragment header checksum");
        assert_eq!(be16(f, 6) & 0x4000, 0, "no DF");
        assert_eq!(&f[4..6], &first[4..6], "same identification");
        assert_eq!(&f[8..10], &first[8..10], "TTL, protocol");
        assert_eq!(&f[12..20], &first[12..20], "addresses");
        let off = usize::from(be16(f, 6) & 0x1fff) * 8;
        assert_eq!(off, first_off + payload.len(), "contiguous");
        if i + 1 < v.len() {
            assert_ne!(be16(f, 6) & 0x2000, 0, "MF on all but the last");
            assert_eq!((f.len() - ihl) % 8, 0);
        }
        payload.extend_from_slice(&f[ihl..]);
    }
    let ihl = usize::from(first[0] & 0x0f) * 4;
    (first[..ihl].to_vec(), payload)
}

#[test]
fn icmp_frag_needed_answers_a_1500_byte_df_ipv4_packet_from_the_vnet_towards_a_site() {
    let t0 = Instant::now();
    let (mut core, mut sites) = established(&dual_stack(), t0);
    let big = ipv4_udp(VNET_HOST, HOST_A, 5000, 53, &[7; 1472]);
    assert_eq!((big.len(), be16(&big, 6) & 0x4000), (1500, 0x4000));
    core.handle_tun(&big, t0);
    assert!(core.poll_transmit().is_none(), "nothing enters the tunnel");
    let out = drain_tun(&mut core);
    assert_eq!(out.len(), 1);
    assert_frag_needed(&out[0], &big, GW_V4);
    assert_eq!(core.gateway_counters(&qn("gw")).expect("gw").too_big, 1);
    // A packet that fits passes.
    let fits = ipv4_udp(VNET_HOST, HOST_A, 5000, 53, &[7; 1392]);
    core.handle_tun(&fits, t0);
    assert!(pump(&mut core, &mut sites, Vec::new(), t0).is_empty());
    assert_eq!(sites[0].received, vec![fits]);

    // Without an address of its own the gateway answers from the packet's destination.
    let mut d = dual_stack();
    d.gateways[0].private_address = None;
    let (mut core, _) = established(&d, t0);
    core.handle_tun(&big, t0);
    assert_frag_needed(&drain_tun(&mut core)[0], &big, HOST_A);
}

#[test]
fn icmpv6_packet_too_big_answers_a_large_ipv6_packet_from_the_vnet() {
    let t0 = Instant::now();
    let (mut core, _) = established(&dual_stack(), t0);
    let big = ipv6_udp(v6("fd00:1::7"), v6("fd00:2::5"), 5000, 53, &[9; 1452]);
    assert_eq!(big.len(), 1500);
    core.handle_tun(&big, t0);
    assert!(core.poll_transmit().is_none());
    let out = drain_tun(&mut core);
    assert_eq!(out.len(), 1);
    // The gateway's own address is IPv4: the answer comes from the packet's destination.
    assert_packet_too_big(&out[0], &big, v6("fd00:2::5"));

    let mut d = dual_stack();
    d.gateways[0].private_address = Some("fd00:1::4".parse().expect("v6"));
    let (mut core, _) = established(&d, t0);
    core.handle_tun(&big, t0);
    assert_packet_too_big(&drain_tun(&mut core)[0], &big, v6("fd00:1::4"));
    // An ICMPv6 error is never answered with another.
    let mut err = big.clone();
    err[6] = 58;
    err[40] = 1;
    core.handle_tun(&err, t0);
    assert!(drain_tun(&mut core).is_empty());
    assert_eq!(core.gateway_counters(&qn("gw")).expect("gw").too_big, 2);
}

#[test]
fn a_large_df_packet_from_a_site_is_answered_into_its_tunnel_both_families() {
    let t0 = Instant::now();
    let (mut core, mut sites) = established(&dual_stack(), t0);
    // Site A's interface is at 1500: into the VNet, and through transit to site B.
    for dst in [VNET_HOST, HOST_B] {
        let big = ipv4_udp(HOST_A, dst, 5000, 53, &[1; 1472]);
        from_site(&mut core, &mut sites, 0, &big, t0);
        assert!(drain_tun(&mut core).is_empty(), "to {dst}");
        assert!(sites[1].received.is_empty(), "to {dst}");
        let icmp = sites[0].received.pop().expect("an answer in the tunnel");
        assert_frag_needed(&icmp, &big, GW_V4);
    }
    for dst in ["fd00:1::7", "fd00:3::9"] {
        let big = ipv6_udp(v6("fd00:2::5"), v6(dst), 5000, 53, &[1; 1452]);
        from_site(&mut core, &mut sites, 0, &big, t0);
        assert!(drain_tun(&mut core).is_empty(), "to {dst}");
        assert!(sites[1].received.is_empty(), "to {dst}");
        let icmp = sites[0].received.pop().expect("an answer in the tunnel");
        assert_packet_too_big(&icmp, &big, v6(dst));
    }
    assert_eq!(core.gateway_counters(&qn("gw")).expect("gw").too_big, 4);
}

#[test]
fn ipv4_without_df_is_fragmented_into_a_tunnel_and_reassembles_to_the_original() {
    let t0 = Instant::now();
    let (mut core, mut sites) = established(&dual_stack(), t0);
    let payload: Vec<u8> = (0..2972u32).map(|i| (i % 251) as u8).collect();
    // From the VNet into site A's tunnel.
    let big = without_df(ipv4_udp(VNET_HOST, HOST_A, 5000, 53, &payload));
    core.handle_tun(&big, t0);
    assert!(pump(&mut core, &mut sites, Vec::new(), t0).is_empty());
    assert!(drain_tun(&mut core).is_empty());
    let frags = std::mem::take(&mut sites[0].received);
    assert_eq!(frags.len(), 3, "3000 bytes in fragments of at most 1420");
    let (header, data) = reassemble(&frags, 1420);
    assert_eq!(data, big[20..]);
    assert_eq!(header[..2], big[..2]);
    assert_eq!(header[4..6], big[4..6]);
    assert_eq!(header[8..10], big[8..10]);
    assert_eq!(header[12..20], big[12..20]);

    // Through transit from site A to site B.
    let big = without_df(ipv4_udp(HOST_A, HOST_B, 5000, 53, &payload));
    from_site(&mut core, &mut sites, 0, &big, t0);
    let frags = std::mem::take(&mut sites[1].received);
    assert_eq!(frags.len(), 3);
    assert_eq!(reassemble(&frags, 1420).1, big[20..]);

    // From a tunnel into the VNet, without DF: passed whole (the VNet's MTU is not the tunnel's).
    let big = without_df(ipv4_udp(HOST_A, VNET_HOST, 5000, 53, &payload[..1472]));
    from_site(&mut core, &mut sites, 0, &big, t0);
    assert_eq!(drain_tun(&mut core), vec![big]);
    assert_eq!(core.counters().total(), 0);
}

#[test]
fn icmp_answers_are_rate_limited_per_gateway() {
    let t0 = Instant::now();
    let (mut core, _) = established(&dual_stack(), t0);
    let big = ipv4_udp(VNET_HOST, HOST_A, 5000, 53, &[7; 1472]);
    for _ in 0..150 {
        core.handle_tun(&big, t0);
    }
    assert_eq!(drain_tun(&mut core).len(), 100);
    let c = core.gateway_counters(&qn("gw")).expect("gw");
    assert_eq!((c.too_big, c.icmp_rate_limited), (150, 50));
    core.handle_tun(&big, t0 + Duration::from_millis(5));
    assert!(drain_tun(&mut core).is_empty());
    core.handle_tun(&big, t0 + Duration::from_secs(1));
    assert_eq!(drain_tun(&mut core).len(), 1, "refilled");
}

// --- MSS clamp ---

const MSS_1460: [u8; 4] = [2, 4, 0x05, 0xb4];

fn syn(src: IpAddr, dst: IpAddr, flags: u8, options: &[u8]) -> Vec<u8> {
    let f = TcpFields {
        sport: 40_000,
        dport: 443,
        seq: 7,
        ack: if flags & 0x10 != 0 { 99 } else { 0 },
        flags,
        options,
        ip_id: 3,
    };
    tcp_segment(src, dst, &f, &[])
}

/// Option layouts: (options, offset of the MSS value in them, if any).
fn layouts(mss: [u8; 4]) -> Vec<(Vec<u8>, Option<usize>)> {
    let ts = [8, 10, 1, 2, 3, 4, 0, 0, 0, 0];
    let mut first = mss.to_vec();
    first.extend_from_slice(&[4, 2, 1, 3, 3, 7, 1, 1]); // SACK-permitted, NOP, WS, NOPs
    let mut last = vec![1, 3, 3, 7, 4, 2]; // NOP, window scale, SACK-permitted
    last.extend_from_slice(&ts); // timestamps
    last.extend_from_slice(&mss);
    last.extend_from_slice(&[0, 0]); // end of options, padding
    let mut linux = mss.to_vec(); // as Linux sends it: MSS, SACK-perm, TS, NOP, WS
    linux.extend_from_slice(&[4, 2]);
    linux.extend_from_slice(&ts);
    linux.extend_from_slice(&[1, 3, 3, 7]);
    vec![(first, Some(2)), (last, Some(18)), (linux, Some(2))]
}

fn clamped(options: &[u8], at: usize, to: u16) -> Vec<u8> {
    let mut o = options.to_vec();
    o[at..at + 2].copy_from_slice(&to.to_be_bytes());
    o
}

fn assert_tcp_checksum(p: &[u8]) {
    let iph = if p[0] >> 4 == 6 {
        40
    } else {
        usize::from(p[0] & 0x0f) * 4
    };
    assert!(
        checksum_ok(&p[iph..], pseudo_sum(p, iph, 6)),
        "TCP checksum, verified from scratch"
    );
}

type Hosts = (IpAddr, IpAddr, IpAddr);

fn hosts_v4() -> Hosts {
    (VNET_HOST.into(), HOST_A.into(), HOST_B.into())
}

fn hosts_v6() -> Hosts {
    (
        v6("fd00:1::7").into(),
        v6("fd00:2::5").into(),
        v6("fd00:3::9").into(),
    )
}

/// Sends `make(src, dst)` in all three directions through a gateway of `desired`; returns what
/// came out each time (VNet → site A, site A → VNet, site A → site B).
fn through_all_directions(
    desired: &DesiredState,
    hosts: Hosts,
    make: &dyn Fn(IpAddr, IpAddr) -> Vec<u8>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let t0 = Instant::now();
    let (mut core, mut sites) = established(desired, t0);
    let (vnet, a, b) = hosts;
    let mut out = Vec::new();
    let p = make(vnet, a);
    core.handle_tun(&p, t0);
    assert!(pump(&mut core, &mut sites, Vec::new(), t0).is_empty());
    out.push((p, sites[0].received.pop().expect("at site A")));
    let p = make(a, vnet);
    from_site(&mut core, &mut sites, 0, &p, t0);
    out.push((p, drain_tun(&mut core).pop().expect("on the TUN")));
    let p = make(a, b);
    from_site(&mut core, &mut sites, 0, &p, t0);
    out.push((p, sites[1].received.pop().expect("at site B")));
    assert_eq!(core.counters().total(), 0);
    out
}

#[test]
fn mss_of_syn_and_syn_ack_is_clamped_in_every_direction_both_families() {
    for (hosts, limit) in [(hosts_v4(), 1380u16), (hosts_v6(), 1360)] {
        for flags in [0x02u8, 0x12] {
            for (options, at) in layouts(MSS_1460) {
                let at = at.expect("an MSS option");
                let make = |s, d| syn(s, d, flags, &options);
                for (sent, got) in through_all_directions(&dual_stack(), hosts, &make) {
                    // The packet the gateway should have made, built (and checksummed) anew.
                    let src_dst = if sent[0] >> 4 == 6 {
                        (
                            IpAddr::from(<[u8; 16]>::try_from(&sent[8..24]).expect("16")),
                            IpAddr::from(<[u8; 16]>::try_from(&sent[24..40]).expect("16")),
                        )
                    } else {
                        (
                            IpAddr::from(<[u8; 4]>::try_from(&sent[12..16]).expect("4")),
                            IpAddr::from(<[u8; 4]>::try_from(&sent[16..20]).expect("4")),
                        )
                    };
                    let want = syn(src_dst.0, src_dst.1, flags, &clamped(&options, at, limit));
                    assert_eq!(got, want, "flags {flags:#x}, options {options:?}");
                    assert_tcp_checksum(&got);
                }
            }
        }
    }
}

#[test]
fn mss_is_left_alone_without_an_option_when_small_when_malformed_and_when_clamp_is_off() {
    let no_mss = vec![1, 3, 3, 7, 4, 2, 1, 1];
    let small = vec![2, 4, 0x04, 0xb0, 1, 3, 3, 7]; // 1200
    let malformed = vec![8, 0, 2, 4, 0x05, 0xb4, 0, 0]; // a zero-length option before the MSS
    let mut off = dual_stack();
    off.gateways[0].mss_clamp = false;
    let on = dual_stack();
    let cases: Vec<(&DesiredState, Vec<u8>)> = vec![
        (&on, no_mss),
        (&on, small),
        (&on, malformed),
        (&off, layouts(MSS_1460)[1].0.clone()),
    ];
    for (desired, options) in cases {
        for hosts in [hosts_v4(), hosts_v6()] {
            let make = |s, d| syn(s, d, 0x02, &options);
            for (sent, got) in through_all_directions(desired, hosts, &make) {
                assert_eq!(got, sent, "options {options:?}");
            }
        }
    }
    // Not a SYN: an ACK with an MSS-looking option passes unchanged.
    let make = |s, d| syn(s, d, 0x10, &MSS_1460);
    for (sent, got) in through_all_directions(&dual_stack(), hosts_v4(), &make) {
        assert_eq!(got, sent);
    }
}

/// With TUN offload on, a clamped SYN from a tunnel reaches the TUN as a single packet behind a
/// virtio-net header that asks the kernel for no checksum work: the clamped checksum must be
/// complete and valid.
#[test]
fn a_clamped_syn_written_to_an_offload_tun_carries_a_complete_checksum() {
    let t0 = Instant::now();
    let (mut core, mut sites) = established(&dual_stack(), t0);
    core.set_tun_offload(true);
    for (a, vnet) in [
        (IpAddr::from(HOST_A), IpAddr::from(VNET_HOST)),
        (v6("fd00:2::5").into(), v6("fd00:1::7").into()),
    ] {
        let (options, at) = layouts(MSS_1460).remove(2);
        let p = syn(a, vnet, 0x02, &options);
        from_site(&mut core, &mut sites, 0, &p, t0);
        let out = drain_tun(&mut core).pop().expect("on the TUN");
        let hdr = tun_rs::VirtioNetHdr::decode(&out).expect("header");
        assert_eq!(
            (hdr.flags, hdr.gso_type),
            (0, 0),
            "no checksum or GSO work left"
        );
        let packet = &out[isthmus_worker::core::gro::VNET_HDR_LEN..];
        assert_tcp_checksum(packet);
        let limit = if a.is_ipv6() { 1360 } else { 1380 };
        assert_eq!(
            packet,
            syn(a, vnet, 0x02, &clamped(&options, at.expect("mss"), limit))
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// RFC 791 fragmentation of random packets: options (copied or not), an original that may
    /// itself be a fragment, any MTU from the IPv4 minimum of 68.
    #[test]
    fn fragments_reassemble_to_the_original(
        len in 0usize..4000,
        mtu in 68usize..1500,
        opt_words in 0usize..=10,
        copied in any::<bool>(),
        offset_units in 0u16..64,
        more in any::<bool>(),
        seed in any::<u8>(),
    ) {
        let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let mut opts = Vec::new();
        if opt_words > 0 {
            // One option filling the words: copied (0x94, router alert-like) or not (0x07).
            let n = opt_words * 4;
            opts.push(if copied { 0x94 } else { 0x07 });
            opts.push(n as u8);
            opts.extend((2..n).map(|i| i as u8));
        }
        let ihl = 20 + opts.len();
        let mut p = vec![0x40 | (ihl / 4) as u8, 0];
        p.extend_from_slice(&((ihl + len) as u16).to_be_bytes());
        p.extend_from_slice(&0x1234u16.to_be_bytes());
        let flags = if more { 0x2000 } else { 0 } | offset_units;
        p.extend_from_slice(&flags.to_be_bytes());
        p.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend_from_slice(&opts);
        p.extend_from_slice(&payload);
        let mut frags = Vec::new();
        let done = mtu::fragment_v4(&p, mtu, |f: &[u8]| frags.push(f.to_vec()));
        prop_assert!(done);
        let (header, data) = reassemble(&frags, mtu);
        prop_assert_eq!(&data, &payload);
        prop_assert_eq!(usize::from(be16(&frags[0], 6) & 0x1fff), usize::from(offset_units));
        prop_assert_eq!(header.len(), ihl, "the first fragment carries every option");
        prop_assert_eq!(&header[20..], &opts[..]);
        let last = frags.iter().max_by_key(|f| be16(f, 6) & 0x1fff).expect("one");
        prop_assert_eq!(be16(last, 6) & 0x2000 != 0, more, "MF of the last as the original's");
        for f in &frags[1..] {
            let fihl = usize::from(f[0] & 0x0f) * 4;
            let want = if copied { ihl } else { 20 };
            prop_assert_eq!(fihl, want, "later fragments carry only copied options");
        }
        // DF set: never fragmented.
        let mut df = p.clone();
        df[6] |= 0x40;
        let refused = !mtu::fragment_v4(&df, mtu, |_| ());
        prop_assert!(refused);
    }

    /// Random bytes (and random bytes behind a plausible IPv4/IPv6/TCP header) through the new
    /// parsers never panic; whatever ICMP answer comes out has valid checksums.
    #[test]
    fn random_bytes_through_the_icmp_builder_mss_walker_and_fragmenter_never_panic(
        raw in proptest::collection::vec(any::<u8>(), 0..2000),
        ipv6 in any::<bool>(),
        mtu_v in 0usize..2000,
        header in any::<bool>(),
    ) {
        let mut p = raw.clone();
        if header && p.len() >= 60 {
            if ipv6 {
                p[0] = 0x60;
                let pl = (p.len() - 40) as u16;
                p[4..6].copy_from_slice(&pl.to_be_bytes());
                p[6] = 6;
                p[53] |= 0x02;
            } else {
                p[0] = 0x45;
                let total = p.len() as u16;
                p[2..4].copy_from_slice(&total.to_be_bytes());
                p[6] &= 0x40;
                p[7] = 0;
                p[9] = 6;
                p[33] |= 0x02;
            }
        }
        let mut out = Vec::new();
        if mtu::too_big(&p, mtu_v as u16, None, &mut out) {
            if out[0] >> 4 == 4 {
                prop_assert!(checksum_ok(&out[..20], 0));
                prop_assert!(checksum_ok(&out[20..], 0));
                prop_assert!(out.len() <= 576);
            } else {
                prop_assert!(checksum_ok(&out[40..], pseudo_sum(&out, 40, 58)));
                prop_assert!(out.len() <= 1280);
            }
        }
        let _ = mss::is_tcp_syn(&p);
        let before = p.clone();
        if let Some(m) = mss::clamp(&mut p, mtu_v) {
            prop_assert!(usize::from(m) <= mtu_v);
            prop_assert_eq!(p.len(), before.len());
        }
        let mut n = 0;
        mtu::fragment_v4(&p, mtu_v, |f| {
            assert!(f.len() <= mtu_v);
            n += 1;
        });
        let _ = n;
        // And through a core, from both sides.
        let t0 = Instant::now();
        let mut core = Core::new();
        prop_assert!(core.apply(&dual_stack(), t0).is_empty());
        core.handle_tun(&p, t0);
        core.handle_network(GW_PORT, site_addr(2), &p, t0);
    }
}
