//! The test side of the strongSwan interop (`ike_strongswan.rs`): the lab connection's
//! settings on both sides and [`Gw`], a small loop that stands in for the gateway shell around
//! the product's sans-IO IKEv2 and ESP code.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use isthmus_worker::core::esp::udp::{Datagram, classify, frame_ike};
use isthmus_worker::core::esp::{Inbound, NEXT_IPV4, Outbound, spi_of};
use isthmus_worker::core::ike::crypto::{Aead, DhGroup, Prf, Secret, SystemEntropy};
use isthmus_worker::core::ike::exchange::{Config, IkeEvent, Initiator, Request, Responder};
use isthmus_worker::core::ike::proposal::{EspSuite, IkeSuite};
use isthmus_worker::core::ike::wire::{
    ExchangeType, IdType, Identification, Message, NotifyType, TrafficSelector,
};

use crate::strongswan_lab::{
    GW_ADDR, GW_HOST, GW_NET, IkeSaInfo, SS_ADDR, SS_HOST, SS_NET, StrongSwan, SwanPair,
    strongswan_skip_reason, udp_in,
};

pub const PSK: &str = "interop shared key of the lab";

pub fn skip() -> bool {
    if let Some(why) = strongswan_skip_reason() {
        eprintln!("SKIPPED: {why}");
        return true;
    }
    false
}

pub fn ipv4_id(a: &str) -> Identification {
    let ip: Ipv4Addr = a.parse().expect("address");
    Identification {
        id_type: IdType::IPV4_ADDR,
        data: ip.octets().to_vec(),
    }
}

pub fn ts(net: &str) -> Vec<TrafficSelector> {
    vec![TrafficSelector::from_net(net.parse().expect("prefix"))]
}

pub const AEADS: [Aead; 3] = [
    Aead::AesGcm16_128,
    Aead::AesGcm16_256,
    Aead::ChaCha20Poly1305,
];
pub const PRFS: [Prf; 2] = [Prf::HmacSha256, Prf::HmacSha384];
pub const GROUPS: [DhGroup; 4] = [
    DhGroup::Modp2048,
    DhGroup::Ecp256,
    DhGroup::Ecp384,
    DhGroup::Curve25519,
];

/// Every IKE suite of the issue.
pub fn all_ike() -> Vec<IkeSuite> {
    let mut v = Vec::new();
    for dh in GROUPS {
        for aead in AEADS {
            for prf in PRFS {
                v.push(IkeSuite { aead, prf, dh });
            }
        }
    }
    v
}

pub fn all_esp() -> Vec<EspSuite> {
    AEADS.iter().map(|&aead| EspSuite { aead }).collect()
}

/// The gateway's side of the lab connection: identities are the IPv4 addresses.
pub fn gw_config(psk: &str, ike: Vec<IkeSuite>, esp: Vec<EspSuite>) -> Config {
    Config {
        psk: Secret::from_slice(psk.as_bytes()),
        local_id: ipv4_id(GW_ADDR),
        remote_id: Some(ipv4_id(SS_ADDR)),
        ike,
        esp,
        local_ts: ts(GW_NET),
        remote_ts: ts(SS_NET),
        force_encapsulation: true,
    }
}

/// strongSwan's names of a suite's parts (swanctl proposal keywords, list-sas names).
pub fn swan_aead(a: Aead) -> (&'static str, &'static str, u32) {
    match a {
        Aead::AesGcm16_128 => ("aes128gcm16", "AES_GCM_16", 128),
        Aead::AesGcm16_256 => ("aes256gcm16", "AES_GCM_16", 256),
        Aead::ChaCha20Poly1305 => ("chacha20poly1305", "CHACHA20_POLY1305", 0),
    }
}

pub fn swan_prf(p: Prf) -> (&'static str, &'static str) {
    match p {
        Prf::HmacSha256 => ("prfsha256", "PRF_HMAC_SHA2_256"),
        Prf::HmacSha384 => ("prfsha384", "PRF_HMAC_SHA2_384"),
    }
}

