//! Property test: random valid rules parse; printing a parsed rule gives canonical text that
//! parses back to an equal AST and prints identically.

use proptest::prelude::*;
use sekisho_rules::{parse_rule, Buffer};

fn action() -> impl Strategy<Value = String> {
    let kind = prop::sample::select(vec![
        "alert",
        "pass",
        "drop",
        "reject",
        "rejectsrc",
        "rejectdst",
        "rejectboth",
        "ALERT",
        "Drop",
    ]);
    let scope = prop::sample::select(vec!["", ":packet", ":flow"]);
    prop_oneof![
        (kind, scope).prop_map(|(k, s)| format!("{k}{s}")),
        prop::sample::select(vec![
            "accept:hook",
            "accept:flow,alert",
            "accept:tx",
            "drop:flow,pass:flow",
            "accept:packet,pass,alert"
        ])
        .prop_map(str::to_string),
    ]
}

fn ipv4() -> impl Strategy<Value = String> {
    any::<[u8; 4]>().prop_map(|b| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]))
}

fn ipv6() -> impl Strategy<Value = String> {
    any::<[u16; 8]>().prop_map(|w| std::net::Ipv6Addr::from(w).to_string())
}

fn addr_leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("any".to_string()),
        ipv4(),
        ipv6(),
        (ipv4(), 0u8..=32).prop_map(|(a, p)| format!("{a}/{p}")),
        (ipv6(), 0u8..=128).prop_map(|(a, p)| format!("{a}/{p}")),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| {
            let (a, b) = (a.min(b), a.max(b));
            format!(
                "{}-{}",
                std::net::Ipv4Addr::from(a),
                std::net::Ipv4Addr::from(b)
            )
        }),
        prop::sample::select(vec!["$HOME_NET", "$EXTERNAL_NET", "$DNS_SERVERS"])
            .prop_map(str::to_string),
    ]
}

fn addr() -> impl Strategy<Value = String> {
    addr_leaf().prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_filter("no !any", |s| s != "any")
                .prop_map(|s| format!("!{s}")),
            prop::collection::vec(inner, 1..4).prop_map(|v| format!("[{}]", v.join(", "))),
        ]
    })
}

fn port_leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("any".to_string()),
        any::<u16>().prop_map(|p| p.to_string()),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| format!("{}:{}", a.min(b), a.max(b))),
        any::<u16>().prop_map(|a| format!("{a}:")),
        any::<u16>().prop_map(|a| format!(":{a}")),
        prop::sample::select(vec!["$HTTP_PORTS", "$SSH_PORTS"]).prop_map(str::to_string),
    ]
}

fn port() -> impl Strategy<Value = String> {
    port_leaf().prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_filter("no !any", |s| s != "any")
                .prop_map(|s| format!("!{s}")),
            prop::collection::vec(inner, 1..4).prop_map(|v| format!("[{}]", v.join(","))),
        ]
    })
}

/// Content bytes written with a random mix of literal, escaped and hex forms.
fn content_value() -> impl Strategy<Value = (String, usize)> {
    prop::collection::vec((any::<u8>(), 0u8..3), 1..24).prop_map(|bytes| {
        let mut s = String::new();
        for (b, how) in &bytes {
            let printable = (0x20..0x7f).contains(b) && *b != b'|';
            match (*b, how) {
                (b'"' | b';' | b'\\' | b':', 0) => {
                    s.push('\\');
                    s.push(*b as char);
                }
                (b'"' | b';' | b'\\', _) => s.push_str(&format!("|{b:02x}|")),
                _ if printable && *how != 2 => s.push(*b as char),
                _ => s.push_str(&format!("|{b:02X}|")),
            }
        }
        (s, bytes.len())
    })
}

fn content() -> impl Strategy<Value = String> {
    (
        content_value(),
        any::<bool>(),
        any::<bool>(),
        0u8..4,
        0usize..100,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|((v, len), neg, nocase, mode, n, ends, fast, raw)| {
            let mut s = format!("content:{}\"{v}\";", if neg { "!" } else { "" });
            if nocase {
                s.push_str(" nocase;");
            }
            match mode {
                1 => s.push_str(&format!(" offset:{n}; depth:{};", len + n)),
                2 => s.push_str(&format!(" distance:{}; within:{};", n as i64 - 50, len + n)),
                3 => s.push_str(" startswith;"),
                _ => {}
            }
            if ends {
                s.push_str(" endswith;");
            }
            if fast {
                s.push_str(" fast_pattern;");
            }
            if raw {
                s.push_str(" rawbytes;");
            }
            s
        })
}

