//! Decodes a container into one kubelet minor's Go types and encodes it back, as `json.Unmarshal`
//! then `json.Marshal` do: unknown fields dropped, keys matched exactly then case-insensitively,
//! `null` leaving non-pointers untouched, type mismatches failing, declaration order, `omitempty`
//! (never for structs), sorted map keys, `Quantity` and `IntOrString` in their own forms.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::GoEscapes;
use crate::json::{Node, Value, decode_string, key_folds_to};
use crate::quantity::Quantity;
use crate::schema::{Base, Field, Shape};
use crate::write::write_string;

/// A container (or part of one) that the kubelet's decoder would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to decode {path}: {reason}")]
pub struct DecodeError {
    /// Where, as a dotted field path (`.resources.limits.cpu`).
    pub path: String,
    /// Why.
    pub reason: String,
}

impl DecodeError {
    fn new(reason: impl Into<String>) -> Self {
        DecodeError {
            path: String::new(),
            reason: reason.into(),
        }
    }

    fn mismatch(expected: &str, found: &Value<'_>) -> Self {
        DecodeError::new(format!("expected {expected}, found {}", found.kind()))
    }

    fn within(mut self, name: &str) -> Self {
        self.path = format!(".{name}{}", self.path);
        self
    }
}

/// A decoded Go value. `Zero` is the zero value of the field's type: nil for pointers, slices
/// and maps, and `""`, `0`, `false`, an all-zero struct or quantity otherwise.
#[derive(Debug, Default)]
pub(crate) enum Slot<'a> {
    #[default]
    Zero,
    Str(Cow<'a, str>),
    Int(i64),
    Bool(bool),
    Quantity(Quantity),
    IntOrString(IntOrString<'a>),
    Map(BTreeMap<Cow<'a, str>, Quantity>),
    Struct(Vec<Slot<'a>>),
    Pointer(Box<Slot<'a>>),
    Slice(Vec<Slot<'a>>),
}

/// `intstr.IntOrString`: which of the two is set, and both values (Go keeps the other one).
#[derive(Debug, Default)]
pub(crate) struct IntOrString<'a> {
    is_string: bool,
    int: i32,
    string: Cow<'a, str>,
}

/// Decodes a whole container into the struct described by `fields`.
pub(crate) fn decode<'a>(fields: &[Field], node: &Node<'a>) -> Result<Vec<Slot<'a>>, DecodeError> {
    let mut slots = Vec::new();
    slots.resize_with(fields.len(), Slot::default);
    match &node.value {
        Value::Object(members) => decode_members(fields, &mut slots, members)?,
        Value::Null => {}
        other => return Err(DecodeError::mismatch("a container object", other)),
    }
    Ok(slots)
}

fn decode_members<'a>(
    fields: &[Field],
    slots: &mut [Slot<'a>],
    members: &[(&'a [u8], Node<'a>)],
) -> Result<(), DecodeError> {
    for (key, node) in members {
        if let Some(index) = field_index(fields, key) {
            let field = &fields[index];
            decode_field(field, &mut slots[index], node).map_err(|e| e.within(&field.name))?;
        }
    }
    Ok(())
}

/// The field a key decodes into: an exact match, else the first case-insensitive one.
fn field_index(fields: &[Field], raw_key: &[u8]) -> Option<usize> {
    if let Some(index) = fields.iter().position(|f| f.name.as_bytes() == raw_key) {
        return Some(index);
    }
    let key = decode_string(raw_key);
    fields
        .iter()
        .position(|f| f.name == key)
        .or_else(|| fields.iter().position(|f| key_folds_to(&key, &f.name)))
}

fn decode_field<'a>(
    field: &Field,
    slot: &mut Slot<'a>,
    node: &Node<'a>,
) -> Result<(), DecodeError> {
    match field.shape {
        Shape::Value => decode_base(field, slot, node),
        Shape::Pointer => {
            if matches!(node.value, Value::Null) {
                *slot = Slot::Zero;
                return Ok(());
            }
            if !matches!(slot, Slot::Pointer(_)) {
                *slot = Slot::Pointer(Box::default());
            }
            match slot {
                Slot::Pointer(target) => decode_base(field, target, node),
                _ => Ok(()),
            }
        }
        Shape::Slice => decode_slice(field, slot, node),
    }
}

/// Go reuses the elements of a slice decoded twice (a duplicate key) and truncates it.
fn decode_slice<'a>(
    field: &Field,
    slot: &mut Slot<'a>,
    node: &Node<'a>,
) -> Result<(), DecodeError> {
    let items = match &node.value {
        Value::Null => {
            *slot = Slot::Zero;
            return Ok(());
        }
        Value::Array(items) => items,
        other => return Err(DecodeError::mismatch("an array", other)),
    };
    let mut old = match std::mem::take(slot) {
        Slot::Slice(old) => old.into_iter(),
        _ => Vec::new().into_iter(),
    };
    let mut decoded = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let mut element = old.next().unwrap_or_default();
        decode_base(field, &mut element, item).map_err(|e| e.within(&index.to_string()))?;
        decoded.push(element);
    }
    *slot = Slot::Slice(decoded);
    Ok(())
}

