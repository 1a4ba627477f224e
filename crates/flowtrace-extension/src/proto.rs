//! Just enough protobuf for OTLP, without a code generator.
//!
//! - [`scan_trace_request`] walks an `ExportTraceServiceRequest` down to each span's ids
//!   without copying or decoding anything else: the bytes are then forwarded unchanged.
//! - [`check_message`] checks the framing of any message's top level (metrics, logs).
//! - [`Writer`] encodes the few spans the extension makes itself.
//!
//! Protobuf messages concatenate: two encoded `ExportTraceServiceRequest`s back to back
//! decode as one whose `resource_spans` are both lists. The exporter batches that way.

use thiserror::Error;

/// A body that is not valid protobuf framing.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScanError {
    /// A varint runs past the end or over 10 bytes.
    #[error("truncated or overlong varint at byte {0}")]
    Varint(usize),
    /// A length-delimited or fixed field runs past the end.
    #[error("field at byte {0} runs past the end of its message")]
    Truncated(usize),
    /// Wire types 3, 4 (groups), 6 and 7 do not occur in OTLP.
    #[error("unsupported wire type {wire_type} at byte {at}")]
    WireType {
        /// The wire type found.
        wire_type: u64,
        /// Where.
        at: usize,
    },
    /// Field number 0 is invalid.
    #[error("field number 0 at byte {0}")]
    FieldZero(usize),
}

/// One field's value as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Fixed32,
    Bytes(&'a [u8]),
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, ScanError> {
    let start = *pos;
    let mut value = 0u64;
    for shift in 0..10 {
        let Some(&byte) = buf.get(*pos) else { return Err(ScanError::Varint(start)) };
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (shift * 7);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(ScanError::Varint(start))
}

/// Iterates over the fields of one message.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn next_field(&mut self) -> Option<Result<(u64, Value<'a>), ScanError>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        Some(self.read_field())
    }

    fn take(&mut self, len: usize, at: usize) -> Result<&'a [u8], ScanError> {
        let end = self.pos.checked_add(len).ok_or(ScanError::Truncated(at))?;
        let slice = self.buf.get(self.pos..end).ok_or(ScanError::Truncated(at))?;
        self.pos = end;
        Ok(slice)
    }

    fn read_field(&mut self) -> Result<(u64, Value<'a>), ScanError> {
        let at = self.pos;
        let key = read_varint(self.buf, &mut self.pos)?;
        let number = key >> 3;
        if number == 0 {
            return Err(ScanError::FieldZero(at));
        }
        let value = match key & 7 {
            0 => Value::Varint(read_varint(self.buf, &mut self.pos)?),
            1 => {
                self.take(8, at)?;
                Value::Fixed64
            }
            2 => {
                let len = read_varint(self.buf, &mut self.pos)?;
                let len = usize::try_from(len).map_err(|_| ScanError::Truncated(at))?;
                Value::Bytes(self.take(len, at)?)
            }
            5 => {
                self.take(4, at)?;
                Value::Fixed32
            }
            wire_type => return Err(ScanError::WireType { wire_type, at }),
        };
        Ok((number, value))
    }
}

/// Checks that `buf` is a well-framed message at its top level.
pub fn check_message(buf: &[u8]) -> Result<(), ScanError> {
    let mut fields = Fields::new(buf);
    while let Some(field) = fields.next_field() {
        field?;
    }
    Ok(())
}

/// A span's ids, as raw bytes (16 and 8 bytes when well-formed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanIds<'a> {
    /// `Span.trace_id`.
    pub trace_id: &'a [u8],
    /// `Span.span_id`.
    pub span_id: &'a [u8],
}

