//! Issue 16: the worker's heartbeat socket (`--heartbeat-port`, on `--bind-address`): the
//! failover heartbeats of every gateway instance this worker runs arrive and leave here, worker
//! to worker, without the server. The reader hands each datagram to the core
//! ([`crate::core::Core::handle_heartbeat`]), which finds the instance by the gateway the
//! datagram names; the heartbeats the core wants sent leave through [`DataPlane::flush`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;

use crate::core::failover::BootId;
use crate::core::failover::wire::{BOOT_ID_LEN, MAX_LEN};

use super::{DataPlane, drain, lock};

/// Binds the heartbeat socket (a plain UDP socket: a few datagrams a second per gateway).
pub fn bind_heartbeat(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let s = std::net::UdpSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// A random boot id for this run of the worker (its instances' heartbeats carry it, so a
/// partner can tell a restart from a replay). Falls back to the clock and the process id if
/// the system's random source fails.
pub(super) fn random_boot_id() -> BootId {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; BOOT_ID_LEN];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = (nanos ^ (u128::from(std::process::id()) << 96)).to_be_bytes();
        tracing::warn!(
            "the system's random source failed: the instances' boot id comes from the clock"
        );
    }
    BootId(b)
}

impl DataPlane {
    /// Serves the heartbeat socket: reads heartbeats into the core and sends the core's.
    pub fn serve_heartbeats(&self, socket: std::net::UdpSocket) -> std::io::Result<()> {
        let socket = Arc::new(UdpSocket::from_std(socket)?);
        *lock(&self.shared.heartbeat) = Some(Arc::clone(&socket));
        let dp = self.clone();
        tokio::spawn(async move { dp.run_heartbeats(socket).await });
        Ok(())
    }

    async fn run_heartbeats(self, socket: Arc<UdpSocket>) {
        // Longer datagrams are not heartbeats: truncated, they fail the parser and are counted.
        let mut buf = vec![0u8; MAX_LEN + 1];
        loop {
            let (n, src) = match socket.recv_from(&mut buf).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::trace!(error = %e, "heartbeat receive error");
                    continue;
                }
            };
            let out = {
                let mut core = lock(&self.shared.core);
                core.handle_heartbeat(src, buf.get(..n).unwrap_or_default(), Instant::now());
                drain(&mut core)
            };
            // An answer may be due before the timer's current deadline.
            self.shared.timer_wake.notify_one();
            self.flush(out).await;
        }
    }
}
