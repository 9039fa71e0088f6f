//! Reads the real captures in tests/fixtures/captures (made by scripts/captures/make-captures.sh
//! with tcpdump) in every container variant and checks they agree with each other.

use std::path::PathBuf;

use sekisho_pcap::{CaptureReader, ErrorKind, MergedCaptures, PacketTime};

/// Frame counts as tshark reads the fixtures (`tshark -r FILE | wc -l`), an independent
/// reader: 171 in each single capture, 342 (171 per interface) in the merged pcapng.
const TSHARK_FRAMES: usize = 171;
const TSHARK_FRAMES_MERGED: usize = 342;

/// A committed fixture; a missing one fails in CI and is a loud skip elsewhere (`None`).
fn fixture(name: &str) -> Option<PathBuf> {
    sekisho_testutil::require_fixture(format!("tests/fixtures/captures/{name}"))
}

/// One packet: time, link type, bytes, original length.
type Packet = (PacketTime, u32, Vec<u8>, u32);

/// Every packet of a fixture, or `None` when it is missing outside CI.
fn read_all(name: &str) -> Option<Vec<Packet>> {
    let mut r = CaptureReader::open(fixture(name)?).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        out.push((p.ts, p.link_type, p.data.to_vec(), p.orig_len));
    }
    Some(out)
}

#[test]
fn pcap_and_gzipped_pcapng_hold_the_same_packets() {
    let (Some(pcap), Some(ng)) = (read_all("real-eth.pcap"), read_all("real-eth.pcapng.gz")) else {
        return;
    };
    assert_eq!(pcap.len(), TSHARK_FRAMES);
    assert_eq!(pcap.len(), ng.len());
    for (a, b) in pcap.iter().zip(&ng) {
        assert_eq!(a, b);
    }
    assert!(pcap.iter().all(|p| p.1 == 1), "Ethernet link type");
    // Timestamps are non-decreasing in a tcpdump capture and carry microseconds.
    assert!(pcap.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(pcap.iter().any(|p| p.0.nsec % 1_000_000 != 0));
}

#[test]
fn sll2_capture_has_linktype_276() {
    let Some(any) = read_all("real-any-sll2.pcap") else {
        return;
    };
    assert_eq!(any.len(), TSHARK_FRAMES);
    assert!(any.iter().all(|p| p.1 == 276));
}

#[test]
fn merging_interleaves_by_time() {
    let (Some(eth), Some(any)) = (read_all("real-eth.pcap"), read_all("real-any-sll2.pcap")) else {
        return;
    };
    let (Some(a), Some(b)) = (fixture("real-eth.pcap"), fixture("real-any-sll2.pcap")) else {
        return;
    };
    let mut merged = MergedCaptures::open(&[a, b]).unwrap();
    let mut times = Vec::new();
    let n = merged.for_each(None, |p| times.push((p.ts, p.link_type)));
    assert_eq!(n as usize, eth.len() + any.len());
    assert_eq!(n as usize, TSHARK_FRAMES_MERGED);
    assert!(times.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(merged.errors().is_empty());
}

#[test]
fn truncated_file_keeps_earlier_packets() {
    let Some(path) = fixture("real-eth.pcap") else {
        return;
    };
    let bytes = std::fs::read(path).unwrap();
    let cut = bytes.len() - 7;
    let r = CaptureReader::from_reader("cut.pcap", std::io::Cursor::new(bytes[..cut].to_vec()));
    let mut r = r.unwrap();
    let mut n = 0;
    let err = loop {
        match r.next_packet() {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("truncation not detected"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind, ErrorKind::Truncated);
    assert_eq!(err.packets, n);
    assert_eq!(n as usize, TSHARK_FRAMES - 1);
    assert!(err.to_string().contains("truncated capture"), "{err}");
}

#[test]
fn garbage_is_rejected_with_its_magic() {
    let err = CaptureReader::from_reader(
        "junk.bin",
        std::io::Cursor::new(b"hello world, not a capture".to_vec()),
    )
    .err()
    .unwrap();
    assert_eq!(err.kind, ErrorKind::NotCapture { magic: 0x6865_6c6c });
    assert_eq!(
        err.to_string(),
        "junk.bin: not a pcap or pcapng file (magic 0x68656c6c)"
    );
}

#[test]
fn nanosecond_pcap_has_the_same_times() {
    let (Some(us), Some(ns)) = (read_all("real-eth.pcap"), read_all("real-eth-ns.pcap")) else {
        return;
    };
    assert_eq!(us.len(), TSHARK_FRAMES);
    assert_eq!(ns.len(), TSHARK_FRAMES);
    for (a, b) in us.iter().zip(&ns) {
        assert_eq!(
            a.0, b.0,
            "editcap -F nsecpcap keeps µs values, now in ns units"
        );
        assert_eq!(a.2, b.2);
    }
}

#[test]
fn pcapng_with_two_interfaces_keeps_each_link_type() {
    // mergecap of the Ethernet and the SLL2 capture: one section, two IDBs.
    let (Some(merged), Some(eth), Some(any)) = (
        read_all("real-merged-2if.pcapng"),
        read_all("real-eth.pcap"),
        read_all("real-any-sll2.pcap"),
    ) else {
        return;
    };
    assert_eq!(merged.len(), TSHARK_FRAMES_MERGED);
    assert_eq!(merged.len(), eth.len() + any.len());
    assert_eq!(merged.iter().filter(|p| p.1 == 1).count(), eth.len());
    assert_eq!(merged.iter().filter(|p| p.1 == 276).count(), any.len());
    let mut from_merge: Vec<_> = merged
        .iter()
        .filter(|p| p.1 == 1)
        .map(|p| (p.0, p.2.clone()))
        .collect();
    let mut orig: Vec<_> = eth.iter().map(|p| (p.0, p.2.clone())).collect();
    from_merge.sort();
    orig.sort();
    assert_eq!(from_merge, orig);
}

/// A big-endian pcap (what a big-endian host's tcpdump writes: every header field swapped,
/// magic `a1b2c3d4` in big-endian order) holds the same packets as the little-endian one:
/// the legacy format's in-place record reading honours the file's byte order.
#[test]
fn big_endian_pcap_holds_the_same_packets() {
    let (Some(path), Some(le)) = (fixture("real-eth.pcap"), read_all("real-eth.pcap")) else {
        return;
    };
    let raw = std::fs::read(path).unwrap();
    let swap = |b: &mut [u8]| b.reverse();
    let mut be = raw.clone();
    // File header: magic, major, minor, thiszone, sigfigs, snaplen, network.
    for (at, w) in [(0, 4), (4, 2), (6, 2), (8, 4), (12, 4), (16, 4), (20, 4)] {
        swap(&mut be[at..at + w]);
    }
    let mut at = 24;
    while at + 16 <= be.len() {
        let caplen = u32::from_le_bytes(raw[at + 8..at + 12].try_into().unwrap()) as usize;
        for f in 0..4 {
            swap(&mut be[at + 4 * f..at + 4 * f + 4]);
        }
        at += 16 + caplen;
    }
    assert_eq!(at, be.len(), "walked every record");
    let out = std::env::temp_dir().join(format!("sekisho-be-{}.pcap", std::process::id()));
    std::fs::write(&out, &be).unwrap();
    let mut r = CaptureReader::open(&out).unwrap();
    let mut got = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        got.push((p.ts, p.link_type, p.data.to_vec(), p.orig_len));
    }
    std::fs::remove_file(&out).unwrap();
    assert_eq!(got.len(), TSHARK_FRAMES);
    assert_eq!(got, le);
}
