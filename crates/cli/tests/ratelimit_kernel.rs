//! Differential test against the Linux kernel's `hashlimit`: the same rule in iptables (in a
//! network namespace) and in sekisho (`sekisho replay` of a capture of the same traffic).
//!
//! Two namespaces joined by a veth pair: the server (10.77.x.1) runs
//! `-m state --state NEW -m hashlimit --hashlimit-upto 6/minute --hashlimit-burst 3
//! --hashlimit-mode srcip -j ACCEPT` then `-j DROP` for new connections to port 25, a
//! listener (`nc -lk`) and tcpdump on its veth; the client namespace holds four addresses and
//! opens connections with OpenBSD `nc -z -s SRC` (given up after 0.5 s, before the first SYN
//! retransmission, so every attempt is exactly one SYN) at a scripted pace. The kernel's
//! answer per attempt is whether `nc` connected. Then the capture is replayed through
//! sekisho with the rule imported from `iptables-save` unchanged (`rate_limits: - iptables:`):
//!
//! - the same attempts are accepted and refused (per source, in order);
//! - `/proc/net/ipt_hashlimit/NAME` read at the end and sekisho's `DIR/ratelimit/NAME` (as of
//!   the last packet, refilled here to the moment of the kernel's read) agree line for line:
//!   same keys, same burst (cap / cost), tokens within 0.03, seconds to expiry within 1.
//!
//! The kernel prints revision-2/3 numbers (64-bit credits) and sekisho revision-1 numbers,
//! so credits are compared as tokens (credit / cost), as the reference says to read them.
//!
//! Needs root, `ip`, `iptables` with the hashlimit match, `tcpdump` and `nc`: without them the
//! test fails when `CI` is set and is skipped loudly otherwise. Namespaces, veths and child
//! processes are removed by a guard, also when the test fails.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn ok(args: &[&str]) -> String {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Removes what the test made, whatever happens.
struct Lab {
    server: String,
    client: String,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Deleting a namespace removes its end of the veth pair, and so the pair.
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn tools_present() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let tools = ["ip", "iptables", "tcpdump", "nc", "timeout"]
        .iter()
        .all(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    if !(root && tools) {
        sekisho_testutil::missing::<()>(
            "root with ip, iptables (hashlimit), tcpdump, nc (openbsd) and timeout",
            Path::new("iptables"),
        );
        return false;
    }
    true
}

/// The last packet time of a classic pcap (µs), read from its record headers.
fn last_packet_micros(pcap: &Path) -> u64 {
    let b = std::fs::read(pcap).unwrap();
    assert!(b.len() >= 24, "empty capture");
    let le = b[0..4] == [0xd4, 0xc3, 0xb2, 0xa1];
    let nanos = b[0..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    assert!(le || nanos, "a little-endian pcap from tcpdump");
    let u32at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (mut off, mut last) = (24usize, 0u64);
    while off + 16 <= b.len() {
        let (s, f, incl) = (u32at(off), u32at(off + 4), u32at(off + 8) as usize);
        let frac = if nanos {
            u64::from(f) / 1000
        } else {
            u64::from(f)
        };
        last = last.max(u64::from(s) * 1_000_000 + frac);
        off += 16 + incl;
    }
    last
}

/// `(secs, key, tokens, burst)` of each line.
fn parse_table(text: &str) -> Vec<(i64, String, f64, f64)> {
    let mut v: Vec<_> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 5, "{l}");
            let n = |i: usize| f[i].parse::<f64>().unwrap();
            (
                f[0].parse::<i64>().unwrap(),
                f[1].to_string(),
                n(2) / n(4),
                n(3) / n(4),
            )
        })
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

#[test]
fn hashlimit_in_the_kernel_and_in_sekisho_agree() {
    if tools_present() {
        lab_run(false);
    }
}

