//! Inline in the lab (`sekisho_testutil::lab`): operations under live traffic.
//!
//! - Reload under traffic: while a loop of HTTP requests (curl to python's http.server) and a
//!   loop of allowed mail (swaks to smtp-sink) run through `fw`, the policy is reloaded 10
//!   times (SIGHUP and `sekisho reload --pid-file`, alternately), one reload carrying a syntax error: no allowed connection fails, the
//!   bad reload is refused with its located error on stderr, the old rules keep enforcing,
//!   and the Prometheus counters say 9 reloads and 1 failure.
//! - Fail-open and fail-closed: with the engine stalled (the hidden test switch
//!   `--test-stall-file`) and a short kernel queue, `--fail-open` lets new connections through
//!   uninspected and `--fail-closed` drops them (the kernel's queue drop counter says so).

#[path = "support/inline.rs"]
mod inline;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use sekisho_testutil::lab::{self, Lab, CLIENT_IP, SERVER_IP};

const POLICY: &str = r#"engine_profile: suricata-8
rule_order: strict
default_actions: [aws:drop_established]
variables:
  HOME_NET: [10.0.0.0/24]
rule_groups:
  - name: web
    rules_text: |
      pass tcp $HOME_NET any -> any 8080 (msg:"web GENERATION"; flow:to_server; sid:400; rev:1;)
  - {name: recipients, rules: {examples}/smtp/recipients.rules}
"#;

#[test]
fn ten_reloads_under_traffic_one_bad_and_no_allowed_connection_fails() {
    if !lab::require_tools(&["python3", "curl", "smtp-sink", "swaks"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    inline::http_server(&mut lab, 8080);
    let dump = inline::smtp_sink(&mut lab);
    lab.queue_iptables("0", false);
    let policy = inline::policy(&lab, "reload.yaml", &POLICY.replace("GENERATION", "0"));
    let pid_file = lab.dir.join("sekisho.pid");
    let fw = inline::start(
        &mut lab,
        "reload",
        &[
            "--policy",
            &policy.display().to_string(),
            "--queue",
            "0",
            "--metrics",
            "127.0.0.1:9101",
            "--pid-file",
            &pid_file.display().to_string(),
        ],
    );
    let done = AtomicBool::new(false);
    let (web_ok, web_failed, mail_ok, mail_failed) = (
        AtomicU32::new(0),
        AtomicU32::new(0),
        AtomicU32::new(0),
        AtomicU32::new(0),
    );
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let lab = &lab;
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let (code, err, _) = inline::curl(
                    lab,
                    &["--max-time", "5", &format!("http://{SERVER_IP}:8080/")],
                );
                if code == 0 {
                    web_ok.fetch_add(1, Ordering::SeqCst);
                } else {
                    web_failed.fetch_add(1, Ordering::SeqCst);
                    failures.lock().unwrap().push(format!("curl {code}: {err}"));
                }
            }
        });
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let o = inline::swaks(lab, CLIENT_IP, "alice@example.com", true, 10);
                if o.status.success() {
                    mail_ok.fetch_add(1, Ordering::SeqCst);
                } else {
                    mail_failed.fetch_add(1, Ordering::SeqCst);
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("swaks: {}", String::from_utf8_lossy(&o.stdout)));
                }
            }
        });
        for i in 1..=10 {
            std::thread::sleep(Duration::from_millis(300));
            let text = if i == 5 {
                // A syntax error: the `;` after msg is missing.
                POLICY.replace("GENERATION\";", "GENERATION\"")
            } else {
                POLICY.replace("GENERATION", &i.to_string())
            };
            inline::policy(lab, "reload.yaml", &text);
            if i % 2 == 0 {
                lab.signal(fw.pid, "HUP");
            } else {
                // The other half through `sekisho reload` and the pid file.
                let o = std::process::Command::new(env!("CARGO_BIN_EXE_sekisho"))
                    .arg("reload")
                    .arg("--pid-file")
                    .arg(&pid_file)
                    .output()
                    .expect("sekisho reload");
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            }
            // Wait for this reload's verdict on stderr.
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while fw.log().matches("sekisho run: reloaded").count()
                + fw.log().matches("reload refused").count()
                < i
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "reload {i}: {}",
                    fw.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        done.store(true, Ordering::SeqCst);
    });
    let m = inline::metrics(&lab, 9101);
    // The old (then the newest good) rules still enforce the recipient list.
    let bad = inline::swaks(&lab, CLIENT_IP, "mallory@evil.test", false, 4);
    assert!(!bad.status.success());
    inline::stop(&mut lab, &fw);

    let log = fw.log();
    assert_eq!(
        failures.lock().unwrap().as_slice(),
        &[] as &[String],
        "allowed connections failed during reloads; log:\n{log}"
    );
    let (web, mail) = (
        web_ok.load(Ordering::SeqCst),
        mail_ok.load(Ordering::SeqCst),
    );
    eprintln!("during 10 reloads: {web} HTTP requests and {mail} mails, none failed");
    assert!(web >= 10 && mail >= 2, "too little traffic: {web} {mail}");
    assert_eq!(log.matches("sekisho run: reloaded").count(), 9, "{log}");
    assert_eq!(log.matches("reload refused").count(), 1, "{log}");
    assert!(
        log.contains("reload.yaml:9:") && log.contains("error: unterminated quote"),
        "the refusal names the file, line and error: {log}"
    );
    assert_eq!(inline::metric(&m, "sekisho_reloads_total"), Some(9), "{m}");
    assert_eq!(
        inline::metric(&m, "sekisho_reload_failures_total"),
        Some(1),
        "{m}"
    );
    assert_eq!(
        inline::metric(&m, "sekisho_last_reload_success"),
        Some(1),
        "{m}"
    );
    assert!(log.contains("reload_failures=1"), "{log}");
    assert!(!pid_file.exists(), "the pid file is removed at exit");
    let rcpts = inline::delivered(&dump);
    assert!(!rcpts.iter().any(|r| r.contains("mallory")), "{rcpts:?}");
    assert_eq!(rcpts.len() as u32, mail, "{rcpts:?}");
}

