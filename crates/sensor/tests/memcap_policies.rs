//! The two global caps that fail closed on new state, inline:
//! - `stream.memcap` (TCP session memory): a new TCP session that does not fit is not
//!   created, `tcp.ssn_memcap_drop` counts it and the `stream_memcap` exception policy
//!   applies to its flow (inline default: drop-flow; monitor: ignore, still counted);
//! - `app-layer.memcap` (parser state of all flows: transactions, recipient lists, command
//!   queues, line buffers): a flow whose parser cannot get room has its parser state freed
//!   and the `app_layer_error` policy applies (inline default: drop-flow), counted in
//!   `app_layer.memcap`; the accounting is back to 0 once every flow ended.

use std::sync::Arc;

use etherparse::PacketBuilder;
use sekisho_engine::event::Event;
use sekisho_engine::{ExceptionAction, ExceptionTarget, LinkType, Timestamp, Verdict};
use sekisho_pcap::MergedCaptures;
use sekisho_policy::Policy;
use sekisho_sensor::{Mode, Record, RuleSet, Sensor, Settings};

const SERVER: [u8; 4] = [203, 0, 113, 25];

struct Frame {
    ts: Timestamp,
    link: LinkType,
    data: Vec<u8>,
}

/// A real capture (swaks/Postfix in a lab namespace), or `None` when fixtures are absent.
fn frames(name: &str) -> Option<Vec<Frame>> {
    let path = sekisho_testutil::require_fixture(format!("tests/fixtures/captures/smtp/{name}"))?;
    let mut caps = MergedCaptures::open(&[path]).expect("open capture");
    let mut out = Vec::new();
    caps.for_each(None, |p| {
        out.push(Frame {
            ts: Timestamp::from_secs_nanos(p.ts.sec, u64::from(p.ts.nsec)),
            link: LinkType::from_linktype(p.link_type).expect("supported link type"),
            data: p.data.to_vec(),
        })
    });
    assert!(caps.errors().is_empty(), "{:?}", caps.errors());
    Some(out)
}

/// A TCP segment between client `10.0.0.(10 + i)` (the policy's `HOME_NET`), port
/// `40000 + i`, and the server's port 25.
fn seg(i: u16, to_server: bool, seq: u32, ack: u32, flags: &str, data: &[u8]) -> Vec<u8> {
    let c = [10, 0, 0, 10 + i as u8];
    let port = 40000 + i;
    let (src, dst, sport, dport) = if to_server {
        (c, SERVER, port, 25)
    } else {
        (SERVER, c, 25, port)
    };
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 65535);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(ack);
    }
    let mut out = Vec::new();
    b.write(&mut out, data).expect("frame");
    out
}

/// Settings with the strict recipient policy (`examples/smtp/recipients-strict.yaml`).
fn strict(mode: Mode, sets: &[(&str, &str)]) -> Sensor {
    let path = sekisho_testutil::repo_root().join("examples/smtp/recipients-strict.yaml");
    let (policy, _) = Policy::check_file(&path, &Default::default())
        .into_result()
        .unwrap_or_else(|d| panic!("policy invalid: {d:?}"));
    let mut settings = Settings::new(mode);
    settings.apply_policy(&policy);
    for (k, v) in sets {
        settings.set(k, v).expect("setting");
    }
    let rules = Arc::new(RuleSet::from_policy(&policy, settings.compile_options()));
    Sensor::new(&settings, Some(rules))
}

/// What a run produced.
#[derive(Default)]
struct Out {
    /// Drop records' reasons.
    reasons: Vec<String>,
    /// Exception records (monitor mode; inline a dropping policy logs a drop record):
    /// target, action.
    exceptions: Vec<(ExceptionTarget, ExceptionAction)>,
    /// Every flow record's `exception_policy` entries.
    flow_exceptions: Vec<(ExceptionTarget, ExceptionAction)>,
    /// Each exception record's cause, in words.
    causes: Vec<&'static str>,
    counters: Vec<(&'static str, u64)>,
}

impl Out {
    fn drain(&mut self, sensor: &mut Sensor) {
        while let Some(r) = sensor.poll_record() {
            match r {
                Record::Drop(d) => self.reasons.push(d.reason.to_string()),
                Record::Event(Event::Exception(x)) => {
                    self.exceptions.push((x.target, x.action));
                    self.causes.push(x.cause);
                }
                Record::Stats { counters, .. } => self.counters = counters,
                Record::Flow { record, .. } => self
                    .flow_exceptions
                    .extend(record.exception_policy.iter().copied()),
                _ => {}
            }
        }
    }

