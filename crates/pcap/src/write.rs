//! A minimal classic pcap writer (little-endian, microsecond or nanosecond timestamps), used
//! by tools that rewrite captures (the reassembly test's segment shuffler) and by tests that
//! need hand-made malformed inputs next to real ones.

use std::io::{self, Write};

use crate::PacketTime;

/// Writes classic pcap records to any `Write`.
pub struct PcapWriter<W: Write> {
    out: W,
    nanos: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header. `nanos` selects the nanosecond magic (`0xa1b23c4d`).
    pub fn new(mut out: W, link_type: u32, nanos: bool) -> io::Result<Self> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        out.write_all(&magic.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&262_144u32.to_le_bytes())?;
        out.write_all(&link_type.to_le_bytes())?;
        Ok(PcapWriter { out, nanos })
    }

    /// Writes one record; `orig_len` is what the record claims the wire length was.
    pub fn write_packet(&mut self, ts: PacketTime, data: &[u8], orig_len: u32) -> io::Result<()> {
        let frac = if self.nanos { ts.nsec } else { ts.nsec / 1000 };
        self.out.write_all(&(ts.sec as u32).to_le_bytes())?;
        self.out.write_all(&frac.to_le_bytes())?;
        self.out.write_all(&(data.len() as u32).to_le_bytes())?;
        self.out.write_all(&orig_len.to_le_bytes())?;
        self.out.write_all(data)
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