/// Stalls the engine with a 4-packet kernel queue, fills the queue, then opens a connection.
/// Returns (curl exit code, metrics text).
fn stalled(fail_open: bool) -> Option<(i32, String)> {
    if !lab::require_tools(&["python3", "curl", "bash"]) {
        return None;
    }
    let mut lab = Lab::new()?;
    inline::http_server(&mut lab, 8080);
    lab.queue_iptables("0", false);
    let policy = inline::policy(&lab, "stall.yaml", &POLICY.replace("GENERATION", "0"));
    let stall = lab.dir.join("stall");
    let mode = if fail_open {
        "--fail-open"
    } else {
        "--fail-closed"
    };
    let fw = inline::start(
        &mut lab,
        "stall",
        &[
            "--policy",
            &policy.display().to_string(),
            "--queue",
            "0",
            mode,
            "--queue-maxlen",
            "4",
            "--metrics",
            "127.0.0.1:9101",
            "--test-stall-file",
            &stall.display().to_string(),
        ],
    );
    let url = format!("http://{SERVER_IP}:8080/");
    // Not stalled: the connection passes.
    let (code, err, _) = inline::curl(&lab, &["--max-time", "5", &url]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(&stall, "").expect("stall switch");
    std::thread::sleep(Duration::from_millis(200));
    // Fill the queue: these datagrams wait there for a verdict that does not come.
    let fill = format!("for i in 1 2 3 4 5 6 7 8; do echo fill > /dev/udp/{SERVER_IP}/9999; done");
    lab.ok(&lab.client, &["bash", "-c", &fill]);
    let (code, _, _) = inline::curl(&lab, &["--max-time", "3", &url]);
    let m = inline::metrics(&lab, 9101);
    std::fs::remove_file(&stall).expect("unstall");
    inline::stop(&mut lab, &fw);
    let log = fw.log();
    assert!(
        log.contains(if fail_open {
            "fail-open"
        } else {
            "fail-closed"
        }),
        "the choice is logged: {log}"
    );
    Some((code, m))
}

#[test]
fn stalled_engine_fail_open_passes_traffic() {
    let Some((code, m)) = stalled(true) else {
        return;
    };
    assert_eq!(code, 0, "fail-open: the connection should pass uninspected");
    assert_eq!(
        inline::metric(&m, "sekisho_queue_fail_open{queue=\"0\"}"),
        Some(1),
        "{m}"
    );
}

#[test]
fn stalled_engine_fail_closed_drops_traffic() {
    let Some((code, m)) = stalled(false) else {
        return;
    };
    assert_eq!(code, 28, "fail-closed: the connection should time out");
    assert_eq!(
        inline::metric(&m, "sekisho_queue_fail_open{queue=\"0\"}"),
        Some(0),
        "{m}"
    );
    let dropped = inline::metric(&m, "sekisho_queue_dropped_total{queue=\"0\"}").unwrap_or(0);
    assert!(dropped > 0, "the kernel counted its drops: {m}");
}
