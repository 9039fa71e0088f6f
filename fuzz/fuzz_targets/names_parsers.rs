//! Fuzz target: arbitrary bytes as a TLS, an HTTP/1 and a DNS-over-TCP conversation through
//! `TlsParser`, `HttpParser` and `DnsParser` at once.
//!
//! Input layout: records `[ctl, len, bytes...]` where `ctl & 3` picks the call (0 to-server
//! bytes, 1 to-client bytes, 2 gap to-server, 3 gap to-client) and bit 2 takes what is ready
//! to log, as the engine does. Invariants: no panic; live HTTP transactions stay within
//! `MAX_LIVE_TXS`; the TLS session's lists stay within `MAX_LIST` and its certificate chain
//! within `MAX_CERTS`; a TLS session is logged at most once; DNS keeps at most
//! `dns::MAX_LIVE_TXS` messages of at most `MAX_RECORDS` records per section.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_engine::app::dns::{self, DnsParser, MAX_RECORDS};
use sekisho_engine::app::http::{HttpParser, MAX_LIVE_TXS};
use sekisho_engine::app::tls::{TlsParser, MAX_CERTS, MAX_LIST};
use sekisho_engine::Direction;

fuzz_target!(|data: &[u8]| {
    let mut tls = TlsParser::new();
    let mut http = HttpParser::new();
    let mut dns = DnsParser::new(true);
    let mut logged = 0;
    let mut rest = data;
    while let [ctl, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let (chunk, next) = tail.split_at(len.min(tail.len()));
        rest = next;
        let dir = if ctl & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        if ctl & 2 == 0 {
            tls.feed(dir, chunk);
            http.feed(dir, chunk);
            dns.feed(dir, chunk);
        } else {
            tls.gap(dir, len as u64);
            http.gap(dir, len as u64);
            dns.gap(dir, len as u64);
        }
        assert!(dns.txs().count() <= dns::MAX_LIVE_TXS);
        for m in dns.txs() {
            assert!(m.answers.len() <= MAX_RECORDS && m.authorities.len() <= MAX_RECORDS);
            assert!(m.queries.len() <= MAX_RECORDS && m.additionals.len() <= MAX_RECORDS);
        }
        assert!(http.txs().count() <= MAX_LIVE_TXS);
        let t = tls.tx();
        assert!(t.ciphers.len() <= MAX_LIST && t.extensions.len() <= MAX_LIST);
        assert!(t.certs.len() <= MAX_CERTS);
        for tx in http.txs() {
            let _ = tx.eve();
        }
        if ctl & 4 != 0 {
            logged += usize::from(tls.take_log(false).is_some());
            for tx in http.take_done(false) {
                assert!(tx.is_complete());
            }
            let _ = dns.take_done();
        }
    }
    logged += usize::from(tls.take_log(true).is_some());
    assert!(logged <= 1);
    let _ = http.take_done(true);
});
