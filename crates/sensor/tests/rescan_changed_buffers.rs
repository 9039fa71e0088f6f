//! Detection scans a live transaction's buffers only when they changed (the prefilter keeps
//! per-transaction, per-buffer progress), yet a buffer that gains its match in a later
//! packet of the same transaction is scanned again and the rule fires there. Real captures
//! (tests/fixtures/captures/smtp/README.md, tests/fixtures/captures/names/):
//!
//! - `two-messages.pcap` (python3 smtplib, one command per segment): the second message's
//!   recipients `bob@example.org` (pkt 21) and `carol@example.net` (pkt 23) arrive one per
//!   packet, so the list buffer `smtp.rcpt_to` of transaction 1 grows by an instance that
//!   the earlier packets' scan never saw; and transaction 0 exists from `ehlo` (pkt 7) on
//!   while its `smtp.mail_from` (a single buffer) only appears with `mail FROM:` (pkt 9).
//! - `names/http.pcap` (curl against python3 http.server): the server's bare ACK (pkt 5)
//!   sees transaction 0 without a response, the response head follows in pkt 6, so the
//!   single buffer `http.server` goes from absent to present within the transaction.
//!
//! Each alert lands on exactly that packet (as it did before the per-transaction progress:
//! scripts/diff-logs.sh compares the whole logs), and packets that change nothing scan
//! nothing: far fewer buffer scans than packets × buffers.

use std::sync::Arc;

use sekisho_engine::{LinkType, Timestamp};
use sekisho_pcap::MergedCaptures;
use sekisho_policy::Policy;
use sekisho_sensor::{Mode, Record, RuleSet, Sensor, Settings};

const RULES: &str = r#"alert smtp any any -> any any (msg:"second recipient of the transaction"; smtp.rcpt_to; content:"carol@example.net"; sid:1; rev:1;)
alert smtp any any -> any any (msg:"mail from after the transaction began"; smtp.mail_from; content:"first@example.com"; sid:2; rev:1;)
alert http any any -> any any (msg:"server header of the response"; flow:to_client; http.server; content:"SimpleHTTP"; sid:3; rev:1;)
alert http any any -> any any (msg:"status of the response"; flow:to_client; http.stat_code; content:"404"; sid:4; rev:1;)
"#;

struct Run {
    /// (sid, packet number, tx id) per alert, in order.
    alerts: Vec<(u64, u64, Option<u64>)>,
    packets: u64,
    buffer_scans: u64,
    /// Buffer scans per packet (index: packet number - 1).
    scans_per_packet: Vec<u64>,
}

fn run(capture: &str) -> Option<Run> {
    let path = sekisho_testutil::require_fixture(capture)?;
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("t.rules");
    std::fs::write(&rules, RULES).expect("write rules");
    let checked = Policy::check_rules_files(&[rules], &Default::default());
    assert!(
        !checked.diagnostics.iter().any(|d| d.is_error()),
        "{:?}",
        checked.diagnostics
    );
    let policy = checked.policy;
    let mut settings = Settings::new(Mode::Monitor);
    settings.apply_policy(&policy);
    let rs = RuleSet::from_policy(&policy, settings.compile_options());
    assert_eq!(rs.sigs().len(), 4, "every test rule loads");
    let mut sensor = Sensor::new(&settings, Some(Arc::new(rs)));
    let mut frames = Vec::new();
    let mut caps = MergedCaptures::open(&[path]).expect("open capture");
    caps.for_each(None, |p| {
        frames.push((
            Timestamp::from_secs_nanos(p.ts.sec, u64::from(p.ts.nsec)),
            LinkType::from_linktype(p.link_type).expect("supported link type"),
            p.data.to_vec(),
        ))
    });
    assert!(caps.errors().is_empty(), "{:?}", caps.errors());
    let mut out = Run {
        alerts: Vec::new(),
        packets: 0,
        buffer_scans: 0,
        scans_per_packet: Vec::new(),
    };
    let drain = |sensor: &mut Sensor, out: &mut Run| {
        while let Some(r) = sensor.poll_record() {
            if let Record::Alert(a) = r {
                out.alerts
                    .push((a.alert.sid, a.head.pkt_num, a.tx.as_ref().map(|t| t.0)));
            }
        }
    };
    let mut last = Timestamp(0);
    for (ts, link, data) in &frames {
        let before = sensor.detect_stats().buffer_scans;
        sensor.handle_packet(*ts, *link, data);
        out.scans_per_packet
            .push(sensor.detect_stats().buffer_scans - before);
        out.packets += 1;
        last = *ts;
        drain(&mut sensor, &mut out);
    }
    sensor.finish(last);
    drain(&mut sensor, &mut out);
    out.buffer_scans = sensor.detect_stats().buffer_scans;
    Some(out)
}

#[test]
fn a_recipient_and_a_mail_from_added_later_in_the_transaction_are_scanned() {
    let Some(r) = run("tests/fixtures/captures/smtp/two-messages.pcap") else {
        return;
    };
    // sid 2: tx 0's mail_from, present from pkt 9 (tx 0 began with `ehlo`, pkt 7).
    // sid 1: tx 1's second recipient, pkt 23 (its first, bob, came in pkt 21).
    assert_eq!(r.alerts, vec![(2, 9, Some(0)), (1, 23, Some(1))]);
}

#[test]
fn a_response_head_after_the_request_is_scanned_and_unchanged_buffers_are_not() {
    let Some(r) = run("tests/fixtures/captures/names/http.pcap") else {
        return;
    };
    // Tx 0: the server's ACK (pkt 5) saw no response; its head is in pkt 6. Tx 1 (request
    // pkt 10) is answered in pkt 11 with 404.
    assert_eq!(
        &r.alerts[..3],
        &[(3, 6, Some(0)), (3, 11, Some(1)), (4, 11, Some(1))]
    );
    // The rules read two response buffers. Each response head is scanned once per
    // direction that sees it: by the to-client packet that completes it and (four of the
    // five) by the client's next ACK; every other packet scans nothing, however long the
    // transaction lives (the server's bare ACK, pkt 5, saw both buffers absent).
    let scanned: Vec<(usize, u64)> = r
        .scans_per_packet
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(i, &n)| (i + 1, n))
        .collect();
    assert_eq!(
        scanned,
        vec![
            (6, 2),
            (7, 2),
            (11, 2),
            (21, 2),
            (22, 2),
            (33, 2),
            (34, 2),
            (45, 2),
            (46, 2)
        ]
    );
    assert_eq!(r.buffer_scans, 18, "of {} packets", r.packets);
}
