//! FNV-1a over the deep-hash printer's rendering of a byte slice (`([]uint8)[123 34 …]`), at
//! one multiply and two table lookups per input byte instead of 3.6 dependent multiplies.
//!
//! An FNV-1a step is `h ← (h ⊕ s)·P`. The xor touches only the low byte `l` of `h`, so it
//! equals adding `δ = (l ⊕ s) − l`, and the low byte after the step depends on `l` and `s`
//! alone. Over the piece `" 123"` that renders an input byte `c` (`k` steps), this gives
//! `h ← h·Pᵏ + ADD[c][l]`, with the next low byte `LOW[c][l]`. The low bytes follow a chain
//! of lookups, and the 32-bit multiplies no longer wait for each other's low byte.

use std::sync::LazyLock;

use crate::{DECIMAL, Fnv1a, SPACED_DECIMAL};

/// The effect of each input byte's rendered piece, for every low byte of the state.
struct Tables {
    /// `Pᵏ` for the piece of each byte.
    power: [u32; 256],
    /// `ADD[c][l]`, flattened to `c·256 + l`.
    add: Vec<u32>,
    /// `LOW[c][l]`, flattened the same way.
    low: Vec<u8>,
}

static TABLES: LazyLock<Tables> = LazyLock::new(build);

fn build() -> Tables {
    let mut tables = Tables {
        power: [0; 256],
        add: Vec::with_capacity(256 * 256),
        low: Vec::with_capacity(256 * 256),
    };
    for (c, piece) in SPACED_DECIMAL.iter().enumerate() {
        tables.power[c] = power_of(piece.1);
        for l in 0..=255u8 {
            // Starting from h = l: stepped = l·Pᵏ + ADD, and its low byte is LOW.
            let after = stepped(u32::from(l), piece);
            let add = after.wrapping_sub(u32::from(l).wrapping_mul(tables.power[c]));
            tables.add.push(add);
            tables.low.push(after.to_le_bytes()[0]);
        }
    }
    tables
}

/// The state after stepping `h` through a rendered piece.
fn stepped(h: u32, &(bytes, len): &([u8; 4], usize)) -> u32 {
    let mut hash = Fnv1a(h);
    hash.write(&bytes[..len]);
    hash.0
}

fn power_of(steps: usize) -> u32 {
    (0..steps).fold(1u32, |p, _| p.wrapping_mul(Fnv1a::PRIME))
}

/// 32-bit FNV-1a over `([]uint8)[`, each byte in decimal separated by spaces, then `]`.
pub(crate) fn fnv1a_of_rendered(json: &[u8]) -> u32 {
    let mut hash = Fnv1a::new();
    hash.write(b"([]uint8)[");
    if let Some((&first, rest)) = json.split_first() {
        let (digits, len) = &DECIMAL[usize::from(first)];
        hash.write(&digits[..*len]);
        hash.0 = through_pieces(hash.0, rest);
    }
    hash.write(b"]");
    hash.0
}

/// Steps `h` through the spaced piece of every byte of `bytes`.
fn through_pieces(mut h: u32, bytes: &[u8]) -> u32 {
    let tables = &*TABLES;
    let mut low = h.to_le_bytes()[0];
    for &c in bytes {
        let index = usize::from(c) << 8 | usize::from(low);
        h = h
            .wrapping_mul(tables.power[usize::from(c)])
            .wrapping_add(tables.add[index]);
        low = tables.low[index];
    }
    h
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The definition: step through the rendered text one byte at a time.
    fn plain(json: &[u8]) -> u32 {
        let mut hash = Fnv1a::new();
        hash.write(b"([]uint8)[");
        for (index, &byte) in json.iter().enumerate() {
            let (digits, len) = &SPACED_DECIMAL[usize::from(byte)];
            let skip = usize::from(index == 0);
            hash.write(&digits[skip..*len]);
        }
        hash.write(b"]");
        hash.0
    }

    #[test]
    fn every_byte_after_every_byte_matches_the_definition() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(fnv1a_of_rendered(&[a, b]), plain(&[a, b]), "{a} {b}");
            }
        }
        assert_eq!(fnv1a_of_rendered(b""), plain(b""));
    }

    proptest! {
        #[test]
        fn any_bytes_match_the_definition(json in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(fnv1a_of_rendered(&json), plain(&json));
        }
    }
}
