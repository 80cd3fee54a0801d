//! Robustness test (test builds only): a few hundred thousand pseudo-random and mutated
//! packets through framing, the request parser and the stop-reply parser. It asserts that
//! nothing panics (a panic fails the test), that the decoder never holds more than its limit
//! and that every event stays within it, and that well-formed frames of any payload decode to
//! that payload. The generator is a small deterministic xorshift, so a failure reproduces.

use super::framing::{self, Decoder, Event};
use super::reply::StopReply;
use super::request::{self, tests::USAGE};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    /// A byte, biased towards the ones the protocol gives meaning to.
    fn byte(&mut self) -> u8 {
        const SPECIAL: &[u8] = b"$#}*%+-\x03:;,.=-0123456789abcdefpPXxmMvqQZz\0\xff";
        if self.below(3) == 0 {
            u8::try_from(self.below(256)).unwrap_or(0)
        } else {
            SPECIAL.get(self.below(SPECIAL.len())).copied().unwrap_or(b'0')
        }
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.byte()).collect()
    }

    /// `seed` with one to four random edits.
    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut p = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(p.len() + 1);
            match self.below(6) {
                0 if at < p.len() => {
                    if let Some(b) = p.get_mut(at) {
                        *b = self.byte();
                    }
                }
                1 => p.insert(at, self.byte()),
                2 if at < p.len() => {
                    p.remove(at);
                }
                3 => p.truncate(at),
                4 => {
                    let piece: Vec<u8> = p.get(at..).unwrap_or_default().iter().take(8).copied().collect();
                    p.splice(at..at, piece);
                }
                _ => {
                    let extra = self.bytes(6);
                    p.splice(at..at, extra);
                }
            }
        }
        p
    }
}

/// Stop replies as gdbserver writes them, mutated like the requests.
const STOPS: &[&[u8]] = &[
    b"T05swbreak:;06:10e0ffffff7f0000;10:4951555555550000;thread:p7a3.7a3;core:1;",
    b"T05fork:p7a9.7a9;thread:p7a3.7a3;",
    b"T05exec:2f62696e2f74727565;thread:p7a3.7a3;",
    b"T05watch:555555558014;thread:p7a3.7a4;",
    b"W00;process:7a3",
    b"X09;process:7a3",
    b"w00;p7a3.7a4",
    b"O68690a",
    b"N",
    b"S05",
];

fn check_event(e: &Event, limit: usize) {
    let payload = match e {
        Event::Packet(p) | Event::Notification(p) | Event::BadChecksum { payload: p, .. } => p,
        _ => return,
    };
    assert!(payload.len() <= limit, "event of {} bytes over the {limit} limit", payload.len());
    let _ = request::parse(payload);
    let _ = StopReply::parse(payload);
}

/// Feeds `stream` in random pieces to both decoders, checking every event and the bound.
fn feed(rng: &mut Rng, decoders: &mut [Decoder], stream: &[u8]) -> usize {
    let mut events = 0;
    for d in decoders.iter_mut() {
        let mut rest = stream;
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len().min(64));
            let (piece, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            let limit = d.limit();
            for e in d.feed(piece) {
                check_event(&e, limit);
                events += 1;
            }
            assert!(d.buffered() <= d.limit(), "decoder holds {} bytes over its limit", d.buffered());
        }
    }
    events
}

#[test]
fn random_and_mutated_packets_never_panic_and_stay_bounded() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut decoders = [Decoder::new(), Decoder::with_limit(48)];
    let seeds: Vec<&[u8]> = USAGE.iter().map(|(_, p)| *p).collect();
    let (mut packets, mut parsed_ok, mut events) = (0usize, 0usize, 0usize);
    for round in 0..300_000usize {
        let payload = match round % 4 {
            0 => rng.bytes(40),
            1 | 2 => {
                let seed = seeds.get(rng.below(seeds.len())).copied().unwrap_or_default();
                rng.mutate(seed)
            }
            _ => {
                let seed = STOPS.get(rng.below(STOPS.len())).copied().unwrap_or_default();
                rng.mutate(seed)
            }
        };
        packets += 1;
        // Straight to the parsers, as the framing would hand it over.
        if request::parse(&payload).is_ok() {
            parsed_ok += 1;
        }
        let _ = StopReply::parse(&payload);
        // And on the wire: well framed (sometimes with runs or as a notification), with a broken
        // checksum, or raw bytes that are not a frame at all.
        let wire = match rng.below(6) {
            0 => framing::frame_rle(&payload),
            1 => framing::frame_notification(&payload),
            2 => {
                let mut w = framing::frame(&payload);
                if let Some(last) = w.last_mut() {
                    *last = rng.byte();
                }
                w
            }
            3 => payload.clone(),
            _ => framing::frame(&payload),
        };
        events += feed(&mut rng, &mut decoders, &wire);
    }
    // The mutations must exercise both outcomes, or the test proves little.
    assert!(parsed_ok > 10_000 && parsed_ok < packets - 10_000, "{parsed_ok} of {packets} parsed");
    assert!(events > packets, "{events} events");
}

#[test]
fn any_payload_survives_framing() {
    let mut rng = Rng(0xfeed_face_cafe_beef);
    for _ in 0..20_000 {
        let payload = rng.bytes(300);
        let wire = if rng.below(2) == 0 { framing::frame(&payload) } else { framing::frame_rle(&payload) };
        // Split at a random point, as reads split it.
        let cut = rng.below(wire.len());
        let (a, b) = wire.split_at(cut);
        let mut d = Decoder::new();
        let mut got: Vec<Event> = d.feed(a).collect();
        got.extend(d.feed(b));
        assert_eq!(got, vec![Event::Packet(payload)]);
    }
}

#[test]
fn long_noise_streams_stay_bounded() {
    let mut rng = Rng(42);
    let mut decoders = [Decoder::new(), Decoder::with_limit(16)];
    // 2 MiB of noise, dense in packet starts, escapes and runs.
    let stream: Vec<u8> = (0..2 * 1024 * 1024).map(|_| rng.byte()).collect();
    feed(&mut rng, &mut decoders, &stream);
    // A packet that never ends: the decoder keeps at most its limit.
    let mut endless = vec![b'$'];
    endless.extend(std::iter::repeat_n(b'a', 1 << 20));
    endless.extend(std::iter::repeat_n(b"a*~", 1 << 16).flatten());
    let mut d = Decoder::new();
    assert_eq!(d.feed(&endless).count(), 0);
    assert!(d.buffered() <= framing::MAX_PAYLOAD);
    assert_eq!(d.feed(b"#00$g#67").collect::<Vec<_>>().last(), Some(&Event::Packet(b"g".to_vec())));
}
