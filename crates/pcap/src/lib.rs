//! Capture file reading: pcap, pcapng, gzip, timestamp-ordered merge of several files.
//!
//! [`CaptureReader`] streams one file (classic pcap in either byte order with µs or ns
//! timestamps, or pcapng with any number of interfaces, each with its own link type and
//! timestamp resolution; gzip-compressed files are detected by their magic and decompressed on
//! the fly). [`MergedCaptures`] reads several files as one capture, in timestamp order.
//! Parsing of the container formats is done by `pcap-parser`; this crate adds streaming,
//! error reporting a user can act on (file, packet count, byte offset) and the merge.
//!
//! Errors never lose what was read before them: a truncated file yields every complete packet
//! and then a [`CaptureError`] of kind [`ErrorKind::Truncated`].
#![warn(missing_docs)]

use std::collections::BinaryHeap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

pub mod rewrite;
pub mod write;

/// Size of the parse buffer; also the largest single record we accept (a pcapng block or a
/// pcap record). 256 KiB is four times the largest IP packet; bigger records are corrupt.
const BUFFER_CAPACITY: usize = 1 << 20;

/// Time of a captured packet, as written in the capture (seconds since the Unix epoch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketTime {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub sec: u64,
    /// Nanoseconds within the second, `< 1_000_000_000`.
    pub nsec: u32,
}

impl PacketTime {
    /// Builds a time from seconds and a fraction expressed in `units_per_sec` units.
    pub fn from_fraction(sec: u64, frac: u64, units_per_sec: u64) -> PacketTime {
        let units = units_per_sec.max(1);
        let extra_sec = frac / units;
        let rem = frac % units;
        // The two resolutions of legacy pcap without a 128-bit division (per packet).
        let nsec = match units {
            1_000_000 => (rem * 1000) as u32,
            1_000_000_000 => rem as u32,
            _ => (u128::from(rem) * 1_000_000_000 / u128::from(units)) as u32,
        };
        PacketTime {
            sec: sec.saturating_add(extra_sec),
            nsec,
        }
    }

    /// Microseconds within the second (truncated), as Suricata prints them.
    pub fn usec(&self) -> u32 {
        self.nsec / 1000
    }
}

/// One packet read from a capture. `data` borrows the reader's buffer until the next call.
#[derive(Debug)]
pub struct Packet<'a> {
    /// Capture time.
    pub ts: PacketTime,
    /// Link-layer header type (a `LINKTYPE_*` number from tcpdump.org).
    pub link_type: u32,
    /// Captured bytes (may be shorter than `orig_len` when the capture used a snap length).
    pub data: &'a [u8],
    /// Length of the packet on the wire, as claimed by the capture record.
    pub orig_len: u32,
}

/// What went wrong reading a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be opened or read.
    Io(String),
    /// The first bytes are neither a pcap, a pcapng nor a gzip magic.
    NotCapture {
        /// The first four bytes, big-endian (0 if the file is shorter).
        magic: u32,
    },
    /// The file ends inside a record: the packets before it were delivered.
    Truncated,
    /// A record is malformed (bad block length, record larger than any packet).
    Malformed(String),
    /// A pcapng packet refers to an interface that was never described.
    UnknownInterface(u32),
}

/// An error reading a capture: which file, what, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    /// The capture file.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: ErrorKind,
    /// Packets successfully read from this file before the error.
    pub packets: u64,
    /// Byte offset (in the uncompressed stream) of the record that could not be read.
    pub offset: u64,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            ErrorKind::Io(e) => write!(f, "{p}: cannot read: {e}"),
            ErrorKind::NotCapture { magic } => {
                write!(f, "{p}: not a pcap or pcapng file (magic 0x{magic:08x})")
            }
            ErrorKind::Truncated => write!(
                f,
                "{p}: truncated capture: file ends inside a record at byte offset {} after {} packets",
                self.offset, self.packets
            ),
            ErrorKind::Malformed(m) => write!(
                f,
                "{p}: malformed capture at byte offset {} after {} packets: {m}",
                self.offset, self.packets
            ),
            ErrorKind::UnknownInterface(id) => write!(
                f,
                "{p}: packet at byte offset {} refers to undeclared interface {id}",
                self.offset
            ),
        }
    }
}

impl std::error::Error for CaptureError {}

