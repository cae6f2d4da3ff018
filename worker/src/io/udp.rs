//! The gateways' UDP sockets: binding a port (large buffers, batched I/O through quinn-udp,
//! and the two-socket `SO_REUSEPORT` group whose BPF program keeps handshake floods off the
//! data queue), sending one datagram or a GSO batch, and reading the kernel's receive-queue
//! drops per port.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use quinn_udp::{UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Socket buffer size asked of the kernel (it caps this at `net.core.{r,w}mem_max`).
const SOCKET_BUFFER: usize = 4 << 20;

/// Receive-queue drops of the UDP sockets of this network namespace, summed per local port
/// (`/proc/net/udp` and `udp6`: the last column of each socket's line).
pub(super) fn udp_drops_by_port() -> BTreeMap<u16, u64> {
    let mut drops = BTreeMap::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1).and_then(|l| l.rsplit(':').next());
            let (Some(port), Some(dropped)) = (
                local.and_then(|p| u16::from_str_radix(p, 16).ok()),
                fields.last().and_then(|d| d.parse::<u64>().ok()),
            ) else {
                continue;
            };
            *drops.entry(port).or_insert(0) += dropped;
        }
    }
    drops
}

/// Opens a UDP socket with large buffers, set up for batched I/O (GRO when the kernel has it).
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<(UdpSocket, UdpSocketState)> {
    bind_udp_with(addr, false)
}

/// A gateway's port as two sockets in one `SO_REUSEPORT` group: the kernel's classic BPF
/// program of the group sends what established tunnels need (data, handshake responses and
/// cookie replies: first byte 4, 2 or 3) to the first socket and everything else (handshake
/// initiations, garbage) to the second, so each has its own receive queue. A flood of
/// initiations or garbage then overflows only its own queue: the kernel drops the flood, not
/// the established tunnels' data (issue #16; the core bounds what it does with the
/// initiations it reads, [`Core::is_handshake`], and the second socket's reader pauses until
/// the next tick when the tick's budget is spent). `None` for the second socket when the
/// kernel refuses any of it: one socket for everything, as before. (`SO_REUSEPORT` also lets
/// another process of the worker's user join the port; a second worker on one port is a
/// misconfiguration either way.)
pub(super) fn bind_port(addr: SocketAddr) -> std::io::Result<(Bound, Option<Bound>)> {
    let Ok(data) = bind_udp_with(addr, true) else {
        return Ok((bind_udp(addr)?, None));
    };
    let handshakes = bind_udp_with(addr, true).and_then(|h| {
        steer_initiations(&data.0)?;
        Ok(h)
    });
    match handshakes {
        Ok(h) => Ok((data, Some(h))),
        Err(e) => {
            tracing::debug!(%addr, error = %e, "no receive queue of their own for handshakes");
            Ok((data, None))
        }
    }
}

pub(super) type Bound = (UdpSocket, UdpSocketState);

/// Attaches the reuseport program to `socket`'s group: index 1 (the untrusted queue) for what
/// can start work without a session: a WireGuard initiation (first byte 1), an IKE message
/// after the non-ESP marker or garbage (first byte 0: the gateway allocates no ESP SPI below
/// 0x02000000, [`crate::core::ipsec::spi_allowed`]) and a bare IKE_SA_INIT (IKEv2 version
/// 0x20 at byte 17, exchange 34 at byte 18); index 0 for the rest: WireGuard data, responses
/// and cookie replies, ESP in UDP, keepalives. A datagram too short for a load goes to 0.
fn steer_initiations(socket: &UdpSocket) -> std::io::Result<()> {
    use nix::libc::{BPF_ABS, BPF_B, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, sock_filter};
    let op = |code: u32, jt: u8, jf: u8, k: u32| sock_filter {
        code: u16::try_from(code).unwrap_or(0),
        jt,
        jf,
        k,
    };
    // The program sees the datagram from its UDP payload on.
    let mut program = [
        op(BPF_LD | BPF_B | BPF_ABS, 0, 0, 0),
        op(BPF_JMP | BPF_JEQ | BPF_K, 6, 0, 1),
        op(BPF_JMP | BPF_JEQ | BPF_K, 5, 0, 0),
        op(BPF_LD | BPF_B | BPF_ABS, 0, 0, 18),
        op(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 34),
        op(BPF_LD | BPF_B | BPF_ABS, 0, 0, 17),
        op(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 0x20),
        op(BPF_RET | BPF_K, 0, 0, 0),
        op(BPF_RET | BPF_K, 0, 0, 1),
    ];
    let fprog = nix::libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    nix::sys::socket::setsockopt(
        socket,
        nix::sys::socket::sockopt::AttachReusePortCbpf,
        &fprog,
    )
    .map_err(std::io::Error::from)
}

fn bind_udp_with(addr: SocketAddr, reuse_port: bool) -> std::io::Result<Bound> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if let Err(e) = s.set_recv_buffer_size(SOCKET_BUFFER) {
        tracing::debug!(error = %e, "cannot enlarge the UDP receive buffer");
    }
    if let Err(e) = s.set_send_buffer_size(SOCKET_BUFFER) {
        tracing::debug!(error = %e, "cannot enlarge the UDP send buffer");
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    let state = UdpSocketState::new(UdpSockRef::from(&s))?;
    tracing::debug!(%addr, gso_segments = state.max_gso_segments(), gro_segments = state.gro_segments(), "UDP batching");
    Ok((UdpSocket::from_std(s.into())?, state))
}

/// Sends one datagram, or a GSO batch of `segment_size`-byte datagrams (the last may be
/// shorter), waiting while the socket buffer is full.
pub(super) async fn send_udp(
    socket: &UdpSocket,
    state: &UdpSocketState,
    dst: SocketAddr,
    contents: &[u8],
    segment_size: Option<usize>,
) {
    let t = quinn_udp::Transmit {
        destination: dst,
        ecn: None,
        contents,
        segment_size,
        src_ip: None,
    };
    loop {
        match socket.try_io(Interest::WRITABLE, || {
            state.try_send(UdpSockRef::from(socket), &t)
        }) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if socket.writable().await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Lost like any datagram; if the kernel refused GSO, quinn-udp stops using it.
                tracing::trace!(error = %e, "UDP send failed");
                return;
            }
        }
    }
}
