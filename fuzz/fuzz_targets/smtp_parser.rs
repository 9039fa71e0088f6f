//! Fuzz target: arbitrary bytes as an SMTP conversation through `SmtpParser`.
//!
//! Input layout: byte 0 sets the live-transaction cap (1..=8, small so the "table full"
//! path is reached); then records `[ctl, len, bytes...]` where `ctl & 3` picks the call
//! (0 `to_server`, 1 `to_client`, 2 gap to-server, 3 gap to-client), `len` is the chunk
//! length (for a gap: the number of lost bytes) and bit 2 of `ctl` drains completed
//! transactions afterwards, as the engine does. Invariants: no panic; partial-line buffers,
//! command queue and live transactions stay within their documented caps; offsets never
//! go back; `Error` and `TlsUpgrade` are final.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_engine::app::smtp::{
    Direction, SmtpParser, Status, MAX_LINE_LEN, MAX_QUEUE, MAX_RCPT_PER_TX, MAX_RECORDS_PER_TX,
};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let max_txs = usize::from(sel % 8) + 1;
    let mut p = SmtpParser::new().with_max_live_txs(max_txs);
    let mut last = Status::Continue;
    let mut offsets = (0u64, 0u64);
    while let [ctl, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let (chunk, next) = tail.split_at(len.min(tail.len()));
        rest = next;
        let status = match ctl & 3 {
            0 => p.to_server(chunk),
            1 => p.to_client(chunk),
            op => {
                let dir = if op == 2 {
                    Direction::ToServer
                } else {
                    Direction::ToClient
                };
                p.gap(dir, len as u64);
                last
            }
        };
        match last {
            Status::Error => assert_eq!(status, Status::Error, "recovered from Error"),
            Status::TlsUpgrade { .. } => assert!(
                matches!(status, Status::TlsUpgrade { .. }),
                "left TLS: {status:?}"
            ),
            Status::Continue => {}
        }
        last = status;
        assert!(
            p.buffered() <= 2 * MAX_LINE_LEN,
            "buffered {}",
            p.buffered()
        );
        assert!(p.queued() <= MAX_QUEUE, "queued {}", p.queued());
        let live = p.txs().count();
        assert!(live <= max_txs, "{live} live txs, cap {max_txs}");
        for tx in p.txs() {
            assert!(tx.commands.len() <= MAX_RECORDS_PER_TX);
            assert!(tx.rcpt_to.len() <= MAX_RCPT_PER_TX);
            let _ = tx.eve();
        }
        let now = p.offsets();
        assert!(
            now.0 >= offsets.0 && now.1 >= offsets.1,
            "{offsets:?} -> {now:?}"
        );
        offsets = now;
        if ctl & 4 != 0 {
            for tx in p.take_complete() {
                assert!(tx.is_complete());
            }
            let _ = p.take_updated();
        }
    }
    let _ = p.take_all();
});
