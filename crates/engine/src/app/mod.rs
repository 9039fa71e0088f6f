//! Application layer: protocol detection per flow and the parsers behind it (sans-I/O state
//! machines fed with in-order reassembled stream bytes per direction; UDP: one datagram per
//! call).
//!
//! # Detection
//! The engine keeps one [`AppLayer`] per flow, created on the flow's first payload byte (TCP
//! after reassembly, UDP per datagram). Protocols are recognised by content
//! ([`detect::probe`]): TLS handshake records, SMTP `EHLO`/`HELO`/`QUIT` and (with
//! [`AppLayerConfig::smtp_server_banner`], Suricata 8) the server's `220` banner on ports
//! 25/465, HTTP/1 request methods and `HTTP/1.` responses, DNS over UDP port 53. Only SMTP
//! has a parser so far; for the others only the protocol is set.
//!
//! The rule, per direction and then for the flow:
//! * A direction is **pending** until its first bytes match a protocol (**matched**) or
//!   definitely match none (**no match**). A direction still pending after more than
//!   [`AppLayerConfig::max_detect_bytes`] counts as no match. A UDP datagram is judged
//!   alone: the first datagram of a direction decides it.
//! * The flow's protocol ([`AppLayer::proto`]) is that of the **first direction to match**;
//!   [`AppLayer::detected_at`] records that packet. A later match of a different protocol in
//!   the other direction only sets [`AppLayer::proto_dir`] of that direction (Suricata's
//!   `app_proto_ts`/`app_proto_tc`, e.g. a TLS ClientHello to an SMTP server: flow `tls`,
//!   to-client `smtp`); a direction with no match takes the flow's protocol (its data goes to
//!   the flow's parser, as in Suricata).
//! * The flow becomes [`AppProto::Failed`] when both directions have had data and neither
//!   matched; when a direction with no match has carried more than
//!   [`AppLayerConfig::max_hold_bytes`] (default 64 KiB) while the protocol is still unknown
//!   (one side talks, the other stays silent or undecided: Suricata's one-sided bail-out,
//!   which waits for 100000 bytes); or on a reassembly gap before the protocol is known.
//!   So a client that has not spoken yet can still be detected after a long server
//!   greeting (suricata-verify `smtp-bug-6053`: a 5038-byte banner, then EHLO).
//! * Until then each TCP direction's bytes are held (at most `max_hold_bytes` each, the
//!   held amount is what the failure rule allows), so the parser sees the whole stream once
//!   detection succeeds: the other direction's held bytes first, then the detecting
//!   direction's. After detection every in-order chunk of both directions goes to the
//!   parser, gaps via [`smtp::SmtpParser::gap`].
//! * SMTP `STARTTLS` accepted: the flow becomes [`AppProto::Tls`] (both directions),
//!   [`AppLayer::proto_orig`] is `Smtp`, and the SMTP parser gets no more bytes.

pub mod detect;
pub mod smtp;

pub use smtp::SmtpEve;

use serde::Serialize;

use crate::config::AppLayerConfig;
use crate::event::Direction;
use detect::{probe, Probe, PROBE_LEN};
use smtp::SmtpParser;

/// An application-layer protocol, as EVE's `app_proto` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppProto {
    /// Not (yet) known: no payload, or detection still undecided.
    Unknown,
    /// SMTP (parsed: transactions, `smtp` records).
    Smtp,
    /// TLS (detected only; after SMTP STARTTLS too).
    Tls,
    /// HTTP/1 (detected only).
    Http,
    /// DNS over UDP (detected only).
    Dns,
    /// Detection gave up (see [`crate::app`] for the rule).
    Failed,
}

impl AppProto {
    /// EVE's name: `unknown`, `smtp`, `tls`, `http`, `dns`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            AppProto::Unknown => "unknown",
            AppProto::Smtp => "smtp",
            AppProto::Tls => "tls",
            AppProto::Http => "http",
            AppProto::Dns => "dns",
            AppProto::Failed => "failed",
        }
    }
}