/// Walks `ExportTraceServiceRequest.resource_spans[].scope_spans[].spans[]` and calls
/// `on_span` with each span's ids. Returns the number of spans.
pub fn scan_trace_request<'a>(buf: &'a [u8], mut on_span: impl FnMut(SpanIds<'a>)) -> Result<usize, ScanError> {
    let mut count = 0;
    let mut request = Fields::new(buf);
    while let Some(field) = request.next_field() {
        let (1, Value::Bytes(resource_spans)) = field? else { continue };
        let mut resource_spans = Fields::new(resource_spans);
        while let Some(field) = resource_spans.next_field() {
            let (2, Value::Bytes(scope_spans)) = field? else { continue };
            let mut scope_spans = Fields::new(scope_spans);
            while let Some(field) = scope_spans.next_field() {
                let (2, Value::Bytes(span)) = field? else { continue };
                let mut ids = SpanIds { trace_id: &[], span_id: &[] };
                let mut span = Fields::new(span);
                while let Some(field) = span.next_field() {
                    match field? {
                        (1, Value::Bytes(trace_id)) => ids.trace_id = trace_id,
                        (2, Value::Bytes(span_id)) => ids.span_id = span_id,
                        _ => {}
                    }
                }
                count += 1;
                on_span(ids);
            }
        }
    }
    Ok(count)
}

/// A protobuf encoder for the handful of messages the extension writes.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            // Truncation to the low 7 bits is the encoding.
            #[allow(clippy::cast_possible_truncation)]
            self.buf.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        #[allow(clippy::cast_possible_truncation)]
        self.buf.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire_type));
    }

    /// A length-delimited field (bytes, string or embedded message).
    pub fn bytes(&mut self, field: u32, value: &[u8]) {
        self.key(field, 2);
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    /// A string field.
    pub fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    /// A varint field (uint64, int64 as two's complement, enum, bool).
    pub fn uint(&mut self, field: u32, value: u64) {
        self.key(field, 0);
        self.varint(value);
    }

    /// A fixed64 field.
    pub fn fixed64(&mut self, field: u32, value: u64) {
        self.key(field, 1);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// A bare little-endian fixed64, for packed repeated fields.
    pub fn raw_fixed64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// A double field.
    pub fn double(&mut self, field: u32, value: f64) {
        self.fixed64(field, value.to_bits());
    }

    /// An embedded message, written by `build`.
    pub fn message(&mut self, field: u32, build: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::new();
        build(&mut inner);
        self.bytes(field, &inner.buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut w = Writer::new();
            w.varint(value);
            let bytes = w.into_bytes();
            let mut pos = 0;
            assert_eq!(read_varint(&bytes, &mut pos), Ok(value));
            assert_eq!(pos, bytes.len());
        }
    }

    fn request_with_spans(ids: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut w = Writer::new();
        w.message(1, |rs| {
            rs.message(1, |res| res.message(1, |kv| kv.string(1, "service.name")));
            rs.message(2, |ss| {
                ss.message(1, |scope| scope.string(1, "s"));
                for (trace_id, span_id) in ids {
                    ss.message(2, |span| {
                        span.bytes(1, trace_id);
                        span.bytes(2, span_id);
                        span.string(5, "name");
                        span.fixed64(7, 1);
                    });
                }
            });
        });
        w.into_bytes()
    }

    #[test]
    fn scans_span_ids() {
        let body = request_with_spans(&[(&[1; 16], &[2; 8]), (&[3; 16], &[4; 8])]);
        let mut seen = Vec::new();
        let count = scan_trace_request(&body, |ids| seen.push((ids.trace_id.to_vec(), ids.span_id.to_vec()))).unwrap();
        assert_eq!(count, 2);
        assert_eq!(seen[1], (vec![3; 16], vec![4; 8]));
    }

    #[test]
    fn concatenated_requests_scan_as_one() {
        let mut body = request_with_spans(&[(&[1; 16], &[2; 8])]);
        body.extend(request_with_spans(&[(&[5; 16], &[6; 8])]));
        assert_eq!(scan_trace_request(&body, |_| {}).unwrap(), 2);
    }

    #[test]
    fn truncation_is_an_error() {
        let body = request_with_spans(&[(&[1; 16], &[2; 8])]);
        assert!(scan_trace_request(&body[..body.len() - 3], |_| {}).is_err());
        assert!(scan_trace_request(&[], |_| {}).is_ok());
        assert!(check_message(&[0x0b]).is_err());
    }
}
