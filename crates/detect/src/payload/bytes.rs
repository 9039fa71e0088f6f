//! Number extraction shared by `byte_test`, `byte_jump` and `byte_extract` (Suricata's
//! `ByteExtractUint64` / `ByteExtractStringUint64`).

use sekisho_rules::NumBase;

use super::transform::is_space;

/// Reads `bytes.len()` (1..=8) bytes as an unsigned integer.
pub(crate) fn read_uint(bytes: &[u8], little: bool) -> u64 {
    let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
    if little {
        bytes.iter().rev().fold(0, fold)
    } else {
        bytes.iter().fold(0, fold)
    }
}

/// C `strtoull` on `s` (which ends where Suricata's NUL-terminated copy ends): optional
/// leading whitespace and sign, `0x` prefix for hex, then digits up to the first non-digit.
/// Returns the value and the number of bytes consumed, or None when no digit was read or
/// the value overflows (`ERANGE`), which Suricata treats as "no match".
pub(crate) fn strtoull(s: &[u8], base: NumBase) -> Option<(u64, usize)> {
    let radix: u32 = match base {
        NumBase::Dec => 10,
        NumBase::Hex => 16,
        NumBase::Oct => 8,
    };
    let mut i = 0;
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    if radix == 16
        && s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        i += 2;
    }
    let start = i;
    let mut val: u64 = 0;
    while i < s.len() {
        let Some(d) = (s[i] as char).to_digit(radix) else {
            break;
        };
        val = val
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(d))?;
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((if neg { val.wrapping_neg() } else { val }, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoull_like_c() {
        assert_eq!(strtoull(b"123abc", NumBase::Dec), Some((123, 3)));
        assert_eq!(strtoull(b"  0x1F", NumBase::Hex), Some((31, 6)));
        assert_eq!(strtoull(b"0x", NumBase::Hex), Some((0, 1)));
        assert_eq!(strtoull(b"777", NumBase::Oct), Some((511, 3)));
        assert_eq!(strtoull(b"abc", NumBase::Dec), None);
        assert_eq!(strtoull(b"99999999999999999999999", NumBase::Dec), None);
        assert_eq!(strtoull(b"-1", NumBase::Dec), Some((u64::MAX, 2)));
        assert_eq!(read_uint(&[1, 2], false), 0x0102);
        assert_eq!(read_uint(&[1, 2], true), 0x0201);
    }
}
