//! Reassembly: the real capture (curl/wget HTTP downloads, SMTP, DNS over TCP) rewritten so
//! every TCP data segment arrives split, reordered, duplicated and overlapped (identical bytes)
//! must deliver exactly the same application bytes per flow and direction as the clean capture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sekisho_engine::{AppChunk, Engine, EngineConfig, Inspector, LinkType, Timestamp, Verdict};
use sekisho_pcap::rewrite::shuffle_tcp_segments;
use sekisho_pcap::write::PcapWriter;
use sekisho_pcap::{MergedCaptures, OwnedPacket};

#[derive(Default)]
struct Collect {
    /// (flow id, direction index) → bytes in delivery order.
    streams: BTreeMap<(u64, usize), Vec<u8>>,
    gaps: u64,
}

impl Inspector for Collect {
    fn on_stream_data(&mut self, chunk: &AppChunk<'_>) -> Verdict {
        self.streams
            .entry((chunk.flow_id, chunk.direction.index()))
            .or_default()
            .extend_from_slice(chunk.data);
        if chunk.gap {
            self.gaps += 1;
        }
        Verdict::Accept
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures")
        .join(name)
}

/// Drives the engine (inline, checksums validated) over the capture with the collecting
/// inspector: the bytes each flow direction delivered, and the gaps.
fn app_bytes(pcap: &Path, out: &Path) -> (BTreeMap<(u64, usize), Vec<u8>>, u64) {
    std::fs::create_dir_all(out).unwrap();
    let cfg = EngineConfig {
        inline: true,
        ..EngineConfig::default()
    };
    let mut engine = Engine::with_inspector(cfg, Collect::default());
    let mut merged = MergedCaptures::open(&[pcap]).unwrap();
    let mut last = Timestamp::default();
    merged.for_each(None, |p| {
        let ts = Timestamp::from_secs_nanos(p.ts.sec, u64::from(p.ts.nsec));
        last = last.max(ts);
        let link = LinkType::from_linktype(p.link_type).expect("supported link type");
        engine.handle_packet(ts, link, p.data);
        while engine.poll_event().is_some() {}
    });
    engine.finish(last);
    assert!(merged.errors().is_empty(), "{:?}", merged.errors());
    let c = engine.inspector();
    (c.streams.clone(), c.gaps)
}

#[test]
fn reordered_duplicated_overlapping_segments_give_the_clean_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let clean = fixture("real-eth.pcap");
    let mut packets: Vec<OwnedPacket> = Vec::new();
    let mut merged = MergedCaptures::open(&[&clean]).unwrap();
    merged.for_each(None, |p| {
        packets.push(OwnedPacket {
            ts: p.ts,
            link_type: p.link_type,
            data: p.data.to_vec(),
            orig_len: p.orig_len,
            file: 0,
        })
    });
    let shuffled = shuffle_tcp_segments(&packets);
    assert!(
        shuffled.len() > packets.len() + 50,
        "rewrite did not multiply segments"
    );
    let shuffled_path = dir.path().join("shuffled.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&shuffled_path).unwrap(), 1, false).unwrap();
    for p in &shuffled {
        w.write_packet(p.ts, &p.data, p.orig_len).unwrap();
    }
    w.into_inner().unwrap();

    let (want, clean_gaps) = app_bytes(&clean, &dir.path().join("clean"));
    let (got, shuffled_gaps) = app_bytes(&shuffled_path, &dir.path().join("shuffled"));
    assert_eq!(clean_gaps, 0);
    assert_eq!(shuffled_gaps, 0);
    let total: usize = want.values().map(Vec::len).sum();
    assert!(
        total > 80_000,
        "clean capture delivered only {total} app bytes"
    );
    // The HTTP download bodies are in there.
    assert!(want.values().any(|v| v
        .windows(37)
        .any(|w| w == b"line 01099 of the sekisho fixture fil")));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (k, v) in &want {
        assert!(
            got[k] == *v,
            "flow {k:?}: {} bytes clean, {} bytes after rewrite",
            v.len(),
            got[k].len()
        );
    }
}
