//! Inline over IPv6 in the lab (`sekisho_testutil::lab`: client fd00::2, server fd01::2):
//! ip6tables sends forwarded packets to NFQUEUE and `sekisho run` enforces the recipient
//! recipe (examples/smtp/recipients.rules, strict order, `aws:drop_established`, HOME_NET
//! with the client's /64) on live mail: swaks over IPv6 to an allowed recipient is delivered
//! (smtp-sink's dump), to a disallowed one is not (no answer to RCPT, swaks fails), with the
//! alert (`alert.action: blocked`) and the drop record naming the IPv6 addresses; curl -6 to a
//! port no rule passes connects and then carries no data.

#[path = "support/inline.rs"]
mod inline;

use std::process::Stdio;
use std::time::Duration;

use sekisho_testutil::lab::{self, Lab, CLIENT_IP6, SERVER_IP6};

#[test]
fn recipient_recipe_over_ipv6() {
    if !lab::require_tools(&["smtp-sink", "swaks", "ip6tables", "curl", "python3"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    let dump = lab.dir.join("mail6");
    std::fs::create_dir_all(&dump).expect("mail dir");
    lab.ok(
        &lab.server.clone(),
        &["chmod", "0777", &dump.display().to_string()],
    );
    let server = lab.server.clone();
    let mut cmd = lab.cmd(&server, "smtp-sink");
    cmd.args(["-u", "nobody", "-d"])
        .arg(format!("{}/%M.", dump.display()))
        .arg(format!("[{SERVER_IP6}]:25"))
        .arg("64")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    lab.spawn("smtp-sink", &mut cmd);
    let mut cmd = lab.cmd(&server, "python3");
    cmd.args(["-m", "http.server", "9000", "--bind", SERVER_IP6])
        .current_dir(&lab.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    lab.spawn("http.server", &mut cmd);
    lab.wait_tcp(&server, SERVER_IP6, 25, Duration::from_secs(10));
    lab.wait_tcp(&server, SERVER_IP6, 9000, Duration::from_secs(10));
    // Only IPv6 is queued: whatever passes here went through sekisho over IPv6.
    lab.ok(
        &lab.fw,
        &[
            "ip6tables",
            "-A",
            "FORWARD",
            "-j",
            "NFQUEUE",
            "--queue-num",
            "0",
        ],
    );
    let policy = inline::policy(
        &lab,
        "recipients6.yaml",
        r#"engine_profile: suricata-8
rule_order: strict
default_actions: [aws:drop_established]
variables:
  HOME_NET: [10.0.0.0/24, "fd00::/64"]
rule_groups:
  - {name: recipients, rules: "{examples}/smtp/recipients.rules"}
"#,
    );
    let fw = inline::start(
        &mut lab,
        "v6",
        &["--policy", &policy.display().to_string(), "--queue", "0"],
    );
    let swaks = |rcpt: &str, timeout: &str| {
        lab.run(
            &lab.client,
            &[
                "swaks",
                "-6",
                "--server",
                SERVER_IP6,
                "--port",
                "25",
                "--local-interface",
                CLIENT_IP6,
                "--to",
                rcpt,
                "--from",
                "sender@example.net",
                "--helo",
                "client.lab",
                "--timeout",
                timeout,
            ],
        )
    };
    let ok = swaks("alice@example.com", "10");
    assert!(
        ok.status.success(),
        "allowed recipient over IPv6 failed:\n{}\n{}",
        String::from_utf8_lossy(&ok.stdout),
        fw.log()
    );
    let bad = swaks("mallory@evil.test", "4");
    let text = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert!(
        !bad.status.success(),
        "disallowed recipient accepted:\n{text}"
    );
    assert!(text.contains("RCPT TO:<mallory@evil.test>"), "{text}");
    // aws:drop_established: a port no rule passes connects, then carries nothing.
    let (code, err, _) = inline::curl(
        &lab,
        &[
            "-6",
            "-v",
            "--max-time",
            "3",
            &format!("http://[{SERVER_IP6}]:9000/"),
        ],
    );
    assert_eq!(code, 28, "curl -6 should time out after connecting: {err}");
    assert!(
        err.contains("Connected to") || err.contains("Established connection"),
        "{err}"
    );
    inline::stop(&mut lab, &fw);
    assert_eq!(
        inline::delivered(&dump),
        vec!["<alice@example.com>".to_string()],
        "smtp-sink received exactly the allowed message"
    );
    let events = fw.eve();
    let alert = inline::of(&events, "alert")
        .into_iter()
        .find(|e| e["alert"]["signature_id"] == 2000001)
        .unwrap_or_else(|| panic!("no recipient alert: {events:#?}"));
    assert_eq!(alert["alert"]["action"], "blocked", "{alert}");
    // EVE writes IPv6 addresses in full, as Suricata does.
    const CLIENT_FULL: &str = "fd00:0000:0000:0000:0000:0000:0000:0002";
    const SERVER_FULL: &str = "fd01:0000:0000:0000:0000:0000:0000:0002";
    assert_eq!(alert["src_ip"], CLIENT_FULL, "{alert}");
    assert_eq!(alert["dest_ip"], SERVER_FULL, "{alert}");
    assert!(
        inline::of(&events, "drop")
            .iter()
            .any(|d| d["dest_ip"] == SERVER_FULL && d["dest_port"] == 9000),
        "{events:#?}"
    );
}
