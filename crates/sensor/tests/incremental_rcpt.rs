//! Recipient matching is incremental: in a transaction whose recipients arrive one per
//! packet, the recipient allow list evaluates each recipient once, not every recipient
//! again on every packet (which made a long RCPT list quadratic), and the disallowed one
//! at the end is still caught.

use std::sync::Arc;

use etherparse::PacketBuilder;
use sekisho_engine::{LinkType, Timestamp};
use sekisho_policy::Policy;
use sekisho_sensor::{Mode, RuleSet, Sensor, Settings};

const CLIENT: [u8; 4] = [10, 0, 0, 150];
const SERVER: [u8; 4] = [198, 51, 100, 25];

fn frame(to_server: bool, seq: u32, ack: u32, syn: bool, data: &[u8]) -> Vec<u8> {
    let (src, dst, sport, dport) = if to_server {
        (CLIENT, SERVER, 40000, 25)
    } else {
        (SERVER, CLIENT, 25, 40000)
    };
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 65535);
    if syn {
        b = b.syn();
    }
    let mut out = Vec::new();
    if ack != 0 {
        b.ack(ack).write(&mut out, data).expect("frame");
    } else {
        b.write(&mut out, data).expect("frame");
    }
    out
}

#[test]
fn each_recipient_is_checked_once_and_the_last_disallowed_one_is_dropped() {
    const ALLOWED: u64 = 300;
    let path = sekisho_testutil::repo_root().join("examples/smtp/recipients-strict.yaml");
    let (policy, _) = Policy::check_file(&path, &Default::default())
        .into_result()
        .unwrap_or_else(|d| panic!("policy invalid: {d:?}"));
    let mut settings = Settings::new(Mode::Inline);
    settings.apply_policy(&policy);
    let rules = Arc::new(RuleSet::from_policy(&policy, settings.compile_options()));
    let mut sensor = Sensor::new(&settings, Some(rules));
    let mut ts = 1_000_000_000u64;
    let (mut c, mut s) = (1000u32, 5000u32);
    let mut send = |sensor: &mut Sensor, to_server: bool, data: &[u8], syn: bool| {
        ts += 10;
        let f = if to_server {
            frame(true, c, if syn { 0 } else { s }, syn, data)
        } else {
            frame(false, s, c, syn, data)
        };
        let v = sensor.handle_packet(Timestamp(ts), LinkType::Ethernet, &f);
        while sensor.poll_record().is_some() {}
        let n = data.len() as u32 + u32::from(syn);
        if to_server {
            c = c.wrapping_add(n);
        } else {
            s = s.wrapping_add(n);
        }
        v
    };
    send(&mut sensor, true, &[], true);
    send(&mut sensor, false, &[], true);
    send(&mut sensor, true, &[], false);
    send(&mut sensor, false, b"220 mx ESMTP\r\n", false);
    send(&mut sensor, true, b"EHLO c\r\n", false);
    send(&mut sensor, false, b"250 mx\r\n", false);
    send(&mut sensor, true, b"MAIL FROM:<a@example.net>\r\n", false);
    send(&mut sensor, false, b"250 ok\r\n", false);
    for i in 0..ALLOWED {
        let v = send(&mut sensor, true, b"RCPT TO:<alice@example.com>\r\n", false);
        assert!(!v.is_drop(), "allowed recipient {i} dropped");
        send(&mut sensor, false, b"250 ok\r\n", false);
    }
    let v = send(
        &mut sensor,
        true,
        b"RCPT TO:<mallory@evil.example>\r\n",
        false,
    );
    assert!(v.is_drop(), "the disallowed recipient passed");
    // One evaluation per recipient: 301, where re-scanning every packet would take
    // 301 * 302 / 2 = 45,451.
    let instances = sensor.detect_stats().instances;
    assert_eq!(instances, ALLOWED + 1);
}
