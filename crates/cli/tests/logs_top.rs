//! `sekisho logs top` on sekisho's own logs of real captures (tests/fixtures/captures/names:
//! curl/wget/openssl against real servers, dig against dnsmasq and unbound): the counts
//! equal what tshark counts in the same captures (SNIs of ClientHellos, Host headers of
//! requests, names of DNS questions), over EVE and NFW logs, files and stdin, as a table,
//! JSON and CSV.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures/names")
        .join(name)
}

/// tshark's values of `field` in packets matching `filter`, counted (lower-cased when
/// `lower`).
fn tshark_counts(
    files: &[PathBuf],
    filter: &str,
    field: &str,
    lower: bool,
) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for f in files {
        let out = Command::new("tshark")
            .arg("-r")
            .arg(f)
            .args(["-Y", filter, "-T", "fields", "-e", field])
            .output()
            .unwrap();
        assert!(out.status.success());
        for l in String::from_utf8(out.stdout).unwrap().lines() {
            if l.is_empty() {
                continue;
            }
            let v = if lower {
                l.to_lowercase()
            } else {
                l.to_string()
            };
            *m.entry(v).or_default() += 1;
        }
    }
    m
}

fn replay(pcap: &Path, out: &Path, args: &[&str]) {
    let o = Command::cargo_bin("sekisho")
        .unwrap()
        .arg("replay")
        .args(args)
        .arg("--out")
        .arg(out)
        .arg(pcap)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Runs `sekisho logs top ARGS` (with `stdin` fed when given); (status, stdout, stderr).
fn top(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let mut child = Command::cargo_bin("sekisho")
        .unwrap()
        .args(["logs", "top"])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

/// The JSON report's rows as a map.
fn rows(json: &str) -> (Value, BTreeMap<String, u64>) {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let m = v["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["value"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    (v, m)
}

#[test]
fn top_snis_hosts_and_dns_names_equal_tshark_counts() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Two replays of the TLS capture (two log files, every SNI twice), one of HTTP, one of
    // DNS.
    let (a, b, h, d) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("h"),
        tmp.path().join("d"),
    );
    replay(&capture("tls.pcap"), &a, &[]);
    replay(&capture("tls.pcap"), &b, &[]);
    replay(&capture("http.pcap"), &h, &[]);
    replay(&capture("dns.pcap"), &d, &[]);
    let tls = capture("tls.pcap");
    let want = tshark_counts(
        &[tls.clone(), tls],
        "tls.handshake.type == 1",
        "tls.handshake.extensions_server_name",
        false,
    );
    assert_eq!(want.len(), 5, "{want:?}");
    let eve = |d: &Path| d.join("eve.json").display().to_string();
    // The default field, both files; alerts would not double-count (none here).
    let (code, out, err) = top(&["--format", "json", &eve(&a), &eve(&b)], None);
    assert_eq!(code, 0, "{err}");
    let (v, got) = rows(&out);
    assert_eq!(got, want);
    assert_eq!(v["field"], "tls.sni");
    assert_eq!(v["counted"], "tls records");
    // One connection had no SNI: 12 tls records, 10 with a name.
    assert_eq!(v["matched"], 10);

    // The table: most frequent first, then by name; --limit.
    let (code, out, _) = top(&["tls.sni", "--limit", "2", &eve(&a), &eve(&b)], None);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["access_count", "tls.sni"]
    );
    let mut sorted: Vec<(&String, &u64)> = want.iter().collect();
    sorted.sort_by(|x, y| y.1.cmp(x.1).then_with(|| x.0.cmp(y.0)));
    for (line, (name, n)) in lines[1..3].iter().zip(&sorted) {
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>(),
            [n.to_string().as_str(), name]
        );
    }
    assert!(lines[3].starts_with("# "), "{out}");

    // HTTP hosts (EVE lower-cases them) from stdin, as CSV.
    let want = tshark_counts(&[capture("http.pcap")], "http.request", "http.host", true);
    let data = std::fs::read(h.join("eve.json")).unwrap();
    let (code, out, _) = top(&["host", "--format", "csv", "-"], Some(&data));
    assert_eq!(code, 0);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("http.hostname,access_count"));
    let got: BTreeMap<String, u64> = lines
        .map(|l| {
            let (v, n) = l.rsplit_once(',').unwrap();
            (v.to_string(), n.parse().unwrap())
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.get("www.sekisho.test"), Some(&3), "keep-alive requests");

    // DNS question names: requests only, so each lookup counts once.
    let want = tshark_counts(
        &[capture("dns.pcap")],
        "dns.flags.response == 0",
        "dns.qry.name",
        false,
    );
    let (_, out, _) = top(
        &["dns.rrname", "--format", "json", "--limit", "100", &eve(&d)],
        None,
    );
    assert_eq!(rows(&out).1, want);
    // --where: the names that got NXDOMAIN (responses, by the full path).
    let want = tshark_counts(
        &[capture("dns.pcap")],
        "dns.flags.rcode == 3",
        "dns.qry.name",
        false,
    );
    let (_, out, _) = top(
        &[
            "dns.queries.rrname",
            "--where",
            "dns.rcode=NXDOMAIN",
            "--format",
            "json",
            &eve(&d),
        ],
        None,
    );
    assert_eq!(rows(&out).1, want);
    assert_eq!(want.len(), 2, "dnsmasq's and unbound's NXDOMAIN");
}