/// Detection state of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirStatus {
    Pending,
    NoMatch,
    Matched(AppProto),
}

#[derive(Debug)]
struct DirDetect {
    status: DirStatus,
    /// Payload bytes seen in this direction while its status was decided.
    bytes: u64,
    /// Before the flow's protocol is known: the direction's bytes (for the parser later).
    /// After: at most [`PROBE_LEN`] first bytes, only while the direction is pending.
    held: Vec<u8>,
}

impl DirDetect {
    fn new() -> Self {
        DirDetect {
            status: DirStatus::Pending,
            bytes: 0,
            held: Vec::new(),
        }
    }
}

/// App-layer state of one flow: detected protocol(s) and the protocol's parser.
///
/// The engine feeds it ([`AppLayer::feed`], [`AppLayer::gap`]) before the inspector sees
/// the same bytes, so an [`crate::Inspector`] reads an up-to-date state through
/// [`crate::PacketContext::app`]. Memory: at most `2 * max_hold_bytes` held during
/// detection, then the parser's own bounds.
#[derive(Debug)]
pub struct AppLayer {
    l4: u8,
    client_port: u16,
    server_port: u16,
    proto: AppProto,
    orig: Option<AppProto>,
    dir_proto: [AppProto; 2],
    dirs: [DirDetect; 2],
    detected_at: Option<(Direction, u64)>,
    smtp: Option<Box<SmtpParser>>,
}

impl AppLayer {
    /// State for a flow of IP protocol `l4` (6 TCP, 17 UDP) between `client_port` and
    /// `server_port`.
    pub fn new(l4: u8, client_port: u16, server_port: u16) -> Self {
        AppLayer {
            l4,
            client_port,
            server_port,
            proto: AppProto::Unknown,
            orig: None,
            dir_proto: [AppProto::Unknown; 2],
            dirs: [DirDetect::new(), DirDetect::new()],
            detected_at: None,
            smtp: None,
        }
    }

    /// The flow's protocol: `Unknown` until detected, `Failed` when detection gave up, `Tls`
    /// after an accepted SMTP STARTTLS.
    pub fn proto(&self) -> AppProto {
        self.proto
    }

    /// The protocol before a protocol change (`Some(Smtp)` after STARTTLS), else `None`.
    pub fn proto_orig(&self) -> Option<AppProto> {
        self.orig
    }

    /// The protocol of one direction (Suricata's `app_proto_ts` / `app_proto_tc`).
    pub fn proto_dir(&self, dir: Direction) -> AppProto {
        self.dir_proto[dir.index()]
    }

    /// The SMTP parser, once the flow was detected as SMTP (kept after STARTTLS, no longer
    /// fed).
    pub fn smtp(&self) -> Option<&SmtpParser> {
        self.smtp.as_deref()
    }

    /// The SMTP parser, mutably (the engine takes completed transactions from it).
    pub fn smtp_mut(&mut self) -> Option<&mut SmtpParser> {
        self.smtp.as_deref_mut()
    }

    /// Direction and packet number of the packet whose data made detection succeed.
    pub fn detected_at(&self) -> Option<(Direction, u64)> {
        self.detected_at
    }

    /// Feeds in-order bytes of `dir` (TCP: a reassembled chunk; UDP: one datagram) that
    /// packet `pkt_num` released.
    pub fn feed(&mut self, cfg: &AppLayerConfig, dir: Direction, data: &[u8], pkt_num: u64) {
        if data.is_empty() {
            return;
        }
        match self.proto {
            AppProto::Unknown => self.detect(cfg, dir, data, pkt_num),
            AppProto::Failed => {}
            _ => {
                self.probe_other(cfg, dir, data);
                self.parse(dir, data);
            }
        }
    }