fn decode_base<'a>(field: &Field, slot: &mut Slot<'a>, node: &Node<'a>) -> Result<(), DecodeError> {
    let value = &node.value;
    match (field.base, value) {
        (Base::Quantity, _) => *slot = Slot::Quantity(decode_quantity(value)?),
        (Base::IntOrString, _) => decode_int_or_string(slot, value)?,
        (_, Value::Null) => {
            if field.base == Base::ResourceList {
                *slot = Slot::Zero;
            }
        }
        (Base::String, Value::String(raw)) => *slot = Slot::Str(decode_string(raw)),
        (Base::Int32, Value::Number(raw)) => *slot = Slot::Int(go_int(raw, 32)?),
        (Base::Int64, Value::Number(raw)) => *slot = Slot::Int(go_int(raw, 64)?),
        (Base::Bool, Value::Bool(b)) => *slot = Slot::Bool(*b),
        (Base::ResourceList, Value::Object(members)) => decode_resource_list(slot, members)?,
        (Base::Struct, Value::Object(members)) => {
            if !matches!(slot, Slot::Struct(_)) {
                let mut slots = Vec::new();
                slots.resize_with(field.children.len(), Slot::default);
                *slot = Slot::Struct(slots);
            }
            if let Slot::Struct(slots) = slot {
                decode_members(&field.children, slots, members)?;
            }
        }
        (base, other) => return Err(DecodeError::mismatch(expected_kind(base), other)),
    }
    Ok(())
}

fn expected_kind(base: Base) -> &'static str {
    match base {
        Base::String => "a string",
        Base::Int32 | Base::Int64 => "an integer",
        Base::Bool => "a bool",
        Base::Quantity | Base::IntOrString => "a string or a number",
        Base::ResourceList | Base::Struct => "an object",
    }
}

/// Go's `strconv.ParseInt(token, 10, 64)` plus the field's range check.
pub(crate) fn go_int(raw: &[u8], bits: u32) -> Result<i64, DecodeError> {
    let (negative, digits) = match raw {
        [b'-', digits @ ..] => (true, digits),
        digits => (false, digits),
    };
    let mut magnitude: Option<i128> = (!digits.is_empty()).then_some(0);
    for &byte in digits {
        let digit = byte.is_ascii_digit().then(|| i128::from(byte - b'0'));
        magnitude = magnitude
            .zip(digit)
            .and_then(|(m, d)| m.checked_mul(10)?.checked_add(d));
    }
    let value = magnitude.map(|m| if negative { -m } else { m });
    let limit = 1i128 << (bits - 1);
    let in_range = value.filter(|v| (-limit..limit).contains(v));
    in_range.and_then(|v| i64::try_from(v).ok()).ok_or_else(|| {
        let text = String::from_utf8_lossy(raw);
        DecodeError::new(format!("number {text} does not fit int{bits}"))
    })
}

/// `Quantity.UnmarshalJSON`: the raw token (quotes removed, escapes not interpreted).
fn decode_quantity(value: &Value<'_>) -> Result<Quantity, DecodeError> {
    let raw = match value {
        Value::Null => return Ok(Quantity::zero()),
        Value::String(raw) | Value::Number(raw) => raw,
        other => return Err(DecodeError::mismatch("a quantity", other)),
    };
    quantity_from_raw(raw)
}

/// A quantity from its raw token text.
pub(crate) fn quantity_from_raw(raw: &[u8]) -> Result<Quantity, DecodeError> {
    let text = std::str::from_utf8(raw).map_err(|_| DecodeError::new("quantity is not UTF-8"))?;
    Quantity::parse(text).map_err(|e| DecodeError::new(e.to_string()))
}

/// `IntOrString.UnmarshalJSON`: a string is the string; anything else must be an int32.
fn decode_int_or_string<'a>(slot: &mut Slot<'a>, value: &Value<'a>) -> Result<(), DecodeError> {
    if !matches!(slot, Slot::IntOrString(_)) {
        *slot = Slot::IntOrString(IntOrString::default());
    }
    let Slot::IntOrString(target) = slot else {
        return Ok(());
    };
    match value {
        Value::String(raw) => {
            target.is_string = true;
            target.string = decode_string(raw);
        }
        Value::Number(raw) => {
            target.is_string = false;
            target.int = i32::try_from(go_int(raw, 32)?).unwrap_or_default();
        }
        Value::Null => target.is_string = false,
        other => return Err(DecodeError::mismatch("an int32 or a string", other)),
    }
    Ok(())
}

/// Map entries merge into an existing map; each value is decoded fresh, the last key wins.
fn decode_resource_list<'a>(
    slot: &mut Slot<'a>,
    members: &[(&'a [u8], Node<'a>)],
) -> Result<(), DecodeError> {
    if !matches!(slot, Slot::Map(_)) {
        *slot = Slot::Map(BTreeMap::new());
    }
    let Slot::Map(map) = slot else {
        return Ok(());
    };
    for (raw_key, node) in members {
        let key = decode_string(raw_key);
        let quantity = decode_quantity(&node.value).map_err(|e| e.within(&key))?;
        map.insert(key, quantity);
    }
    Ok(())
}

