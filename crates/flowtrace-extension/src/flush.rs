//! When to flush: a pure decision over the buffer and the invocation rhythm.
//!
//! - At the end of an invocation (after `platform.runtimeDone`, before the extension's own
//!   `/next`) when invocations are rare: the environment may be frozen right after.
//! - In the background while invocations are frequent: the end of an invocation does not
//!   wait for the export unless the last flush is older than the background interval.
//! - On the periodic tick, once the last flush is older than the background interval: this
//!   catches what arrives after the extension went back to `/next` (`platform.report`) when
//!   the environment is not frozen.
//! - Always on SHUTDOWN, and whenever the buffer passes its high watermark.

use std::time::Duration;

/// What prompts the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An invocation just ended (its `platform.runtimeDone` arrived or its deadline passed).
    InvocationEnd,
    /// The periodic timer.
    Tick,
    /// Data was just buffered.
    Buffered,
    /// SHUTDOWN.
    Shutdown,
}

/// The tuning knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    /// Invocations arriving on average closer together than this count as frequent.
    pub frequent_below: Duration,
    /// In frequent mode, flush at least this often.
    pub background_interval: Duration,
    /// Flush at once when this many bytes are buffered.
    pub high_watermark: usize,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        Self {
            frequent_below: Duration::from_secs(2),
            background_interval: Duration::from_secs(1),
            high_watermark: 1024 * 1024,
        }
    }
}

/// What the decision looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushState {
    /// Bytes waiting in the buffer.
    pub buffered_bytes: usize,
    /// Time since the last flush started (or since start).
    pub since_last_flush: Duration,
    /// The mean time between recent invocation starts, if there were at least two.
    pub mean_interval: Option<Duration>,
    /// Whether an invocation is running now.
    pub in_invocation: bool,
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushDecision {
    /// Flush now, and (at the end of an invocation) wait for it within the flush budget.
    Now,
    /// Not now.
    Later,
}

/// Whether invocations are frequent under `policy`.
pub fn is_frequent(policy: &FlushPolicy, mean_interval: Option<Duration>) -> bool {
    mean_interval.is_some_and(|interval| interval < policy.frequent_below)
}

/// Decides whether to flush.
///
/// ```
/// use std::time::Duration;
/// use flowtrace_extension::flush::{decide, FlushDecision, FlushPolicy, FlushState, Trigger};
/// let state = FlushState {
///     buffered_bytes: 10,
///     since_last_flush: Duration::from_secs(30),
///     mean_interval: None,
///     in_invocation: false,
/// };
/// assert_eq!(decide(&FlushPolicy::default(), Trigger::InvocationEnd, &state), FlushDecision::Now);
/// ```
pub fn decide(policy: &FlushPolicy, trigger: Trigger, state: &FlushState) -> FlushDecision {
    if state.buffered_bytes == 0 {
        return FlushDecision::Later;
    }
    if state.buffered_bytes >= policy.high_watermark {
        return FlushDecision::Now;
    }
    let frequent = is_frequent(policy, state.mean_interval);
    let due = state.since_last_flush >= policy.background_interval;
    let now = match trigger {
        Trigger::Shutdown => true,
        Trigger::InvocationEnd => !frequent || due,
        Trigger::Tick => due,
        Trigger::Buffered => false,
    };
    if now { FlushDecision::Now } else { FlushDecision::Later }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(bytes: usize, since_ms: u64, interval_ms: Option<u64>, in_invocation: bool) -> FlushState {
        FlushState {
            buffered_bytes: bytes,
            since_last_flush: Duration::from_millis(since_ms),
            mean_interval: interval_ms.map(Duration::from_millis),
            in_invocation,
        }
    }

    const P: FlushPolicy = FlushPolicy {
        frequent_below: Duration::from_secs(2),
        background_interval: Duration::from_secs(1),
        high_watermark: 1000,
    };

    #[test]
    fn empty_buffer_never_flushes() {
        for trigger in [Trigger::InvocationEnd, Trigger::Tick, Trigger::Buffered, Trigger::Shutdown] {
            assert_eq!(decide(&P, trigger, &state(0, 60_000, None, false)), FlushDecision::Later);
        }
    }

    #[test]
    fn shutdown_always_flushes() {
        assert_eq!(decide(&P, Trigger::Shutdown, &state(1, 0, Some(10), true)), FlushDecision::Now);
    }

    #[test]
    fn rare_invocations_flush_at_their_end() {
        assert_eq!(decide(&P, Trigger::InvocationEnd, &state(5, 0, None, false)), FlushDecision::Now);
        assert_eq!(decide(&P, Trigger::InvocationEnd, &state(5, 0, Some(60_000), false)), FlushDecision::Now);
    }

    #[test]
    fn frequent_invocations_defer_to_the_background() {
        assert_eq!(decide(&P, Trigger::InvocationEnd, &state(5, 100, Some(50), false)), FlushDecision::Later);
        assert_eq!(decide(&P, Trigger::InvocationEnd, &state(5, 1500, Some(50), false)), FlushDecision::Now);
    }

    #[test]
    fn ticks_flush_when_due() {
        assert_eq!(decide(&P, Trigger::Tick, &state(5, 10, Some(50), false)), FlushDecision::Later);
        assert_eq!(decide(&P, Trigger::Tick, &state(5, 10, None, true)), FlushDecision::Later);
        assert_eq!(decide(&P, Trigger::Tick, &state(5, 1000, Some(50), true)), FlushDecision::Now);
        assert_eq!(decide(&P, Trigger::Tick, &state(5, 1000, None, false)), FlushDecision::Now);
    }

    #[test]
    fn high_watermark_flushes_whatever_the_trigger() {
        assert_eq!(decide(&P, Trigger::Buffered, &state(1000, 0, Some(1), true)), FlushDecision::Now);
        assert_eq!(decide(&P, Trigger::Buffered, &state(999, 0, Some(1), true)), FlushDecision::Later);
    }
}
