//! Who is at the other end: the client's address (login and enrolment throttling) and whether
//! the request reached the server over HTTPS (`Secure` cookies).
//!
//! The peer's socket address comes from the connection (`ConnectInfo`, set by
//! [`crate::serve`](mod@crate::serve)); `X-Forwarded-For` and `X-Forwarded-Proto` count only
//! when that peer is a trusted proxy (`isthmus serve --trusted-proxy ADDR`), so nobody else can
//! pick the address their attempts are counted under.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};

use crate::state::{AppState, Security};

/// Put on every request that came over the server's own TLS listener.
#[derive(Debug, Clone, Copy)]
pub struct ServedOverTls;

/// The client of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address; `None` when the connection did not say (in-process calls).
    pub addr: Option<IpAddr>,
    /// The client spoke HTTPS: to this server's TLS, or to a trusted proxy that says so.
    pub https: bool,
}

impl ClientInfo {
    /// Decides from the connection's extensions and the request's headers.
    pub fn of(extensions: &Extensions, headers: &HeaderMap, security: &Security) -> Self {
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_canonical());
        let own_tls = extensions.get::<ServedOverTls>().is_some();
        let trusted = |ip: &IpAddr| security.trusted_proxies.iter().any(|n| n.contains(ip));
        match peer {
            Some(p) if trusted(&p) => ClientInfo {
                addr: Some(forwarded_for(headers, p, trusted)),
                https: own_tls || forwarded_https(headers),
            },
            _ => ClientInfo {
                addr: peer,
                https: own_tls,
            },
        }
    }

    /// The key attempts are counted under: the IPv4 address, the IPv6 /64 (one host usually
    /// has a whole /64), or `unknown`.
    pub fn key(&self) -> String {
        match self.addr {
            Some(IpAddr::V4(a)) => a.to_string(),
            Some(IpAddr::V6(a)) => {
                let prefix = Ipv6Addr::from(u128::from(a) & !u128::from(u64::MAX));
                format!("{prefix}/64")
            }
            None => "unknown".to_owned(),
        }
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// The client behind a trusted `peer`: the last `X-Forwarded-For` hop that is not itself a
/// trusted proxy (entries to its left could be written by anyone).
fn forwarded_for(headers: &HeaderMap, peer: IpAddr, trusted: impl Fn(&IpAddr) -> bool) -> IpAddr {
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) => {
                client = ip;
                if !trusted(&ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// The trusted proxy says the client spoke HTTPS (its own, last, `X-Forwarded-Proto` value).
fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientInfo::of(
            &parts.extensions,
            &parts.headers,
            state.security(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(peer: &str, xff: Option<&str>, proto: Option<&str>, trusted: &[&str]) -> ClientInfo {
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        let mut h = HeaderMap::new();
        if let Some(x) = xff {
            h.insert("x-forwarded-for", x.parse().unwrap());
        }
        if let Some(p) = proto {
            h.insert("x-forwarded-proto", p.parse().unwrap());
        }
        let security = Security {
            trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
            public_metrics: false,
        };
        ClientInfo::of(&ext, &h, &security)
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let spoofed = info("198.51.100.1:4000", Some("10.9.9.9"), Some("https"), &[]);
        assert_eq!(spoofed.addr, Some("198.51.100.1".parse().unwrap()));
        assert!(!spoofed.https);
        let proxied = info(
            "127.0.0.1:4000",
            Some("6.6.6.6, 203.0.113.5, 10.0.0.2"),
            Some("https"),
            &["127.0.0.1/32", "10.0.0.0/8"],
        );
        assert_eq!(proxied.addr, Some("203.0.113.5".parse().unwrap()));
        assert!(proxied.https);
        let v6 = info("[2001:db8:1:2:3:4:5:6]:1", None, None, &[]);
        assert_eq!(v6.key(), "2001:db8:1:2::/64");
        let mapped = info("[::ffff:192.0.2.7]:1", None, None, &[]);
        assert_eq!(mapped.key(), "192.0.2.7");
    }
}
