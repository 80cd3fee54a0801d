//! A session transcript test (test builds only): the opening of a real gdb 13 session against
//! gdbserver, replayed through [`Decoder`], [`Link`], [`parse`] and the reply encoders the way
//! the server will use them, with the stream cut into arbitrary reads. It checks that the
//! pieces compose: acks until `QStartNoAckMode`, a NAK answered by a resend, no acks after,
//! `\x03` while running, a malformed packet answered `E.` without ending the session.

use super::framing::{frame, Input};
use super::reply::{self, StopReply, Stopped, Support};
use super::request::{parse, Request, Resume, XferObject, XferOp};
use super::thread_id::ThreadId;
use super::{Decoder, Link};

/// What the test server answers; `None` for packets with no reply (`vCont` until the stop).
fn answer(req: &Request<'_>, running: &mut bool) -> Option<Vec<u8>> {
    let me = ThreadId::new(0x7a3, 0x7a3);
    Some(match req {
        Request::Supported(_) => reply::supported(&[
            ("PacketSize", Support::Value("3fff")),
            ("QStartNoAckMode", Support::Yes),
            ("multiprocess", Support::Yes),
            ("qXfer:features:read", Support::Yes),
        ]),
        Request::StartNoAckMode | Request::SetThread { .. } => reply::ok(),
        Request::HaltReason => {
            StopReply::Stopped(Stopped { signal: 5, thread: Some(me), ..Stopped::default() }).encode()
        }
        Request::Xfer(x) if x.object == XferObject::Features => match x.op {
            XferOp::Read { offset, len } => {
                reply::xfer_slice(b"<target><architecture>i386:x86-64</architecture></target>", offset, len)
            }
            XferOp::Write { .. } => reply::error(1),
        },
        Request::VCont(actions) if actions.iter().all(|a| a.resume == Resume::Continue) => {
            *running = true;
            return None;
        }
        _ => reply::empty(),
    })
}

#[test]
fn a_gdb_session_opening() {
    // gdb's side: packets as gdb 13 sends them, with its acks.
    let mut from_gdb = b"+".to_vec();
    from_gdb.extend(frame(b"qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;xmlRegisters=i386"));
    // gdb NAKs the reply once (a line glitch): the server must resend it; then gdb acks.
    from_gdb.extend(b"-+");
    from_gdb.extend(frame(b"vMustReplyEmpty"));
    from_gdb.extend(b"+");
    from_gdb.extend(frame(b"QStartNoAckMode"));
    from_gdb.extend(b"+");
    // No acks from here on.
    from_gdb.extend(frame(b"Hgp0.0"));
    from_gdb.extend(frame(b"qXfer:features:read:target.xml:0,20"));
    from_gdb.extend(frame(b"qXfer:features:read:target.xml:20,fff"));
    from_gdb.extend(frame(b"?"));
    from_gdb.extend(frame(b"m7ffff7fe3290"));
    from_gdb.extend(frame(b"vCont;c:p7a3.-1"));
    from_gdb.push(0x03);

    for cut in [1, 2, 3, 5, 7, 13, 64, 4096] {
        let mut decoder = Decoder::new();
        let mut link = Link::new();
        let mut to_gdb = Vec::new();
        let mut seen = Vec::new();
        let mut running = false;
        let mut interrupted = false;
        for piece in from_gdb.chunks(cut) {
            for event in decoder.feed(piece).collect::<Vec<_>>() {
                let r = link.receive(event);
                to_gdb.extend(r.ack);
                match r.input {
                    Input::Packet(p) => {
                        let out = match parse(&p) {
                            Ok(req) => {
                                seen.push(String::from_utf8_lossy(&p).into_owned());
                                let no_ack = req == Request::StartNoAckMode;
                                let out = answer(&req, &mut running);
                                if let Some(out) = out {
                                    to_gdb.extend(link.send(&out));
                                }
                                if no_ack {
                                    link.set_no_ack();
                                }
                                continue;
                            }
                            Err(e) => reply::parse_error(&e),
                        };
                        seen.push(format!("error: {}", String::from_utf8_lossy(&out)));
                        to_gdb.extend(link.send(&out));
                    }
                    Input::Resend(wire) => to_gdb.extend(wire),
                    Input::Interrupt => {
                        assert!(running, "Ctrl-C while running");
                        interrupted = true;
                        let stop =
                            Stopped { signal: 2, thread: Some(ThreadId::new(0x7a3, 0x7a3)), ..Stopped::default() };
                        to_gdb.extend(link.send(&StopReply::Stopped(stop).encode()));
                    }
                    Input::Notification(_) | Input::Dropped(_) | Input::Nothing => {}
                }
            }
        }
        assert!(interrupted && link.no_ack());
        assert_eq!(
            seen,
            [
                "qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;xmlRegisters=i386",
                "vMustReplyEmpty",
                "QStartNoAckMode",
                "Hgp0.0",
                "qXfer:features:read:target.xml:0,20",
                "qXfer:features:read:target.xml:20,fff",
                "?",
                "error: E.malformed m packet: missing `,length`",
                "vCont;c:p7a3.-1",
            ],
            "cut {cut}"
        );
        let supported = frame(b"PacketSize=3fff;QStartNoAckMode+;multiprocess+;qXfer:features:read+");
        let mut want = b"+".to_vec();
        want.extend(&supported);
        want.extend(&supported); // the resend after gdb's '-'
        want.extend(b"+");
        want.extend(frame(b""));
        want.extend(b"+");
        want.extend(frame(b"OK"));
        want.extend(frame(b"OK"));
        want.extend(frame(b"m<target><architecture>i386:x86-6"));
        want.extend(frame(b"l4</architecture></target>"));
        want.extend(frame(b"T05thread:p7a3.7a3;"));
        want.extend(frame(b"E.malformed m packet: missing `,length`"));
        want.extend(frame(b"T02thread:p7a3.7a3;"));
        assert_eq!(String::from_utf8_lossy(&to_gdb), String::from_utf8_lossy(&want), "cut {cut}");
    }
}
