//! Pins [`Sensor::swap_rules`] (a reload) in the middle of a real SMTP session, and that a
//! reload from a policy that fails to load changes nothing.
//!
//! The capture is tests/fixtures/captures/smtp/two-messages.pcap (python3 smtplib, one command
//! per segment): message 1 `<first@example.com>` → `alice@example.com`, then `rset`, then
//! message 2 `<second@example.com>` → `bob@example.org`, `carol@example.net`. The swap happens
//! just before the `rset` segment: after message 1's data and its `250`, before message 2's
//! `mail`/`rcpt` commands.
//!
//! 1. Old rules alert on rcpt alice (sid 1) and on rcpt bob (sid 11); new rules alert on rcpt
//!    bob (sid 2) and drop on rcpt carol (sid 3). With the swap: sid 1 fires on alice's `rcpt`
//!    segment, sid 2 on bob's, sid 3 on carol's, and sid 11 never. The session is one flow
//!    with one flow id before and after, and its `smtp` transactions (tx ids, helo, mail_from,
//!    rcpt_to) are exactly those of a run without the swap and of the capture's
//!    `.tshark.json`. Run in monitor mode, so that the new drop rule is reported, not applied:
//!    inline it drops the rest of the flow and so changes the transactions this test compares
//!    (the inline drop is pinned by test 2).
//! 2. Inline, the same swap drops the flow at carol's `rcpt` segment: an app-tx `drop` applies
//!    to the flow (docs/detection.md), so that segment's verdict is `DropFlow` with a drop
//!    record for sid 3 (reason `rules`), every later packet is dropped too (one more drop
//!    record, reason `flow drop`, on the next packet), and nothing before it is.
//! 3. A reload from a policy that fails to load never yields an `Arc<RuleSet>` (the loader
//!    goes through `Checked::into_result`, which is `Err` for every invalid input, and only an
//!    `Ok` policy is compiled): the invalid policies of examples/errors/ are refused, the
//!    sensor keeps its rules (the same `Arc`), and the old rules keep firing (sid 11 on bob's
//!    `rcpt` after the failed reload) exactly as in a run without any reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sekisho_engine::decode::PacketDecoder;
use sekisho_engine::{AppTxData, Event, LinkType, Timestamp, Verdict};
use sekisho_pcap::MergedCaptures;
use sekisho_policy::Policy;
use sekisho_sensor::{Mode, Record, RuleSet, Sensor, Settings};

const OLD_RULES: &str = r#"alert smtp any any -> any 25 (msg:"rcpt alice"; flow:to_server; smtp.rcpt_to; content:"<alice@example.com>"; sid:1; rev:1;)
alert smtp any any -> any 25 (msg:"rcpt bob (old rules)"; flow:to_server; smtp.rcpt_to; content:"<bob@example.org>"; sid:11; rev:1;)
"#;

const NEW_RULES: &str = r#"alert smtp any any -> any 25 (msg:"rcpt bob (new rules)"; flow:to_server; smtp.rcpt_to; content:"<bob@example.org>"; sid:2; rev:1;)
drop smtp any any -> any 25 (msg:"rcpt carol"; flow:to_server; smtp.rcpt_to; content:"<carol@example.net>"; sid:3; rev:1;)
"#;

/// One frame of the capture, with its TCP payload (for finding segments by what they carry).
struct Frame {
    ts: Timestamp,
    link: LinkType,
    data: Vec<u8>,
    payload: Vec<u8>,
}

fn capture() -> Option<(Vec<Frame>, PathBuf)> {
    let pcap = sekisho_testutil::require_fixture("tests/fixtures/captures/smtp/two-messages.pcap")?;
    let mut caps = MergedCaptures::open(std::slice::from_ref(&pcap)).expect("open capture");
    let mut decoder = PacketDecoder::new(&Settings::new(Mode::Inline).engine_config());
    let mut out = Vec::new();
    caps.for_each(None, |p| {
        let ts = Timestamp::from_secs_nanos(p.ts.sec, u64::from(p.ts.nsec));
        let link = LinkType::from_linktype(p.link_type).expect("link type");
        let payload = decoder
            .decode(ts, link, p.data)
            .map(|d| d.payload.to_vec())
            .unwrap_or_default();
        out.push(Frame {
            ts,
            link,
            data: p.data.to_vec(),
            payload,
        });
    });
    assert!(caps.errors().is_empty());
    Some((out, pcap.with_extension("tshark.json")))
}

/// Index of the first frame whose TCP payload starts with `what`.
fn frame_starting(frames: &[Frame], what: &[u8]) -> usize {
    frames
        .iter()
        .position(|f| f.payload.starts_with(what))
        .unwrap_or_else(|| panic!("no segment starting {:?}", String::from_utf8_lossy(what)))
}

/// Loads rules the way a reload must: `None` (never a rule set) when the input is invalid.
fn load_rules(paths: &[PathBuf], settings: &Settings) -> Option<Arc<RuleSet>> {
    let checked = Policy::check_rules_files(paths, &Default::default());
    let (policy, _) = checked.into_result().ok()?;
    Some(Arc::new(RuleSet::from_policy(
        &policy,
        settings.compile_options(),
    )))
}

