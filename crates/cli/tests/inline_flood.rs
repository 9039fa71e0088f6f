//! Inline in the lab (`sekisho_testutil::lab`): a connection flood does not break
//! enforcement or memory caps.
//!
//! For 30 s a Python loop in `client` (from 10.0.0.2) opens TCP connections as fast as it can
//! to a closed port of `server` (every one a new flow through `fw`), while a mail loop from a
//! second client address (10.0.0.3) keeps sending through `sekisho run` with the recipient
//! allow list: every allowed message is delivered (an attempt that times out while the
//! firewall is saturated is retried, as an MTA would, at most twice), no disallowed one is,
//! and sekisho's
//! resident memory stays within its flow memcap (`--set flow.memcap`) plus a fixed allowance
//! for code, rules and buffers, sampled every 250 ms from `/proc/PID/status`.

#[path = "support/inline.rs"]
mod inline;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sekisho_testutil::lab::{self, Lab, SERVER_IP};

const FLOOD: &str = r#"
import socket, sys, time
end = time.time() + float(sys.argv[1])
n = 0
while time.time() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind(("10.0.0.2", 0))
    s.connect_ex((sys.argv[2], 9))
    s.close()
    n += 1
print(n)
"#;

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn mail_is_enforced_and_memory_capped_during_a_connection_flood() {
    if !lab::require_tools(&["smtp-sink", "swaks", "python3"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    let dump = inline::smtp_sink(&mut lab);
    lab.queue_iptables("0", false);
    let policy = inline::root().join("examples/smtp/recipients-strict.yaml");
    let memcap: u64 = 8 << 20;
    let fw = inline::start(
        &mut lab,
        "flood",
        &[
            "--policy",
            &policy.display().to_string(),
            "--queue",
            "0",
            "--queue-maxlen",
            "65536",
            "--set",
            &format!("flow.memcap={memcap}"),
        ],
    );
    let baseline = rss_kib(fw.pid);
    let secs = 30;
    let done = AtomicBool::new(false);
    let mut peak = baseline;
    let mut good = 0;
    let mut bad = 0;
    let mut retries = 0;
    let mut opened = 0u64;
    let mut failure = None;
    std::thread::scope(|s| {
        let lab = &lab;
        let flood = s.spawn(|| {
            let o = lab.run(
                &lab.client,
                &["python3", "-c", FLOOD, &secs.to_string(), SERVER_IP],
            );
            done.store(true, Ordering::SeqCst);
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
        });
        let mail = s.spawn(|| {
            let (mut good, mut bad, mut retries) = (0, 0, 0);
            let mut failed = None;
            'mail: while !done.load(Ordering::SeqCst) {
                let from = lab::client_ip(1);
                // A saturated inline firewall that fails closed drops packets of every flow,
                // so a connection attempt can time out; like an MTA, try again (at most 3
                // times). What must hold: the allowed message gets through in the end and
                // the disallowed one never does.
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let ok = inline::swaks(lab, &from, "alice@example.com", true, 10);
                    if ok.status.success() {
                        break;
                    }
                    if attempts >= 3 {
                        failed = Some(format!(
                            "allowed mail failed 3 times during the flood (after {good} delivered): {}",
                            String::from_utf8_lossy(&ok.stdout)
                        ));
                        break 'mail;
                    }
                    retries += 1;
                }
                good += 1;
                let no = inline::swaks(lab, &from, "mallory@evil.test", true, 3);
                assert!(!no.status.success());
                bad += 1;
            }
            (good, bad, retries, failed)
        });
        let started = Instant::now();
        while !done.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(secs + 30) {
            peak = peak.max(rss_kib(fw.pid));
            std::thread::sleep(Duration::from_millis(250));
        }
        opened = flood.join().expect("flood");
        let failed;
        (good, bad, retries, failed) = mail.join().expect("mail loop");
        failure = failed;
    });
    inline::stop(&mut lab, &fw);
    if let Some(f) = failure {
        let stats = inline::of(&fw.eve(), "stats")
            .last()
            .map(|s| s.to_string())
            .unwrap_or_default();
        panic!("{f}\nsekisho's log:\n{}\nlast stats: {stats}", fw.log());
    }
    eprintln!(
        "flood: {opened} connections in {secs} s ({:.0}/s); mail: {good} allowed delivered ({retries} attempts retried), {bad} disallowed refused; RSS {} KiB at start, peak {} KiB (flow.memcap {} KiB)",
        opened as f64 / secs as f64,
        baseline,
        peak,
        memcap >> 10
    );
    assert!(opened > 1000, "the flood opened only {opened} connections");
    assert!(good >= 1, "{good}");
    let rcpts = inline::delivered(&dump);
    assert_eq!(
        rcpts,
        vec!["<alice@example.com>".to_string(); good],
        "{rcpts:?}"
    );
    // Code, rules, log buffers and the allocator's slack: a fixed 48 MiB on top of the cap.
    let allowance = (memcap >> 10) + 48 * 1024;
    assert!(
        peak <= baseline + allowance,
        "RSS grew from {baseline} KiB to {peak} KiB, more than flow.memcap + 48 MiB"
    );
}
