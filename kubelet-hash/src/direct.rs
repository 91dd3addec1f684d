//! The common case in one pass: a container as the API server serves it (every key spelled
//! exactly as its field, at most once, in declaration order; no `null` except for pointers and
//! slices) is encoded straight from the raw text, without a tree or decoded slots. An object
//! whose keys come in another order (hand-written YAML) is read twice: once for the order.
//!
//! Anything else — a case-folded or escaped key, a duplicate, another `null`, a type
//! mismatch, a syntax error — makes this reader give up (`None`), and the caller
//! takes the general path (`json` then `model`), which handles it and reports the errors. So this
//! module decides speed only, never a result; the tests compare both paths byte for byte.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::GoEscapes;
use crate::json::{Reader, Value, decode_string, key_folds_to};
use crate::model::{
    encode_absent, go_int, omits_absent, quantity_from_raw, write_int, write_quantity,
    write_resource_list,
};
use crate::schema::{Base, Field, Shape};
use crate::write::write_string;

/// Where each top-level field's value landed in the output (`None`: left out).
pub(crate) type ValueSpans = Vec<Option<Range<usize>>>;

/// Encodes the container `input` with `fields` into `out` (appended), or `None` to give up.
/// The top-level field at index `blank` is read and checked but written as its zero value.
pub(crate) fn encode_container(
    input: &[u8],
    fields: &[Field],
    escapes: GoEscapes,
    blank: Option<usize>,
    out: &mut Vec<u8>,
) -> Option<ValueSpans> {
    let mut encoder = Encoder {
        reader: Reader::new(input),
        escapes,
        out,
    };
    let mut top = TopLevel {
        spans: vec![None; fields.len()],
        blank,
    };
    encoder.reader.skip_space();
    if encoder.reader.peek() != Some(b'{') {
        return None;
    }
    encoder.object(fields, Some(&mut top))?;
    encoder.reader.skip_space();
    encoder.reader.at_end().then_some(top.spans)
}

/// What the top-level object records and overrides.
struct TopLevel {
    spans: ValueSpans,
    blank: Option<usize>,
}

struct Encoder<'a, 'o> {
    reader: Reader<'a>,
    escapes: GoEscapes,
    out: &'o mut Vec<u8>,
}

/// Bytes that Go's decoder keeps and its encoder writes unchanged, inside a string token (which
/// holds no raw `"` or control bytes): ASCII but for `\` (an escape) and the HTML `<` `>` `&`.
const WRITTEN_AS_IS: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0x20;
    while byte < 0x80 {
        let html = byte == b'<' as usize || byte == b'>' as usize || byte == b'&' as usize;
        table[byte] = !html && byte != b'\\' as usize;
        byte += 1;
    }
    table
};

/// Whether a written value is empty in Go's sense (what `omitempty` drops).
type Empty = bool;

