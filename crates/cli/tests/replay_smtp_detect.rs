//! The SMTP case sekisho was founded for (issue 4), on real captures made by
//! scripts/captures/make-smtp-captures.sh: Postfix `sendmail` relaying to `smtp-sink`
//! (EHLO name sendmail.yamashita-kensho.net, MAIL/RCPT/DATA pipelined into one segment) and
//! swaks with and without --pipeline.
//!
//! 1. The report's rules reproduce what AWS Network Firewall did (aws-nfw profile: exactly
//!    three alerts on the EHLO packet), what Suricata 8.0.6 does (one alert on the client's
//!    ACK after the banner) and what action order does (none), with `--explain` saying why.
//! 2. The recipient recipes in examples/smtp/ block disallowed recipients inline, pipelined
//!    or not, and let allowed mail through.

#[path = "support/smtp.rs"]
mod support;

use support::{capture, first_containing, first_with, replay, root, tcp_packets, Run};

fn blog(policy: &str) -> Run {
    let run = replay(
        &capture("postfix-pipelined.pcap"),
        &["--explain", "--policy", policy],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

#[test]
fn aws_nfw_strict_drop_established_gives_the_reports_three_alerts_on_the_ehlo_packet() {
    let pkts = tcp_packets(&capture("postfix-pipelined.pcap"));
    let ehlo = first_with(&pkts, b"EHLO sendmail.yamashita-kensho.net");
    let run = blog("examples/smtp/blog-aws-nfw.yaml");
    // EHLO (content "EHLO"), MAIL FROM ("MAIL" nocase inside "sendmail"), "any"; then the
    // pass decides the flow: RCPT, DATA and QUIT are never inspected.
    assert_eq!(
        run.alerts(),
        vec![(1000000, ehlo), (1000001, ehlo), (1000007, ehlo)]
    );
    for a in run.of("alert") {
        assert_eq!(a["app_proto"], "smtp");
        assert_eq!(a["alert"]["action"], "allowed");
        assert_eq!(a["direction"], "to_server");
    }
    let flow = run.of("flow");
    assert_eq!(flow.len(), 1);
    assert_eq!(flow[0]["flow"]["action"], "pass");
    assert_eq!(flow[0]["flow"]["alerted"], true);
    // The explanation, packet by packet.
    let pipelined = first_containing(&pkts, b"RCPT TO:<someone@yahoo.co.jp>");
    let ctx = |n: u64| format!("pkt {n} flow 1 (10.0.0.150:");
    let out = &run.stdout;
    assert!(
        out.contains(&format!(
            "app_proto smtp detected from the client's data in pkt {ehlo}"
        )),
        "{out}"
    );
    let pass_line = out
        .lines()
        .find(|l| l.contains("sid 1000008 pass:"))
        .unwrap_or_else(|| panic!("no pass line in {out}"));
    assert!(pass_line.starts_with(&ctx(ehlo)), "{pass_line}");
    assert!(
        pass_line.ends_with("sid 1000008 pass: flow passed; later packets of this flow are not inspected (app-layer rule)"),
        "{pass_line}"
    );
    assert!(out.lines().any(|l| l.starts_with(&ctx(pipelined))
        && l.ends_with(&format!(
            "not inspected: flow passed at pkt {ehlo} by sid 1000008"
        ))));
    // Before EHLO the smtp rules cannot match: NFW's Suricata 7 has not recognised SMTP.
    assert!(out.contains("app-layer rules not evaluated, the flow's app_proto is not known yet: sid 1000007, 1000008"));
}

#[test]
fn suricata_8_recognises_the_banner_so_the_alert_is_on_the_ack_after_it() {
    let pkts = tcp_packets(&capture("postfix-pipelined.pcap"));
    let banner = first_with(&pkts, b"220 ");
    let ack = pkts
        .iter()
        .find(|p| p.num > banner && p.dport == 25)
        .expect("client packet after the banner");
    assert!(
        ack.payload.is_empty(),
        "the packet after the banner is a bare ACK"
    );
    let run = blog("examples/smtp/blog-suricata-8.yaml");
    assert_eq!(run.alerts(), vec![(1000007, ack.num)]);
    assert!(run.stdout.contains(&format!(
        "app_proto smtp detected from the server's data in pkt {banner}"
    )));
    assert!(run.stdout.contains(&format!(
        "pkt {} flow 1 (10.0.0.150:50390 -> 203.0.113.25:25, smtp) sid 1000008 pass: flow passed",
        ack.num
    )));
    assert_eq!(run.of("flow")[0]["flow"]["action"], "pass");
}

#[test]
fn action_order_evaluates_the_pass_first_so_nothing_alerts() {
    let run = blog("examples/smtp/blog-action-order.yaml");
    assert_eq!(run.alerts(), vec![]);
    assert_eq!(run.of("flow")[0]["flow"]["action"], "pass");
    assert!(run.stdout.contains("sid 1000008 pass: flow passed"));
}

#[test]
fn the_reports_variants_behave_as_reported() {
    let pkts = tcp_packets(&capture("postfix-pipelined.pcap"));
    let ehlo = first_with(&pkts, b"EHLO");
    let alerts = |p: &str| blog(&format!("examples/smtp/blog-variants/{p}.yaml")).alerts();
    // The host name is in EHLO: matched before the pass.
    assert_eq!(alerts("yamashita"), vec![(sid_of("yamashita"), ehlo)]);
    // The recipient domain is only in RCPT TO, after the flow was passed.
    assert_eq!(alerts("yahoo"), vec![]);
    // `tcp` instead of `smtp`: the content-less pass is IP-only, passes the flow on the SYN.
    assert_eq!(alerts("tcp"), vec![]);
    // RCPT first with offset/depth: changes nothing.
    assert_eq!(
        alerts("rcpt-offset"),
        vec![(1000000, ehlo), (1000001, ehlo), (1000007, ehlo)]
    );
}

/// The sid of the single alert rule in a variant file.
fn sid_of(variant: &str) -> u64 {
    let text = std::fs::read_to_string(
        root().join(format!("examples/smtp/blog-variants/{variant}.rules")),
    )
    .unwrap();
    text.lines()
        .filter(|l| l.starts_with("alert"))
        .find_map(|l| l.split("sid:").nth(1))
        .and_then(|s| s.split(';').next())
        .and_then(|s| s.trim().parse().ok())
        .expect("alert rule with sid")
}

/// Packets of the capture from number `from` to the end (the capture holds one flow).
fn packets_from(pcap: &str, from: u64) -> u64 {
    tcp_packets(&capture(pcap))
        .iter()
        .filter(|p| p.num >= from)
        .count() as u64
}

fn assert_blocked(pcap: &str, policy: &str, at: &[u8]) {
    let run = replay(&capture(pcap), &["--mode", "inline", "--policy", policy]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pkts = tcp_packets(&capture(pcap));
    let blocked = first_containing(&pkts, at);
    let drops = run.of("drop");
    // The rule's drop, then (Suricata's `flows: start`) the first packet the flow drop hits
    // in the other direction.
    assert_eq!(drops.len(), 2, "{pcap} {policy}: {drops:?}");
    assert_eq!(drops[0]["pcap_cnt"], blocked);
    assert_eq!(drops[0]["drop"]["reason"], "rules");
    assert_eq!(drops[0]["alert"]["action"], "blocked");
    assert_eq!(drops[1]["drop"]["reason"], "flow drop");
    assert_eq!(drops[1]["direction"], "to_client");
    // The blocked segment and every later packet of the flow are dropped: nothing after it
    // reaches the server (or the app layer).
    assert_eq!(run.drops(), packets_from(pcap, blocked), "{pcap} {policy}");
    let flow = run.of("flow");
    assert_eq!(flow[0]["flow"]["action"], "drop");
    let alert = run.of("alert");
    assert_eq!(alert.len(), 1);
    assert_eq!(alert[0]["alert"]["action"], "blocked");
    assert_eq!(alert[0]["pcap_cnt"], blocked);
    if policy.contains("aws-nfw") {
        // A raw stream match: no transaction.
        assert!(alert[0].get("tx_id").is_none());
    } else {
        assert!(
            alert[0]["tx_id"].is_u64(),
            "an smtp.rcpt_to match names its transaction"
        );
        assert!(alert[0]["smtp"]["rcpt_to"].is_array());
    }
}

fn assert_delivered(pcap: &str, policy: &str) {
    let run = replay(&capture(pcap), &["--mode", "inline", "--policy", policy]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.drops(), 0, "{pcap} {policy}: {:?}", run.of("drop"));
    assert_eq!(run.alerts(), vec![]);
    assert_ne!(run.of("flow")[0]["flow"]["action"], "drop");
    // The whole message went through: the transaction completed.
    assert!(!run.of("smtp").is_empty());
}

#[test]
fn recipient_allow_list_blocks_disallowed_recipients_pipelined_or_not() {
    let strict = "examples/smtp/recipients-strict.yaml";
    let action = "examples/smtp/recipients-action-order.yaml";
    // Under aws-nfw (no smtp.rcpt_to): the raw-stream recipe.
    let nfw = "examples/smtp/recipients-aws-nfw.yaml";
    for policy in [strict, action, nfw] {
        // Postfix pipelines MAIL/RCPT/DATA: the segment with the recipients is the last one
        // that gets through; the body never does.
        assert_blocked(
            "postfix-two-rcpt.pcap",
            policy,
            b"RCPT TO:<mallory@evil.example>",
        );
        assert_blocked(
            "postfix-pipelined.pcap",
            policy,
            b"RCPT TO:<someone@yahoo.co.jp>",
        );
        assert_blocked("swaks-pipeline.pcap", policy, b"RCPT TO:<b@example.com>");
        // One command per segment: the RCPT TO segment is dropped, DATA never follows.
        assert_blocked(
            "swaks-plain-disallowed.pcap",
            policy,
            b"RCPT TO:<mallory@evil.example>",
        );
        assert_delivered("swaks-plain.pcap", policy);
    }
}

#[test]
fn recipient_domain_list_allows_whole_domains() {
    let policy = "examples/smtp/recipients-domains.yaml";
    assert_delivered("swaks-pipeline.pcap", policy);
    assert_delivered("swaks-plain.pcap", policy);
    assert_blocked(
        "postfix-two-rcpt.pcap",
        policy,
        b"RCPT TO:<mallory@evil.example>",
    );
    assert_blocked(
        "swaks-plain-disallowed.pcap",
        policy,
        b"RCPT TO:<mallory@evil.example>",
    );
}

#[test]
fn monitor_mode_logs_the_decision_but_drops_nothing() {
    let run = replay(
        &capture("postfix-two-rcpt.pcap"),
        &[
            "--mode",
            "monitor",
            "--policy",
            "examples/smtp/recipients-strict.yaml",
        ],
    );
    assert_eq!(run.drops(), 0);
    assert!(run.of("drop").is_empty());
    let alerts = run.of("alert");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["alert"]["action"], "allowed");
    assert_eq!(alerts[0]["alert"]["signature_id"], 2000001);
}

#[test]
fn recipient_allow_list_in_firewall_mode() {
    let policy = "examples/smtp/recipients-firewall.yaml";
    assert_delivered("swaks-plain.pcap", policy);
    for (pcap, at) in [
        (
            "swaks-plain-disallowed.pcap",
            &b"RCPT TO:<mallory@evil.example>"[..],
        ),
        (
            "postfix-two-rcpt.pcap",
            &b"RCPT TO:<mallory@evil.example>"[..],
        ),
    ] {
        let run = replay(&capture(pcap), &["--mode", "inline", "--policy", policy]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let blocked = first_containing(&tcp_packets(&capture(pcap)), at);
        let drops = run.of("drop");
        assert_eq!(drops.len(), 2, "{pcap}");
        assert_eq!(drops[0]["pcap_cnt"], blocked);
        assert_eq!(drops[0]["drop"]["reason"], "firewall rules");
        // Later packets of a flow the firewall dropped: Suricata's `firewall flow drop`
        // (suricata-verify ruletype-firewall-28).
        assert_eq!(drops[1]["drop"]["reason"], "firewall flow drop");
        assert_eq!(run.drops(), packets_from(pcap, blocked), "{pcap}");
        let alert = run.of("alert");
        assert_eq!(alert.len(), 1);
        assert_eq!(alert[0]["alert"]["engine"], "fw");
        assert_eq!(alert[0]["alert"]["signature_id"], 3001);
        assert_eq!(alert[0]["firewall"]["hook"], "smtp:request_started");
        assert_eq!(run.of("flow")[0]["flow"]["action"], "drop");
    }
}

#[test]
fn drop_established_leaves_the_banner_alone_unless_both_directions_are_asked_for() {
    let pcap = capture("postfix-pipelined.pcap");
    let banner = first_with(&tcp_packets(&pcap), b"220 ");
    let policy = "examples/smtp/blog-aws-nfw.yaml";
    // Default (to_server): the banner is not dropped, as the report's delivered mail shows.
    let run = replay(&pcap, &["--policy", policy]);
    assert!(run.of("drop").iter().all(|d| d["pcap_cnt"] != banner));
    // The other reading of AWS's documentation: the banner would be dropped.
    let run = replay(
        &pcap,
        &["--set", "detect.established-scope=both", "--policy", policy],
    );
    let drops = run.of("drop");
    assert!(drops.iter().any(|d| d["pcap_cnt"] == banner
        && d["drop"]["reason"] == "default action"
        && d["direction"] == "to_client"));
    // Either way the report's three alerts stay.
    assert_eq!(run.alerts().len(), 3);
    let bad = replay(&pcap, &["--set", "detect.nope=1", "--policy", policy]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("unknown detection setting"));
}
