//! Flows decided whole leave the queue (`--pass-mark`, `--drop-mark`; docs/inline.md,
//! "Flows decided whole"), in the lab (`sekisho_testutil::lab`) with the documented iptables
//! rules in `fw`:
//!
//! ```text
//! -A FORWARD -m mark ! --mark 0/0x3 -j CONNMARK --save-mark --mask 0x3
//! -A FORWARD -m connmark --mark 0x1/0x3 -j ACCEPT
//! -A FORWARD -m connmark --mark 0x2/0x3 -j DROP
//! -A FORWARD -j NFQUEUE --queue-num 0
//! ```
//!
//! - a flow a `pass` rule passes: curl downloads 4 MiB from python's http.server, yet sekisho
//!   sees only the SYN that was passed (its packet and byte counters), while the kernel's
//!   connmark ACCEPT rule carried the rest;
//! - a flow a `drop:flow` rule drops: of ten UDP datagrams of one flow, the first (harmless)
//!   one reaches the server, the second is dropped by sekisho and marked, and the kernel's
//!   connmark DROP rule drops the eight after it: sekisho sees two;
//! - without the rules, a marked packet that comes back to the queue gets its plain verdict
//!   (no loop): counted in `sekisho_mark_loops_total`, traffic still decided correctly.

#[path = "support/inline.rs"]
mod inline;

use std::process::Stdio;
use std::time::Duration;

use sekisho_testutil::lab::{self, Lab, CLIENT_IP, CLIENT_IP2, SERVER_IP};

const METRICS_PORT: u16 = 19311;

const POLICY: &str = r#"engine_profile: suricata-8
variables:
  HOME_NET: [10.0.0.0/24]
rule_groups:
  - name: decided
    rules_text: |
      pass ip 10.0.0.2 any -> 10.0.1.2 any (msg:"client 1 passed"; sid:1; rev:1;)
      drop:flow udp 10.0.0.3 any -> 10.0.1.2 9999 (msg:"BAD datagram"; content:"BAD"; sid:2; rev:1;)
"#;

/// The documented rules: decision marks to the connection, connections decided accepted or
/// dropped, the rest queued.
fn mark_rules(lab: &Lab) {
    for r in [
        "-m mark ! --mark 0/0x3 -j CONNMARK --save-mark --mask 0x3",
        "-m connmark --mark 0x1/0x3 -j ACCEPT",
        "-m connmark --mark 0x2/0x3 -j DROP",
        "-j NFQUEUE --queue-num 0",
    ] {
        let mut args = vec!["iptables", "-A", "FORWARD"];
        args.extend(r.split(' '));
        lab.ok(&lab.fw, &args);
    }
}

