//! State shared by the actors: the buffer, the tracker, counters, and wake-ups.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::Notify;

use crate::buffer::{Buffer, Format, Item, Signal};
use crate::config::Config;
use crate::flush::FlushState;
use crate::tracker::Tracker;

/// Locks a mutex, recovering from poisoning (a panic elsewhere must not stop the extension).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Now, in nanoseconds since the Unix epoch.
pub fn now_unix_nano() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Counters, reported at `/flowtrace/v1/stats` and logged at shutdown.
#[derive(Debug, Default)]
pub struct Counters {
    /// OTLP requests accepted.
    pub received_requests: AtomicU64,
    /// Spans in accepted trace requests.
    pub received_spans: AtomicU64,
    /// OTLP requests refused (malformed, too large, wrong type).
    pub rejected_requests: AtomicU64,
    /// Start notices accepted.
    pub notices: AtomicU64,
    /// Telemetry events parsed.
    pub telemetry_events: AtomicU64,
    /// Telemetry batches refused.
    pub telemetry_rejected: AtomicU64,
    /// Invocation spans the extension synthesized.
    pub synthesized_spans: AtomicU64,
    /// Export requests the backend accepted.
    pub exported_requests: AtomicU64,
    /// Bytes in accepted export requests (before compression).
    pub exported_bytes: AtomicU64,
    /// Export requests that failed after their retries (their payloads are dropped).
    pub export_failures: AtomicU64,
    /// Payloads dropped because their export failed.
    pub export_dropped_items: AtomicU64,
    /// Payloads dropped because no endpoint is configured for their signal.
    pub unexported_items: AtomicU64,
}

/// A snapshot of the counters and the buffer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// See [`Counters`].
    pub received_requests: u64,
    /// See [`Counters`].
    pub received_spans: u64,
    /// See [`Counters`].
    pub rejected_requests: u64,
    /// See [`Counters`].
    pub notices: u64,
    /// See [`Counters`].
    pub telemetry_events: u64,
    /// See [`Counters`].
    pub telemetry_rejected: u64,
    /// See [`Counters`].
    pub synthesized_spans: u64,
    /// See [`Counters`].
    pub exported_requests: u64,
    /// See [`Counters`].
    pub exported_bytes: u64,
    /// See [`Counters`].
    pub export_failures: u64,
    /// Payloads dropped: buffer overflow (oldest first) plus failed exports.
    pub dropped_items: u64,
    /// Bytes dropped by buffer overflow.
    pub dropped_bytes: u64,
    /// See [`Counters`].
    pub unexported_items: u64,
    /// Bytes buffered now.
    pub buffered_bytes: u64,
    /// The buffer's bound.
    pub buffer_max_bytes: u64,
}

/// Everything the actors share.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The bounded buffer.
    pub buffer: Mutex<Buffer>,
    /// The invocation tracker.
    pub tracker: Mutex<Tracker>,
    /// Counters.
    pub counters: Counters,
    /// Woken when telemetry or an awaited invocation span arrives.
    pub changed: Notify,
    /// Woken when the buffer passes its high watermark.
    pub pressure: Notify,
    /// Whether an invocation is running.
    pub in_invocation: AtomicBool,
    /// When the extension started, in nanoseconds since the Unix epoch.
    pub started_unix_nano: u64,
    recent_invocations: Mutex<VecDeque<Instant>>,
    last_flush: Mutex<Instant>,
}

impl Shared {
    /// Shared state for `config`.
    pub fn new(config: Config) -> Self {
        let mut tracker = Tracker::new(config.resource.clone(), config.pricing, config.architecture);
        tracker.set_memory_size_mb(config.memory_size_mb);
        Self {
            buffer: Mutex::new(Buffer::new(config.buffer_bytes)),
            tracker: Mutex::new(tracker),
            config,
            counters: Counters::default(),
            changed: Notify::new(),
            pressure: Notify::new(),
            in_invocation: AtomicBool::new(false),
            started_unix_nano: now_unix_nano(),
            recent_invocations: Mutex::new(VecDeque::new()),
            last_flush: Mutex::new(Instant::now()),
        }
    }

    /// Buffers a payload, counting drops.
    pub fn push(&self, signal: Signal, format: Format, body: Bytes) {
        let (dropped, bytes) = {
            let mut buffer = lock(&self.buffer);
            (buffer.push(Item { signal, format, body }), buffer.bytes())
        };
        if dropped > 0 {
            crate::log!(Debug, "buffer full: dropped the {dropped} oldest payload(s)");
        }
        if bytes >= self.config.flush_policy.high_watermark {
            self.pressure.notify_one();
        }
    }

    /// Buffers spans the extension made.
    pub fn push_spans(&self, body: Vec<u8>) {
        self.push(Signal::Traces, Format::Protobuf, Bytes::from(body));
    }

    /// Records an invocation start, for the frequency estimate.
    pub fn invocation_started(&self) {
        self.in_invocation.store(true, Ordering::Relaxed);
        let mut recent = lock(&self.recent_invocations);
        recent.push_back(Instant::now());
        while recent.len() > 8 {
            recent.pop_front();
        }
    }

    /// Records that the last flush started now.
    pub fn flush_started(&self) {
        *lock(&self.last_flush) = Instant::now();
    }

    /// The inputs of the flush decision, now.
    pub fn flush_state(&self) -> FlushState {
        let mean_interval = {
            let recent = lock(&self.recent_invocations);
            match (recent.front(), recent.back()) {
                (Some(first), Some(last)) if recent.len() >= 2 => {
                    let gaps = u32::try_from(recent.len() - 1).unwrap_or(1);
                    // The gap to now counts too: a burst long ago is not "frequent" now.
                    let latest_gap = last.elapsed();
                    Some(((*last - *first) / gaps).max(latest_gap))
                }
                _ => None,
            }
        };
        FlushState {
            buffered_bytes: lock(&self.buffer).bytes(),
            since_last_flush: lock(&self.last_flush).elapsed(),
            mean_interval,
            in_invocation: self.in_invocation.load(Ordering::Relaxed),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (buffer_counters, buffered, max) = {
            let buffer = lock(&self.buffer);
            (buffer.counters(), buffer.bytes(), buffer.max_bytes())
        };
        Stats {
            received_requests: get(&c.received_requests),
            received_spans: get(&c.received_spans),
            rejected_requests: get(&c.rejected_requests),
            notices: get(&c.notices),
            telemetry_events: get(&c.telemetry_events),
            telemetry_rejected: get(&c.telemetry_rejected),
            synthesized_spans: get(&c.synthesized_spans),
            exported_requests: get(&c.exported_requests),
            exported_bytes: get(&c.exported_bytes),
            export_failures: get(&c.export_failures),
            dropped_items: buffer_counters.dropped_items + get(&c.export_dropped_items),
            dropped_bytes: buffer_counters.dropped_bytes,
            unexported_items: get(&c.unexported_items),
            buffered_bytes: buffered as u64,
            buffer_max_bytes: max as u64,
        }
    }
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Waits until `ready()` holds or `timeout` passes; wakes on [`Shared::changed`].
/// Returns whether `ready()` held.
pub async fn wait_until(shared: &Shared, timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if ready() {
            return true;
        }
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep_until(deadline) => return ready(),
        }
    }
}
