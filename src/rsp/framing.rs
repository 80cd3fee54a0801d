//! Packet framing: the incremental decoder of gdb's byte stream, the packet and notification
//! encoders, and [`Link`], the acknowledgement state of one connection.
//!
//! On the wire a packet is `$payload#cs`, `cs` being the modulo-256 sum of the bytes between
//! `$` and `#` as two hex digits; a notification is the same with `%`. Between packets the
//! stream carries `+` / `-` acknowledgements and the `\x03` interrupt byte. Inside a payload:
//!
//! - `}` escapes the next byte, which is the original XOR `0x20` (gdb escapes `$ # } *` in
//!   binary data);
//! - `c*n` is a run: the wire byte `c` repeated `n - 29` more times. Runs are expanded on
//!   wire bytes *before* unescaping, as gdb's own reader does, so the decoder gives the same
//!   bytes gdb would for any stream gdb's encoder writes.
//!
//! The decoder unescapes and expands every payload (gdb never sends a literal `}` or `*` in a
//! text packet, so this is the identity there and yields raw bytes for `X`, `vFile:pwrite`,
//! `qXfer:...:write` and `qSearch:memory` data).
//!
//! **Size limit.** xol advertises `PacketSize=3fff` ([`PACKET_SIZE`], what GNU gdbserver
//! advertises) and the decoder accepts payloads up to [`MAX_PAYLOAD`] = `0x4000` bytes, both
//! on the wire and after decoding (a run can expand a short wire packet). A longer packet is
//! not buffered: the decoder stops storing at the limit, skips to the checksum and yields
//! [`Event::Invalid`]`(`[`FrameError::TooLong`]`)`, so memory stays bounded whatever arrives.
//!
//! Acknowledgement and no-ack mode are the caller's decision; [`Link`] holds that state (the
//! ack mode and the last packet sent, for resending it on a `-`).
//!
//! Pure: no I/O, no panics on input.

use super::hex;

/// The packet size xol advertises in `qSupported` (`PacketSize=3fff`, as GNU gdbserver).
pub const PACKET_SIZE: usize = 0x3fff;

/// The largest payload the decoder accepts, on the wire and decoded (one byte of headroom
/// over [`PACKET_SIZE`]).
pub const MAX_PAYLOAD: usize = 0x4000;

/// What the decoder found in the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A `$...#cs` packet with a good checksum: its payload, unescaped and run-length decoded.
    Packet(Vec<u8>),
    /// A `%...#cs` notification with a good checksum (its payload, e.g. `Stop:T05...`).
    Notification(Vec<u8>),
    /// A complete packet whose checksum did not match: answer `-` in ack mode (in no-ack mode
    /// gdbserver takes the packet anyway, having nothing better to do).
    BadChecksum {
        /// The decoded payload.
        payload: Vec<u8>,
        /// It was a `%` notification.
        notification: bool,
        /// The sum of the bytes received.
        computed: u8,
        /// The checksum the sender wrote.
        received: u8,
    },
    /// A packet that could not be decoded; it was dropped (answer `-` in ack mode).
    Invalid(FrameError),
    /// The `\x03` interrupt byte (Ctrl-C), outside a packet.
    Interrupt,
    /// `+`: the peer received our last packet.
    Ack,
    /// `-`: the peer wants our last packet again.
    Nak,
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The payload exceeded the decoder's limit (on the wire or once decoded).
    TooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A `*` with nothing before it to repeat, or a repeat count byte below 29 or `#`.
    BadRunLength,
    /// The payload ended in the middle of a `}` escape.
    BadEscape,
    /// The two bytes after `#` were not hex digits.
    BadChecksumDigits,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLong { limit } => write!(f, "packet longer than {limit} bytes"),
            FrameError::BadRunLength => f.write_str("bad run-length encoding"),
            FrameError::BadEscape => f.write_str("packet ends inside a `}` escape"),
            FrameError::BadChecksumDigits => f.write_str("checksum is not two hex digits"),
        }
    }
}