    fn counter(&self, k: &str) -> u64 {
        self.counters
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no counter {k}"))
    }
}

/// `held` half-open sessions (a SYN each, from distinct clients) at the capture's start,
/// then the real capture; returns the capture's verdicts and what the run logged.
fn sessions_then_capture(
    mode: Mode,
    stream_memcap: &str,
    held: u16,
    capture: &[Frame],
) -> (Vec<Verdict>, Out) {
    let mut sensor = strict(mode, &[("stream.memcap", stream_memcap)]);
    let mut out = Out::default();
    let t0 = capture[0].ts;
    for i in 0..held {
        let v = sensor.handle_packet(t0, LinkType::Ethernet, &seg(i, true, 7, 0, "S", &[]));
        assert!(!v.is_drop(), "held session {i} fits");
    }
    let per = sensor.memuse().stream / usize::from(held.max(1));
    if held > 0 {
        assert!(per >= 400, "a session counts its boxed state: {per} bytes");
    }
    let verdicts = capture
        .iter()
        .map(|f| {
            let v = sensor.handle_packet(f.ts, f.link, &f.data);
            out.drain(&mut sensor);
            v
        })
        .collect();
    let end = capture.last().expect("frames").ts;
    sensor.finish(end);
    out.drain(&mut sensor);
    assert_eq!(
        sensor.memuse().stream,
        0,
        "every session released at flow end"
    );
    (verdicts, out)
}

#[test]
fn a_tcp_session_past_the_stream_memcap_is_dropped_inline_with_its_exception_record() {
    let Some(capture) = frames("swaks-plain.pcap") else {
        return;
    };
    // Room for the held sessions and the real one: the allowed message passes.
    let (verdicts, out) = sessions_then_capture(Mode::Inline, "64kb", 8, &capture);
    assert!(verdicts.iter().all(|v| !v.is_drop()), "{verdicts:?}");
    assert_eq!(out.counter("tcp.ssn_memcap_drop"), 0);
    // Eight sessions fill 4 KiB (a session is about 490 bytes): the capture's session is
    // the one past the cap, and its whole flow is dropped, SYN first.
    let (verdicts, out) = sessions_then_capture(Mode::Inline, "4kb", 8, &capture);
    assert!(verdicts.iter().all(|v| v.is_drop()), "{verdicts:?}");
    assert!(
        out.reasons.iter().any(|r| r == "stream memcap"),
        "{:?}",
        out.reasons
    );
    assert!(
        out.flow_exceptions
            .contains(&(ExceptionTarget::StreamMemcap, ExceptionAction::DropFlow)),
        "the flow record names stream_memcap: {:?}",
        out.flow_exceptions
    );
    assert!(out.counter("tcp.ssn_memcap_drop") >= 1);
    assert!(out.counter("tcp.ssn_memcap_exception_policy.drop_flow") >= 1);
}

#[test]
fn a_tcp_session_past_the_stream_memcap_is_recorded_and_counted_in_monitor_mode() {
    let Some(capture) = frames("swaks-plain.pcap") else {
        return;
    };
    let (verdicts, out) = sessions_then_capture(Mode::Monitor, "4kb", 8, &capture);
    assert!(verdicts.iter().all(|v| !v.is_drop()), "{verdicts:?}");
    assert_eq!(
        out.exceptions,
        [(ExceptionTarget::StreamMemcap, ExceptionAction::Ignore)]
    );
    assert!(out.counter("tcp.ssn_memcap_drop") >= 1);
    assert_eq!(out.counter("tcp.ssn_memcap_exception_policy.drop_flow"), 0);
}

/// `flows` concurrent synthetic SMTP sessions: handshakes, banners, EHLO and MAIL FROM,
/// then `rounds` rounds in which each client pipelines 20 more RCPT TO lines the server
/// never answers (recipients and queued commands pile up in every parser at once).
/// Returns per flow whether any of its packets was dropped, and what the run logged.
fn smtp_sessions(sensor: &mut Sensor, flows: u16, rounds: u32, out: &mut Out) -> Vec<bool> {
    let mut ts = 1_000_000_000u64;
    let mut dropped = vec![false; usize::from(flows)];
    let mut cseq = vec![1001u32; usize::from(flows)];
    let sseq = 5001u32;
    let mut send = |sensor: &mut Sensor, i: u16, frame: Vec<u8>, dropped: &mut Vec<bool>| {
        ts += 10;
        let v = sensor.handle_packet(Timestamp(ts), LinkType::Ethernet, &frame);
        dropped[usize::from(i)] |= v.is_drop();
    };
    let banner = b"220 mx.example ESMTP\r\n";
    for i in 0..flows {
        send(sensor, i, seg(i, true, 1000, 0, "S", &[]), &mut dropped);
        send(
            sensor,
            i,
            seg(i, false, 5000, 1001, "SA", &[]),
            &mut dropped,
        );
        send(sensor, i, seg(i, true, 1001, 5001, "A", &[]), &mut dropped);
        send(
            sensor,
            i,
            seg(i, false, sseq, 1001, "A", banner),
            &mut dropped,
        );
        let hello = b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n";
        send(
            sensor,
            i,
            seg(i, true, 1001, sseq + banner.len() as u32, "A", hello),
            &mut dropped,
        );
        cseq[usize::from(i)] += hello.len() as u32;
    }
    for r in 0..rounds {
        for i in 0..flows {
            let mut lines = Vec::new();
            for k in 0..20 {
                lines.extend_from_slice(
                    format!("RCPT TO:<alice@example.com> NOTIFY=NEVER ORCPT=rfc822;r{r}k{k}\r\n")
                        .as_bytes(),
                );
            }
            let c = cseq[usize::from(i)];
            let ack = sseq + banner.len() as u32;
            send(sensor, i, seg(i, true, c, ack, "A", &lines), &mut dropped);
            cseq[usize::from(i)] = c + lines.len() as u32;
        }
        out.drain(sensor);
    }
    dropped
}

#[test]
fn concurrent_smtp_sessions_past_the_app_layer_memcap_fail_closed_and_release_it() {
    // Enough room: 24 sessions of 200 recipients each, nothing dropped.
    let mut sensor = strict(Mode::Inline, &[]);
    let mut out = Out::default();
    let dropped = smtp_sessions(&mut sensor, 24, 10, &mut out);
    assert!(dropped.iter().all(|d| !d), "{dropped:?} {:?}", out.reasons);
    let peak = sensor.memuse();
    assert!(
        peak.app_layer > 24 * 200 * 40,
        "parser state counted: {peak:?}"
    );
    assert!(peak.app_layer <= peak.app_layer_limit);
    sensor.finish(Timestamp(2_000_000_000));
    out.drain(&mut sensor);
    assert_eq!(out.counter("app_layer.memcap"), 0);
    assert_eq!(sensor.memuse().app_layer, 0);

    // A quarter of that: the flows whose parsers grow past the shared cap are dropped
    // with an app_layer_error exception record; the ones that fit go on.
    let limit = peak.app_layer / 4;
    let mut sensor = strict(Mode::Inline, &[("app-layer.memcap", &limit.to_string())]);
    let mut out = Out::default();
    let dropped = smtp_sessions(&mut sensor, 24, 10, &mut out);
    let m = sensor.memuse();
    assert!(m.app_layer <= limit, "{m:?}");
    assert!(dropped.iter().any(|d| *d), "{dropped:?}");
    assert!(
        dropped.iter().any(|d| !d),
        "the first flows fit: {dropped:?}"
    );
    sensor.finish(Timestamp(2_000_000_000));
    out.drain(&mut sensor);
    let hit = dropped.iter().filter(|d| **d).count() as u64;
    assert_eq!(out.counter("app_layer.memcap"), hit);
    assert!(out.counter("app_layer.error.exception_policy.drop_flow") >= hit);
    assert_eq!(
        out.flow_exceptions
            .iter()
            .filter(|e| **e == (ExceptionTarget::AppLayerError, ExceptionAction::DropFlow))
            .count() as u64,
        hit,
        "{:?}",
        out.flow_exceptions
    );
    assert!(
        out.reasons.iter().all(|r| r == "applayer error"),
        "{:?}",
        out.reasons
    );
    assert_eq!(sensor.memuse().app_layer, 0, "accounting back to 0");
    assert_eq!(out.counter("app_layer.memuse"), 0);

    // Monitor mode logs the exception records themselves: their cause names the budget, not
    // a parser error (`--explain` prints it).
    let mut sensor = strict(Mode::Monitor, &[("app-layer.memcap", &limit.to_string())]);
    let mut out = Out::default();
    smtp_sessions(&mut sensor, 24, 10, &mut out);
    sensor.finish(Timestamp(2_000_000_000));
    out.drain(&mut sensor);
    assert!(!out.causes.is_empty());
    assert!(
        out.causes
            .iter()
            .all(|c| c.starts_with("app-layer.memcap was reached")),
        "{:?}",
        out.causes
    );
}

#[test]
fn a_real_session_is_still_enforced_while_the_app_layer_memcap_is_spent() {
    let Some(capture) = frames("swaks-plain-disallowed.pcap") else {
        return;
    };
    // Synthetic sessions take the shared budget (and stay open); then the real session
    // with its disallowed recipient: it must never pass, whether the rule or the cap
    // stops it.
    let mut sensor = strict(Mode::Inline, &[("app-layer.memcap", "192kb")]);
    let mut out = Out::default();
    let dropped = smtp_sessions(&mut sensor, 16, 10, &mut out);
    assert!(
        dropped.iter().any(|d| *d),
        "the budget was spent: {dropped:?}"
    );
    let rcpt = capture
        .iter()
        .position(|f| {
            f.data
                .windows(30)
                .any(|w| w == b"RCPT TO:<mallory@evil.example>")
        })
        .expect("the disallowed RCPT");
    // Replayed right after the synthetic sessions (same clock), so none of them times out.
    let t0 = capture[0].ts;
    let verdicts: Vec<Verdict> = capture
        .iter()
        .map(|f| {
            let ts = Timestamp(1_000_100_000 + f.ts.micros_since(t0));
            sensor.handle_packet(ts, f.link, &f.data)
        })
        .collect();
    assert!(verdicts[rcpt].is_drop(), "{verdicts:?}");
    assert!(verdicts[rcpt..].iter().all(|v| v.is_drop()), "{verdicts:?}");
    sensor.finish(Timestamp(2_000_000_000));
    out.drain(&mut sensor);
    assert!(out.counter("app_layer.memcap") > 0);
    assert_eq!(sensor.memuse().app_layer, 0);
}
