//! `sekisho dns` end to end: a real dnsmasq upstream on loopback, the real binary, `dig` as the
//! client, and the query log checked field by field.

#[path = "support/dns.rs"]
mod support;

use std::net::UdpSocket;
use std::time::Duration;

use serde_json::{json, Value};
use support::{dig, free_port, require, Dnsmasq, Sekisho};

/// The test zone: the engineer's names plus names for each feature.
fn zone() -> Vec<String> {
    // One TXT record of five 200-byte strings: about 1 kB, more than 512, less than 1232.
    let big: Vec<String> = (0..5).map(|i| format!("{i}").repeat(200)).collect();
    vec![
        "--address=/gmail.com/142.250.1.1".into(),
        "--mx-host=gmail.com,gmail-smtp-in.l.google.com,5".into(),
        "--address=/gmail-smtp-in.l.google.com/142.250.2.2".into(),
        "--mx-host=yahoo.co.jp,mx.yahoo.co.jp,10".into(),
        "--address=/yahoo.co.jp/183.79.1.1".into(),
        "--address=/example.com/93.184.216.34".into(),
        "--address=/other.test/10.0.0.1".into(),
        "--cname=www.allowed.test,cdn.blocked.test".into(),
        "--host-record=cdn.blocked.test,10.9.9.9".into(),
        format!("--txt-record=big.test,{}", big.join(",")),
        "--edns-packet-max=512".into(),
    ]
}

fn upstream() -> Option<Dnsmasq> {
    if !require(&["dnsmasq", "dig"]) {
        return None;
    }
    let z = zone();
    let refs: Vec<&str> = z.iter().map(String::as_str).collect();
    Some(Dnsmasq::start(&refs))
}

const HEAD: &str = r#"listen: ["127.0.0.1:{PORT}"]
upstreams: ["{UP}"]
upstream_timeout_ms: 300
upstream_attempts: 2
query_log: {path: query.log, account_id: "111122223333", region: us-east-1, vpc_id: vpc-7example}
"#;

fn up_addr(d: &Dnsmasq) -> String {
    format!("127.0.0.1:{}", d.port)
}

fn is_timestamp(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    let b = s.as_bytes();
    s.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && s.ends_with('Z')
}

/// Checks the fields every line has.
fn check_common(l: &Value, name: &str, qtype: &str, rcode: &str, transport: &str) {
    assert_eq!(l["version"], "1.100000", "{l}");
    assert_eq!(l["account_id"], "111122223333");
    assert_eq!(l["region"], "us-east-1");
    assert_eq!(l["vpc_id"], "vpc-7example");
    assert!(is_timestamp(&l["query_timestamp"]), "{l}");
    assert_eq!(l["query_name"], name, "{l}");
    assert_eq!(l["query_type"], qtype, "{l}");
    assert_eq!(l["query_class"], "IN");
    assert_eq!(l["rcode"], rcode, "{l}");
    assert!(l["answers"].is_array());
    assert_eq!(l["srcaddr"], "127.0.0.1");
    let port = l["srcport"]
        .as_u64()
        .expect("srcport is an int, as the Athena table declares");
    assert!(port > 0);
    assert_eq!(l["transport"], transport);
    assert_eq!(l["srcids"]["instance"], "127.0.0.1");
}

fn check_firewall(l: &Value, action: Option<(&str, &str, &str)>) {
    match action {
        Some((a, g, list)) => {
            assert_eq!(l["firewall_rule_action"], a, "{l}");
            assert_eq!(l["firewall_rule_group_id"], g, "{l}");
            assert_eq!(l["firewall_domain_list_id"], list, "{l}");
        }
        None => {
            for k in [
                "firewall_rule_action",
                "firewall_rule_group_id",
                "firewall_domain_list_id",
            ] {
                assert!(l.get(k).is_none(), "{k} present in {l}");
            }
        }
    }
}

