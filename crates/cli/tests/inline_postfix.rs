//! Inline in the lab (`sekisho_testutil::lab`): the recipient allow list on mail sent by a
//! real Postfix, the MTA of the field report. A private Postfix instance in `client`
//! (sendmail(1) -> pickup -> qmgr -> smtp client, relayhost = smtp-sink in `server`) pipelines
//! MAIL/RCPT/DATA through `fw`, where `sekisho run` enforces
//! examples/smtp/recipients-strict.yaml:
//!
//! - a message to two allowed recipients is delivered (smtp-sink's dump shows both);
//! - a message to an allowed and a disallowed recipient is not delivered at all: sekisho
//!   drops the flow at the pipelined RCPT, Postfix's conversation times out and Postfix
//!   defers the message (its log says `status=deferred`, its queue keeps it), which is the
//!   documented client-side behaviour; the log has the `blocked` alert naming the recipient.

#[path = "support/inline.rs"]
mod inline;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sekisho_testutil::lab::{self, Lab, CLIENT_IP, SERVER_IP};

/// Writes and checks a private Postfix instance in `dir` (chroot off, no listener, 5 s SMTP
/// timeouts so a dropped conversation defers quickly).
fn postfix_instance(lab: &Lab, dir: &Path) {
    std::fs::create_dir_all(dir.join("queue")).expect("queue dir");
    std::fs::create_dir_all(dir.join("data")).expect("data dir");
    let d = dir.display();
    let main = format!(
        "compatibility_level = 3.6\n\
         queue_directory = {d}/queue\n\
         data_directory = {d}/data\n\
         maillog_file = {d}/maillog\n\
         maillog_file_prefixes = {d}\n\
         mail_owner = postfix\n\
         setgid_group = postdrop\n\
         alias_maps =\n\
         alias_database =\n\
         mydestination =\n\
         local_recipient_maps =\n\
         smtp_dns_support_level = disabled\n\
         smtp_host_lookup = native\n\
         smtp_connection_cache_on_demand = no\n\
         biff = no\n\
         myhostname = sendmail.lab.test\n\
         myorigin = $myhostname\n\
         inet_interfaces = loopback-only\n\
         inet_protocols = ipv4\n\
         mynetworks = 127.0.0.0/8\n\
         relayhost = [{SERVER_IP}]:25\n\
         smtp_bind_address = {CLIENT_IP}\n\
         smtp_tls_security_level = none\n\
         smtp_connect_timeout = 5s\n\
         smtp_helo_timeout = 5s\n\
         smtp_mail_timeout = 5s\n\
         smtp_rcpt_timeout = 5s\n\
         smtp_data_init_timeout = 5s\n\
         smtp_data_xfer_timeout = 5s\n\
         smtp_data_done_timeout = 5s\n\
         queue_run_delay = 1s\n\
         minimal_backoff_time = 1s\n\
         maximal_backoff_time = 2s\n"
    );
    std::fs::write(dir.join("main.cf"), main).expect("main.cf");
    let master = "\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";
    std::fs::write(dir.join("master.cf"), master).expect("master.cf");
    std::process::Command::new("chown")
        .args(["postfix", &dir.join("data").display().to_string()])
        .status()
        .expect("chown");
    let conf = dir.display().to_string();
    // `check` creates the queue directories; then the instance starts (its daemons live in
    // `client` and go when the lab kills what runs there).
    lab.ok(&lab.client, &["postfix", "-c", &conf, "check"]);
    lab.ok(&lab.client, &["postfix", "-c", &conf, "start"]);
}

/// Hands a message to the instance's sendmail(1).
fn sendmail(lab: &Lab, dir: &Path, subject: &str, rcpts: &[&str]) {
    let conf = dir.display().to_string();
    let path = String::from_utf8_lossy(
        &std::process::Command::new("postconf")
            .args(["-dh", "sendmail_path"])
            .output()
            .expect("postconf")
            .stdout,
    )
    .trim()
    .to_string();
    let mut cmd = lab.cmd(&lab.client, "env");
    cmd.arg(format!("MAIL_CONFIG={conf}"))
        .args([path.as_str(), "-C", &conf, "-f", "sender@lab.test", "--"])
        .args(rcpts)
        .stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("sendmail");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("Subject: {subject}\n\n{subject}\n").as_bytes())
        .expect("message");
    assert!(child.wait().expect("sendmail").success(), "sendmail failed");
}