/// A `Read` that counts the bytes it delivers into a shared counter (for progress bars).
struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A `Read` that keeps reading until the buffer is full or the source is exhausted, because
/// `pcap-parser` treats a short read of zero bytes as end of file and decoders (gzip) often
/// return short reads.
struct ReadFull<R>(R);

impl<R: Read> Read for ReadFull<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.0.read(&mut buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// Per-interface data of a pcapng section.
#[derive(Clone, Copy)]
struct Iface {
    link_type: u32,
    units_per_sec: u64,
    offset_sec: i64,
}

/// Streaming reader of one capture file.
pub struct CaptureReader {
    path: PathBuf,
    inner: Box<dyn PcapReaderIterator + Send>,
    /// Legacy pcap: link type and fraction units; `None` until the header is seen.
    legacy: Option<(u32, u64)>,
    /// Legacy pcap in its standard record format (not the "modified" one): whether its
    /// fields are big-endian. Lets `next_packet` read a record header in place (16 bytes)
    /// instead of parsing each record twice through the generic block reader.
    legacy_fast: Option<bool>,
    ifaces: Vec<Iface>,
    /// Bytes of the (uncompressed) stream consumed so far.
    offset: u64,
    packets: u64,
    /// Bytes of the file read from disk so far (compressed size for gzip).
    file_bytes: Arc<AtomicU64>,
    file_len: u64,
    /// Block consumed lazily: the length of the block handed out by the last `next_packet`.
    pending_consume: usize,
    done: bool,
}

impl CaptureReader {
    /// Opens a capture file, detecting pcap / pcapng / gzip by magic.
    ///
    /// Errors: the file cannot be opened, or its first bytes are not a known magic.
    pub fn open(path: impl AsRef<Path>) -> Result<CaptureReader, CaptureError> {
        let path = path.as_ref().to_path_buf();
        let err = |kind| CaptureError {
            path: path.clone(),
            kind,
            packets: 0,
            offset: 0,
        };
        let file = File::open(&path).map_err(|e| err(ErrorKind::Io(e.to_string())))?;
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let counter = Arc::new(AtomicU64::new(0));
        let mut buffered = BufReader::with_capacity(
            64 * 1024,
            Counting {
                inner: file,
                counter: Arc::clone(&counter),
            },
        );
        let head = buffered
            .fill_buf()
            .map_err(|e| err(ErrorKind::Io(e.to_string())))?;
        let magic = magic_of(head);
        let source: Box<dyn Read + Send> = if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b
        {
            Box::new(ReadFull(flate2::read::MultiGzDecoder::new(buffered)))
        } else {
            Box::new(ReadFull(buffered))
        };
        Self::from_source(path, source, magic, counter, file_len)
    }

    /// Reads a capture from any byte source (already decompressed); `name` is used in errors.
    pub fn from_reader(
        name: impl Into<PathBuf>,
        source: impl Read + Send + 'static,
    ) -> Result<CaptureReader, CaptureError> {
        let mut buffered = BufReader::new(source);
        let path = name.into();
        let magic = match buffered.fill_buf() {
            Ok(h) => magic_of(h),
            Err(e) => {
                return Err(CaptureError {
                    path,
                    kind: ErrorKind::Io(e.to_string()),
                    packets: 0,
                    offset: 0,
                })
            }
        };
        Self::from_source(
            path,
            Box::new(ReadFull(buffered)),
            magic,
            Arc::new(AtomicU64::new(0)),
            0,
        )
    }

    fn from_source(
        path: PathBuf,
        source: Box<dyn Read + Send>,
        file_magic: u32,
        counter: Arc<AtomicU64>,
        file_len: u64,
    ) -> Result<CaptureReader, CaptureError> {
        let inner = match pcap_parser::create_reader(BUFFER_CAPACITY, source) {
            Ok(r) => r,
            Err(PcapError::ReadError) => {
                return Err(CaptureError {
                    path,
                    kind: ErrorKind::Io("read error (corrupt gzip data?)".into()),
                    packets: 0,
                    offset: 0,
                })
            }
            Err(PcapError::Incomplete(_)) | Err(PcapError::Eof) if file_magic_known(file_magic) => {
                return Err(CaptureError {
                    path,
                    kind: ErrorKind::Truncated,
                    packets: 0,
                    offset: 0,
                })
            }
            Err(_) => {
                return Err(CaptureError {
                    path,
                    kind: ErrorKind::NotCapture { magic: file_magic },
                    packets: 0,
                    offset: 0,
                })
            }
        };
        Ok(CaptureReader {
            path,
            inner,
            legacy: None,
            legacy_fast: None,
            ifaces: Vec::new(),
            offset: 0,
            packets: 0,
            file_bytes: counter,
            file_len,
            pending_consume: 0,
            done: false,
        })
    }

    /// The file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file on disk in bytes (0 when reading from a stream).
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Shared counter of bytes read from disk so far (for progress reporting).
    pub fn bytes_read_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.file_bytes)
    }

    /// Packets delivered so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    fn error(&self, kind: ErrorKind) -> CaptureError {
        CaptureError {
            path: self.path.clone(),
            kind,
            packets: self.packets,
            offset: self.offset,
        }
    }

    /// Returns the next packet, `Ok(None)` at the end of the file.
    ///
    /// After an error the reader is finished: further calls return `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.pending_consume > 0 {
            // Without shifting: `consume` moves the unread half of the buffer to its start
            // every time half is read, i.e. memmoves the whole file once over (a fifth of a
            // no-rules replay's instructions under callgrind); `refill` shifts anyway, when
            // only a partial block is left to move.
            self.inner.consume_noshift(self.pending_consume);
            self.offset += self.pending_consume as u64;
            self.pending_consume = 0;
        }
        if self.done {
            return Ok(None);
        }
        if let Some(big_endian) = self.legacy_fast {
            // The common case: a whole standard pcap record in the buffer. Anything else
            // (a record cut by the buffer's end, end of file, errors) takes the generic path.
            let head = self.inner.data();
            if head.len() >= 16 {
                let field = |at: usize| {
                    let b = [head[at], head[at + 1], head[at + 2], head[at + 3]];
                    if big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                };
                let (ts_sec, ts_frac, caplen, orig_len) = (field(0), field(4), field(8), field(12));
                let len = 16 + caplen as usize;
                if head.len() >= len {
                    let (link_type, units) = self.legacy.unwrap_or((1, 1_000_000));
                    self.pending_consume = len;
                    self.packets += 1;
                    return Ok(Some(Packet {
                        ts: PacketTime::from_fraction(u64::from(ts_sec), u64::from(ts_frac), units),
                        link_type,
                        data: &self.inner.data()[16..len],
                        orig_len,
                    }));
                }
            }
        }
        loop {
            // The borrow checker cannot see that the `Ok` arm's borrow ends when we `continue`,
            // so blocks we skip are handled in two steps: classify, then consume.
            let step = match self.inner.next() {
                Ok((len, block)) => match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        let units = if h.is_nanosecond_precision() {
                            1_000_000_000
                        } else {
                            1_000_000
                        };
                        self.legacy = Some((h.network.0 as u32, units));
                        self.legacy_fast = (!h.is_modified_format()).then(|| h.is_bigendian());
                        Step::Skip(len)
                    }
                    PcapBlockOwned::Legacy(_) => Step::Packet(len),
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        self.ifaces.clear();
                        Step::Skip(len)
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let iface = Iface {
                            link_type: idb.linktype.0 as u32,
                            units_per_sec: idb.ts_resolution().unwrap_or(1_000_000),
                            offset_sec: idb.ts_offset(),
                        };
                        self.ifaces.push(iface);
                        Step::Skip(len)
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(_))
                    | PcapBlockOwned::NG(Block::SimplePacket(_)) => Step::Packet(len),
                    PcapBlockOwned::NG(_) => Step::Skip(len),
                },
                Err(PcapError::Eof) => Step::End,
                Err(PcapError::Incomplete(_)) => Step::Refill,
                Err(PcapError::UnexpectedEof) => Step::Fail(ErrorKind::Truncated),
                Err(PcapError::BufferTooSmall) => Step::Fail(ErrorKind::Malformed(format!(
                    "record larger than {} bytes",
                    BUFFER_CAPACITY
                ))),
                Err(PcapError::ReadError) => Step::Fail(ErrorKind::Io("read error".into())),
                Err(e) => Step::Fail(ErrorKind::Malformed(
                    format!("{e:?}").chars().take(120).collect(),
                )),
            };
            match step {
                Step::Skip(len) => {
                    self.inner.consume_noshift(len);
                    self.offset += len as u64;
                }
                Step::Refill => {
                    if self.inner.refill().is_err() {
                        self.done = true;
                        return Err(self.error(ErrorKind::Io("read error".into())));
                    }
                }
                Step::End => {
                    self.done = true;
                    return Ok(None);
                }
                Step::Fail(kind) => {
                    self.done = true;
                    return Err(self.error(kind));
                }
                Step::Packet(len) => {
                    self.pending_consume = len;
                    return self.current_packet();
                }
            }
        }
    }

    /// Re-parses the block at the head of the buffer (known to be a packet) and returns it.
    fn current_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        let offset = self.offset;
        let packets = self.packets;
        let legacy = self.legacy;
        let ifaces = &self.ifaces;
        let path = &self.path;
        let fail = |kind| CaptureError {
            path: path.clone(),
            kind,
            packets,
            offset,
        };
        let pkt = match self.inner.next() {
            Ok((_, PcapBlockOwned::Legacy(b))) => {
                let (link_type, units) = legacy.unwrap_or((1, 1_000_000));
                let caplen = (b.caplen as usize).min(b.data.len());
                Packet {
                    ts: PacketTime::from_fraction(u64::from(b.ts_sec), u64::from(b.ts_usec), units),
                    link_type,
                    data: &b.data[..caplen],
                    orig_len: b.origlen,
                }
            }
            Ok((_, PcapBlockOwned::NG(Block::EnhancedPacket(epb)))) => {
                let iface = *ifaces
                    .get(epb.if_id as usize)
                    .ok_or_else(|| fail(ErrorKind::UnknownInterface(epb.if_id)))?;
                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let units = iface.units_per_sec.max(1);
                let sec = (raw / units) as i64 + iface.offset_sec;
                let caplen = (epb.caplen as usize).min(epb.data.len());
                Packet {
                    ts: PacketTime::from_fraction(sec.max(0) as u64, raw % units, units),
                    link_type: iface.link_type,
                    data: &epb.data[..caplen],
                    orig_len: epb.origlen,
                }
            }
            Ok((_, PcapBlockOwned::NG(Block::SimplePacket(spb)))) => {
                // SPBs have no timestamp and always belong to interface 0.
                let iface = *ifaces
                    .first()
                    .ok_or_else(|| fail(ErrorKind::UnknownInterface(0)))?;
                let caplen = (spb.origlen as usize).min(spb.data.len());
                Packet {
                    ts: PacketTime::default(),
                    link_type: iface.link_type,
                    data: &spb.data[..caplen],
                    orig_len: spb.origlen,
                }
            }
            _ => {
                return Err(fail(ErrorKind::Malformed(
                    "packet block changed under the reader".into(),
                )))
            }
        };
        self.packets += 1;
        Ok(Some(pkt))
    }
}

