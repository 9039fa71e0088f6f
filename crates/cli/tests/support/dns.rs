//! Helpers for the `sekisho dns` integration tests: a real dnsmasq upstream, the real `sekisho`
//! binary, and `dig` as the client. Every process is killed on drop.
//!
//! Included by the `dns_*` test files with `#[path = "support/dns.rs"] mod support;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// True when `tool` is on PATH. Missing tools fail under CI and skip (with a message) otherwise.
pub fn require(tools: &[&str]) -> bool {
    for tool in tools {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            if std::env::var_os("CI").is_some() {
                panic!("{tool} is required (apt-get install dnsmasq bind9-dnsutils)");
            }
            eprintln!("skipping: {tool} not installed");
            return false;
        }
    }
    true
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A dnsmasq upstream serving a test zone on loopback.
pub struct Dnsmasq {
    pub port: u16,
    _proc: Proc,
}

impl Dnsmasq {
    /// Starts dnsmasq with the zone options in `zone` (e.g. `--address=/a.test/1.2.3.4`).
    pub fn start(zone: &[&str]) -> Dnsmasq {
        let port = free_port();
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--conf-file=/dev/null",
                "--user=root",
                "--pid-file=",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
            ])
            .args(zone)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        let d = Dnsmasq {
            port,
            _proc: Proc(child),
        };
        wait_tcp(port);
        d
    }
}

fn wait_tcp(port: u16) {
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `sekisho dns`.
pub struct Sekisho {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub stderr: Arc<Mutex<String>>,
    pub proc: Proc,
}

impl Sekisho {
    /// Writes `config` (with `{PORT}` replaced by the listen port and `{UP}` by `upstream`'s
    /// address) into a temp dir, along with `files`, and starts `sekisho dns --config` there.
    pub fn start(config: &str, upstream: &str, files: &[(&str, &str)], extra: &[&str]) -> Sekisho {
        Sekisho::start_wrapped(&[], config, upstream, files, extra)
    }

    /// As [`Sekisho::start`], run through `wrapper` (e.g. `["prlimit", "--nofile=64:64"]`, a
    /// program that execs its arguments, so the process ID stays sekisho's).
    pub fn start_wrapped(
        wrapper: &[&str],
        config: &str,
        upstream: &str,
        files: &[(&str, &str)],
        extra: &[&str],
    ) -> Sekisho {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let port = free_port();
        let cfg = config
            .replace("{PORT}", &port.to_string())
            .replace("{UP}", upstream);
        std::fs::write(dir.path().join("dns.yaml"), cfg).unwrap();
        let bin = assert_cmd::cargo::cargo_bin("sekisho");
        let mut cmd = match wrapper.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let mut child = cmd
            .arg("dns")
            .arg("--config")
            .arg(dir.path().join("dns.yaml"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sekisho");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let s = Sekisho {
            port,
            dir,
            stderr,
            proc: Proc(child),
        };
        wait_tcp(port);
        s
    }

    /// Path of a file in the config directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs dig against this server.
    pub fn dig(&self, args: &str) -> Dig {
        dig(self.port, args)
    }

    /// Sends a signal to the server.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.proc.0.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits until stderr contains `needle` (10 s at most); returns all of stderr.
    pub fn wait_stderr(&self, needle: &str) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.stderr.lock().unwrap().clone();
            if s.contains(needle) {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "stderr never said {needle:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the query log holds at least `n` lines; returns them parsed.
    pub fn log_lines(&self, n: usize) -> Vec<serde_json::Value> {
        read_log(&self.path("query.log"), n)
    }
}

/// Waits until `path` holds at least `n` lines (5 s at most); returns them parsed.
pub fn read_log(path: &Path, n: usize) -> Vec<serde_json::Value> {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<_> = text.lines().filter(|l| !l.is_empty()).collect();
        if lines.len() >= n {
            return lines
                .iter()
                .map(|l| serde_json::from_str(l).expect("query log line is JSON"))
                .collect();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "query log has {} lines, expected {n}:\n{text}",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What dig printed, picked apart.
#[derive(Debug)]
pub struct Dig {
    /// `NOERROR`, `NXDOMAIN`, `SERVFAIL`... or empty when there was no answer.
    pub status: String,
    /// Header flags (`qr rd ra tc`...).
    pub flags: Vec<String>,
    /// Answer-section lines, whitespace-normalised: `name ttl class type rdata`.
    pub answers: Vec<String>,
    /// Question-section line.
    pub question: String,
    /// Everything.
    pub raw: String,
}

/// Runs `dig @127.0.0.1 -p PORT +time=2 +tries=1 ARGS`.
pub fn dig(port: u16, args: &str) -> Dig {
    let out = Command::new("dig")
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .arg("+time=2")
        .arg("+tries=1")
        .args(args.split_whitespace())
        .output()
        .expect("run dig");
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = raw
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("")
        .to_string();
    let flags = raw
        .split(";; flags: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let section = |title: &str| -> Vec<String> {
        let mut v = Vec::new();
        let mut on = false;
        for l in raw.lines() {
            if l.starts_with(";; ") && l.contains("SECTION:") {
                on = l.contains(title);
                continue;
            }
            if on {
                if l.trim().is_empty() {
                    on = false;
                    continue;
                }
                v.push(l.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
        v
    };
    let question = section("QUESTION").first().cloned().unwrap_or_default();
    Dig {
        status,
        flags,
        answers: section("ANSWER"),
        question,
        raw,
    }
}
