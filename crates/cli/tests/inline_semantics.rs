//! Inline in the lab (`sekisho_testutil::lab`): verdicts on live TCP and UDP flows between
//! real programs (curl and python's http.server, dig and dnsmasq), through `sekisho run` on
//! NFQUEUE in `fw`.
//!
//! - `aws:drop_established`: a TCP connection to a port no rule passes completes its
//!   handshake, then carries no data (curl connects, then times out); a UDP flow is dropped
//!   once established (the first query of a flow is answered, the next one in that flow not).
//! - `aws:drop_strict`: the handshake itself is blocked.
//! - `reject`: curl to port 80 fails at once with the connection refused by a TCP RST
//!   (not a time-out), and dig to port 53 gets an ICMP port unreachable ("connection
//!   refused") at once; the answers were sent by sekisho's raw socket (`transmitted=`), with
//!   sekisho running as `nobody` (`--user`) keeping only CAP_NET_ADMIN and CAP_NET_RAW.

#[path = "support/inline.rs"]
mod inline;

use sekisho_testutil::lab::{self, Lab, SERVER_IP};

fn url(port: u16) -> String {
    format!("http://{SERVER_IP}:{port}/")
}

#[test]
fn drop_established_lets_the_handshake_through_and_nothing_else() {
    if !lab::require_tools(&["python3", "curl", "dig", "dnsmasq"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    inline::http_server(&mut lab, 9000);
    inline::dnsmasq(&mut lab);
    lab.queue_iptables("0", false);
    let policy = inline::policy(
        &lab,
        "established.yaml",
        r#"engine_profile: suricata-8
rule_order: strict
default_actions: [aws:drop_established]
variables:
  HOME_NET: [10.0.0.0/24]
rule_groups:
  - name: seen
    rules_text: |
      alert tcp $HOME_NET any -> any 9000 (msg:"to 9000"; flow:to_server; flags:S; sid:100; rev:1;)
"#,
    );
    let fw = inline::start(
        &mut lab,
        "est",
        &["--policy", &policy.display().to_string(), "--queue", "0"],
    );
    // TCP: connected (the handshake passed), then no answer to the request.
    let (code, err, secs) = inline::curl(&lab, &["-v", "--max-time", "3", &url(9000)]);
    assert_eq!(code, 28, "curl should time out after connecting: {err}");
    assert!(
        err.contains("Connected to") || err.contains("Established connection"),
        "{err}"
    );
    assert!(secs >= 2.5, "{secs}");
    // UDP: the flow's first query passes and is answered; once the flow is established its
    // next query is dropped.
    let dig = |n: u32| {
        let o = inline::dig(
            &lab,
            &[
                "-b",
                "10.0.0.2#40053",
                "+tries=1",
                "+timeout=2",
                &format!("q{n}.lab.test"),
            ],
            &lab.client,
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let first = dig(1);
    assert!(first.contains(SERVER_IP), "first query unanswered: {first}");
    let second = dig(2);
    assert!(
        !second.contains("ANSWER SECTION"),
        "second query of the established flow was answered: {second}"
    );
    inline::stop(&mut lab, &fw);
    let events = fw.eve();
    assert!(
        inline::of(&events, "alert")
            .iter()
            .any(|e| e["alert"]["signature_id"] == 100),
        "{events:#?}"
    );
    let drops = inline::of(&events, "drop");
    assert!(
        drops
            .iter()
            .any(|d| d["proto"] == "TCP" && d["dest_port"] == 9000),
        "{drops:#?}"
    );
    assert!(
        drops
            .iter()
            .any(|d| d["proto"] == "UDP" && d["dest_port"] == 53),
        "{drops:#?}"
    );
}

#[test]
fn drop_strict_blocks_the_handshake() {
    if !lab::require_tools(&["python3", "curl"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    inline::http_server(&mut lab, 9000);
    lab.queue_iptables("0", false);
    let policy = inline::policy(
        &lab,
        "strict.yaml",
        r#"engine_profile: suricata-8
rule_order: strict
default_actions: [aws:drop_strict]
variables:
  HOME_NET: [10.0.0.0/24]
rule_groups:
  - name: web
    rules_text: |
      pass tcp $HOME_NET any -> any 8080 (msg:"8080 allowed"; sid:200; rev:1;)
"#,
    );
    let fw = inline::start(
        &mut lab,
        "strict",
        &["--policy", &policy.display().to_string(), "--queue", "0"],
    );
    let (code, err, _) = inline::curl(&lab, &["-v", "--connect-timeout", "2", &url(9000)]);
    assert_eq!(code, 28, "the handshake should time out: {err}");
    assert!(!err.contains("Connected to"), "{err}");
    inline::stop(&mut lab, &fw);
}

#[test]
fn reject_answers_at_once_with_a_reset_and_a_port_unreachable() {
    if !lab::require_tools(&["python3", "curl", "dig", "dnsmasq"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    inline::http_server(&mut lab, 80);
    inline::dnsmasq(&mut lab);
    // Without the firewall both servers answer.
    let (code, err, _) = inline::curl(&lab, &["--max-time", "5", &url(80)]);
    assert_eq!(code, 0, "{err}");
    lab.queue_iptables("0", false);
    let policy = inline::policy(
        &lab,
        "reject.yaml",
        r#"engine_profile: suricata-8
variables:
  HOME_NET: [10.0.0.0/24]
rule_groups:
  - name: reject
    rules_text: |
      reject tcp $HOME_NET any -> any 80 (msg:"no plain web"; sid:300; rev:1;)
      reject udp $HOME_NET any -> any 53 (msg:"no plain DNS"; sid:301; rev:1;)
"#,
    );
    // As `nobody` with CAP_NET_ADMIN and CAP_NET_RAW only: verdicts and raw sends still work.
    let fw = inline::start(
        &mut lab,
        "reject",
        &[
            "--policy",
            &policy.display().to_string(),
            "--queue",
            "0",
            "--user",
            "nobody",
        ],
    );
    let uid = || {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", fw.pid)).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap_or_default()
            .to_string()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while uid().split_whitespace().skip(1).any(|u| u == "0") {
        assert!(
            std::time::Instant::now() < deadline,
            "still root: {}\n{}",
            uid(),
            fw.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, err, secs) = inline::curl(&lab, &["-v", "--max-time", "10", &url(80)]);
    assert_eq!(code, 7, "curl should be refused by a reset: {err}");
    assert!(
        err.contains("Connection refused") || err.contains("reset"),
        "{err}"
    );
    assert!(secs < 2.0, "not at once: {secs:.2}s");
    let started = std::time::Instant::now();
    let o = inline::dig(&lab, &["+tries=1", "+timeout=5", "x.lab.test"], &lab.client);
    let secs = started.elapsed().as_secs_f64();
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        out.contains("connection refused") || out.contains("unreachable"),
        "dig should see the port unreachable: {out}"
    );
    assert!(secs < 2.0, "not at once: {secs:.2}s");
    inline::stop(&mut lab, &fw);
    let log = fw.log();
    let sent: u64 = log
        .split_whitespace()
        .find_map(|w| w.strip_prefix("transmitted="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{log}"));
    assert!(sent >= 2, "{log}");
    let events = fw.eve();
    for sid in [300, 301] {
        assert!(
            inline::of(&events, "alert")
                .iter()
                .any(|e| e["alert"]["signature_id"] == sid && e["alert"]["action"] == "blocked"),
            "sid {sid}: {events:#?}"
        );
    }
}
