//! Issue 16: which instance of a redundant gateway `isthmus-client connect` talks to, sans-IO
//! (the caller passes the time in and does the sockets).
//!
//! A redundant gateway runs two instances on two workers; the client package names both (the
//! active one's `Endpoint` and a `# FailoverEndpoint`). Only the active instance answers; the
//! standby drops everything silently. After a failover the new active instance initiates a
//! handshake to the client's last known address, which a NAT may not let in (its mapping is
//! towards the old instance). So the relay:
//! - sends the WireGuard client's datagrams to the **current** instance;
//! - also sends its handshake initiations and keepalives to the other instances, which keeps
//!   the NAT's mapping towards them open (a standby drops them; the new active one answers);
//!   while traffic flows WireGuard sends no keepalives, so then one data datagram every
//!   [`NAT_REFRESH`] goes to them as well (dropped there: no session of theirs);
//! - accepts datagrams from any listed instance and makes the last sender current, as
//!   WireGuard's roaming does, so the new active instance's takeover handshake gets through
//!   and the client's traffic follows it; a datagram from any other address is dropped;
//! - switches to the next instance when the current one leaves a handshake initiation
//!   unanswered for [`DEFAULT_FAILOVER_AFTER`] (any datagram from it counts as an answer).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long the current instance may leave a handshake initiation unanswered before the
/// relay switches to the other one. A live gateway answers within a round trip (a response,
/// or a cookie reply under load); WireGuard retransmits an initiation every 5 s, so the
/// retransmission after a switch reaches the other instance.
pub const DEFAULT_FAILOVER_AFTER: Duration = Duration::from_secs(3);

/// How often, at least, a datagram goes to the other instances while the client sends
/// (WireGuard's persistent keepalive interval: what keeps a NAT mapping open).
pub const NAT_REFRESH: Duration = Duration::from_secs(25);

/// WireGuard's handshake initiation: type 1, three zero bytes, 148 bytes in all.
pub fn is_initiation(datagram: &[u8]) -> bool {
    datagram.len() == 148 && datagram.starts_with(&[1, 0, 0, 0])
}

/// WireGuard's keepalive: a transport message (type 4) with no payload, 32 bytes.
pub fn is_keepalive(datagram: &[u8]) -> bool {
    datagram.len() == 32 && datagram.starts_with(&[4, 0, 0, 0])
}

/// Where one datagram of the WireGuard client goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The current instance.
    pub to: SocketAddr,
    /// The other instances, for an initiation or a keepalive (NAT mappings kept open).
    pub mirror: Vec<SocketAddr>,
}

/// The instances of one gateway and which is current.
#[derive(Debug, Clone)]
pub struct Instances {
    endpoints: Vec<SocketAddr>,
    current: usize,
    /// When the first initiation the current instance has not answered yet was sent.
    unanswered_since: Option<Instant>,
    /// When a datagram last went to the other instances.
    last_mirror: Option<Instant>,
    failover_after: Duration,
    switches: u64,
}

/// The address as a socket reports it (an IPv4-mapped IPv6 address is its IPv4 address).
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

impl Instances {
    /// `endpoints` (at least one; duplicates dropped) in the package's order: the active
    /// instance first.
    pub fn new(endpoints: &[SocketAddr], failover_after: Duration) -> Option<Self> {
        let mut list: Vec<SocketAddr> = Vec::with_capacity(endpoints.len());
        for e in endpoints.iter().copied().map(canonical) {
            if !list.contains(&e) {
                list.push(e);
            }
        }
        (!list.is_empty()).then_some(Self {
            endpoints: list,
            current: 0,
            unanswered_since: None,
            last_mirror: None,
            failover_after,
            switches: 0,
        })
    }

    /// Every listed instance, in the package's order.
    pub fn endpoints(&self) -> &[SocketAddr] {
        &self.endpoints
    }

    /// The instance the client's traffic goes to now.
    pub fn current(&self) -> SocketAddr {
        self.endpoints[self.current]
    }

