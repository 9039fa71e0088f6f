//! Floods against the sensor's caps, inline with the recipient allow list of
//! `examples/smtp/recipients-strict.yaml`, each in a process of its own so that its peak
//! resident memory (VmHWM) is its flood's alone:
//!
//! - `syn_flood_stays_within_flow_memcap`: SYNs from distinct sources fill the flow table
//!   many times over; the table evicts instead of growing (`flow.memcap` counted) and the
//!   table, every flow's TCP session and the detector's per-flow state stay within
//!   `flow.memcap` (the cap counts what they really take);
//! - `fragment_flood_stays_within_defrag_memcap`: datagrams whose first fragment only ever
//!   arrives; the reassembler holds what `defrag.memcap` allows and refuses the rest
//!   (`defrag.memcap_exception` counted, each refused fragment dropped inline by the
//!   `defrag_memcap` exception policy);
//! - `recipient_flood_in_one_session_is_dropped_within_bounds`: one SMTP session whose one
//!   message has 100,000 recipients, the disallowed one last: the flow is dropped with a
//!   drop record, and the per-transaction and per-flow parser caps bound its memory.
//!
//! Each test runs its flood in a child process (this test binary, re-executed with
//! `--exact NAME` and [`CHILD`] set), resets the high-water mark once the rules are loaded
//! and the sensor built (`/proc/self/clear_refs`), and asserts the peak growth during the
//! flood stays within the configured caps plus a stated slack (allocator slack, records in
//! flight). Sizes are scaled for a debug build on a loaded 2-core CI box (a few seconds
//! each) while still filling each cap many times over; the full-size figures come from
//! `cargo run --release -p sekisho-sensor --example flood` (docs/exception-policies.md).

use std::process::Command;
use std::sync::Arc;

use etherparse::PacketBuilder;
use sekisho_engine::app::smtp::{MAX_LINE_LEN, MAX_QUEUE, MAX_RCPT_BYTES_PER_TX};
use sekisho_engine::event::Event;
use sekisho_engine::{ExceptionAction, ExceptionTarget, LinkType, Timestamp};
use sekisho_sensor::{Mode, Record, RuleSet, Sensor, Settings};

/// The two recipients the allow list allows, taken in turn by the recipient flood.
const ALLOWED: [&[u8]; 2] = [
    b"RCPT TO:<alice@example.com>\r\n",
    b"RCPT TO:<bob@example.org>\r\n",
];

/// Environment variable naming the test a child process runs.
const CHILD: &str = "SEKISHO_FLOOD_CHILD";

const SERVER: [u8; 4] = [203, 0, 113, 25];

/// Runs `flood` in a process of its own: in the parent, re-executes this binary for the
/// test `name` alone and asserts it passed; in that child, runs `flood`.
fn in_own_process(name: &str, flood: fn()) {
    if std::env::var(CHILD).as_deref() == Ok(name) {
        flood();
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .output()
        .expect("re-execute the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The child's figures, for the parent's output (`--nocapture` shows them).
    eprint!("{stderr}");
    assert!(
        out.status.success(),
        "{name} failed in its own process:\n{stdout}\n{stderr}"
    );
    // A filter that matched nothing would pass without running the flood.
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run in the child:\n{stdout}"
    );
}

/// A `/proc/self/status` field in KiB (`VmRSS:`, `VmHWM:`).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM/VmRSS line")
}

/// Peak resident memory measured from now on: resets the high-water mark to the current
/// resident size (Linux `clear_refs` 5) and returns that size, KiB.
fn start_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM (/proc/self/clear_refs)");
    status_kib("VmRSS:")
}

/// An inline sensor with the recipient allow list and `sets` applied; also the resident
/// memory before the policy was loaded (KiB), to report what the rule set takes.
fn sensor(sets: &[(&str, &str)]) -> (Sensor, u64) {
    let before_rules = status_kib("VmRSS:");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let checked = sekisho_policy::Policy::check_file(
        &root.join("examples/smtp/recipients-strict.yaml"),
        &Default::default(),
    );
    assert!(checked.is_valid(), "{:?}", checked.diagnostics);
    let mut settings = Settings::new(Mode::Inline);
    settings.apply_policy(&checked.policy);
    for (k, v) in sets {
        settings.set(k, v).expect("setting");
    }
    let rules = Arc::new(RuleSet::from_policy(
        &checked.policy,
        settings.compile_options(),
    ));
    (Sensor::new(&settings, Some(rules)), before_rules)
}

