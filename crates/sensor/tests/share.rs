//! Pins that one compiled [`RuleSet`] is shared by several workers and that splitting the
//! traffic by flow across them changes nothing.
//!
//! One `Arc<RuleSet>` is compiled from a strict-order policy (examples/smtp/recipients.rules,
//! the recipient allow list that drops a flow with a disallowed recipient, plus a few alert
//! rules and `aws:drop_established`, which drops the established packets nothing passes). It
//! runs over real captures, every SMTP capture of tests/fixtures/captures/smtp/ and
//! tests/fixtures/captures/real-eth.pcap (HTTP, DNS and SMTP of another host), merged in time
//! order, in inline mode:
//!
//! 1. single-threaded, through one [`Sensor`];
//! 2. split by flow into two halves with a symmetric 5-tuple hash (like the kernel's queue
//!    balancing: both directions of a flow go to the same queue), each half through its own
//!    `Sensor` on its own `std::thread`, both sensors holding the same `Arc` (its strong count
//!    is at least 3 while they run, and `Sensor::rules` is that very allocation).
//!
//! The union of the two halves' alert, drop and transaction records equals the single run's
//! exactly, as sorted multisets of whole records, and every packet gets the same verdict.
//! The records are compared with `pkt_num` and `flow_id` cleared: both are per sensor (the
//! packet number counts the packets that sensor saw; the flow id hashes the tuple with the
//! sensor's flow creation number), so the comparison is on timestamp, tuple, direction and
//! everything else the record carries.
//!
//! Time passes for both workers alike, as the wall clock does for live workers: a packet that
//! goes to the other worker still advances a worker's clock (`handle_timeout` when its
//! `poll_timeout` is due). Without that, a worker's idle flows would end only at its next
//! packet or at `finish`, and the `smtp` records of transactions still open at flow end
//! (flows dropped mid-transaction) would carry that later time.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};

use sekisho_engine::decode::PacketDecoder;
use sekisho_engine::records::PacketHead;
use sekisho_engine::{Event, LinkType, Timestamp, Verdict};
use sekisho_pcap::MergedCaptures;
use sekisho_policy::Policy;
use sekisho_sensor::{Mode, Record, RuleSet, Sensor, Settings};

/// One captured frame, as the sensor takes it.
struct Frame {
    ts: Timestamp,
    link: LinkType,
    data: Vec<u8>,
}

/// The inputs: every SMTP capture plus real-eth.pcap, merged in timestamp order.
fn frames() -> Option<Vec<Frame>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    let smtp = sekisho_testutil::require_fixture("tests/fixtures/captures/smtp")?;
    for e in std::fs::read_dir(&smtp).expect("read smtp captures") {
        let p = e.expect("dir entry").path();
        if p.extension().is_some_and(|x| x == "pcap") {
            paths.push(p);
        }
    }
    paths.sort();
    assert!(paths.len() >= 9, "SMTP captures: {paths:?}");
    paths.push(sekisho_testutil::require_fixture(
        "tests/fixtures/captures/real-eth.pcap",
    )?);
    let mut caps = MergedCaptures::open(&paths).expect("open captures");
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

/// The policy: alert rules first, then the recipient allow list, under strict order with
/// `aws:drop_established`.
fn ruleset(settings: &mut Settings, dir: &tempfile::TempDir) -> Arc<RuleSet> {
    let recipients = sekisho_testutil::repo_root().join("examples/smtp/recipients.rules");
    let policy = dir.path().join("share.yaml");
    std::fs::write(
        &policy,
        format!(
            r#"engine_profile: suricata-8
rule_order: strict
default_actions: [aws:drop_established]
variables:
  HOME_NET: [10.0.0.0/24]
rule_groups:
  - name: seen
    rules_text: |
      alert tcp any any -> any 25 (msg:"SMTP connection attempt"; flow:to_server; flags:S; sid:3000001; rev:1;)
      alert smtp any any -> any any (msg:"recipient at example.com"; flow:to_server; smtp.rcpt_to; content:"@example.com"; sid:3000002; rev:1;)
      alert udp any any -> any 53 (msg:"DNS query"; sid:3000003; rev:1;)
  - {{name: recipients, rules: {}}}
"#,
            recipients.display()
        ),
    )
    .expect("write policy");
    let checked = Policy::check_file(&policy, &Default::default());
    let (policy, _warnings) = checked
        .into_result()
        .unwrap_or_else(|d| panic!("policy invalid: {d:?}"));
    settings.apply_policy(&policy);
    let rs = RuleSet::from_policy(&policy, settings.compile_options());
    Arc::new(rs)
}

