//! Fuzz target: arbitrary bytes through app-layer protocol detection, both the content
//! probes (`app::detect::probe`) and a flow's `AppLayer` (detection, held bytes, hand-over
//! to the SMTP parser, STARTTLS).
//!
//! Input layout: byte 0 picks transport (bit 0: TCP/UDP), the SMTP banner probe (bit 1) and
//! the server port (bits 2..5, from a table of ports the probes care about); byte 1 scales
//! the detection limits (tiny, so the give-up paths are reached); then records
//! `[ctl, len, bytes...]`: `ctl & 1` the direction, `ctl & 2` a gap of `len` bytes instead
//! of data. Invariants: no panic; a probe's verdict on a prefix holds for the longer bytes
//! (TCP: held bytes are re-probed as they grow); a known or failed flow protocol never goes
//! back to unknown, `failed` is final; a detected protocol has its detection packet; the
//! hold budget (its cap from bits 6..7 of byte 0) is never exceeded and is fully released
//! when the flow is dropped; a flow that ran out of it is `failed`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_engine::app::detect::{probe, Probe};
use sekisho_engine::event::Direction;
use sekisho_engine::app::HoldBudget;
use sekisho_engine::{AppLayer, AppLayerConfig, AppProto};

const PORTS: [u16; 8] = [25, 465, 587, 53, 80, 443, 21, 2525];

fuzz_target!(|data: &[u8]| {
    let [sel, lim, body @ ..] = data else {
        return;
    };
    let (sel, lim, mut rest) = (*sel, *lim, body);
    let l4 = if sel & 1 == 0 { 6 } else { 17 };
    let server_port = PORTS[usize::from(sel >> 2) % PORTS.len()];
    let client_port = if sel & 0x20 != 0 { 53 } else { 40000 };
    let cfg = AppLayerConfig {
        enabled: true,
        server_greeting_probe: sel & 2 != 0,
        max_detect_bytes: usize::from(lim & 0x0f) * 16,
        max_hold_bytes: usize::from(lim >> 4) * 64,
        hold_memcap: usize::from(sel >> 6) * 256,
        ..AppLayerConfig::default()
    };
    // A small engine-wide hold budget (0..768 bytes, from `sel`), so refusals are reached;
    // invariant: the budget's count is exactly what the flow still holds, 0 once dropped.
    let budget = HoldBudget::new(cfg.hold_memcap);
    let mut app = AppLayer::with_budget(l4, client_port, server_port, budget.clone());
    let mut pkt = 0u64;
    let mut prev = AppProto::Unknown;
    while let [ctl, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let (chunk, next) = tail.split_at(len.min(tail.len()));
        rest = next;
        pkt += 1;
        let dir = if ctl & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        if ctl & 2 != 0 && l4 == 6 {
            app.gap(dir, len as u64);
        } else {
            app.feed(&cfg, dir, chunk, pkt);
            check_probe_prefixes(&cfg, l4, dir, client_port, server_port, chunk);
        }
        let now = app.proto();
        if prev != AppProto::Unknown {
            assert_ne!(now, AppProto::Unknown, "protocol went back to unknown");
        }
        if prev == AppProto::Failed {
            assert_eq!(now, AppProto::Failed, "left failed");
        }
        if !matches!(now, AppProto::Unknown | AppProto::Failed) {
            assert!(
                app.detected_at().is_some(),
                "{now:?} without a detection packet"
            );
        }
        if let Some(s) = app.smtp() {
            assert!(s.buffered() <= 2 * sekisho_engine::app::smtp::MAX_LINE_LEN);
        }
        prev = now;
        if app.hold_exhausted() {
            assert_eq!(now, AppProto::Failed, "hold budget spent but the flow is not failed");
        }
        assert!(budget.used() <= cfg.hold_memcap, "hold budget over its cap");
    }
    drop(app);
    assert_eq!(budget.used(), 0, "the hold budget leaked");
});

/// A TCP probe's `Match`/`NoMatch` on a prefix must not change with more bytes.
fn check_probe_prefixes(
    cfg: &AppLayerConfig,
    l4: u8,
    dir: Direction,
    client_port: u16,
    server_port: u16,
    data: &[u8],
) {
    let full = probe(cfg, l4, dir, client_port, server_port, data);
    if l4 != 6 {
        return;
    }
    for n in 0..data.len().min(24) {
        match probe(cfg, l4, dir, client_port, server_port, &data[..n]) {
            Probe::NeedMore => {}
            p => assert_eq!(p, full, "prefix {n} of {data:?}"),
        }
    }
}
