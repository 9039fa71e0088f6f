//! Behaviour of the SMTP parser, one test per rule of
//! `shared/reference/suricata-smtp-parser.md`.

use sekisho_engine::app::smtp::{
    probe_to_client, probe_to_server, CommandKind, Direction, EmailEve, ProbeResult, Progress,
    SmtpEvent, SmtpParser, SmtpTx, Status, MAX_HEADER_BYTES, MAX_LINE_LEN,
};

const EHLO_PIPELINING: &[u8] =
    b"250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";
const EHLO_PLAIN: &[u8] = b"250-mail.example.com\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";

/// All transactions of a session, taken as they complete, then the rest.
fn all_txs(p: &mut SmtpParser, done: &mut Vec<SmtpTx>) -> Vec<SmtpTx> {
    let mut v = std::mem::take(done);
    v.extend(p.take_all());
    v.sort_by_key(|t| t.tx_id);
    v
}

fn run(steps: &[(Direction, &[u8])]) -> (SmtpParser, Vec<SmtpTx>) {
    let mut p = SmtpParser::new();
    let mut done = Vec::new();
    for (dir, data) in steps {
        p.feed(*dir, data);
        done.extend(p.take_complete());
    }
    let txs = all_txs(&mut p, &mut done);
    (p, txs)
}

use Direction::{ToClient as C, ToServer as S};

fn events(tx: &SmtpTx, ev: SmtpEvent) -> usize {
    tx.events.iter().filter(|e| **e == ev).count()
}

#[test]
fn worked_pipelining_case_one_segment() {
    let mut p = SmtpParser::new();
    p.to_client(b"220 mail.example.com ESMTP Postfix\r\n");
    p.to_server(b"EHLO client.example.com\r\n");
    p.to_client(EHLO_PIPELINING);
    assert!(p.server_pipelining());
    p.to_server(
        b"MAIL FROM:<username@domain.com>\r\nRCPT TO:<john.doe@example.com>\r\nDATA\r\nThis is a test\r\n.\r\n",
    );
    // Request side complete before any reply: data mode started at DATA.
    let tx = p.tx(0).expect("tx0").clone();
    assert_eq!(tx.mail_from.as_deref(), Some(&b"<username@domain.com>"[..]));
    assert_eq!(tx.rcpt_to, vec![b"<john.doe@example.com>".to_vec()]);
    assert_eq!(tx.request, Progress::Complete);
    assert_eq!(tx.response, Progress::Started);
    assert!(tx.data_complete);
    assert_eq!(events(&tx, SmtpEvent::InvalidPipelinedSequence), 1);
    p.to_client(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 1234\r\n");
    let done = p.take_complete();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].tx_id, 0);
    assert_eq!(done[0].helo.as_deref(), Some(&b"client.example.com"[..]));
    // The late 354 must not re-arm data mode: QUIT is a command.
    p.to_server(b"QUIT\r\n");
    p.to_client(b"221 2.0.0 Bye\r\n");
    assert_eq!(p.txs().count(), 0, "QUIT attaches to the finished tx");
    assert!(!p.has_failed());
}

#[test]
fn without_pipelining_data_mode_waits_for_354() {
    let (_, txs) = run(&[
        (C, b"220 hi\r\n"),
        (S, b"EHLO c\r\n"),
        (C, EHLO_PLAIN),
        (S, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
        (C, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (S, b"Subject: x\r\n\r\nRCPT TO:<not@rcpt>\r\n.\r\n"),
        (C, b"250 queued\r\n"),
    ]);
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].rcpt_to, vec![b"<c@d>".to_vec()]);
    assert!(txs[0].is_complete() && txs[0].data_complete);
    assert!(txs[0].events.is_empty(), "{:?}", txs[0].events);
}

/// A small full session, with two messages, a rejected recipient, RSET
/// and QUIT; the client waits for replies as a non-pipelining client must.
const SESSION: &[(Direction, &[u8])] = &[
    (C, b"220 srv ESMTP\r\n"),
    (S, b"EHLO client.test\r\n"),
    (C, b"250-srv\r\n250 SIZE\r\n"),
    (S, b"MAIL FROM:<a@x.test> SIZE=10\r\n"),
    (C, b"250 ok\r\n"),
    (S, b"RCPT TO:<b@y.test>\r\n"),
    (C, b"250 ok\r\n"),
    (S, b"RCPT TO:<c@y.test> NOTIFY=NEVER\r\n"),
    (C, b"550 no such user\r\n"),
    (S, b"DATA\r\n"),
    (C, b"354 go\r\n"),
    (
        S,
        b"Subject: one\r\n\r\n..leading dot\r\nRCPT TO:<in@body>\r\n.\r\n",
    ),
    (C, b"250 queued\r\n"),
    (S, b"MAIL FROM:<d@x.test>\r\n"),
    (C, b"250 ok\r\n"),
    (S, b"RSET\r\n"),
    (C, b"250 reset\r\n"),
    (S, b"MAIL FROM:<e@x.test>\r\n"),
    (C, b"250 ok\r\n"),
    (S, b"RCPT TO:<f@y.test>\r\n"),
    (C, b"250 ok\r\n"),
    (S, b"DATA\r\n"),
    (C, b"354 go\r\n"),
    (S, b"body\r\n.\r\n"),
    (C, b"250 queued\r\n"),
    (S, b"QUIT\r\n"),
    (C, b"221 bye\r\n"),
];

