//! The breaker's state, packed in one atomic word so that admission is a single load and every
//! HalfOpen slot change is a single compare-and-swap.
//!
//! Layout: bits 0..3 the state, 3..32 the generation (bumped by every transition, so an outcome
//! from an earlier generation is recognised as stale), 32..48 trial calls in flight, 48..64
//! successful trials so far.

use super::State;

pub(crate) const CLOSED: u64 = 0;
pub(crate) const OPEN: u64 = 1;
pub(crate) const HALF_OPEN: u64 = 2;
pub(crate) const FORCED_OPEN: u64 = 3;
pub(crate) const DISABLED: u64 = 4;
pub(crate) const METRICS_ONLY: u64 = 5;

const GEN_BITS: u32 = 29;
const GEN_MASK: u64 = (1 << GEN_BITS) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    pub(crate) fn new(kind: u64, generation: u32, in_flight: u32, successes: u32) -> Self {
        Word(
            kind | (u64::from(generation) & GEN_MASK) << 3
                | u64::from(in_flight & 0xFFFF) << 32
                | u64::from(successes & 0xFFFF) << 48,
        )
    }

    pub(crate) fn kind(self) -> u64 {
        self.0 & 0b111
    }

    pub(crate) fn generation(self) -> u32 {
        // Masked to 29 bits.
        ((self.0 >> 3) & GEN_MASK) as u32
    }

    pub(crate) fn next_generation(self) -> u32 {
        // Wraps within 29 bits: a permit would have to outlive half a billion transitions to
        // be mistaken for a current one.
        self.generation().wrapping_add(1) & GEN_MASK as u32
    }

    pub(crate) fn in_flight(self) -> u32 {
        ((self.0 >> 32) & 0xFFFF) as u32
    }

    pub(crate) fn successes(self) -> u32 {
        ((self.0 >> 48) & 0xFFFF) as u32
    }

    pub(crate) fn with_trials(self, in_flight: u32, successes: u32) -> Self {
        Word::new(self.kind(), self.generation(), in_flight, successes)
    }

    pub(crate) fn state(self) -> State {
        match self.kind() {
            CLOSED => State::Closed,
            OPEN => State::Open,
            HALF_OPEN => State::HalfOpen,
            FORCED_OPEN => State::ForcedOpen,
            DISABLED => State::Disabled,
            _ => State::MetricsOnly,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let w = Word::new(HALF_OPEN, (1 << 29) - 1, 65_535, 12);
        assert_eq!(w.kind(), HALF_OPEN);
        assert_eq!(w.generation(), (1 << 29) - 1);
        assert_eq!(w.next_generation(), 0);
        assert_eq!(w.in_flight(), 65_535);
        assert_eq!(w.successes(), 12);
        let w = w.with_trials(3, 4);
        assert_eq!((w.kind(), w.in_flight(), w.successes()), (HALF_OPEN, 3, 4));
        assert_eq!(w.state(), State::HalfOpen);
    }
}
