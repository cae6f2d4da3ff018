//! Issue 16: gratuitous ARP for a gateway's VNet-side address when this worker's instance takes
//! it over, so the VNet's router and hosts, whose neighbour caches still name the old
//! instance's host, send to this host at once instead of after their caches expire.
//!
//! The announcement is an ARP request for the address from the address itself (sender =
//! target), broadcast on every host interface (not the TUN device, not loopback) with an IPv4
//! address whose prefix contains the gateway's address: Linux, and most stacks, update an
//! existing neighbour entry from it. Three are sent: at once, after 200 ms and after 1 s, in
//! case the first is lost. Frames go out through `pnet_datalink` (an `AF_PACKET` socket), so
//! the worker needs `CAP_NET_RAW` as well as `CAP_NET_ADMIN`; a failure is logged once per
//! interface and announcement, never fatal.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// When the announcements go out, from the takeover.
pub const SCHEDULE: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(200),
    Duration::from_secs(1),
];

/// Length of an Ethernet frame carrying an ARP packet for IPv4 (without padding or FCS).
pub const FRAME_LEN: usize = 42;

/// The gratuitous ARP request announcing that `ip` is at `mac`.
pub fn frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    // Hardware type Ethernet, protocol IPv4, lengths 6 and 4, operation request.
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    // Target hardware address unknown (zero), target protocol address: the address itself.
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// Which of the host's interfaces announce `ip`: up, with a MAC address, neither loopback
/// nor `tun`, holding an IPv4 address whose prefix contains `ip`.
pub fn interfaces_for(
    ip: Ipv4Addr,
    tun: &str,
    all: Vec<pnet_datalink::NetworkInterface>,
) -> Vec<pnet_datalink::NetworkInterface> {
    all.into_iter()
        .filter(|i| i.name != tun && !i.is_loopback() && i.is_up())
        .filter(|i| i.mac.is_some_and(|m| m != pnet_datalink::MacAddr::zero()))
        .filter(|i| {
            i.ips
                .iter()
                .any(|n| n.is_ipv4() && n.ip() != IpAddr::V4(ip) && n.contains(IpAddr::V4(ip)))
        })
        .collect()
}

/// Sends the announcements of `ip` on a blocking thread (they take a second in all).
pub fn announce(ip: Ipv4Addr, tun: String) {
    tokio::task::spawn_blocking(move || announce_blocking(ip, &tun));
}

fn announce_blocking(ip: Ipv4Addr, tun: &str) {
    let ifaces = interfaces_for(ip, tun, pnet_datalink::interfaces());
    if ifaces.is_empty() {
        tracing::debug!(address = %ip, "no host interface on the address's subnet: no gratuitous ARP");
        return;
    }
    let mut senders = Vec::new();
    for i in &ifaces {
        let Some(mac) = i.mac else {
            continue;
        };
        match pnet_datalink::channel(i, pnet_datalink::Config::default()) {
            Ok(pnet_datalink::Channel::Ethernet(tx, _rx)) => {
                senders.push((i.name.clone(), tx, frame(mac.octets(), ip)));
            }
            Ok(_) => {
                tracing::warn!(address = %ip, interface = %i.name, "not an Ethernet interface: no gratuitous ARP");
            }
            Err(e) => {
                tracing::warn!(address = %ip, interface = %i.name, error = %e, "cannot open a raw socket for gratuitous ARP (the worker needs CAP_NET_RAW)");
            }
        }
    }
    if senders.is_empty() {
        return;
    }
    let names: Vec<&str> = senders.iter().map(|(n, _, _)| n.as_str()).collect();
    tracing::info!(address = %ip, interfaces = %names.join(", "), "announcing the gateway's VNet-side address (gratuitous ARP)");
    let mut elapsed = Duration::ZERO;
    for at in SCHEDULE {
        std::thread::sleep(at.saturating_sub(elapsed));
        elapsed = at;
        for (name, tx, f) in &mut senders {
            match tx.send_to(&f[..], None) {
                Some(Ok(())) | None => {}
                Some(Err(e)) => {
                    tracing::debug!(address = %ip, interface = %name, error = %e, "gratuitous ARP not sent");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_a_broadcast_arp_request_from_the_address_to_itself() {
        let mac = [2, 0, 0, 0, 0, 9];
        let f = frame(mac, Ipv4Addr::new(10, 1, 255, 4));
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &mac);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1], "operation: request");
        assert_eq!(&f[22..28], &mac, "sender hardware address");
        assert_eq!(&f[28..32], &[10, 1, 255, 4], "sender protocol address");
        assert_eq!(&f[32..38], &[0; 6], "target hardware address unknown");
        assert_eq!(&f[38..42], &[10, 1, 255, 4], "target protocol address");
    }

    fn iface(
        name: &str,
        mac: Option<[u8; 6]>,
        ip: &str,
        flags: u32,
    ) -> pnet_datalink::NetworkInterface {
        pnet_datalink::NetworkInterface {
            name: name.to_owned(),
            description: String::new(),
            index: 1,
            mac: mac.map(|m| pnet_datalink::MacAddr(m[0], m[1], m[2], m[3], m[4], m[5])),
            ips: vec![ip.parse().expect("network")],
            flags,
        }
    }

    #[test]
    fn only_up_ethernet_interfaces_on_the_address_subnet_announce_it() {
        const UP: u32 = 1;
        const LOOPBACK: u32 = 8;
        let mac = Some([2, 0, 0, 0, 0, 1]);
        let all = vec![
            iface("eth-vnet", mac, "10.1.0.5/16", UP),
            iface("eth-other", mac, "192.168.1.2/24", UP),
            iface("eth-down", mac, "10.1.0.6/16", 0),
            iface("isthmus0", None, "10.1.255.4/32", UP),
            iface("lo", Some([0; 6]), "10.1.0.1/16", UP | LOOPBACK),
            iface("nomac", None, "10.1.0.7/16", UP),
        ];
        let chosen = interfaces_for(Ipv4Addr::new(10, 1, 255, 4), "isthmus0", all);
        let names: Vec<&str> = chosen.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, vec!["eth-vnet"]);
    }
}