#[test]
fn walled_garden_from_the_issue() {
    let Some(up) = upstream() else { return };
    let cfg = format!(
        "{HEAD}{}",
        r#"domain_lists:
  google: ["gmail.com", "*.google.com"]
  aws: ["*.amazonaws.com", "*.compute.internal"]
  ntp: ["*.amazon.pool.ntp.org"]
  fedora: ["*.fedoraproject.org"]
  tests: ["controldomain1.botnetlist.firewall.route53resolver.us-east-1.amazonaws.com"]
  everything: ["*"]
rule_groups:
  - name: walled-garden
    priority: 100
    rules:
      - {name: allow-google, priority: 100, domain_list: google, action: allow}
      - {name: allow-aws, priority: 110, domain_list: aws, action: allow}
      - {name: allow-ntp, priority: 120, domain_list: ntp, action: allow}
      - {name: allow-fedora, priority: 130, domain_list: fedora, action: allow}
      - {name: allow-tests, priority: 140, domain_list: tests, action: allow}
      - {name: block-everything-else, priority: 900, domain_list: everything, action: block, block_response: nxdomain}
"#
    );
    let s = Sekisho::start(&cfg, &up_addr(&up), &[], &[]);
    let mx = s.dig("MX gmail.com");
    assert_eq!(mx.status, "NOERROR", "{}", mx.raw);
    assert_eq!(
        mx.answers,
        ["gmail.com. 0 IN MX 5 gmail-smtp-in.l.google.com."]
    );
    let a = s.dig("gmail-smtp-in.l.google.com");
    assert_eq!(a.status, "NOERROR");
    assert_eq!(
        a.answers,
        ["gmail-smtp-in.l.google.com. 0 IN A 142.250.2.2"]
    );
    let y = s.dig("MX yahoo.co.jp");
    assert_eq!(y.status, "NXDOMAIN", "{}", y.raw);
    assert!(y.answers.is_empty());
    // dig asks the same names again through the name server list; our three queries are logged.
    let log = s.log_lines(3);
    check_common(&log[0], "gmail.com.", "MX", "NOERROR", "UDP");
    check_firewall(&log[0], None);
    assert_eq!(
        log[0]["answers"],
        json!([{"Rdata": "5 gmail-smtp-in.l.google.com.", "Type": "MX", "Class": "IN"}])
    );
    check_common(
        &log[1],
        "gmail-smtp-in.l.google.com.",
        "A",
        "NOERROR",
        "UDP",
    );
    check_firewall(&log[1], None);
    assert_eq!(
        log[1]["answers"],
        json!([{"Rdata": "142.250.2.2", "Type": "A", "Class": "IN"}])
    );
    check_common(&log[2], "yahoo.co.jp.", "MX", "NXDOMAIN", "UDP");
    check_firewall(&log[2], Some(("BLOCK", "walled-garden", "everything")));
    assert_eq!(log[2]["answers"], json!([]));
    assert_eq!(log[2]["sekisho_rule"], "block-everything-else");
}

#[test]
fn block_responses_alerts_and_wildcard_semantics() {
    let Some(up) = upstream() else { return };
    let cfg = format!(
        "{HEAD}{}",
        r#"domain_lists:
  apex: ["example.com"]
  subs: ["*.example.com"]
  watch: ["alert.other.test"]
  everything: ["*"]
rule_groups:
  - name: g1
    priority: 100
    rules:
      - {name: watch, priority: 50, domain_list: watch, action: alert}
      - {name: apex-nodata, priority: 100, domain_list: apex, action: block, block_response: nodata}
      - {name: subs-override, priority: 200, domain_list: subs, action: block, block_response: override, override_domain: sinkhole.test, override_ttl: 60}
  - name: g2
    priority: 200
    rules:
      - {name: rest, priority: 1, domain_list: everything, action: block, block_response: nxdomain}
"#
    );
    let s = Sekisho::start(&cfg, &up_addr(&up), &[], &[]);
    // example.com: only the exact entry matches → NODATA.
    let d = s.dig("example.com");
    assert_eq!(
        (d.status.as_str(), d.answers.len()),
        ("NOERROR", 0),
        "{}",
        d.raw
    );
    // *.example.com matches subdomains at any depth → OVERRIDE CNAME with the TTL.
    for name in ["www.example.com", "a.b.example.com"] {
        let d = s.dig(name);
        assert_eq!(d.status, "NOERROR");
        assert_eq!(d.answers, [format!("{name}. 60 IN CNAME sinkhole.test.")]);
    }
    // ALERT resolves normally.
    let d = s.dig("alert.other.test");
    assert_eq!(d.answers, ["alert.other.test. 0 IN A 10.0.0.1"]);
    // `*` catches the rest in the later group.
    let d = s.dig("nothing.other.test");
    assert_eq!(d.status, "NXDOMAIN");
    let log = s.log_lines(5);
    check_common(&log[0], "example.com.", "A", "NOERROR", "UDP");
    check_firewall(&log[0], Some(("BLOCK", "g1", "apex")));
    assert_eq!(log[0]["answers"], json!([]));
    for l in &log[1..3] {
        check_firewall(l, Some(("BLOCK", "g1", "subs")));
        assert_eq!(l["rcode"], "NOERROR");
        assert_eq!(
            l["answers"],
            json!([{"Rdata": "sinkhole.test.", "Type": "CNAME", "Class": "IN"}])
        );
    }
    check_common(&log[3], "alert.other.test.", "A", "NOERROR", "UDP");
    check_firewall(&log[3], Some(("ALERT", "g1", "watch")));
    assert_eq!(
        log[3]["answers"],
        json!([{"Rdata": "10.0.0.1", "Type": "A", "Class": "IN"}])
    );
    check_common(&log[4], "nothing.other.test.", "A", "NXDOMAIN", "UDP");
    check_firewall(&log[4], Some(("BLOCK", "g2", "everything")));
}

