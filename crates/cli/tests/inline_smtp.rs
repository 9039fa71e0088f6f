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