enum Step {
    Skip(usize),
    Packet(usize),
    Refill,
    End,
    Fail(ErrorKind),
}

fn magic_of(head: &[u8]) -> u32 {
    let mut m = [0u8; 4];
    let n = head.len().min(4);
    m[..n].copy_from_slice(&head[..n]);
    u32::from_be_bytes(m)
}

fn file_magic_known(magic: u32) -> bool {
    matches!(
        magic,
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 | 0x0a0d_0d0a
    ) || magic >> 16 == 0x1f8b
}

/// A packet with owned bytes, as produced by [`MergedCaptures`].
#[derive(Debug, Clone, Default)]
pub struct OwnedPacket {
    /// Capture time.
    pub ts: PacketTime,
    /// Link-layer header type (`LINKTYPE_*`).
    pub link_type: u32,
    /// Captured bytes.
    pub data: Vec<u8>,
    /// Length on the wire.
    pub orig_len: u32,
    /// Index of the file (in the order given to [`MergedCaptures::open`]) it came from.
    pub file: usize,
}

struct HeapEntry {
    ts: PacketTime,
    file: usize,
}

impl PartialEq for HeapEntry {
    fn eq(&self, other: &Self) -> bool {
        self.ts == other.ts && self.file == other.file
    }
}
impl Eq for HeapEntry {}
impl PartialOrd for HeapEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeapEntry {
    // Reversed: `BinaryHeap` is a max-heap and we want the earliest packet; ties go to the
    // file listed first so the merge is deterministic.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.ts.cmp(&self.ts).then(other.file.cmp(&self.file))
    }
}

