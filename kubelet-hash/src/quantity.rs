//! `resource.Quantity` as the kubelets 1.16–1.30 read and write it (SPEC §3).
//!
//! A quantity keeps its spelling when Go's cheap canonical-form check passes; otherwise it is
//! written in canonical form: rounded up to a multiple of 10⁻⁹, in the format of its suffix,
//! with Go's limits at the extremes (binary capped at 2⁶³−1, decimal SI suffixes ending at `E`).
//! Values are exact decimals of any size; nothing goes through floating point.

use std::cmp::Ordering;
use std::fmt;

/// A quantity spelling the kubelet's decoder refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse quantity {spelling:?}: {reason}")]
pub struct QuantityError {
    /// The spelling, trimmed.
    pub spelling: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A parsed `resource.Quantity`: its exact value and the text Go writes for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    value: Decimal,
    written: String,
}

impl Quantity {
    /// Parses a spelling as `resource.ParseQuantity` does, after trimming Unicode white space.
    pub fn parse(spelling: &str) -> Result<Self, QuantityError> {
        let trimmed = spelling.trim();
        parse_trimmed(trimmed).map_err(|reason| QuantityError {
            spelling: trimmed.to_owned(),
            reason,
        })
    }

    /// The zero quantity (what `null` and an absent quantity decode to), written `0`.
    #[must_use]
    pub fn zero() -> Self {
        Quantity {
            value: Decimal::default(),
            written: "0".to_owned(),
        }
    }

    /// The text Go writes between the quotes.
    #[must_use]
    pub fn written(&self) -> &str {
        &self.written
    }

    /// Whether both quantities have the same exact value, whatever their spelling.
    #[must_use]
    pub fn same_value(&self, other: &Quantity) -> bool {
        self.value == other.value
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// The three spelling families; they decide the canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSi,
    DecimalExponent,
    BinarySi,
}

/// The parts of a spelling, as Go's `parseQuantityString` splits it.
struct Parts<'s> {
    negative: bool,
    /// Sign, digits and fraction, as written (the text Go's slow path parses).
    number: &'s str,
    /// Integer digits without leading zeros, `0` when none remain.
    num: &'s str,
    /// Fraction digits.
    frac: &'s str,
    suffix: &'s str,
}

fn parse_trimmed(s: &str) -> Result<Quantity, &'static str> {
    if s.is_empty() {
        return Err("empty quantity");
    }
    if s == "0" {
        return Ok(Quantity::zero());
    }
    let parts = split(s)?;
    let (exponent, format) = interpret(parts.suffix).ok_or("unknown suffix")?;
    if let Some((value, kept)) = fast_path(&parts, exponent, format) {
        let written = if kept {
            s.to_owned()
        } else {
            canonical(&value, format)
        };
        return Ok(Quantity { value, written });
    }
    let (value, format) = slow_path(&parts, exponent, format)?;
    let written = canonical(&value, format);
    Ok(Quantity { value, written })
}

/// Splits a spelling into sign, number and suffix like Go's scanner, quirks included
/// (`.5`, `1.` and a bare sign are numbers).
fn split(s: &str) -> Result<Parts<'_>, &'static str> {
    let bytes = s.as_bytes();
    let negative = bytes[0] == b'-';
    let mut pos = usize::from(matches!(bytes[0], b'-' | b'+'));
    while bytes.get(pos) == Some(&b'0') {
        pos += 1;
    }
    if pos == bytes.len() {
        return Ok(Parts {
            negative,
            number: "0",
            num: "0",
            frac: "",
            suffix: "",
        });
    }
    let num_start = pos;
    pos += count_digits(&bytes[pos..]);
    let num = if pos == num_start {
        "0"
    } else {
        &s[num_start..pos]
    };
    let mut frac = "";
    if bytes.get(pos) == Some(&b'.') {
        let frac_start = pos + 1;
        pos = frac_start + count_digits(&bytes[frac_start..]);
        frac = &s[frac_start..pos];
    }
    let number = &s[..pos];
    let suffix = &s[pos..];
    check_suffix_shape(suffix.as_bytes())?;
    Ok(Parts {
        negative,
        number,
        num,
        frac,
        suffix,
    })
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// A suffix is letters from `eEinumkKMGTP`, an optional sign, then digits.
fn check_suffix_shape(suffix: &[u8]) -> Result<(), &'static str> {
    let letters = suffix
        .iter()
        .take_while(|b| b"eEinumkKMGTP".contains(b))
        .count();
    let mut rest = &suffix[letters..];
    if let [b'+' | b'-', after @ ..] = rest {
        rest = after;
    }
    if rest.iter().all(u8::is_ascii_digit) {
        Ok(())
    } else {
        Err("quantities must match ^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
    }
}

/// The suffix's power (of 10, or of 2 for binary) and family.
fn interpret(suffix: &str) -> Option<(i32, Format)> {
    const DECIMAL: [(&str, i32); 10] = [
        ("", 0),
        ("n", -9),
        ("u", -6),
        ("m", -3),
        ("k", 3),
        ("M", 6),
        ("G", 9),
        ("T", 12),
        ("P", 15),
        ("E", 18),
    ];
    const BINARY: [(&str, i32); 6] = [
        ("Ki", 10),
        ("Mi", 20),
        ("Gi", 30),
        ("Ti", 40),
        ("Pi", 50),
        ("Ei", 60),
    ];
    if let Some(&(_, power)) = DECIMAL.iter().find(|(s, _)| *s == suffix) {
        return Some((power, Format::DecimalSi));
    }
    if let Some(&(_, power)) = BINARY.iter().find(|(s, _)| *s == suffix) {
        return Some((power, Format::BinarySi));
    }
    let digits = suffix.strip_prefix(['e', 'E']).filter(|d| !d.is_empty())?;
    let power = parse_go_int(digits)?;
    // Go converts the 64-bit exponent with int32(), which wraps.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "reproduces Go's int32() conversion"
    )]
    Some((power as i32, Format::DecimalExponent))
}

