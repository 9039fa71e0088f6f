//! `sekisho reach` cross-checked in the lab (`sekisho_testutil::lab`, issue 14 item 4): the
//! lab's topology written as a model (client subnet -> firewall endpoint -> server subnet,
//! each side's route to the other through the firewall), the field report's policies
//! (examples/reach) with HOME_NET set to the lab's client subnet, and for each question the
//! static answer compared with what the real client (curl, swaks, dig) gets through `sekisho run`
//! inline on NFQUEUE in the lab's `fw` namespace with the same policy.
//!
//! The model is instantiated from its own paths: the firewall queues the traffic of each
//! direction whose path crosses it (forward: packets from the client side, `-i f0`; return:
//! from the server side, `-i f1`). With the server subnet's return route deleted the reply
//! takes the local route: it is routed by `fw` without passing through sekisho, as a reply
//! bypassing a firewall endpoint would.

#[path = "support/inline.rs"]
mod inline;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sekisho_reach::{Analyzer, Dest, Model, Proto, Question, Status, Talk};
use sekisho_testutil::lab::{self, Lab, CLIENT_IP, SERVER_IP};

/// The lab as a model; `RT_SERVERS` is the server subnet's route table, `POLICY` the
/// firewall's policy file.
const LAB_MODEL: &str = "\
vpc: {cidr: 10.0.0.0/16}
hosts:
  client: {subnet: clients, address: 10.0.0.2}
  server: {subnet: servers, address: 10.0.1.2}
subnets:
  clients:  {cidr: 10.0.0.0/24, route_table: rt-clients}
  servers:  {cidr: 10.0.1.0/24, route_table: rt-servers}
  firewall: {cidr: 10.0.2.0/28, route_table: rt-firewall}
route_tables:
  rt-clients:  [{dest: 10.0.1.0/24, target: fw}]
  rt-servers:  RT_SERVERS
  rt-firewall: []
firewalls: {fw: {subnet: firewall, policy: POLICY}}
";

/// A copy of examples/reach/NAME in `dir` with HOME_NET = the lab's client subnet (rule
/// files stay the examples').
fn lab_policy(dir: &Path, name: &str) -> PathBuf {
    let ex = inline::root().join("examples/reach");
    let text = std::fs::read_to_string(ex.join(name)).expect("example policy");
    let text = text.replace("10.1.0.0/16", "10.0.0.0/24");
    let text = text
        .replace(
            "rules: egress.rules",
            &format!("rules: {}", ex.join("egress.rules").display()),
        )
        .replace(
            "rules: recipients.rules",
            &format!("rules: {}", ex.join("recipients.rules").display()),
        );
    let p = dir.join(format!("lab-{name}"));
    std::fs::write(&p, text).expect("write policy");
    p
}

fn lab_model(policy: &Path, return_route: bool) -> Analyzer {
    let rt = if return_route {
        "[{dest: 10.0.0.0/24, target: fw}]"
    } else {
        "[]"
    };
    let text = LAB_MODEL
        .replace("RT_SERVERS", rt)
        .replace("POLICY", &policy.display().to_string());
    let m = Model::parse("lab.yaml", &text, Path::new("/")).unwrap_or_else(|d| panic!("{d:#?}"));
    Analyzer::new(m).unwrap_or_else(|d| panic!("{d:#?}"))
}

/// One question: the static answer, then the real client's outcome.
struct Case {
    name: &'static str,
    proto: Proto,
    port: u16,
    sni: Option<&'static str>,
    rcpt: Option<&'static str>,
    expect: Status,
}

fn static_answer(a: &Analyzer, c: &Case) -> sekisho_reach::Analysis {
    let mut talk = Talk::new(c.proto);
    talk.sni = c.sni.map(String::from);
    talk.host = Some("dev.example.com".into());
    if let Some(r) = c.rcpt {
        talk.rcpt = vec![r.into()];
    }
    talk.qname = "a.lab.test".into();
    a.analyze(&Question {
        from: "client".into(),
        to: Dest::Host("server".into()),
        port: c.port,
        talk,
    })
    .expect("question")
}

