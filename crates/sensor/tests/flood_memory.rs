//! A SYN flood from distinct sources against the flow table, in a process of its own so its
//! peak resident memory is this test's alone: the table, every flow's TCP session and the
//! detector's per-flow state must stay within `flow.memcap` (the cap counts what they
//! really take), the table must evict instead of growing, and the stats must say so.

use std::sync::Arc;

use etherparse::PacketBuilder;
use sekisho_engine::{LinkType, Timestamp};
use sekisho_sensor::{Mode, Record, RuleSet, Sensor, Settings};

/// Peak and current resident memory of this process, KiB.
fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM/VmRSS line")
}

fn syn(i: u32) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4((0x0a00_0000u32 + i).to_be_bytes(), [203, 0, 113, 25], 64)
        .tcp(40000, 25, 1, 65535)
        .syn()
        .write(&mut out, &[])
        .expect("frame");
    out
}

#[test]
fn syn_flood_stays_within_flow_memcap() {
    const MEMCAP_MIB: u64 = 16;
    const SYNS: u32 = 120_000;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let checked = sekisho_policy::Policy::check_file(
        &root.join("examples/smtp/recipients-strict.yaml"),
        &Default::default(),
    );
    assert!(checked.is_valid(), "{:?}", checked.diagnostics);
    let mut settings = Settings::new(Mode::Inline);
    settings.apply_policy(&checked.policy);
    settings
        .set("flow.memcap", &format!("{MEMCAP_MIB}mb"))
        .expect("flow.memcap");
    let rules = Arc::new(RuleSet::from_policy(
        &checked.policy,
        settings.compile_options(),
    ));
    let mut sensor = Sensor::new(&settings, Some(rules));
    // What the process holds before the flood: code, the rule set, the empty table.
    let before = rss_kib("VmRSS:");
    let mut flow_records = 0u64;
    for i in 0..SYNS {
        let ts = Timestamp(1_000_000_000 + u64::from(i) * 10);
        sensor.handle_packet(ts, LinkType::Ethernet, &syn(i));
        while let Some(r) = sensor.poll_record() {
            flow_records += u64::from(matches!(r, Record::Flow { .. }));
        }
    }
    let active = sensor.active_flows() as u64;
    sensor.finish(Timestamp(2_000_000_000));
    let mut counters = Vec::new();
    while let Some(r) = sensor.poll_record() {
        match r {
            Record::Flow { .. } => flow_records += 1,
            Record::Stats { counters: c, .. } => counters = c,
            _ => {}
        }
    }
    let grown_kib = rss_kib("VmHWM:").saturating_sub(before);
    let counter = |k: &str| {
        counters
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no counter {k}"))
    };
    // The table filled and evicted: every SYN got a flow, and none was lost unrecorded.
    assert_eq!(counter("flow.total"), u64::from(SYNS));
    assert!(counter("flow.memcap") > 0, "the table never filled");
    assert_eq!(counter("flow.memcap") + active, u64::from(SYNS));
    assert_eq!(flow_records, u64::from(SYNS));
    // The flows that fit are what the cap allows: well over a few thousand at 16 MiB, so the
    // accounting is not merely pessimistic.
    assert!(
        active > 4_000,
        "only {active} flows fit in {MEMCAP_MIB} MiB"
    );
    // Memory: the cap plus 4 MiB for allocator slack and the records in flight.
    let bound = (MEMCAP_MIB + 4) * 1024;
    assert!(
        grown_kib <= bound,
        "peak RSS grew {grown_kib} KiB during the flood; flow.memcap is {MEMCAP_MIB} MiB \
         ({active} flows fit)"
    );
    eprintln!("flows fit: {active}; peak RSS growth: {grown_kib} KiB (bound {bound} KiB)");
}
