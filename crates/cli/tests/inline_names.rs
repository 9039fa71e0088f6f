//! Domain lists inline in the lab (`sekisho_testutil::lab`): `sekisho run` on NFQUEUE in
//! `fw` between curl in `client` and real servers in `server` (python's http.server, over
//! TLS with a certificate made by `openssl req`, and in clear).
//!
//! An NFW allow list over TLS_SNI and HTTP_HOST (`.allowed.test`, strict order, the
//! app-layer default action): curl reaches `www.allowed.test` (and the apex, and a
//! mixed-case Host) over HTTPS and HTTP, and does not reach `evil.test` or `allowed.test.evil`
//! (same server, same address, only the name differs); the misses are logged as NFW's
//! "not matching any ... allowlisted FQDNs" alerts with the name, and a deny list of the same
//! names does the reverse, and with `--anomalies` a TLS 1.2 session whose certificate does not
//! cover its SNI shows as `SNI_CERT_MISMATCH`.

#[path = "support/inline.rs"]
mod inline;

use std::process::Stdio;
use std::time::Duration;

use sekisho_testutil::lab::{self, Lab, SERVER_IP};
use serde_json::Value;

/// Starts an HTTPS server (python's http.server over `ssl`) on port 443 in `server` with a
/// fresh self-signed certificate (openssl req) for `*.allowed.test`; any SNI is accepted:
/// the name is the client's choice.
fn tls_server(lab: &mut Lab) {
    let key = lab.dir.join("key.pem");
    let cert = lab.dir.join("cert.pem");
    let o = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-subj",
            "/CN=allowed.test",
            "-addext",
            "subjectAltName=DNS:allowed.test,DNS:*.allowed.test",
        ])
        .output()
        .expect("openssl req");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A threaded server whose handshakes run in the connection's thread: a connection the
    // firewall cut after the TCP handshake (its ClientHello dropped) must not stall the next
    // ones, as it would `openssl s_server`, which serves one connection at a time.
    let server = lab.server.clone();
    let script = format!(
        "import http.server as h, ssl\n\
         h.SimpleHTTPRequestHandler.timeout = 5\n\
         s = h.ThreadingHTTPServer(('{SERVER_IP}', 443), h.SimpleHTTPRequestHandler)\n\
         c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         c.load_cert_chain('{}', '{}')\n\
         s.socket = c.wrap_socket(s.socket, server_side=True, do_handshake_on_connect=False)\n\
         s.serve_forever()\n",
        cert.display(),
        key.display()
    );
    let mut cmd = lab.cmd(&server, "python3");
    cmd.args(["-c", &script])
        .current_dir(&lab.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    lab.spawn("python3 https server", &mut cmd);
    lab.wait_tcp(&server, SERVER_IP, 443, Duration::from_secs(10));
}

