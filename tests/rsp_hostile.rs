//! Malformed and hostile input against `xol serve --stdio`, at the packet
//! level.
//!
//! Every test ends by proving that the server is still alive and answering
//! correctly (`?`, `Hg0` + `g`, and an `m` of a known address give sane
//! replies), or, where the protocol ends the session (`k`, `vKill`,
//! `monitor exit`, EOF on the connection), that xol exits cleanly and the
//! inferior it launched is gone.
//!
//! Tests made of several independent cases start a fresh server for each case
//! and report every failing case at once (packet sent, reply got, what was
//! expected), so one server death does not hide the others.
//!
//! Expectations follow the remote protocol documentation and GNU gdbserver:
//! a corrupted packet is NAKed with `-` (in ack mode) and the stub waits for
//! the retransmission; bytes outside `$...#xx` are ignored; a malformed or
//! failing request gets an `E NN` reply; an unknown request gets the empty
//! reply.

mod support;

use std::time::Duration;

use support::*;

/// Bound for every wait in this file (the rig's receives time out on their own
/// after [`RSP_TIMEOUT`]).
const T: Duration = Duration::from_secs(20);

type Check = Result<(), String>;

// ---------------------------------------------------------------------------
// Session helpers
// ---------------------------------------------------------------------------

/// A known, mapped address of the inferior and the bytes there, read before
/// any hostile input was sent: reading it again proves memory access still
/// works and nothing was clobbered.
#[derive(Clone, Debug)]
struct Probe {
    addr: u64,
    bytes: Vec<u8>,
}

/// `xol serve --stdio -- loop` in ack mode, with the probe taken from
/// `probe_site`'s first bytes.
fn start_loop() -> (RspClient, Probe) {
    let prog = fixture("loop");
    let mut c = RspClient::xol(&prog, &[]);
    // gdb's first request after the handshake.
    let q = c.request("?");
    assert!(q.starts_with('T'), "initial `?`: {q:?}");
    let addr = symbol_addr(&prog, "probe_site");
    let bytes = c.read_mem(addr, 8);
    (c, Probe { addr, bytes })
}

/// Like [`start_loop`], then negotiates no-ack mode.
fn start_loop_noack() -> (RspClient, Probe) {
    let (mut c, p) = start_loop();
    c.no_ack_mode();
    (c, p)
}

/// Describes the server's state for failure messages.
fn server_state(c: &mut RspClient) -> String {
    // Diagnostics only: give a dying server a moment to be reaped so the
    // report says whether it exited.
    let st = match c.guard().wait_timeout(Duration::from_millis(500)) {
        Some(st) => format!("server EXITED: {}", describe_status(&st)),
        None => "server still running".to_string(),
    };
    let err = c.server_stderr();
    let tail: String = {
        let lines: Vec<&str> = err.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    format!("{st}\n--- server stderr (tail) ---\n{tail}")
}

/// Sends `payload`, returns the reply or a descriptive error.
fn req(c: &mut RspClient, payload: &str) -> Result<String, String> {
    c.try_request(payload).map_err(|e| format!("sent {:?}: no reply ({e})\n{}", shorten(payload), server_state(c)))
}

/// Like [`req`] for a binary body (already escaped).
fn req_bytes(c: &mut RspClient, body: &[u8]) -> Result<String, String> {
    c.request_bytes(body)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| format!("sent {:?}: no reply ({e})\n{}", shorten(&String::from_utf8_lossy(body)), server_state(c)))
}

fn shorten(s: &str) -> String {
    if s.len() <= 120 {
        s.to_string()
    } else {
        format!("{}...<{} bytes in all>", &s[..100], s.len())
    }
}