/// Encodes a decoded struct as Go's `json.Marshal`.
pub(crate) fn encode(fields: &[Field], slots: &[Slot<'_>], escapes: GoEscapes, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    for (field, slot) in fields.iter().zip(slots) {
        if field.omitempty && is_empty(field, slot) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(field.name.as_bytes());
        out.extend_from_slice(b"\":");
        encode_field(field, slot, escapes, out);
    }
    out.push(b'}');
}

/// Go's `isEmptyValue`: structs (also `Quantity`, `IntOrString`) are never empty.
fn is_empty(field: &Field, slot: &Slot<'_>) -> bool {
    match (field.shape, slot) {
        (_, Slot::Zero) => !matches!(
            (field.shape, field.base),
            (
                Shape::Value,
                Base::Struct | Base::Quantity | Base::IntOrString
            )
        ),
        (Shape::Slice, Slot::Slice(items)) => items.is_empty(),
        (Shape::Value, Slot::Str(s)) => s.is_empty(),
        (Shape::Value, Slot::Int(n)) => *n == 0,
        (Shape::Value, Slot::Bool(b)) => !b,
        (Shape::Value, Slot::Map(map)) => map.is_empty(),
        _ => false,
    }
}

fn encode_field(field: &Field, slot: &Slot<'_>, escapes: GoEscapes, out: &mut Vec<u8>) {
    match (field.shape, slot) {
        (Shape::Pointer | Shape::Slice, Slot::Zero) => out.extend_from_slice(b"null"),
        (Shape::Pointer, Slot::Pointer(target)) => encode_base(field, target, escapes, out),
        (Shape::Slice, Slot::Slice(items)) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                encode_base(field, item, escapes, out);
            }
            out.push(b']');
        }
        _ => encode_base(field, slot, escapes, out),
    }
}

fn encode_base(field: &Field, slot: &Slot<'_>, escapes: GoEscapes, out: &mut Vec<u8>) {
    match slot {
        Slot::Zero => encode_zero(field, escapes, out),
        Slot::Str(s) => write_string(out, s, escapes),
        Slot::Int(n) => write_int(out, *n),
        Slot::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Slot::Quantity(q) => write_quantity(out, q),
        Slot::IntOrString(v) if v.is_string => write_string(out, &v.string, escapes),
        Slot::IntOrString(v) => write_int(out, i64::from(v.int)),
        Slot::Map(map) => write_resource_list(out, map, escapes),
        Slot::Struct(slots) => encode(&field.children, slots, escapes, out),
        Slot::Pointer(target) => encode_base(field, target, escapes, out),
        Slot::Slice(_) => out.extend_from_slice(b"null"),
    }
}

fn encode_zero(field: &Field, escapes: GoEscapes, out: &mut Vec<u8>) {
    let text: &[u8] = match field.base {
        Base::String => b"\"\"",
        Base::Int32 | Base::Int64 | Base::IntOrString => b"0",
        Base::Bool => b"false",
        Base::Quantity => b"\"0\"",
        Base::ResourceList => b"null",
        Base::Struct => {
            let mut zero = Vec::new();
            zero.resize_with(field.children.len(), Slot::default);
            return encode(&field.children, &zero, escapes, out);
        }
    };
    out.extend_from_slice(text);
}

/// A resource list: keys sorted byte-wise, as Go writes a map.
pub(crate) fn write_resource_list(
    out: &mut Vec<u8>,
    map: &BTreeMap<Cow<'_, str>, Quantity>,
    escapes: GoEscapes,
) {
    out.push(b'{');
    for (index, (key, quantity)) in map.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(out, key, escapes);
        out.push(b':');
        write_quantity(out, quantity);
    }
    out.push(b'}');
}

/// Whether a field absent from the input is left out of the output (`omitempty` and empty).
pub(crate) fn omits_absent(field: &Field) -> bool {
    field.omitempty && is_empty(field, &Slot::Zero)
}

/// Writes the value of a field absent from the input (its Go zero value).
pub(crate) fn encode_absent(field: &Field, escapes: GoEscapes, out: &mut Vec<u8>) {
    encode_field(field, &Slot::Zero, escapes, out);
}

/// Decimal digits of an integer, as `strconv.AppendInt` writes them.
pub(crate) fn write_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut magnitude = n.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + u8::try_from(magnitude % 10).unwrap_or_default();
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

pub(crate) fn write_quantity(out: &mut Vec<u8>, quantity: &Quantity) {
    out.push(b'"');
    out.extend_from_slice(quantity.written().as_bytes());
    out.push(b'"');
}

/// The decoded `name` and `image` of a container, for the 1.31+ hash and for callers.
pub(crate) fn string_field<'s>(fields: &[Field], slots: &'s [Slot<'_>], name: &str) -> &'s str {
    fields
        .iter()
        .zip(slots)
        .find(|(f, _)| f.name == name)
        .and_then(|(_, slot)| match slot {
            Slot::Str(s) => Some(s.as_ref()),
            _ => None,
        })
        .unwrap_or_default()
}