/// The same with IPv6 and ip6tables, keyed on the source /64 and the destination port
/// (`--hashlimit-mode srcip,dstport --hashlimit-srcmask 64`): two client addresses in one /64
/// share a bucket, and the keys print as the kernel's `%pI6` (`/proc/net/ip6t_hashlimit`).
#[test]
fn ipv6_hashlimit_with_a_source_prefix_agrees_too() {
    if tools_present() {
        lab_run(true);
    }
}

fn lab_run(v6: bool) {
    let pid = std::process::id();
    let tag = if v6 { "6" } else { "4" };
    let mut lab = Lab {
        server: format!("sk-rl{tag}-srv-{pid}"),
        client: format!("sk-rl{tag}-cli-{pid}"),
        children: Vec::new(),
    };
    let (s, c) = (lab.server.clone(), lab.client.clone());
    // Addresses of its own per run, so parallel runs never meet.
    let net = format!(
        "10.{}.{}",
        100 + (pid % 100) + if v6 { 100 } else { 0 },
        (pid / 100) % 250
    );
    let net6 = format!("fd00:5e:{:x}", pid & 0xffff);
    let (va, vb) = (
        format!("skrl{tag}{}a", pid % 1_000_000),
        format!("skrl{tag}{}b", pid % 1_000_000),
    );
    let ipt = if v6 { "ip6tables" } else { "iptables" };
    let plen = if v6 { "/48" } else { "/24" };
    let nodad: &[&str] = if v6 { &["nodad"] } else { &[] };
    ok(&["ip", "netns", "add", &s]);
    ok(&["ip", "netns", "add", &c]);
    ok(&[
        "ip", "link", "add", &va, "type", "veth", "peer", "name", &vb,
    ]);
    ok(&["ip", "link", "set", &va, "netns", &s]);
    ok(&["ip", "link", "set", &vb, "netns", &c]);
    let server_ip = if v6 {
        format!("{net6}::1")
    } else {
        format!("{net}.1")
    };
    let addr = |ns: &str, a: &str, dev: &str| {
        let cidr = format!("{a}{plen}");
        let mut args = vec!["ip", "-n", ns, "addr", "add", cidr.as_str(), "dev", dev];
        args.extend_from_slice(nodad);
        ok(&args);
    };
    addr(&s, &server_ip, &va);
    // IPv6: the first two share a /64 (and so a bucket).
    let sources: Vec<String> = if v6 {
        ["1::11", "1::12", "2::11", "3::11"]
            .iter()
            .map(|h| format!("{net6}:{h}"))
            .collect()
    } else {
        (11..=14).map(|i| format!("{net}.{i}")).collect()
    };
    for a in &sources {
        addr(&c, a, &vb);
    }
    for (ns, dev) in [(&s, &va), (&c, &vb)] {
        ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
        ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    let table = if v6 { "rl6v6" } else { "rl6" };
    let (mode, mask): (&str, &[&str]) = if v6 {
        ("srcip,dstport", &["--hashlimit-srcmask", "64"])
    } else {
        ("srcip", &[])
    };
    let mut rule_args = vec![
        "ip",
        "netns",
        "exec",
        &s,
        ipt,
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        "25",
        "-m",
        "state",
        "--state",
        "NEW",
        "-m",
        "hashlimit",
        "--hashlimit-name",
        table,
        "--hashlimit-upto",
        "6/minute",
        "--hashlimit-burst",
        "3",
        "--hashlimit-mode",
        mode,
        "--hashlimit-htable-expire",
        "60000",
        "-j",
        "ACCEPT",
    ];
    rule_args.splice(
        rule_args.len() - 2..rule_args.len() - 2,
        mask.iter().copied(),
    );
    ok(&rule_args);
    ok(&[
        "ip", "netns", "exec", &s, ipt, "-A", "INPUT", "-p", "tcp", "--dport", "25", "-m", "state",
        "--state", "NEW", "-j", "DROP",
    ]);
    let saved = ok(&["ip", "netns", "exec", &s, &format!("{ipt}-save")]);
    let rule = saved
        .lines()
        .find(|l| l.contains("hashlimit"))
        .expect("iptables-save shows the hashlimit rule")
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("syn.pcap");
    let tcpdump = Command::new("ip")
        // --immediate-mode: packets are handed over at once, not held in the kernel's
        // buffer (which a stop would lose).
        .args([
            "netns",
            "exec",
            &s,
            "tcpdump",
            "--immediate-mode",
            "-i",
            &va,
            "-n",
            "-U",
            "-w",
        ])
        .arg(&pcap)
        .args(["tcp", "port", "25"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lab.children.push(tcpdump);
    let listener = Command::new("ip")
        .args(["netns", "exec", &s, "nc", "-lk", &server_ip, "25"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    lab.children.push(listener);
    // tcpdump is ready once it has written the file header.
    let t0 = Instant::now();
    while std::fs::metadata(&pcap).map_or(true, |m| m.len() < 24) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "tcpdump did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));

    // The script: (source index, pause after the attempt in ms). 6/minute = one token per
    // 10 s, burst 3. Pauses keep clear of token boundaries, so scheduling jitter cannot
    // change a verdict.
    let script: &[(usize, u64)] = &[
        (0, 0),
        (0, 0),
        (0, 0),
        (0, 0), // .11: the burst of 3, the 4th over
        (1, 0),
        (1, 3000), // .12: 2 of its 3
        (0, 0),
        (2, 0),
        (2, 0),
        (2, 0),
        (2, 0),
        (2, 6000), // .11 still over; .13: 3, then over
        (0, 0),
        (0, 0),
        (1, 0),
        (1, 0),
        (1, 0),
        (3, 0),
        (3, 7000), // .11: one token back
        (2, 0),
        (2, 0),
        (0, 0),
        (3, 0),
    ];
    let mut kernel: Vec<(usize, bool)> = Vec::new();
    for &(src, pause) in script {
        let st = Command::new("ip")
            .args([
                "netns",
                "exec",
                &c,
                "timeout",
                "0.5",
                "nc",
                "-z",
                "-s",
                &sources[src],
            ])
            .args([server_ip.as_str(), "25"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        kernel.push((src, st.success()));
        std::thread::sleep(Duration::from_millis(pause));
    }
    // Let the last handshakes and closes reach the capture, then read the kernel's table.
    std::thread::sleep(Duration::from_millis(300));
    let proc_text = ok(&[
        "ip",
        "netns",
        "exec",
        &s,
        "cat",
        &format!(
            "/proc/net/{}_hashlimit/{table}",
            if v6 { "ip6t" } else { "ipt" }
        ),
    ]);
    let read_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    std::thread::sleep(Duration::from_millis(700));
    // Stop tcpdump cleanly (SIGINT flushes the file), then the rest.
    let td = lab.children.remove(0);
    let _ = Command::new("kill")
        .args(["-INT", &td.id().to_string()])
        .status();
    let out = td.wait_with_output().unwrap();
    eprintln!("tcpdump: {}", String::from_utf8_lossy(&out.stderr).trim());

    // sekisho: the same rule, imported from iptables-save.
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, format!("rate_limits:\n  - iptables: \"{rule}\"\n")).unwrap();
    let outdir = dir.path().join("out");
    let r = Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(["replay", "--quiet", "--policy"])
        .arg(&policy)
        .arg("--out")
        .arg(&outdir)
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        r.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("-j ACCEPT"),
        "the -j ACCEPT import warns"
    );

    // Verdicts: per source, the SYNs in capture order (one per attempt), dropped or not.
    let eve = std::fs::read_to_string(outdir.join("eve.json")).unwrap();
    let mut flows: Vec<(String, std::net::IpAddr, u64)> = Vec::new(); // (start, src, flow_id)
    let mut dropped = std::collections::HashSet::new();
    for l in eve.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        match v["event_type"].as_str() {
            Some("flow") if v["dest_port"] == 25 => flows.push((
                v["flow"]["start"].as_str().unwrap().to_string(),
                v["src_ip"]
                    .as_str()
                    .unwrap()
                    .parse::<std::net::IpAddr>()
                    .unwrap(),
                v["flow_id"].as_u64().unwrap(),
            )),
            Some("drop") if v["drop"]["reason"] == "rate limit" => {
                dropped.insert(v["flow_id"].as_u64().unwrap());
            }
            Some("drop") => {
                // On a loaded machine a connection's last FIN/ACK can come after its flow
                // closed in the engine: a flow without a handshake, dropped by the midstream
                // exception policy. Never a connection attempt.
                assert_eq!(
                    v["drop"]["syn"], false,
                    "a SYN dropped for another reason: {v}"
                );
                eprintln!("note: not a rate-limit drop: {v}");
            }
            _ => {}
        }
    }
    flows.sort();
    for (i, src) in sources.iter().enumerate() {
        let k: Vec<bool> = kernel
            .iter()
            .filter(|(s, _)| *s == i)
            .map(|x| x.1)
            .collect();
        let ours: Vec<bool> = flows
            .iter()
            .filter(|f| f.1 == src.parse::<std::net::IpAddr>().unwrap())
            .map(|f| !dropped.contains(&f.2))
            .collect();
        eprintln!("{src}: kernel {k:?} sekisho {ours:?}");
        assert_eq!(ours, k, "accepted/refused per attempt from {src}");
    }
    assert!(kernel.iter().any(|x| x.1) && kernel.iter().any(|x| !x.1));

    // `sekisho ratelimit show --file` reads the kernel's own table (revision-3 numbers).
    let kfile = dir.path().join("kernel-table");
    std::fs::write(&kfile, &proc_text).unwrap();
    let shown = Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(["ratelimit", "show", "--explain", "--file"])
        .arg(&kfile)
        .output()
        .unwrap();
    assert!(shown.status.success());
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("rate:    6/minute")
            && shown.contains("burst:   3 ")
            && shown.contains("revision-2/3"),
        "{shown}"
    );

    // Tables: same keys, burst, tokens (ours refilled to the kernel's read), expiry.
    let ours_text = std::fs::read_to_string(outdir.join("ratelimit").join(table)).unwrap();
    eprintln!("kernel:\n{proc_text}sekisho:\n{ours_text}");
    let last = last_packet_micros(&pcap);
    let gap = (read_at.saturating_sub(last)) as f64 / 1e6;
    assert!(
        (0.0..5.0).contains(&gap),
        "read {gap} s after the last packet"
    );
    let k = parse_table(&proc_text);
    let o = parse_table(&ours_text);
    assert_eq!(
        k.len(),
        if v6 { 3 } else { 4 },
        "one key per source (IPv6: per /64)"
    );
    assert_eq!(
        k.iter().map(|x| &x.1).collect::<Vec<_>>(),
        o.iter().map(|x| &x.1).collect::<Vec<_>>(),
        "same keys"
    );
    for (kl, ol) in k.iter().zip(&o) {
        assert!((kl.3 - ol.3).abs() < 1e-6, "burst {kl:?} {ol:?}");
        let ours_then = (ol.2 + gap / 10.0).min(ol.3);
        assert!(
            (kl.2 - ours_then).abs() < 0.03,
            "tokens of {}: kernel {:.4}, sekisho {:.4} (+{gap:.3} s of refill)",
            kl.1,
            kl.2,
            ours_then
        );
        let ours_secs = ol.0 as f64 - gap;
        assert!(
            (kl.0 as f64 - ours_secs).abs() <= 1.0 + 1e-9,
            "seconds to expiry of {}: kernel {}, sekisho {} − {gap:.3}",
            kl.1,
            kl.0,
            ol.0
        );
    }
}
