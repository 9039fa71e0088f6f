//! DNS in the packet engine on a real capture of real servers
//! (tests/fixtures/captures/names/dns.pcap, made by scripts/captures/make-dns-captures.sh:
//! dig against dnsmasq and unbound in network namespaces: several answers, AAAA, MX, TXT,
//! CNAME chains, NXDOMAIN with and without an SOA, REFUSED, UDP and TCP).
//!
//! * Every message's `dns` record equals tshark's dissection of it: id, request/response,
//!   opcode, rcode, the questions, and each answer and authority record in order (name,
//!   type, TTL, data: addresses, CNAME targets, MX exchanges, TXT strings, SOA fields).
//! * `dns.opcode`, `dns.rcode` and `dns.rrtype` rules alert on exactly the messages tshark
//!   says carry those values.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn capture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/captures/names/dns.pcap")
}

/// Fields tshark shows per DNS message; a field with several occurrences is a `Vec`.
const FIELDS: &[&str] = &[
    "dns.id",
    "dns.flags.response",
    "dns.flags.opcode",
    "dns.flags.rcode",
    "dns.qry.name",
    "dns.qry.type",
    "dns.count.answers",
    "dns.count.auth_rr",
    "dns.resp.name",
    "dns.resp.type",
    "dns.resp.ttl",
    "dns.a",
    "dns.aaaa",
    "dns.cname",
    "dns.mx.mail_exchange",
    "dns.txt",
    "dns.soa.mname",
    "dns.soa.rname",
    "dns.soa.serial_number",
    "dns.soa.minimum_ttl",
];

/// One tshark row: field name → its occurrences.
struct Row(Vec<Vec<String>>);

impl Row {
    fn all(&self, field: &str) -> &[String] {
        let i = FIELDS.iter().position(|f| *f == field).unwrap();
        &self.0[i]
    }
    fn one(&self, field: &str) -> &str {
        self.all(field).first().map_or("", String::as_str)
    }
    fn num(&self, field: &str) -> u64 {
        let v = self.one(field);
        v.strip_prefix("0x")
            .map(|h| u64::from_str_radix(h, 16).unwrap())
            .unwrap_or_else(|| v.parse().unwrap_or_else(|_| panic!("{field}: {v}")))
    }
}