/// Ends the sensor's flows and returns the closing counters, and how many flow and drop
/// records came out while doing so.
fn finish(sensor: &mut Sensor, now: u64) -> (Vec<(&'static str, u64)>, u64, u64) {
    sensor.finish(Timestamp(now));
    let (mut counters, mut flows, mut drops) = (Vec::new(), 0, 0);
    while let Some(r) = sensor.poll_record() {
        match r {
            Record::Flow { .. } => flows += 1,
            Record::Drop(_) => drops += 1,
            Record::Stats { counters: c, .. } => counters = c,
            _ => {}
        }
    }
    (counters, flows, drops)
}

fn counter(counters: &[(&'static str, u64)], key: &str) -> u64 {
    counters
        .iter()
        .find(|(n, _)| *n == key)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no counter {key}"))
}

/// Asserts the peak growth since `start` is within `caps_kib + slack_kib`, and prints the
/// figures (rule set and sensor, peak growth, absolute peak).
fn assert_peak(name: &str, before_rules: u64, start: u64, caps_kib: u64, slack_kib: u64) {
    let peak = status_kib("VmHWM:");
    let grown = peak.saturating_sub(start);
    let bound = caps_kib + slack_kib;
    eprintln!(
        "{name}: rules+sensor {} KiB, peak growth {grown} KiB (bound {bound} KiB = caps \
         {caps_kib} + slack {slack_kib}), peak RSS {peak} KiB",
        start.saturating_sub(before_rules)
    );
    assert!(
        grown <= bound,
        "{name}: peak RSS grew {grown} KiB during the flood, over the caps ({caps_kib} KiB) \
         plus slack ({slack_kib} KiB)"
    );
}

fn syn(i: u32) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4((0x0a00_0000u32 + i).to_be_bytes(), SERVER, 64)
        .tcp(40000, 25, 1, 65535)
        .syn()
        .write(&mut out, &[])
        .expect("frame");
    out
}

#[test]
fn syn_flood_stays_within_flow_memcap() {
    in_own_process("syn_flood_stays_within_flow_memcap", syn_flood);
}

/// 300,000 SYNs under a 16 MiB flow memcap: the table (about 50,000 flows) fills six times.
fn syn_flood() {
    const MEMCAP_MIB: u64 = 16;
    const SYNS: u32 = 300_000;
    let (mut sensor, before_rules) = sensor(&[("flow.memcap", "16mb")]);
    let start = start_peak();
    let mut flow_records = 0u64;
    for i in 0..SYNS {
        let ts = Timestamp(1_000_000_000 + u64::from(i) * 10);
        sensor.handle_packet(ts, LinkType::Ethernet, &syn(i));
        while let Some(r) = sensor.poll_record() {
            flow_records += u64::from(matches!(r, Record::Flow { .. }));
        }
    }
    let active = sensor.active_flows() as u64;
    assert!(active <= sensor.flow_capacity() as u64);
    // Measured before the shutdown records, which are not part of the flood.
    assert_peak(
        "syn flood",
        before_rules,
        start,
        MEMCAP_MIB * 1024,
        4 * 1024,
    );
    let (counters, flows, _) = finish(&mut sensor, 2_000_000_000);
    flow_records += flows;
    // The table filled and evicted: every SYN got a flow, and none was lost unrecorded.
    assert_eq!(counter(&counters, "flow.total"), u64::from(SYNS));
    assert!(
        counter(&counters, "flow.memcap") > 0,
        "the table never filled"
    );
    assert_eq!(counter(&counters, "flow.memcap") + active, u64::from(SYNS));
    assert_eq!(flow_records, u64::from(SYNS));
    // The flows that fit are what the cap allows: well over a few thousand at 16 MiB, so the
    // accounting is not merely pessimistic.
    assert!(
        active > 4_000,
        "only {active} flows fit in {MEMCAP_MIB} MiB"
    );
    eprintln!(
        "syn flood: {SYNS} SYNs, {active} flows fit, flow.memcap {}",
        counter(&counters, "flow.memcap")
    );
}

/// The first fragment of datagram `i` from source `i`: a TCP segment of `data` bytes (a
/// multiple of 8 with the TCP header, as a non-last fragment must be) of which the rest
/// never comes.
fn first_fragment(i: u32, data: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4((0x0a00_0000u32 + i).to_be_bytes(), SERVER, 64)
        .tcp(40000, 25, 1, 65535)
        .ack(1)
        .write(&mut f, &vec![b'x'; data])
        .expect("frame");
    // The datagram claims more: MF set, offset 0, and a datagram id of its own.
    let ip = &mut f[14..34];
    ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
    ip[6..8].copy_from_slice(&0x2000u16.to_be_bytes());
    ip[10..12].copy_from_slice(&[0, 0]);
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f
}

#[test]
fn fragment_flood_stays_within_defrag_memcap() {
    in_own_process("fragment_flood_stays_within_defrag_memcap", fragment_flood);
}

/// 100,000 datagrams that never complete, in two shapes, each measured on its own, under a
/// 2 MiB `defrag.memcap` and the default 65,535 trackers:
/// - 1,000 bytes of fragment data each: about 2,000 fit, the other 98 % meet the cap
///   (`defrag.memcap_exception`);
/// - 24 bytes each (the smallest a TCP first fragment carries): a flood that is mostly
///   bookkeeping. The memcap counts what a datagram in progress really takes (its table
///   entry, its fragment list and allocations: a few hundred bytes beside the data), so the
///   memcap is met long before the tracker table fills, and the peak stays within it. (When
///   it counted fragment data only, 65,535 trackers grew about 31 MiB under this 2 MiB cap.)
fn fragment_flood() {
    const MEMCAP: u64 = 2 << 20;
    let big = defrag_flood(
        "fragment flood (1,000-byte fragments)",
        980,
        &[("defrag.memcap", "2mb")],
        MEMCAP / 1024,
    );
    // Each held datagram is charged its 1,000 bytes and at most ~600 of bookkeeping.
    assert!(
        big.held * 1000 < MEMCAP && big.held * 1600 > MEMCAP,
        "held {}",
        big.held
    );
    assert_eq!(
        counter(&big.counters, "defrag.memcap_exception"),
        big.refused
    );
    assert_eq!(counter(&big.counters, "defrag.max_trackers_reached"), 0);
    let small = defrag_flood(
        "fragment flood (24-byte fragments)",
        4,
        &[("defrag.memcap", "2mb")],
        MEMCAP / 1024,
    );
    // Bookkeeping is charged: far fewer than 2 MiB / 24 bytes are held, and the tracker
    // table never filled.
    assert!(small.held * (24 + 200) < MEMCAP, "held {}", small.held);
    assert_eq!(
        counter(&small.counters, "defrag.memcap_exception"),
        small.refused
    );
    assert_eq!(counter(&small.counters, "defrag.max_trackers_reached"), 0);
}

/// What a fragment flood left.
struct Defragged {
    /// Datagrams held (not refused).
    held: u64,
    /// Fragments refused because the reassembler was full.
    refused: u64,
    counters: Vec<(&'static str, u64)>,
}

/// [`STREAMS`] first fragments carrying `data` bytes after the TCP header, in a sensor with
/// `sets`; asserts the peak growth within `caps_kib` plus 4 MiB of slack, and that every
/// refused fragment was dropped, counted and (rate-limited) recorded.
fn defrag_flood(name: &str, data: usize, sets: &[(&str, &str)], caps_kib: u64) -> Defragged {
    let (mut sensor, before_rules) = sensor(sets);
    let start = start_peak();
    let (mut dropped, mut drop_records) = (0u64, 0u64);
    for i in 0..STREAMS {
        let ts = Timestamp(1_000_000_000 + u64::from(i) * 10);
        dropped += u64::from(
            sensor
                .handle_packet(ts, LinkType::Ethernet, &first_fragment(i, data))
                .is_drop(),
        );
        while let Some(r) = sensor.poll_record() {
            drop_records += u64::from(matches!(r, Record::Drop(_)));
        }
    }
    assert_peak(name, before_rules, start, caps_kib, 4 * 1024);
    let (counters, flows, _) = finish(&mut sensor, 1_000_000_000 + u64::from(STREAMS) * 10);
    assert_eq!(
        counter(&counters, "defrag.ipv4.fragments"),
        u64::from(STREAMS)
    );
    assert_eq!(counter(&counters, "defrag.ipv4.reassembled"), 0);
    // Inline, each refused fragment is dropped (defrag_memcap: drop-packet); no datagram
    // completed, so no flow was made; the drop records are rate-limited, never none.
    let refused = counter(&counters, "defrag.memcap_exception_policy.drop_packet");
    assert!(refused > u64::from(STREAMS) / 2, "refused {refused}");
    assert_eq!(dropped, refused);
    assert!(drop_records > 0);
    assert_eq!(counter(&counters, "flow.total"), 0);
    assert_eq!(flows, 0);
    let held = u64::from(STREAMS) - refused;
    eprintln!(
        "{name}: {STREAMS} datagrams, {held} held, {refused} refused, {drop_records} drop records"
    );
    Defragged {
        held,
        refused,
        counters,
    }
}

const STREAMS: u32 = 100_000;

fn tcp(to_server: bool, seq: u32, ack: Option<u32>, syn: bool, data: &[u8]) -> Vec<u8> {
    let client = [10, 0, 0, 150];
    let (src, dst, sp, dp) = if to_server {
        (client, SERVER, 40000, 25)
    } else {
        (SERVER, client, 25, 40000)
    };
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .tcp(sp, dp, seq, 65535);
    if syn {
        b = b.syn();
    }
    if let Some(a) = ack {
        b = b.ack(a);
    }
    let mut out = Vec::new();
    b.write(&mut out, data).expect("frame");
    out
}

#[test]
fn recipient_flood_in_one_session_is_dropped_within_bounds() {
    in_own_process(
        "recipient_flood_in_one_session_is_dropped_within_bounds",
        recipient_flood,
    );
}

/// What one recipient-flood session left.
struct Session {
    /// The segment carrying the disallowed recipient was dropped.
    last_dropped: bool,
    /// Packets dropped.
    dropped: u64,
    /// Reasons of the drop records.
    drops: Vec<&'static str>,
    /// Exception-policy events not turned into drop records (target, action).
    exceptions: Vec<(ExceptionTarget, ExceptionAction)>,
    /// Closing counters.
    counters: Vec<(&'static str, u64)>,
}

/// One session, one message, [`RECIPIENTS`] allowed recipients pipelined in 1,200-byte
/// segments, then the disallowed one; with `replies`, the server answers each segment's
/// commands (a relay accepting them), else it stays silent after MAIL FROM.
fn rcpt_session(mut sensor: Sensor, replies: bool) -> Session {
    let mut ts = 1_000_000_000u64;
    let (mut c, mut s) = (1000u32, 5000u32);
    let mut drops: Vec<&'static str> = Vec::new();
    let mut exceptions = Vec::new();
    let mut dropped = 0u64;
    let mut last_dropped = false;
    let mut send = |sensor: &mut Sensor, frame: Vec<u8>| {
        ts += 10;
        last_dropped = sensor
            .handle_packet(Timestamp(ts), LinkType::Ethernet, &frame)
            .is_drop();
        dropped += u64::from(last_dropped);
        while let Some(r) = sensor.poll_record() {
            match r {
                Record::Drop(d) => drops.push(d.reason),
                Record::Event(Event::Exception(x)) => exceptions.push((x.target, x.action)),
                _ => {}
            }
        }
    };
    send(&mut sensor, tcp(true, c, None, true, &[]));
    send(&mut sensor, tcp(false, s, Some(c + 1), true, &[]));
    c += 1;
    s += 1;
    send(&mut sensor, tcp(true, c, Some(s), false, &[]));
    let mut talk = |sensor: &mut Sensor, to_server: bool, data: &[u8]| {
        if to_server {
            send(sensor, tcp(true, c, Some(s), false, data));
            c = c.wrapping_add(data.len() as u32);
        } else {
            send(sensor, tcp(false, s, Some(c), false, data));
            s = s.wrapping_add(data.len() as u32);
        }
    };
    talk(&mut sensor, false, b"220 mx.example ESMTP\r\n");
    talk(&mut sensor, true, b"EHLO client.example\r\n");
    talk(&mut sensor, false, b"250 mx.example\r\n");
    talk(&mut sensor, true, b"MAIL FROM:<a@example.com>\r\n");
    talk(&mut sensor, false, b"250 2.1.0 Ok\r\n");
    let (mut batch, mut n) = (Vec::new(), 0);
    for i in 0..RECIPIENTS {
        batch.extend_from_slice(ALLOWED[i as usize % 2]);
        n += 1;
        if batch.len() > 1200 {
            talk(&mut sensor, true, &batch);
            if replies {
                talk(&mut sensor, false, &b"250 2.1.5 Ok\r\n".repeat(n));
            }
            batch.clear();
            n = 0;
        }
    }
    batch.extend_from_slice(b"RCPT TO:<b@yahoo.example>\r\n");
    talk(&mut sensor, true, &batch);
    let end = ts + 1_000_000;
    let (counters, flows, _) = finish(&mut sensor, end);
    assert_eq!(flows, 1);
    Session {
        last_dropped,
        dropped,
        drops,
        exceptions,
        counters,
    }
}

const RECIPIENTS: u32 = 100_000;

/// The per-flow SMTP caps that bound one session, KiB: the stored recipients of a
/// transaction (`MAX_RCPT_BYTES_PER_TX`), a line (`MAX_LINE_LEN`), and the command queue
/// (`MAX_QUEUE` entries; a queued command is a few bytes).
const SMTP_CAPS_KIB: u64 = (MAX_RCPT_BYTES_PER_TX + MAX_LINE_LEN + MAX_QUEUE * 8) as u64 / 1024;

/// Two sessions of [`RECIPIENTS`] recipients, each measured on its own:
/// - inline defaults: the 1,025th recipient does not fit the transaction's list
///   (`MAX_RCPT_PER_TX`), the truncated list fails the `detect_limit` policy closed and the
///   flow is dropped there, with a `detect limit` drop record; the disallowed recipient's
///   segment is dropped;
/// - every exception policy `ignore` and a server that answers: the parser reads all
///   100,000 recipients into one transaction; the list stays truncated at its cap (counted,
///   not dropped), so memory stays within the per-flow caps however long the list.
fn recipient_flood() {
    let (sensor_default, before_rules) = sensor(&[]);
    let start = start_peak();
    let r = rcpt_session(sensor_default, false);
    assert_peak(
        "recipient flood (inline defaults)",
        before_rules,
        start,
        SMTP_CAPS_KIB,
        1024,
    );
    assert!(
        r.last_dropped,
        "the disallowed recipient's segment was accepted"
    );
    assert_eq!(r.drops, ["detect limit"]);
    assert_eq!(
        counter(&r.counters, "detect.limit_exception_policy.drop_flow"),
        1
    );
    eprintln!(
        "recipient flood: {RECIPIENTS} recipients, {} packets dropped, drop records {:?}",
        r.dropped, r.drops
    );

    let (sensor_ignore, before_rules) = sensor(&[("exception-policy", "ignore")]);
    let start = start_peak();
    let r = rcpt_session(sensor_ignore, true);
    assert_peak(
        "recipient flood (policies ignore, server answering)",
        before_rules,
        start,
        SMTP_CAPS_KIB,
        1024,
    );
    eprintln!(
        "recipient flood, ignore: {} packets dropped, drop records {:?}, exceptions {:?}",
        r.dropped, r.drops, r.exceptions
    );
    // The truncation was met and recorded (with `ignore`, the operator's choice, nothing is
    // dropped: the list past its cap is not checked, which is why inline defaults drop).
    assert_eq!(
        r.exceptions,
        [(ExceptionTarget::DetectLimit, ExceptionAction::Ignore)]
    );
}
