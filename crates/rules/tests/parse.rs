//! Behaviour of the parser on hand-written rules: typed AST values and rejections.

use std::net::IpAddr;

use sekisho_diag::SourceFile;
use sekisho_rules::*;

fn rule(text: &str) -> Rule {
    parse_rule(text).unwrap_or_else(|d| panic!("{}", d.render()))
}

fn err(text: &str) -> String {
    match parse_rule(text) {
        Ok(r) => panic!("accepted: {r}"),
        Err(d) => d.message,
    }
}

fn contents(r: &Rule) -> Vec<&Content> {
    r.options
        .iter()
        .filter_map(|o| match &o.node {
            RuleOption::Content(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn reference_worked_examples() {
    let r = rule("alert smtp any any -> any any (msg:\"rcpt to evil\"; flow:established,to_server; smtp.rcpt_to; content:\"@evil.example>\"; endswith; nocase; sid:1000001; rev:1;)");
    assert_eq!(r.action.kind(), ActionKind::Alert);
    assert_eq!(r.protocol.kind, ProtoKind::App("smtp".into()));
    assert_eq!((r.sid(), r.rev(), r.gid()), (1000001, 1, 1));
    assert_eq!(r.msg(), Some("rcpt to evil"));
    assert_eq!(
        r.flow(),
        Some(Flow {
            dir: Some(FlowDir::ToServer),
            state: Some(FlowState::Established),
            ..Flow::default()
        })
    );
    assert_eq!(r.buffers(), vec![Buffer::SmtpRcptTo]);
    let c = contents(&r)[0];
    assert_eq!(c.pattern, b"@evil.example>");
    assert!(c.endswith && c.nocase && !c.negated);

    let r = rule("drop smtp $HOME_NET any -> any 25 (msg:\"bad sender\"; smtp.mail_from; content:\"<spammer@\"; startswith; sid:1000002;)");
    assert_eq!(r.src, AddressExpr::Var("HOME_NET".into()));
    assert_eq!(r.dst_port, PortExpr::Port(25));
    assert!(contents(&r)[0].startswith);

    let r = rule(
        "alert tcp any any -> any 25 (msg:\"escaped\"; content:\"a\\;b|3A 20|c\"; sid:1000006;)",
    );
    assert_eq!(contents(&r)[0].pattern, b"a;b: c");
}

#[test]
fn content_decoding() {
    let pat = |v: &str| {
        contents(&rule(&format!(
            "alert tcp any any -> any any (content:{v}; sid:1;)"
        )))[0]
            .pattern
            .clone()
    };
    assert_eq!(pat("\"|4 1|\""), b"A");
    assert_eq!(pat("\"|41,42|\""), b"AB");
    assert_eq!(pat("\"a\\\\b\\\"c\\:\""), b"a\\b\"c:");
    assert_eq!(pat("\"http://x\""), b"http://x");
    assert_eq!(pat("!\"x\""), b"x");
    let r = rule("alert tcp any any -> any any (content: ! \"x\"; sid:1;)");
    assert!(contents(&r)[0].negated);

    let bad = |v: &str| {
        err(&format!(
            "alert tcp any any -> any any (content:{v}; sid:1;)"
        ))
    };
    assert_eq!(bad("\"a\\x\""), "invalid escape '\\x' in content");
    assert_eq!(bad("\"|41\""), "unclosed '|' hex section in content");
    assert_eq!(bad("\"|4|\""), "odd number of hex digits in content");
    assert_eq!(bad("\"|4G|\""), "invalid character 'G' in hex content");
    assert_eq!(bad("\"\""), "empty content");
    assert_eq!(bad("\"a\"b\""), "unescaped '\"' inside content");
    assert_eq!(bad("abc"), "value of 'content' must be in double quotes");
    // Quotes do not protect ';'.
    assert_eq!(
        err("alert tcp any any -> any any (content:\"a;b\"; sid:1;)"),
        "unterminated quote in 'content' value"
    );
    let long = "A".repeat(70000);
    let src = SourceFile::new(
        "l.rules",
        format!("alert tcp any any -> any any (content:\"{long}\"; sid:1;)\n"),
    );
    let f = parse_file(&src);
    assert!(f.rules.is_empty());
    assert_eq!(
        f.diagnostics[0].message,
        "rule is longer than the 8192-byte limit"
    );
}

#[test]
fn content_modifiers_and_validation() {
    let r = rule("alert tcp any any -> any any (content:\"abc\"; offset:3; depth:3; content:\"d\"; distance:-2; within:5; fast_pattern:0,1; sid:1;)");
    let c = contents(&r);
    assert_eq!(
        (c[0].offset.clone(), c[0].depth.clone()),
        (Some(Value::Lit(3)), Some(Value::Lit(3)))
    );
    assert_eq!(c[1].distance, Some(Value::Lit(-2)));
    assert_eq!(c[1].within, Some(Value::Lit(5)));
    assert_eq!(c[1].fast_pattern, Some(FastPattern::Slice(0, 1)));
    assert!(c[1].is_relative());

    let r = rule("alert tcp any any -> any any (byte_extract:2,0,len; content:\"x\"; distance:len; within:len; sid:1;)");
    assert_eq!(contents(&r)[0].distance, Some(Value::Var("len".into())));

    let e = |opts: &str| err(&format!("alert tcp any any -> any any ({opts} sid:1;)"));
    assert_eq!(
        e("content:\"abcd\"; depth:3;"),
        "invalid value for 'depth': depth 3 is smaller than the content length 4"
    );
    assert_eq!(
        e("content:\"abcd\"; within:3;"),
        "invalid value for 'within': within 3 is smaller than the content length 4"
    );
    assert_eq!(
        e("content:\"a\"; depth:5; distance:1;"),
        "'distance' cannot be mixed with depth/offset on the same content"
    );
    assert_eq!(
        e("content:\"a\"; within:5; offset:1;"),
        "'offset' cannot be mixed with distance/within on the same content"
    );
    assert_eq!(
        e("content:\"a\"; startswith; depth:5;"),
        "'depth' cannot be combined with 'startswith'"
    );
    assert_eq!(
        e("content:\"a\"; offset:1; startswith;"),
        "'startswith' cannot be combined with depth, offset, distance or within"
    );
    assert_eq!(e("nocase;"), "'nocase' needs a preceding 'content'");
    assert_eq!(
        e("content:\"a\"; nocase; nocase;"),
        "'nocase' is given twice for the same content"
    );
    assert_eq!(e("content:\"a\"; distance:nope;"), "invalid value for 'distance': 'nope' is neither a number nor a byte_extract/byte_math variable defined earlier");
    assert_eq!(
        e("content:\"a\"; fast_pattern; content:\"b\"; fast_pattern;"),
        "'fast_pattern' can be used on only one content per rule"
    );
    assert_eq!(
        e("content:\"a\"; nocase:1;"),
        "keyword 'nocase' takes no value"
    );
    assert_eq!(e("content:\"a\"; depth;"), "keyword 'depth' needs a value");
}

#[test]
fn legacy_modifiers_and_sticky_buffers() {
    let r = rule("alert tcp any any -> any any (content:\"/a\"; http_uri; nocase; uricontent:\"b\"; tls_sni; content:\"x\"; file_data; content:\"y\"; dns_query; sid:1;)");
    let c = contents(&r);
    assert_eq!(c[0].buffer, Some(Buffer::HttpUri));
    assert!(c[0].nocase);
    assert_eq!(c[1].buffer, Some(Buffer::HttpUri));
    assert!(r
        .options
        .iter()
        .any(|o| o.node == RuleOption::Buffer(Buffer::TlsSni)));
    assert_eq!(
        r.buffers(),
        vec![
            Buffer::HttpUri,
            Buffer::TlsSni,
            Buffer::FileData,
            Buffer::DnsQuery
        ]
    );
    assert_eq!(
        err("alert tcp any any -> any any (content:\"a\"; http_uri; http_uri; sid:1;)"),
        "'http_uri' is given twice for the same content"
    );
    assert_eq!(
        err("alert tls any any -> any any (smtp.helo; content:\"a\"; sid:1;)"),
        "buffer 'smtp.helo' belongs to protocol 'smtp' but the rule is for 'tls'"
    );
    // Transforms are typed and ordered.
    let r = rule("alert dns any any -> any any (dns.query; dotprefix; to_lowercase; xor:\"0a0b\"; content:\".example.com\"; endswith; sid:1;)");
    let t: Vec<&Transform> = r
        .options
        .iter()
        .filter_map(|o| match &o.node {
            RuleOption::Transform(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(
        t,
        vec![
            &Transform::DotPrefix,
            &Transform::ToLowercase,
            &Transform::Xor(vec![10, 11])
        ]
    );
    // Direction-qualified buffers in transactional rules.
    let r = rule("alert http any any => any any (http.uri; content:\"/d\"; http.connection:to_client; content:\"eep\"; sid:1;)");
    assert_eq!(r.direction, Direction::Transactional);
    assert!(r.options.iter().any(|o| o.node
        == RuleOption::BufferDir {
            buffer: Buffer::HttpConnection,
            dir: FlowDir::ToClient
        }));
}

#[test]
fn pcre_is_typed() {
    let r = rule("alert http any any -> any any (pcre:!\"/a\\;b(c)/smiUR, flow:x, pkt:y\"; pcre:/one/R; sid:1;)");
    let ps: Vec<&Pcre> = r
        .options
        .iter()
        .filter_map(|o| match &o.node {
            RuleOption::Pcre(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(ps[0].pattern, "a\\;b(c)");
    assert!(ps[0].negated && ps[0].flags.dotall && ps[0].flags.multiline && ps[0].flags.caseless);
    assert!(ps[0].flags.relative);
    assert_eq!(ps[0].buffer, Some(Buffer::HttpUri));
    assert_eq!(
        ps[0].captures,
        vec!["flow:x".to_string(), "pkt:y".to_string()]
    );
    assert!(ps[1].flags.relative && !ps[1].negated);
    assert_eq!(
        err("alert tcp any any -> any any (pcre:\"/a/q\"; sid:1;)"),
        "invalid value for 'pcre': unknown pcre flag 'q'"
    );
    assert_eq!(
        err("alert tcp any any -> any any (pcre:\"/a/UH\"; sid:1;)"),
        "invalid value for 'pcre': more than one buffer flag"
    );
}

#[test]
fn byte_keywords_isdataat_sizes() {
    let r = rule("alert tcp any any -> any any (content:\"a\"; byte_extract:2,0,n,relative,little; byte_test:4,!&,0x10,n,relative,big,bitmask 0xff; byte_jump:n,0,relative,multiplier 2,post_offset -1,from_beginning; byte_math:bytes 2,offset 0,oper +,rvalue n,result m,endian big; isdataat:!1,relative; bsize:1<>10; dsize:>=3; sid:1;)");
    let mut seen = 0;
    for o in &r.options {
        match &o.node {
            RuleOption::ByteExtract(b) => {
                assert_eq!((b.nbytes, b.offset, b.name.as_str()), (2, 0, "n"));
                assert_eq!(b.opts.endian, Some(Endian::Little));
                seen += 1;
            }
            RuleOption::ByteTest(b) => {
                assert_eq!(b.nbytes, Value::Lit(4));
                assert!(b.negated);
                assert_eq!(b.op, ByteTestOp::And);
                assert_eq!(b.value, Value::Lit(16));
                assert_eq!(b.offset, Value::Var("n".into()));
                assert_eq!(b.opts.bitmask, Some(255));
                seen += 1;
            }
            RuleOption::ByteJump(b) => {
                assert_eq!(b.nbytes, Value::Var("n".into()));
                assert_eq!(
                    (b.multiplier, b.post_offset, b.from_beginning),
                    (Some(2), Some(-1), true)
                );
                seen += 1;
            }
            RuleOption::ByteMath(b) => {
                assert_eq!((b.oper, b.result.as_str()), (MathOp::Add, "m"));
                seen += 1;
            }
            RuleOption::IsDataAt(i) => {
                assert!(i.negated && i.relative);
                assert_eq!(i.value, Value::Lit(1));
                seen += 1;
            }
            RuleOption::Bsize(b) => {
                assert_eq!(*b, SizeCmp::Between(1, 10));
                seen += 1;
            }
            RuleOption::Dsize(d) => {
                assert_eq!(*d, SizeCmp::Ge(3));
                seen += 1;
            }
            _ => {}
        }
    }
    assert_eq!(seen, 7);
    assert_eq!(
        err("alert tcp any any -> any any (byte_test:9,=,1,0; sid:1;)"),
        "invalid value for 'byte_test': byte count must be 1..8 without 'string'"
    );
    assert_eq!(
        err("alert tcp any any -> any any (dsize:70000; sid:1;)"),
        "invalid value for 'dsize': dsize is at most 65535"
    );
}

#[test]
fn flow_flowbits_xbits_threshold() {
    let e = |o: &str| err(&format!("alert tcp any any -> any any ({o} sid:1;)"));
    assert_eq!(
        e("flow:to_server,to_client;"),
        "invalid value for 'flow': 'to_client' conflicts with an earlier flow option"
    );
    assert_eq!(
        e("flow:established,stateless;"),
        "invalid value for 'flow': 'stateless' conflicts with an earlier flow option"
    );
    assert_eq!(
        e("flow:only_stream,no_stream;"),
        "invalid value for 'flow': 'no_stream' conflicts with an earlier flow option"
    );
    assert_eq!(
        e("flow:established,to_server,no_stream,no_frag;"),
        "invalid value for 'flow': at most 3 flow options"
    );
    assert_eq!(
        e("flow:established; flow:to_server;"),
        "duplicate 'flow' option"
    );
    let r = rule("alert tcp any any -> any any (flow:from_client,NOT_ESTABLISHED; flowbits:isset,a|b; flowbits:noalert; xbits:set,fw.x,track tx; xbits:isset,y,track ip_pair,expire 60; threshold:type both, track by_src, count 2, seconds 60; sid:1;)");
    assert_eq!(
        r.flow(),
        Some(Flow {
            dir: Some(FlowDir::ToServer),
            state: Some(FlowState::NotEstablished),
            ..Flow::default()
        })
    );
    assert!(r.is_noalert());
    let opts: Vec<&RuleOption> = r.options.iter().map(|o| &o.node).collect();
    assert!(opts.contains(&&RuleOption::Flowbits(Flowbits::Cmd(
        BitsCmd::IsSet,
        vec!["a".into(), "b".into()]
    ))));
    assert!(opts.contains(&&RuleOption::Xbits(Xbits {
        cmd: BitsCmd::Set,
        name: "fw.x".into(),
        track: Track::Tx,
        expire: None
    })));
    assert!(opts.contains(&&RuleOption::Threshold(Threshold {
        kind: ThresholdKind::Both,
        track: Track::Src,
        count: 2,
        seconds: 60,
        multiplier: None
    })));
    assert_eq!(
        e("flowbits:bogus,a;"),
        "invalid value for 'flowbits': unknown flowbits command 'bogus'"
    );
    assert_eq!(
        e("threshold:type limit, track by_src, count 1;"),
        "invalid value for 'threshold': 'seconds' is required"
    );
    let r = rule(
        "alert tcp any any -> any any (detection_filter:track by_dst, count 5, seconds 10; sid:1;)",
    );
    assert_eq!(
        r.options[0].node,
        RuleOption::DetectionFilter(DetectionFilter {
            track: Track::Dst,
            count: 5,
            seconds: 10,
            unique_on: None,
        })
    );
    let r = rule(
        "alert tcp any any -> any any (detection_filter:track by_src, count 10, seconds 60, unique_on dst_port; sid:1;)",
    );
    assert_eq!(
        r.options[0].node,
        RuleOption::DetectionFilter(DetectionFilter {
            track: Track::Src,
            count: 10,
            seconds: 60,
            unique_on: Some(UniqueOn::DstPort),
        })
    );
    assert_eq!(
        e("detection_filter:track by_src, count 1, seconds 5, unique_on proto;"),
        "invalid value for 'detection_filter': unique_on is src_port or dst_port, got 'proto'"
    );
    let r = rule("alert icmp any any -> any any (itype:8; icode:<3; sid:1;)");
    assert_eq!(r.options[0].node, RuleOption::Itype(SizeCmp::Eq(8)));
    assert_eq!(r.options[1].node, RuleOption::Icode(SizeCmp::Lt(3)));
    assert_eq!(
        e("itype:300;"),
        "invalid value for 'itype': itype is at most 255"
    );
}

#[test]
fn header_actions_protocols_hooks() {
    let r = rule("accept:flow,pass:flow,alert tls:<client_hello_done any any -> any 443 (sid:1;)");
    assert_eq!(r.action.kind(), ActionKind::Accept);
    assert_eq!(r.action.scope(), Some(ActionScope::Flow));
    assert_eq!(
        r.action.secondary,
        vec![
            ActionSpec {
                kind: ActionKind::Pass,
                scope: Some(ActionScope::Flow)
            },
            ActionSpec {
                kind: ActionKind::Alert,
                scope: None
            }
        ]
    );
    assert_eq!(
        r.protocol.hook,
        Some(Hook {
            name: "client_hello_done".into(),
            and_earlier: true
        })
    );
    let r = rule("DROP:packet TCP:pre_stream any any <> any any (sid:1;)");
    assert_eq!(
        r.action.primary,
        ActionSpec {
            kind: ActionKind::Drop,
            scope: Some(ActionScope::Packet)
        }
    );
    assert_eq!(r.protocol.kind, ProtoKind::Tcp);
    assert_eq!(r.direction, Direction::Both);
    assert_eq!(
        rule("accept:hook smtp:request_data any any -> any any (sid:1;)")
            .protocol
            .hook
            .unwrap()
            .name,
        "request_data"
    );

    assert_eq!(
        err("alret tcp any any -> any any (sid:1;)"),
        "unknown action 'alret'"
    );
    assert_eq!(
        err("alert smpt any any -> any any (sid:1;)"),
        "unknown protocol 'smpt'"
    );
    assert_eq!(
        err("alert tls:client_hello any any -> any any (sid:1;)"),
        "unknown hook 'client_hello' for protocol 'tls'"
    );
    assert_eq!(
        err("alert tcp any any <- any any (sid:1;)"),
        "invalid direction '<-'"
    );
    assert_eq!(
        err("accept:flow,drop tcp any any -> any any (sid:1;)"),
        "'drop' cannot be a secondary action"
    );
    assert_eq!(err("alert tcp any any -> any any"), "rule has no options");
    assert_eq!(
        err("alert tcp any any -> any any ( )"),
        "rule has no options"
    );
    // Suricata tolerates missing parentheses (a '\\' continuation followed by an empty line
    // in suricata-verify's SMTP firewall cases drops the ')'); we load the rule and warn.
    let src = SourceFile::new(
        "p.rules",
        "alert tcp any any -> any any (sid:1; \\\n\nalert tcp any any -> any any sid:2;)\n",
    );
    let f = parse_file(&src);
    assert_eq!(
        f.rules.iter().map(Rule::sid).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let w: Vec<&str> = f.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        w,
        vec![
            "rule options are not closed with ')'",
            "rule options do not start with '('"
        ]
    );
    assert_eq!(
        err("alert tcp any any -> any any (sid:1)"),
        "option 'sid' is not terminated with ';'"
    );
}

#[test]
fn addresses_and_ports() {
    let r = rule("alert ip [10.0.0.5/24, !10.0.0.5, [1.2.3.4-1.2.3.10, 2001:db8::/32]] [80:82,1024:,:21,!99] -> !$HOME_NET ![$HTTP_PORTS,8080] (sid:1;)");
    assert_eq!(
        r.src,
        AddressExpr::List(vec![
            AddressExpr::Cidr(ip("10.0.0.0"), 24),
            AddressExpr::Not(Box::new(AddressExpr::Ip(ip("10.0.0.5")))),
            AddressExpr::List(vec![
                AddressExpr::Range(ip("1.2.3.4"), ip("1.2.3.10")),
                AddressExpr::Cidr(ip("2001:db8::"), 32),
            ]),
        ])
    );
    assert_eq!(
        r.src_port,
        PortExpr::List(vec![
            PortExpr::Range(80, 82),
            PortExpr::Range(1024, 65535),
            PortExpr::Range(0, 21),
            PortExpr::Not(Box::new(PortExpr::Port(99))),
        ])
    );
    assert_eq!(
        r.dst,
        AddressExpr::Not(Box::new(AddressExpr::Var("HOME_NET".into())))
    );
    // Dotted masks are converted; non-contiguous masks rejected.
    assert_eq!(
        rule("alert ip 10.1.2.3/255.255.0.0 any -> any any (sid:1;)").src,
        AddressExpr::Cidr(ip("10.1.0.0"), 16)
    );
    let e = |h: &str| err(&format!("alert ip {h} -> any any (sid:1;)"));
    assert_eq!(
        e("10.0.0.0/255.0.255.0 any"),
        "invalid address '10.0.0.0/255.0.255.0': netmask is not contiguous"
    );
    assert_eq!(
        e("1.2.3.10-1.2.3.4 any"),
        "invalid address '1.2.3.10-1.2.3.4': range start is after its end"
    );
    assert_eq!(
        e("[1.2.3.4]] any"),
        "invalid address '[1.2.3.4]]': text after ']'"
    );
    assert_eq!(
        e("!any any"),
        "invalid address '!any': '!any' matches nothing"
    );
    assert_eq!(
        e("any 90:80"),
        "invalid port '90:80': range start is after its end"
    );
    assert_eq!(e("any http"), "invalid port 'http': not a number");
    // Resolution through variables.
    let vars = Variables::suricata_defaults();
    let set = vars.resolve_address(&r.src).unwrap();
    assert!(set.contains(ip("10.0.0.4")) && !set.contains(ip("10.0.0.5")));
    assert!(set.contains(ip("2001:db8::1")));
    let ports = vars.resolve_port(&r.dst_port).unwrap();
    assert!(!ports.contains(80) && !ports.contains(8080) && ports.contains(81));
}

#[test]
fn meta_and_unsupported_keywords() {
    let r = rule("alert tcp any any -> any any (msg:\"a \\\"b\\\" \\; c\"; classtype:trojan-activity; priority:2; reference:url,example.com/a,b; metadata:created_at 2024_01_01, tag; target:dest_ip; tls.random; content:\"x\"; flowint:cnt,+,1; sid:5; rev:3; gid:2;)");
    assert_eq!(r.msg(), Some("a \"b\" ; c"));
    assert_eq!(r.classtype(), Some("trojan-activity"));
    assert_eq!(r.priority(), Some(2));
    assert_eq!(r.gid(), 2);
    // (`ja3.hash` was the example here until TLS fingerprints became buffers.)
    assert!(r.has_keyword("tls.random") && r.has_keyword("content"));
    let u: Vec<_> = r.unsupported().map(|(n, v, _)| (n, v)).collect();
    assert_eq!(u, vec![("tls.random", None), ("flowint", Some("cnt,+,1"))]);
    let opts: Vec<&RuleOption> = r.options.iter().map(|o| &o.node).collect();
    assert!(opts.contains(&&RuleOption::Reference {
        kind: "url".into(),
        value: "example.com/a,b".into()
    }));
    assert!(opts.contains(&&RuleOption::Metadata(vec![
        ("created_at".into(), "2024_01_01".into()),
        ("tag".into(), String::new())
    ])));
    assert_eq!(
        err("alert tcp any any -> any any (msg:\"a\"; msg:\"b\"; sid:1;)"),
        "duplicate 'msg' option"
    );
    assert_eq!(
        err("alert tcp any any -> any any (sid:0;)"),
        "invalid value for 'sid': sid must be greater than 0"
    );
    assert_eq!(
        err("alert tcp any any -> any any (priority:0; sid:1;)"),
        "invalid value for 'priority': priority must be 1..255"
    );
    assert_eq!(
        err("alert tcp any any -> any any (frobnicate; sid:1;)"),
        "unknown keyword 'frobnicate'"
    );
    let cov = Coverage::of([&r]);
    assert_eq!((cov.total, cov.with_unsupported), (1, 1));
    assert!(cov.to_string().contains("flowint"));
}

#[test]
fn file_handling() {
    let text = "# comment\n\n\talert tcp any any -> any any (sid:1;)\nalert tcp any any -> any any (msg:\"multi\"; \\\n content:\"x\"; \\\n sid:2;)\nalert tcp any any -> any any (sid:3; bogus;)\nalert tcp any any -> any any (msg:\"after bad\"; sid:4;)\nalert tcp any any -> any any (requires: version >= 9; sid:5; unknownstuff;)\nalert tcp any any -> any any (msg:\"ctl\u{1}\"; sid:6;)\n";
    let src = SourceFile::new("f.rules", text);
    let f = parse_file(&src);
    let sids: Vec<u64> = f.rules.iter().map(Rule::sid).collect();
    assert_eq!(sids, vec![2, 4]);
    assert_eq!(f.rules[0].line, 4);
    assert_eq!(f.rules[0].msg(), Some("multi"));
    // The rule span covers its three physical lines.
    let span = f.rules[0].span;
    assert!(
        src.text()[span.range()].starts_with("alert")
            && src.text()[span.range()].ends_with("sid:2;)")
    );
    let msgs: Vec<(bool, &str)> = f
        .diagnostics
        .iter()
        .map(|d| (d.is_error(), d.message.as_str()))
        .collect();
    assert_eq!(
        msgs,
        vec![
            (false, "indented rule is ignored: Suricata skips lines starting with whitespace"),
            (true, "unknown keyword 'bogus'"),
            (false, "rule skipped: requirement 'version >= 9' is not met by sekisho (Suricata 8.0.6 compatible)"),
            (true, "rule contains control character U+0001"),
        ]
    );
    assert_eq!(f.diagnostics[1].location.as_ref().unwrap().line, 7);
}

#[test]
fn invalid_utf8_line_is_skipped() {
    let mut bytes = b"alert tcp any any -> any any (msg:\"ok\"; sid:1;)\n".to_vec();
    bytes.extend_from_slice(b"alert tcp any any -> any any (msg:\"\xff\xfe\"; sid:2;)\n");
    bytes.extend_from_slice(b"alert tcp any any -> any any (msg:\"ok too\"; sid:3;)\n");
    let (src, f) = parse_file_bytes("u.rules", &bytes);
    let sids: Vec<u64> = f.rules.iter().map(Rule::sid).collect();
    assert_eq!(sids, vec![1, 3]);
    assert_eq!(f.diagnostics.len(), 1);
    assert_eq!(
        f.diagnostics[0].message,
        "line 2 is not valid UTF-8; the rule is skipped"
    );
    assert_eq!(f.diagnostics[0].location.as_ref().unwrap().line, 2);
    assert_eq!(
        src.line_text(3),
        "alert tcp any any -> any any (msg:\"ok too\"; sid:3;)"
    );
}

#[test]
fn transactional_rules_reject_flow_direction() {
    assert_eq!(
        err("alert http any any => any any (flow:to_server; http.uri; content:\"/a\"; sid:1;)"),
        "a transactional rule ('=>') cannot use flow:to_server or flow:to_client"
    );
    rule("alert http any any => any any (flow:established; http.uri; content:\"/a\"; http.stat_code; content:\"200\"; sid:1;)");
}

#[test]
fn dsize_with_an_app_layer_buffer_is_rejected_like_suricata() {
    assert_eq!(
        err("alert smtp any any -> any any (smtp.rcpt_to; content:\"x\"; dsize:>10; sid:1;)"),
        "dsize is not allowed with app-layer buffers (this rule also uses 'smtp.rcpt_to')"
    );
    assert_eq!(
        err("alert http any any -> any any (dsize:<100; content:\"/a\"; http_uri; sid:1;)"),
        "dsize is not allowed with app-layer buffers (this rule also uses 'http.uri')"
    );
    // On the packet payload (also after pkt_data) dsize is fine.
    rule("alert tcp any any -> any 25 (content:\"RCPT\"; dsize:>10; sid:1;)");
    rule("alert smtp any any -> any 25 (pkt_data; content:\"RCPT\"; dsize:>10; sid:1;)");
}

#[test]
fn content_that_a_case_transform_makes_unmatchable_is_rejected() {
    assert_eq!(
        err("alert smtp any any -> any any (smtp.helo; to_lowercase; content:\"Mail\"; sid:1;)"),
        "content contains upper-case letters and can never match after 'to_lowercase'"
    );
    assert_eq!(
        err("alert smtp any any -> any any (smtp.helo; to_uppercase; content:\"MAIl\"; sid:1;)"),
        "content contains lower-case letters and can never match after 'to_uppercase'"
    );
    rule("alert smtp any any -> any any (smtp.helo; to_lowercase; content:\"mail|2e|example\"; sid:1;)");
    rule(
        "alert smtp any any -> any any (smtp.helo; to_uppercase; content:\"MAIL.EXAMPLE\"; sid:1;)",
    );
    // A new sticky buffer starts without transforms.
    rule("alert smtp any any -> any any (smtp.helo; to_lowercase; content:\"a\"; smtp.mail_from; content:\"B\"; sid:1;)");
}

#[test]
fn endswith_on_an_smtp_command_is_accepted() {
    // The blog's QUIT rule: legal (it just never matches the stream, which ends with CRLF).
    let r = rule("alert smtp $HOME_NET any -> any 25 (msg:\"alert SMTP QUIT\"; content:\"QUIT\"; nocase; endswith; sid:1000004; rev:1;)");
    assert!(contents(&r)[0].endswith);
}