fn other_option() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            "[a-z0-9.()*+?]{1,12}",
            prop::sample::subsequence(vec!["i", "s", "m", "x", "A", "E", "G", "O", "R", "B"], 0..4),
            any::<bool>()
        )
            .prop_map(|(re, fl, neg)| format!(
                "pcre:{}\"/{re}/{}\";",
                if neg { "!" } else { "" },
                fl.concat()
            )),
        prop::sample::subsequence(vec!["established", "to_server", "no_stream"], 1..3)
            .prop_map(|v| format!("flow:{};", v.join(","))),
        (
            prop::sample::select(vec!["set", "unset", "isset", "isnotset", "toggle"]),
            "[a-z_.]{1,8}"
        )
            .prop_map(|(c, n)| format!("flowbits:{c},{n};")),
        Just("flowbits:noalert;".to_string()),
        (
            prop::sample::select(vec!["", "<", ">", "<=", ">=", "!"]),
            0u32..5000
        )
            .prop_map(|(o, n)| format!("bsize:{o}{n};")),
        (0u16..1000, 1u16..1000).prop_map(|(a, b)| format!("dsize:{a}<>{};", a as u32 + b as u32)),
        (any::<bool>(), 0u16..100, any::<bool>()).prop_map(|(n, v, r)| format!(
            "isdataat:{}{v}{};",
            if n { "!" } else { "" },
            if r { ",relative" } else { "" }
        )),
        (
            1u8..=8,
            prop::sample::select(vec!["<", ">", "=", "<=", ">=", "&", "^", "!="]),
            any::<u32>(),
            0u16..100
        )
            .prop_map(|(n, op, v, o)| format!("byte_test:{n},{op},{v},{o},relative,little;")),
        (1u8..=4, 0u16..100)
            .prop_map(|(n, o)| format!("byte_jump:{n},{o},relative,align,post_offset -2;")),
        (
            prop::sample::select(vec!["limit", "threshold", "both"]),
            prop::sample::select(vec!["by_src", "by_dst", "by_rule"]),
            1u32..100,
            1u32..3600
        )
            .prop_map(|(t, tr, c, s)| format!(
                "threshold:type {t}, track {tr}, count {c}, seconds {s};"
            )),
        "[a-zA-Z0-9 ,.()\\[\\]\"\\\\;:-]{1,30}".prop_map(|m| {
            let esc: String = m
                .chars()
                .flat_map(|c| match c {
                    '"' | ';' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            format!("msg:\"{esc}\";")
        }),
        "[a-z-]{1,12}".prop_map(|c| format!("classtype:{c};")),
        (1u16..=255).prop_map(|p| format!("priority:{p};")),
        ("[a-z]{1,5}", "[a-zA-Z0-9./,-]{1,20}").prop_map(|(k, v)| format!("reference:{k},{v};")),
        prop::collection::vec(("[a-z_]{1,8}", "[a-zA-Z0-9_ ]{0,10}"), 1..4).prop_map(|v| {
            let items: Vec<String> = v
                .iter()
                .map(|(k, x)| format!("{k} {}", x.trim()).trim().to_string())
                .collect();
            format!("metadata:{};", items.join(", "))
        }),
        prop::sample::select(vec![
            "noalert;",
            "alert;",
            "target:src_ip;",
            "ja3.hash;",
            "urilen:>10;",
            "stream_size:server,>,5;",
            "app-layer-protocol:!tls,to_server;",
            "app-layer-event:smtp.invalid_reply;",
            "flags:S,12;",
            "flags:!A;",
            "ssl_state:client_hello|!server_hello;",
            "tls.version:1.2;",
            "dotprefix;",
            "to_lowercase;",
            "xor:\"0aff\";",
            "absent;",
            "xbits:set,fw.x,track tx;",
            "detection_filter:track by_src, count 3, seconds 5;",
            "detection_filter:track by_dst, count 3, seconds 5, unique_on src_port;",
            "itype:8;",
            "icode:1<>5;",
        ])
        .prop_map(str::to_string),
    ]
}

fn sticky(proto: &str) -> Vec<&'static str> {
    Buffer::ALL
        .iter()
        .filter(|b| match (proto, b.implied_protocol()) {
            (_, None) => true,
            ("tcp" | "udp" | "ip", Some(_)) => **b != Buffer::HttpHost,
            (p, Some(i)) => p == i && **b != Buffer::HttpHost,
        })
        .map(|b| b.as_str())
        .collect()
}

fn rule_text() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["tcp", "udp", "ip", "smtp", "tls", "dns", "http"]).prop_flat_map(
        |proto| {
            let body = prop::collection::vec(
                prop_oneof![
                    3 => content(),
                    3 => other_option(),
                    1 => prop::sample::select(sticky(proto)).prop_map(|b| format!("{b};")),
                ],
                0..10,
            );
            (
                action(),
                Just(proto),
                addr(),
                port(),
                prop::sample::select(vec!["->", "<>"]),
                addr(),
                port(),
                body,
                1u32..u32::MAX,
            )
                .prop_map(|(a, p, s, sp, d, da, dp, opts, sid)| {
                    // At most one msg, flow and threshold-like option, and one fast_pattern.
                    let mut seen = std::collections::HashSet::new();
                    let mut fast = false;
                    let kept: Vec<String> = opts
                        .into_iter()
                        .filter(|o| {
                            let key = o.split([':', ';']).next().unwrap_or("").to_string();
                            let key = if key == "detection_filter" {
                                "threshold".to_string()
                            } else {
                                key
                            };
                            if matches!(key.as_str(), "msg" | "flow" | "threshold")
                                && !seen.insert(key)
                            {
                                return false;
                            }
                            if o.contains("fast_pattern") {
                                if fast {
                                    return false;
                                }
                                fast = true;
                            }
                            true
                        })
                        .collect();
                    format!(
                        "{a} {p} {s} {sp} {d} {da} {dp} ({} sid:{sid};)",
                        kept.join(" ")
                    )
                })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn print_parse_roundtrip(text in rule_text()) {
        let rule = match parse_rule(&text) {
            Ok(r) => r,
            // The generator combines options freely; these combinations are invalid by design
            // (Suricata rejects them too), so they are skipped rather than avoided.
            Err(d) if matches!(d.code.as_deref(), Some("transform-content" | "dsize-app-buffer")) => {
                prop_assume!(false);
                unreachable!()
            }
            Err(d) => return Err(TestCaseError::fail(format!("generated rule rejected:\n{text}\n{}", d.render()))),
        };
        let printed = rule.to_string();
        if std::env::var_os("SHOW").is_some() { eprintln!("{text}\n=> {printed}\n"); }
        let again = parse_rule(&printed).map_err(|d| TestCaseError::fail(format!("printed rule rejected:\n{printed}\n{}", d.render())))?;
        prop_assert_eq!(&again, &rule, "AST changed:\n{}\n{}", text, printed);
        prop_assert_eq!(again.to_string(), printed);
    }
}
