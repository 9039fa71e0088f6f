//! Suricata 8 firewall mode on real SMTP captures: a test inspector runs
//! `Firewall::evaluate` in `on_packet_end` of an inline engine, and the captures' outcome is
//! compared with what Suricata does (suricata-verify firewall SMTP tests as oracles).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sekisho_detect::firewall::{Firewall, FirewallConfig, FwFlow, FwOutcome, FwVerdict};
use sekisho_detect::payload::MatchScratch;
use sekisho_engine::{
    AppChunk, Engine, EngineConfig, Event, Inspector, LinkType, PacketContext, Timestamp, Verdict,
};
use sekisho_policy::Policy;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn capture(name: &str) -> PathBuf {
    root().join("tests/fixtures/captures/smtp").join(name)
}

/// The suite's firewall cases (`None` when the shared tree is absent outside CI).
fn sv_firewall() -> Option<PathBuf> {
    sekisho_testutil::require_shared("conformance/suricata-verify/tests/firewall")
}

struct FwInspector {
    fw: Firewall,
    flows: HashMap<u64, FwFlow>,
    scratch: MatchScratch,
    stream: Vec<u8>,
    cur_flow: u64,
    outcomes: Vec<(u64, FwOutcome)>,
}

impl Inspector for FwInspector {
    fn on_packet(&mut self, p: &PacketContext<'_>) -> Verdict {
        self.stream.clear();
        self.cur_flow = p.flow_id;
        Verdict::Accept
    }

    fn on_stream_data(&mut self, c: &AppChunk<'_>) -> Verdict {
        if c.flow_id == self.cur_flow {
            self.stream.extend_from_slice(c.data);
        }
        Verdict::Accept
    }

    fn on_packet_end(&mut self, p: &PacketContext<'_>) -> Verdict {
        let st = self.flows.entry(p.flow_id).or_default();
        let payload: &[u8] = if p.proto == 6 {
            &self.stream
        } else {
            p.payload
        };
        let o = self.fw.evaluate(p, st, payload, &mut self.scratch);
        let v = match o.verdict {
            FwVerdict::DropPacket => Verdict::Drop,
            FwVerdict::DropFlow => Verdict::DropFlow,
            _ => Verdict::Accept,
        };
        self.outcomes.push((p.pkt_num, o));
        v
    }
}

struct Run {
    /// (packet number, verdict) of every packet.
    verdicts: Vec<(u64, Verdict)>,
    outcomes: Vec<(u64, FwOutcome)>,
    events: Vec<Event>,
}

impl Run {
    fn dropped(&self) -> usize {
        self.verdicts.iter().filter(|v| v.1.is_drop()).count()
    }
    fn first_drop(&self) -> Option<&(u64, FwOutcome)> {
        self.outcomes.iter().find(|o| o.1.verdict.is_drop())
    }
    fn alert_sids(&self) -> Vec<u64> {
        self.outcomes
            .iter()
            .flat_map(|o| o.1.alerts.iter().map(|a| a.info.sid))
            .collect()
    }
    /// SMTP transactions logged as complete. Open transactions of a flow the firewall
    /// dropped are still logged by the engine at flow end (`flow_end`), which Suricata does
    /// not do; that is an engine-side gap, so they are not counted here.
    fn smtp_events(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::AppTx(t) if !t.flow_end))
            .count()
    }
}

fn firewall_of(policy: &Policy, explain: bool) -> Firewall {
    let cfg = FirewallConfig {
        explain,
        ..FirewallConfig::default()
    };
    let fw = Firewall::from_policy(policy, cfg).expect("policy has firewall rules");
    assert!(fw.not_loaded().is_empty(), "{:?}", fw.not_loaded());
    fw
}

fn rules_policy(path: &Path) -> Policy {
    Policy::from_rules_files(&[path.to_path_buf()])
        .map(|(p, _)| p)
        .expect("rules load")
}

fn run(fw: Firewall, pcap: &Path) -> Run {
    let bytes = std::fs::read(pcap).expect("capture readable");
    let (_, cap) = pcap_parser::parse_pcap(&bytes).expect("valid pcap");
    let link = LinkType::from_linktype(cap.header.network.0 as u32).expect("link type");
    let cfg = EngineConfig {
        inline: true,
        ..EngineConfig::default()
    };
    let insp = FwInspector {
        fw,
        flows: HashMap::new(),
        scratch: MatchScratch::default(),
        stream: Vec::new(),
        cur_flow: u64::MAX,
        outcomes: Vec::new(),
    };
    let mut engine = Engine::with_inspector(cfg, insp);
    let mut verdicts = Vec::new();
    let mut events = Vec::new();
    let mut last = Timestamp::from_secs_micros(0, 0);
    for (i, b) in cap.blocks.iter().enumerate() {
        let ts = Timestamp::from_secs_micros(u64::from(b.ts_sec), u64::from(b.ts_usec));
        last = ts;
        verdicts.push((i as u64 + 1, engine.handle_packet(ts, link, b.data)));
        while let Some(e) = engine.poll_event() {
            events.push(e);
        }
    }
    engine.finish(last);
    while let Some(e) = engine.poll_event() {
        events.push(e);
    }
    let outcomes = std::mem::take(&mut engine.inspector_mut().outcomes);
    Run {
        verdicts,
        outcomes,
        events,
    }
}