/// (tx_id, mail_from, rcpt_to, data_complete, complete) per tx.
type Summary = Vec<(u64, Option<Vec<u8>>, Vec<Vec<u8>>, bool, bool)>;

fn summary(txs: &[SmtpTx]) -> Summary {
    txs.iter()
        .map(|t| {
            (
                t.tx_id,
                t.mail_from.clone(),
                t.rcpt_to.clone(),
                t.data_complete,
                t.is_complete(),
            )
        })
        .collect()
}

#[test]
fn session_transactions_rset_and_rejected_rcpt() {
    let (p, txs) = run(SESSION);
    assert!(!p.has_failed());
    let s = summary(&txs);
    assert_eq!(s.len(), 3, "{s:?}");
    // tx0: the first message; the 550-rejected recipient stays listed and
    // the body line that looks like RCPT TO is data.
    assert_eq!(s[0].1.as_deref(), Some(&b"<a@x.test>"[..]));
    assert_eq!(s[0].2, vec![b"<b@y.test>".to_vec(), b"<c@y.test>".to_vec()]);
    assert!(s[0].3 && s[0].4);
    // tx1: abandoned envelope, closed by RSET's 250.
    assert_eq!(s[1].1.as_deref(), Some(&b"<d@x.test>"[..]));
    assert!(!s[1].3 && s[1].4);
    // tx2: second message.
    assert_eq!(s[2].1.as_deref(), Some(&b"<e@x.test>"[..]));
    assert_eq!(s[2].2, vec![b"<f@y.test>".to_vec()]);
    assert!(s[2].3 && s[2].4);
    for t in &txs {
        assert_eq!(t.helo.as_deref(), Some(&b"client.test"[..]));
        assert!(t.events.is_empty(), "{:?}", t.events);
    }
}

#[test]
fn lines_split_at_every_byte_position() {
    let (_, whole) = run(SESSION);
    let want = summary(&whole);
    for (i, (dir, data)) in SESSION.iter().enumerate() {
        for cut in 0..=data.len() {
            let mut steps: Vec<(Direction, &[u8])> = SESSION[..i].to_vec();
            steps.push((*dir, &data[..cut]));
            steps.push((*dir, &data[cut..]));
            steps.extend_from_slice(&SESSION[i + 1..]);
            let (_, txs) = run(&steps);
            assert_eq!(summary(&txs), want, "step {i} split at {cut}");
        }
    }
    // One byte at a time in both directions.
    let mut steps: Vec<(Direction, &[u8])> = Vec::new();
    for (dir, data) in SESSION {
        for i in 0..data.len() {
            steps.push((*dir, &data[i..i + 1]));
        }
    }
    let (_, txs) = run(&steps);
    assert_eq!(summary(&txs), want);
}