pub fn swan_group(g: DhGroup) -> (&'static str, &'static str) {
    match g {
        DhGroup::Modp2048 => ("modp2048", "MODP_2048"),
        DhGroup::Ecp256 => ("ecp256", "ECP_256"),
        DhGroup::Ecp384 => ("ecp384", "ECP_384"),
        DhGroup::Curve25519 => ("curve25519", "CURVE_25519"),
    }
}

pub fn swan_proposal(s: IkeSuite) -> String {
    format!(
        "{}-{}-{}",
        swan_aead(s.aead).0,
        swan_prf(s.prf).0,
        swan_group(s.dh).0
    )
}

/// strongSwan's side of the lab connection, as a device's swanctl.conf would have it.
pub struct SwanConf {
    pub proposals: String,
    pub esp_proposals: String,
    pub psk: String,
    pub start_action: &'static str,
    pub dpd_delay: &'static str,
    pub rekey_time: &'static str,
    pub life_time: &'static str,
    /// Where strongSwan initiates to: the gateway's listen port.
    pub remote_port: u16,
    /// strongSwan's own IKE port, if not 500. strongSwan 5.9.8 floats the remote port to 4500
    /// after IKE_SA_INIT whenever either port is 500 (its `float_ports`), so towards a gateway
    /// port other than 500 its local port must be 4500 (it then sends the non-ESP marker from
    /// the start and keeps the gateway's port).
    pub local_port: Option<u16>,
}

impl SwanConf {
    pub fn new(proposals: &str, esp: &str) -> Self {
        Self {
            proposals: proposals.to_owned(),
            esp_proposals: esp.to_owned(),
            psk: PSK.to_owned(),
            start_action: "none",
            dpd_delay: "30s",
            rekey_time: "1h",
            life_time: "66m",
            remote_port: GW_PORT,
            local_port: Some(4500),
        }
    }

    pub fn render(&self) -> String {
        let local_port = self
            .local_port
            .map(|p| format!("    local_port = {p}\n"))
            .unwrap_or_default();
        format!(
            "connections {{\n  gw {{\n    version = 2\n    local_addrs = {SS_ADDR}\n\
             \x20   remote_addrs = {GW_ADDR}\n    remote_port = {rp}\n{local_port}    mobike = no\n    encap = yes\n\
             \x20   proposals = {p}\n    dpd_delay = {dpd}\n\
             \x20   local {{\n      auth = psk\n      id = {SS_ADDR}\n    }}\n\
             \x20   remote {{\n      auth = psk\n      id = {GW_ADDR}\n    }}\n\
             \x20   children {{\n      net {{\n        local_ts = {SS_NET}\n\
             \x20       remote_ts = {GW_NET}\n        esp_proposals = {e}\n\
             \x20       rekey_time = {rk}\n        life_time = {lt}\n        rand_time = 0s\n        start_action = {sa}\n\
             \x20       dpd_action = clear\n      }}\n    }}\n  }}\n}}\n\
             secrets {{\n  ike-gw {{\n    id-1 = {GW_ADDR}\n    id-2 = {SS_ADDR}\n\
             \x20   secret = \"{psk}\"\n  }}\n}}\n",
            p = self.proposals,
            dpd = self.dpd_delay,
            e = self.esp_proposals,
            rk = self.rekey_time,
            lt = self.life_time,
            rp = self.remote_port,
            sa = self.start_action,
            psk = self.psk,
        )
    }
}

/// A CHILD SA without its keys: (inbound SPI, outbound SPI, suite).
pub type ChildSpis = (u32, u32, EspSuite);