impl<'a> Encoder<'a, '_> {
    /// An object of `fields`, the reader at its `{`: in one pass when its keys come in
    /// declaration order, else read once for the order and again for the values.
    fn object(&mut self, fields: &[Field], mut top: Option<&mut TopLevel>) -> Option<()> {
        let (pos, len) = (self.reader.pos(), self.out.len());
        if self.in_order(fields, top.as_deref_mut())? {
            return Some(());
        }
        self.reader.seek(pos);
        self.out.truncate(len);
        if let Some(top) = top.as_deref_mut() {
            top.spans.fill(None);
        }
        self.reordered(fields, top)
    }

    /// The one-pass case; `Some(false)` (nothing consumed for good) at a key out of order.
    fn in_order(&mut self, fields: &[Field], mut top: Option<&mut TopLevel>) -> Option<bool> {
        self.reader.enter().ok()?;
        self.out.push(b'{');
        let (mut next, mut first) = (0, true);
        self.reader.skip_space();
        let mut done = self.reader.eat(b'}');
        while !done {
            self.reader.skip_space();
            let key = self.key()?;
            match field_for(fields, key, next)? {
                Key::Field(index) if index < next => {
                    self.reader.leave();
                    return Some(false);
                }
                Key::Field(index) => {
                    self.absent(&fields[next..index], &mut first);
                    self.present(fields, index, &mut first, top.as_deref_mut())?;
                    next = index + 1;
                }
                Key::Unknown => self.reader.skip().ok()?,
            }
            self.reader.skip_space();
            done = self.reader.end_of_list(b'}').ok()?;
        }
        self.close(&fields[next..], first);
        Some(true)
    }

    /// Keys out of declaration order: note where each value is, then write them in order.
    fn reordered(&mut self, fields: &[Field], mut top: Option<&mut TopLevel>) -> Option<()> {
        self.reader.enter().ok()?;
        let members = self.member_positions(fields)?;
        let end = self.reader.pos();
        self.out.push(b'{');
        let (mut next, mut first) = (0, true);
        for (index, pos) in members {
            self.absent(&fields[next..index], &mut first);
            self.reader.seek(pos);
            self.present(fields, index, &mut first, top.as_deref_mut())?;
            next = index + 1;
        }
        self.reader.seek(end);
        self.close(&fields[next..], first);
        Some(())
    }

    /// Each known member's field index and value position, in field order, the reader past
    /// the object's `}`; `None` on a duplicate (Go merges those).
    fn member_positions(&mut self, fields: &[Field]) -> Option<Vec<(usize, usize)>> {
        let mut members = Vec::new();
        self.reader.skip_space();
        let mut done = self.reader.eat(b'}');
        while !done {
            self.reader.skip_space();
            let key = self.key()?;
            if let Key::Field(index) = field_for(fields, key, 0)? {
                members.push((index, self.reader.pos()));
            }
            self.reader.skip().ok()?;
            self.reader.skip_space();
            done = self.reader.end_of_list(b'}').ok()?;
        }
        members.sort_unstable();
        let unique = members.windows(2).all(|pair| pair[0].0 != pair[1].0);
        unique.then_some(members)
    }

    /// Writes the fields after the last present one and closes the object.
    fn close(&mut self, rest: &[Field], mut first: bool) {
        self.absent(rest, &mut first);
        self.out.push(b'}');
        self.reader.leave();
    }

    /// A present field, recording where a top-level value landed.
    fn present(
        &mut self,
        fields: &[Field],
        index: usize,
        first: &mut bool,
        top: Option<&mut TopLevel>,
    ) -> Option<()> {
        let blank = top.as_ref().is_some_and(|t| t.blank == Some(index));
        let span = self.member(&fields[index], first, blank)?;
        if let Some(top) = top {
            top.spans[index] = (!span.is_empty()).then_some(span);
        }
        Some(())
    }

    /// A member's key and the `:` after it.
    fn key(&mut self) -> Option<&'a [u8]> {
        if self.reader.peek() != Some(b'"') {
            return None;
        }
        let key = self.reader.string().ok()?;
        self.reader.skip_space();
        self.reader.expect(b':', "").ok()?;
        self.reader.skip_space();
        Some(key)
    }

    /// Writes the fields the input left out, as Go writes their zero values.
    fn absent(&mut self, fields: &[Field], first: &mut bool) {
        for field in fields.iter().filter(|f| !omits_absent(f)) {
            self.field_name(field, first);
            encode_absent(field, self.escapes, self.out);
        }
    }

    fn field_name(&mut self, field: &Field, first: &mut bool) {
        let skip = usize::from(*first);
        self.out.extend_from_slice(&field.member_prefix[skip..]);
        *first = false;
    }

    /// One present field; returns where its value was written, an empty range when it was
    /// left out (a written value is never empty: the shortest are `0` and `""`).
    fn member(&mut self, field: &Field, first: &mut bool, blank: bool) -> Option<Range<usize>> {
        let (mark, was_first) = (self.out.len(), *first);
        self.field_name(field, first);
        let start = self.out.len();
        let mut empty = self.value(field)?;
        if blank {
            self.out.truncate(start);
            encode_absent(field, self.escapes, self.out);
            empty = omits_absent(field);
        }
        if field.omitempty && empty {
            self.out.truncate(mark);
            *first = was_first;
            return Some(mark..mark);
        }
        Some(start..self.out.len())
    }

    fn value(&mut self, field: &Field) -> Option<Empty> {
        let null = self.reader.peek() == Some(b'n');
        match field.shape {
            Shape::Pointer | Shape::Slice if null => {
                self.reader.literal(b"null", Value::Null).ok()?;
                self.out.extend_from_slice(b"null");
                Some(true)
            }
            Shape::Value => self.base(field),
            Shape::Pointer => self.base(field).map(|_| false),
            Shape::Slice => self.array(field),
        }
    }

    /// A slice of `field`'s base, the reader at its `[`.
    fn array(&mut self, field: &Field) -> Option<Empty> {
        if self.reader.peek() != Some(b'[') {
            return None;
        }
        self.reader.enter().ok()?;
        self.out.push(b'[');
        self.reader.skip_space();
        let mut done = self.reader.eat(b']');
        let empty = done;
        while !done {
            self.reader.skip_space();
            self.base(field)?;
            self.reader.skip_space();
            done = self.reader.end_of_list(b']').ok()?;
            if !done {
                self.out.push(b',');
            }
        }
        self.out.push(b']');
        self.reader.leave();
        Some(empty)
    }

    /// One value of `field`'s base type (never `null`: Go keeps the old value then).
    fn base(&mut self, field: &Field) -> Option<Empty> {
        let next = self.reader.peek()?;
        let number = next == b'-' || next.is_ascii_digit();
        match field.base {
            Base::String if next == b'"' => self.string(),
            Base::Int32 if number => self.int(32),
            Base::Int64 if number => self.int(64),
            Base::Bool if matches!(next, b't' | b'f') => self.bool(next == b't'),
            Base::Quantity if next == b'"' || number => self.quantity(number).map(|()| false),
            Base::IntOrString if next == b'"' => self.string().map(|_| false),
            Base::IntOrString if number => self.int(32).map(|_| false),
            Base::ResourceList if next == b'{' => self.resource_list(),
            Base::Struct if next == b'{' => self.object(&field.children, None).map(|()| false),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<Empty> {
        let raw = self.reader.string().ok()?;
        if raw.iter().all(|&b| WRITTEN_AS_IS[usize::from(b)]) {
            self.out.push(b'"');
            self.out.extend_from_slice(raw);
            self.out.push(b'"');
            return Some(raw.is_empty());
        }
        let text = decode_string(raw);
        write_string(self.out, &text, self.escapes);
        Some(text.is_empty())
    }

    fn int(&mut self, bits: u32) -> Option<Empty> {
        let n = go_int(self.reader.number().ok()?, bits).ok()?;
        write_int(self.out, n);
        Some(n == 0)
    }

    fn bool(&mut self, value: bool) -> Option<Empty> {
        let word: &[u8] = if value { b"true" } else { b"false" };
        self.reader.literal(word, Value::Bool(value)).ok()?;
        self.out.extend_from_slice(word);
        Some(!value)
    }

    fn quantity(&mut self, number: bool) -> Option<()> {
        let raw = if number {
            self.reader.number()
        } else {
            self.reader.string()
        };
        write_quantity(self.out, &quantity_from_raw(raw.ok()?).ok()?);
        Some(())
    }

    /// A `v1.ResourceList`, the reader at its `{`: entries merge, the last of a key wins.
    fn resource_list(&mut self) -> Option<Empty> {
        self.reader.enter().ok()?;
        let mut map = BTreeMap::new();
        self.reader.skip_space();
        let mut done = self.reader.eat(b'}');
        while !done {
            self.reader.skip_space();
            let key = decode_string(self.key()?);
            let next = self.reader.peek()?;
            let raw = match next {
                b'"' => self.reader.string(),
                b'-' | b'0'..=b'9' => self.reader.number(),
                _ => return None,
            };
            map.insert(key, quantity_from_raw(raw.ok()?).ok()?);
            self.reader.skip_space();
            done = self.reader.end_of_list(b'}').ok()?;
        }
        self.reader.leave();
        write_resource_list(self.out, &map, self.escapes);
        Some(map.is_empty())
    }
}

/// What a member's key names.
enum Key {
    /// The field at this index, spelled exactly.
    Field(usize),
    /// No field: Go drops the member.
    Unknown,
}

/// The field a key names exactly, searched from `next` on, or `None` to give up on a key that
/// Go would match case-insensitively.
fn field_for(fields: &[Field], key: &[u8], next: usize) -> Option<Key> {
    let exact = |f: &Field| f.name.as_bytes() == key;
    let later = fields[next..].iter().position(exact).map(|i| next + i);
    if let Some(index) = later.or_else(|| fields[..next].iter().position(exact)) {
        return Some(Key::Field(index));
    }
    let key = decode_string(key);
    let taken = fields.iter().any(|f| key_folds_to(&key, &f.name));
    (!taken).then_some(Key::Unknown)
}

#[cfg(test)]
mod tests;
