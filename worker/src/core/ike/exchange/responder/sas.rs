//! The responder's established SAs as an IKE SA rekey sees them (`rekey_ike::Table`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use super::super::super::nat::Nat;
use super::super::IkeSa;
use super::super::info::Established;
use super::super::rekey_ike::Table;
use super::{Entry, HALF_OPEN_TIMEOUT, State};

/// The responder's SAs as a rekey sees them ([`Table`]): new SAs are the peer's, and every SA
/// touched gets its retransmission timer registered again ([`Sas::sync`]).
pub(super) struct Sas<'a> {
    pub(super) sas: &'a mut HashMap<u64, Entry>,
    pub(super) by_initiator: &'a mut BTreeMap<(SocketAddr, u64), u64>,
    pub(super) expiry: &'a mut BTreeSet<(Instant, u64)>,
    pub(super) timers: &'a mut BTreeSet<(Instant, u64)>,
    pub(super) peer: SocketAddr,
    pub(super) nat: Option<Nat>,
    pub(super) now: Instant,
    pub(super) touched: Vec<u64>,
}

impl Sas<'_> {
    pub(super) fn sync(&mut self) {
        for spi in std::mem::take(&mut self.touched) {
            let Some(e) = self.sas.get_mut(&spi) else {
                continue;
            };
            let want = match &e.state {
                State::Established(est) => est.deadline(),
                State::HalfOpen { .. } => None,
            };
            if want != e.timer {
                if let Some(at) = e.timer {
                    self.timers.remove(&(at, spi));
                }
                if let Some(at) = want {
                    self.timers.insert((at, spi));
                }
                e.timer = want;
            }
        }
    }
}

impl Table for Sas<'_> {
    fn pair(&mut self, ours: u64) -> Option<(&mut IkeSa, &mut Established)> {
        self.touched.push(ours);
        match self.sas.get_mut(&ours) {
            Some(Entry {
                sa,
                state: State::Established(est),
                ..
            }) => Some((&mut **sa, &mut **est)),
            _ => None,
        }
    }

    fn insert(&mut self, sa: Box<IkeSa>, est: Established) {
        let ours = sa.ours();
        if self.sas.contains_key(&ours) {
            // A 64-bit SPI drawn twice: the new SA is dropped (its rekey fails).
            tracing::warn!(peer = %self.peer, "rekeyed IKE SA dropped: its SPI is taken");
            return;
        }
        self.by_initiator.insert((self.peer, sa.spi_i), ours);
        self.sas.insert(
            ours,
            Entry {
                peer: self.peer,
                nat: self.nat,
                sa,
                state: State::Established(Box::new(est)),
                created: self.now,
                timer: None,
            },
        );
        self.touched.push(ours);
    }

    fn remove(&mut self, ours: u64) {
        remove_entry(self.sas, self.by_initiator, self.expiry, self.timers, ours);
    }
}

pub(super) fn remove_entry(
    sas: &mut HashMap<u64, Entry>,
    by_initiator: &mut BTreeMap<(SocketAddr, u64), u64>,
    expiry: &mut BTreeSet<(Instant, u64)>,
    timers: &mut BTreeSet<(Instant, u64)>,
    spi: u64,
) {
    if let Some(e) = sas.remove(&spi) {
        by_initiator.remove(&(e.peer, e.sa.spi_i));
        expiry.remove(&(e.created + HALF_OPEN_TIMEOUT, spi));
        if let Some(at) = e.timer {
            timers.remove(&(at, spi));
        }
    }
}