fn tshark_rows(file: &Path) -> Vec<Row> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-Y", "dns", "-T", "fields", "-E", "aggregator=|"]);
    for f in FIELDS {
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
        .map(|l| {
            Row(l
                .split('\t')
                .map(|f| {
                    f.split('|')
                        .filter(|x| !x.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .collect())
        })
        .collect()
}

fn replay(args: &[&str]) -> (tempfile::TempDir, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .arg("replay")
        .args(args)
        .arg("--out")
        .arg(dir.path())
        .arg(capture())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "replay failed: {stderr}");
    assert!(!stderr.contains("not loaded"), "{stderr}");
    let evs = std::fs::read_to_string(dir.path().join("eve.json"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (dir, evs)
}

fn type_name(code: &str) -> &'static str {
    match code {
        "1" => "A",
        "2" => "NS",
        "5" => "CNAME",
        "6" => "SOA",
        "15" => "MX",
        "16" => "TXT",
        "28" => "AAAA",
        other => panic!("type {other} not in this capture"),
    }
}

fn rcode_name(code: u64) -> &'static str {
    match code {
        0 => "NOERROR",
        3 => "NXDOMAIN",
        5 => "REFUSED",
        other => panic!("rcode {other} not in this capture"),
    }
}

/// The record of the message with wire id `id` and direction `response`.
fn record(evs: &[Value], id: u64, response: bool) -> &Value {
    let found: Vec<&Value> = evs
        .iter()
        .filter(|e| e["event_type"] == "dns")
        .filter(|e| e["dns"]["id"].as_u64() == Some(id))
        .filter(|e| (e["dns"]["type"] == "response") == response)
        .collect();
    assert_eq!(found.len(), 1, "id {id} response {response}: {found:?}");
    found[0]
}

#[test]
fn dns_records_equal_tshark_for_dnsmasq_and_unbound() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let rows = tshark_rows(&capture());
    let (_dir, evs) = replay(&[]);
    assert_eq!(rows.len(), 28, "fourteen queries, fourteen responses");
    assert_eq!(
        evs.iter().filter(|e| e["event_type"] == "dns").count(),
        rows.len(),
        "one dns record per message"
    );

    let mut seen_rcodes = Vec::new();
    let mut longest_chain = 0;
    let mut tcp = 0;
    for r in &rows {
        let id = r.num("dns.id");
        let response = matches!(r.one("dns.flags.response"), "1" | "True");
        let e = record(&evs, id, response);
        let d = &e["dns"];
        let what = format!("id {id} response {response}");
        assert_eq!(d["version"], 3, "{what}");
        if e["proto"] == "TCP" {
            tcp += 1;
        }
        // Oriented like the packet: responses come from port 53.
        assert_eq!(e["src_port"] == 53, response, "{what}");
        assert_eq!(
            d["opcode"].as_u64(),
            Some(r.num("dns.flags.opcode")),
            "{what}"
        );
        if response {
            let rcode = rcode_name(r.num("dns.flags.rcode"));
            assert_eq!(d["rcode"].as_str(), Some(rcode), "{what}");
            seen_rcodes.push(rcode);
        } else {
            assert!(d.get("rcode").is_none(), "{what}");
        }
        // Questions.
        let names = r.all("dns.qry.name");
        let types = r.all("dns.qry.type");
        let queries = d["queries"].as_array().unwrap();
        assert_eq!(queries.len(), names.len(), "{what}");
        for (q, (n, t)) in queries.iter().zip(names.iter().zip(types)) {
            assert_eq!(q["rrname"].as_str(), Some(n.as_str()), "{what}");
            assert_eq!(q["rrtype"].as_str(), Some(type_name(t)), "{what}");
        }
        // Answers then authorities, in wire order: tshark's dns.resp.* list covers both
        // (then the additional OPT record, which EVE leaves out).
        let n_ans = r.num("dns.count.answers") as usize;
        let n_auth = r.num("dns.count.auth_rr") as usize;
        let empty = Vec::new();
        let answers = d.get("answers").and_then(Value::as_array).unwrap_or(&empty);
        let auths = d
            .get("authorities")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        assert_eq!(answers.len(), n_ans, "{what}");
        assert_eq!(auths.len(), n_auth, "{what}");
        // Each type's data in order: the next unused value of its tshark field.
        let mut next = std::collections::HashMap::<&str, usize>::new();
        let mut take = |field: &'static str| -> String {
            let i = next.entry(field).or_default();
            let v = r.all(field)[*i].clone();
            *i += 1;
            v
        };
        let mut cnames = 0;
        for (i, rr) in answers.iter().chain(auths).enumerate() {
            let ctx = format!("{what} record {i}: {rr}");
            assert_eq!(
                rr["rrname"].as_str(),
                Some(r.all("dns.resp.name")[i].as_str()),
                "{ctx}"
            );
            let ty = type_name(&r.all("dns.resp.type")[i]);
            assert_eq!(rr["rrtype"].as_str(), Some(ty), "{ctx}");
            assert_eq!(
                rr["ttl"].as_u64().map(|t| t.to_string()).as_deref(),
                Some(r.all("dns.resp.ttl")[i].as_str()),
                "{ctx}"
            );
            let rdata = rr["rdata"].as_str().map(str::to_string);
            match ty {
                "A" => assert_eq!(rdata, Some(take("dns.a")), "{ctx}"),
                "AAAA" => assert_eq!(rdata, Some(take("dns.aaaa")), "{ctx}"),
                "CNAME" => {
                    cnames += 1;
                    assert_eq!(rdata, Some(take("dns.cname")), "{ctx}")
                }
                "MX" => assert_eq!(rdata, Some(take("dns.mx.mail_exchange")), "{ctx}"),
                "TXT" => assert_eq!(rdata, Some(take("dns.txt")), "{ctx}"),
                "SOA" => {
                    assert!(rdata.is_none(), "{ctx}");
                    let soa = &rr["soa"];
                    assert_eq!(soa["mname"].as_str(), Some(take("dns.soa.mname").as_str()));
                    assert_eq!(soa["rname"].as_str(), Some(take("dns.soa.rname").as_str()));
                    assert_eq!(
                        soa["serial"].as_u64().unwrap().to_string(),
                        take("dns.soa.serial_number")
                    );
                    assert_eq!(
                        soa["minimum"].as_u64().unwrap().to_string(),
                        take("dns.soa.minimum_ttl")
                    );
                }
                other => panic!("{other}"),
            }
        }
        // The CNAME chain reads as a chain: each record's name is the previous target.
        if cnames > 0 {
            for w in answers.windows(2) {
                if w[0]["rrtype"] == "CNAME" {
                    assert_eq!(w[1]["rrname"], w[0]["rdata"], "{what}: chain broken");
                }
            }
            longest_chain = longest_chain.max(cnames);
            // `grouped` lists the data by type.
            assert_eq!(
                d["grouped"]["CNAME"].as_array().map(Vec::len),
                Some(cnames),
                "{what}"
            );
        }
    }
    // The capture holds what the test is about.
    for rc in ["NOERROR", "NXDOMAIN", "REFUSED"] {
        assert!(seen_rcodes.contains(&rc), "{rc} missing: {seen_rcodes:?}");
    }
    assert_eq!(longest_chain, 2, "dnsmasq's alias -> mid -> www chain");
    assert_eq!(tcp, 6, "three queries over TCP");
}