/// A record of the kinds compared, with its per-sensor numbers cleared, as a sortable key.
fn key(r: &Record) -> Option<(u64, String)> {
    match r {
        Record::Alert(a) => {
            let mut a = a.clone();
            a.head.pkt_num = 0;
            a.head.flow_id = 0;
            Some((a.head.ts.0, format!("{a:?}")))
        }
        Record::Drop(d) => {
            let mut d = d.clone();
            d.head.pkt_num = 0;
            d.head.flow_id = 0;
            Some((d.head.ts.0, format!("{d:?}")))
        }
        Record::Event(Event::AppTx(t)) => {
            let mut t = t.clone();
            t.pkt_num = 0;
            t.flow_id = 0;
            Some((t.ts.0, format!("{t:?}")))
        }
        _ => None,
    }
}

/// A flow's two endpoints, lower first, and its protocol.
type Endpoints = ((IpAddr, u16), (IpAddr, u16), u8);

fn endpoints(h: &PacketHead) -> Endpoints {
    let (a, b) = ((h.src_ip, h.src_port), (h.dst_ip, h.dst_port));
    if a <= b {
        (a, b, h.proto)
    } else {
        (b, a, h.proto)
    }
}

/// What one sensor produced: the compared records, and (frame index, verdict) per frame.
#[derive(Default)]
struct Out {
    records: Vec<(u64, String)>,
    /// Flows (endpoints in a fixed order, protocol) with an alert or a drop.
    flows: BTreeSet<Endpoints>,
    alerts: usize,
    drops: usize,
    verdicts: Vec<(usize, Verdict)>,
}

/// Feeds the frames `mine` selects through `sensor`, then ends it at `end`. Time passes for
/// every worker alike, as the wall clock does for live workers: a frame that goes to another
/// worker still advances this one's clock, through `handle_timeout` when the sensor asked to
/// be woken by then (`poll_timeout`), so idle flows end at the same moments in every run.
fn run(sensor: &mut Sensor, frames: &[Frame], mine: impl Fn(usize) -> bool, end: Timestamp) -> Out {
    let mut out = Out::default();
    let drain = |sensor: &mut Sensor, out: &mut Out| {
        while let Some(r) = sensor.poll_record() {
            match &r {
                Record::Alert(a) => {
                    out.alerts += 1;
                    out.flows.insert(endpoints(&a.head));
                }
                Record::Drop(d) => {
                    out.drops += 1;
                    out.flows.insert(endpoints(&d.head));
                }
                _ => {}
            }
            out.records.extend(key(&r));
        }
    };
    for (i, f) in frames.iter().enumerate() {
        if mine(i) {
            let v = sensor.handle_packet(f.ts, f.link, &f.data);
            out.verdicts.push((i, v));
        } else if sensor.poll_timeout().is_some_and(|t| t <= f.ts) {
            sensor.handle_timeout(f.ts);
        }
        drain(sensor, &mut out);
    }
    sensor.finish(end);
    drain(sensor, &mut out);
    out.records.sort();
    out
}

/// Which of two workers a frame goes to: a hash of its flow's endpoints in a fixed order, so
/// both directions land together (an ICMP error goes with the flow it quotes).
fn worker(decoder: &mut PacketDecoder, f: &Frame) -> usize {
    let Ok(p) = decoder.decode(f.ts, f.link, &f.data) else {
        return 0;
    };
    let (a, b, proto) = match p.icmp_error {
        Some(q) => ((q.src, q.src_port), (q.dst, q.dst_port), q.proto),
        None => ((p.src, p.src_port), (p.dst, p.dst_port), p.proto),
    };
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = DefaultHasher::new();
    (lo, hi, proto).hash(&mut h);
    (h.finish() % 2) as usize
}