fn chain_config(redirection: &str) -> String {
    format!(
        "{HEAD}domain_lists:\n  allowed: [\"www.allowed.test\"]\n  everything: [\"*\"]\nrule_groups:\n  - name: g\n    priority: 100\n    rules:\n      - {{name: allow, priority: 100, domain_list: allowed, action: allow, redirection: {redirection}}}\n      - {{name: rest, priority: 900, domain_list: everything, action: block, block_response: nxdomain}}\n"
    )
}

#[test]
fn cname_chain_into_blocked_name_under_inspect_and_trust() {
    let Some(up) = upstream() else { return };
    let inspect = Sekisho::start(&chain_config("inspect"), &up_addr(&up), &[], &[]);
    let d = inspect.dig("www.allowed.test");
    assert_eq!(d.status, "NXDOMAIN", "{}", d.raw);
    let log = inspect.log_lines(1);
    check_common(&log[0], "www.allowed.test.", "A", "NXDOMAIN", "UDP");
    check_firewall(&log[0], Some(("BLOCK", "g", "everything")));
    assert_eq!(log[0]["sekisho_chain_name"], "cdn.blocked.test.");

    let trust = Sekisho::start(&chain_config("trust"), &up_addr(&up), &[], &[]);
    let d = trust.dig("www.allowed.test");
    assert_eq!(d.status, "NOERROR");
    assert_eq!(
        d.answers,
        [
            "www.allowed.test. 0 IN CNAME cdn.blocked.test.",
            "cdn.blocked.test. 0 IN A 10.9.9.9"
        ]
    );
    let log = trust.log_lines(1);
    check_firewall(&log[0], None);
    assert_eq!(
        log[0]["answers"][0],
        json!({"Rdata": "cdn.blocked.test.", "Type": "CNAME", "Class": "IN"})
    );
    // The target itself, asked directly, is still blocked.
    assert_eq!(trust.dig("cdn.blocked.test").status, "NXDOMAIN");
}

#[test]
fn query_type_rule_and_tcp() {
    let Some(up) = upstream() else { return };
    let cfg = format!(
        "{HEAD}{}",
        r#"domain_lists:
  yahoo: ["yahoo.co.jp"]
rule_groups:
  - name: mail
    priority: 100
    rules:
      - {name: no-yahoo-mx, priority: 100, domain_list: yahoo, action: block, block_response: nodata, qtype: MX}
"#
    );
    let s = Sekisho::start(&cfg, &up_addr(&up), &[], &[]);
    let a = s.dig("A yahoo.co.jp");
    assert_eq!(a.answers, ["yahoo.co.jp. 0 IN A 183.79.1.1"]);
    let mx = s.dig("MX yahoo.co.jp");
    assert_eq!(
        (mx.status.as_str(), mx.answers.len()),
        ("NOERROR", 0),
        "{}",
        mx.raw
    );
    let mx_tcp = s.dig("+tcp MX yahoo.co.jp");
    assert_eq!(
        (mx_tcp.status.as_str(), mx_tcp.answers.len()),
        ("NOERROR", 0)
    );
    let a_tcp = s.dig("+tcp A yahoo.co.jp");
    assert_eq!(a_tcp.answers, ["yahoo.co.jp. 0 IN A 183.79.1.1"]);
    let log = s.log_lines(4);
    check_firewall(&log[0], None);
    check_common(&log[1], "yahoo.co.jp.", "MX", "NOERROR", "UDP");
    check_firewall(&log[1], Some(("BLOCK", "mail", "yahoo")));
    check_common(&log[2], "yahoo.co.jp.", "MX", "NOERROR", "TCP");
    check_firewall(&log[2], Some(("BLOCK", "mail", "yahoo")));
    check_common(&log[3], "yahoo.co.jp.", "A", "NOERROR", "TCP");
    check_firewall(&log[3], None);
}