/// What the loop saw of the exchanges (IkeEvent without the keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Established {
        spi_i: u64,
        spi_r: u64,
        suite: IkeSuite,
        child: Option<ChildSpis>,
        child_refused: Option<NotifyType>,
    },
    Failed {
        notify: NotifyType,
        by_peer: bool,
    },
    TimedOut,
    Deleted {
        by_peer: bool,
    },
    ChildDeleted {
        inbound: u32,
    },
    ChildRekeyed {
        old_inbound: u32,
        inbound: u32,
        outbound: u32,
    },
    /// The IKE SA's new SPIs after a rekey (either side's).
    IkeRekeyed {
        spi_i: u64,
        spi_r: u64,
    },
    Other(String),
}

pub enum Side {
    Init(Box<Initiator>),
    Resp(Box<Responder>),
}

/// The gateway's one UDP port (as its `listen_port`): IKE with and without the non-ESP
/// marker, and ESP-in-UDP, all on it.
pub const GW_PORT: u16 = 51820;

/// The test's stand-in for the gateway shell: the gateway's one socket in its namespace, one
/// IKE side, the CHILD SAs' ESP halves.
pub struct Gw {
    pub sock: UdpSocket,
    pub side: Side,
    pub os: SystemEntropy,
    pub events: Vec<Ev>,
    pub inbound: Vec<(u32, Inbound, Aead)>,
    pub outbound: Option<Outbound>,
    /// Inner packets ESP brought in.
    pub received: Vec<Vec<u8>>,
    /// IKE requests from strongSwan (exchange types), and datagrams of each kind for the corpus.
    pub requests: Vec<ExchangeType>,
    /// IKE responses from strongSwan (exchange types).
    pub responses: Vec<ExchangeType>,
    pub seen: Vec<(String, Vec<u8>)>,
    /// Put before the corpus files' names (e.g. `wrong-psk-`).
    pub tag: &'static str,
    /// The SPI of the last ESP packet that opened.
    pub last_esp_spi: Option<u32>,
}

pub fn ss(port: u16) -> SocketAddr {
    SocketAddr::from((SS_ADDR.parse::<Ipv4Addr>().expect("address"), port))
}

pub fn gw_addr(port: u16) -> SocketAddr {
    SocketAddr::from((GW_ADDR.parse::<Ipv4Addr>().expect("address"), port))
}

pub fn exchange_name(e: ExchangeType) -> &'static str {
    match e {
        ExchangeType::IKE_SA_INIT => "ike_sa_init",
        ExchangeType::IKE_AUTH => "ike_auth",
        ExchangeType::CREATE_CHILD_SA => "create_child_sa",
        ExchangeType::INFORMATIONAL => "informational",
        _ => "other",
    }
}

impl Gw {
    pub fn new(pair: &SwanPair, side: Side) -> Self {
        let sock = udp_in(&pair.gw, gw_addr(GW_PORT));
        sock.set_nonblocking(true).expect("nonblocking");
        Self {
            sock,
            side,
            os: SystemEntropy::default(),
            events: Vec::new(),
            inbound: Vec::new(),
            outbound: None,
            received: Vec::new(),
            requests: Vec::new(),
            responses: Vec::new(),
            seen: Vec::new(),
            tag: "",
            last_esp_spi: None,
        }
    }

    /// The Isthmus initiator starts towards strongSwan's port 500.
    pub fn initiate(pair: &SwanPair, config: Config) -> Self {
        let mut os = SystemEntropy::default();
        let (init, first) =
            Initiator::start(config, gw_addr(GW_PORT), ss(500), &mut os, Instant::now())
                .expect("initiator starts");
        let me = Self::new(pair, Side::Init(Box::new(init)));
        me.send_ike(&first, ss(500));
        me
    }

    pub fn respond(pair: &SwanPair, config: Config) -> Self {
        let mut os = SystemEntropy::default();
        let resp = Responder::new(config, 64, &mut os).expect("responder");
        Self::new(pair, Side::Resp(Box::new(resp)))
    }