/// Where the decoder is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between packets: acks, the interrupt byte and noise.
    Idle,
    /// Inside a payload.
    Body,
    /// After a `*`: the next byte is the repeat count.
    Count,
    /// After `#`: the first checksum digit.
    Sum1,
    /// The second checksum digit, after the first (`hi`).
    Sum2 { hi: u8 },
}

/// The incremental decoder: feed it bytes as they arrive, split anywhere.
#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    limit: usize,
    /// The decoded payload so far (never longer than `limit`).
    buf: Vec<u8>,
    notification: bool,
    /// Sum of the wire bytes of the payload.
    sum: u8,
    /// Wire bytes of the payload so far.
    wire_len: usize,
    /// The last wire byte that a run repeats.
    prev: Option<u8>,
    /// The last expanded wire byte was an unconsumed `}`.
    escape: bool,
    /// The first error in the current packet: it is dropped when its checksum arrives.
    error: Option<FrameError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with the [`MAX_PAYLOAD`] limit.
    pub fn new() -> Decoder {
        Decoder::with_limit(MAX_PAYLOAD)
    }

    /// A decoder accepting payloads of at most `limit` bytes.
    pub fn with_limit(limit: usize) -> Decoder {
        Decoder {
            state: State::Idle,
            limit,
            buf: Vec::new(),
            notification: false,
            sum: 0,
            wire_len: 0,
            prev: None,
            escape: false,
            error: None,
        }
    }

    /// The payload limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes currently held for an unfinished packet (at most [`Decoder::limit`]).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The decoder is between packets.
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    /// The events in `bytes`, in order; state carries over to the next call.
    pub fn feed<'d, 'b>(&'d mut self, bytes: &'b [u8]) -> Events<'d, 'b> {
        Events { decoder: self, bytes: bytes.iter() }
    }

    fn start(&mut self, notification: bool) {
        self.state = State::Body;
        self.buf = Vec::new();
        self.notification = notification;
        self.sum = 0;
        self.wire_len = 0;
        self.prev = None;
        self.escape = false;
        self.error = None;
    }

    fn fail(&mut self, e: FrameError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Counts one wire byte of the payload.
    fn wire(&mut self, b: u8) {
        self.sum = self.sum.wrapping_add(b);
        self.wire_len = self.wire_len.saturating_add(1);
        if self.wire_len > self.limit {
            self.fail(FrameError::TooLong { limit: self.limit });
        }
    }

    /// One expanded wire byte through the unescaping stage.
    fn put(&mut self, w: u8) {
        let byte = if self.escape {
            self.escape = false;
            w ^ 0x20
        } else if w == b'}' {
            self.escape = true;
            return;
        } else {
            w
        };
        if self.error.is_some() {
            return;
        }
        if self.buf.len() >= self.limit {
            self.fail(FrameError::TooLong { limit: self.limit });
            return;
        }
        self.buf.push(byte);
    }

    fn finish(&mut self, received: u8) -> Event {
        self.state = State::Idle;
        let payload = std::mem::take(&mut self.buf);
        if let Some(e) = self.error.take() {
            return Event::Invalid(e);
        }
        if received != self.sum {
            return Event::BadChecksum { payload, notification: self.notification, computed: self.sum, received };
        }
        if self.notification {
            Event::Notification(payload)
        } else {
            Event::Packet(payload)
        }
    }

    /// Feeds one byte; returns the event it completes, if any.
    pub fn push(&mut self, b: u8) -> Option<Event> {
        match self.state {
            State::Idle => match b {
                b'$' => self.start(false),
                b'%' => self.start(true),
                b'+' => return Some(Event::Ack),
                b'-' => return Some(Event::Nak),
                0x03 => return Some(Event::Interrupt),
                // Noise between packets (gdb sends none) is ignored, as gdbserver does.
                _ => {}
            },
            State::Body => match b {
                b'#' => {
                    if self.escape {
                        self.fail(FrameError::BadEscape);
                    }
                    self.state = State::Sum1;
                }
                // A new packet start inside a payload: the old one was cut off; resynchronise
                // on the new one, as gdb's reader does.
                b'$' => self.start(false),
                b'*' => {
                    self.wire(b);
                    if self.prev.is_none() {
                        self.fail(FrameError::BadRunLength);
                    }
                    self.state = State::Count;
                }
                _ => {
                    self.wire(b);
                    self.prev = Some(b);
                    self.put(b);
                }
            },
            State::Count => match b {
                b'#' => {
                    self.fail(FrameError::BadRunLength);
                    self.state = State::Sum1;
                }
                b'$' => self.start(false),
                _ => {
                    self.wire(b);
                    self.state = State::Body;
                    match (b.checked_sub(29), self.prev) {
                        (Some(n), Some(c)) => {
                            for _ in 0..n {
                                self.put(c);
                            }
                        }
                        _ => self.fail(FrameError::BadRunLength),
                    }
                }
            },
            State::Sum1 => match hex::digit(b) {
                Some(hi) => self.state = State::Sum2 { hi },
                None => return Some(self.bad_digits(b)),
            },
            State::Sum2 { hi } => match hex::digit(b) {
                Some(lo) => return Some(self.finish(hi << 4 | lo)),
                None => return Some(self.bad_digits(b)),
            },
        }
        None
    }

    /// A non-hex checksum digit: drop the packet; a `$` or `%` there starts the next one.
    fn bad_digits(&mut self, b: u8) -> Event {
        self.state = State::Idle;
        self.buf = Vec::new();
        self.error = None;
        match b {
            b'$' => self.start(false),
            b'%' => self.start(true),
            _ => {}
        }
        Event::Invalid(FrameError::BadChecksumDigits)
    }
}