/// Runs the real client for `c`; true when the conversation completed.
fn real_client(lab: &Lab, c: &Case) -> (bool, String) {
    match c.proto {
        Proto::Tls => {
            let resolve = format!("dev.example.com:{}:{SERVER_IP}", c.port);
            let url = format!("https://dev.example.com:{}/", c.port);
            let (code, err, _) =
                inline::curl(lab, &["-k", "--max-time", "2", "--resolve", &resolve, &url]);
            (code == 0, format!("curl exit {code}: {err}"))
        }
        Proto::Http => {
            let url = format!("http://{SERVER_IP}:{}/", c.port);
            let (code, err, _) = inline::curl(
                lab,
                &["--max-time", "2", "-H", "Host: dev.example.com", &url],
            );
            (code == 0, format!("curl exit {code}: {err}"))
        }
        Proto::Tcp | Proto::Smtp => {
            let port = c.port.to_string();
            let o = lab.run(
                &lab.client,
                &[
                    "swaks",
                    "--server",
                    SERVER_IP,
                    "--port",
                    &port,
                    "--local-interface",
                    CLIENT_IP,
                    "--to",
                    c.rcpt.unwrap_or("postmaster@example.com"),
                    "--from",
                    "sender@example.net",
                    "--helo",
                    "client.lab",
                    "--timeout",
                    "2",
                ],
            );
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
            )
        }
        Proto::Dns => {
            let o = inline::dig(lab, &["+tries=1", "+timeout=2", "a.lab.test"], &lab.client);
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            (o.status.success() && out.contains(SERVER_IP), out)
        }
        other => panic!("no lab client for {other}"),
    }
}