/// `strconv.ParseInt(s, 10, 64)`: an optional sign and decimal digits, in range.
fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Go's fast path (the value fits an `int64Amount`): the value and whether the spelling is
/// kept, or `None` when Go takes the slow path.
fn fast_path(parts: &Parts<'_>, exponent: i32, format: Format) -> Option<(Decimal, bool)> {
    let num_len = len_i64(parts.num);
    let frac_len = len_i64(parts.frac);
    if format == Format::BinarySi {
        let precision = 15 - num_len - i64::from(exponent * 3 / 10) - 1;
        if !parts.frac.is_empty() || precision < 0 {
            return None;
        }
        let num: u64 = parts.num.parse().ok()?;
        let value = Decimal::from_u128(parts.negative, u128::from(num) << exponent);
        return Some((value, num & 7 != 0));
    }
    let scale = i64::from(exponent) - frac_len;
    if num_len + frac_len > 18 || scale < -9 {
        return None;
    }
    let shifted = [parts.num, parts.frac].concat();
    let kept = scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0');
    Some((Decimal::from_digits(parts.negative, &shifted, scale), kept))
}

fn len_i64(s: &str) -> i64 {
    len_i64_of(s.len())
}

fn len_i64_of(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// The exact value, rounded up to nano and capped like Go's slow path, and the final format.
fn slow_path(
    parts: &Parts<'_>,
    exponent: i32,
    mut format: Format,
) -> Result<(Decimal, Format), &'static str> {
    let digits: String = parts.number.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Err("unable to parse numeric part of quantity");
    }
    let scale = -len_i64(parts.frac);
    let mut value = Decimal::from_digits(parts.negative, &digits, scale);
    value = match format {
        Format::BinarySi => value.times_pow2(exponent),
        _ => Decimal {
            exp: value.exp + i64::from(exponent),
            ..value
        }
        .normalised(),
    };
    value.round_up_to_nano();
    if format == Format::BinarySi {
        if value.cmp_magnitude(i64::MAX.unsigned_abs()) == Ordering::Greater {
            value = Decimal::from_digits(value.negative, &i64::MAX.to_string(), 0);
        }
        if value.cmp_magnitude(1) == Ordering::Less && !value.is_zero() {
            format = Format::DecimalSi;
        }
    }
    Ok((value, format))
}

/// `CanonicalizeBytes` and the suffix tables of the kubelets 1.16–1.30.
fn canonical(value: &Decimal, format: Format) -> String {
    if value.is_zero() {
        return "0".to_owned();
    }
    let binary_whole =
        format == Format::BinarySi && value.cmp_magnitude(1024) != Ordering::Less && value.exp >= 0;
    match (format, binary_whole) {
        (Format::BinarySi, true) => canonical_binary(value),
        (Format::DecimalExponent, _) => canonical_decimal(value, false),
        _ => canonical_decimal(value, true),
    }
}