    /// Reports `len` bytes of `dir` lost for good (reassembly gap).
    pub fn gap(&mut self, dir: Direction, len: u64) {
        let d = dir.index();
        match self.proto {
            // Suricata: a gap at the stream start ends detection unless the other side
            // already found the protocol.
            AppProto::Unknown => self.fail(),
            AppProto::Failed => {}
            p => {
                if self.dirs[d].status == DirStatus::Pending {
                    self.dirs[d].status = DirStatus::NoMatch;
                    self.dirs[d].held = Vec::new();
                    self.dir_proto[d] = p;
                }
                if p == AppProto::Smtp {
                    if let Some(s) = self.smtp.as_deref_mut() {
                        s.gap(dir, len);
                    }
                }
            }
        }
    }

    fn is_tcp(&self) -> bool {
        self.l4 == 6
    }

    fn probe(&self, cfg: &AppLayerConfig, dir: Direction, data: &[u8]) -> Probe {
        probe(cfg, self.l4, dir, self.client_port, self.server_port, data)
    }

    /// Detection while the flow's protocol is unknown.
    fn detect(&mut self, cfg: &AppLayerConfig, dir: Direction, data: &[u8], pkt_num: u64) {
        let d = dir.index();
        let max = cfg.max_detect_bytes;
        let hold = cfg.max_hold_bytes.max(max);
        let tcp = self.is_tcp();
        // Fast path (the common case): a direction's first chunk matches by itself, so
        // nothing is copied.
        if self.dirs[d].status == DirStatus::Pending
            && self.dirs[d].held.is_empty()
            && max >= PROBE_LEN
        {
            if let Probe::Match(p) = self.probe(cfg, dir, data) {
                let st = &mut self.dirs[d];
                st.bytes = st.bytes.saturating_add(data.len() as u64);
                st.status = DirStatus::Matched(p);
                self.detected(p, dir, pkt_num, data);
                return;
            }
        }
        let st = &mut self.dirs[d];
        st.bytes = st.bytes.saturating_add(data.len() as u64);
        // TCP bytes are held for the parser (UDP protocols have none yet).
        let taken = if tcp {
            let n = hold.saturating_sub(st.held.len()).min(data.len());
            st.held.extend_from_slice(&data[..n]);
            n
        } else {
            0
        };
        let status = self.dirs[d].status;
        if status == DirStatus::Pending {
            let r = if tcp {
                self.probe(cfg, dir, &self.dirs[d].held)
            } else {
                self.probe(cfg, dir, data)
            };
            self.dirs[d].status = match r {
                Probe::Match(p) => DirStatus::Matched(p),
                Probe::NoMatch => DirStatus::NoMatch,
                Probe::NeedMore if !tcp || self.dirs[d].bytes > max as u64 => DirStatus::NoMatch,
                Probe::NeedMore => DirStatus::Pending,
            };
        }
        let st = &self.dirs[d];
        match st.status {
            DirStatus::Matched(p) => self.detected(p, dir, pkt_num, &data[taken..]),
            DirStatus::NoMatch
                if self.dirs[1 - d].status == DirStatus::NoMatch || st.bytes > hold as u64 =>
            {
                self.fail()
            }
            _ => {}
        }
    }

    /// Direction `dir` matched `p`: the flow is `p`; held bytes go to the parser, then `rest`
    /// (the part of the current chunk that was not held).
    fn detected(&mut self, p: AppProto, dir: Direction, pkt_num: u64, rest: &[u8]) {
        let d = dir.index();
        let o = 1 - d;
        self.proto = p;
        self.detected_at = Some((dir, pkt_num));
        self.dir_proto[d] = p;
        if self.dirs[o].status == DirStatus::NoMatch {
            self.dir_proto[o] = p;
        }
        let other = std::mem::take(&mut self.dirs[o].held);
        let mine = std::mem::take(&mut self.dirs[d].held);
        if p == AppProto::Smtp && self.is_tcp() {
            self.smtp = Some(Box::default());
            let other_dir = dir.reverse();
            // The other side's bytes arrived before this chunk: they go first.
            self.parse(other_dir, &other);
            self.parse(dir, &mine);
            self.parse(dir, rest);
        }
        // A still-pending other direction keeps probing its first bytes for `proto_dir`.
        if self.dirs[o].status == DirStatus::Pending {
            let mut h = other;
            h.truncate(PROBE_LEN);
            h.shrink_to_fit();
            self.dirs[o].held = h;
        }
    }