/// curl to `name` (resolved to the lab server) over `scheme`; `Ok(body bytes)` or
/// `Err(curl exit code)`.
fn fetch(lab: &Lab, scheme: &str, name: &str, extra: &[&str]) -> Result<usize, i32> {
    let port = if scheme == "https" { 443 } else { 80 };
    let resolve = format!("{name}:{port}:{SERVER_IP}");
    let url = format!("{scheme}://{name}/");
    let mut args = vec![
        "curl",
        "-sk",
        "--max-time",
        "2",
        "--resolve",
        &resolve,
        "-o",
        "-",
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    let o = lab.run(&lab.client, &args);
    match o.status.code() {
        Some(0) => Ok(o.stdout.len()),
        c => Err(c.unwrap_or(-1)),
    }
}

fn alerts(events: &[Value]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = inline::of(events, "alert")
        .iter()
        .map(|a| {
            let name = a["tls"]["sni"]
                .as_str()
                .or(a["http"]["hostname"].as_str())
                .unwrap_or_default()
                .to_string();
            (a["alert"]["signature"].as_str().unwrap().to_string(), name)
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

const LIST: &str = "targets: [.allowed.test], target_types: [tls_sni, http_host]";

/// The policy: the list as NFW compiles it; an allow list under the app-layer default
/// action (what the list does not pass is dropped once the name is known), a deny list with
/// no default action (what it does not drop passes).
fn policy_text(kind: &str) -> String {
    let defaults = if kind == "allowlist" {
        "default_actions: [aws:drop_established_app_layer]\n"
    } else {
        ""
    };
    format!(
        "engine_profile: suricata-8\nrule_order: strict\n{defaults}\
         variables:\n  HOME_NET: [10.0.0.0/24]\n  EXTERNAL_NET: any\n\
         rule_groups:\n  - name: names\n    domain_list: {{{LIST}, type: {kind}}}\n  \
         - name: handshake\n    rules_text: |\n      \
         pass tcp $HOME_NET any -> any [80,443] (msg:\"tcp setup\"; flow:not_established; sid:9; rev:1;)\n"
    )
}

#[test]
fn allowlist_and_denylist_by_sni_and_host_inline() {
    if !lab::require_tools(&["openssl", "curl", "python3", "iptables"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    tls_server(&mut lab);
    inline::http_server(&mut lab, 80);
    lab.queue_iptables("0", false);

    // Allow list.
    let policy = inline::policy(&lab, "allow.yaml", &policy_text("allowlist"));
    let fw = inline::start(
        &mut lab,
        "allow",
        &["--policy", &policy.display().to_string(), "--queue", "0"],
    );
    for scheme in ["https", "http"] {
        for name in ["www.allowed.test", "allowed.test"] {
            let got = fetch(&lab, scheme, name, &[]);
            assert!(
                got.is_ok_and(|n| n > 0),
                "{scheme}://{name} blocked ({got:?}):\n{}",
                fw.log()
            );
        }
        for name in ["evil.test", "allowed.test.evil"] {
            let got = fetch(&lab, scheme, name, &[]);
            assert!(got.is_err(), "{scheme}://{name} reached the server");
        }
    }
    // Host names compare case-insensitively (curl lower-cases the URL's host, not -H).
    let got = fetch(
        &lab,
        "http",
        "www.allowed.test",
        &["-H", "Host: WWW.Allowed.TEST"],
    );
    assert!(got.is_ok_and(|n| n > 0), "mixed-case Host blocked: {got:?}");
    inline::stop(&mut lab, &fw);
    let events = fw.eve();
    assert_eq!(
        alerts(&events),
        [
            (
                "not matching any HTTP allowlisted FQDNs".to_string(),
                "allowed.test.evil".to_string()
            ),
            (
                "not matching any HTTP allowlisted FQDNs".into(),
                "evil.test".into()
            ),
            (
                "not matching any TLS allowlisted FQDNs".into(),
                "allowed.test.evil".into()
            ),
            (
                "not matching any TLS allowlisted FQDNs".into(),
                "evil.test".into()
            ),
        ],
        "{events:#?}"
    );
    // The allowed names' sessions are in the logs too (what `logs top` counts).
    let snis: Vec<&str> = inline::of(&events, "tls")
        .iter()
        .filter_map(|t| t["tls"]["sni"].as_str())
        .collect();
    assert!(snis.contains(&"www.allowed.test"), "{snis:?}");

    // Deny list: the reverse.
    let policy = inline::policy(&lab, "deny.yaml", &policy_text("denylist"));
    let fw = inline::start(
        &mut lab,
        "deny",
        &[
            "--policy",
            &policy.display().to_string(),
            "--queue",
            "0",
            "--anomalies",
        ],
    );
    // SNI honesty, live: over TLS 1.2 the server's certificate (for *.allowed.test) is
    // visible and does not cover evil.test.
    let got = fetch(&lab, "https", "evil.test", &["--tls-max", "1.2"]);
    assert!(got.is_ok_and(|n| n > 0), "TLS 1.2 to evil.test: {got:?}");
    for scheme in ["https", "http"] {
        let got = fetch(&lab, scheme, "www.allowed.test", &[]);
        assert!(got.is_err(), "{scheme}: denied name reached the server");
        let got = fetch(&lab, scheme, "evil.test", &[]);
        assert!(
            got.is_ok_and(|n| n > 0),
            "{scheme}://evil.test blocked ({got:?}):\n{}\n{:#?}",
            fw.log(),
            fw.eve()
        );
    }
    inline::stop(&mut lab, &fw);
    let events = fw.eve();
    let drops = inline::of(&events, "drop");
    assert!(!drops.is_empty(), "{events:#?}");
    for (sig, name) in alerts(&events) {
        assert_eq!(name, "www.allowed.test", "{sig}");
    }
    let mismatches: Vec<&Value> = inline::of(&events, "anomaly")
        .into_iter()
        .filter(|a| a["anomaly"]["event"] == "SNI_CERT_MISMATCH")
        .collect();
    assert_eq!(mismatches.len(), 1, "{events:#?}");
    let port = mismatches[0]["dest_port"].as_u64();
    assert!(inline::of(&events, "tls")
        .iter()
        .any(|t| t["src_port"].as_u64() == port
            && t["tls"]["sni"] == "evil.test"
            && t["tls"]["version"] == "TLS 1.2"));
}