const OPEN_POLICY: &str = "domain_lists:\n  none: [\"nothing.invalid\"]\nrule_groups: []\n";

#[test]
fn truncation_upstream_tcp_retry_and_client_tc() {
    let Some(up) = upstream() else { return };
    let s = Sekisho::start(&format!("{HEAD}{OPEN_POLICY}"), &up_addr(&up), &[], &[]);
    // The upstream truncates over UDP (edns-packet-max 512); sekisho retries it over TCP and the
    // whole answer fits the client's 4096-byte buffer.
    let d = s.dig("+bufsize=4096 +ignore TXT big.test");
    assert!(!d.flags.contains(&"tc".to_string()), "{}", d.raw);
    assert_eq!(d.answers.len(), 1, "{}", d.raw);
    assert!(d.answers[0].len() > 1000, "{}", d.raw);
    // Without EDNS the client takes 512 bytes: it gets TC and no answers...
    let d = s.dig("+noedns +ignore TXT big.test");
    assert!(d.flags.contains(&"tc".to_string()), "{}", d.raw);
    assert!(d.answers.is_empty());
    // ...and dig, retrying over TCP by itself, gets everything.
    let d = s.dig("+noedns TXT big.test");
    assert_eq!(d.answers.len(), 1, "{}", d.raw);
    assert!(d.raw.contains("(TCP)"), "{}", d.raw);
    let log = s.log_lines(4);
    assert_eq!(log[0]["answers"].as_array().unwrap().len(), 1);
    assert_eq!(log[0]["answers"][0]["Type"], "TXT");
    assert_eq!(log[1]["answers"], json!([]));
    assert_eq!(log[3]["transport"], "TCP");
    assert_eq!(log[3]["answers"].as_array().unwrap().len(), 1);
}

