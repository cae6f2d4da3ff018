//! What `isthmus-client connect` reads from a client package: the peer to relay and its
//! endpoints (the TCP transport's, or a redundant gateway's two instances' UDP endpoints), and
//! the copy of the package whose peer `Endpoint` names the local relay (`--write-config`).

use std::net::SocketAddr;

use isthmus_shared::device::{key_value, parse_wg_quick};
use isthmus_shared::tcp_transport::TCP_ENDPOINT_KEY;

use crate::connect::{ConfigPeer, ConnectError, UDP_ENDPOINT_KEY};

/// The peers of a wg-quick configuration ([`isthmus_shared::device::parse_wg_quick`]).
pub fn parse_peers(config: &str) -> Vec<ConfigPeer> {
    parse_wg_quick(config).peers
}

/// What `connect` relays: the chosen peer, its TCP endpoint and the gateway's UDP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub peer: ConfigPeer,
    /// `host:port` of the worker's TCP transport.
    pub tcp_endpoint: String,
    /// Issue 16: the TCP transport of a redundant gateway's other instance (the package's
    /// `# FailoverTcpEndpoint`), where the relay goes when `tcp_endpoint` drops or stays
    /// silent.
    pub failover_tcp_endpoint: Option<String>,
    /// The gateway's UDP port on the worker (from the peer's endpoint); both instances of a
    /// redundant gateway listen on it.
    pub gateway_port: u16,
}

impl Plan {
    /// The TCP endpoints in the order they are tried: the active instance's first.
    pub fn tcp_endpoints(&self) -> Vec<String> {
        let mut out = vec![self.tcp_endpoint.clone()];
        if let Some(f) = &self.failover_tcp_endpoint
            && *f != self.tcp_endpoint
        {
            out.push(f.clone());
        }
        out
    }
}

/// What `connect --udp` relays: the chosen peer and its gateway's instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPlan {
    pub peer: ConfigPeer,
    /// `host:port` of every instance: the `Endpoint` (or the `# UdpEndpoint` a
    /// `--write-config` file keeps), then the `# FailoverEndpoint`.
    pub instances: Vec<String>,
}

fn choose_peer<'p>(
    peers: &'p [ConfigPeer],
    peer: Option<&str>,
    prefer: impl Fn(&ConfigPeer) -> bool,
) -> Result<&'p ConfigPeer, ConnectError> {
    if peers.is_empty() {
        return Err(ConnectError::Config(
            "the configuration has no [Peer] section: give the file `isthmus-client enrol` wrote"
                .to_owned(),
        ));
    }
    match peer {
        Some(k) => peers.iter().find(|p| p.public_key == k).ok_or_else(|| {
            ConnectError::Config(format!(
                "no [Peer] with PublicKey = {k} in the configuration; its peers are: {}",
                peers
                    .iter()
                    .map(|p| p.public_key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }),
        None => peers
            .iter()
            .find(|p| prefer(p))
            .or(peers.first())
            .ok_or_else(|| ConnectError::Config("no peer".to_owned())),
    }
}

/// Chooses the peer (`peer` by public key, else the first: the home gateway) and its
/// gateway's instances, for the UDP relay.
pub fn plan_udp(config: &str, peer: Option<&str>) -> Result<UdpPlan, ConnectError> {
    let peers = parse_peers(config);
    let chosen = choose_peer(&peers, peer, |_| true)?;
    let instances: Vec<String> = chosen
        .instance_endpoints()
        .into_iter()
        .map(str::to_owned)
        .collect();
    if instances.is_empty() {
        return Err(ConnectError::Config(format!(
            "peer {} has no Endpoint: the gateway has no public endpoint yet",
            chosen.public_key
        )));
    }
    Ok(UdpPlan {
        peer: chosen.clone(),
        instances,
    })
}

/// Chooses the peer (`peer` by public key, else the first with a TCP endpoint, else the
/// first) and where to reach it over TCP (`tcp` overrides the configuration's comment).
pub fn plan(config: &str, peer: Option<&str>, tcp: Option<&str>) -> Result<Plan, ConnectError> {
    let peers = parse_peers(config);
    let chosen = choose_peer(&peers, peer, |p| p.tcp_endpoint.is_some())?;
    let gw = chosen.gateway_endpoint().ok_or_else(|| {
        ConnectError::Config(format!(
            "peer {} has no Endpoint: the gateway has no public endpoint yet",
            chosen.public_key
        ))
    })?;
    let gateway_port = gw
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .ok_or_else(|| {
            ConnectError::Config(format!(
                "peer {}'s endpoint {gw} has no port (expected HOST:PORT)",
                chosen.public_key
            ))
        })?;
    let tcp_endpoint = tcp
        .map(str::to_owned)
        .or_else(|| chosen.tcp_endpoint.clone())
        .ok_or_else(|| {
            ConnectError::Config(format!(
                "peer {} names no TCP endpoint (no `# {TCP_ENDPOINT_KEY} = ...` line): pass --tcp HOST:PORT, or --udp to relay over UDP",
                chosen.public_key
            ))
        })?;
    Ok(Plan {
        peer: chosen.clone(),
        tcp_endpoint,
        failover_tcp_endpoint: chosen.failover_tcp_endpoint.clone(),
        gateway_port,
    })
}

/// `config` with peer `public_key`'s `Endpoint` pointing at `local` (the original kept as a
/// `# UdpEndpoint = ...` comment so `connect` can read this file again).
pub fn adjusted_config(config: &str, public_key: &str, local: SocketAddr) -> String {
    let mut out = String::with_capacity(config.len() + 64);
    let mut current_key: Option<String> = None;
    // Lines of the current [Peer] section; flushed when the section ends.
    let mut section: Vec<String> = Vec::new();
    let flush = |section: &mut Vec<String>, key: &Option<String>, out: &mut String| {
        let ours = key.as_deref() == Some(public_key);
        let had_comment = section
            .iter()
            .any(|l| key_value(l, true).is_some_and(|(k, _)| k == UDP_ENDPOINT_KEY));
        for l in section.drain(..) {
            match key_value(&l, false) {
                Some((k, v)) if ours && k.eq_ignore_ascii_case("Endpoint") => {
                    if !had_comment {
                        out.push_str(&format!("# {UDP_ENDPOINT_KEY} = {v}\n"));
                    }
                    out.push_str(&format!("Endpoint = {local}\n"));
                }
                _ => {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
        }
    };
    for line in config.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            flush(&mut section, &current_key, &mut out);
            current_key = None;
        }
        if let Some((k, v)) = key_value(t, false)
            && k.eq_ignore_ascii_case("PublicKey")
        {
            current_key = Some(v.to_owned());
        }
        section.push(line.to_owned());
    }
    flush(&mut section, &current_key, &mut out);
    out
}