    /// An IKE message to `to`: to port 500 bare, to any other port (4500 once floated) with
    /// the non-ESP marker.
    pub fn send_ike(&self, msg: &[u8], to: SocketAddr) {
        let r = if to.port() == 500 {
            self.sock.send_to(msg, to)
        } else {
            self.sock.send_to(&frame_ike(msg), to)
        };
        r.expect("send IKE");
    }

    /// Where the initiator's message goes: IKE_SA_INIT to 500, the rest floated to 4500.
    pub fn initiator_target(msg: &[u8]) -> SocketAddr {
        match Message::parse(msg) {
            Ok(m) if m.header.exchange == ExchangeType::IKE_SA_INIT => ss(500),
            _ => ss(4500),
        }
    }

    pub fn record(&mut self, dir: &str, name: String, bytes: &[u8]) {
        let name = format!("{dir}/strongswan-{}{name}", self.tag);
        if !self.seen.iter().any(|(n, _)| *n == name) {
            self.seen.push((name, bytes.to_vec()));
        }
    }

    pub fn on_ike(&mut self, local: SocketAddr, from: SocketAddr, msg: &[u8]) {
        if let Ok(m) = Message::parse(msg) {
            let kind = if m.header.flags.response {
                self.responses.push(m.header.exchange);
                "response"
            } else {
                self.requests.push(m.header.exchange);
                "request"
            };
            // INFORMATIONAL and CREATE_CHILD_SA by length too: DPD and the Deletes of a CHILD
            // SA and of the IKE SA differ, and so do the rekeys of a CHILD SA and of the IKE SA.
            let e = m.header.exchange;
            let name = if e == ExchangeType::INFORMATIONAL || e == ExchangeType::CREATE_CHILD_SA {
                format!("{}-{kind}-{}.bin", exchange_name(e), msg.len())
            } else {
                format!("{}-{kind}.bin", exchange_name(m.header.exchange))
            };
            self.record("ike", name, msg);
        }
        let now = Instant::now();
        match &mut self.side {
            Side::Init(i) => {
                if let Some(out) = i.handle(msg, &mut self.os, now).expect("initiator") {
                    self.send_ike(&out, Self::initiator_target(&out));
                }
            }
            Side::Resp(r) => {
                if let Some(out) = r
                    .handle(local, from, msg, &mut self.os, now)
                    .expect("responder")
                {
                    self.send_ike(&out, from);
                }
            }
        }
    }

    pub fn on_esp(&mut self, packet: &[u8]) {
        let Some(spi) = spi_of(packet) else { return };
        let Some((_, rx, aead)) = self.inbound.iter_mut().find(|(s, ..)| *s == spi) else {
            return;
        };
        let name = format!("esp-{}.bin", swan_aead(*aead).0);
        let mut buf = packet.to_vec();
        if let Ok(o) = rx.open(&mut buf) {
            self.received.push(buf[o.inner].to_vec());
            self.last_esp_spi = Some(spi);
        }
        self.record("esp", name, packet);
    }

    pub fn install(&mut self, c: &isthmus_worker::core::ike::exchange::ChildSa) {
        let rx = Inbound::new(c.suite.aead, c.inbound_spi, &c.inbound_key).expect("inbound");
        self.inbound.push((c.inbound_spi, rx, c.suite.aead));
        self.outbound =
            Some(Outbound::new(c.suite.aead, c.outbound_spi, &c.outbound_key).expect("outbound"));
    }