#[test]
fn dot_stuffing_and_terminator_split_across_chunks() {
    let body = b"line one\r\n..not the end\r\n.x\r\n .\r\n.\r\n";
    for cut in 0..=body.len() {
        let mut p = SmtpParser::new();
        p.to_client(b"220 hi\r\n");
        p.to_server(b"HELO h\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        p.to_client(b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        p.to_server(&body[..cut]);
        let t = p.tx(0).expect("tx").clone();
        assert_eq!(t.data_complete, cut == body.len(), "cut {cut}");
        p.to_server(&body[cut..]);
        assert!(p.tx(0).expect("tx").data_complete);
        // After the terminator we are back in command mode.
        p.to_server(b"MAIL FROM:<next@b>\r\n");
        assert_eq!(
            p.tx(1).and_then(|t| t.mail_from.clone()),
            Some(b"<next@b>".to_vec()),
            "cut {cut}"
        );
    }
    // LF-only terminator also ends the message.
    let (_, txs) = run(&[
        (C, b"220 hi\r\n"),
        (S, b"HELO h\nMAIL FROM:<a@b>\nDATA\n"),
        (C, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (S, b"x\n.\n"),
        (C, b"250 ok\r\n"),
    ]);
    assert!(txs[0].data_complete && txs[0].is_complete());
}

#[test]
fn overlong_command_is_truncated_and_parsing_continues() {
    let mut long = b"EHLO ".to_vec();
    long.extend(vec![b'A'; 10_000]);
    long.extend_from_slice(b"\r\nMAIL FROM:<a@b>\r\n");
    for chunk in [7usize, 1000, 4096, 50_000] {
        let mut p = SmtpParser::new();
        p.to_client(b"220 hi\r\n");
        for c in long.chunks(chunk) {
            p.to_server(c);
            assert!(p.buffered() <= 2 * MAX_LINE_LEN);
        }
        let t = p.tx(0).expect("tx0");
        assert_eq!(t.helo.as_ref().map(Vec::len), Some(MAX_LINE_LEN - 5));
        assert_eq!(events(t, SmtpEvent::TruncatedLine), 1, "chunk {chunk}");
        assert_eq!(t.mail_from.as_deref(), Some(&b"<a@b>"[..]));
    }
}

#[test]
fn overlong_reply_is_truncated_and_replies_stay_aligned() {
    let mut reply = b"250-".to_vec();
    reply.extend(vec![b'x'; 9000]);
    reply.extend_from_slice(b"\r\n250 ok\r\n");
    let (p, txs) = run(&[
        (C, b"220 hi\r\n"),
        (S, b"EHLO c\r\n"),
        (C, &reply),
        (S, b"MAIL FROM:<a@b>\r\nRSET\r\n"),
        (C, b"250 ok\r\n250 reset\r\n"),
    ]);
    assert!(!p.has_failed());
    assert_eq!(events(&txs[0], SmtpEvent::TruncatedLine), 1);
    assert!(txs[0].is_complete(), "RSET's 250 matched RSET");
}

#[test]
fn bdat_chunks_are_octet_counted() {
    let chunk1 = b"Subject: a\r\nMAIL FROM:<inside@chunk>\r\n"; // 38 octets
    let mut ts = b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n".to_vec();
    ts.extend_from_slice(format!("BDAT {}\r\n", chunk1.len()).as_bytes());
    ts.extend_from_slice(chunk1);
    ts.extend_from_slice(b"BDAT 5 LAST\r\nab\r\ncMAIL FROM:<next@b>\r\n");
    for cut in 0..=ts.len() {
        let (p, txs) = run(&[
            (C, b"220 hi\r\n"),
            (S, &ts[..cut]),
            (S, &ts[cut..]),
            (
                C,
                b"250 hi\r\n250 ok\r\n250 ok\r\n250 chunk\r\n250 last\r\n",
            ),
        ]);
        assert!(!p.has_failed());
        assert_eq!(txs.len(), 2, "cut {cut}");
        assert_eq!(txs[0].mail_from.as_deref(), Some(&b"<a@b>"[..]));
        assert!(txs[0].had_bdat && txs[0].data_complete && txs[0].is_complete());
        assert!(!txs[0].had_data);
        assert_eq!(txs[0].data_len, chunk1.len() as u64 + 5);
        assert_eq!(txs[1].mail_from.as_deref(), Some(&b"<next@b>"[..]));
    }
}

#[test]
fn bdat_zero_last_and_invalid_bdat() {
    let (_, txs) = run(&[
        (C, b"220 hi\r\n"),
        (
            S,
            b"HELO c\r\nMAIL FROM:<a@b>\r\nBDAT 5 X\r\nBDAT 0 LAST\r\nMAIL FROM:<n@b>\r\n",
        ),
        (C, b"250 hi\r\n250 ok\r\n501 bad\r\n250 ok\r\n250 ok\r\n"),
    ]);
    assert_eq!(txs.len(), 2);
    assert_eq!(events(&txs[0], SmtpEvent::InvalidBdat), 1);
    assert!(
        txs[0].is_complete(),
        "BDAT 0 LAST completes; its reply completes the response"
    );
    assert_eq!(txs[1].mail_from.as_deref(), Some(&b"<n@b>"[..]));
}

#[test]
fn rset_rejected_keeps_tx_open_and_first_rset_makes_a_tx() {
    let (_, txs) = run(&[
        (C, b"220 hi\r\n"),
        (S, b"RSET\r\n"),
        (C, b"250 ok\r\n"),
        (S, b"HELO c\r\nMAIL FROM:<a@b>\r\nRSET\r\nRCPT TO:<c@d>\r\n"),
        (C, b"250 hi\r\n250 ok\r\n500 no\r\n250 ok\r\n"),
    ]);
    assert_eq!(txs.len(), 2);
    assert!(txs[0].is_complete() && txs[0].mail_from.is_none());
    assert_eq!(txs[1].rcpt_to, vec![b"<c@d>".to_vec()]);
    assert!(!txs[1].is_complete());
}

#[test]
fn mid_session_ehlo_resets_only_when_accepted() {
    let (_, txs) = run(&[
        (C, b"220 hi\r\n"),
        (S, b"HELO one\r\nMAIL FROM:<a@b>\r\nEHLO two\r\n"),
        (C, b"250 hi\r\n250 ok\r\n250 hi again\r\n"),
        (S, b"MAIL FROM:<c@d>\r\n"),
        (C, b"250 ok\r\n"),
    ]);
    assert_eq!(txs.len(), 2);
    assert_eq!(events(&txs[0], SmtpEvent::DuplicateFields), 1);
    assert_eq!(txs[1].helo.as_deref(), Some(&b"one"[..]));
    let (_, txs) = run(&[
        (C, b"220 hi\r\n"),
        (
            S,
            b"HELO one\r\nMAIL FROM:<a@b>\r\nEHLO two\r\nRCPT TO:<c@d>\r\n",
        ),
        (C, b"250 hi\r\n250 ok\r\n501 no\r\n250 ok\r\n"),
    ]);
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].rcpt_to, vec![b"<c@d>".to_vec()]);
}

