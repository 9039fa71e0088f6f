//! Names on the wire, on real captures (tests/fixtures/captures/names, made by
//! scripts/captures/make-name-captures.sh: curl and openssl s_client against openssl s_server,
//! curl and wget against python3's http.server, in network namespaces).
//!
//! * `tls` records agree with tshark's TLS dissector for every connection: SNI, negotiated
//!   version, JA3, JA3S, client ALPNs, and for TLS 1.2 the certificate's serial, validity and
//!   SHA-1 fingerprint; one ClientHello has no SNI and one is split over three segments.
//! * Domain-list rule groups in `--mode inline` replay: an allow list passes listed names
//!   (case-insensitively, `.sekisho.test` covering its subdomains) and drops the rest with
//!   NFW's alert message; a deny list the reverse; the split ClientHello is broken by
//!   `drop_established` and passes under `drop_established_app_layer`.
//! * `--log-format nfw`: alerts carry `event.tls.sni`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use sha1::{Digest, Sha1};

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures/names")
        .join(name)
}

/// tshark's fields for packets matching `filter`, one `Vec` per packet.
fn tshark(file: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args(["-Y", filter, "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Runs `sekisho replay` with `args`; returns the output directory.
fn replay(name: &str, args: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .arg("replay")
        .args(args)
        .arg("--out")
        .arg(dir.path())
        .arg(capture(name))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "replay failed: {stderr}");
    (dir, stderr)
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of<'a>(evs: &'a [Value], t: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["event_type"] == t).collect()
}

/// `tls` records by client port.
fn tls_by_port(evs: &[Value]) -> BTreeMap<u64, Value> {
    of(evs, "tls")
        .into_iter()
        .map(|e| (e["src_port"].as_u64().unwrap(), e["tls"].clone()))
        .collect()
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn version_name(hex: &str) -> &'static str {
    match hex {
        "0x0304" => "TLS 1.3",
        "0x0303" => "TLS 1.2",
        "0x0302" => "TLS 1.1",
        "0x0301" => "TLSv1",
        _ => "UNDETERMINED",
    }
}

#[test]
fn tls_records_match_tshark() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let pcap = capture("tls.pcap");
    let (dir, _) = replay("tls.pcap", &[]);
    let got = tls_by_port(&records(&dir.path().join("eve.json")));

    let hellos = tshark(
        &pcap,
        "tls.handshake.type == 1",
        &[
            "tcp.srcport",
            "tls.handshake.extensions_server_name",
            "tls.handshake.ja3",
            "tls.handshake.extensions_alpn_str",
        ],
    );
    assert_eq!(hellos.len(), 6, "six connections in the capture");
    assert_eq!(got.len(), 6, "one tls record per connection: {got:?}");
    let mut snis = Vec::new();
    for h in &hellos {
        let port: u64 = h[0].parse().unwrap();
        let t = &got[&port];
        let sni = (!h[1].is_empty()).then(|| h[1].clone());
        assert_eq!(s(t, "sni"), sni, "port {port}");
        snis.push(sni);
        assert_eq!(
            t["ja3"]["hash"].as_str(),
            Some(h[2].as_str()),
            "port {port}"
        );
        let alpns: Vec<String> = t
            .get("client_alpns")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        let want: Vec<String> = h[3]
            .split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect();
        assert_eq!(alpns, want, "port {port}");
        // JA4 starts with what the hello shows: TCP, version, SNI or not.
        let ja4 = s(t, "ja4").unwrap();
        assert!(ja4.starts_with('t'), "{ja4}");
        assert_eq!(&ja4[3..4], if t.get("sni").is_some() { "d" } else { "i" });
    }
    // Three SNIs with curl, one without, the split one, the mixed-case one.
    assert!(snis.contains(&None));
    assert!(snis.contains(&Some("split.sekisho.test".into())));
    assert!(snis.contains(&Some("Mixed.Sekisho.TEST".into())));

    let servers = tshark(
        &pcap,
        "tls.handshake.type == 2",
        &[
            "tcp.dstport",
            "tls.handshake.extensions.supported_version",
            "tls.handshake.version",
            "tls.handshake.ja3s",
        ],
    );
    let mut versions = Vec::new();
    for h in &servers {
        let port: u64 = h[0].parse().unwrap();
        let t = &got[&port];
        let v = if h[1].is_empty() { &h[2] } else { &h[1] };
        assert_eq!(
            s(t, "version").as_deref(),
            Some(version_name(v)),
            "port {port}"
        );
        versions.push(version_name(v));
        assert_eq!(
            t["ja3s"]["hash"].as_str(),
            Some(h[3].as_str()),
            "port {port}"
        );
    }
    assert!(versions.contains(&"TLS 1.2") && versions.contains(&"TLS 1.3"));

    // TLS 1.2: the certificate is visible.
    let certs = tshark(
        &pcap,
        "tls.handshake.type == 11",
        &[
            "tcp.dstport",
            "x509af.serialNumber",
            "x509af.utcTime",
            "tls.handshake.certificate",
        ],
    );
    assert_eq!(
        certs.len(),
        1,
        "one TLS 1.2 connection shows its certificate"
    );
    let c = &certs[0];
    let t = &got[&c[0].parse::<u64>().unwrap()];
    let serial = s(t, "serial").unwrap().replace(':', "").to_lowercase();
    assert_eq!(serial.trim_start_matches('0'), c[1].trim_start_matches('0'));
    let times: Vec<String> = c[2]
        .split(',')
        .map(|x| x.trim_end_matches(" (UTC)").replace(' ', "T"))
        .collect();
    assert_eq!(s(t, "notbefore").as_ref(), Some(&times[0]));
    assert_eq!(s(t, "notafter").as_ref(), Some(&times[1]));
    let der: Vec<u8> = (0..c[3].len() / 2)
        .map(|i| u8::from_str_radix(&c[3][2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let fp: Vec<String> = Sha1::digest(&der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(s(t, "fingerprint"), Some(fp.join(":")));
    assert_eq!(
        s(t, "subject").as_deref(),
        Some("C=JP, O=sekisho fixture, CN=sekisho.test")
    );
    assert_eq!(s(t, "issuerdn"), s(t, "subject"), "self-signed");
}

#[test]
fn split_client_hello_spans_segments() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    // The fixture's point: tshark needs three segments to reassemble this ClientHello.
    let rows = tshark(
        &capture("tls.pcap"),
        "tls.handshake.extensions_server_name == \"split.sekisho.test\"",
        &["tcp.segment.count"],
    );
    assert_eq!(rows.len(), 1);
    assert!(rows[0][0].parse::<u32>().unwrap() >= 2, "{rows:?}");
}

const HOME: &str = "variables:\n  HOME_NET: [10.98.0.2/32]\n  EXTERNAL_NET: any\n";

fn policy(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{HOME}{body}")).unwrap();
    p
}

/// Per client port: blocked by a drop (any drop record of the flow) or not.
fn dropped_ports(evs: &[Value]) -> Vec<u64> {
    let mut v: Vec<u64> = of(evs, "drop")
        .into_iter()
        .map(|e| {
            let (sp, dp) = (
                e["src_port"].as_u64().unwrap(),
                e["dest_port"].as_u64().unwrap(),
            );
            if dp == 443 || dp == 80 {
                sp
            } else {
                dp
            }
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Client ports of the capture's TLS connections by SNI (`""`: none).
fn port_of(evs: &[Value], sni: &str) -> u64 {
    *tls_by_port(evs)
        .iter()
        .find(|(_, t)| s(t, "sni").unwrap_or_default() == sni)
        .unwrap_or_else(|| panic!("no tls record for {sni:?}"))
        .0
}

#[test]
fn tls_allowlist_inline_both_default_families() {
    let tmp = tempfile::tempdir().unwrap();
    let list = "rule_groups:\n  - name: web\n    domain_list: {targets: [.sekisho.test, www.gamma.test], target_types: [tls_sni], type: allowlist}\n";
    // Monitor run: every connection's ports, whatever the policy.
    let (all, _) = replay("tls.pcap", &[]);
    let all = records(&all.path().join("eve.json"));
    let port = |sni: &str| port_of(&all, sni);
    let split = port("split.sekisho.test");
    let denied = [port("beta.example.com"), port("")];

    for (defaults, split_breaks) in [
        ("[drop_established]", true),
        ("[drop_established_app_layer]", false),
        ("[drop_established_app_layer_to_server]", false),
    ] {
        let p = policy(
            tmp.path(),
            "allow.yaml",
            &format!("rule_order: strict\ndefault_actions: {defaults}\n{list}"),
        );
        let (dir, _) = replay(
            "tls.pcap",
            &["--policy", p.to_str().unwrap(), "--mode", "inline"],
        );
        let evs = records(&dir.path().join("eve.json"));
        let mut want: Vec<u64> = denied.to_vec();
        if split_breaks {
            want.push(split);
        }
        want.sort();
        assert_eq!(dropped_ports(&evs), want, "{defaults}");
        // The misses alert with NFW's message and carry the tls object.
        let alerts = of(&evs, "alert");
        assert_eq!(alerts.len(), 2, "{defaults}: {alerts:?}");
        for a in &alerts {
            assert_eq!(
                a["alert"]["signature"],
                "not matching any TLS allowlisted FQDNs"
            );
            assert_eq!(a["alert"]["action"], "blocked");
            assert!(denied.contains(&a["src_port"].as_u64().unwrap()));
        }
        assert!(alerts
            .iter()
            .any(|a| a["tls"]["sni"].as_str() == Some("beta.example.com")));
        let tls = tls_by_port(&evs);
        if split_breaks {
            // The first data segment carried no SNI yet and was dropped: the handshake
            // never completes, so no ClientHello was ever parsed.
            let reasons: Vec<&str> = of(&evs, "drop")
                .iter()
                .filter(|e| e["src_port"].as_u64() == Some(split))
                .map(|e| e["drop"]["reason"].as_str().unwrap())
                .collect();
            assert!(!reasons.is_empty() && reasons.iter().all(|r| *r == "default action"));
            assert!(!tls.contains_key(&split));
        } else {
            assert_eq!(
                s(&tls[&split], "sni").as_deref(),
                Some("split.sekisho.test")
            );
        }
    }
}

#[test]
fn tls_denylist_action_order_and_nfw_log() {
    let tmp = tempfile::tempdir().unwrap();
    let p = policy(
        tmp.path(),
        "deny.yaml",
        "rule_groups:\n  - name: deny\n    domain_list: {targets: [.SEKISHO.test], target_types: [tls_sni], type: denylist}\n",
    );
    let (all, _) = replay("tls.pcap", &[]);
    let all = records(&all.path().join("eve.json"));
    let mut want = vec![
        port_of(&all, "alpha.sekisho.test"),
        port_of(&all, "split.sekisho.test"),
        port_of(&all, "Mixed.Sekisho.TEST"),
    ];
    want.sort();
    let (dir, _) = replay(
        "tls.pcap",
        &["--policy", p.to_str().unwrap(), "--mode", "inline"],
    );
    let evs = records(&dir.path().join("eve.json"));
    assert_eq!(dropped_ports(&evs), want);
    for a in of(&evs, "alert") {
        assert_eq!(a["alert"]["signature"], "matching TLS denylisted FQDNs");
    }
    // NFW envelope: the alert carries event.tls.sni, as in AWS's alert logs.
    let (dir, _) = replay(
        "tls.pcap",
        &[
            "--policy",
            p.to_str().unwrap(),
            "--mode",
            "inline",
            "--log-format",
            "nfw",
        ],
    );
    let alerts = records(&dir.path().join("alert.log"));
    let mut snis: Vec<String> = alerts
        .iter()
        .map(|a| a["event"]["tls"]["sni"].as_str().unwrap().to_string())
        .collect();
    snis.sort();
    assert_eq!(
        snis,
        [
            "Mixed.Sekisho.TEST",
            "alpha.sekisho.test",
            "split.sekisho.test"
        ]
    );
    assert!(alerts
        .iter()
        .all(|a| a["event"]["tls"]["version"] == "TLS 1.3" && a["event"]["app_proto"] == "tls"));
}

/// `http` records by (client port, tx_id).
fn http_records(evs: &[Value]) -> Vec<(u64, u64, Value)> {
    let mut v: Vec<(u64, u64, Value)> = of(evs, "http")
        .into_iter()
        .map(|e| {
            (
                e["src_port"].as_u64().unwrap(),
                e["tx_id"].as_u64().unwrap(),
                e["http"].clone(),
            )
        })
        .collect();
    v.sort_by_key(|(p, t, _)| (*p, *t));
    v
}

#[test]
fn http_records_match_tshark() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let pcap = capture("http.pcap");
    let (dir, _) = replay("http.pcap", &[]);
    let got = http_records(&records(&dir.path().join("eve.json")));
    let reqs = tshark(
        &pcap,
        "http.request",
        &[
            "tcp.srcport",
            "http.request.method",
            "http.host",
            "http.request.uri",
            "http.user_agent",
        ],
    );
    let resps = tshark(
        &pcap,
        "http.response",
        &["tcp.dstport", "http.response.code", "http.content_length"],
    );
    assert_eq!(reqs.len(), 5, "five requests in the capture");
    assert_eq!(got.len(), reqs.len(), "{got:?}");
    // Requests in capture order per connection = tx_id order (keep-alive: two on one).
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    for (r, resp) in reqs.iter().zip(&resps) {
        let port: u64 = r[0].parse().unwrap();
        let tx = *seen.entry(port).and_modify(|t| *t += 1).or_insert(0);
        let h = &got
            .iter()
            .find(|(p, t, _)| *p == port && *t == tx)
            .unwrap_or_else(|| panic!("no http record for {port} tx {tx}"))
            .2;
        assert_eq!(s(h, "http_method").as_deref(), Some(r[1].as_str()));
        // Suricata's hostname is lower-cased (and the absolute URI's host when there is one).
        assert_eq!(s(h, "hostname"), Some(r[2].to_lowercase()));
        assert_eq!(s(h, "url").as_deref(), Some(r[3].as_str()));
        assert_eq!(s(h, "http_user_agent").as_deref(), Some(r[4].as_str()));
        assert_eq!(resp[0], r[0]);
        assert_eq!(h["status"].as_u64().unwrap().to_string(), resp[1]);
        assert_eq!(h["length"].as_u64().unwrap().to_string(), resp[2]);
    }
    assert_eq!(
        seen.values().max(),
        Some(&1),
        "two requests on one connection"
    );
}

#[test]
fn http_buffers_and_legacy_modifiers_match() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("http.rules");
    std::fs::write(
        &rules,
        r#"alert http any any -> any any (msg:"normalised uri"; http.uri; content:"/a/missing"; startswith; sid:1;)
alert http any any -> any any (msg:"raw uri"; http.uri.raw; content:"/./b/../"; sid:2;)
alert http any any -> any any (msg:"legacy"; content:"POST"; http_method; content:"/form"; http_uri; sid:3;)
alert http any any -> any any (msg:"host"; http.host; content:"other.example"; bsize:13; sid:4;)
alert http any any -> any any (msg:"header names"; http.header_names; content:"|0d 0a|Host|0d 0a|"; sid:5;)
alert http any any -> any any (msg:"ua"; http.user_agent; content:"Wget/"; startswith; sid:6;)
alert http any any -> any any (msg:"status"; flow:to_client; http.stat_code; content:"501"; sid:7;)
alert http any any -> any any (msg:"request line"; http.request_line; content:"GET http://proxy.example.net/path HTTP/1.1"; bsize:42; sid:8;)
"#,
    )
    .unwrap();
    let (dir, stderr) = replay("http.pcap", &["--rules", rules.to_str().unwrap()]);
    assert!(!stderr.contains("not loaded"), "{stderr}");
    let evs = records(&dir.path().join("eve.json"));
    let mut sids: Vec<u64> = of(&evs, "alert")
        .iter()
        .map(|a| a["alert"]["signature_id"].as_u64().unwrap())
        .collect();
    sids.sort();
    // sid 5 matches every request.
    assert_eq!(sids, vec![1, 2, 3, 4, 5, 5, 5, 5, 5, 6, 7, 8]);
    for a in of(&evs, "alert") {
        assert!(a["http"]["hostname"].is_string(), "{a}");
    }
}

#[test]
fn http_and_tls_allowlist_inline() {
    let tmp = tempfile::tempdir().unwrap();
    let p = policy(
        tmp.path(),
        "allow.yaml",
        "rule_order: strict\ndefault_actions: [drop_established]\nrule_groups:\n  - name: web\n    domain_list: {targets: [.sekisho.test], target_types: [tls_sni, http_host], type: allowlist}\n",
    );
    let (dir, _) = replay(
        "http.pcap",
        &["--policy", p.to_str().unwrap(), "--mode", "inline"],
    );
    let evs = records(&dir.path().join("eve.json"));
    let mut blocked: Vec<String> = of(&evs, "alert")
        .iter()
        .map(|a| {
            assert_eq!(
                a["alert"]["signature"],
                "not matching any HTTP allowlisted FQDNs"
            );
            a["http"]["hostname"].as_str().unwrap().to_string()
        })
        .collect();
    blocked.sort();
    assert_eq!(blocked, ["other.example", "proxy.example.net"]);
    // The allowed host's three requests completed (responses seen).
    let ok: Vec<Value> = http_records(&evs)
        .into_iter()
        .map(|(_, _, h)| h)
        .filter(|h| h["hostname"] == "www.sekisho.test")
        .collect();
    assert_eq!(ok.len(), 3);
    assert!(ok.iter().all(|h| h["status"].is_u64()));
    // NFW log: event.http.hostname on the alerts.
    let (dir, _) = replay(
        "http.pcap",
        &[
            "--policy",
            p.to_str().unwrap(),
            "--mode",
            "inline",
            "--log-format",
            "nfw",
        ],
    );
    let alerts = records(&dir.path().join("alert.log"));
    let mut hosts: Vec<&str> = alerts
        .iter()
        .map(|a| a["event"]["http"]["hostname"].as_str().unwrap())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["other.example", "proxy.example.net"]);
}

/// DNS (the dig queries of tests/fixtures/captures/real-eth.pcap, made by
/// scripts/captures/make-captures.sh: A, MX, TXT over UDP, A over TCP, against dnsmasq):
/// one `dns` v3 record per message, equal to tshark's dissection.
#[test]
fn dns_records_match_tshark() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let pcap = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures/real-eth.pcap");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .arg("replay")
        .arg("--out")
        .arg(dir.path())
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(out.status.success());
    let evs = records(&dir.path().join("eve.json"));
    let got: Vec<&Value> = of(&evs, "dns");
    let rows = tshark(
        &pcap,
        "dns",
        &[
            "dns.id",
            "dns.flags.response",
            "dns.qry.name",
            "dns.qry.type",
            "dns.count.answers",
            "dns.flags.rcode",
            "udp.srcport",
            "tcp.srcport",
        ],
    );
    assert!(rows.len() >= 8, "{rows:?}");
    assert_eq!(got.len(), rows.len(), "one record per message");
    for r in &rows {
        let id: u64 = r[0]
            .parse::<u64>()
            .unwrap_or_else(|_| u64::from_str_radix(r[0].trim_start_matches("0x"), 16).unwrap());
        let response = r[1] == "1" || r[1] == "True";
        let d = got
            .iter()
            .map(|e| &e["dns"])
            .find(|d| d["id"].as_u64() == Some(id) && (d["type"] == "response") == response)
            .unwrap_or_else(|| panic!("no dns record for id {id} response {response}"));
        assert_eq!(d["version"], 3);
        assert_eq!(d["queries"][0]["rrname"].as_str(), Some(r[2].as_str()));
        let answers = d
            .get("answers")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        assert_eq!(answers.to_string(), r[4], "answers of {id}");
        if response {
            let rcode = match r[5].as_str() {
                "0" => "NOERROR",
                "3" => "NXDOMAIN",
                "5" => "REFUSED",
                other => other,
            };
            assert_eq!(d["rcode"].as_str(), Some(rcode));
        }
    }
    // Requests come from the client, responses from the server (port 53).
    for e in &got {
        let from_server = e["src_port"] == 53;
        assert_eq!(from_server, e["dns"]["type"] == "response", "{e}");
    }
}

#[test]
fn dns_query_rules_match() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("dns.rules");
    std::fs::write(
        &rules,
        r#"alert dns any any -> any any (msg:"query over tcp"; dns.query; content:"mail.example.test"; bsize:17; sid:1;)
alert dns any any -> any any (msg:"any example.test"; dns.query; dotprefix; content:".example.test"; endswith; sid:2;)
alert dns any any -> any any (msg:"answer"; dns.answers.rrname; content:"www.example.test"; sid:3;)
"#,
    )
    .unwrap();
    let pcap = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures/real-eth.pcap");
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .arg("replay")
        .arg("--rules")
        .arg(&rules)
        .arg("--out")
        .arg(tmp.path())
        .arg(&pcap)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("not loaded"),
        "{stderr}"
    );
    let evs = records(&tmp.path().join("eve.json"));
    let mut sids: Vec<u64> = of(&evs, "alert")
        .iter()
        .map(|a| a["alert"]["signature_id"].as_u64().unwrap())
        .collect();
    sids.sort();
    // Four queries (www, example.test MX, TXT, mail over TCP): dns.query only sees requests.
    assert_eq!(sids, vec![1, 2, 2, 2, 2, 3]);
}