    /// Installs the CHILD SAs an event brings and records it (an `if let` chain, not a
    /// `match`: events other helpers add, e.g. of IKE SA rekeying, are recorded as `Other`).
    pub fn on_event(&mut self, e: IkeEvent) {
        let ev = if let IkeEvent::Established {
            spi_i,
            spi_r,
            suite,
            child,
            child_refused,
            ..
        } = e
        {
            if let Some(c) = &child {
                self.install(c);
            }
            Ev::Established {
                spi_i,
                spi_r,
                suite,
                child: child.map(|c| (c.inbound_spi, c.outbound_spi, c.suite)),
                child_refused,
            }
        } else if let IkeEvent::Failed { notify, by_peer } = e {
            Ev::Failed { notify, by_peer }
        } else if let IkeEvent::TimedOut = e {
            Ev::TimedOut
        } else if let IkeEvent::Deleted { by_peer } = e {
            Ev::Deleted { by_peer }
        } else if let IkeEvent::ChildDeleted { inbound_spi, .. } = e {
            self.inbound.retain(|(s, ..)| *s != inbound_spi);
            Ev::ChildDeleted {
                inbound: inbound_spi,
            }
        } else if let IkeEvent::ChildRekeyed {
            old_inbound_spi,
            child,
            ..
        } = e
        {
            self.install(&child);
            Ev::ChildRekeyed {
                old_inbound: old_inbound_spi,
                inbound: child.inbound_spi,
                outbound: child.outbound_spi,
            }
        } else if let IkeEvent::IkeRekeyed {
            new_spi_i,
            new_spi_r,
            ..
        } = e
        {
            Ev::IkeRekeyed {
                spi_i: new_spi_i,
                spi_r: new_spi_r,
            }
        } else {
            Ev::Other(format!("{e:?}"))
        };
        eprintln!("isthmus: {ev:?}");
        self.events.push(ev);
    }

    /// One pass: every datagram waiting, the timers, the events.
    pub fn poll(&mut self) -> bool {
        let mut any = false;
        let mut buf = vec![0u8; 65_536];
        let local = gw_addr(GW_PORT);
        while let Ok((n, from)) = self.sock.recv_from(&mut buf) {
            any = true;
            let d = buf[..n].to_vec();
            // The gateway port's demultiplexing: the non-ESP marker, then our inbound SPIs,
            // the keepalive, then a bare IKEv2 header (version 2.0 at byte 17).
            let ours = spi_of(&d).is_some_and(|spi| self.inbound.iter().any(|(s, ..)| *s == spi));
            match classify(&d) {
                Datagram::Ike(m) => self.on_ike(local, from, m),
                Datagram::Esp(p) if ours => self.on_esp(p),
                Datagram::Keepalive => self.record("esp", "keepalive.bin".into(), &d),
                _ if d.len() >= 28 && d[17] == 0x20 => self.on_ike(local, from, &d),
                _ => eprintln!("isthmus: a datagram of {n} bytes from {from} dropped"),
            }
        }
        let now = Instant::now();
        match &mut self.side {
            Side::Init(i) => {
                if let Some(out) = i.handle_timeout(now) {
                    self.send_ike(&out, Self::initiator_target(&out));
                }
            }
            Side::Resp(r) => {
                for (to, out) in r.handle_timeout(now) {
                    self.send_ike(&out, to);
                }
            }
        }
        loop {
            let e = match &mut self.side {
                Side::Init(i) => i.poll_event(),
                Side::Resp(r) => r.poll_event().map(|(_, e)| e),
            };
            let Some(e) = e else { break };
            self.on_event(e);
        }
        any
    }

    /// Runs the loop until `f` holds of the events, or panics after `timeout` with `swan`'s log.
    pub fn until(&mut self, swan: &StrongSwan, timeout: Duration, f: impl Fn(&[Ev]) -> bool) {
        let until = Instant::now() + timeout;
        while !f(&self.events) {
            assert!(
                Instant::now() < until,
                "timed out; Isthmus events {:?}\nstrongSwan:\n{}",
                self.events,
                swan.log()
            );
            if !self.poll() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Runs the loop (the gateway keeps answering) until strongSwan's IKE SAs satisfy `f`;
    /// returns them, or panics after `timeout` with strongSwan's listing and log.
    pub fn wait_swan(
        &mut self,
        swan: &StrongSwan,
        what: &str,
        timeout: Duration,
        f: impl Fn(&[IkeSaInfo]) -> bool,
    ) -> Vec<IkeSaInfo> {
        let until = Instant::now() + timeout;
        loop {
            let sas = swan.sas();
            if f(&sas) {
                return sas;
            }
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}; SAs: {}\n{}",
                swan.list_sas(),
                swan.log()
            );
            self.run_for(Duration::from_millis(50));
        }
    }