fn example_policy() -> Policy {
    let path = root().join("examples/smtp/recipients-firewall.yaml");
    Policy::load(&path).map(|(p, _)| p).expect("example loads")
}

#[test]
fn example_allowed_recipient_is_delivered() {
    let r = run(
        firewall_of(&example_policy(), false),
        &capture("swaks-plain.pcap"),
    );
    assert_eq!(r.dropped(), 0, "{:?}", r.first_drop());
    assert_eq!(r.smtp_events(), 1);
    // Every one of the capture's 21 frames (`tshark -r swaks-plain.pcap | wc -l`) was
    // evaluated by the firewall and accepted.
    assert_eq!(r.outcomes.len(), 21);
}

#[test]
fn example_disallowed_recipient_drops_flow_at_rcpt() {
    let r = run(
        firewall_of(&example_policy(), true),
        &capture("swaks-plain-disallowed.pcap"),
    );
    let (pkt, o) = r.first_drop().expect("flow dropped");
    assert_eq!(o.verdict, FwVerdict::DropFlow);
    assert_eq!(o.drop_reason, Some("firewall rules"));
    let a = o.alerts.last().expect("drop rule alerts");
    assert_eq!((a.info.sid, a.info.blocked), (3001, true));
    assert_eq!(a.hook, "smtp:request_started");
    assert_eq!(a.policy, "drop:flow");
    // The drop happens at the RCPT TO command: nothing of the message got through.
    assert!(o
        .explain
        .iter()
        .any(|l| l.contains("sid 3001 drop:flow matched")));
    assert!(r.verdicts.iter().all(|(n, v)| (n < pkt) != v.is_drop()));
    assert_eq!(r.smtp_events(), 0, "tx of a dropped flow is not logged");
}

#[test]
fn example_pipelined_mixed_recipients_dropped() {
    let r = run(
        firewall_of(&example_policy(), false),
        &capture("postfix-two-rcpt.pcap"),
    );
    let (_, o) = r.first_drop().expect("flow dropped");
    assert_eq!(o.drop_reason, Some("firewall rules"));
    assert!(r.alert_sids().contains(&3001));
}

#[test]
fn example_second_message_with_unlisted_recipient_dropped() {
    // Message 1 goes to alice (delivered); message 2 to bob and carol@example.net, who is not
    // on the list: the flow drops at carol's RCPT TO (pkt 23), in tx 1.
    let r = run(
        firewall_of(&example_policy(), false),
        &capture("two-messages.pcap"),
    );
    let (pkt, o) = r.first_drop().expect("flow dropped");
    assert_eq!(*pkt, 23);
    assert_eq!(o.alerts.last().and_then(|a| a.tx_id), Some(1));
    assert_eq!(r.smtp_events(), 1, "first message delivered and logged");
}

#[test]
fn example_drops_even_a_reset_envelope() {
    // "All recipients must be allowed" is enforced at RCPT TO: mallory's envelope is dropped
    // before the client can RSET it (pkt 11).
    let r = run(firewall_of(&example_policy(), false), &capture("rset.pcap"));
    assert_eq!(r.first_drop().map(|d| d.0), Some(11));
}

/// The §10 pattern (validation stored in tx xbits at request_started, enforcement at the
/// DATA hook) on our own captures.
const XBITS_RULES: &str = r#"accept:hook tcp:all any any -> any any (flow:not_established; sid:1000;)
accept:hook tcp:all any any <> any any (flow:established; sid:1001;)
accept:hook,alert smtp:request_started any any -> any any (sid:1999; smtp.rcpt_to; content:"alice@example.com>"; endswith; xbits:set,fw.smtp.rcpt_to_ok,track tx;)
accept:hook smtp:request_started any any -> any any (sid:2000;)
accept:hook smtp:response_started any any -> any any (sid:3000;)
accept:hook smtp:request_complete any any -> any any (sid:2010;)
accept:hook smtp:request_data any any -> any any (sid:2005; xbits:isset,fw.smtp.rcpt_to_ok,track tx;)
accept:hook smtp:response_data any any -> any any (sid:3005;)
accept:hook smtp:response_complete any any -> any any (sid:3010;)
"#;