#[test]
fn two_workers_sharing_one_ruleset_log_exactly_what_one_worker_logs() {
    let Some(frames) = frames() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings::new(Mode::Inline);
    let rules = ruleset(&mut settings, &dir);
    let end = frames.iter().map(|f| f.ts).max().expect("frames");

    // 1. One worker.
    let single = {
        let mut sensor = Sensor::new(&settings, Some(Arc::clone(&rules)));
        run(&mut sensor, &frames, |_| true, end)
    };
    assert_eq!(Arc::strong_count(&rules), 1, "the single sensor is gone");
    // The input is worth splitting: alerts and drops on several flows.
    assert!(
        single.alerts > 0 && single.drops > 0,
        "{:?}",
        single.records
    );
    eprintln!(
        "one worker: {} frames, {} alerts, {} drops on {} flows",
        frames.len(),
        single.alerts,
        single.drops,
        single.flows.len()
    );
    assert!(
        single.flows.len() >= 4,
        "alerts/drops on {:?}",
        single.flows
    );

    // 2. Two workers, split by flow.
    let mut decoder = PacketDecoder::new(&settings.engine_config());
    let assigned: Vec<usize> = frames.iter().map(|f| worker(&mut decoder, f)).collect();
    let barrier = Barrier::new(3);
    let outs: Vec<Out> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|n| {
                let (rules, settings, frames, barrier) = (&rules, &settings, &frames, &barrier);
                let assigned = &assigned;
                s.spawn(move || {
                    let mut sensor = Sensor::new(settings, Some(Arc::clone(rules)));
                    barrier.wait();
                    // Both sensors are alive: the test's handle plus one per sensor.
                    assert!(Arc::strong_count(rules) >= 3);
                    assert!(Arc::ptr_eq(sensor.rules().expect("rules"), rules));
                    // Nobody runs (and ends its sensor) before all three have counted.
                    barrier.wait();
                    run(&mut sensor, frames, |i| assigned[i] == n, end)
                })
            })
            .collect();
        barrier.wait();
        assert!(
            Arc::strong_count(&rules) >= 3,
            "strong count while the workers run: {}",
            Arc::strong_count(&rules)
        );
        barrier.wait();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    assert_eq!(Arc::strong_count(&rules), 1);
    for (n, o) in outs.iter().enumerate() {
        eprintln!(
            "worker {n}: {} frames, {} alerts, {} drops on {} flows",
            o.verdicts.len(),
            o.alerts,
            o.drops,
            o.flows.len()
        );
        assert!(
            o.alerts + o.drops > 0,
            "worker {n} had no alert or drop: the split does not exercise sharing"
        );
    }

    let mut union: Vec<(u64, String)> = outs.iter().flat_map(|o| o.records.clone()).collect();
    union.sort();
    if union != single.records {
        let only = |a: &[(u64, String)], b: &[(u64, String)]| {
            let mut b = b.to_vec();
            let mut extra = Vec::new();
            for r in a {
                match b.iter().position(|x| x == r) {
                    Some(i) => {
                        b.remove(i);
                    }
                    None => extra.push(r.1.clone()),
                }
            }
            extra
        };
        panic!(
            "the two workers' records differ from one worker's:\nonly in one worker:\n{}\nonly in the two workers:\n{}",
            only(&single.records, &union).join("\n"),
            only(&union, &single.records).join("\n")
        );
    }
    let mut verdicts: Vec<(usize, Verdict)> =
        outs.iter().flat_map(|o| o.verdicts.clone()).collect();
    verdicts.sort_by_key(|(i, _)| *i);
    assert_eq!(verdicts, single.verdicts);
    assert_eq!(
        outs.iter()
            .map(|o| (o.alerts, o.drops))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
        (single.alerts, single.drops)
    );
}