#[test]
fn starttls_hands_over_after_220() {
    let mut p = SmtpParser::new();
    p.to_client(b"220 hi\r\n");
    p.to_server(b"EHLO c\r\n");
    p.to_client(b"250-hi\r\n250 STARTTLS\r\n");
    assert_eq!(p.to_server(b"STARTTLS\r\n"), Status::Continue);
    let st = p.to_client(b"220 go ahead\r\n\x16\x03\x03\x00\x10");
    assert_eq!(
        st,
        Status::TlsUpgrade {
            to_server_offset: 18,
            to_client_offset: 30 + 14
        }
    );
    // TLS bytes are not parsed as SMTP.
    assert!(matches!(
        p.to_server(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03MAIL FROM:<x@y>\r\n"),
        Status::TlsUpgrade { .. }
    ));
    let txs = p.take_complete();
    assert_eq!(txs.len(), 1);
    assert!(txs[0].mail_from.is_none() && !txs[0].had_data);
    assert_eq!(txs[0].helo.as_deref(), Some(&b"c"[..]));
    assert_eq!(p.txs().count(), 0);

    // Rejected STARTTLS: SMTP continues.
    let (p, txs) = run(&[
        (C, b"220 hi\r\n"),
        (S, b"EHLO c\r\nSTARTTLS\r\n"),
        (C, b"250 hi\r\n454 not now\r\n"),
        (S, b"MAIL FROM:<a@b>\r\n"),
    ]);
    assert!(!p.is_tls());
    assert_eq!(events(&txs[0], SmtpEvent::TlsRejected), 1);
    assert_eq!(txs[0].mail_from.as_deref(), Some(&b"<a@b>"[..]));
}

#[test]
fn auth_keeps_mechanism_never_credentials() {
    // base64("\0user\0s3cret-password") and LOGIN continuation lines.
    let plain = "AHVzZXIAczNjcmV0LXBhc3N3b3Jk";
    let user = "dXNlckBleGFtcGxlLmNvbQ==";
    let pass = "czNjcmV0LXBhc3N3b3Jk";
    let ts = format!(
        "EHLO c\r\nAUTH PLAIN {plain}\r\nAUTH LOGIN\r\n{user}\r\n{pass}\r\nMAIL FROM:<a@b>\r\nRSET\r\n"
    );
    let (p, txs) = run(&[
        (C, b"220 hi\r\n"),
        (S, ts.as_bytes()),
        (C, b"250 hi\r\n535 bad\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n250 ok\r\n250 reset\r\n"),
    ]);
    assert!(!p.has_failed());
    assert_eq!(txs.len(), 1);
    assert!(
        txs[0].is_complete(),
        "334/235 replies kept the queue aligned"
    );
    assert_eq!(
        txs[0].auth_mechanisms,
        vec![b"PLAIN".to_vec(), b"LOGIN".to_vec()]
    );
    let dump = format!("{:?} {:?}", txs[0], txs[0].eve());
    for secret in [plain, user, pass, "s3cret"] {
        assert!(!dump.contains(secret), "credential {secret} stored");
    }
    let bytes_dump = format!("{:?}", txs[0].auth_mechanisms);
    assert!(!bytes_dump.contains(&format!("{:?}", plain.as_bytes())));
}

#[test]
fn reply_errors_and_greeting() {
    let (p, txs) = run(&[
        (C, b"220 hi\r\n"),
        (S, b"EHLO c\r\n"),
        (C, b"472 what\r\n"),
        (S, b"MAIL FROM:<a@b>\r\n"),
    ]);
    assert!(p.has_failed());
    assert_eq!(events(&txs[0], SmtpEvent::InvalidReply), 1);
    assert!(txs[0].mail_from.is_none(), "parsing stopped");

    let (p, _) = run(&[(C, b"554 go away\r\n")]);
    assert!(!p.has_failed());
    assert_eq!(p.connection_events(), &[SmtpEvent::InvalidReply]);

    let (p, txs) = run(&[
        (S, b"EHLO c\r\n"),
        (C, b"220 hi\r\n250 ok\r\n250 extra\r\n"),
    ]);
    assert!(!p.has_failed());
    assert_eq!(events(&txs[0], SmtpEvent::NoServerWelcomeMessage), 1);
    assert_eq!(events(&txs[0], SmtpEvent::UnableToMatchReplyWithRequest), 1);
}

#[test]
fn duplicate_fields_second_data_and_rejected_data() {
    let (_, txs) = run(&[
        (C, b"220 hi\r\n"),
        (
            S,
            b"HELO a\r\nHELO b\r\nMAIL FROM:<x@y>\r\nMAIL FROM:<z@y>\r\nDATA\r\n",
        ),
        (C, b"250 a\r\n250 b\r\n250 ok\r\n503 dup\r\n503 no rcpt\r\n"),
        (S, b"DATA\r\n"),
    ]);
    assert_eq!(txs.len(), 1);
    let t = &txs[0];
    assert_eq!(t.helo.as_deref(), Some(&b"a"[..]));
    assert_eq!(t.mail_from.as_deref(), Some(&b"<x@y>"[..]));
    assert_eq!(events(t, SmtpEvent::DuplicateFields), 2);
    assert_eq!(events(t, SmtpEvent::DataCommandRejected), 1);
    assert_eq!(events(t, SmtpEvent::UnparsableContent), 1);
    assert!(t.had_data && !t.data_complete);
}

#[test]
fn rejected_data_with_pipelining_leaves_data_mode() {
    let (_, txs) = run(&[
        (C, b"220 hi\r\n"),
        (S, b"EHLO c\r\n"),
        (C, EHLO_PIPELINING),
        (S, b"DATA\r\n"),
        (C, b"503 need MAIL\r\n"),
        (S, b"MAIL FROM:<a@b>\r\n"),
    ]);
    assert_eq!(events(&txs[0], SmtpEvent::DataCommandRejected), 1);
    assert_eq!(txs[0].mail_from.as_deref(), Some(&b"<a@b>"[..]));
}

#[test]
fn argument_token_rules() {
    let cases: &[(&[u8], Option<&[u8]>)] = &[
        (b"MAIL FROM:<a@b.c> SIZE=123", Some(b"<a@b.c>")),
        (b"MAIL FROM: <a@b.c>", Some(b"<a@b.c>")),
        (b"mail from:<>", Some(b"<>")),
        (b"MAIL FROM:", Some(b"")),
        (b"MAIL FROM:a@b", Some(b"a@b")),
    ];
    for (line, want) in cases {
        let mut l = line.to_vec();
        l.extend_from_slice(b"\r\n");
        let (_, txs) = run(&[(C, b"220 hi\r\n"), (S, &l)]);
        assert_eq!(
            txs[0].mail_from.as_deref(),
            *want,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    let (_, txs) = run(&[
        (C, b"220 hi\r\n"),
        (S, b"EHLO  host extra\r\nrcpt to:<x@y> NOTIFY=NEVER\r\nRCPT TO:x@y\r\nRCPT TO:<\"a b\"@c>\r\n"),
    ]);
    assert_eq!(txs[0].helo.as_deref(), Some(&b"host"[..]));
    assert_eq!(
        txs[0].rcpt_to,
        vec![b"<x@y>".to_vec(), b"x@y".to_vec(), b"<\"a".to_vec()]
    );
    // EVE keeps the brackets and omits an empty MAIL FROM.
    let eve = txs[0].eve();
    assert_eq!(eve.helo.as_deref(), Some("host"));
    assert_eq!(eve.mail_from, None);
    assert_eq!(eve.rcpt_to, vec!["<x@y>", "x@y", "<\"a"]);
}

#[test]
fn command_offsets_locate_the_segment() {
    let seg1 = b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<ok@d>\r\nRC";
    let seg2 = b"PT TO:<bad@d>\r\nDATA\r\n";
    let mut p = SmtpParser::new();
    p.to_client(b"220 hi\r\n");
    p.to_server(seg1);
    p.to_server(seg2);
    let t = p.tx(0).expect("tx");
    let rcpts: Vec<_> = t
        .commands
        .iter()
        .filter(|c| c.kind == CommandKind::RcptTo)
        .collect();
    assert_eq!(rcpts.len(), 2);
    assert_eq!(rcpts[0].offset, 25);
    assert!(rcpts[0].offset < seg1.len() as u64);
    // The second RCPT began in segment 1 and ended in segment 2.
    assert_eq!(rcpts[1].offset, 41);
    assert_eq!(rcpts[1].len, b"RCPT TO:<bad@d>".len());
    let data = t
        .commands
        .iter()
        .find(|c| c.kind == CommandKind::Data)
        .expect("data");
    assert_eq!(
        data.offset,
        (seg1.len() + b"PT TO:<bad@d>\r\n".len()) as u64
    );
    // The end-of-data line is located too.
    let body_start = data.offset + 6;
    p.to_client(b"250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    p.to_server(b"x\r\n.\r\n");
    let t = p.tx(0).expect("tx");
    let eod = t.commands.last().expect("eod");
    assert_eq!(
        (eod.kind, eod.offset, eod.len),
        (CommandKind::EndOfData, body_start + 3, 2)
    );
}

#[test]
fn gap_in_bdat_chunk_and_in_commands() {
    let mut p = SmtpParser::new();
    p.to_client(b"220 hi\r\n");
    p.to_server(b"HELO c\r\nMAIL FROM:<a@b>\r\nBDAT 100 LAST\r\n0123456789");
    p.gap(Direction::ToServer, 80);
    p.to_server(b"0123456789MAIL FROM:<n@b>\r\n");
    assert!(p.tx(0).expect("tx0").data_complete);
    assert_eq!(
        p.tx(1).and_then(|t| t.mail_from.clone()),
        Some(b"<n@b>".to_vec())
    );
    // A gap mid-command drops that line only.
    p.gap(Direction::ToServer, 5);
    p.to_server(b"O:<lost@b>\r\nRCPT TO:<kept@b>\r\n");
    assert_eq!(p.tx(1).expect("tx1").rcpt_to, vec![b"<kept@b>".to_vec()]);
}

#[test]
fn transaction_table_is_capped() {
    let mut p = SmtpParser::new().with_max_live_txs(2);
    p.to_client(b"220 hi\r\n");
    let st = p.to_server(
        b"HELO c\r\nBDAT 0 LAST\r\nMAIL FROM:<a@b>\r\nBDAT 0 LAST\r\nMAIL FROM:<c@d>\r\n",
    );
    assert_eq!(st, Status::Error);
    assert_eq!(p.txs().count(), 2);
}

#[test]
fn probing() {
    assert_eq!(probe_to_server(b"EHLO x\r\n"), ProbeResult::Smtp);
    assert_eq!(probe_to_server(b"helo"), ProbeResult::Smtp);
    assert_eq!(probe_to_server(b"QUIT\r\n"), ProbeResult::SmtpIfPort);
    assert_eq!(probe_to_server(b"EH"), ProbeResult::NeedMore);
    assert_eq!(probe_to_server(b"GET / HTTP/1.1\r\n"), ProbeResult::NotSmtp);
    assert_eq!(probe_to_server(b"\x16\x03\x01"), ProbeResult::NotSmtp);
    assert_eq!(probe_to_client(b"220 mx ESMTP\r\n"), ProbeResult::Smtp);
    assert_eq!(probe_to_client(b"220-mx\r\n"), ProbeResult::Smtp);
    assert_eq!(probe_to_client(b"22"), ProbeResult::NeedMore);
    assert_eq!(
        probe_to_client(b"HTTP/1.1 200 OK\r\n"),
        ProbeResult::NotSmtp
    );
    assert_eq!(probe_to_client(b"2201"), ProbeResult::NotSmtp);
}

#[test]
fn event_names() {
    assert_eq!(
        SmtpEvent::InvalidPipelinedSequence.name(),
        "smtp.invalid_pipelined_sequence"
    );
    assert_eq!(SmtpEvent::TruncatedLine.anomaly_name(), "TRUNCATED_LINE");
    assert_eq!(
        SmtpEvent::UnableToMatchReplyWithRequest.name(),
        "smtp.unable_to_match_reply_with_request"
    );
}

#[test]
fn anomaly_names_follow_rule_names() {
    use SmtpEvent::*;
    for ev in [
        InvalidReply,
        UnableToMatchReplyWithRequest,
        MaxCommandLineLenExceeded,
        MaxReplyLineLenExceeded,
        InvalidPipelinedSequence,
        BdatChunkLenExceeded,
        NoServerWelcomeMessage,
        TlsRejected,
        DataCommandRejected,
        DuplicateFields,
        UnparsableContent,
        TruncatedLine,
        InvalidBdat,
        TooManyTransactions,
    ] {
        let rule = ev.name().strip_prefix("smtp.").unwrap();
        assert_eq!(ev.anomaly_name(), rule.to_ascii_uppercase());
    }
}

#[test]
fn raised_events_are_reported_once_with_their_transaction() {
    let mut p = SmtpParser::new();
    p.to_client(b"220 hi\r\n");
    p.to_server(b"HELO a\r\nMAIL FROM:<a@b>\r\n");
    assert_eq!(p.take_raised().count(), 0);
    p.to_client(b"250 hi\r\n250 ok\r\n");
    // Second HELO: DUPLICATE_FIELDS on tx 0; its 503 leaves the tx open.
    p.to_server(b"HELO b\r\nDATA\r\n");
    p.to_client(b"503 no\r\n503 no\r\n");
    let raised: Vec<_> = p.take_raised().collect();
    assert_eq!(
        raised,
        vec![
            (0, SmtpEvent::DuplicateFields),
            (0, SmtpEvent::DataCommandRejected)
        ]
    );
    assert_eq!(p.take_raised().count(), 0);
    // Still recorded on the transaction.
    assert_eq!(p.tx(0).unwrap().events.len(), 2);
    // An unsolicited reply is charged to the current transaction.
    p.to_client(b"250 extra\r\n");
    let raised: Vec<_> = p.take_raised().collect();
    assert_eq!(raised, vec![(0, SmtpEvent::UnableToMatchReplyWithRequest)]);
}

#[test]
fn connection_events_are_not_raised() {
    let mut p = SmtpParser::new();
    // Non-220 greeting before any transaction exists.
    p.to_client(b"554 go away\r\n");
    assert_eq!(p.connection_events(), &[SmtpEvent::InvalidReply]);
    assert_eq!(p.take_raised().count(), 0);
}

#[test]
fn updated_transactions_are_reported_once_per_call() {
    let mut p = SmtpParser::new();
    p.to_client(b"220 hi\r\n");
    assert!(p.take_updated().is_empty());
    p.to_server(b"HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    assert_eq!(p.take_updated(), vec![0]);
    assert!(p.take_updated().is_empty());
    p.to_client(b"250 hi\r\n250 ok\r\n250 ok\r\n");
    p.to_server(b"RSET\r\n");
    p.to_client(b"250 ok\r\n");
    p.to_server(b"MAIL FROM:<x@y>\r\n");
    assert_eq!(p.take_updated(), vec![0, 1]);
    // Not draining updates keeps the list bounded.
    let mut p = SmtpParser::new().with_max_live_txs(4);
    p.to_client(b"220 hi\r\n");
    for _ in 0..100 {
        p.to_server(b"MAIL FROM:<a@b>\r\nBDAT 0 LAST\r\n");
        p.to_client(b"250 ok\r\n250 ok\r\n");
        let _ = p.take_complete();
    }
    assert!(p.take_updated().len() <= 9);
}

#[test]
fn long_header_line_is_flagged_long_body_line_is_not() {
    let mut msg = b"Subject: ".to_vec();
    msg.extend(vec![b'h'; 5000]);
    msg.extend_from_slice(b"\r\nFrom: a@b\r\n\r\n");
    msg.extend(vec![b'b'; 7000]);
    msg.extend_from_slice(b"\r\n.\r\n");
    for chunk in [1usize, 1000, 4096, 100_000] {
        let mut p = SmtpParser::new();
        p.to_client(b"220 hi\r\n");
        p.to_server(b"HELO c\r\nMAIL FROM:<a@b>\r\nDATA\r\n");
        p.to_client(b"250 hi\r\n250 ok\r\n354 go\r\n");
        for c in msg.chunks(chunk) {
            p.to_server(c);
        }
        let t = p.tx(0).expect("tx0");
        assert!(t.data_complete);
        assert_eq!(events(t, SmtpEvent::TruncatedLine), 1, "chunk {chunk}");
    }
}

#[test]
fn take_stats_reports_the_flow_once_and_each_new_tx_once() {
    let mut p = SmtpParser::new();
    assert_eq!(
        p.take_stats(),
        (1, 0),
        "the flow counts even before any command"
    );
    p.to_client(b"220 mx\r\n");
    p.to_server(b"EHLO c\r\nMAIL FROM:<a@x>\r\nRSET\r\n");
    p.to_client(b"250 hi\r\n250 ok\r\n250 reset\r\n");
    assert_eq!(p.take_stats(), (0, 1));
    assert_eq!(p.take_stats(), (0, 0), "already reported");
    // RSET's 250 closed tx0; the next MAIL opens tx1; the accepted EHLO closes it, so the
    // MAIL after its reply opens tx2.
    p.to_server(b"MAIL FROM:<b@x>\r\nEHLO again\r\n");
    p.to_client(b"250 ok\r\n250 hi\r\n");
    p.to_server(b"MAIL FROM:<c@x>\r\n");
    assert_eq!(p.take_stats(), (0, 2));
}

const MESSAGE: &[u8] = b"From: \"Doe, John\" <john@example.com>\r\nTo: a@example.com,\r\n  \"b,c\" <b@example.com> , \r\nCC: <c@example.com>\r\nSubject: hi\r\nX-Note: From: not@this.one\r\n\r\nFrom: body@example.com\r\nbody line\r\n.\r\n";

fn email_of(tx: &SmtpTx) -> EmailEve {
    tx.eve().email.expect("a tx with DATA has an email object")
}

#[test]
fn email_object_from_top_level_headers_split_at_every_byte() {
    let expected = EmailEve {
        from: Some("\"Doe, John\" <john@example.com>".into()),
        // The folded To: continues after one blank; commas inside quotes do not split.
        to: vec!["a@example.com".into(), "\"b,c\" <b@example.com> ".into()],
        cc: vec!["<c@example.com>".into()],
        status: "PARSE_DONE",
    };
    let body_at = MESSAGE
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end")
        + 4;
    for split in 0..=MESSAGE.len() {
        let mut p = SmtpParser::new();
        p.to_client(b"220 mx\r\n");
        p.to_server(b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
        p.to_client(b"250 hi\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        p.to_server(&MESSAGE[..split]);
        p.to_server(&MESSAGE[split..]);
        p.to_client(b"250 queued\r\n");
        let done = p.take_complete();
        assert_eq!(done.len(), 1, "split {split}");
        assert_eq!(email_of(&done[0]), expected, "split {split}");
        // The header block is kept, the body never is.
        assert_eq!(
            done[0].message_headers,
            &MESSAGE[..body_at],
            "split {split}"
        );
    }
}

#[test]
fn email_object_presence_follows_data() {
    // Rejected DATA: the object is still there, with only the status.
    let (_, txs) = run(&[
        (C, b"220 mx\r\n"),
        (S, b"HELO c\r\nMAIL FROM:<a@x>\r\nDATA\r\n"),
        (C, b"250 hi\r\n250 ok\r\n554 no valid recipients\r\n"),
        (S, b"QUIT\r\n"),
        (C, b"221 bye\r\n"),
    ]);
    assert_eq!(txs.len(), 1);
    let e = email_of(&txs[0]);
    assert_eq!((e.from, e.to.len(), e.status), (None, 0, "PARSE_DONE"));
    // BDAT is never MIME-parsed, an envelope alone has no message: no object.
    let (_, txs) = run(&[
        (C, b"220 mx\r\n"),
        (S, b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 22 LAST\r\nFrom: a@x\r\nTo: b@y\r\n\r\n"),
        (C, b"250 hi\r\n250 ok\r\n250 ok\r\n250 done\r\n"),
        (S, b"MAIL FROM:<c@x>\r\nRSET\r\n"),
        (C, b"250 ok\r\n250 reset\r\n"),
    ]);
    assert_eq!(txs.len(), 2);
    assert!(txs.iter().all(|t| t.eve().email.is_none()), "{txs:?}");
}

#[test]
fn email_header_edge_cases() {
    // Empty To: gives no `to`; first header of a name wins; names are case-insensitive;
    // lines without a colon and a continuation before any header are ignored.
    let e = EmailEve::from_headers(
        b" stray\nbogus line\nto:\nTO: x@y\nfrom:a\nFrom: b\ncc: , ,\n\nCc: late@x\n",
    );
    assert_eq!(e.from.as_deref(), Some("a"));
    assert!(e.to.is_empty(), "{e:?}");
    assert!(e.cc.is_empty(), "{e:?}");
    // A message ending inside its headers still yields them (without the `.` line).
    let (_, txs) = run(&[
        (C, b"220 mx\r\n"),
        (S, b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
        (C, b"250 hi\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        (S, b"From: only@x\r\n.\r\n"),
        (C, b"250 queued\r\n"),
    ]);
    assert_eq!(txs[0].message_headers, b"From: only@x\r\n");
    assert_eq!(email_of(&txs[0]).from.as_deref(), Some("only@x"));
}

#[test]
fn message_header_bytes_are_capped() {
    let mut p = SmtpParser::new();
    p.to_client(b"220 mx\r\n");
    p.to_server(b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
    p.to_client(b"250 hi\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    p.to_server(b"From: first@x\r\n");
    let line = [b"X-Pad: ".as_slice(), &[b'p'; 1000], b"\r\n"].concat();
    for _ in 0..200 {
        p.to_server(&line);
    }
    p.to_server(b"\r\nbody\r\n.\r\n");
    p.to_client(b"250 queued\r\n");
    let tx = p.take_complete().pop().expect("tx");
    assert_eq!(tx.message_headers.len(), MAX_HEADER_BYTES);
    assert_eq!(email_of(&tx).from.as_deref(), Some("first@x"));
}

/// A well-formed reply code outside Suricata's table (RFC 5321 §4.2 syntax: first digit 2-5,
/// second 0-5) is an `INVALID_REPLY` anomaly (the connection's first one; every one is
/// counted) and parsing goes on: the reply still answers its command, so the queue stays
/// aligned. Suricata stops the parser
/// there; sekisho keeps inspecting (issue 10: a parser that stops cannot see later
/// recipients).
#[test]
fn unknown_but_well_formed_reply_codes_are_anomalies_and_parsing_goes_on() {
    let mut p = SmtpParser::new();
    p.to_client(b"220 hi\r\n");
    p.to_server(b"EHLO c\r\n");
    p.to_client(EHLO_PLAIN);
    p.to_server(b"MAIL FROM:<a@b>\r\nRCPT TO:<x@null-mx.example>\r\n");
    // RFC 7504's 556, multi-line: one anomaly for the reply, not one per line.
    p.to_client(b"250 ok\r\n556-5.1.10 no mail\r\n556 5.1.10 here\r\n");
    assert!(!p.has_failed());
    assert_eq!(p.queued(), 0, "the 556 answered the RCPT TO");
    p.to_server(b"RCPT TO:<y@example.net>\r\n");
    // A server's own 2xx code outside the table, with no text at all.
    assert_eq!(p.to_client(b"254\r\n"), Status::Continue);
    p.to_server(b"DATA\r\n");
    p.to_client(b"354 go\r\n");
    // The 354 answered DATA (not the RCPT): the client is in data mode.
    p.to_server(b"Subject: x\r\n\r\nRCPT TO:<not@a.command>\r\n.\r\n");
    p.to_client(b"250 queued\r\n");
    p.to_server(b"RCPT TO:<z@example.org>\r\n");
    assert!(!p.has_failed());
    assert_eq!(p.unknown_replies(), 2);
    let txs: Vec<SmtpTx> = p.txs().cloned().collect();
    assert_eq!(
        txs[0].rcpt_to,
        vec![b"<x@null-mx.example>".to_vec(), b"<y@example.net>".to_vec()]
    );
    assert!(txs[0].data_complete);
    // One anomaly, as Suricata logs (it stops at the first such code).
    assert_eq!(events(&txs[0], SmtpEvent::InvalidReply), 1);
    // The recipient after the message opened the next transaction: parsing went on.
    assert_eq!(txs[1].rcpt_to, vec![b"<z@example.org>".to_vec()]);
    let raised: Vec<_> = p.take_raised().collect();
    assert_eq!(raised, vec![(0, SmtpEvent::InvalidReply)]);
}

/// What is not a well-formed reply line stays a parser error: non-digits, a first digit
/// outside 2-5, a second digit above 5 (Suricata's `472`), a fourth byte that is neither SP
/// nor `-`, fewer than 3 bytes.
#[test]
fn malformed_reply_lines_still_stop_the_parser() {
    for bad in [
        &b"hello\r\n"[..],
        b"600 x\r\n",
        b"199 x\r\n",
        b"472 x\r\n",
        b"2999 x\r\n",
        b"299 x\r\n",
        b"556x\r\n",
        b"55\r\n",
        b"\r\n",
    ] {
        let mut p = SmtpParser::new();
        p.to_client(b"220 hi\r\n");
        p.to_server(b"EHLO c\r\n");
        assert_eq!(
            p.to_client(bad),
            Status::Error,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
        assert!(p.has_failed());
        assert_eq!(p.unknown_replies(), 0);
        let tx = p.tx(0).expect("tx");
        assert_eq!(events(tx, SmtpEvent::InvalidReply), 1);
    }
}