    /// How often the current instance changed (roaming or a timeout).
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// A datagram of the WireGuard client at `now`: where it goes (an initiation, a
    /// keepalive, or the first datagram after [`NAT_REFRESH`] also to the others).
    pub fn outbound(&mut self, datagram: &[u8], now: Instant) -> Outbound {
        let initiation = is_initiation(datagram);
        if initiation && self.unanswered_since.is_none() {
            self.unanswered_since = Some(now);
        }
        let refresh = self
            .last_mirror
            .is_none_or(|t| now.saturating_duration_since(t) >= NAT_REFRESH);
        let mirror =
            if self.endpoints.len() > 1 && (initiation || is_keepalive(datagram) || refresh) {
                self.last_mirror = Some(now);
                self.endpoints
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != self.current)
                    .map(|(_, e)| *e)
                    .collect()
            } else {
                Vec::new()
            };
        Outbound {
            to: self.current(),
            mirror,
        }
    }

    /// A datagram from `src`: whether it is from a listed instance (then it is forwarded to
    /// the WireGuard client and its sender becomes current); anything else is dropped.
    pub fn inbound(&mut self, src: SocketAddr) -> bool {
        let src = canonical(src);
        let Some(i) = self.endpoints.iter().position(|e| *e == src) else {
            return false;
        };
        if i != self.current {
            self.current = i;
            self.switches += 1;
        }
        self.unanswered_since = None;
        true
    }

    /// When [`Instances::handle_timeout`] must run next, if an initiation is unanswered.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.endpoints.len() < 2 {
            return None;
        }
        self.unanswered_since.map(|t| t + self.failover_after)
    }

    /// At `now`: switches to the next instance if the current one left an initiation
    /// unanswered for the bound, and returns the new current instance.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<SocketAddr> {
        let due = self.poll_timeout()?;
        if now < due {
            return None;
        }
        self.current = (self.current + 1) % self.endpoints.len();
        self.switches += 1;
        self.unanswered_since = None;
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn initiation() -> Vec<u8> {
        let mut d = vec![0u8; 148];
        d[0] = 1;
        d
    }

    fn data(len: usize) -> Vec<u8> {
        let mut d = vec![0u8; len];
        d[0] = 4;
        d
    }

    fn two() -> Instances {
        Instances::new(
            &[addr("192.0.2.1:51820"), addr("192.0.2.2:51820")],
            Duration::from_secs(3),
        )
        .unwrap()
    }

    #[test]
    fn initiations_and_keepalives_also_go_to_the_other_instance_data_does_not() {
        let mut i = two();
        let now = Instant::now();
        let o = i.outbound(&initiation(), now);
        assert_eq!(o.to, addr("192.0.2.1:51820"));
        assert_eq!(o.mirror, [addr("192.0.2.2:51820")]);
        assert_eq!(i.outbound(&data(32), now).mirror.len(), 1, "keepalive");
        assert!(i.outbound(&data(96), now).mirror.is_empty(), "data");
        // Data without keepalives for NAT_REFRESH: one datagram goes to the other as well.
        let later = now + NAT_REFRESH;
        assert!(
            i.outbound(&data(96), later - Duration::from_millis(1))
                .mirror
                .is_empty()
        );
        assert_eq!(i.outbound(&data(96), later).mirror.len(), 1, "refresh");
        assert!(i.outbound(&data(96), later).mirror.is_empty(), "once");
    }

    #[test]
    fn the_last_listed_sender_becomes_current_and_an_unlisted_one_is_refused() {
        let mut i = two();
        assert!(!i.inbound(addr("192.0.2.9:51820")));
        assert!(!i.inbound(addr("192.0.2.2:51821")), "same host, other port");
        assert_eq!(i.current(), addr("192.0.2.1:51820"));
        assert!(i.inbound(addr("[::ffff:192.0.2.2]:51820")), "v4-mapped");
        assert_eq!(i.current(), addr("192.0.2.2:51820"));
        assert_eq!(i.switches(), 1);
    }

    #[test]
    fn an_unanswered_initiation_switches_after_exactly_the_bound() {
        let mut i = two();
        let t0 = Instant::now();
        i.outbound(&initiation(), t0);
        // A retransmission does not restart the clock.
        i.outbound(&initiation(), t0 + Duration::from_secs(1));
        assert_eq!(i.poll_timeout(), Some(t0 + Duration::from_secs(3)));
        assert_eq!(i.handle_timeout(t0 + Duration::from_millis(2999)), None);
        assert_eq!(
            i.handle_timeout(t0 + Duration::from_secs(3)),
            Some(addr("192.0.2.2:51820"))
        );
        assert_eq!(i.poll_timeout(), None);
        // And back again, round robin, if the other one is silent too.
        i.outbound(&initiation(), t0 + Duration::from_secs(5));
        assert_eq!(
            i.handle_timeout(t0 + Duration::from_secs(8)),
            Some(addr("192.0.2.1:51820"))
        );
    }

    #[test]
    fn an_answer_from_the_current_instance_stops_the_clock() {
        let mut i = two();
        let t0 = Instant::now();
        i.outbound(&initiation(), t0);
        assert!(i.inbound(addr("192.0.2.1:51820")));
        assert_eq!(i.poll_timeout(), None);
        assert_eq!(i.handle_timeout(t0 + Duration::from_secs(10)), None);
        assert_eq!(i.switches(), 0);
    }

    #[test]
    fn one_instance_never_switches() {
        let mut i = Instances::new(
            &[addr("192.0.2.1:51820"), addr("192.0.2.1:51820")],
            Duration::from_secs(3),
        )
        .unwrap();
        assert_eq!(i.endpoints().len(), 1, "duplicates dropped");
        let t0 = Instant::now();
        assert!(i.outbound(&initiation(), t0).mirror.is_empty());
        assert_eq!(i.handle_timeout(t0 + Duration::from_secs(60)), None);
        assert!(Instances::new(&[], Duration::from_secs(3)).is_none());
    }
}
