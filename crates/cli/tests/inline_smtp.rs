//! Inline in the lab (`sekisho_testutil::lab`): the SMTP recipient allow list enforced on
//! live mail. swaks in `client` sends to Postfix's smtp-sink in `server` through `fw`, where
//! iptables sends every forwarded packet to NFQUEUE and `sekisho run` decides, with
//! examples/smtp/recipients-strict.yaml (strict order, `aws:drop_established`, the recipient
//! recipe). Mail to an allowed recipient is delivered (smtp-sink's dump of the transaction
//! proves it), pipelined or not; mail to a recipient off the list is not, swaks reports an
//! error, and the log has the alert with `alert.action` `blocked` and the `drop` record.

#[path = "support/inline.rs"]
mod inline;

use sekisho_testutil::lab::{self, Lab, CLIENT_IP};

#[test]
fn recipient_allow_list_is_enforced_on_live_mail() {
    if !lab::require_tools(&["smtp-sink", "swaks"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    let dump = inline::smtp_sink(&mut lab);
    lab.queue_iptables("0", false);
    let policy = inline::root().join("examples/smtp/recipients-strict.yaml");
    let policy = policy.display().to_string();
    let fw = inline::start(&mut lab, "smtp", &["--policy", &policy, "--queue", "0"]);

    for pipeline in [false, true] {
        let ok = inline::swaks(&lab, CLIENT_IP, "alice@example.com", pipeline, 10);
        assert!(
            ok.status.success(),
            "allowed recipient (pipeline {pipeline}) failed:\n{}\n{}",
            String::from_utf8_lossy(&ok.stdout),
            fw.log()
        );
        let bad = inline::swaks(&lab, CLIENT_IP, "mallory@evil.test", pipeline, 4);
        assert!(
            !bad.status.success(),
            "disallowed recipient (pipeline {pipeline}) was accepted:\n{}",
            String::from_utf8_lossy(&bad.stdout)
        );
        // swaks's transcript: the RCPT TO went out and no answer came back.
        let text = String::from_utf8_lossy(&bad.stdout).into_owned()
            + &String::from_utf8_lossy(&bad.stderr);
        assert!(text.contains("RCPT TO:<mallory@evil.test>"), "{text}");
        assert!(
            !text.contains("<** 5"),
            "the server never answered the RCPT: {text}"
        );
    }
    inline::stop(&mut lab, &fw);

    assert_eq!(
        inline::delivered(&dump),
        vec!["<alice@example.com>".to_string(); 2],
        "smtp-sink received exactly the two allowed messages"
    );
    let events = fw.eve();
    let alerts: Vec<_> = inline::of(&events, "alert")
        .into_iter()
        .filter(|e| e["alert"]["signature_id"] == 2000001)
        .collect();
    assert_eq!(
        alerts.len(),
        2,
        "one alert per disallowed message: {events:#?}"
    );
    for a in &alerts {
        assert_eq!(a["alert"]["action"], "blocked", "{a}");
        assert_eq!(a["dest_port"], 25, "{a}");
        assert_eq!(a["src_ip"], CLIENT_IP, "{a}");
    }
    let drops = inline::of(&events, "drop");
    assert!(!drops.is_empty(), "drop records: {events:#?}");
    assert!(fw.log().contains("sekisho run: stopped;"), "{}", fw.log());
}

/// Two queues, one worker each sharing one rule set, with iptables `--queue-balance 0:1`
/// (the kernel's symmetric flow hash): mail from two client addresses, so flows hash onto both
/// queues, is enforced alike, and both queues carried packets (a chance of 2^-11 that the
/// kernel's random hash seed puts all twelve addresses on one queue).
#[test]
fn two_queues_with_iptables_queue_balance_enforce_alike() {
    if !lab::require_tools(&["smtp-sink", "swaks", "curl"]) {
        return;
    }
    let Some(lab) = Lab::new() else { return };
    lab.queue_iptables("0:1", false);
    two_queues(lab);
}

/// The same with nftables (`queue num 0-1 fanout`). Skipped (also in CI: no package can add
/// it) on a kernel built without the nftables `queue` expression (CONFIG_NFT_QUEUE), as the
/// lab machine's is; iptables-nft's `-j NFQUEUE` uses the xtables target instead.
#[test]
fn two_queues_with_nftables_enforce_alike() {
    if !lab::require_tools(&["smtp-sink", "swaks", "nft", "curl"]) {
        return;
    }
    let Some(lab) = Lab::new() else { return };
    if let Err(e) = lab.queue_nft("0:1", false) {
        assert!(e.contains("No such file or directory"), "nft failed: {e}");
        eprintln!("SKIP: this kernel has no nftables queue expression (CONFIG_NFT_QUEUE): {e}");
        return;
    }
    two_queues(lab);
}

fn two_queues(mut lab: Lab) {
    let dump = inline::smtp_sink(&mut lab);
    let policy = inline::root().join("examples/smtp/recipients-strict.yaml");
    let policy = policy.display().to_string();
    let fw = inline::start(
        &mut lab,
        "twoq",
        &[
            "--policy",
            &policy,
            "--queues",
            "0:1",
            "--metrics",
            "127.0.0.1:9101",
        ],
    );
    // One allowed mail from every client address (the kernel hashes addresses, so these
    // spread over both queues), a disallowed one from two of them.
    let mut sent = 0;
    for i in 0..lab::CLIENT_ADDRS {
        let from = lab::client_ip(i);
        let ok = inline::swaks(&lab, &from, "bob@example.org", true, 10);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stdout)
        );
        sent += 1;
        if i < 2 {
            let bad = inline::swaks(&lab, &from, "mallory@evil.test", true, 4);
            assert!(!bad.status.success());
        }
    }
    let m = inline::metrics(&lab, 9101);
    inline::stop(&mut lab, &fw);
    assert_eq!(
        inline::delivered(&dump),
        vec!["<bob@example.org>".to_string(); sent]
    );
    for q in 0..2 {
        let n = inline::metric(&m, &format!("sekisho_queue_packets_total{{queue=\"{q}\"}}"));
        assert!(
            n.is_some_and(|n| n > 0),
            "queue {q} carried no packets: {m}"
        );
    }
    let events = fw.eve();
    let blocked = inline::of(&events, "alert")
        .into_iter()
        .filter(|e| e["alert"]["signature_id"] == 2000001 && e["alert"]["action"] == "blocked")
        .count();
    assert_eq!(blocked, 2, "{events:#?}");
}
