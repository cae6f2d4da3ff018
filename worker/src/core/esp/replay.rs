//! The receiver's anti-replay window (RFC 4303 3.4.3), as a bitmap of [`WINDOW`] sequence
//! numbers below the highest one accepted. A packet is checked before its integrity check and
//! the window moves only after it passed ([`Window::check`], then [`Window::accept`]).

/// The window's size in packets (RFC 4303 3.4.3 asks for at least 32, recommends 64; a
/// multi-gigabit tunnel reorders more, so 1024).
pub const WINDOW: u32 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// Why a sequence number is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("sequence number 0 is never sent (RFC 4303 3.3.3)")]
    Zero,
    #[error("sequence number already received")]
    Replayed,
    #[error("sequence number below the window")]
    TooOld,
}

/// The window: `top` is the highest sequence number accepted; bit i of the bitmap is
/// sequence number `top - i`.
#[derive(Debug, Clone, Default)]
pub struct Window {
    top: u32,
    bits: [u64; WORDS],
}

impl Window {
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest sequence number accepted so far (0: none).
    pub fn top(&self) -> u32 {
        self.top
    }

    fn bit(&self, offset: u32) -> bool {
        let (w, b) = ((offset / 64) as usize, offset % 64);
        self.bits.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    fn set(&mut self, offset: u32) {
        let (w, b) = ((offset / 64) as usize, offset % 64);
        if let Some(x) = self.bits.get_mut(w) {
            *x |= 1 << b;
        }
    }

    /// Whether `seq` may be new: above the window, or inside it and not seen.
    pub fn check(&self, seq: u32) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::Zero);
        }
        if seq > self.top {
            return Ok(());
        }
        let offset = self.top - seq;
        if offset >= WINDOW {
            return Err(ReplayError::TooOld);
        }
        if self.bit(offset) {
            return Err(ReplayError::Replayed);
        }
        Ok(())
    }

    /// Records `seq` (which passed [`Window::check`] and its integrity check), moving the
    /// window up when it is the highest yet.
    pub fn accept(&mut self, seq: u32) -> Result<(), ReplayError> {
        self.check(seq)?;
        if seq > self.top {
            self.shift(seq - self.top);
            self.top = seq;
        }
        self.set(self.top - seq);
        Ok(())
    }

    /// Moves every bit `n` places up (older), dropping those that leave the window.
    fn shift(&mut self, n: u32) {
        if n >= WINDOW {
            self.bits = [0; WORDS];
            return;
        }
        let (words, bits) = ((n / 64) as usize, n % 64);
        for i in (0..WORDS).rev() {
            let src = i.checked_sub(words);
            let hi = src.and_then(|s| self.bits.get(s)).copied().unwrap_or(0);
            let lo = src
                .and_then(|s| s.checked_sub(1))
                .and_then(|s| self.bits.get(s))
                .copied()
                .unwrap_or(0);
            let v = if bits == 0 {
                hi
            } else {
                (hi << bits) | (lo >> (64 - bits))
            };
            if let Some(x) = self.bits.get_mut(i) {
                *x = v;
            }
        }
    }
}