/// The header keywords alert on exactly the messages tshark shows with those values.
#[test]
fn dns_opcode_rcode_rrtype_keywords_match_tshark() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let rows = tshark_rows(&capture());
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("dns.rules");
    std::fs::write(
        &rules,
        r#"alert dns any any -> any any (msg:"nxdomain by name"; dns.rcode:nxdomain; sid:1;)
alert dns any any -> any any (msg:"refused by number"; dns.rcode:5; sid:2;)
alert dns any any -> any any (msg:"any error"; flow:to_client; dns.rcode:!0; sid:3;)
alert dns any any -> any any (msg:"mx questions"; dns.rrtype:MX; sid:4;)
alert dns any any -> any any (msg:"aaaa requests"; flow:to_server; dns.rrtype:28; sid:5;)
alert dns any any -> any any (msg:"A..CNAME exclusive"; dns.rrtype:0-6; sid:6;)
alert dns any any -> any any (msg:"not a query"; dns.opcode:!0; sid:7;)
alert dns any any -> any any (msg:"standard query"; dns.opcode:0; dns.rrtype:>=16; sid:8;)
alert dns any any -> any any (msg:"rcode and a name"; dns.rcode:3; dns.query; content:"ub.test"; endswith; sid:9;)
alert dns any any -> any any (msg:"response rcode and answer"; dns.rcode:0; dns.answers.rrname; content:"www.dm.test"; sid:10;)
"#,
    )
    .unwrap();
    let (_dir, evs) = replay(&["--rules", rules.to_str().unwrap()]);
    let count = |sid: u64| {
        evs.iter()
            .filter(|e| e["event_type"] == "alert")
            .filter(|e| e["alert"]["signature_id"].as_u64() == Some(sid))
            .count()
    };
    let resp = |r: &Row| matches!(r.one("dns.flags.response"), "1" | "True");
    let want = |f: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| f(r)).count();
    let qtype = |r: &Row| r.num("dns.qry.type");
    let expected = [
        (1, want(&|r| resp(r) && r.num("dns.flags.rcode") == 3)),
        (2, want(&|r| resp(r) && r.num("dns.flags.rcode") == 5)),
        (3, want(&|r| resp(r) && r.num("dns.flags.rcode") != 0)),
        (4, want(&|r| qtype(r) == 15)),
        (5, want(&|r| !resp(r) && qtype(r) == 28)),
        (6, want(&|r| qtype(r) > 0 && qtype(r) < 6)),
        (7, want(&|r| r.num("dns.flags.opcode") != 0)),
        (
            8,
            want(&|r| r.num("dns.flags.opcode") == 0 && qtype(r) >= 16),
        ),
        // dns.query reads requests only; a request's rcode is 0: no alert.
        (9, 0),
        (
            10,
            want(&|r| {
                resp(r)
                    && r.num("dns.flags.rcode") == 0
                    && r.all("dns.resp.name").iter().any(|n| n == "www.dm.test")
            }),
        ),
    ];
    for (sid, n) in expected {
        assert_eq!(count(sid), n, "sid {sid}");
    }
    // The capture exercises them: errors, MX, AAAA and A questions are all present.
    assert!(
        expected.iter().filter(|(_, n)| *n > 0).count() >= 7,
        "{expected:?}"
    );
}

/// A value the keyword cannot take fails the load with the keyword named.
#[test]
fn dns_keyword_bad_value_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("bad.rules");
    std::fs::write(
        &rules,
        "drop dns any any -> any any (msg:\"bad\"; dns.rcode:bogus; sid:1;)\n",
    )
    .unwrap();
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .args(["check"])
        .arg(&rules)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("dns.rcode") && stderr.contains("bogus"),
        "{stderr}"
    );
}