/// The events of one [`Decoder::feed`] call.
#[derive(Debug)]
pub struct Events<'d, 'b> {
    decoder: &'d mut Decoder,
    bytes: std::slice::Iter<'b, u8>,
}

impl Iterator for Events<'_, '_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        for &b in self.bytes.by_ref() {
            if let Some(e) = self.decoder.push(b) {
                return Some(e);
            }
        }
        None
    }
}

/// The modulo-256 sum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b))
}

/// Appends `payload` with `$ # } *` escaped (`}` then the byte XOR `0x20`).
pub fn escape_into(out: &mut Vec<u8>, payload: &[u8]) {
    for &b in payload {
        if matches!(b, b'$' | b'#' | b'}' | b'*') {
            out.push(b'}');
            out.push(b ^ 0x20);
        } else {
            out.push(b);
        }
    }
}

/// Run-length encodes already-escaped wire bytes: a run of four or more equal bytes becomes
/// `c*n`. Counts that would be `#` or `$` are avoided, the escape byte `}` and the byte it
/// escapes are never part of a run.
fn run_length_into(out: &mut Vec<u8>, wire: &[u8]) {
    let mut i = 0;
    while let Some(&c) = wire.get(i) {
        if c == b'}' {
            out.push(c);
            if let Some(&next) = wire.get(i + 1) {
                out.push(next);
            }
            i += 2;
            continue;
        }
        let run = wire.get(i..).unwrap_or_default().iter().take_while(|&&b| b == c).count();
        // Repeats after the first byte, at most 126 - 29 so the count byte is printable.
        let mut repeats = run.saturating_sub(1).min(126 - 29);
        if repeats == 6 || repeats == 7 {
            // 29 + 6 = '#', 29 + 7 = '$': never a count.
            repeats = 5;
        }
        out.push(c);
        if repeats >= 3 {
            out.push(b'*');
            // `repeats <= 97`, so the sum fits in a byte.
            out.push(29 + repeats as u8);
            i += 1 + repeats;
        } else {
            i += 1;
        }
    }
}

