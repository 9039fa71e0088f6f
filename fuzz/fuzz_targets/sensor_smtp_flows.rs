//! Sequence fuzz target: whole SMTP sessions through the sensor, inline, with the recipient
//! allow list of `examples/smtp/recipients-strict.yaml`, mutated the way an attacker would:
//! segmentation, reordering, duplicates, overlaps with different data, forged RSTs, TCP
//! timestamp games, a missing handshake, IPv4 fragments and VXLAN encapsulation.
//!
//! The input bytes steer the mutations; the TCP sequence numbers stay consistent, so the
//! engine reassembles real sessions. Invariants checked on every run:
//! - no panic;
//! - memory within the caps, after every packet: the caps are small here (`CAPS` and the
//!   flow memcap that fits `TABLE` flows; reassembly, defrag, app-layer hold), flows tracked never exceed the table the
//!   flow memcap sizes, and the bytes allocated since just before the sensor was built
//!   (a counting global allocator: what the sensor really holds, plus this harness's own
//!   few KiB) stay within the sum of the caps plus `SLACK` (per-flow parser state, which no
//!   global cap covers yet, queued events, scratch buffers);
//! - **fail closed**: if the bytes the server would have received (the accepted client
//!   segments, in sequence order, first copy of each byte wins, as a receiver discards the
//!   bytes of a retransmission it already has) hold the command line
//!   `RCPT TO:<b@yahoo.example>`, the sensor dropped something of that flow or applied an
//!   exception policy to it (a `drop` record or an exception event).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, OnceLock};

use etherparse::PacketBuilder;
use libfuzzer_sys::fuzz_target;
use sekisho_engine::{Event, LinkType, Timestamp};
use sekisho_sensor::{Mode, Record, RuleSet, Sensor, Settings};

const CLIENT: [u8; 4] = [10, 0, 0, 150];
const SERVER: [u8; 4] = [203, 0, 113, 25];
const DISALLOWED: &[u8] = b"RCPT TO:<b@yahoo.example>";

/// The caps under test, as `--set` keys and bytes. Small, so that a few flows of one input
/// fill them: a few out-of-order segments fill the reassembly budget, a few never-completed
/// fragments the defrag budget. The flow memcap is [`flow_memcap`]: the smallest that
/// fits [`TABLE`] flows.
const CAPS: [(&str, &str, usize); 5] = [
    ("stream.reassembly.memcap", "4kb", 4 << 10),
    ("defrag.memcap", "2kb", 2 << 10),
    ("app-layer.hold-memcap", "2kb", 2 << 10),
    ("stream.memcap", "2kb", 2 << 10),
    ("app-layer.memcap", "16kb", 16 << 10),
];

/// What may be allocated beyond the caps: per-flow SMTP parser state and detection
/// scratch (bounded per flow, not by a global cap yet), queued events and records, the
/// engine's scratch buffers, and this harness's segments and frames. Measured peak over a
/// 10-minute run: see fuzz/README.md.
const SLACK: usize = 512 << 10;

/// Bytes currently allocated through the global allocator (the counting allocator below).
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting live bytes into [`LIVE`].
struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; only a counter is updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Largest growth seen so far (printed with `SEKISHO_FUZZ_MEMREPORT` set, to size `SLACK`).
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// Flows the table holds: fewer than the up to six flows of one input, so they evict each
/// other.
const TABLE: usize = 4;

/// The smallest `flow.memcap` (in KiB steps) whose table holds [`TABLE`] flows, as the
/// table counts them (the table itself, each flow's session and inspection state).
fn flow_memcap(settings: &Settings) -> usize {
    let mut s = settings.clone();
    (1..4096)
        .map(|kib| kib << 10)
        .find(|bytes| {
            s.set("flow.memcap", &bytes.to_string()).expect("flow.memcap");
            Sensor::new(&s, None).flow_capacity() >= TABLE
        })
        .expect("a flow.memcap under 4 MiB fits four flows")
}

fn rules() -> &'static (Arc<RuleSet>, Settings, usize) {
    static R: OnceLock<(Arc<RuleSet>, Settings, usize)> = OnceLock::new();
    R.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/smtp/recipients-strict.yaml");
        let checked = sekisho_policy::Policy::check_file(&path, &Default::default());
        assert!(checked.is_valid(), "{:?}", checked.diagnostics);
        let mut settings = Settings::new(Mode::Inline);
        settings.apply_policy(&checked.policy);
        for (key, value, _) in CAPS {
            settings.set(key, value).expect("cap setting");
        }
        let flow_memcap = flow_memcap(&settings);
        settings
            .set("flow.memcap", &flow_memcap.to_string())
            .expect("flow.memcap");
        let rs = RuleSet::from_policy(&checked.policy, settings.compile_options());
        (Arc::new(rs), settings, flow_memcap)
    })
}

