//! The initiator's established SAs as an IKE SA rekey sees them (`rekey_ike::Table`).

use super::super::IkeSa;
use super::super::info::Established;
use super::super::rekey_ike::Table;

/// An established IKE SA of ours: the one in use, and during a rekey the old one on its way
/// out or the peer's new one (RFC 7296 2.8).
pub(super) struct Live {
    pub(super) sa: Box<IkeSa>,
    pub(super) est: Established,
}

impl Table for Vec<Live> {
    fn pair(&mut self, ours: u64) -> Option<(&mut IkeSa, &mut Established)> {
        self.iter_mut()
            .find(|l| l.sa.ours() == ours)
            .map(|l| (&mut *l.sa, &mut l.est))
    }

    fn insert(&mut self, sa: Box<IkeSa>, est: Established) {
        self.push(Live { sa, est });
    }

    fn remove(&mut self, ours: u64) {
        self.retain(|l| l.sa.ours() != ours);
    }
}