fn start_servers(lab: &mut Lab) {
    let server = lab.server.clone();
    // TLS: openssl s_server with a fresh self-signed certificate (EC: fast to make).
    let key = lab.dir.join("key.pem");
    let cert = lab.dir.join("cert.pem");
    let o = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args([
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=dev.example.com",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl req");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut cmd = lab.cmd(&server, "openssl");
    cmd.args(["s_server", "-quiet", "-www", "-accept", "443", "-cert"])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    lab.spawn("openssl s_server", &mut cmd);
    lab.wait_tcp(&server, SERVER_IP, 443, Duration::from_secs(10));
    inline::http_server(lab, 80);
    inline::dnsmasq(lab);
    inline::smtp_sink(lab);
    // Submission port: a second smtp-sink.
    let mut cmd = lab.cmd(&server, "smtp-sink");
    cmd.args(["-u", "nobody"])
        .arg(format!("{SERVER_IP}:587"))
        .arg("64")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    lab.spawn("smtp-sink 587", &mut cmd);
    lab.wait_tcp(&server, SERVER_IP, 587, Duration::from_secs(10));
}

/// Queues each direction whose path crosses the firewall, as the model's paths say.
fn instantiate(lab: &Lab, a: &Analyzer) {
    lab.flush_forward();
    let probe = a
        .analyze(&Question {
            from: "client".into(),
            to: Dest::Host("server".into()),
            port: 443,
            talk: Talk::new(Proto::Tcp),
        })
        .expect("probe");
    let fwd = probe.forward.firewalls().any(|(n, _)| n == "fw");
    let back = probe
        .ret
        .as_ref()
        .is_some_and(|r| r.firewalls().any(|(n, _)| n == "fw"));
    for (on, dev) in [(fwd, "f0"), (back, "f1")] {
        if on {
            lab.ok(
                &lab.fw,
                &[
                    "iptables",
                    "-A",
                    "FORWARD",
                    "-i",
                    dev,
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    "0",
                ],
            );
        }
    }
}

#[test]
fn static_answers_equal_what_real_clients_get_inline() {
    if !lab::require_tools(&[
        "smtp-sink",
        "swaks",
        "curl",
        "openssl",
        "python3",
        "dnsmasq",
        "dig",
    ]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    start_servers(&mut lab);
    let tls = |name, expect| Case {
        name,
        proto: Proto::Tls,
        port: 443,
        sni: Some("dev.example.com"),
        rcpt: None,
        expect,
    };
    let scenarios: Vec<(&str, bool, Vec<Case>)> = vec![
        (
            "policy.yaml",
            true,
            vec![
                tls("tls 443", Status::Reachable),
                Case {
                    name: "http 80",
                    proto: Proto::Http,
                    port: 80,
                    sni: None,
                    rcpt: None,
                    expect: Status::Blocked,
                },
                Case {
                    name: "tcp 587",
                    proto: Proto::Tcp,
                    port: 587,
                    sni: None,
                    rcpt: None,
                    expect: Status::Reachable,
                },
                Case {
                    name: "dns 53",
                    proto: Proto::Dns,
                    port: 53,
                    sni: None,
                    rcpt: None,
                    expect: Status::Reachable,
                },
            ],
        ),
        (
            "policy-app-layer.yaml",
            true,
            vec![
                tls("tls 443 (drop_established_app_layer)", Status::Reachable),
                Case {
                    name: "dns 53 (drop_established_app_layer)",
                    proto: Proto::Dns,
                    port: 53,
                    sni: None,
                    rcpt: None,
                    expect: Status::Blocked,
                },
            ],
        ),
        (
            "policy-drop-established.yaml",
            true,
            vec![
                tls("tls 443 (drop_established)", Status::Reachable),
                Case {
                    name: "tcp 587 (drop_established)",
                    proto: Proto::Tcp,
                    port: 587,
                    sni: None,
                    rcpt: None,
                    expect: Status::Blocked,
                },
            ],
        ),
        (
            "recipients.yaml",
            true,
            vec![
                Case {
                    name: "smtp rcpt a@gmail.example",
                    proto: Proto::Smtp,
                    port: 25,
                    sni: None,
                    rcpt: Some("a@gmail.example"),
                    expect: Status::Reachable,
                },
                Case {
                    name: "smtp rcpt b@yahoo.example",
                    proto: Proto::Smtp,
                    port: 25,
                    sni: None,
                    rcpt: Some("b@yahoo.example"),
                    expect: Status::Blocked,
                },
            ],
        ),
        (
            "policy.yaml",
            false,
            vec![tls("tls 443 (return route deleted)", Status::Asymmetric)],
        ),
    ];
    let mut report = Vec::new();
    for (k, (policy, return_route, cases)) in scenarios.iter().enumerate() {
        let p = lab_policy(&lab.dir, policy);
        let a = lab_model(&p, *return_route);
        instantiate(&lab, &a);
        let ps = p.display().to_string();
        let fw = inline::start(
            &mut lab,
            &format!("reach{k}"),
            &["--policy", &ps, "--queue", "0"],
        );
        for c in cases {
            let answer = static_answer(&a, c);
            assert_eq!(
                answer.status,
                c.expect,
                "{}: static answer\n{}",
                c.name,
                answer.to_text()
            );
            let (ok, transcript) = real_client(&lab, c);
            report.push(format!(
                "{}: static {} / real client {}",
                c.name,
                answer.status.as_str(),
                if ok { "completed" } else { "failed" }
            ));
            assert_eq!(
                ok,
                answer.reachable(),
                "{}: the static answer is {} but the real client {}:\n{transcript}\n{}",
                c.name,
                answer.status.as_str(),
                if ok { "completed" } else { "failed" },
                fw.log()
            );
            // A rule that blocked statically blocked live too: sekisho run logged it.
            if let Some(rule) = answer
                .verdict("fw")
                .filter(|v| v.blocked)
                .and_then(|v| v.rule.clone())
            {
                let deadline = std::time::Instant::now() + Duration::from_secs(3);
                while !fw
                    .eve()
                    .iter()
                    .any(|e| e["alert"]["signature_id"] == rule.sid)
                {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{}: no live record of sid {}: {:#?}",
                        c.name,
                        rule.sid,
                        fw.eve()
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        inline::stop(&mut lab, &fw);
    }
    eprintln!("{}", report.join("\n"));
}
