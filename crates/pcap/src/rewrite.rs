//! Rewrites a capture's TCP segments the way a hostile or lossy network delivers them: each
//! data segment is split in two, the halves are sent in reverse order, the first half is
//! duplicated and a segment overlapping both halves (with identical bytes) follows. The byte
//! stream each side sends is unchanged, so a correct reassembler delivers exactly the bytes of
//! the clean capture. Used by the reassembly test; Ethernet + IPv4 only (frames of other kinds
//! are passed through untouched).

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

use crate::{OwnedPacket, PacketTime};

/// Rewrites every IPv4/TCP data segment of an Ethernet capture; other frames are kept.
/// Timestamps stay non-decreasing (pieces of one segment are 1 µs apart).
pub fn shuffle_tcp_segments(packets: &[OwnedPacket]) -> Vec<OwnedPacket> {
    let mut out = Vec::with_capacity(packets.len() * 4);
    let mut last = PacketTime::default();
    for p in packets {
        let pieces = if p.link_type == 1 {
            rewrite_one(&p.data)
        } else {
            None
        };
        match pieces {
            Some(frames) => {
                for (i, f) in frames.into_iter().enumerate() {
                    let mut ts = p.ts;
                    ts.nsec += (i as u32) * 1000;
                    if ts.nsec >= 1_000_000_000 {
                        ts.nsec -= 1_000_000_000;
                        ts.sec += 1;
                    }
                    let ts = ts.max(last);
                    last = ts;
                    out.push(OwnedPacket {
                        ts,
                        link_type: 1,
                        orig_len: f.len() as u32,
                        data: f,
                        file: p.file,
                    });
                }
            }
            None => {
                last = last.max(p.ts);
                out.push(p.clone());
            }
        }
    }
    out
}

/// (offset, len, keep_fin) pieces of a payload of `len` bytes, in emission order.
fn plan(len: usize) -> Vec<(usize, usize, bool)> {
    if len < 2 {
        return vec![(0, len, true), (0, len, false)];
    }
    let h = len / 2;
    let overlap_start = h / 2;
    let overlap_end = h + (len - h).div_ceil(2);
    vec![
        (h, len - h, true),                                  // second half first
        (0, h, false),                                       // then the first half
        (0, h, false),                                       // a duplicate of it
        (overlap_start, overlap_end - overlap_start, false), // overlap, identical bytes
    ]
}

fn rewrite_one(frame: &[u8]) -> Option<Vec<Vec<u8>>> {
    let sliced = SlicedPacket::from_ethernet(frame).ok()?;
    let eth = match &sliced.link {
        Some(etherparse::LinkSlice::Ethernet2(e)) => e.clone(),
        _ => return None,
    };
    let ip = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => ip.header().to_header(),
        _ => return None,
    };
    let tcp = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => t.clone(),
        _ => return None,
    };
    let payload = tcp.payload();
    if payload.is_empty() {
        return None;
    }
    let mut frames = Vec::new();
    for (off, len, keep_fin) in plan(payload.len()) {
        let builder = PacketBuilder::ethernet2(eth.source(), eth.destination())
            .ipv4(ip.source, ip.destination, ip.time_to_live)
            .tcp(
                tcp.source_port(),
                tcp.destination_port(),
                tcp.sequence_number().wrapping_add(off as u32),
                tcp.window_size(),
            );
        let mut b = builder;
        if tcp.ack() {
            b = b.ack(tcp.acknowledgment_number());
        }
        if tcp.psh() {
            b = b.psh();
        }
        if tcp.fin() && keep_fin {
            b = b.fin();
        }
        let data = &payload[off..off + len];
        let mut buf = Vec::with_capacity(b.size(data.len()));
        b.write(&mut buf, data).ok()?;
        frames.push(buf);
    }
    Some(frames)
}

#[cfg(test)]
mod tests {
    use super::plan;

    #[test]
    fn plan_covers_every_byte() {
        for len in 1..50 {
            let mut seen = vec![false; len];
            for (off, l, _) in plan(len) {
                for s in seen.iter_mut().skip(off).take(l) {
                    *s = true;
                }
            }
            assert!(seen.iter().all(|s| *s), "len {len}");
        }
    }
}