#[test]
fn upstream_down_fail_closed_fail_open_and_failover() {
    if !require(&["dnsmasq", "dig"]) {
        return;
    }
    let dead = format!("127.0.0.1:{}", free_port());
    let closed = Sekisho::start(
        &format!("{HEAD}fail_mode: closed\n{OPEN_POLICY}"),
        &dead,
        &[],
        &[],
    );
    let d = closed.dig("gmail.com");
    assert_eq!(d.status, "SERVFAIL", "{}", d.raw);
    let log = closed.log_lines(1);
    check_common(&log[0], "gmail.com.", "A", "SERVFAIL", "UDP");

    let open = Sekisho::start(
        &format!("{HEAD}fail_mode: open\n{OPEN_POLICY}"),
        &dead,
        &[],
        &[],
    );
    let d = open.dig("gmail.com");
    assert_eq!(d.status, "", "fail-open sends no SERVFAIL: {}", d.raw);
    assert!(d.raw.contains("timed out"), "{}", d.raw);

    let Some(up) = upstream() else { return };
    let both = format!("{dead}\", \"{}", up_addr(&up));
    let failover = Sekisho::start(
        &format!("{HEAD}fail_mode: closed\n{OPEN_POLICY}"),
        &both,
        &[],
        &[],
    );
    let d = failover.dig("gmail.com");
    assert_eq!(d.answers, ["gmail.com. 0 IN A 142.250.1.1"], "{}", d.raw);
    // The next query starts at the upstream that answered: no 300 ms timeout on the dead one.
    let t0 = std::time::Instant::now();
    let d = failover.dig("gmail.com");
    assert_eq!(d.answers, ["gmail.com. 0 IN A 142.250.1.1"], "{}", d.raw);
    assert!(
        t0.elapsed() < Duration::from_millis(280),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn refused_upstream_fails_closed_at_once_not_after_the_timeout() {
    if !require(&["dig"]) {
        return;
    }
    // Nothing listens on `dead`: the kernel answers ICMP port unreachable, which must end each
    // attempt at once. With a 3 s timeout x 3 attempts, waiting would take 9 s.
    let dead = format!("127.0.0.1:{}", free_port());
    let head = HEAD
        .replace("upstream_timeout_ms: 300", "upstream_timeout_ms: 3000")
        .replace("upstream_attempts: 2", "upstream_attempts: 3");
    let s = Sekisho::start(
        &format!("{head}fail_mode: closed\n{OPEN_POLICY}"),
        &dead,
        &[],
        &[],
    );
    let t0 = std::time::Instant::now();
    let d = s.dig("gmail.com");
    let took = t0.elapsed();
    assert_eq!(d.status, "SERVFAIL", "{}", d.raw);
    assert!(took < Duration::from_millis(1000), "SERVFAIL took {took:?}");
}

fn udp_exchange(port: u16, msg: &[u8]) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    s.send_to(msg, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 4096];
    s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

#[test]
fn malformed_queries_get_formerr_or_nothing_and_the_server_survives() {
    let Some(up) = upstream() else { return };
    let s = Sekisho::start(&format!("{HEAD}{OPEN_POLICY}"), &up_addr(&up), &[], &[]);
    // Shorter than a header: dropped.
    assert_eq!(udp_exchange(s.port, &[1, 2, 3]), None);
    // A response (QR=1) sent to us: dropped.
    assert_eq!(
        udp_exchange(s.port, &[0, 9, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        None
    );
    // Header claims a question that is not there: FORMERR with the same ID.
    let r = udp_exchange(s.port, &[0xBE, 0xEF, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]).expect("FORMERR");
    assert_eq!(&r[..2], &[0xBE, 0xEF]);
    assert_eq!(r[2] & 0x80, 0x80, "QR set");
    assert_eq!(r[3] & 0x0F, 1, "FORMERR");
    // A label running past the end, a bad pointer, two questions: FORMERR, never a crash.
    for bad in [
        vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 60, b'a', b'b'],
        vec![0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1],
        vec![
            0, 3, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1, 1, b'b', 0, 0, 1, 0, 1,
        ],
    ] {
        let r = udp_exchange(s.port, &bad).expect("an answer");
        assert_eq!(r[3] & 0x0F, 1, "FORMERR for {bad:?}");
    }
    // NOTIFY (opcode 4): NOTIMP.
    let mut notify = vec![
        0, 4, 0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 6, 0, 1,
    ];
    let r = udp_exchange(s.port, &notify).expect("NOTIMP");
    assert_eq!(r[3] & 0x0F, 4);
    notify.clear();
    // Pseudo-random garbage (fixed seed): whatever comes back, the server keeps answering.
    let mut x: u32 = 12345;
    for _ in 0..200 {
        let len = (x % 80) as usize + 12;
        let mut m = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            m.push(x as u8);
        }
        m[2] &= 0x7F;
        let s2 = UdpSocket::bind("127.0.0.1:0").unwrap();
        s2.send_to(&m, ("127.0.0.1", s.port)).unwrap();
    }
    let d = dig(s.port, "gmail.com");
    assert_eq!(d.answers, ["gmail.com. 0 IN A 142.250.1.1"], "{}", d.raw);
    assert!(s.proc.0.id() > 0);
}

#[test]
fn ids_and_case_are_preserved() {
    let Some(up) = upstream() else { return };
    let s = Sekisho::start(&format!("{HEAD}{OPEN_POLICY}"), &up_addr(&up), &[], &[]);
    let d = s.dig("GMail.CoM");
    assert_eq!(d.question, ";GMail.CoM. IN A", "{}", d.raw);
    assert_eq!(d.answers, ["GMail.CoM. 0 IN A 142.250.1.1"], "{}", d.raw);
    // dig itself rejects answers with the wrong ID; check explicitly on a raw exchange too.
    let q = [
        0x4A, 0x21, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, b'G', b'm', b'A', b'i', b'L', 3, b'c', b'O',
        b'm', 0, 0, 1, 0, 1,
    ];
    let r = udp_exchange(s.port, &q).expect("answer");
    assert_eq!(&r[..2], &[0x4A, 0x21]);
    assert_eq!(
        &r[12..q.len()],
        &q[12..],
        "question bytes (and case) unchanged"
    );
}

/// A fake upstream on loopback that, before each real answer (A 10.7.7.7), sends the three
/// replies an off-path spoofer could: a wrong ID, the right ID with another question, and the
/// right ID without QR. It records each query's source port and ID. Runs until `stop`.
fn spoofing_upstream(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (
    std::net::SocketAddr,
    std::thread::JoinHandle<Vec<(u16, u16)>>,
) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let addr = s.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1500];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((n, from)) = s.recv_from(&mut buf) else {
                continue;
            };
            let q = &buf[..n];
            seen.push((from.port(), u16::from_be_bytes([q[0], q[1]])));
            // Question end: name labels from byte 12, then type and class.
            let mut i = 12;
            while q[i] != 0 {
                i += 1 + q[i] as usize;
            }
            let qend = i + 5;
            let answer = |id: [u8; 2], qr: bool, question: &[u8]| {
                let mut r = Vec::new();
                r.extend_from_slice(&id);
                r.push(if qr { 0x81 } else { 0x01 });
                r.push(0x80);
                r.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]);
                r.extend_from_slice(question);
                r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 10, 7, 7, 7]);
                r
            };
            let id = [q[0], q[1]];
            let wrong_id = [q[0] ^ 0x55, q[1]];
            let mut other = q[12..qend].to_vec();
            other[1] ^= 0x01; // one letter of the first label changed
            for r in [
                answer(wrong_id, true, &q[12..qend]),
                answer(id, true, &other),
                answer(id, false, &q[12..qend]),
                answer(id, true, &q[12..qend]),
            ] {
                s.send_to(&r, from).unwrap();
            }
        }
        seen
    });
    (addr, t)
}