/// A byte source that never runs out (zeros after the input).
struct Steer<'a>(&'a [u8]);

impl Steer<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
}

/// One client→server or server→client segment of the session.
#[derive(Clone)]
struct Seg {
    to_server: bool,
    seq: u32,
    ack: u32,
    flags: u8, // FIN 1, SYN 2, RST 4, PSH 8, ACK 16
    data: Vec<u8>,
    tsval: Option<u32>,
}

const SYN: u8 = 2;
const RST: u8 = 4;
const PSH: u8 = 8;
const ACK: u8 = 16;

fn frame(s: &Seg, port: u16, tunnel: bool, frag: Option<usize>) -> Vec<Vec<u8>> {
    let (src, dst, sp, dp) = if s.to_server {
        (CLIENT, SERVER, port, 25)
    } else {
        (SERVER, CLIENT, 25, port)
    };
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .tcp(sp, dp, s.seq, 65535);
    if s.flags & SYN != 0 {
        b = b.syn();
    }
    if s.flags & ACK != 0 {
        b = b.ack(s.ack);
    }
    if s.flags & RST != 0 {
        b = b.rst();
    }
    if s.flags & PSH != 0 {
        b = b.psh();
    }
    if s.flags & 1 != 0 {
        b = b.fin();
    }
    if let Some(ts) = s.tsval {
        b = match b.options(&[etherparse::TcpOptionElement::Timestamp(ts, 0)]) {
            Ok(b) => b,
            Err(_) => return Vec::new(),
        };
    }
    let mut out = Vec::new();
    if b.write(&mut out, &s.data).is_err() {
        return Vec::new();
    }
    let frames = match frag {
        Some(at) if out.len() > 14 + 20 + 16 => fragment(&out, at),
        _ => vec![out],
    };
    if tunnel {
        frames.into_iter().map(|f| vxlan(&f)).collect()
    } else {
        frames
    }
}

/// Splits the IPv4 packet in `eth` into two fragments at an 8-byte boundary near `at`.
fn fragment(eth: &[u8], at: usize) -> Vec<Vec<u8>> {
    let ip = &eth[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let payload = &ip[ihl..];
    let cut = ((at % payload.len().max(1)) / 8 * 8).max(8).min(payload.len() & !7);
    if cut == 0 || cut >= payload.len() {
        return vec![eth.to_vec()];
    }
    let mut out = Vec::new();
    for (off, part, more) in [(0, &payload[..cut], true), (cut, &payload[cut..], false)] {
        let mut hdr = ip[..ihl].to_vec();
        let total = (ihl + part.len()) as u16;
        hdr[2..4].copy_from_slice(&total.to_be_bytes());
        let fo = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        hdr[6..8].copy_from_slice(&fo.to_be_bytes());
        hdr[10..12].copy_from_slice(&[0, 0]);
        let sum = checksum(&hdr);
        hdr[10..12].copy_from_slice(&sum.to_be_bytes());
        let mut f = eth[..14].to_vec();
        f.extend_from_slice(&hdr);
        f.extend_from_slice(part);
        out.push(f);
    }
    out
}

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Wraps an Ethernet frame in VXLAN (UDP 4789) between two other hosts.
fn vxlan(inner: &[u8]) -> Vec<u8> {
    let mut payload = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    payload.extend_from_slice(inner);
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2])
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(40000, 4789);
    let mut out = Vec::new();
    let _ = b.write(&mut out, &payload);
    out
}

