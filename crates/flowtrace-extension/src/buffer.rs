//! A buffer of OTLP payloads bounded in bytes. When a payload does not fit, the oldest ones
//! are dropped (and counted) to make room: the function is never blocked.

use std::collections::VecDeque;

use bytes::Bytes;

/// Which OTLP signal a payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `/v1/traces`.
    Traces,
    /// `/v1/metrics`.
    Metrics,
    /// `/v1/logs`.
    Logs,
}

impl Signal {
    /// The OTLP/HTTP path.
    pub fn path(self) -> &'static str {
        match self {
            Self::Traces => "/v1/traces",
            Self::Metrics => "/v1/metrics",
            Self::Logs => "/v1/logs",
        }
    }
}

/// How a payload is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Format {
    /// The `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// One payload: an uncompressed OTLP export request body, passed through as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The signal.
    pub signal: Signal,
    /// The encoding.
    pub format: Format,
    /// The body.
    pub body: Bytes,
}

/// Counters of what went through the buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferCounters {
    /// Payloads accepted.
    pub pushed: u64,
    /// Payloads dropped to make room (or too large to ever fit).
    pub dropped_items: u64,
    /// Bytes dropped.
    pub dropped_bytes: u64,
}

/// The buffer.
#[derive(Debug)]
pub struct Buffer {
    items: VecDeque<Item>,
    bytes: usize,
    max_bytes: usize,
    counters: BufferCounters,
}

impl Buffer {
    /// An empty buffer holding at most `max_bytes` of payload.
    pub fn new(max_bytes: usize) -> Self {
        Self { items: VecDeque::new(), bytes: 0, max_bytes, counters: BufferCounters::default() }
    }

    /// Adds a payload, dropping the oldest until it fits. Returns how many were dropped.
    /// A payload larger than the whole bound is itself dropped.
    pub fn push(&mut self, item: Item) -> usize {
        let size = item.body.len();
        if size > self.max_bytes {
            self.counters.dropped_items += 1;
            self.counters.dropped_bytes += size as u64;
            return 1;
        }
        let mut dropped = 0;
        while self.bytes + size > self.max_bytes {
            let Some(old) = self.items.pop_front() else { break };
            self.bytes -= old.body.len();
            self.counters.dropped_items += 1;
            self.counters.dropped_bytes += old.body.len() as u64;
            dropped += 1;
        }
        self.bytes += size;
        self.items.push_back(item);
        self.counters.pushed += 1;
        dropped
    }

    /// Takes everything, oldest first.
    pub fn drain(&mut self) -> Vec<Item> {
        self.bytes = 0;
        self.items.drain(..).collect()
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Payloads held now.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The counters so far.
    pub fn counters(&self) -> BufferCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(len: usize, tag: u8) -> Item {
        Item { signal: Signal::Traces, format: Format::Protobuf, body: Bytes::from(vec![tag; len]) }
    }

    #[test]
    fn drops_oldest_when_full() {
        let mut buffer = Buffer::new(10);
        assert_eq!(buffer.push(item(4, 1)), 0);
        assert_eq!(buffer.push(item(4, 2)), 0);
        assert_eq!(buffer.push(item(4, 3)), 1);
        assert_eq!(buffer.bytes(), 8);
        let tags: Vec<u8> = buffer.drain().iter().map(|i| i.body[0]).collect();
        assert_eq!(tags, [2, 3]);
        assert_eq!(buffer.counters().dropped_items, 1);
        assert_eq!(buffer.counters().dropped_bytes, 4);
        assert_eq!(buffer.bytes(), 0);
    }

    #[test]
    fn oversize_item_is_dropped_and_keeps_the_rest() {
        let mut buffer = Buffer::new(10);
        buffer.push(item(5, 1));
        assert_eq!(buffer.push(item(11, 2)), 1);
        assert_eq!(buffer.len(), 1);
        assert_eq!(buffer.counters().dropped_bytes, 11);
    }
}