fn frame_with(start: u8, payload: &[u8], rle: bool) -> Vec<u8> {
    let mut escaped = Vec::with_capacity(payload.len() + 4);
    escape_into(&mut escaped, payload);
    let mut out = Vec::with_capacity(escaped.len() + 4);
    out.push(start);
    if rle {
        run_length_into(&mut out, &escaped);
    } else {
        out.extend_from_slice(&escaped);
    }
    let sum = checksum(out.get(1..).unwrap_or_default());
    out.push(b'#');
    hex::push_u8(&mut out, sum);
    out
}

/// `$payload#cs`, with `$ # } *` escaped.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    frame_with(b'$', payload, false)
}

/// `$payload#cs`, escaped and run-length encoded (gdb decodes runs in every reply).
pub fn frame_rle(payload: &[u8]) -> Vec<u8> {
    frame_with(b'$', payload, true)
}

/// A notification: `%payload#cs` (payload such as `Stop:T05...`), escaped; not acknowledged.
pub fn frame_notification(payload: &[u8]) -> Vec<u8> {
    frame_with(b'%', payload, false)
}

/// The acknowledgement state of a connection: ack or no-ack mode, and the last packet sent,
/// kept until the peer acknowledges it so that a `-` can be answered by sending it again.
#[derive(Debug, Clone, Default)]
pub struct Link {
    no_ack: bool,
    unacked: Option<Vec<u8>>,
    resends: u32,
}

/// What [`Link::receive`] makes of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The byte to send back first (`+` or `-`), in ack mode.
    pub ack: Option<u8>,
    /// What the caller has to act on.
    pub input: Input,
}

/// The part of an event the caller acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A packet to parse and answer.
    Packet(Vec<u8>),
    /// A notification from the peer.
    Notification(Vec<u8>),
    /// Ctrl-C.
    Interrupt,
    /// The peer NAKed our last packet: write these bytes again.
    Resend(Vec<u8>),
    /// A packet was dropped (in no-ack mode nobody resends it: the caller may answer an error).
    Dropped(FrameError),
    /// Nothing to do (an ack, a NAK with nothing to resend, a bad packet in ack mode).
    Nothing,
}

impl Link {
    /// A new connection, in ack mode (as every connection starts).
    pub fn new() -> Link {
        Link::default()
    }

    /// No-ack mode is on.
    pub fn no_ack(&self) -> bool {
        self.no_ack
    }

    /// Turns no-ack mode on (after answering `OK` to `QStartNoAckMode`); nothing is kept for
    /// resending from then on.
    pub fn set_no_ack(&mut self) {
        self.no_ack = true;
        self.unacked = None;
    }

    /// How many times the last packet was resent.
    pub fn resends(&self) -> u32 {
        self.resends
    }

    /// Frames `payload` for sending; in ack mode keeps the frame until it is acknowledged.
    pub fn send(&mut self, payload: &[u8]) -> Vec<u8> {
        let wire = frame(payload);
        if !self.no_ack {
            self.unacked = Some(wire.clone());
            self.resends = 0;
        }
        wire
    }