/// The SMTP session: client lines and server replies, in lock-step.
fn dialogue(s: &mut Steer<'_>) -> Vec<(bool, Vec<u8>)> {
    let mut d: Vec<(bool, Vec<u8>)> = vec![(false, b"220 mx.example ESMTP\r\n".to_vec())];
    let mut client = vec![
        b"EHLO client.example\r\n".to_vec(),
        b"MAIL FROM:<a@example.com>\r\n".to_vec(),
        b"RCPT TO:<a@gmail.example>\r\n".to_vec(),
    ];
    if s.byte() & 1 == 0 {
        client.push(format!("{}\r\n", String::from_utf8_lossy(DISALLOWED)).into_bytes());
    }
    client.extend([
        b"DATA\r\n".to_vec(),
        b"Subject: hi\r\n\r\nhello\r\n.\r\n".to_vec(),
        b"QUIT\r\n".to_vec(),
    ]);
    let pipelined = s.byte() & 1 == 1;
    if pipelined {
        d.push((true, client.concat()));
        d.push((false, b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n".to_vec()));
    } else {
        for l in client {
            d.push((true, l));
            d.push((false, b"250 ok\r\n".to_vec()));
        }
    }
    d
}

/// With `SEKISHO_FUZZ_PCAP=FILE`, every frame fed is also written there (classic pcap,
/// Ethernet), so a failing input can be replayed with `sekisho replay --explain`.
fn dump(frame: &[u8], ts: u64) {
    use std::io::Write;
    let Some(path) = std::env::var_os("SEKISHO_FUZZ_PCAP") else {
        return;
    };
    let new = !std::path::Path::new(&path).exists();
    let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&path) else {
        return;
    };
    let mut rec = Vec::new();
    if new {
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
            rec.extend_from_slice(&v.to_le_bytes());
        }
    }
    let len = frame.len() as u32;
    for v in [(ts / 1_000_000) as u32, (ts % 1_000_000) as u32, len, len] {
        rec.extend_from_slice(&v.to_le_bytes());
    }
    rec.extend_from_slice(frame);
    let _ = f.write_all(&rec);
}