/// The issue's CloudWatch query on NFW alert logs: `event.tls.sni` of the blocked
/// connections of an allow list in inline replay.
#[test]
fn top_on_nfw_alert_log() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("allow.yaml");
    std::fs::write(
        &policy,
        "variables:\n  HOME_NET: [10.98.0.2/32]\n  EXTERNAL_NET: any\nrule_order: strict\ndefault_actions: [drop_established_app_layer]\nrule_groups:\n  - name: web\n    domain_list: {targets: [.sekisho.test], target_types: [tls_sni], type: allowlist}\n",
    )
    .unwrap();
    let out = tmp.path().join("nfw");
    replay(
        &capture("tls.pcap"),
        &out,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--mode",
            "inline",
            "--log-format",
            "nfw",
        ],
    );
    let alert_log = out.join("alert.log");
    let blocked: Vec<String> = std::fs::read_to_string(&alert_log)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["event"]["tls"]["sni"].as_str().map(str::to_string)
        })
        .collect();
    assert!(!blocked.is_empty());
    let (code, out, err) = top(
        &[
            "event.tls.sni",
            "--format",
            "json",
            alert_log.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (v, got) = rows(&out);
    assert_eq!(
        v["counted"], "records",
        "NFW alert logs have no tls records"
    );
    let mut want = BTreeMap::new();
    for s in blocked {
        *want.entry(s).or_insert(0u64) += 1;
    }
    assert_eq!(got, want);
    assert!(got.keys().all(|s| !s.ends_with(".sekisho.test")), "{got:?}");
}

#[test]
fn bad_input_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("mixed.json");
    std::fs::write(
        &log,
        "{\"event_type\":\"tls\",\"tls\":{\"sni\":\"a.test\"}}\nnot json\n{\"event_type\":\"tls\",\"tls\":{\"sni\":\"a.test\"}}\n",
    )
    .unwrap();
    let (code, out, err) = top(&[log.to_str().unwrap()], None);
    assert_eq!(code, 0);
    assert!(out.contains("           2  a.test"), "{out}");
    assert!(err.contains("mixed.json:2: skipped 1 line(s)"), "{err}");
    let (code, _, err) = top(&["tls.sni", "/nonexistent/eve.json"], None);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/eve.json"), "{err}");
    let (code, _, err) = top(
        &["tls.sni", "--where", "nonsense", log.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("expected FIELD=VALUE"), "{err}");
}