/// Packets counted by the FORWARD rule whose text contains `needle` (`iptables -vnxL`).
fn rule_packets(lab: &Lab, needle: &str) -> u64 {
    let o = lab.ok(&lab.fw, &["iptables", "-vnxL", "FORWARD"]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.lines()
        .find(|l| l.contains(needle))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no rule with {needle:?}:\n{text}"))
}

/// Starts a UDP receiver on SERVER_IP:9999 in `server` that writes how many datagrams it got
/// to a file when it ends (after `secs`).
fn udp_counter(lab: &mut Lab, secs: u32) -> std::path::PathBuf {
    let out = lab.dir.join("udp-count");
    let script = format!(
        "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{SERVER_IP}',9999))\ns.settimeout(0.1)\nn=0\nend=time.time()+{secs}\nwhile time.time()<end:\n  try:\n    s.recv(2048); n+=1\n  except OSError: pass\nopen('{}','w').write(str(n))\n",
        out.display()
    );
    let server = lab.server.clone();
    let mut cmd = lab.cmd(&server, "python3");
    cmd.args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    lab.spawn("udp counter", &mut cmd);
    std::thread::sleep(Duration::from_millis(300));
    out
}

/// Ten datagrams of one UDP flow from `from`:40000 to SERVER_IP:9999, 50 ms apart: a
/// harmless one (the connection is then confirmed in conntrack), then nine `BAD` ones.
fn send_udp(lab: &Lab, from: &str) {
    let script = format!(
        "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{from}',40000))\nfor i in range(10):\n  s.sendto(b'hello' if i == 0 else b'BAD %d' % i,('{SERVER_IP}',9999)); time.sleep(0.05)\n"
    );
    lab.ok(&lab.client, &["python3", "-c", &script]);
}

#[test]
fn passed_and_dropped_flows_leave_the_queue() {
    if !lab::require_tools(&["python3", "curl"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    std::fs::write(lab.dir.join("big.bin"), vec![7u8; 4 << 20]).expect("big file");
    inline::http_server(&mut lab, 9000);
    mark_rules(&lab);
    let policy = inline::policy(&lab, "decided.yaml", POLICY);
    let port = METRICS_PORT.to_string();
    let fw = inline::start(
        &mut lab,
        "marks",
        &[
            "--policy",
            &policy.display().to_string(),
            "--queue",
            "0",
            "--pass-mark",
            "0x1/0x3",
            "--drop-mark",
            "0x2/0x3",
            "--metrics",
            &format!("127.0.0.1:{port}"),
        ],
    );
    // Passed: the whole download goes through, sekisho sees its first packet only.
    let (code, err, _) = inline::curl(
        &lab,
        &[
            "--interface",
            CLIENT_IP,
            "--max-time",
            "20",
            "-w",
            "%{size_download}",
            &format!("http://{SERVER_IP}:9000/big.bin"),
        ],
    );
    assert_eq!(code, 0, "download failed: {err}\n{}", fw.log());
    let m = inline::metrics(&lab, METRICS_PORT);
    let packets = inline::metric(&m, "sekisho_packets_total").unwrap_or(u64::MAX);
    let bytes = inline::metric(&m, "sekisho_bytes_total").unwrap_or(u64::MAX);
    let bypassed = rule_packets(&lab, "connmark match  0x1/0x3");
    eprintln!("pass: sekisho saw {packets} packets ({bytes} bytes); the kernel's connmark ACCEPT rule {bypassed}");
    assert!(
        packets <= 2 && bytes < 1000,
        "sekisho kept seeing the passed flow: {packets} packets, {bytes} bytes\n{m}"
    );
    assert!(
        bypassed >= 100,
        "the connmark ACCEPT rule carried {bypassed} packets"
    );
    assert_eq!(
        inline::metric(&m, "sekisho_flows_marked_total{decision=\"pass\"}"),
        Some(1),
        "{m}"
    );

    // Dropped: the first datagram arrives, the second is dropped by sekisho, the eight after
    // it by the kernel.
    let count = udp_counter(&mut lab, 2);
    send_udp(&lab, CLIENT_IP2);
    lab.wait_file(&count, Duration::from_secs(10), "udp counter");
    std::thread::sleep(Duration::from_millis(100));
    let got = std::fs::read_to_string(&count).unwrap_or_default();
    assert_eq!(got.trim(), "1", "datagrams of the dropped flow arrived");
    let m = inline::metrics(&lab, METRICS_PORT);
    let after = inline::metric(&m, "sekisho_packets_total").unwrap_or(u64::MAX);
    let kernel_dropped = rule_packets(&lab, "connmark match  0x2/0x3");
    eprintln!("drop: sekisho saw {} packets of the flow; the kernel's connmark DROP rule {kernel_dropped}", after - packets);
    assert_eq!(
        after - packets,
        2,
        "sekisho kept seeing the dropped flow\n{m}"
    );
    // The marked packet itself (sent back through the chain) and the eight after it.
    assert_eq!(
        kernel_dropped, 9,
        "the kernel dropped {kernel_dropped} datagrams"
    );
    assert_eq!(
        inline::metric(&m, "sekisho_flows_marked_total{decision=\"drop\"}"),
        Some(1),
        "{m}"
    );
    assert_eq!(
        inline::metric(&m, "sekisho_mark_loops_total"),
        Some(0),
        "{m}"
    );
    inline::stop(&mut lab, &fw);
    let events = fw.eve();
    assert!(
        inline::of(&events, "drop")
            .iter()
            .any(|d| d["proto"] == "UDP" && d["dest_port"] == 9999),
        "{events:#?}"
    );
}

#[test]
fn without_the_rules_a_marked_packet_gets_its_plain_verdict() {
    if !lab::require_tools(&["python3", "curl"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    inline::http_server(&mut lab, 9000);
    // Only the queue rule: a packet sent back marked comes round again.
    lab.queue_iptables("0", false);
    let policy = inline::policy(&lab, "decided.yaml", POLICY);
    let port = METRICS_PORT.to_string();
    let fw = inline::start(
        &mut lab,
        "loop",
        &[
            "--policy",
            &policy.display().to_string(),
            "--pass-mark",
            "0x1/0x3",
            "--drop-mark",
            "0x2/0x3",
            "--metrics",
            &format!("127.0.0.1:{port}"),
        ],
    );
    let (code, err, _) = inline::curl(
        &lab,
        &[
            "--interface",
            CLIENT_IP,
            "--max-time",
            "10",
            &format!("http://{SERVER_IP}:9000/"),
        ],
    );
    assert_eq!(code, 0, "{err}\n{}", fw.log());
    let count = udp_counter(&mut lab, 2);
    send_udp(&lab, CLIENT_IP2);
    lab.wait_file(&count, Duration::from_secs(10), "udp counter");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        std::fs::read_to_string(&count).unwrap_or_default().trim(),
        "1"
    );
    let m = inline::metrics(&lab, METRICS_PORT);
    let loops = inline::metric(&m, "sekisho_mark_loops_total").unwrap_or(0);
    assert!(loops >= 2, "{m}");
    inline::stop(&mut lab, &fw);
    assert!(
        fw.log()
            .contains("the rules that act on --pass-mark/--drop-mark are missing"),
        "{}",
        fw.log()
    );
}
