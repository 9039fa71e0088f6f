//! Helpers for the inline lab tests: start `sekisho run` in the lab's `fw` namespace, stop
//! it, read its logs, start the real servers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sekisho_testutil::lab::{Lab, SERVER_IP};
use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A `sekisho run` started in `fw`.
pub struct Fw {
    /// Its pid.
    pub pid: u32,
    /// Its `--out` directory.
    pub out: PathBuf,
    /// Where its stderr goes.
    pub stderr: PathBuf,
}

impl Fw {
    /// Every EVE record written so far.
    pub fn eve(&self) -> Vec<Value> {
        std::fs::read_to_string(self.out.join("eve.json"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// Starts `sekisho run --out DIR --ready-file F --flush-interval 0.2 ARGS` in `fw` and waits
/// until its queues are bound. `tag` names the files in the lab directory.
pub fn start(lab: &mut Lab, tag: &str, args: &[&str]) -> Fw {
    let out = lab.dir.join(format!("{tag}-out"));
    let ready = lab.dir.join(format!("{tag}.ready"));
    let stderr = lab.dir.join(format!("{tag}.stderr"));
    let err = std::fs::File::create(&stderr).expect("stderr file");
    let mut cmd = lab.cmd(&lab.fw.clone(), env!("CARGO_BIN_EXE_sekisho"));
    cmd.arg("run")
        .arg("--out")
        .arg(&out)
        .arg("--ready-file")
        .arg(&ready)
        .args(["--flush-interval", "0.2"])
        .args(args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(err);
    let pid = lab.spawn("sekisho run", &mut cmd);
    let fw = Fw { pid, out, stderr };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(
            lab.running(pid),
            "sekisho run exited before it was ready:\n{}",
            fw.log()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "sekisho run not ready:\n{}",
            fw.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    fw
}

/// SIGTERM, then the exit status (panics unless it exits cleanly with 0 within 10 s).
pub fn stop(lab: &mut Lab, fw: &Fw) {
    let code = lab.terminate(fw.pid, Duration::from_secs(10));
    assert_eq!(
        code,
        Some(0),
        "sekisho run did not stop cleanly:\n{}",
        fw.log()
    );
}

/// Writes a policy file into the lab directory; relative rule paths resolve from there, so
/// `{examples}` in `text` is replaced by the repository's examples directory.
pub fn policy(lab: &Lab, name: &str, text: &str) -> PathBuf {
    let p = lab.dir.join(name);
    let text = text.replace("{examples}", &root().join("examples").display().to_string());
    std::fs::write(&p, text).expect("write policy");
    p
}

/// Starts Postfix's smtp-sink on SERVER_IP:25 in `server`, dumping every mail transaction to
/// a file in the returned directory.
pub fn smtp_sink(lab: &mut Lab) -> PathBuf {
    let dump = lab.dir.join("mail");
    std::fs::create_dir_all(&dump).expect("mail dir");
    // smtp-sink writes the dumps as `nobody`.
    Command::new("chmod")
        .args(["0777", &dump.display().to_string()])
        .status()
        .expect("chmod");
    let server = lab.server.clone();
    let mut cmd = lab.cmd(&server, "smtp-sink");
    cmd.args(["-u", "nobody", "-d"])
        .arg(format!("{}/%M.", dump.display()))
        .arg(format!("{SERVER_IP}:25"))
        .arg("64")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    lab.spawn("smtp-sink", &mut cmd);
    lab.wait_tcp(&server, SERVER_IP, 25, Duration::from_secs(10));
    dump
}

/// The recipients of every message smtp-sink received (the `X-Rcpt-Args` lines of its dumps).
pub fn delivered(dump: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dump).expect("mail dir").flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        for l in text.lines() {
            if let Some(r) = l.strip_prefix("X-Rcpt-Args: ") {
                out.push(r.trim().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Runs swaks in `client` from `from_ip` to `rcpt` at SERVER_IP:25.
pub fn swaks(lab: &Lab, from_ip: &str, rcpt: &str, pipeline: bool, timeout_s: u32) -> Output {
    let mut args = vec![
        "swaks",
        "--server",
        SERVER_IP,
        "--port",
        "25",
        "--local-interface",
        from_ip,
        "--to",
        rcpt,
        "--from",
        "sender@example.net",
        "--helo",
        "client.lab",
    ];
    let t = timeout_s.to_string();
    args.extend(["--timeout", &t]);
    if pipeline {
        args.push("--pipeline");
    }
    lab.run(&lab.client, &args)
}

/// Records of `event_type` `t`.
pub fn of<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

/// Starts `python3 -m http.server PORT` on SERVER_IP in `server` and waits for it.
pub fn http_server(lab: &mut Lab, port: u16) {
    let server = lab.server.clone();
    let mut cmd = lab.cmd(&server, "python3");
    cmd.args(["-m", "http.server", &port.to_string(), "--bind", SERVER_IP])
        .current_dir(&lab.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    lab.spawn("http.server", &mut cmd);
    lab.wait_tcp(&server, SERVER_IP, port, Duration::from_secs(10));
}

/// Starts dnsmasq on SERVER_IP:53 in `server`, answering `*.lab.test` with SERVER_IP.
pub fn dnsmasq(lab: &mut Lab) {
    let server = lab.server.clone();
    let mut cmd = lab.cmd(&server, "dnsmasq");
    cmd.args([
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        "--bind-interfaces",
        "--port=53",
    ])
    .arg(format!("--listen-address={SERVER_IP}"))
    .arg(format!("--address=/lab.test/{SERVER_IP}"))
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    lab.spawn("dnsmasq", &mut cmd);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let o = dig(lab, &["+tries=1", "+timeout=1", "a.lab.test"], &server);
        if String::from_utf8_lossy(&o.stdout).contains(SERVER_IP) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "dnsmasq did not answer"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `dig @SERVER_IP ARGS` in namespace `ns`.
pub fn dig(lab: &Lab, args: &[&str], ns: &str) -> Output {
    let at = format!("@{SERVER_IP}");
    let mut all = vec!["dig", at.as_str()];
    all.extend_from_slice(args);
    lab.run(ns, &all)
}

/// Runs curl in `client` with ARGS; returns (exit code, stderr, seconds taken).
pub fn curl(lab: &Lab, args: &[&str]) -> (i32, String, f64) {
    let started = std::time::Instant::now();
    let mut all = vec!["curl", "-sS", "-o", "/dev/null"];
    all.extend_from_slice(args);
    let o = lab.run(&lab.client, &all);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        started.elapsed().as_secs_f64(),
    )
}

/// The metrics `sekisho run --metrics 127.0.0.1:PORT` serves in `fw`, fetched with curl there.
pub fn metrics(lab: &Lab, port: u16) -> String {
    let o = lab.ok(
        &lab.fw,
        &[
            "curl",
            "-sS",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{port}/metrics"),
        ],
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The value of the metric line starting with `name ` (name with labels as printed).
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