fn load_policy(path: &Path, settings: &Settings) -> Option<Arc<RuleSet>> {
    let checked = Policy::check_file(path, &Default::default());
    let (policy, _) = checked.into_result().ok()?;
    Some(Arc::new(RuleSet::from_policy(
        &policy,
        settings.compile_options(),
    )))
}

fn rules_file(
    dir: &tempfile::TempDir,
    name: &str,
    text: &str,
    settings: &Settings,
) -> Arc<RuleSet> {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write rules");
    load_rules(&[p], settings).expect("valid rules")
}

/// One `smtp` transaction: tx id, helo, mail_from, rcpt_to.
type Tx = (u64, Option<String>, Option<String>, Vec<String>);

/// What a run produced.
#[derive(Default)]
struct Run {
    /// (sid, frame index) of every alert.
    alerts: Vec<(u64, usize)>,
    /// (sid, frame index) of every drop record.
    drops: Vec<(u64, usize)>,
    /// The reason of every drop record.
    drop_reasons: Vec<&'static str>,
    /// Flow id of every alert, drop, transaction and flow record.
    flow_ids: Vec<u64>,
    /// The `smtp` transactions: (tx id, helo, mail_from, rcpt_to).
    txs: Vec<Tx>,
    verdicts: Vec<Verdict>,
}

/// Feeds every frame; before frame `at`, `hook` may act on the sensor.
fn drive(
    frames: &[Frame],
    sensor: &mut Sensor,
    at: usize,
    mut hook: impl FnMut(&mut Sensor),
) -> Run {
    let mut run = Run::default();
    let drain = |sensor: &mut Sensor, run: &mut Run| {
        while let Some(r) = sensor.poll_record() {
            match r {
                Record::Alert(a) => {
                    run.alerts
                        .push((a.alert.sid, (a.head.pkt_num - 1) as usize));
                    run.flow_ids.push(a.head.flow_id);
                }
                Record::Drop(d) => {
                    let sid = d.alert.as_ref().map_or(0, |a| a.sid);
                    run.drops.push((sid, (d.head.pkt_num - 1) as usize));
                    run.drop_reasons.push(d.reason);
                    run.flow_ids.push(d.head.flow_id);
                }
                Record::Event(Event::AppTx(t)) => {
                    run.flow_ids.push(t.flow_id);
                    let AppTxData::Smtp(s) = &t.app else {
                        continue;
                    };
                    run.txs.push((
                        t.tx_id,
                        s.helo.clone(),
                        s.mail_from.clone(),
                        s.rcpt_to.clone(),
                    ));
                }
                Record::Flow { record, .. } => run.flow_ids.push(record.flow_id),
                _ => {}
            }
        }
    };
    for (i, f) in frames.iter().enumerate() {
        if i == at {
            hook(sensor);
        }
        run.verdicts
            .push(sensor.handle_packet(f.ts, f.link, &f.data));
        drain(sensor, &mut run);
    }
    sensor.finish(frames.last().expect("frames").ts);
    drain(sensor, &mut run);
    run
}

/// The capture's transactions from its `.tshark.json` (one session).
fn tshark_txs(path: &Path) -> Vec<Tx> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("tshark json")).expect("json");
    let sessions = v.as_array().expect("sessions");
    assert_eq!(sessions.len(), 1);
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    sessions[0]
        .as_array()
        .expect("transactions")
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                i as u64,
                s(&t["helo"]),
                s(&t["mail_from"]),
                t["rcpt_to"]
                    .as_array()
                    .expect("rcpt_to")
                    .iter()
                    .map(|r| r.as_str().expect("rcpt").to_string())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn swap_between_transactions_keeps_the_flow_and_switches_the_rules() {
    let Some((frames, json)) = capture() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings::new(Mode::Monitor);
    let old = rules_file(&dir, "old.rules", OLD_RULES, &settings);
    let new = rules_file(&dir, "new.rules", NEW_RULES, &settings);
    let (alice, bob, carol) = (
        frame_starting(&frames, b"rcpt TO:<alice@example.com>"),
        frame_starting(&frames, b"rcpt TO:<bob@example.org>"),
        frame_starting(&frames, b"rcpt TO:<carol@example.net>"),
    );
    let rset = frame_starting(&frames, b"rset");
    let second_mail = frame_starting(&frames, b"mail FROM:<second@example.com>");
    assert!(alice < rset && rset < second_mail && second_mail < bob && bob < carol);

    let mut swapped = Sensor::new(&settings, Some(Arc::clone(&old)));
    let with_swap = drive(&frames, &mut swapped, rset, |s| {
        assert!(Arc::ptr_eq(s.rules().expect("rules"), &old));
        s.swap_rules(Arc::clone(&new), &settings);
        assert!(Arc::ptr_eq(s.rules().expect("rules"), &new));
    });
    let mut plain = Sensor::new(&settings, Some(Arc::clone(&old)));
    let without = drive(&frames, &mut plain, usize::MAX, |_| {});

    // Old rules before the swap, new rules after it; sid 11 (old) never fires after it.
    assert_eq!(with_swap.alerts, vec![(1, alice), (2, bob), (3, carol)]);
    assert_eq!(without.alerts, vec![(1, alice), (11, bob)]);
    // Monitor mode: the drop rule is reported, nothing is dropped.
    assert!(with_swap.drops.is_empty());
    assert!(with_swap.verdicts.iter().all(|v| *v == Verdict::Accept));
    // One flow, one id, before and after the swap.
    let id = with_swap.flow_ids[0];
    assert!(
        with_swap.flow_ids.iter().all(|f| *f == id),
        "{:?}",
        with_swap.flow_ids
    );
    assert_eq!(swapped.stats().flow.total, 1);
    // The transactions carry on across the swap: as without it, as tshark saw them.
    assert_eq!(with_swap.txs, without.txs);
    assert_eq!(with_swap.txs, tshark_txs(&json));
}

