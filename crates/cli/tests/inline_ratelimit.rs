//! Rate-limit tables shared by the workers of `sekisho run` (docs/rate-limits.md, "Where it
//! sits"), in the lab (`sekisho_testutil::lab`): two queues, and one source's connections
//! spread over both (flows to 10.0.1.2 on queue 0, to 10.0.1.3 on queue 1, both directions,
//! as `--queue-balance` places flows by address pair). A per-source limit of burst 4 lets 4
//! of the 8 connections through, not 4 per queue; the metrics endpoint and `sekisho ratelimit
//! show NAME --pid-file` (SIGUSR1 to the running instance) show the one shared table.

#[path = "support/inline.rs"]
mod inline;

use std::process::{Command, Stdio};
use std::time::Duration;

use sekisho_testutil::lab::{self, Lab, CLIENT_IP};

const METRICS_PORT: u16 = 19312;

#[test]
fn one_table_behind_two_queues() {
    if !lab::require_tools(&["python3", "curl"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    lab.ok(
        &lab.server,
        &["ip", "addr", "add", "10.0.1.3/24", "dev", "s0", "nodad"],
    );
    let server = lab.server.clone();
    let mut cmd = lab.cmd(&server, "python3");
    cmd.args(["-m", "http.server", "9000", "--bind", "0.0.0.0"])
        .current_dir(&lab.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    lab.spawn("http.server", &mut cmd);
    lab.wait_tcp(&server, "10.0.1.3", 9000, Duration::from_secs(10));
    // Flow-affine and deterministic: each server address (both directions) to its queue.
    for (addr, q) in [("10.0.1.2", "0"), ("10.0.1.3", "1")] {
        for dir in ["-d", "-s"] {
            lab.ok(
                &lab.fw,
                &[
                    "iptables",
                    "-A",
                    "FORWARD",
                    dir,
                    addr,
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    q,
                ],
            );
        }
    }
    let policy = inline::policy(
        &lab,
        "limit.yaml",
        r#"engine_profile: suricata-8
rule_groups: []
rate_limits:
  - name: per_source
    match: "tcp any any -> any 9000"
    count: new_flows
    rate: 6/minute
    burst: 4
    mode: [srcip]
    action: reject
"#,
    );
    let pid_file = lab.dir.join("run.pid");
    let fw = inline::start(
        &mut lab,
        "shared",
        &[
            "--policy",
            &policy.display().to_string(),
            "--queues",
            "0:1",
            "--pid-file",
            &pid_file.display().to_string(),
            "--metrics",
            &format!("127.0.0.1:{METRICS_PORT}"),
        ],
    );
    let mut through = 0;
    let mut refused = 0;
    for i in 0..8 {
        let dst = if i % 2 == 0 { "10.0.1.2" } else { "10.0.1.3" };
        let (code, err, secs) = inline::curl(
            &lab,
            &[
                "--interface",
                CLIENT_IP,
                "--max-time",
                "5",
                &format!("http://{dst}:9000/"),
            ],
        );
        match code {
            0 => through += 1,
            // Refused by the limit's reset, at once.
            7 if secs < 2.0 => refused += 1,
            _ => panic!("connection {i} to {dst}: curl {code} after {secs:.1} s: {err}"),
        }
    }
    let m = inline::metrics(&lab, METRICS_PORT);
    for q in ["0", "1"] {
        let n = inline::metric(&m, &format!("sekisho_queue_packets_total{{queue=\"{q}\"}}"));
        assert!(n.is_some_and(|n| n > 0), "queue {q} carried nothing:\n{m}");
    }
    assert_eq!(
        (through, refused),
        (4, 4),
        "the burst of 4 must hold across both queues\n{m}\n{}",
        fw.log()
    );
    assert_eq!(
        inline::metric(&m, "sekisho_ratelimit_entries{table=\"per_source\"}"),
        Some(1),
        "{m}"
    );
    assert_eq!(
        inline::metric(&m, "sekisho_ratelimit_over_total{table=\"per_source\"}"),
        Some(4),
        "{m}"
    );
    // The running instance's table, on request.
    let o = Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(["ratelimit", "show", "per_source", "--explain", "--out"])
        .arg(&fw.out)
        .arg("--pid-file")
        .arg(&pid_file)
        .output()
        .expect("sekisho ratelimit show");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.contains("10.0.0.2:0->0.0.0.0:0"))
        .unwrap_or_else(|| panic!("no entry for the source:\n{text}"));
    // 6/minute: cost 10 s = 320,000 credits; cap 4 tokens.
    assert!(line.ends_with(" 1280000 320000"), "{line}");
    assert!(text.contains("burst:   4"), "{text}");
    inline::stop(&mut lab, &fw);
}