fn canonical_decimal(value: &Decimal, si: bool) -> String {
    let shift = value.exp.rem_euclid(3);
    let exponent = value.exp - shift;
    let mut text = value.signed_digits();
    text.extend(std::iter::repeat_n(
        '0',
        usize::try_from(shift).unwrap_or(0),
    ));
    let suffix = match (si, exponent) {
        (_, 0) => String::new(),
        (true, -9) => "n".to_owned(),
        (true, -6) => "u".to_owned(),
        (true, -3) => "m".to_owned(),
        (true, 3) => "k".to_owned(),
        (true, 6) => "M".to_owned(),
        (true, 9) => "G".to_owned(),
        (true, 12) => "T".to_owned(),
        (true, 15) => "P".to_owned(),
        (true, 18) => "E".to_owned(),
        // Decimal SI has no suffix beyond E: these kubelets drop it (`1000E` is written `1`).
        (true, _) => String::new(),
        (false, e) => format!("e{e}"),
    };
    text + &suffix
}

fn canonical_binary(value: &Decimal) -> String {
    let mut magnitude = value.magnitude_u64();
    let mut power = 0;
    while magnitude >= 1024 && magnitude.is_multiple_of(1024) {
        magnitude /= 1024;
        power += 1;
    }
    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
    let sign = if value.negative { "-" } else { "" };
    format!("{sign}{magnitude}{suffix}")
}

/// An exact decimal `±digits × 10^exp`, normalised: no leading or trailing zeros in `digits`
/// (empty for zero, which is never negative).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exp: i64,
}

impl Decimal {
    fn from_digits(negative: bool, digits: &str, exp: i64) -> Self {
        let digits = digits.bytes().map(|b| b - b'0').collect();
        Decimal {
            negative,
            digits,
            exp,
        }
        .normalised()
    }

    fn from_u128(negative: bool, value: u128) -> Self {
        let digits = value.to_string().bytes().map(|b| b - b'0').collect();
        Decimal {
            negative,
            digits,
            exp: 0,
        }
        .normalised()
    }

    fn normalised(mut self) -> Self {
        let leading = self.digits.iter().take_while(|&&d| d == 0).count();
        self.digits.drain(..leading);
        while self.digits.last() == Some(&0) {
            self.digits.pop();
            self.exp += 1;
        }
        if self.digits.is_empty() {
            return Decimal::default();
        }
        self
    }

    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    fn times_pow2(mut self, power: i32) -> Self {
        for _ in 0..power {
            let mut carry = 0;
            for digit in self.digits.iter_mut().rev() {
                let doubled = *digit * 2 + carry;
                *digit = doubled % 10;
                carry = doubled / 10;
            }
            if carry > 0 {
                self.digits.insert(0, carry);
            }
        }
        self.normalised()
    }

    /// Rounds the magnitude up to a multiple of 10⁻⁹ (Go's `inf.RoundUp` on the absolute value).
    fn round_up_to_nano(&mut self) {
        if self.exp >= -9 || self.is_zero() {
            return;
        }
        let dropped = usize::try_from(-9 - self.exp).unwrap_or(usize::MAX);
        let kept = self.digits.len().saturating_sub(dropped);
        self.digits.truncate(kept);
        self.exp = -9;
        // The dropped digits were not all zero (no trailing zeros), so add one unit.
        let mut position = self.digits.len();
        loop {
            if position == 0 {
                self.digits.insert(0, 1);
                break;
            }
            position -= 1;
            if self.digits[position] < 9 {
                self.digits[position] += 1;
                break;
            }
            self.digits[position] = 0;
        }
        *self = std::mem::take(self).normalised();
    }

    /// Compares `|self|` with a whole number.
    fn cmp_magnitude(&self, other: u64) -> Ordering {
        let integer_digits = len_i64_of(self.digits.len()) + self.exp;
        if integer_digits > 20 {
            return Ordering::Greater;
        }
        let whole_len = usize::try_from(integer_digits.max(0)).unwrap_or(0);
        let mut whole: u128 = 0;
        for i in 0..whole_len {
            whole = whole * 10 + u128::from(self.digits.get(i).copied().unwrap_or(0));
        }
        let has_fraction = self.exp < 0;
        whole.cmp(&u128::from(other)).then(if has_fraction {
            Ordering::Greater
        } else {
            Ordering::Equal
        })
    }

    /// The magnitude of a whole value of at most 2⁶³−1.
    fn magnitude_u64(&self) -> u64 {
        let zeros = usize::try_from(self.exp).unwrap_or(0);
        self.digits
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0, zeros))
            .fold(0u64, |n, d| {
                n.saturating_mul(10).saturating_add(u64::from(d))
            })
    }

    fn signed_digits(&self) -> String {
        let sign = if self.negative { "-" } else { "" };
        let digits: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        format!("{sign}{digits}")
    }
}

#[cfg(test)]
mod tests;