#[test]
fn inline_the_swapped_in_drop_rule_drops_the_flow_at_the_disallowed_recipient() {
    let Some((frames, _)) = capture() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings::new(Mode::Inline);
    let old = rules_file(&dir, "old.rules", OLD_RULES, &settings);
    let new = rules_file(&dir, "new.rules", NEW_RULES, &settings);
    let alice = frame_starting(&frames, b"rcpt TO:<alice@example.com>");
    let bob = frame_starting(&frames, b"rcpt TO:<bob@example.org>");
    let carol = frame_starting(&frames, b"rcpt TO:<carol@example.net>");
    let rset = frame_starting(&frames, b"rset");

    let mut sensor = Sensor::new(&settings, Some(old));
    let run = drive(&frames, &mut sensor, rset, |s| {
        s.swap_rules(Arc::clone(&new), &settings)
    });
    assert_eq!(run.alerts, vec![(1, alice), (2, bob), (3, carol)]);
    assert_eq!(run.drops, vec![(3, carol), (0, carol + 1)]);
    assert_eq!(run.drop_reasons, vec!["rules", "flow drop"]);
    assert!(run.verdicts[..carol].iter().all(|v| *v == Verdict::Accept));
    assert!(run.verdicts[carol..]
        .iter()
        .all(|v| *v == Verdict::DropFlow));
    let id = run.flow_ids[0];
    assert!(run.flow_ids.iter().all(|f| *f == id), "{:?}", run.flow_ids);
    // Message 1 was complete before the swap and is logged as tshark saw it.
    assert_eq!(
        run.txs.first().map(|t| (t.0, t.2.clone(), t.3.clone())),
        Some((
            0,
            Some("<first@example.com>".to_string()),
            vec!["<alice@example.com>".to_string()]
        ))
    );
}

#[test]
fn a_policy_that_fails_to_load_never_replaces_the_rules() {
    let Some((frames, json)) = capture() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings::new(Mode::Inline);
    let old = rules_file(&dir, "old.rules", OLD_RULES, &settings);
    let alice = frame_starting(&frames, b"rcpt TO:<alice@example.com>");
    let bob = frame_starting(&frames, b"rcpt TO:<bob@example.org>");
    let rset = frame_starting(&frames, b"rset");
    let errors = sekisho_testutil::repo_root().join("examples/errors");
    let bad_policies = [
        "unknown-key.yaml",
        "missing-rules-file.yaml",
        "two-drop-defaults.yaml",
        "cross-group-sid.yaml",
    ];
    let bad_rules = [
        "unknown-keyword.rules",
        "duplicate-sid.rules",
        "unterminated-quote.rules",
    ];

    let mut sensor = Sensor::new(&settings, Some(Arc::clone(&old)));
    let mut attempts = 0;
    let run = drive(&frames, &mut sensor, rset, |s| {
        for name in bad_policies {
            let path = errors.join(name);
            let checked = Policy::check_file(&path, &Default::default());
            assert!(!checked.is_valid(), "{name} is invalid");
            if name == "cross-group-sid.yaml" {
                // What was accepted from it still holds rules: compiling `checked.policy`
                // would make a rule set, which is why a reload goes through `into_result`.
                let accepted: usize = checked
                    .policy
                    .rule_groups
                    .iter()
                    .map(|g| g.rules.len())
                    .sum();
                assert!(accepted > 0, "{name}: the valid rules are kept in `policy`");
            }
            match load_policy(&path, &settings) {
                Some(rs) => s.swap_rules(rs, &settings),
                None => attempts += 1,
            }
        }
        for name in bad_rules {
            let path = errors.join(name);
            match load_rules(&[path], &settings) {
                Some(rs) => s.swap_rules(rs, &settings),
                None => attempts += 1,
            }
        }
        assert!(Arc::ptr_eq(s.rules().expect("rules"), &old));
    });
    assert_eq!(attempts, bad_policies.len() + bad_rules.len());
    assert!(Arc::ptr_eq(sensor.rules().expect("rules"), &old));
    // The old rules kept firing after the failed reloads: sid 11 on bob's rcpt.
    assert_eq!(run.alerts, vec![(1, alice), (11, bob)]);
    assert!(run.verdicts.iter().all(|v| *v == Verdict::Accept));
    assert_eq!(run.txs, tshark_txs(&json));
}