/// SNI honesty: the ClientHello without SNI shows as an app-layer anomaly (`SNI_ABSENT`), so
/// an allow list's blind spot is in the logs.
#[test]
fn client_hello_without_sni_is_an_event() {
    let (dir, _) = replay("tls.pcap", &["--anomalies"]);
    let evs = records(&dir.path().join("eve.json"));
    let no_sni = port_of(&evs, "");
    let anomalies: Vec<&Value> = of(&evs, "anomaly")
        .into_iter()
        .filter(|a| a["anomaly"]["app_proto"] == "tls")
        .filter(|a| a["anomaly"]["event"] == "SNI_ABSENT")
        .collect();
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    assert_eq!(anomalies[0]["src_port"].as_u64(), Some(no_sni));
    // The one TLS 1.2 connection (Beta.Example.COM to a sekisho.test certificate) also
    // shows that its SNI is not the certificate's name.
    let mismatch: Vec<u64> = of(&evs, "anomaly")
        .into_iter()
        .filter(|a| a["anomaly"]["event"] == "SNI_CERT_MISMATCH")
        .map(|a| a["dest_port"].as_u64().unwrap())
        .collect();
    assert_eq!(mismatch, [port_of(&evs, "beta.example.com")]);
}

/// SNI honesty: with TLS ≤ 1.2 the server certificate is visible, and an SNI it does not
/// cover raises `SNI_CERT_MISMATCH` (tests/fixtures/captures/names/tls-certs.pcap, made by
/// scripts/captures/make-cert-captures.sh: curl and openssl s_client against two openssl
/// s_servers, one certificate with SANs `sekisho.test, *.sekisho.test`, one with only
/// `CN=mail.cn.test`). Over TLS 1.3 the certificate is encrypted: nothing is raised.
#[test]
fn sni_not_covered_by_the_certificate_is_an_event() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let pcap = capture("tls-certs.pcap");
    // The certificates are what the script says (tshark's X.509 dissection).
    let sans = tshark(
        &pcap,
        "tls.handshake.type == 11",
        &["tcp.dstport", "x509ce.dNSName"],
    );
    assert_eq!(
        sans.len(),
        7,
        "seven TLS 1.2 connections show a certificate: {sans:?}"
    );
    let (dir, _) = replay("tls-certs.pcap", &["--anomalies"]);
    let evs = records(&dir.path().join("eve.json"));
    let tls = tls_by_port(&evs);
    assert_eq!(tls.len(), 8);
    let mut flagged: Vec<(String, String)> = of(&evs, "anomaly")
        .iter()
        .filter(|a| a["anomaly"]["app_proto"] == "tls")
        .map(|a| {
            assert_eq!(a["anomaly"]["event"], "SNI_CERT_MISMATCH");
            let port = a["dest_port"].as_u64().unwrap();
            let t = &tls[&port];
            (s(t, "sni").unwrap(), s(t, "version").unwrap())
        })
        .collect();
    flagged.sort();
    assert_eq!(
        flagged,
        [
            ("a.b.sekisho.test".to_string(), "TLS 1.2".to_string()),
            ("other.example".into(), "TLS 1.2".into()),
            ("www.cn.test".into(), "TLS 1.2".into()),
        ]
    );
    // Covered: the wildcard, the apex, the name in another case, the CN without SANs.
    for ok in [
        "alpha.sekisho.test",
        "sekisho.test",
        "WWW.SEKISHO.TEST",
        "mail.cn.test",
    ] {
        assert!(
            tls.values().any(|t| s(t, "sni").as_deref() == Some(ok)),
            "{ok}"
        );
    }
    // The TLS 1.3 connection to other.example is not flagged: its certificate is encrypted.
    assert!(tls
        .values()
        .any(|t| s(t, "sni").as_deref() == Some("other.example")
            && s(t, "version").as_deref() == Some("TLS 1.3")));
}