/// `E NN` (two hex digits) or gdb's textual `E.msg` form.
fn is_error_reply(r: &str) -> bool {
    let b = r.as_bytes();
    (b.len() == 3 && b[0] == b'E' && b[1].is_ascii_hexdigit() && b[2].is_ascii_hexdigit()) || r.starts_with("E.")
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Sends `payload` and requires an `E NN` reply.
fn expect_error(c: &mut RspClient, payload: &str) -> Check {
    let r = req(c, payload)?;
    if is_error_reply(&r) {
        Ok(())
    } else {
        Err(format!("sent {:?}: got {:?}, expected an error reply `E NN`", shorten(payload), shorten(&r)))
    }
}

/// Sends `payload` and requires the empty reply (unsupported packet).
fn expect_empty(c: &mut RspClient, payload: &str) -> Check {
    let r = req(c, payload)?;
    if r.is_empty() {
        Ok(())
    } else {
        Err(format!("sent {:?}: got {:?}, expected the empty reply (unsupported)", shorten(payload), shorten(&r)))
    }
}

/// Sends `payload` and requires `OK`.
fn expect_ok(c: &mut RspClient, payload: &str) -> Check {
    let r = req(c, payload)?;
    if r == "OK" {
        Ok(())
    } else {
        Err(format!("sent {:?}: got {:?}, expected OK", shorten(payload), shorten(&r)))
    }
}

/// Reads memory, requiring a well-formed hex reply of exactly `len` bytes.
fn mem(c: &mut RspClient, addr: u64, len: usize) -> Result<Vec<u8>, String> {
    let p = format!("m{addr:x},{len:x}");
    let r = req(c, &p)?;
    match try_hex_decode(&r) {
        Ok(b) if b.len() == len => Ok(b),
        _ => Err(format!("sent {p:?}: got {:?}, expected {len} bytes of hex", shorten(&r))),
    }
}

/// The full `g` reply for the thread selected with `Hg0`.
fn regs(c: &mut RspClient) -> Result<String, String> {
    expect_ok(c, "Hg0")?;
    let g = req(c, "g")?;
    // amd64: rax..r15, rip (8 bytes each), eflags + 6 segment regs (4 each)
    // come first; more follows (x87/SSE, fs_base, ...).
    let min = 17 * 16 + 7 * 8;
    if g.len() < min || g.len() % 2 != 0 || !g.bytes().all(|b| b.is_ascii_hexdigit() || b == b'x') {
        return Err(format!("sent \"g\": got {:?}, expected register hex", shorten(&g)));
    }
    Ok(g)
}

/// Proves the session is alive and sane: the server process runs, `?` gives a
/// stop reply of a stopped (not exited) process, `Hg0` + `g` give registers
/// with a non-zero pc, and `m` of the probe gives the original bytes.
fn check_alive(c: &mut RspClient, probe: &Probe) -> Check {
    if !c.is_alive() {
        return Err(format!("server is gone\n{}", server_state(c)));
    }
    let q = req(c, "?")?;
    match StopReply::parse(&q) {
        Some(sr) if matches!(sr.kind, 'T' | 'S') => {}
        _ => return Err(format!("sent \"?\": got {q:?}, expected a T/S stop reply")),
    }
    let g = regs(c)?;
    let rip = g_reg64(&g, AMD64_RIP);
    if rip == 0 {
        return Err(format!("g reply has rip 0: {}", shorten(&g)));
    }
    let got = mem(c, probe.addr, probe.bytes.len())?;
    if got != probe.bytes {
        return Err(format!(
            "m{:x},{:x}: got {}, expected the original {}",
            probe.addr,
            probe.bytes.len(),
            hex_encode(&got),
            hex_encode(&probe.bytes)
        ));
    }
    Ok(())
}

/// Panics with a report if `r` failed, adding the server state.
fn ok_or_panic(c: &mut RspClient, what: &str, r: Check) {
    if let Err(e) = r {
        panic!("{what}: {e}\n{}", server_state(c));
    }
}

/// Runs `case` on a fresh `loop` session for each of `cases`; each case must
/// pass its own checks and leave the server alive ([`check_alive`]).
/// Reports every failing case.
fn run_cases<C: std::fmt::Debug>(
    what: &str,
    noack: bool,
    cases: &[C],
    case: impl Fn(&mut RspClient, &Probe, &C) -> Check,
) {
    let mut failures = Vec::new();
    for cs in cases {
        let (mut c, probe) = if noack { start_loop_noack() } else { start_loop() };
        let r = case(&mut c, &probe, cs)
            .and_then(|()| check_alive(&mut c, &probe).map_err(|e| format!("after the case, liveness check: {e}")));
        if let Err(e) = r {
            failures.push(format!("case {cs:?}:\n  {}", e.replace('\n', "\n  ")));
        }
    }
    if !failures.is_empty() {
        panic!("{what}: {} of {} cases failed\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
    }
}

/// The single live inferior launched by the server (its direct child).
fn inferior_pid(c: &mut RspClient) -> u32 {
    let kids: Vec<u32> = descendants(c.pid()).into_iter().filter(|&p| pid_alive(p)).collect();
    assert_eq!(kids.len(), 1, "expected exactly one inferior under the server, got {kids:?}\n{}", server_state(c));
    kids[0]
}

/// The thread id of a stop reply's `thread:` field (`tid` or `pPID.TID`).
fn stop_thread(sr: &StopReply) -> Option<u64> {
    let t = sr.get("thread")?;
    let t = t.strip_prefix('p').map(|s| s.rsplit('.').next().unwrap_or(s)).unwrap_or(t);
    u64::from_str_radix(t, 16).ok()
}

/// Waits for the server to exit and for the inferior `pid` to be gone; the
/// exit must be a clean one (status 0, no signal, no panic).
fn expect_clean_exit_and_no_inferior(c: &mut RspClient, pid: u32, what: &str) {
    let st = c.wait_exit(T);
    let Some(st) = st else {
        panic!("{what}: xol did not exit within {T:?}\n{}", server_state(c));
    };
    assert!(st.success(), "{what}: xol exited uncleanly: {}\n{}", describe_status(&st), server_state(c));
    assert!(
        wait_until(T, || !pid_alive(pid)),
        "{what}: inferior {pid} survived xol's exit (state {:?})\n{}",
        proc_state(pid),
        server_state(c)
    );
}

// ---------------------------------------------------------------------------
// Raw-level helpers (framing errors, NAKs, resynchronisation)
// ---------------------------------------------------------------------------

/// One unit of what the server sent.
#[derive(Debug)]
enum Unit {
    Ack,
    Nack,
    /// A packet's decoded body (acked with `+` unless in no-ack mode).
    Packet(String),
    Other(u8),
}

/// Reads one byte-level unit from the server.
fn next_unit(c: &mut RspClient) -> Result<Unit, String> {
    let rd = |c: &mut RspClient| c.read_byte().map_err(|e| format!("reading from the server: {e}"));
    let b = rd(c)?;
    Ok(match b {
        b'+' => Unit::Ack,
        b'-' => Unit::Nack,
        b'$' => {
            let mut raw = Vec::new();
            loop {
                let b = rd(c)?;
                if b == b'#' {
                    break;
                }
                raw.push(b);
            }
            let c1 = rd(c)?;
            let c2 = rd(c)?;
            let got = std::str::from_utf8(&[c1, c2]).ok().and_then(|s| u8::from_str_radix(s, 16).ok());
            if got != Some(checksum(&raw)) {
                return Err(format!("server sent a packet with a bad checksum: {:?}", String::from_utf8_lossy(&raw)));
            }
            if !c.is_no_ack() {
                c.send_raw(b"+").map_err(|e| e.to_string())?;
            }
            let body = decode_body(&raw).map_err(|e| format!("undecodable reply: {e}"))?;
            Unit::Packet(String::from_utf8_lossy(&body).into_owned())
        }
        other => Unit::Other(other),
    })
}

/// Sends `payload` and returns its reply like gdb does in ack mode: on `-` the
/// packet is retransmitted (at most 3 times). Returns the reply and the number
/// of NAKs seen.
fn exchange_retransmitting(c: &mut RspClient, payload: &str) -> Result<(String, u32), String> {
    let pkt = frame(payload.as_bytes());
    c.send_raw(&pkt).map_err(|e| format!("sending {payload:?}: {e}\n{}", server_state(c)))?;
    let mut nacks = 0;
    loop {
        let u = next_unit(c).map_err(|e| format!("after sending {payload:?}: {e}\n{}", server_state(c)))?;
        match u {
            Unit::Ack => {}
            Unit::Nack => {
                nacks += 1;
                if nacks > 3 {
                    return Err(format!("{payload:?} NAKed {nacks} times"));
                }
                c.send_raw(&pkt).map_err(|e| format!("resending {payload:?}: {e}\n{}", server_state(c)))?;
            }
            Unit::Packet(p) => return Ok((p, nacks)),
            Unit::Other(b) => {
                return Err(format!("after sending {payload:?}: unexpected byte {b:#04x} outside a packet"))
            }
        }
    }
}

/// Garbage before a good `?`, in ack mode: the reply must be the stop reply
/// (after at most a NAK and a retransmission).
fn garbage_then_good(garbage: &[u8]) {
    let (mut c, probe) = start_loop();
    c.send_raw(garbage).unwrap();
    let r = exchange_retransmitting(&mut c, "?");
    let r = r.and_then(|(reply, _)| match StopReply::parse(&reply) {
        Some(sr) if sr.kind == 'T' => Ok(()),
        _ => Err(format!("reply to \"?\" after the garbage: {reply:?}, expected T05...")),
    });
    ok_or_panic(&mut c, &format!("after {:?}", String::from_utf8_lossy(garbage)), r);
    let r = check_alive(&mut c, &probe);
    ok_or_panic(&mut c, "liveness", r);
}

// ---------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------

#[test]
fn bad_checksum_is_nacked_and_retransmission_works() {
    let (mut c, probe) = start_loop();
    // `?` has checksum 3f.
    c.send_raw(b"$?#00").unwrap();
    let u = next_unit(&mut c);
    match u {
        Ok(Unit::Nack) => {}
        other => panic!("sent \"$?#00\" (bad checksum): got {other:?}, expected a `-` NAK\n{}", server_state(&mut c)),
    }
    // gdb retransmits the packet.
    let r = exchange_retransmitting(&mut c, "?").and_then(|(reply, nacks)| {
        if nacks != 0 {
            return Err(format!("the good retransmission was NAKed {nacks} times"));
        }
        match StopReply::parse(&reply) {
            Some(sr) if sr.kind == 'T' && sr.code == 5 => Ok(()),
            _ => Err(format!("retransmitted \"?\": got {reply:?}, expected T05...")),
        }
    });
    ok_or_panic(&mut c, "retransmission", r);
    // Bad checksum digits that are not hex at all.
    c.send_raw(b"$?#zz").unwrap();
    match next_unit(&mut c) {
        Ok(Unit::Nack) => {}
        other => panic!("sent \"$?#zz\": got {other:?}, expected a `-` NAK\n{}", server_state(&mut c)),
    }
    let r = check_alive(&mut c, &probe);
    ok_or_panic(&mut c, "liveness", r);
}

#[test]
fn truncated_packet_then_good_packet() {
    // The start of an `m` packet that never ends, then a complete `?`: the
    // server may resynchronise on `$` or NAK the merged packet; after at most
    // one retransmission `?` must be answered.
    garbage_then_good(b"$m4011");
}

#[test]
fn packet_without_hash_then_good_packet() {
    // Checksum digits without the `#`.
    garbage_then_good(b"$?3f");
}

#[test]
fn garbage_between_packets_is_ignored() {
    // Bytes outside `$...#xx` (none of them `$ # + - 0x03`): ignored.
    let (mut c, probe) = start_loop();
    for garbage in
        [&b"abc\r\n"[..], &b"\x00\x01\x02\xff\xfe\x7f"[..], &b"}*}*  xyz OK E01 qSupported"[..], &b"\n\n\r\r\t"[..]]
    {
        c.send_raw(garbage).unwrap();
        let r = exchange_retransmitting(&mut c, "?").and_then(|(reply, nacks)| {
            if nacks != 0 {
                return Err(format!("\"?\" after garbage was NAKed {nacks} times"));
            }
            match StopReply::parse(&reply) {
                Some(sr) if sr.kind == 'T' => Ok(()),
                _ => Err(format!("got {reply:?}, expected a T stop reply")),
            }
        });
        ok_or_panic(&mut c, &format!("garbage {:?} then \"?\"", String::from_utf8_lossy(garbage)), r);
        let r = check_alive(&mut c, &probe);
        ok_or_panic(&mut c, "liveness", r);
    }
}

#[test]
fn stray_acks_and_nacks_are_survivable() {
    // gdb sends `+` at connection start and `-` when a reply arrives
    // corrupted. A stray `+` must be ignored. A `-` after a reply may make the
    // server retransmit that reply; either way the session continues.
    let (mut c, probe) = start_loop();
    c.send_raw(b"+++").unwrap();
    let r = check_alive(&mut c, &probe);
    ok_or_panic(&mut c, "after stray `+`", r);

    let q = req(&mut c, "?");
    ok_or_panic(&mut c, "?", q.map(drop));
    c.send_raw(b"-").unwrap();
    // Now a request with a recognisable reply: everything before it must be
    // stop replies (retransmissions of the `?` reply).
    let p = format!("m{:x},{:x}", probe.addr, probe.bytes.len());
    let want = hex_encode(&probe.bytes);
    c.send_raw(&frame(p.as_bytes())).unwrap();
    let mut r = Ok(());
    for _ in 0..8 {
        match next_unit(&mut c) {
            Ok(Unit::Ack) => continue,
            Ok(Unit::Packet(s)) if s == want => break,
            Ok(Unit::Packet(s)) if StopReply::parse(&s).is_some() => continue,
            other => {
                r = Err(format!("after `-` and {p:?}: got {other:?}, expected {want:?}"));
                break;
            }
        }
    }
    ok_or_panic(&mut c, "stray `-`", r);
    let r = check_alive(&mut c, &probe);
    ok_or_panic(&mut c, "liveness", r);
}

#[test]
fn rle_in_replies_is_well_formed() {
    // xol may run-length encode replies. gdb's rules: `*` follows a data byte,
    // the count byte is printable (32..=126) and neither `#` nor `$`.
    let (mut c, probe) = start_loop_noack();
    let prog = fixture("loop");
    let zeros = symbol_addr(&prog, "g_counter");
    let r = expect_ok(&mut c, "Hg0");
    ok_or_panic(&mut c, "Hg0", r);
    for p in ["g".to_string(), format!("m{zeros:x},40")] {
        c.send_raw(&frame(p.as_bytes())).unwrap();
        assert_eq!(c.read_byte().unwrap(), b'$', "reply to {p}");
        let mut raw = Vec::new();
        loop {
            let b = c.read_byte().unwrap();
            if b == b'#' {
                break;
            }
            raw.push(b);
        }
        let cs = [c.read_byte().unwrap(), c.read_byte().unwrap()];
        assert_eq!(
            u8::from_str_radix(std::str::from_utf8(&cs).unwrap(), 16).unwrap(),
            checksum(&raw),
            "checksum of the reply to {p}"
        );
        for (i, &b) in raw.iter().enumerate() {
            if b == b'*' {
                assert!(i > 0, "reply to {p} starts with `*`");
                let n = raw.get(i + 1).copied().expect("`*` at the end");
                assert!(
                    (32..=126).contains(&n) && n != b'#' && n != b'$',
                    "bad run-length count {n:#04x} in the reply to {p}: {:?}",
                    String::from_utf8_lossy(&raw)
                );
            }
        }
        let body = decode_body(&raw).unwrap();
        let s = String::from_utf8(body).unwrap();
        assert!(s.len().is_multiple_of(2) && is_hex(&s.replace('x', "0")), "{p}: {s:?}");
        if p.starts_with('m') {
            assert_eq!(s, "00".repeat(0x40), "loop's .bss starts zeroed");
        }
    }
    let r = check_alive(&mut c, &probe);
    ok_or_panic(&mut c, "liveness", r);
}

#[test]
fn run_length_encoded_input_is_not_misread() {
    // gdb never run-length encodes what it sends. A stub may expand it (then
    // `0*"` is six `0`s, 3 bytes) or treat `*` as invalid hex (then E NN, and
    // memory is unchanged). Either way: no crash, no partial garbage.
    let prog = fixture("loop");
    let g = symbol_addr(&prog, "g_counter");
    run_cases("RLE in M", true, &[()], |c, _, ()| {
        expect_ok(c, &format!("M{g:x},4:ffffffff"))?;
        let r = req(c, &format!("M{g:x},3:0*\""))?;
        let now = mem(c, g, 4)?;
        if r == "OK" && now == [0, 0, 0, 0xff] {
            return Ok(());
        }
        if is_error_reply(&r) && now == [0xff; 4] {
            return Ok(());
        }
        Err(format!(
            "sent M{g:x},3:0*\": got {r:?} and memory is now {}; expected OK with 000000ff \
             (expanded) or E NN with ffffffff (rejected)",
            hex_encode(&now)
        ))
    });
}

// ---------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------

/// The `PacketSize` the server advertises in `qSupported`.
fn packet_size(c: &mut RspClient) -> usize {
    let sup = c.q_supported();
    let v = sup
        .split(';')
        .find_map(|f| f.strip_prefix("PacketSize="))
        .unwrap_or_else(|| panic!("no PacketSize in {sup:?}"));
    usize::from_str_radix(v, 16).unwrap()
}

#[test]
fn huge_m_length_gets_error_or_bounded_reply() {
    let prog = fixture("loop");
    let ps = symbol_addr(&prog, "probe_site");
    let cases = [
        format!("m{ps:x},ffffffffff"),
        format!("m{ps:x},ffffffffffffffff"),
        "m0,ffffffffff".to_string(),
        // An address range that wraps around the top of the address space.
        "mffffffffffffff00,200".to_string(),
    ];
    let mut failures = Vec::new();
    for p in &cases {
        let (mut c, probe) = start_loop();
        let max = packet_size(&mut c);
        c.no_ack_mode();
        let r = req(&mut c, p).and_then(|r| {
            if is_error_reply(&r) {
                return Ok(());
            }
            if r.len() % 2 != 0 || !is_hex(&r) {
                return Err(format!(
                    "sent {p:?}: got a malformed reply ({} chars) ending in {:?}; expected \
                     E NN or plain hex",
                    r.len(),
                    &r[r.len().saturating_sub(40)..]
                ));
            }
            if r.len() > max {
                return Err(format!(
                    "sent {p:?}: got {} hex chars, more than the advertised PacketSize {max:#x}",
                    r.len()
                ));
            }
            // A partial read must be the memory at the address.
            if p.starts_with(&format!("m{ps:x},")) && !r.starts_with(&hex_encode(&probe.bytes)) {
                return Err(format!("sent {p:?}: reply does not start with the probe bytes"));
            }
            Ok(())
        });
        let r = r.and_then(|()| check_alive(&mut c, &probe));
        if let Err(e) = r {
            failures.push(format!("case {p:?}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn huge_packets_get_error_replies() {
    // 1 MiB of data in X and M (to g_counter: the range runs far past the
    // mapped .bss), and a 1 MiB unknown packet.
    let prog = fixture("loop");
    let g = symbol_addr(&prog, "g_counter");
    #[derive(Debug)]
    enum Big {
        M,
        X,
        Unknown,
    }
    run_cases("1 MiB packets", true, &[Big::M, Big::X, Big::Unknown], |c, _, kind| {
        let n = 1 << 20;
        match kind {
            Big::M => {
                let mut p = format!("M{g:x},{n:x}:");
                p.push_str(&"5a".repeat(n));
                expect_error(c, &p)
            }
            Big::X => {
                let mut body = format!("X{g:x},{n:x}:").into_bytes();
                body.extend(escape_binary(&vec![0x5a; n]));
                let r = req_bytes(c, &body)?;
                if is_error_reply(&r) {
                    Ok(())
                } else {
                    Err(format!("1 MiB X: got {:?}, expected E NN", shorten(&r)))
                }
            }
            Big::Unknown => {
                // Longer than the PacketSize xol advertises: refused with an error, the session
                // goes on (checked by run_cases).
                let mut p = "qXolNoSuchPacket:".to_string();
                p.push_str(&"a".repeat(n));
                expect_error(c, &p)
            }
        }
    });
}

// ---------------------------------------------------------------------------
// Unknown and malformed requests
// ---------------------------------------------------------------------------

#[test]
fn unknown_packets_get_empty_reply() {
    let cases =
        ["qFooBar", "vFooBar", "QFooBar", "Z9,0,0", "z9,0,0", "qXfer:nosuch:read::0,100", "vMustReplyEmpty", "j"];
    // One session for all: each must leave it usable.
    let (mut c, probe) = start_loop_noack();
    let mut failures = Vec::new();
    for p in cases {
        if let Err(e) = expect_empty(&mut c, p).and_then(|()| check_alive(&mut c, &probe)) {
            failures.push(e);
            if !c.is_alive() {
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn unmapped_memory_reads_get_errors() {
    run_cases(
        "unmapped reads",
        true,
        &["m0,8", "mffffffffffff0000,10", "m8,1", "mffffffffffffffff,1", "m7ffffffffffff000,10"],
        |c, _, p| expect_error(c, p),
    );
}

#[test]
fn unmapped_memory_writes_get_errors() {
    run_cases(
        "unmapped writes",
        true,
        &["M0,4:01020304", "Mffffffffffff0000,2:abcd", "M8,1:00", "X0,4:abcd", "Xffffffffffff0000,1:z"],
        |c, _, p| expect_error(c, p),
    );
}

#[test]
fn invalid_hex_gets_errors() {
    let prog = fixture("loop");
    let g = symbol_addr(&prog, "g_counter");
    let ps = symbol_addr(&prog, "probe_site");
    let cases = vec![
        "mzz,4".to_string(),
        format!("m{ps:x},zz"),
        "m40zz56,4".to_string(),
        format!("m{ps:x}"),
        format!("m{ps:x},"),
        "m,4".to_string(),
        format!("M{g:x},4:zzzzzzzz"),
        "Mzz,4:00000000".to_string(),
        format!("M{g:x},zz:00"),
        format!("M{g:x},4"),
        // Declared length 4, one byte of data.
        format!("M{g:x},4:01"),
        // Odd number of hex digits.
        format!("M{g:x},2:123"),
        "Gzz".to_string(),
        "G00".to_string(),
        "Pzz=00".to_string(),
        "P10=zz".to_string(),
        "P10".to_string(),
        "pzz".to_string(),
        "p".to_string(),
    ];
    run_cases("invalid hex", true, &cases, |c, probe, p| {
        if p.starts_with(['G', 'P', 'p']) {
            expect_ok(c, "Hg0")?;
        }
        let before_g = if p.starts_with(['G', 'P']) { Some(regs(c)?) } else { None };
        let before_mem = mem(c, g, 4)?;
        expect_error(c, p)?;
        // Nothing may have changed.
        if let Some(b) = before_g {
            let after = regs(c)?;
            if after != b {
                return Err(format!("registers changed after {p:?}"));
            }
        }
        let after_mem = mem(c, g, 4)?;
        if after_mem != before_mem {
            return Err(format!(
                "{p:?}: g_counter changed from {} to {}",
                hex_encode(&before_mem),
                hex_encode(&after_mem)
            ));
        }
        let _ = probe;
        Ok(())
    });
}

#[test]
fn malformed_queries_get_errors() {
    // Malformed arguments to packets xol supports: an error reply in the
    // packet's own error form (`E NN`, or `F-1,errno` for vFile), never the
    // end of the session.
    #[derive(Debug)]
    enum Want {
        /// `E NN`.
        Error,
        /// `E NN` or the empty reply.
        ErrorOrEmpty,
        /// `F-1,errno`.
        FileError,
        /// `E NN` or OK (then `z0` must remove it again).
        ErrorOrOk,
    }
    let ps = symbol_addr(&fixture("loop"), "probe_site");
    let cases = [
        ("qXfer:features:read:nosuch.xml:0,fff".to_string(), Want::Error),
        ("qXfer:features:read:target.xml:zz,10".to_string(), Want::Error),
        ("qXfer:features:read:target.xml".to_string(), Want::Error),
        ("qXfer:exec-file:read:zz:0,10".to_string(), Want::Error),
        ("qXfer:auxv:read::zz,10".to_string(), Want::Error),
        ("qXfer:libraries-svr4:read::0,zz".to_string(), Want::Error),
        ("vFile:open:zz,0,0".to_string(), Want::FileError),
        ("vFile:pread:zz,10,0".to_string(), Want::FileError),
        ("qAttached:zz".to_string(), Want::Error),
        ("vAttach;0".to_string(), Want::Error),
        ("vAttach;zz".to_string(), Want::Error),
        ("qThreadExtraInfo,zz".to_string(), Want::ErrorOrEmpty),
        ("QCatchSyscalls:1;zz".to_string(), Want::Error),
        ("QCatchSyscalls:zz".to_string(), Want::Error),
        (format!("Z0,{ps:x},zz"), Want::ErrorOrOk),
        ("Z0,zz,1".to_string(), Want::Error),
        ("Z0".to_string(), Want::Error),
    ];
    run_cases("malformed queries", true, &cases, |c, _, (p, want)| {
        let r = req(c, p)?;
        let ok = match want {
            Want::Error => is_error_reply(&r),
            Want::ErrorOrEmpty => is_error_reply(&r) || r.is_empty(),
            Want::FileError => r.starts_with("F-1,") && is_hex(&r[4..]) && r.len() > 4,
            Want::ErrorOrOk => {
                if r == "OK" {
                    expect_ok(c, &p.replacen('Z', "z", 1))?;
                }
                is_error_reply(&r) || r == "OK"
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!("sent {p:?}: got {:?}, expected {want:?}", shorten(&r)))
        }
    });
}

#[test]
fn p_of_out_of_range_register_is_an_error() {
    run_cases("p/P out of range", true, &["p1000", "pffffffff", "P1000=00", "P1000=0000000000000000"], |c, _, p| {
        expect_ok(c, "Hg0")?;
        // A valid `p` works and agrees with `g` (so the error below is about
        // the register number, not about `p` itself).
        let g = regs(c)?;
        let rip = g_reg64(&g, AMD64_RIP);
        let r = req(c, &format!("p{AMD64_RIP:x}"))?;
        if !r.is_empty() && (r.len() != 16 || le_hex_to_u64(&r) != rip) {
            return Err(format!("p{AMD64_RIP:x} gave {r:?}, but g says rip={rip:#x}"));
        }
        expect_error(c, p)
    });
}

#[test]
fn h_with_unknown_thread() {
    // gdbserver answers E01. A stub may instead accept the id, but then `g`
    // must fail (not show some other thread's registers).
    run_cases(
        "H unknown thread",
        true,
        &["Hg999999", "Hgp999999.999999", "Hgzz", "Hg-1", "Hc999999", "Hczz", "Hx1"],
        |c, _, p| {
            let r = req(c, p)?;
            if is_error_reply(&r) {
                return Ok(());
            }
            if r == "OK" && p.starts_with("Hg") {
                let g = req(c, "g")?;
                if is_error_reply(&g) {
                    return Ok(());
                }
                return Err(format!("sent {p:?}: got OK, then `g` returned {:?} instead of an error", shorten(&g)));
            }
            if r == "OK" && p.starts_with("Hc") {
                return Ok(());
            }
            if r.is_empty() && p.starts_with("Hx") {
                // An unknown H operation may be treated as an unknown packet.
                return Ok(());
            }
            Err(format!("sent {p:?}: got {r:?}, expected E NN (or OK)"))
        },
    );
}

#[test]
fn vcont_with_bogus_action_is_an_error_and_does_not_resume() {
    let cases = ["vCont;z", "vCont;", "vCont;c:zz", "vCont;C", "vCont;Czz", "vCont;r", "vCont;c:-2"];
    run_cases("bogus vCont", true, &cases, |c, _, p| {
        let r = req(c, p)?;
        if !is_error_reply(&r) {
            return Err(format!("sent {p:?}: got {r:?}, expected E NN"));
        }
        // Still stopped where it was: `?` must say T05 and not exited.
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Breakpoints
// ---------------------------------------------------------------------------

#[test]
fn z0_at_unmapped_address_is_an_error() {
    run_cases("Z0 unmapped", true, &["Z0,0,1", "Z0,ffffffffffff0000,1", "Z0,8,1"], |c, _, p| expect_error(c, p));
}

#[test]
fn z0_of_never_inserted_address_is_harmless() {
    // OK or E NN are both fine; memory must not change (no "restored" byte
    // written where no breakpoint was).
    let prog = fixture("loop");
    let po = symbol_addr(&prog, "probe_other");
    run_cases("z0 never inserted", true, &[po, 0], |c, _, &a| {
        let before = if a != 0 { Some(mem(c, a, 4)?) } else { None };
        let p = format!("z0,{a:x},1");
        let r = req(c, &p)?;
        if r != "OK" && !is_error_reply(&r) {
            return Err(format!("sent {p:?}: got {r:?}, expected OK or E NN"));
        }
        if let Some(b) = before {
            let after = mem(c, a, 4)?;
            if after != b {
                return Err(format!("{p:?} changed memory: {} -> {}", hex_encode(&b), hex_encode(&after)));
            }
        }
        Ok(())
    });
}

#[test]
fn breakpoint_is_invisible_to_memory_reads() {
    let prog = fixture("loop");
    let ps = symbol_addr(&prog, "probe_site");
    let (mut c, _) = start_loop();
    // swbreak+: the stub reports breakpoint stops with the pc at the
    // breakpoint address.
    let sup = c.q_supported();
    assert!(sup.contains("swbreak+"), "{sup}");
    c.no_ack_mode();
    let before = c.read_mem(ps - 4, 12);
    assert_ne!(before[4], 0xcc, "probe_site starts with int3 already?");
    assert_eq!(c.request(&format!("Z0,{ps:x},1")), "OK");
    assert_eq!(c.read_mem(ps, 1), vec![before[4]], "m over a breakpoint shows cc");
    assert_eq!(c.read_mem(ps - 4, 12), before, "m across a breakpoint");
    // Inserting the same breakpoint twice is fine and still invisible.
    assert_eq!(c.request(&format!("Z0,{ps:x},1")), "OK");
    assert_eq!(c.read_mem(ps - 4, 12), before);
    // The breakpoint really is there: continuing stops at it.
    let stop = c.request("vCont;c");
    let sr = StopReply::parse(&stop).unwrap_or_else(|| panic!("{stop:?}"));
    assert_eq!((sr.kind, sr.code), ('T', 5), "{stop}");
    assert_eq!(c.request("Hg0"), "OK");
    let g = c.request("g");
    assert_eq!(g_reg64(&g, AMD64_RIP), ps, "stopped at {stop}");
    // Still invisible while stopped on it.
    assert_eq!(c.read_mem(ps - 4, 12), before);
    assert_eq!(c.request(&format!("z0,{ps:x},1")), "OK");
    assert_eq!(c.read_mem(ps - 4, 12), before);
    let probe = Probe { addr: ps, bytes: before[4..].to_vec() };
    let r = check_alive(&mut c, &probe);
    ok_or_panic(&mut c, "liveness", r);
}

// ---------------------------------------------------------------------------
// Ending the session
// ---------------------------------------------------------------------------

/// `spin` under xol, stopped at its entry, in no-ack mode (as gdb runs it;
/// it also spares the client an ack write to a server that already exited
/// after its last reply), plus the inferior's pid.
fn start_spin() -> (RspClient, u32) {
    let mut c = RspClient::xol(&fixture("spin"), &[]);
    c.no_ack_mode();
    let q = c.request("?");
    let sr = StopReply::parse(&q).unwrap_or_else(|| panic!("{q:?}"));
    let pid = inferior_pid(&mut c);
    if let Some(t) = stop_thread(&sr) {
        assert_eq!(t, pid as u64, "`?` names thread {t:#x}, the inferior is {pid}");
    }
    (c, pid)
}

#[test]
fn vkill_ends_session_and_kills_inferior() {
    let (mut c, pid) = start_spin();
    let r = c.request(&format!("vKill;{pid:x}"));
    assert_eq!(r, "OK", "vKill;{pid:x}");
    expect_clean_exit_and_no_inferior(&mut c, pid, "vKill");
}

#[test]
fn k_ends_session_and_kills_inferior() {
    let (mut c, pid) = start_spin();
    c.send("k").unwrap();
    // `k` has no reply in gdb's protocol; a stub may still send OK.
    match c.recv() {
        Ok(r) => assert_eq!(r, "OK", "reply to k"),
        Err(RspError::Eof) => {}
        Err(e) => panic!("after k: {e}\n{}", server_state(&mut c)),
    }
    expect_clean_exit_and_no_inferior(&mut c, pid, "k");
}

#[test]
fn closing_stdin_exits_and_kills_inferior() {
    let (mut c, pid) = start_spin();
    c.close_stdin();
    expect_clean_exit_and_no_inferior(&mut c, pid, "EOF while stopped");
}

#[test]
fn closing_stdin_while_running_exits_and_kills_inferior() {
    let (mut c, pid) = start_spin();
    c.send("vCont;c").unwrap();
    c.close_stdin();
    expect_clean_exit_and_no_inferior(&mut c, pid, "EOF while running");
}

#[test]
fn eof_in_the_middle_of_a_packet_exits_and_kills_inferior() {
    let (mut c, pid) = start_spin();
    c.send_raw(b"$m4011").unwrap();
    c.close_stdin();
    expect_clean_exit_and_no_inferior(&mut c, pid, "EOF mid-packet");
}

// ---------------------------------------------------------------------------
// Interrupt
// ---------------------------------------------------------------------------

#[test]
fn ctrl_c_while_running_stops_with_sigint() {
    let prog = fixture("spin");
    let (mut c, pid) = start_spin();
    let tick = symbol_addr(&prog, "spin_tick");
    let probe = Probe { addr: tick, bytes: c.read_mem(tick, 4) };
    for round in 0..2 {
        c.send("vCont;c").unwrap();
        c.interrupt();
        let stop = c
            .recv()
            .unwrap_or_else(|e| panic!("round {round}: no stop reply after 0x03: {e}\n{}", server_state(&mut c)));
        let sr = StopReply::parse(&stop).unwrap_or_else(|| panic!("not a stop reply: {stop:?}"));
        assert!(
            matches!(sr.kind, 'T' | 'S') && sr.code == 2,
            "round {round}: 0x03 gave {stop:?}, expected T02/S02 (SIGINT)"
        );
        if let Some(t) = stop_thread(&sr) {
            assert_eq!(t, pid as u64, "{stop}");
        }
        assert!(pid_alive(pid));
        let r = check_alive(&mut c, &probe);
        ok_or_panic(&mut c, &format!("after interrupt round {round}"), r);
    }
}

#[test]
fn vcont_is_acked_before_the_stop_in_ack_mode() {
    // In ack mode the `+` for a resume packet must come when the packet is
    // received, not with the stop reply: gdb waits `remote_timeout` (2 s) for
    // the ack and retransmits the packet if none comes.
    let mut c = RspClient::xol(&fixture("spin"), &[]);
    let probe_addr = symbol_addr(&fixture("spin"), "spin_tick");
    let probe = Probe { addr: probe_addr, bytes: c.read_mem(probe_addr, 4) };
    c.send_raw(&frame(b"vCont;c")).unwrap();
    c.set_timeout(Duration::from_secs(5));
    let ack = c.read_byte();
    c.set_timeout(RSP_TIMEOUT);
    c.interrupt();
    let stop = c.recv();
    assert!(
        matches!(ack, Ok(b'+')),
        "sent \"$vCont;c#a8\" in ack mode: no `+` within 5 s (got {ack:?}); the ack \
         only arrived with the stop reply after 0x03 ({stop:?})\n{}",
        server_state(&mut c)
    );
    let stop = stop.unwrap_or_else(|e| panic!("no stop after 0x03: {e}\n{}", server_state(&mut c)));
    assert!(StopReply::parse(&stop).is_some_and(|s| s.code == 2), "{stop:?}");
    let r = check_alive(&mut c, &probe);
    ok_or_panic(&mut c, "liveness", r);
}

#[test]
fn ctrl_c_while_stopped_is_harmless() {
    // 0x03 while the inferior is stopped: gdbserver ignores it. A stub may
    // instead queue a stop for the next resume; either way requests go on.
    let (mut c, probe) = start_loop_noack();
    c.interrupt();
    let r = req(&mut c, "qXolStillThere");
    let r = r.and_then(|r| {
        if r.is_empty() {
            Ok(())
        } else {
            Err(format!("0x03 then qXolStillThere: got {r:?}, expected the empty reply"))
        }
    });
    ok_or_panic(&mut c, "0x03 while stopped", r);
    let r = check_alive(&mut c, &probe);
    ok_or_panic(&mut c, "liveness", r);
}

// ---------------------------------------------------------------------------
// monitor
// ---------------------------------------------------------------------------

/// Sends `qRcmd` for `cmd`; returns the console text of the `O` packets and
/// the final reply.
fn monitor(c: &mut RspClient, cmd: &str) -> (String, String) {
    c.send(&format!("qRcmd,{}", hex_str(cmd))).unwrap();
    let mut text = Vec::new();
    loop {
        let r = c.recv().unwrap_or_else(|e| panic!("monitor {cmd}: {e}\n{}", server_state(c)));
        if r != "OK" && r.starts_with('O') && r.len() > 1 && is_hex(&r[1..]) {
            text.extend(hex_decode(&r[1..]));
            continue;
        }
        return (String::from_utf8_lossy(&text).into_owned(), r);
    }
}

#[test]
fn monitor_help_prints_console_output_then_ok() {
    let (mut c, probe) = start_loop();
    let (text, last) = monitor(&mut c, "help");
    assert_eq!(last, "OK", "monitor help ended with {last:?}; text {text:?}");
    assert!(text.contains("exit"), "monitor help lists no `exit`: {text:?}");
    let (text, last) = monitor(&mut c, "no-such-monitor-command");
    assert!(last == "OK" || is_error_reply(&last), "{last:?} {text:?}");
    // qRcmd with invalid hex.
    let r = req(&mut c, "qRcmd,zz");
    ok_or_panic(
        &mut c,
        "qRcmd,zz",
        r.and_then(|r| {
            if is_error_reply(&r) || r.is_empty() {
                Ok(())
            } else {
                Err(format!("qRcmd,zz: got {r:?}, expected E NN"))
            }
        }),
    );
    let r = check_alive(&mut c, &probe);
    ok_or_panic(&mut c, "liveness", r);
}

#[test]
fn monitor_exit_ends_xol_and_kills_inferior() {
    let (mut c, pid) = start_spin();
    let (_, last) = monitor(&mut c, "exit");
    assert_eq!(last, "OK", "monitor exit");
    expect_clean_exit_and_no_inferior(&mut c, pid, "monitor exit");
}
