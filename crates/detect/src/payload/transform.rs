//! Buffer transforms (`to_lowercase`, `url_decode`, `to_sha256`...), applied in rule order.

use sekisho_rules::Transform;
use sha2::Digest as _;

use super::Unmodelled;

/// A transform sekisho models.
#[derive(Debug, Clone)]
pub(crate) enum Xform {
    Lower,
    Upper,
    StripWs,
    CompressWs,
    DotPrefix,
    UrlDecode,
    Md5,
    Sha1,
    Sha256,
    Xor(Vec<u8>),
}

impl Xform {
    /// Maps an AST transform, or says why it is not modelled.
    pub(crate) fn compile(t: &Transform) -> Result<Xform, Unmodelled> {
        Ok(match t {
            Transform::ToLowercase => Xform::Lower,
            Transform::ToUppercase => Xform::Upper,
            Transform::StripWhitespace => Xform::StripWs,
            Transform::CompressWhitespace => Xform::CompressWs,
            Transform::DotPrefix => Xform::DotPrefix,
            Transform::UrlDecode => Xform::UrlDecode,
            Transform::ToMd5 => Xform::Md5,
            Transform::ToSha1 => Xform::Sha1,
            Transform::ToSha256 => Xform::Sha256,
            Transform::Xor(k) if !k.is_empty() => Xform::Xor(k.clone()),
            other => {
                return Err(Unmodelled::new(
                    other.name(),
                    "transform not modelled by the payload matcher",
                ))
            }
        })
    }

    /// Writes the transformed `input` into `out` (cleared first).
    pub(crate) fn apply(&self, input: &[u8], out: &mut Vec<u8>) {
        out.clear();
        match self {
            Xform::Lower => out.extend(input.iter().map(u8::to_ascii_lowercase)),
            Xform::Upper => out.extend(input.iter().map(u8::to_ascii_uppercase)),
            Xform::StripWs => out.extend(input.iter().copied().filter(|b| !is_space(*b))),
            Xform::CompressWs => {
                // Suricata keeps the first byte of each whitespace run as it is.
                let mut prev_ws = false;
                for &b in input {
                    let ws = is_space(b);
                    if !(ws && prev_ws) {
                        out.push(b);
                    }
                    prev_ws = ws;
                }
            }
            Xform::DotPrefix => {
                out.push(b'.');
                out.extend_from_slice(input);
            }
            Xform::UrlDecode => url_decode(input, out),
            Xform::Md5 => out.extend_from_slice(&md5::Md5::digest(input)),
            Xform::Sha1 => out.extend_from_slice(&sha1::Sha1::digest(input)),
            Xform::Sha256 => out.extend_from_slice(&sha2::Sha256::digest(input)),
            Xform::Xor(key) => out.extend(input.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k)),
        }
    }
}

/// C `isspace` in the "C" locale.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Suricata's `url_decode`: `%XX` → byte, `+` → space, malformed `%` kept as is.
fn url_decode(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex_val(input[i + 1]), hex_val(input[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            out.push(b);
        } else if b == b'+' {
            out.push(b' ');
        } else {
            out.push(b);
        }
        i += 1;
    }
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::Xform;

    fn run(x: Xform, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        x.apply(input, &mut out);
        out
    }

    #[test]
    fn transforms() {
        assert_eq!(run(Xform::UrlDecode, b"a%41+%4"), b"aA %4");
        assert_eq!(run(Xform::UrlDecode, b"%zz%41"), b"%zzA");
        assert_eq!(run(Xform::CompressWs, b"a \t\nb  c"), b"a b c");
        assert_eq!(run(Xform::StripWs, b" a\tb\r\n"), b"ab");
        assert_eq!(run(Xform::DotPrefix, b"x.com"), b".x.com");
        assert_eq!(
            run(Xform::Xor(vec![1, 2]), b"\x01\x02\x03"),
            b"\x00\x00\x02"
        );
        assert_eq!(run(Xform::Md5, b"").len(), 16);
        assert_eq!(run(Xform::Sha256, b"abc")[..2], [0xba, 0x78]);
    }
}