/// The recipients smtp-sink received, without Postfix's DSN arguments (`ORCPT=...`).
fn delivered(dump: &Path) -> Vec<String> {
    inline::delivered(dump)
        .iter()
        .filter_map(|r| r.split_whitespace().next().map(str::to_string))
        .collect()
}

/// The instance's log so far.
fn maillog(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("maillog")).unwrap_or_default()
}

/// Waits until `cond` holds on the log (asks the queue to flush meanwhile); panics with the
/// log after `secs`.
fn wait_log(lab: &Lab, dir: &Path, secs: u64, what: &str, cond: impl Fn(&str) -> bool) {
    let conf = dir.display().to_string();
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond(&maillog(dir)) {
        assert!(
            Instant::now() < until,
            "{what} within {secs} s; Postfix's log:\n{}",
            maillog(dir)
        );
        let _ = lab.run(&lab.client, &["postqueue", "-c", &conf, "-f"]);
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn postfix_pipelined_mail_is_enforced_by_recipient() {
    if !lab::require_tools(&["smtp-sink", "postfix", "postconf", "postqueue"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    let dump = inline::smtp_sink(&mut lab);
    lab.queue_iptables("0", false);
    let policy = inline::root().join("examples/smtp/recipients-strict.yaml");
    let fw = inline::start(
        &mut lab,
        "postfix",
        &["--policy", &policy.display().to_string(), "--queue", "0"],
    );
    let pf = lab.dir.join("pf-client");
    postfix_instance(&lab, &pf);

    // Allowed: both recipients are on the list.
    sendmail(
        &lab,
        &pf,
        "allowed",
        &["alice@example.com", "bob@example.org"],
    );
    wait_log(&lab, &pf, 30, "the allowed message was not sent", |l| {
        l.matches("status=sent").count() >= 2
    });
    assert_eq!(
        delivered(&dump),
        vec![
            "<alice@example.com>".to_string(),
            "<bob@example.org>".to_string()
        ]
    );

    // Disallowed: one recipient off the list blocks the whole message.
    sendmail(
        &lab,
        &pf,
        "mixed",
        &["alice@example.com", "mallory@evil.test"],
    );
    wait_log(&lab, &pf, 30, "the mixed message was not deferred", |l| {
        l.contains("status=deferred")
    });
    let log = maillog(&pf);
    assert!(
        log.lines()
            .any(|l| l.contains("to=<mallory@evil.test>") && l.contains("status=deferred")),
        "{log}"
    );
    let conf = pf.display().to_string();
    let queue = lab.run(&lab.client, &["postqueue", "-c", &conf, "-p"]);
    let queue = String::from_utf8_lossy(&queue.stdout).into_owned();
    assert!(
        queue.contains("mallory@evil.test"),
        "the message stays queued for a retry: {queue}"
    );
    inline::stop(&mut lab, &fw);
    assert_eq!(
        delivered(&dump),
        vec![
            "<alice@example.com>".to_string(),
            "<bob@example.org>".to_string()
        ],
        "nothing of the mixed message reached the server"
    );
    let events = fw.eve();
    let blocked: Vec<_> = inline::of(&events, "alert")
        .into_iter()
        .filter(|e| e["alert"]["signature_id"] == 2000001)
        .collect();
    assert!(!blocked.is_empty(), "no alert: {events:#?}");
    for a in &blocked {
        assert_eq!(a["alert"]["action"], "blocked", "{a}");
        assert_eq!(a["src_ip"], CLIENT_IP, "{a}");
    }
    // The pipelined segment carried every RCPT: the alert's smtp object names them.
    assert!(
        blocked
            .iter()
            .any(|a| a.to_string().contains("mallory@evil.test")),
        "{blocked:#?}"
    );
}