    /// [`Gw::wait_swan`] for one IKE SA satisfying `f`.
    pub fn wait_swan_sa(
        &mut self,
        swan: &StrongSwan,
        what: &str,
        f: impl Fn(&IkeSaInfo) -> bool,
    ) -> IkeSaInfo {
        self.wait_swan(swan, what, Duration::from_secs(5), |sas| sas.iter().any(&f))
            .into_iter()
            .find(|s| f(s))
            .expect("found above")
    }

    /// Runs the loop for `d`.
    pub fn run_for(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if !self.poll() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    pub fn established(&self) -> Option<(u64, u64, IkeSuite, Option<ChildSpis>)> {
        self.events.iter().find_map(|e| match e {
            Ev::Established {
                spi_i,
                spi_r,
                suite,
                child,
                ..
            } => Some((*spi_i, *spi_r, *suite, *child)),
            _ => None,
        })
    }

    pub fn request(&mut self, r: Request) {
        let now = Instant::now();
        let out = match &mut self.side {
            Side::Init(i) => i.request(r, &mut self.os, now).expect("request"),
            Side::Resp(_) => None,
        };
        if let Some(out) = out {
            self.send_ike(&out, ss(4500));
        }
    }

    /// Seals an ICMP echo request from the gateway's host to strongSwan's and waits for the
    /// reply through ESP; returns it.
    pub fn ping(&mut self, swan: &StrongSwan, seq: u16) -> Vec<u8> {
        let echo = icmp_echo(GW_HOST, SS_HOST, 0x1717, seq);
        let mut out = Vec::new();
        self.outbound
            .as_mut()
            .expect("a CHILD SA")
            .seal(&echo, NEXT_IPV4, &mut out)
            .expect("seal");
        self.sock.send_to(&out, ss(4500)).expect("send ESP");
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(p) = self.received.iter().find(|p| is_echo_reply(p, seq)) {
                return p.clone();
            }
            assert!(
                Instant::now() < until,
                "no echo reply through ESP; received {:?}\n{}",
                self.received,
                swan.log()
            );
            if !self.poll() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Writes the datagrams strongSwan sent under worker/tests/corpus/ when asked to.
    pub fn write_corpus(&self) {
        if std::env::var_os("ISTHMUS_WRITE_CORPUS").is_none() {
            return;
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
        for (name, bytes) in &self.seen {
            let p = root.join(name);
            if !p.exists() {
                std::fs::create_dir_all(p.parent().expect("dir")).expect("corpus dir");
                std::fs::write(&p, bytes).expect("corpus file");
            }
        }
    }
}

pub fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IPv4 ICMP echo request.
pub fn icmp_echo(src: &str, dst: &str, id: u16, seq: u16) -> Vec<u8> {
    let (src, dst): (Ipv4Addr, Ipv4Addr) = (src.parse().expect("src"), dst.parse().expect("dst"));
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"isthmus interop echo");
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34, 0, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&icmp);
    ip
}

/// Whether `p` is the echo reply from strongSwan's host to ours with this sequence number.
pub fn is_echo_reply(p: &[u8], seq: u16) -> bool {
    let src: Ipv4Addr = SS_HOST.parse().expect("src");
    let dst: Ipv4Addr = GW_HOST.parse().expect("dst");
    p.len() >= 28
        && p[0] == 0x45
        && p[9] == 1
        && p[12..16] == src.octets()
        && p[16..20] == dst.octets()
        && p[20] == 0
        && p[26..28] == seq.to_be_bytes()
}
