//! `sekisho dns` under abuse: clients outside `allow_clients`, idle TCP clients, a query flood
//! from one client, a symlinked query log, root dropped to `user:`, SIGHUP on restart-only
//! keys. A real dnsmasq upstream and the real binary on loopback (any 127/8 address is local).

#[path = "support/dns.rs"]
mod support;

use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{require, Dnsmasq, Sekisho};

fn upstream() -> Option<Dnsmasq> {
    if !require(&["dnsmasq", "dig"]) {
        return None;
    }
    Some(Dnsmasq::start(&[
        "--address=/example.com/93.184.216.34",
        "--address=/other.test/10.0.0.1",
    ]))
}

fn up_addr(d: &Dnsmasq) -> String {
    format!("127.0.0.1:{}", d.port)
}

const BLOCKING: &str = r#"domain_lists:
  bad: ["*.bad.test"]
rule_groups:
  - name: g
    priority: 100
    rules:
      - {name: block-bad, priority: 100, domain_list: bad, action: block, block_response: nxdomain}
"#;

/// A query for `name` type A with ID `id`, RD set.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Stops the server with SIGTERM and returns its stderr once the counters line is out.
fn stop(s: &Sekisho) -> String {
    s.signal("TERM");
    s.wait_stderr("sekisho dns: stopped;")
}

/// The value of counter `name` in the "stopped;" line.
fn counter(stderr: &str, name: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("stopped;"))
        .expect("counters line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| *w == name)
        .unwrap_or_else(|| panic!("no counter {name} in {line}"));
    words[i + 1].parse().unwrap()
}

#[test]
fn client_outside_allow_clients_gets_refused_on_udp_and_tcp() {
    let Some(up) = upstream() else { return };
    let cfg = format!(
        "listen: [\"127.0.0.1:{{PORT}}\"]\nupstreams: [\"{{UP}}\"]\nallow_clients: [127.0.0.2/32]\nquery_log: {{path: query.log}}\n{BLOCKING}"
    );
    let s = Sekisho::start(&cfg, &up_addr(&up), &[], &[]);
    // From 127.0.0.1 (the default source towards 127.0.0.1): outside.
    for args in [
        "www.example.com A",
        "www.example.com A +tcp",
        "x.bad.test A",
    ] {
        let d = s.dig(args);
        assert_eq!(d.status, "REFUSED", "{args}: {}", d.raw);
        assert!(d.answers.is_empty(), "{}", d.raw);
        let name = args.split(' ').next().unwrap();
        assert_eq!(d.question, format!(";{name}. IN A"), "{}", d.raw);
    }
    // From 127.0.0.2: inside, answered (UDP and TCP), blocked names still blocked.
    let d = s.dig("-b 127.0.0.2 www.example.com A");
    assert_eq!(d.status, "NOERROR", "{}", d.raw);
    assert_eq!(d.answers, ["www.example.com. 0 IN A 93.184.216.34"]);
    let d = s.dig("-b 127.0.0.2 +tcp www.example.com A");
    assert_eq!(d.status, "NOERROR", "{}", d.raw);
    assert_eq!(s.dig("-b 127.0.0.2 x.bad.test A").status, "NXDOMAIN");
    // Only the allowed client's queries reach the query log.
    let log = s.log_lines(3);
    assert!(log.iter().all(|l| l["srcaddr"] == "127.0.0.2"), "{log:?}");
    let err = stop(&s);
    assert!(
        err.contains("refused a query from 127.0.0.1 (not in allow_clients)"),
        "{err}"
    );
    // Rate-limited to one line per 10 s: three refusals, one line.
    assert_eq!(err.matches("refused a query from").count(), 1, "{err}");
    assert_eq!(counter(&err, "refused"), 3, "{err}");
}

#[test]
fn a_thousand_idle_tcp_clients_do_not_keep_a_new_client_waiting() {
    let Some(up) = upstream() else { return };
    let cfg =
        "listen: [\"127.0.0.1:{PORT}\"]\nupstreams: [\"{UP}\"]\nlimits: {tcp_idle_ms: 1500}\n";
    let s = Sekisho::start(cfg, &up_addr(&up), &[], &[]);
    // 1,000 clients that connect and never send or read.
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(("127.0.0.1", s.port)).expect("connect"))
        .collect();
    // A new client, from the same address and from another one, is answered at once.
    for args in [
        "+tcp www.example.com A",
        "-b 127.0.0.2 +tcp www.example.com A",
        "www.example.com A",
    ] {
        let t = Instant::now();
        let d = s.dig(args);
        assert_eq!(d.status, "NOERROR", "{args}: {}", d.raw);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{args}: {:?}",
            t.elapsed()
        );
    }
    // The per-client cap (16) closed the idle ones beyond it at once; the idle timeout
    // (1.5 s) the rest: after 3 s every idle connection has been closed by the server.
    std::thread::sleep(Duration::from_secs(3));
    let closed = idle
        .into_iter()
        .filter(|mut c| {
            c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            // EOF or reset: closed by the server; a timeout: still open.
            match c.read(&mut [0u8; 1]) {
                Ok(0) => true,
                Ok(_) => panic!("the server sent bytes to a client that asked nothing"),
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            }
        })
        .count();
    assert_eq!(
        closed,
        1000,
        "idle connections still open: {}",
        1000 - closed
    );
    let err = stop(&s);
    assert!(counter(&err, "tcp_evicted") >= 900, "{err}");
}