    /// After detection: decides `proto_dir` of a direction that has not matched yet.
    fn probe_other(&mut self, cfg: &AppLayerConfig, dir: Direction, data: &[u8]) {
        let d = dir.index();
        if self.dirs[d].status != DirStatus::Pending {
            return;
        }
        let first = if self.dirs[d].held.is_empty() {
            self.probe(cfg, dir, data)
        } else {
            Probe::NeedMore
        };
        let r = if first != Probe::NeedMore {
            first
        } else if self.is_tcp() {
            let st = &mut self.dirs[d];
            let n = PROBE_LEN.saturating_sub(st.held.len()).min(data.len());
            st.held.extend_from_slice(&data[..n]);
            let r = self.probe(cfg, dir, &self.dirs[d].held);
            if r == Probe::NeedMore && self.dirs[d].held.len() >= PROBE_LEN {
                Probe::NoMatch
            } else {
                r
            }
        } else {
            match self.probe(cfg, dir, data) {
                Probe::NeedMore => Probe::NoMatch,
                r => r,
            }
        };
        let (status, p) = match r {
            Probe::NeedMore => return,
            Probe::Match(q) => (DirStatus::Matched(q), q),
            Probe::NoMatch => (DirStatus::NoMatch, self.proto),
        };
        self.dirs[d].status = status;
        self.dirs[d].held = Vec::new();
        self.dir_proto[d] = p;
    }

    /// Feeds the flow's parser (SMTP only so far) and follows a STARTTLS upgrade.
    fn parse(&mut self, dir: Direction, data: &[u8]) {
        if data.is_empty() || self.proto != AppProto::Smtp {
            return;
        }
        let Some(s) = self.smtp.as_deref_mut() else {
            return;
        };
        s.feed(dir, data);
        if s.is_tls() {
            self.orig = Some(AppProto::Smtp);
            self.proto = AppProto::Tls;
            self.dir_proto = [AppProto::Tls; 2];
            for st in &mut self.dirs {
                st.status = DirStatus::Matched(AppProto::Tls);
                st.held = Vec::new();
            }
        }
    }