/// STARTTLS: after the server's 220 to STARTTLS the SMTP parser hands the flow to the TLS
/// parser (tests/fixtures/captures/smtp/starttls.pcap: swaks --tls against Postfix). The
/// session is logged as both: the `smtp` record with the EHLO name, then a `tls` record whose
/// JA3 and version equal tshark's; the flow is `tls`, was `smtp`; TLS rules match it.
#[test]
fn starttls_hands_the_session_to_tls() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let pcap = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures/smtp/starttls.pcap");
    let hello = tshark(&pcap, "tls.handshake.type == 1", &["tls.handshake.ja3"]);
    let server = tshark(
        &pcap,
        "tls.handshake.type == 2",
        &[
            "tls.handshake.extensions.supported_version",
            "tls.handshake.ja3s",
        ],
    );
    assert_eq!((hello.len(), server.len()), (1, 1));
    let ja3 = &hello[0][0];
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("tls.rules");
    std::fs::write(
        &rules,
        format!(
            "alert tls any any -> any 25 (msg:\"ja3 over starttls\"; ja3.hash; content:\"{ja3}\"; sid:1;)\n\
             alert tls any any -> any 25 (msg:\"tls 1.3 over starttls\"; tls.version:1.3; sid:2;)\n"
        ),
    )
    .unwrap();
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .arg("replay")
        .arg("--rules")
        .arg(&rules)
        .arg("--out")
        .arg(tmp.path())
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = records(&tmp.path().join("eve.json"));
    let smtp = of(&evs, "smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["smtp"]["helo"], "client.example");
    let tls = of(&evs, "tls");
    assert_eq!(tls.len(), 1, "{evs:?}");
    assert_eq!(tls[0]["tls"]["ja3"]["hash"].as_str(), Some(ja3.as_str()));
    assert_eq!(
        tls[0]["tls"]["ja3s"]["hash"].as_str(),
        Some(server[0][1].as_str())
    );
    assert_eq!(
        s(&tls[0]["tls"], "version").as_deref(),
        Some(version_name(&server[0][0]))
    );
    let flow = of(&evs, "flow");
    assert_eq!(flow[0]["app_proto"], "tls");
    assert_eq!(flow[0]["app_proto_orig"], "smtp");
    let mut sids: Vec<u64> = of(&evs, "alert")
        .iter()
        .map(|a| a["alert"]["signature_id"].as_u64().unwrap())
        .collect();
    sids.sort();
    assert_eq!(sids, [1, 2]);
}