/// CPU seconds (user + system) process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the ")" of the command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn out_of_file_descriptors_accept_backs_off_instead_of_spinning() {
    if !require(&["prlimit"]) {
        return;
    }
    let Some(up) = upstream() else { return };
    // 64 descriptors in all (hard limit too, so it cannot be raised): the idle clients below
    // use them up and accept() fails with EMFILE while more connections wait in the backlog.
    let cfg = "listen: [\"127.0.0.1:{PORT}\"]\nupstreams: [\"{UP}\"]\nlimits: {tcp_clients_per_client: 1000, tcp_idle_ms: 2000}\n";
    let s = Sekisho::start_wrapped(&["prlimit", "--nofile=64:64"], cfg, &up_addr(&up), &[], &[]);
    s.wait_stderr("listening on");
    let pid = s.proc.0.id();
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", s.port)).expect("connect"))
        .collect();
    let err = s.wait_stderr("TCP accept failed");
    assert!(err.contains("Too many open files"), "{err}");
    assert!(err.contains("pausing accepts for 100 ms"), "{err}");
    // While out of descriptors: no hot loop (a spinning accept takes a whole core).
    let c0 = cpu_seconds(pid);
    std::thread::sleep(Duration::from_millis(1000));
    let used = cpu_seconds(pid) - c0;
    assert!(
        used < 0.3,
        "{used} CPU seconds in 1 s while out of descriptors"
    );
    // Once the idle ones time out, descriptors come back and a new client is answered.
    drop(idle);
    let t = Instant::now();
    loop {
        let d = s.dig("+tcp www.example.com A");
        if d.status == "NOERROR" {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "never answered: {}",
            d.raw
        );
    }
    let err = stop(&s);
    // Reported once a minute at most, however many times accept failed.
    assert_eq!(err.matches("TCP accept failed").count(), 1, "{err}");
    let errors = counter(&err, "accept_errors");
    assert!((1..200).contains(&errors), "{err}");
}

#[test]
fn a_flood_from_one_client_does_not_starve_another() {
    let Some(up) = upstream() else { return };
    let cfg = "listen: [\"127.0.0.1:{PORT}\"]\nupstreams: [\"{UP}\"]\nupstream_timeout_ms: 1000\n";
    let s = Sekisho::start(cfg, &up_addr(&up), &[], &[]);
    let port = s.port;
    let done = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    // The flood: forwarded names from 127.0.0.1 as fast as the socket takes them, at least
    // 20,000, and on until the other client is done.
    let flood = {
        let (done, sent) = (done.clone(), sent.clone());
        std::thread::spawn(move || {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.connect(("127.0.0.1", port)).unwrap();
            let mut i: u64 = 0;
            while i < 20_000 || !done.load(Ordering::Relaxed) {
                let _ = sock.send(&query(i as u16, &format!("f{i}.example.com")));
                i += 1;
                sent.store(i, Ordering::Relaxed);
            }
        })
    };
    while sent.load(Ordering::Relaxed) < 5_000 {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Another client, 127.0.0.3: 20 queries, each answered with the real address, promptly.
    let victim = UdpSocket::bind("127.0.0.3:0").unwrap();
    victim.connect(("127.0.0.1", port)).unwrap();
    victim
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut worst = Duration::ZERO;
    for i in 0..20u16 {
        let q = query(0x4000 + i, "www.other.test");
        let t = Instant::now();
        let mut buf = [0u8; 512];
        let mut answered = false;
        // 200 ms per try, 5 tries: a lost packet is retried as a stub resolver would.
        'tries: for _ in 0..5 {
            victim.send(&q).unwrap();
            while let Ok(n) = victim.recv(&mut buf) {
                let r = &buf[..n];
                // A late answer to an earlier try is skipped, as a stub resolver does.
                if r[..2] != q[..2] {
                    continue;
                }
                assert_eq!(r[3] & 0x0f, 0, "rcode NOERROR");
                assert_eq!(&r[n - 4..], &[10, 0, 0, 1]);
                answered = true;
                break 'tries;
            }
        }
        assert!(answered, "query {i} of the other client never answered");
        worst = worst.max(t.elapsed());
    }
    done.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    assert!(sent.load(Ordering::Relaxed) >= 20_000);
    assert!(worst < Duration::from_secs(1), "slowest answer {worst:?}");
    let err = stop(&s);
    // Most of the flood was turned away by the rate limit (dropped or slipped).
    let limited = counter(&err, "rate_limited") + counter(&err, "slipped");
    assert!(limited >= 10_000, "{err}");
}

