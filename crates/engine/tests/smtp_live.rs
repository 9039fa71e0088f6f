//! Live sessions: swaks (client) talks to Postfix's smtp-sink (server)
//! through a loopback relay in this test, which feeds every chunk as it
//! was read from the sockets to `SmtpParser`: real clients, real servers,
//! real chunking. Needs the `swaks` and `postfix` (smtp-sink) packages.

use sekisho_engine::app::smtp::{Direction, SmtpParser, SmtpTx, Status};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the child on drop, so servers never outlive a failed test.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn tools_present() -> bool {
    for tool in ["swaks", "smtp-sink"] {
        if !have(tool) {
            if std::env::var_os("CI").is_some() {
                panic!("{tool} not installed (apt packages swaks, postfix)");
            }
            eprintln!("skipping: {tool} not installed");
            return false;
        }
    }
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// Run one swaks session against smtp-sink (extra flags `sink_args`) and
/// return the transactions, whether the envelope came pipelined (MAIL FROM
/// and RCPT TO in one read), and the raw client bytes.
fn session(sink_args: &[&str], swaks_args: &[&str]) -> (Vec<SmtpTx>, bool, Vec<u8>) {
    let sink_port = free_port();
    let mut sink = Command::new("smtp-sink");
    if is_root() {
        sink.args(["-u", "nobody"]);
    }
    sink.args(sink_args)
        .arg(format!("127.0.0.1:{sink_port}"))
        .arg("10")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _sink = Guard(sink.spawn().expect("start smtp-sink"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", sink_port)).is_err() {
        assert!(Instant::now() < deadline, "smtp-sink did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The probe connection above is a session of its own; ours is next.
    let relay = TcpListener::bind("127.0.0.1:0").expect("relay listener");
    let relay_port = relay.local_addr().expect("addr").port();
    let _client = Guard(
        Command::new("swaks")
            .args(["--server", "127.0.0.1", "--port", &relay_port.to_string()])
            .args(["--timeout", "10"])
            .args(swaks_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start swaks"),
    );
    relay.set_nonblocking(true).expect("nonblocking");
    let client = loop {
        match relay.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("swaks did not connect: {e}"),
        }
    };
    client.set_nonblocking(false).expect("blocking");
    let server = TcpStream::connect(("127.0.0.1", sink_port)).expect("connect smtp-sink");
    let (tx, rx) = mpsc::channel::<(Direction, Vec<u8>)>();
    let pump = |mut from: TcpStream, mut to: TcpStream, dir: Direction, tx: mpsc::Sender<_>| {
        std::thread::spawn(move || {
            let _ = from.set_read_timeout(Some(Duration::from_secs(15)));
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                // Report before forwarding so the parser sees causal order.
                if tx.send((dir, buf[..n].to_vec())).is_err() || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        })
    };
    let a = pump(
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
        Direction::ToServer,
        tx.clone(),
    );
    let b = pump(server, client, Direction::ToClient, tx);
    let mut p = SmtpParser::new();
    let mut txs = Vec::new();
    let mut client_bytes = Vec::new();
    let mut tls = false;
    let mut pipelined = false;
    let has = |d: &[u8], n: &[u8]| d.windows(n.len()).any(|w| w == n);
    for (dir, data) in rx {
        pipelined |= has(&data, b"MAIL FROM") && has(&data, b"RCPT TO");
        if tls {
            continue;
        }
        if dir == Direction::ToServer {
            client_bytes.extend_from_slice(&data);
        }
        let st = p.feed(dir, &data);
        assert_ne!(st, Status::Error, "parser error");
        tls = matches!(st, Status::TlsUpgrade { .. });
        txs.extend(p.take_complete());
    }
    let _ = a.join();
    let _ = b.join();
    txs.extend(p.take_all());
    assert!(!tls, "no STARTTLS in these sessions");
    (txs, pipelined, client_bytes)
}

#[test]
fn swaks_to_smtp_sink_pipelined_and_not() {
    if !tools_present() {
        return;
    }
    let common = [
        "--from",
        "sender@example.test",
        "--to",
        "one@example.test,two@example.test",
        "--helo",
        "client.example.test",
        "--body",
        "line\n.starts with a dot\n",
    ];
    // smtp-sink advertises PIPELINING; `--pipeline` makes swaks use it.
    for (sink, extra, want_pipelined) in [
        (&[][..], &["--pipeline"][..], true),
        (&["-p"][..], &[][..], false),
    ] {
        let mut args = common.to_vec();
        args.extend_from_slice(extra);
        let (txs, pipelined, client) = session(sink, &args);
        assert_eq!(pipelined, want_pipelined);
        assert_eq!(txs.len(), 1, "{txs:?}");
        let t = &txs[0];
        assert_eq!(t.helo.as_deref(), Some(&b"client.example.test"[..]));
        assert_eq!(t.mail_from.as_deref(), Some(&b"<sender@example.test>"[..]));
        assert_eq!(
            t.rcpt_to,
            vec![
                b"<one@example.test>".to_vec(),
                b"<two@example.test>".to_vec()
            ]
        );
        assert!(t.had_data && t.data_complete && t.is_complete(), "{t:?}");
        // The dot-stuffed body line did not end the message early.
        let needle = b"..starts with a dot";
        assert!(client.windows(needle.len()).any(|w| w == needle));
        assert!(t.data_len > needle.len() as u64);
    }
}

#[test]
fn swaks_auth_attempt_keeps_no_credentials() {
    if !tools_present() {
        return;
    }
    let (txs, _, client) = session(
        &[],
        &[
            "--from",
            "a@example.test",
            "--to",
            "b@example.test",
            "--auth",
            "PLAIN",
            "--auth-user",
            "user",
            "--auth-password",
            "s3cretpw",
        ],
    );
    // base64("\0user\0s3cretpw") went over the wire...
    let secret = b"AHVzZXIAczNjcmV0cHc=";
    assert!(client.windows(secret.len()).any(|w| w == secret));
    // ...but is nowhere in what the parser keeps.
    let dump = format!("{txs:?}");
    let dump_bytes = format!("{:?}", secret.to_vec());
    assert!(!dump.contains("AHVzZXIAczNjcmV0cHc="));
    assert!(!dump.contains(&dump_bytes[1..dump_bytes.len() - 1]));
    let mechs: Vec<_> = txs.iter().flat_map(|t| t.auth_mechanisms.clone()).collect();
    assert_eq!(mechs, vec![b"PLAIN".to_vec()]);
}