fuzz_target!(|data: &[u8]| {
    let (rules, settings, flow_memcap) = rules();
    let mut s = Steer(data);
    let rules = Arc::clone(rules);
    let base = LIVE.load(Ordering::Relaxed);
    let mut sensor = Sensor::new(settings, Some(rules));
    let table = sensor.flow_capacity();
    let bound = flow_memcap + CAPS.iter().map(|c| c.2).sum::<usize>() + SLACK;
    let report = std::env::var_os("SEKISHO_FUZZ_MEMREPORT").is_some();
    let flows = 1 + usize::from(s.byte() % 6);
    let mut ts = 1_000_000u64;
    for f in 0..flows {
        let port = 40000 + f as u16;
        let (mut cseq, mut sseq) = (1000u32, 5000u32);
        let mut segs: Vec<Seg> = Vec::new();
        let handshake = s.byte() % 8 != 0;
        let stamps = s.byte() % 4 == 0;
        let mut tsval = 100u32;
        if handshake {
            segs.push(Seg { to_server: true, seq: cseq, ack: 0, flags: SYN, data: vec![], tsval: None });
            segs.push(Seg { to_server: false, seq: sseq, ack: cseq + 1, flags: SYN | ACK, data: vec![], tsval: None });
            segs.push(Seg { to_server: true, seq: cseq + 1, ack: sseq + 1, flags: ACK, data: vec![], tsval: None });
        }
        cseq += 1;
        sseq += 1;
        for (to_server, bytes) in dialogue(&mut s) {
            // Segmentation: 1 to 4 pieces at steered cut points.
            let pieces = 1 + usize::from(s.byte() % 4);
            let mut cuts: Vec<usize> = (1..pieces)
                .map(|_| usize::from(s.byte()) % bytes.len().max(1))
                .collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut start = 0;
            for end in cuts.into_iter().chain([bytes.len()]) {
                if end <= start {
                    continue;
                }
                let (seq, ack) = if to_server { (cseq, sseq) } else { (sseq, cseq) };
                tsval += 1;
                segs.push(Seg {
                    to_server,
                    seq: seq.wrapping_add(start as u32),
                    ack,
                    flags: ACK | PSH,
                    data: bytes[start..end].to_vec(),
                    tsval: stamps.then_some(tsval),
                });
                start = end;
            }
            if to_server {
                cseq = cseq.wrapping_add(bytes.len() as u32);
            } else {
                sseq = sseq.wrapping_add(bytes.len() as u32);
            }
        }
        // Mutations.
        for _ in 0..usize::from(s.byte() % 8) {
            if segs.is_empty() {
                break;
            }
            let i = usize::from(s.byte()) % segs.len();
            match s.byte() % 6 {
                0 if i + 1 < segs.len() => segs.swap(i, i + 1),
                1 => {
                    let dup = segs[i].clone();
                    segs.insert(i + 1, dup);
                }
                2 => {
                    // Overlap with different data (same length, bytes flipped).
                    let mut o = segs[i].clone();
                    for b in &mut o.data {
                        *b ^= s.byte() | 1;
                    }
                    segs.insert(i + usize::from(s.byte() & 1), o);
                }
                3 => {
                    let mut r = segs[i].clone();
                    r.flags = RST | (r.flags & ACK);
                    r.seq = r.seq.wrapping_add(u32::from(s.byte()) * 97);
                    r.data.clear();
                    segs.insert(i, r);
                }
                4 => segs[i].tsval = Some(u32::MAX - u32::from(s.byte())),
                _ => {}
            }
        }
        let tunnel = s.byte() % 8 == 0;
        // What the server received: accepted client bytes by sequence, first copy wins.
        let mut received: std::collections::BTreeMap<u32, u8> = Default::default();
        let mut blocked = false;
        let debug = std::env::var_os("SEKISHO_FUZZ_DEBUG").is_some();
        if debug {
            eprintln!("flow {f}: port {port} handshake {handshake} stamps {stamps} tunnel {tunnel}");
        }
        for seg in &segs {
            let frag = (s.byte() % 8 == 0).then(|| usize::from(s.byte()));
            // A fragmented segment whose last fragment is lost: its datagram never
            // completes and sits in the defrag budget; the server never gets the segment.
            let lose_tail = frag.is_some() && s.byte() % 4 == 0;
            let mut frames = frame(seg, port, tunnel, frag);
            let mut accepted = true;
            if lose_tail && frames.len() > 1 {
                frames.pop();
                accepted = false;
            }
            for fr in frames {
                ts += 1000;
                dump(&fr, ts);
                let v = sensor.handle_packet(Timestamp(ts), LinkType::Ethernet, &fr);
                accepted &= !v.is_drop();
                while let Some(r) = sensor.poll_record() {
                    match r {
                        Record::Drop(_) => blocked = true,
                        Record::Event(Event::Exception(_)) => blocked = true,
                        _ => {}
                    }
                }
                while sensor.poll_transmit().is_some() {}
                // Each cap on its own, as the engine accounts it (exact between packets;
                // the app layer may pass its cap by one chunk's growth before the flow's
                // parser state is freed, so it is checked after the packet).
                let m = sensor.memuse();
                for (name, used, limit) in [
                    ("stream.memcap", m.stream, m.stream_limit),
                    ("stream.reassembly.memcap", m.reassembly, m.reassembly_limit),
                    ("app-layer.memcap", m.app_layer, m.app_layer_limit),
                    ("app-layer.hold-memcap", m.hold, m.hold_limit),
                ] {
                    assert!(used <= limit, "{name}: {used} bytes charged, over {limit}");
                }
                let grown = LIVE.load(Ordering::Relaxed) - base;
                if report && grown > PEAK.fetch_max(grown, Ordering::Relaxed) {
                    eprintln!("peak growth {grown} bytes (bound {bound})");
                }
                assert!(
                    grown <= bound as isize,
                    "{grown} bytes allocated since the sensor was built: over the caps \
                     ({bound} bytes with slack)"
                );
            }
            if debug {
                eprintln!(
                    "  {} seq {} flags {:#x} frag {:?} accepted {accepted} blocked {blocked} {:?}",
                    if seg.to_server { "c>s" } else { "s>c" },
                    seg.seq,
                    seg.flags,
                    frag,
                    String::from_utf8_lossy(&seg.data)
                );
            }
            assert!(sensor.active_flows() <= table, "flow table over its cap");
            if accepted && seg.to_server && seg.flags & RST == 0 {
                for (k, b) in seg.data.iter().enumerate() {
                    received.entry(seg.seq.wrapping_add(k as u32)).or_insert(*b);
                }
            }
        }
        // The server's in-order stream from the first data byte.
        let mut stream = Vec::new();
        let mut next = 1001u32;
        while let Some(b) = received.get(&next) {
            stream.push(*b);
            next = next.wrapping_add(1);
        }
        // As a command: at the start of a line (inside a garbage line it is no command, for
        // the server as for the parser), and ended by its line feed: a server acts on a
        // command line once it is complete, and bytes past a hole the stream never fills
        // never reach it (a lost fragment carrying the line feed: the crash input
        // fuzz/regressions/sensor_smtp_flows/rcpt-line-never-terminated).
        let delivered = stream
            .windows(DISALLOWED.len() + 1)
            .enumerate()
            .any(|(i, w)| {
                w[0] == b'\n'
                    && &w[1..] == DISALLOWED
                    && stream[i + w.len()..].contains(&b'\n')
            });
        assert!(
            !delivered || blocked,
            "the disallowed recipient reached the server with no drop and no exception"
        );
    }
    sensor.finish(Timestamp(ts + 1));
    while sensor.poll_record().is_some() {}
});