#[test]
fn over_the_rate_queries_are_dropped_with_every_second_one_slipped_as_tc() {
    let Some(up) = upstream() else { return };
    let cfg = format!(
        "listen: [\"127.0.0.1:{{PORT}}\"]\nupstreams: [\"{{UP}}\"]\nlimits: {{client_qps: 1, client_burst: 5, slip: 2}}\n{BLOCKING}"
    );
    let s = Sekisho::start(&cfg, &up_addr(&up), &[], &[]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", s.port)).unwrap();
    for i in 0..25u16 {
        sock.send(&query(i, "x.bad.test")).unwrap();
    }
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let (mut full, mut tc) = (0, 0);
    let mut buf = [0u8; 512];
    while let Ok(n) = sock.recv(&mut buf) {
        if buf[2] & 0x02 != 0 {
            assert_eq!(buf[7], 0, "a slip answer has no records");
            tc += 1;
        } else {
            assert_eq!(buf[3] & 0x0f, 3, "NXDOMAIN");
            full += 1;
        }
        let _ = n;
    }
    // 5 within the burst; of the 20 over it, every second one slips.
    assert_eq!((full, tc), (5, 10));
    // The slipped client retries over TCP, which is not rate-limited.
    assert_eq!(s.dig("+tcp x.bad.test A").status, "NXDOMAIN");
    let err = stop(&s);
    assert_eq!(counter(&err, "rate_limited"), 10, "{err}");
    assert_eq!(counter(&err, "slipped"), 10, "{err}");
}

#[test]
fn a_symlinked_query_log_path_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.txt");
    std::fs::write(&target, "").unwrap();
    let link = dir.path().join("query.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    std::fs::write(
        dir.path().join("dns.yaml"),
        "listen: [\"127.0.0.1:1\"]\nupstreams: [\"127.0.0.1:1\"]\nquery_log: {path: query.log}\n",
    )
    .unwrap();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("sekisho"))
        .args(["dns", "--config"])
        .arg(dir.path().join("dns.yaml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("dns.yaml:3:19: error: query log path '"),
        "{err}"
    );
    assert!(
        err.contains(&format!("'{}' is a symbolic link", link.display())),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b"",
        "nothing written through the link"
    );
}

#[test]
fn started_as_root_it_drops_to_the_configured_user() {
    // /proc tells whether the test runs as root (CI does).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    if uid_line.split_whitespace().nth(1) != Some("0") {
        eprintln!("skipping: not root");
        return;
    }
    let Some(up) = upstream() else { return };
    let cfg = "listen: [\"127.0.0.1:{PORT}\"]\nupstreams: [\"{UP}\"]\nuser: nobody\n";
    let s = Sekisho::start(cfg, &up_addr(&up), &[], &[]);
    s.wait_stderr("running as user nobody");
    let st = std::fs::read_to_string(format!("/proc/{}/status", s.proc.0.id())).unwrap();
    let uids: Vec<&str> = st
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .collect();
    let nobody = std::process::Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .unwrap();
    let nobody = String::from_utf8_lossy(&nobody.stdout).trim().to_string();
    assert_eq!(uids, [nobody.as_str(); 4], "real, effective, saved, fs");
    assert!(!st
        .lines()
        .any(|l| l.starts_with("Groups:") && l.split_whitespace().any(|g| g == "0")));
    // Still answering after the switch, UDP and TCP.
    assert_eq!(s.dig("www.example.com A").status, "NOERROR");
    assert_eq!(s.dig("+tcp www.example.com A").status, "NOERROR");
}

#[test]
fn sighup_warns_about_changed_keys_that_need_a_restart() {
    let Some(up) = upstream() else { return };
    let cfg = format!("listen: [\"127.0.0.1:{{PORT}}\"]\nupstreams: [\"{{UP}}\"]\n{BLOCKING}");
    let s = Sekisho::start(&cfg, &up_addr(&up), &[], &[]);
    s.wait_stderr("listening on");
    let path = s.path("dns.yaml");
    // A policy-only change: reloaded, no warning.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("*.bad.test", "*.worse.test")).unwrap();
    s.signal("HUP");
    s.wait_stderr("reloaded;");
    assert_eq!(s.dig("x.worse.test A").status, "NXDOMAIN");
    // Listen address and limits changed: reloaded policy, warning naming both.
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text
        .replace("listen: [\"127.0.0.1:", "listen: [\"127.0.0.9:")
        .replacen("upstreams:", "limits: {client_qps: 10}\nupstreams:", 1);
    std::fs::write(&path, changed).unwrap();
    s.signal("HUP");
    let err = s.wait_stderr("need a restart");
    assert!(
        err.contains("changed keys need a restart to apply: listen, limits; still running with the old values"),
        "{err}"
    );
    assert_eq!(err.matches("need a restart").count(), 1, "{err}");
    // Still on the old address.
    assert_eq!(s.dig("x.worse.test A").status, "NXDOMAIN");
}