    fn fail(&mut self) {
        self.proto = AppProto::Failed;
        for (st, p) in self.dirs.iter_mut().zip(self.dir_proto.iter_mut()) {
            if st.bytes > 0 {
                *p = AppProto::Failed;
            }
            st.status = DirStatus::NoMatch;
            st.held = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{ToClient, ToServer};

    fn cfg(banner: bool) -> AppLayerConfig {
        AppLayerConfig {
            smtp_server_banner: banner,
            ..AppLayerConfig::default()
        }
    }

    const BANNER: &[u8] = b"220 mx.example ESMTP\r\n";

    #[test]
    fn banner_detects_smtp_only_with_suricata8_profile() {
        let mut a = AppLayer::new(6, 40000, 25);
        a.feed(&cfg(true), ToClient, BANNER, 4);
        assert_eq!(a.proto(), AppProto::Smtp);
        assert_eq!(a.detected_at(), Some((ToClient, 4)));
        assert_eq!(a.proto_dir(ToServer), AppProto::Unknown);
        a.feed(&cfg(true), ToServer, b"EHLO c\r\n", 6);
        assert_eq!(a.proto_dir(ToServer), AppProto::Smtp);
        assert_eq!(a.smtp().and_then(|s| s.helo()), Some(&b"c"[..]));

        let mut b = AppLayer::new(6, 40000, 25);
        b.feed(&cfg(false), ToClient, BANNER, 4);
        assert_eq!(b.proto(), AppProto::Unknown);
        assert!(b.smtp().is_none());
        // EHLO split over two chunks: needs both.
        b.feed(&cfg(false), ToServer, b"EH", 6);
        assert_eq!(b.proto(), AppProto::Unknown);
        b.feed(&cfg(false), ToServer, b"LO c\r\nMAIL FROM:<a@b>\r\n", 7);
        assert_eq!(b.proto(), AppProto::Smtp);
        assert_eq!(b.detected_at(), Some((ToServer, 7)));
        // The held banner went to the parser first: greeting accepted, no anomaly; the held
        // and current bytes were parsed (helo and envelope).
        let s = b.smtp().expect("parser");
        assert!(s.connection_events().is_empty());
        assert_eq!(s.helo(), Some(&b"c"[..]));
        assert_eq!(
            s.tx(0).and_then(|t| t.mail_from.clone()),
            Some(b"<a@b>".to_vec())
        );
        // The banner direction matched nothing: it takes the flow's protocol.
        assert_eq!(b.proto_dir(ToClient), AppProto::Smtp);
    }

    #[test]
    fn both_directions_unmatched_fail() {
        let mut a = AppLayer::new(6, 40000, 9999);
        a.feed(&cfg(true), ToServer, b"hello there\r\n", 4);
        assert_eq!(a.proto(), AppProto::Unknown);
        a.feed(&cfg(true), ToClient, b"garbage\r\n", 5);
        assert_eq!(a.proto(), AppProto::Failed);
        assert_eq!(a.proto_dir(ToServer), AppProto::Failed);
        assert_eq!(a.detected_at(), None);
        // Nothing is detected afterwards.
        a.feed(&cfg(true), ToServer, b"EHLO x\r\n", 6);
        assert_eq!(a.proto(), AppProto::Failed);
    }

    #[test]
    fn one_sided_unmatched_fails_after_max_hold_bytes() {
        let c = AppLayerConfig {
            max_detect_bytes: 8,
            max_hold_bytes: 32,
            ..cfg(true)
        };
        let mut a = AppLayer::new(6, 40000, 9999);
        a.feed(&c, ToServer, &[b'x'; 32], 4);
        assert_eq!(a.proto(), AppProto::Unknown, "at the limit: still waiting");
        a.feed(&c, ToServer, b"y", 5);
        assert_eq!(a.proto(), AppProto::Failed);
        assert_eq!(a.proto_dir(ToClient), AppProto::Unknown, "no data that way");
    }

    /// A direction still undecided past `max_detect_bytes` gives up (no match), and the
    /// long held greeting still reaches the parser once the client is detected.
    #[test]
    fn long_greeting_then_client_detection() {
        let c = AppLayerConfig {
            max_detect_bytes: 8,
            ..cfg(false)
        };
        let mut a = AppLayer::new(6, 40000, 25);
        let mut greeting = b"220 ".to_vec();
        greeting.extend_from_slice(&[b'x'; 5000]);
        greeting.extend_from_slice(b"\r\n");
        a.feed(&c, ToClient, &greeting, 4);
        assert_eq!(a.proto(), AppProto::Unknown);
        // Pending ("EH") with more than max_detect_bytes: that direction gives up.
        let mut b = AppLayer::new(6, 40000, 25);
        b.feed(&c, ToServer, b"EH", 1);
        b.feed(&c, ToServer, &[b' '; 8], 2);
        b.feed(&c, ToClient, b"junk\r\n", 3);
        assert_eq!(b.proto(), AppProto::Failed);
        // The first one: EHLO arrives, SMTP; the truncated greeting was parsed first.
        a.feed(&c, ToServer, b"EHLO c\r\n", 6);
        assert_eq!(a.proto(), AppProto::Smtp);
        let s = a.smtp().expect("parser");
        assert_eq!(s.offsets().1, greeting.len() as u64);
        // The greeting was seen (cut at the line limit), before the EHLO.
        let ev = s.connection_events();
        assert!(ev.contains(&smtp::SmtpEvent::TruncatedLine), "{ev:?}");
        assert!(
            !ev.contains(&smtp::SmtpEvent::NoServerWelcomeMessage),
            "{ev:?}"
        );
    }

    #[test]
    fn gap_before_detection_fails() {
        let mut a = AppLayer::new(6, 40000, 25);
        a.gap(ToServer, 100);
        assert_eq!(a.proto(), AppProto::Failed);
    }

    #[test]
    fn tls_client_to_smtp_server_mismatch() {
        // smtp-tls-protodetect: ClientHello first, then the server's banner.
        let mut a = AppLayer::new(6, 40000, 25);
        a.feed(
            &cfg(true),
            ToServer,
            &[0x16, 0x03, 0x01, 0x00, 0x10, 0x01],
            4,
        );
        assert_eq!(a.proto(), AppProto::Tls);
        a.feed(&cfg(true), ToClient, BANNER, 5);
        assert_eq!(a.proto(), AppProto::Tls);
        assert_eq!(a.proto_dir(ToServer), AppProto::Tls);
        assert_eq!(a.proto_dir(ToClient), AppProto::Smtp);
        assert!(a.smtp().is_none(), "no SMTP parser on a TLS flow");
    }

    #[test]
    fn starttls_switches_to_tls() {
        let mut a = AppLayer::new(6, 40000, 25);
        let c = cfg(true);
        a.feed(&c, ToClient, BANNER, 1);
        a.feed(&c, ToServer, b"EHLO c\r\n", 2);
        a.feed(&c, ToClient, b"250 ok\r\n", 3);
        a.feed(&c, ToServer, b"STARTTLS\r\n", 4);
        assert_eq!(a.proto(), AppProto::Smtp);
        a.feed(&c, ToClient, b"220 go ahead\r\n", 5);
        assert_eq!(a.proto(), AppProto::Tls);
        assert_eq!(a.proto_orig(), Some(AppProto::Smtp));
        assert_eq!(a.proto_dir(ToServer), AppProto::Tls);
        assert_eq!(a.proto_dir(ToClient), AppProto::Tls);
        let before = a.smtp().map(|s| s.offsets());
        a.feed(&c, ToServer, &[0x16, 0x03, 0x01, 0, 5, 1, 2, 3, 4, 5], 6);
        assert_eq!(
            a.smtp().map(|s| s.offsets()),
            before,
            "parser no longer fed"
        );
    }

    #[test]
    fn http_and_dns_hooks_set_proto_only() {
        let mut h = AppLayer::new(6, 40000, 8080);
        h.feed(&cfg(true), ToServer, b"GET / HTTP/1.1\r\n", 3);
        assert_eq!(h.proto(), AppProto::Http);
        assert!(h.smtp().is_none());
        h.feed(&cfg(true), ToClient, b"HTTP/1.1 200 OK\r\n", 4);
        assert_eq!(h.proto_dir(ToClient), AppProto::Http);

        let q = [
            0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1,
        ];
        let mut d = AppLayer::new(17, 40000, 53);
        d.feed(&cfg(true), ToServer, &q, 1);
        assert_eq!(d.proto(), AppProto::Dns);
        assert_eq!(d.detected_at(), Some((ToServer, 1)));
        // A UDP datagram that is not DNS, both ways: failed.
        let mut u = AppLayer::new(17, 40000, 9999);
        u.feed(&cfg(true), ToServer, &q, 1);
        u.feed(&cfg(true), ToClient, &q, 2);
        assert_eq!(u.proto(), AppProto::Failed);
    }

    #[test]
    fn names() {
        for (p, n) in [
            (AppProto::Unknown, "unknown"),
            (AppProto::Smtp, "smtp"),
            (AppProto::Tls, "tls"),
            (AppProto::Http, "http"),
            (AppProto::Dns, "dns"),
            (AppProto::Failed, "failed"),
        ] {
            assert_eq!(p.as_str(), n);
            assert_eq!(serde_json::to_value(p).ok(), Some(serde_json::json!(n)));
        }
    }
}