/// Several capture files read as one capture, packets in timestamp order (a k-way merge).
///
/// Within one file the file's own order is kept (a file whose timestamps go backwards is not
/// re-sorted). With one file, packets are passed through without the heap.
pub struct MergedCaptures {
    readers: Vec<CaptureReader>,
    heads: Vec<Option<OwnedPacket>>,
    heap: BinaryHeap<HeapEntry>,
    errors: Vec<CaptureError>,
    started: bool,
}

impl MergedCaptures {
    /// Opens all files. Fails on the first file that cannot be opened.
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<MergedCaptures, CaptureError> {
        let readers = paths
            .iter()
            .map(CaptureReader::open)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_readers(readers))
    }

    /// Merges already opened readers.
    pub fn from_readers(readers: Vec<CaptureReader>) -> MergedCaptures {
        let heads = readers.iter().map(|_| None).collect();
        MergedCaptures {
            readers,
            heads,
            heap: BinaryHeap::new(),
            errors: Vec::new(),
            started: false,
        }
    }

    /// Total size on disk of all files (bytes).
    pub fn total_file_len(&self) -> u64 {
        self.readers.iter().map(|r| r.file_len()).sum()
    }

    /// Counters of bytes read from disk, one per file.
    pub fn bytes_read_counters(&self) -> Vec<Arc<AtomicU64>> {
        self.readers
            .iter()
            .map(|r| r.bytes_read_counter())
            .collect()
    }

    /// Errors met so far (a file that failed stops contributing; the others go on).
    pub fn errors(&self) -> &[CaptureError] {
        &self.errors
    }

    fn fill(&mut self, file: usize) {
        let mut slot = self.heads[file].take().unwrap_or_default();
        match self.readers[file].next_packet() {
            Ok(Some(p)) => {
                slot.ts = p.ts;
                slot.link_type = p.link_type;
                slot.orig_len = p.orig_len;
                slot.data.clear();
                slot.data.extend_from_slice(p.data);
                slot.file = file;
                self.heap.push(HeapEntry { ts: slot.ts, file });
                self.heads[file] = Some(slot);
            }
            Ok(None) => {}
            Err(e) => self.errors.push(e),
        }
    }

    /// Calls `f` for every packet in timestamp order until the captures end or `stop` is set.
    /// Returns the number of packets delivered.
    pub fn for_each(&mut self, stop: Option<&AtomicBool>, mut f: impl FnMut(&Packet<'_>)) -> u64 {
        let mut n = 0;
        let stopped = |s: Option<&AtomicBool>| s.is_some_and(|s| s.load(Ordering::Relaxed));
        if self.readers.len() == 1 {
            loop {
                if stopped(stop) {
                    break;
                }
                match self.readers[0].next_packet() {
                    Ok(Some(p)) => {
                        f(&p);
                        n += 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.errors.push(e);
                        break;
                    }
                }
            }
            return n;
        }
        if !self.started {
            self.started = true;
            for i in 0..self.readers.len() {
                self.fill(i);
            }
        }
        while let Some(top) = self.heap.pop() {
            if stopped(stop) {
                self.heap.push(top);
                break;
            }
            if let Some(p) = &self.heads[top.file] {
                f(&Packet {
                    ts: p.ts,
                    link_type: p.link_type,
                    data: &p.data,
                    orig_len: p.orig_len,
                });
                n += 1;
            }
            self.fill(top.file);
        }
        n
    }
}

/// Installs SIGTERM and SIGINT handlers that set the returned flag (first signal), so a
/// replay can stop reading and flush its logs. A second signal terminates the process.
pub fn install_stop_flag() -> io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // Registered first: exits with 1 if the flag is already set (second Ctrl-C).
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&flag))?;
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    Ok(flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_conversion() {
        assert_eq!(
            PacketTime::from_fraction(5, 1, 1_000_000),
            PacketTime { sec: 5, nsec: 1000 }
        );
        assert_eq!(
            PacketTime::from_fraction(5, 1_500_000, 1_000_000),
            PacketTime {
                sec: 6,
                nsec: 500_000_000
            }
        );
        assert_eq!(
            PacketTime::from_fraction(5, 7, 1_000_000_000),
            PacketTime { sec: 5, nsec: 7 }
        );
    }
}
