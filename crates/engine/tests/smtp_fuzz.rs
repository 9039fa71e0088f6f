//! Property tests: arbitrary input never panics and memory stays bounded;
//! for SMTP-like sessions, how the streams are cut into chunks never
//! changes the result.

use proptest::prelude::*;
use sekisho_engine::app::smtp::{SmtpParser, SmtpTx, MAX_LINE_LEN, MAX_LIVE_TXS, MAX_QUEUE};

fn feed(p: &mut SmtpParser, to_server: bool, data: &[u8]) {
    if to_server {
        p.to_server(data);
    } else {
        p.to_client(data);
    }
}

fn check_bounds(p: &SmtpParser) {
    assert!(
        p.buffered() <= 2 * MAX_LINE_LEN,
        "buffered {}",
        p.buffered()
    );
    assert!(p.queued() <= MAX_QUEUE);
    assert!(p.txs().count() <= MAX_LIVE_TXS);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(
        chunks in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..6000)), 0..24),
        gaps in prop::collection::vec((any::<bool>(), 0u64..10_000), 0..3),
    ) {
        let mut p = SmtpParser::new();
        for (i, (dir, data)) in chunks.iter().enumerate() {
            feed(&mut p, *dir, data);
            check_bounds(&p);
            if let Some((gdir, len)) = gaps.get(i) {
                p.gap(
                    if *gdir { sekisho_engine::app::smtp::Direction::ToServer } else { sekisho_engine::app::smtp::Direction::ToClient },
                    *len,
                );
            }
            let _ = p.take_complete();
        }
        let _ = p.take_all();
    }
}

/// Lines a client or server might send, including awkward ones.
fn client_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"EHLO a.example\r\n".to_vec()),
        Just(b"HELO b\r\n".to_vec()),
        Just(b"MAIL FROM:<x@y> SIZE=1\r\n".to_vec()),
        Just(b"RCPT TO:<r@y>\r\n".to_vec()),
        Just(b"rcpt to: <s@y>\n".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b"Subject: hi\r\n".to_vec()),
        Just(b"..stuffed\r\n".to_vec()),
        Just(b".\r\n".to_vec()),
        Just(b"BDAT 7\r\n".to_vec()),
        Just(b"BDAT 3 LAST\r\n".to_vec()),
        Just(b"BDAT 0 LAST\r\n".to_vec()),
        Just(b"BDAT 5 X\r\n".to_vec()),
        Just(b"RSET\r\n".to_vec()),
        Just(b"QUIT\r\n".to_vec()),
        Just(b"AUTH PLAIN AGEAYg==\r\n".to_vec()),
        Just(b"NOOP\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
    ]
}

fn server_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"220 hi\r\n".to_vec()),
        Just(b"250-x\r\n".to_vec()),
        Just(b"250-PIPELINING\r\n".to_vec()),
        Just(b"250 ok\r\n".to_vec()),
        Just(b"354 go\r\n".to_vec()),
        Just(b"221 bye\r\n".to_vec()),
        Just(b"334 VXNlcm5hbWU6\r\n".to_vec()),
        Just(b"550 no\r\n".to_vec()),
        Just(b"503 bad sequence\r\n".to_vec()),
    ]
}

type Summary = Vec<(
    u64,
    Option<Vec<u8>>,
    Vec<Vec<u8>>,
    bool,
    bool,
    Vec<&'static str>,
)>;

fn summarize(mut txs: Vec<SmtpTx>) -> Summary {
    txs.sort_by_key(|t| t.tx_id);
    txs.into_iter()
        .map(|t| {
            let complete = t.is_complete();
            (
                t.tx_id,
                t.mail_from,
                t.rcpt_to,
                t.data_complete,
                complete,
                t.events.iter().map(|e| e.name()).collect(),
            )
        })
        .collect()
}

fn run(steps: &[(bool, Vec<u8>)], cuts: &[usize]) -> Summary {
    let mut p = SmtpParser::new();
    let mut done = Vec::new();
    for (i, (dir, data)) in steps.iter().enumerate() {
        let cut = cuts.get(i).map_or(data.len(), |c| c % (data.len() + 1));
        feed(&mut p, *dir, &data[..cut]);
        feed(&mut p, *dir, &data[cut..]);
        check_bounds(&p);
        done.extend(p.take_complete());
    }
    done.extend(p.take_all());
    summarize(done)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn chunking_does_not_change_the_result(
        steps in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(client_line(), 1..6).prop_map(|l| (true, l.concat())),
                prop::collection::vec(server_line(), 1..4).prop_map(|l| (false, l.concat())),
            ],
            1..30,
        ),
        cuts in prop::collection::vec(any::<usize>(), 30),
    ) {
        let whole = run(&steps, &[]);
        let split = run(&steps, &cuts);
        prop_assert_eq!(whole, split);
    }
}