    /// Interprets one decoder event.
    pub fn receive(&mut self, event: Event) -> Received {
        let ack = |good: bool| if self.no_ack { None } else { Some(if good { b'+' } else { b'-' }) };
        match event {
            Event::Packet(p) => Received { ack: ack(true), input: Input::Packet(p) },
            Event::Notification(p) => Received { ack: None, input: Input::Notification(p) },
            Event::BadChecksum { payload, notification, .. } => {
                if !self.no_ack {
                    Received { ack: ack(false), input: Input::Nothing }
                } else if notification {
                    Received { ack: None, input: Input::Notification(payload) }
                } else {
                    Received { ack: None, input: Input::Packet(payload) }
                }
            }
            Event::Invalid(e) => {
                if self.no_ack {
                    Received { ack: None, input: Input::Dropped(e) }
                } else {
                    Received { ack: ack(false), input: Input::Nothing }
                }
            }
            Event::Interrupt => Received { ack: None, input: Input::Interrupt },
            Event::Ack => {
                self.unacked = None;
                Received { ack: None, input: Input::Nothing }
            }
            Event::Nak => match &self.unacked {
                Some(wire) => {
                    self.resends = self.resends.saturating_add(1);
                    Received { ack: None, input: Input::Resend(wire.clone()) }
                }
                None => Received { ack: None, input: Input::Nothing },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(bytes: &[u8]) -> Vec<Event> {
        Decoder::new().feed(bytes).collect()
    }

    fn packet(p: &[u8]) -> Event {
        Event::Packet(p.to_vec())
    }

    #[test]
    fn manual_examples() {
        // The manual's checksum example and packets from protocol-usage.txt's sessions.
        assert_eq!(frame(b"OK"), b"$OK#9a");
        assert_eq!(frame(b"QStartNoAckMode"), b"$QStartNoAckMode#b0");
        assert_eq!(events(b"$g#67"), vec![packet(b"g")]);
        assert_eq!(events(b"$?#3f"), vec![packet(b"?")]);
        assert_eq!(events(b"$vMustReplyEmpty#3a"), vec![packet(b"vMustReplyEmpty")]);
        assert_eq!(events(b"$qTStatus#49"), vec![packet(b"qTStatus")]);
        assert_eq!(events(b"+$Hgp0.0#ad+"), vec![Event::Ack, packet(b"Hgp0.0"), Event::Ack]);
        assert_eq!(events(b"-\x03"), vec![Event::Nak, Event::Interrupt]);
        // Upper-case checksum digits are accepted.
        assert_eq!(events(b"$OK#9A"), vec![packet(b"OK")]);
    }

    #[test]
    fn run_length_from_the_manual() {
        // "0* " means "0000": the run count ' ' is 32 - 29 = 3 more.
        let wire = frame_payload_raw(b"0* ");
        assert_eq!(events(&wire), vec![packet(b"0000")]);
        let wire = frame_payload_raw(b"X0*\"Y");
        assert_eq!(events(&wire), vec![packet(b"X000000Y")]);
    }

    /// `$raw#cs` with `raw` put on the wire as is (no escaping).
    fn frame_payload_raw(raw: &[u8]) -> Vec<u8> {
        let mut w = vec![b'$'];
        w.extend_from_slice(raw);
        w.push(b'#');
        hex::push_u8(&mut w, checksum(raw));
        w
    }

    #[test]
    fn binary_escapes() {
        // X packet data 0x7d 0x23 0x24 0x2a 0x00 0x03 0x25 as gdb escapes it.
        let data = [0x7d, 0x23, 0x24, 0x2a, 0x00, 0x03, 0x25];
        let mut payload = b"X1000,7:".to_vec();
        payload.extend_from_slice(&data);
        let wire = frame(&payload);
        assert!(wire.windows(2).any(|w| w == b"}]"));
        assert_eq!(wire.iter().filter(|&&b| b == b'#').count(), 1);
        assert_eq!(events(&wire), vec![Event::Packet(payload)]);
    }

    #[test]
    fn runs_apply_to_wire_bytes_before_unescaping() {
        // 0x7d then three ']' on the wire: "}]" is 0x7d, the run repeats the wire byte ']'.
        let raw = b"}]]* ";
        assert_eq!(events(&frame_payload_raw(raw)), vec![packet(b"}]]]]")]);
        // A run of the escape byte itself: "}*!" is "}}}}}" = two escapes and a dangling one.
        assert_eq!(events(&frame_payload_raw(b"}*!")), vec![Event::Invalid(FrameError::BadEscape)]);
        assert_eq!(events(&frame_payload_raw(b"a}*\"")), vec![packet(b"a]]]")]);
    }

    #[test]
    fn bad_frames() {
        assert!(matches!(
            events(b"$g#00").as_slice(),
            [Event::BadChecksum { computed: 0x67, received: 0, notification: false, .. }]
        ));
        assert_eq!(events(b"$g#zz"), vec![Event::Invalid(FrameError::BadChecksumDigits)]);
        assert_eq!(events(&frame_payload_raw(b"* ")), vec![Event::Invalid(FrameError::BadRunLength)]);
        assert_eq!(events(&frame_payload_raw(b"a*\x10")), vec![Event::Invalid(FrameError::BadRunLength)]);
        assert_eq!(events(b"$a*#00"), vec![Event::Invalid(FrameError::BadRunLength)]);
        assert_eq!(events(&frame_payload_raw(b"ab}")), vec![Event::Invalid(FrameError::BadEscape)]);
        // A bad checksum digit that is a packet start begins the next packet.
        assert_eq!(events(b"$g#6$g#67"), vec![Event::Invalid(FrameError::BadChecksumDigits), packet(b"g")]);
        // A '$' inside a payload restarts: the cut-off packet is lost, the new one is read.
        assert_eq!(events(b"$qSupp$g#67"), vec![packet(b"g")]);
        // Noise between packets is ignored.
        assert_eq!(events(b"garbage\n$g#67"), vec![packet(b"g")]);
    }

    #[test]
    fn size_limit_is_an_error_not_an_allocation() {
        let mut d = Decoder::with_limit(16);
        let ok = frame(&[b'a'; 16]);
        assert_eq!(d.feed(&ok).collect::<Vec<_>>(), vec![Event::Packet(vec![b'a'; 16])]);
        let long = frame(&[b'a'; 100_000]);
        let mut out = Vec::new();
        for chunk in long.chunks(7) {
            out.extend(d.feed(chunk));
            assert!(d.buffered() <= 16);
        }
        assert_eq!(out, vec![Event::Invalid(FrameError::TooLong { limit: 16 })]);
        // A short wire packet whose runs expand past the limit.
        let mut raw = Vec::new();
        for _ in 0..4 {
            raw.extend_from_slice(b"a*~");
        }
        let mut out = Vec::new();
        out.extend(d.feed(&frame_payload_raw(&raw)));
        assert_eq!(out, vec![Event::Invalid(FrameError::TooLong { limit: 16 })]);
        assert!(d.buffered() == 0 && d.is_idle());
        // And the decoder goes on.
        assert_eq!(d.feed(b"$g#67").collect::<Vec<_>>(), vec![packet(b"g")]);
        assert_eq!(Decoder::new().limit(), MAX_PAYLOAD);
    }

    #[test]
    fn every_split_point() {
        let mut payload = b"qXfer:siginfo:write::0:".to_vec();
        payload.extend((0u8..=255).chain([b'$', b'#', b'}', b'*']));
        let mut stream = b"+".to_vec();
        stream.extend(frame(&payload));
        stream.extend(b"\x03");
        stream.extend(frame_rle(b"m0,0000000000001000"));
        stream.extend(frame_notification(b"Stop:T05thread:p1.1;"));
        stream.push(b'-');
        let expect = vec![
            Event::Ack,
            Event::Packet(payload.clone()),
            Event::Interrupt,
            packet(b"m0,0000000000001000"),
            Event::Notification(b"Stop:T05thread:p1.1;".to_vec()),
            Event::Nak,
        ];
        for split in 0..=stream.len() {
            let (a, b) = stream.split_at(split);
            let mut d = Decoder::new();
            let mut got: Vec<Event> = d.feed(a).collect();
            got.extend(d.feed(b));
            assert_eq!(got, expect, "split at {split}");
        }
        // Byte by byte, and in three pieces.
        let mut d = Decoder::new();
        let got: Vec<Event> = stream.iter().flat_map(|b| d.feed(std::slice::from_ref(b)).collect::<Vec<_>>()).collect();
        assert_eq!(got, expect);
        for i in (0..stream.len()).step_by(5) {
            for j in (i..stream.len()).step_by(11) {
                let mut d = Decoder::new();
                let mut got: Vec<Event> = d.feed(&stream[..i]).collect();
                got.extend(d.feed(&stream[i..j]));
                got.extend(d.feed(&stream[j..]));
                assert_eq!(got, expect, "splits {i} {j}");
            }
        }
    }

    #[test]
    fn run_length_encoder() {
        assert_eq!(frame_rle(b"0000"), frame_payload_raw(b"0* "));
        assert_eq!(frame_rle(b"000"), b"$000#90");
        // Seven repeats (count '$') and six (count '#') are avoided.
        for n in 1..300 {
            let payload = vec![b'0'; n];
            let wire = frame_rle(&payload);
            let body = &wire[1..wire.len() - 3];
            assert!(!body.contains(&b'#') && !body.contains(&b'$'), "{n}: {:?}", String::from_utf8_lossy(&wire));
            assert!(n < 8 || body.len() < n, "{n} compressed");
            assert_eq!(events(&wire), vec![Event::Packet(payload)], "{n}");
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..400 {
            let payload: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly a few values, so runs occur.
                    if x.is_multiple_of(3) {
                        (x >> 8) as u8
                    } else {
                        b"}*#$0a"[(x % 6) as usize]
                    }
                })
                .collect();
            for wire in [frame(&payload), frame_rle(&payload)] {
                assert_eq!(events(&wire), vec![Event::Packet(payload.clone())]);
            }
            assert_eq!(events(&frame_notification(&payload)), vec![Event::Notification(payload.clone())]);
        }
    }

    #[test]
    fn notifications() {
        assert_eq!(frame_notification(b"Stop:T05"), b"%Stop:T05#99".to_vec());
        assert_eq!(events(b"%Stop:T05#99"), vec![Event::Notification(b"Stop:T05".to_vec())]);
    }

    #[test]
    fn link_ack_mode_and_resend() {
        let mut link = Link::new();
        assert!(!link.no_ack());
        let wire = link.send(b"OK");
        assert_eq!(wire, b"$OK#9a");
        // gdb NAKs twice: resend the same bytes each time.
        for n in 1..=2 {
            assert_eq!(link.receive(Event::Nak), Received { ack: None, input: Input::Resend(wire.clone()) });
            assert_eq!(link.resends(), n);
        }
        assert_eq!(link.receive(Event::Ack).input, Input::Nothing);
        assert_eq!(link.receive(Event::Nak).input, Input::Nothing, "acked: nothing to resend");
        assert_eq!(link.receive(packet(b"g")), Received { ack: Some(b'+'), input: Input::Packet(b"g".to_vec()) });
        let bad = Event::BadChecksum { payload: b"g".to_vec(), notification: false, computed: 0x67, received: 0 };
        assert_eq!(link.receive(bad), Received { ack: Some(b'-'), input: Input::Nothing });
        let tl = Event::Invalid(FrameError::TooLong { limit: 1 });
        assert_eq!(link.receive(tl), Received { ack: Some(b'-'), input: Input::Nothing });
        assert_eq!(link.receive(Event::Interrupt).input, Input::Interrupt);
        assert_eq!(
            link.receive(Event::Notification(b"x".to_vec())),
            Received { ack: None, input: Input::Notification(b"x".to_vec()) }
        );
    }

    #[test]
    fn link_no_ack_mode() {
        let mut link = Link::new();
        // QStartNoAckMode: the OK goes out in ack mode, then both sides stop acking.
        link.send(b"OK");
        link.set_no_ack();
        assert!(link.no_ack());
        assert_eq!(link.receive(Event::Ack).input, Input::Nothing, "gdb's ack of that OK");
        link.send(b"S05");
        assert_eq!(link.receive(Event::Nak).input, Input::Nothing, "nothing kept in no-ack mode");
        assert_eq!(link.receive(packet(b"g")), Received { ack: None, input: Input::Packet(b"g".to_vec()) });
        // gdbserver takes a packet with a bad checksum in no-ack mode.
        let bad = Event::BadChecksum { payload: b"g".to_vec(), notification: false, computed: 0x67, received: 0 };
        assert_eq!(link.receive(bad), Received { ack: None, input: Input::Packet(b"g".to_vec()) });
        let e = FrameError::TooLong { limit: 1 };
        assert_eq!(link.receive(Event::Invalid(e)), Received { ack: None, input: Input::Dropped(e) });
    }
}