/// UDP sockets the process `pid` has open (its fds' socket inodes that `/proc/PID/net/udp*`
/// lists; TCP connections, such as the start-up probe's, do not count).
fn sockets(pid: u32) -> usize {
    let mut udp = std::collections::HashSet::new();
    for table in ["udp", "udp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        // Columns: sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
        udp.extend(
            text.lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().nth(9).map(str::to_string)),
        );
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .filter(|inode| udp.contains(inode))
        .count()
}

#[test]
fn spoofed_upstream_replies_are_ignored_and_source_ports_and_ids_move() {
    if !require(&["dig"]) {
        return;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (fake, upstream) = spoofing_upstream(stop.clone());
    // First upstream: a socket that reads nothing and answers nothing (no ICMP either), so the
    // first query waits out the 300 ms timeout there and fails over to the fake.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let both = format!("{}\", \"{fake}", silent.local_addr().unwrap());
    let s = Sekisho::start(
        &format!("{HEAD}fail_mode: closed\n{OPEN_POLICY}"),
        &both,
        &[],
        &[],
    );
    let idle_sockets = sockets(s.proc.0.id());
    assert_eq!(idle_sockets, 1, "the listen socket alone");
    let t0 = std::time::Instant::now();
    let d = s.dig("+tries=1 +time=3 gmail.com");
    assert_eq!(d.answers, ["gmail.com. 0 IN A 10.7.7.7"], "{}", d.raw);
    assert!(
        t0.elapsed() >= Duration::from_millis(290),
        "answered before the silent upstream's timeout: {:?}",
        t0.elapsed()
    );
    // 200 more queries, raw, each checked: the client's ID and question back, the real answer
    // (the three spoofed replies before it on the same socket were all ignored).
    for i in 0..200u16 {
        let name = format!("h{i}");
        let mut q = vec![(i >> 8) as u8, i as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.push(name.len() as u8);
        q.extend_from_slice(name.as_bytes());
        q.extend_from_slice(&[4, b't', b'e', b's', b't', 0, 0, 1, 0, 1]);
        let r = udp_exchange(s.port, &q).expect("an answer");
        assert_eq!(&r[..2], &q[..2], "the client's ID");
        assert_eq!(r[2] & 0x80, 0x80, "QR");
        assert_eq!(&r[12..q.len()], &q[12..], "the question");
        assert_eq!(
            &r[r.len() - 4..],
            &[10, 7, 7, 7],
            "the real answer, query {i}"
        );
    }
    // The pool grew while busy; idle past SOCKET_AGE (0.5 s), it is closed again.
    let busy_sockets = sockets(s.proc.0.id());
    assert!(
        busy_sockets > idle_sockets,
        "{busy_sockets} sockets while busy"
    );
    // Closed by the loop's sweep (every SOCKET_AGE, sockets older than that): within about a
    // second; 5 s allowed for a loaded machine.
    let t0 = std::time::Instant::now();
    while sockets(s.proc.0.id()) > idle_sockets {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "idle upstream sockets still open: {}",
            sockets(s.proc.0.id())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "closed while fresh"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = upstream.join().unwrap();
    assert_eq!(seen.len(), 201, "each query went to the fake upstream once");
    let ports: std::collections::HashSet<u16> = seen.iter().map(|s| s.0).collect();
    let ids: std::collections::HashSet<u16> = seen.iter().map(|s| s.1).collect();
    // 201 queries over a pool of 32 sockets, each retired after 32 queries or 500 ms: at
    // least 201 / 32 = 7 ports even if one socket took every query in turn; a random pick
    // spreads them far wider.
    assert!(ports.len() >= 20, "{} source ports: {ports:?}", ports.len());
    // Random 16-bit IDs: a few collisions at most among 201.
    assert!(ids.len() >= 190, "{} distinct IDs", ids.len());
    // The client IDs were 0..200: the upstream must not have seen them in order.
    let in_order = seen
        .windows(2)
        .filter(|w| w[1].1 == w[0].1.wrapping_add(1))
        .count();
    assert!(in_order < 5, "{in_order} consecutive IDs");
}

#[test]
fn stopping_answers_queries_still_waiting_on_the_upstream() {
    if !require(&["dig"]) {
        return;
    }
    // An upstream that never answers, a 5 s timeout: the query is still waiting when SIGTERM
    // arrives; with fail_mode closed the client gets SERVFAIL at once, and it is counted.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let head = HEAD.replace("upstream_timeout_ms: 300", "upstream_timeout_ms: 5000");
    let s = Sekisho::start(
        &format!("{head}fail_mode: closed\n{OPEN_POLICY}"),
        &silent.local_addr().unwrap().to_string(),
        &[],
        &[],
    );
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let q = [
        0x77, 0x01, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, b'g', b'm', b'a', b'i', b'l', 3, b'c', b'o',
        b'm', 0, 0, 1, 0, 1,
    ];
    c.send_to(&q, ("127.0.0.1", s.port)).unwrap();
    // The query reached the upstream, so it is waiting.
    silent
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 512];
    silent.recv(&mut buf).expect("the query went upstream");
    let t0 = std::time::Instant::now();
    s.signal("TERM");
    let mut r = [0u8; 512];
    let n = c.recv(&mut r).expect("an answer before the 5 s timeout");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(&r[..2], &[0x77, 0x01]);
    assert_eq!(r[3] & 0x0F, 2, "SERVFAIL: {:?}", &r[..n]);
    let err = s.wait_stderr("stopped;");
    assert!(err.contains("upstream_failures 1"), "{err}");
}

#[test]
fn several_udp_threads_share_one_listen_socket() {
    let Some(up) = upstream() else { return };
    let s = Sekisho::start(
        &format!("{HEAD}{OPEN_POLICY}"),
        &up_addr(&up),
        &[],
        &["--threads", "3"],
    );
    // 60 clients at once, each a query for an upstream name: every one answered, with its
    // own ID, whichever thread took it.
    let socks: Vec<UdpSocket> = (0..60)
        .map(|i: u16| {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let q = [
                (i >> 8) as u8,
                i as u8,
                1,
                0,
                0,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                5,
                b'g',
                b'm',
                b'a',
                b'i',
                b'l',
                3,
                b'c',
                b'o',
                b'm',
                0,
                0,
                1,
                0,
                1,
            ];
            c.send_to(&q, ("127.0.0.1", s.port)).unwrap();
            c
        })
        .collect();
    for (i, c) in socks.iter().enumerate() {
        let mut r = [0u8; 512];
        let n = c.recv(&mut r).unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert_eq!(u16::from_be_bytes([r[0], r[1]]), i as u16);
        assert_eq!(&r[n - 4..n], &[142, 250, 1, 1], "client {i}");
    }
    let threads = std::fs::read_dir(format!("/proc/{}/task", s.proc.0.id()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim() == "dns-udp")
        .count();
    assert_eq!(threads, 3);
}