fn xbits_policy() -> Policy {
    let dir = std::env::temp_dir().join(format!("sekisho-fw-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("fw.rules");
    std::fs::write(&path, XBITS_RULES).expect("write rules");
    rules_policy(&path)
}

#[test]
fn xbits_pattern_allows_listed_recipient() {
    let r = run(
        firewall_of(&xbits_policy(), false),
        &capture("swaks-plain.pcap"),
    );
    assert_eq!(r.dropped(), 0, "{:?}", r.first_drop());
    assert_eq!(r.alert_sids(), vec![1999], "alert once per tx");
    assert_eq!(r.smtp_events(), 1);
}

#[test]
fn xbits_pattern_blocks_at_data_hook() {
    let r = run(
        firewall_of(&xbits_policy(), true),
        &capture("swaks-plain-disallowed.pcap"),
    );
    let (pkt, o) = r.first_drop().expect("disallowed dropped");
    assert_eq!(o.verdict, FwVerdict::DropFlow);
    assert_eq!(o.drop_reason, Some("firewall default app policy"));
    assert!(
        o.explain.iter().any(|l| l.ends_with(
            "hook smtp:request_data tx 0: no accept rule matched → default drop:flow (firewall default app policy)"
        )),
        "{:?}",
        o.explain
    );
    // The DATA command (pkt 13 of the capture) is the first packet dropped.
    assert_eq!(*pkt, 13);
    assert!(r.alert_sids().is_empty());
    assert_eq!(r.smtp_events(), 0);
}

#[test]
fn xbits_pattern_validates_each_tx_after_rset() {
    // Enforcement at DATA: the reset envelope (mallory) never reaches DATA, the next tx (alice)
    // is validated on its own and delivered (suricata-verify 128-130 behaviour).
    let r = run(firewall_of(&xbits_policy(), false), &capture("rset.pcap"));
    assert_eq!(r.dropped(), 0, "{:?}", r.first_drop());
    assert_eq!(r.alert_sids(), vec![1999]);
    assert_eq!(r.smtp_events(), 2);
}

/// (test, blocked packets, (sid, alert count), smtp event expected).
type Oracle = (&'static str, usize, &'static [(u64, usize)], bool);

/// suricata-verify oracles: (test, expected firewall.blocked, alert sids with counts, smtp
/// event expected).
#[test]
fn suricata_verify_smtp_oracles() {
    let cases: &[Oracle] = &[
        ("ruletype-firewall-122-smtp", 0, &[], true),
        (
            "ruletype-firewall-125-smtp-all-rcpts-required-drop",
            9,
            &[(1998, 1), (1999, 0), (1997, 1)],
            false,
        ),
    ];
    let Some(base) = sv_firewall() else {
        return;
    };
    for (test, blocked, sids, smtp) in cases {
        let dir = base.join(test);
        assert!(
            dir.is_dir(),
            "oracle case missing from the suite: {}",
            dir.display()
        );
        let pcap = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "pcap"))
            .expect("pcap");
        let policy = rules_policy(&dir.join("firewall.rules"));
        let r = run(firewall_of(&policy, true), &pcap);
        assert_eq!(r.dropped(), *blocked, "{test}: {:?}", r.first_drop());
        let got = r.alert_sids();
        for (sid, n) in *sids {
            assert_eq!(
                got.iter().filter(|s| *s == sid).count(),
                *n,
                "{test} sid {sid}"
            );
        }
        assert_eq!(r.smtp_events() > 0, *smtp, "{test}");
    }
}

/// Every suricata-verify SMTP firewall test (8.0.7+): `firewall.blocked` from its test.yaml
/// must equal the packets our firewall dropped on its capture with its rules.
#[test]
fn suricata_verify_smtp_blocked_counts() {
    // The snapshot's SMTP firewall cases; three assert no `firewall.blocked` counter.
    const SMTP_CASES: usize = 17;
    const NO_BLOCKED_COUNT: &[&str] = &[
        "ruletype-firewall-122-smtp",
        "ruletype-firewall-139-smtp-pipelined-post-data-mail-from",
        "ruletype-firewall-140-smtp-pipelined-post-data-rset-sequence",
    ];
    let Some(base) = sv_firewall() else {
        return;
    };
    let dir = std::fs::read_dir(&base).expect("read the suite's firewall cases");
    let mut tests: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("-smtp"))
        .collect();
    tests.sort();
    let mut failed = Vec::new();
    let mut checked = 0;
    let mut without_count = Vec::new();
    for t in &tests {
        let name = t
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let yaml = std::fs::read_to_string(t.join("test.yaml"))
            .unwrap_or_else(|e| panic!("{}: {e}", t.display()));
        let field = |key: &str| {
            yaml.lines()
                .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
        };
        let pcap = field("pcap:").unwrap_or_else(|| panic!("{name}: no pcap: line"));
        let Some(blocked) = field("firewall.blocked:") else {
            without_count.push(name);
            continue;
        };
        let blocked: usize = blocked
            .parse()
            .unwrap_or_else(|e| panic!("{name}: firewall.blocked {blocked:?}: {e}"));
        let policy = rules_policy(&t.join("firewall.rules"));
        let r = run(firewall_of(&policy, false), &t.join(pcap));
        checked += 1;
        if r.dropped() != blocked {
            failed.push(format!(
                "{}: blocked {} want {blocked}",
                t.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                r.dropped()
            ));
        }
    }
    assert_eq!(tests.len(), SMTP_CASES, "SMTP firewall cases in the suite");
    assert_eq!(
        without_count, NO_BLOCKED_COUNT,
        "cases without firewall.blocked"
    );
    assert_eq!(checked, SMTP_CASES - NO_BLOCKED_COUNT.len());
    assert!(failed.is_empty(), "{failed:#?}");
}
