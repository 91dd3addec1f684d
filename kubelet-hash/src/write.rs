//! Writes JSON strings byte for byte as Go's `encoding/json` does (with HTML escaping on, as
//! `json.Marshal` has it): `"` `\` and `\n` `\r` `\t` get short escapes, other control bytes
//! `\u00XX` (lowercase hex), `<` `>` `&` and U+2028/U+2029 `\uXXXX`; everything else, DEL and
//! `/` included, is written raw. Which toolchain built the kubelet decides 0x08 and 0x0C.

use crate::GoEscapes;

/// How one ASCII byte is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Raw,
    Short(u8),
    Unicode,
    /// 0x08 and 0x0C: `\u0008`/`\u000c` before Go 1.22, `\b`/`\f` since.
    Toolchain(u8),
}

const CLASSES: [Class; 128] = classes();

const fn classes() -> [Class; 128] {
    let mut table = [Class::Raw; 128];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = Class::Unicode;
        byte += 1;
    }
    table[b'\n' as usize] = Class::Short(b'n');
    table[b'\r' as usize] = Class::Short(b'r');
    table[b'\t' as usize] = Class::Short(b't');
    table[0x08] = Class::Toolchain(b'b');
    table[0x0C] = Class::Toolchain(b'f');
    table[b'"' as usize] = Class::Short(b'"');
    table[b'\\' as usize] = Class::Short(b'\\');
    table[b'<' as usize] = Class::Unicode;
    table[b'>' as usize] = Class::Unicode;
    table[b'&' as usize] = Class::Unicode;
    table
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes that may start an escape: every non-raw ASCII class, and 0xE2 (U+2028/U+2029).
const MAYBE_ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 128 {
        table[byte] = !matches!(CLASSES[byte], Class::Raw);
        byte += 1;
    }
    table[0xE2] = true;
    table
};

/// Appends `s` as a quoted JSON string.
pub(crate) fn write_string(out: &mut Vec<u8>, s: &str, escapes: GoEscapes) {
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while let Some(offset) = bytes[i..]
        .iter()
        .position(|&b| MAYBE_ESCAPED[usize::from(b)])
    {
        i += offset;
        match escape_of(bytes, i, bytes[i], escapes) {
            Some(escape) => {
                out.extend_from_slice(&bytes[start..i]);
                escape.push_to(out);
                i += escape.consumed;
                start = i;
            }
            None => i += 1,
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// An escape sequence replacing `consumed` input bytes.
struct Escape {
    text: [u8; 6],
    len: usize,
    consumed: usize,
}

impl Escape {
    fn push_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.text[..self.len]);
    }

    fn short(c: u8) -> Self {
        Escape {
            text: [b'\\', c, 0, 0, 0, 0],
            len: 2,
            consumed: 1,
        }
    }

    fn unicode(code: u16, consumed: usize) -> Self {
        let digit = |shift: u16| HEX[usize::from((code >> shift) & 0xF)];
        let text = [b'\\', b'u', digit(12), digit(8), digit(4), digit(0)];
        Escape {
            text,
            len: 6,
            consumed,
        }
    }
}

/// The escape for the byte at `i`, or `None` to copy it.
fn escape_of(bytes: &[u8], i: usize, byte: u8, escapes: GoEscapes) -> Option<Escape> {
    if byte >= 0x80 {
        // U+2028 and U+2029 are E2 80 A8 and E2 80 A9; their later bytes are never escaped.
        let separator = byte == 0xE2
            && bytes.get(i + 1) == Some(&0x80)
            && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9));
        return separator.then(|| Escape::unicode(0x2020 + u16::from(bytes[i + 2] - 0xA0), 3));
    }
    match CLASSES[usize::from(byte)] {
        Class::Raw => None,
        Class::Short(c) => Some(Escape::short(c)),
        Class::Toolchain(c) if escapes == GoEscapes::Go122 => Some(Escape::short(c)),
        Class::Unicode | Class::Toolchain(_) => Some(Escape::unicode(u16::from(byte), 1)),
    }
}

#[cfg(test)]
mod tests;
