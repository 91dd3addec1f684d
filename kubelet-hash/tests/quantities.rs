//! `resource.Quantity` as the kubelets 1.16–1.30 write it: a byte-exact table of spellings kept
//! and canonicalised across the three families and at Go's limits, refused spellings, and the
//! property that a written quantity reads back to the same value and the same written form.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use kubelet_hash::Quantity;
use proptest::prelude::*;

/// Spelling, then what the kubelet writes.
const WRITTEN: &[(&str, &str)] = &[
    // Kept: decimal SI.
    ("100m", "100m"),
    ("+100m", "+100m"),
    ("-100m", "-100m"),
    ("1.500", "1.500"),
    ("1.555k", "1.555k"),
    ("500M", "500M"),
    ("1G", "1G"),
    ("1n", "1n"),
    ("1E", "1E"),
    ("00100", "00100"),
    ("1.", "1."),
    ("123456789012345678", "123456789012345678"),
    // Kept: exponent.
    ("1E3", "1E3"),
    ("1e+3", "1e+3"),
    ("12e-3", "12e-3"),
    ("1e-9", "1e-9"),
    ("1e21", "1e21"),
    // Kept: binary.
    ("5Ki", "5Ki"),
    ("07Ti", "07Ti"),
    ("-5Ki", "-5Ki"),
    ("100Mi", "100Mi"),
    ("1023Ki", "1023Ki"),
    ("12345678901Ki", "12345678901Ki"),
    // Canonicalised: decimal SI.
    ("0", "0"),
    ("-0", "0"),
    ("0.5", "500m"),
    (".5", "500m"),
    ("0.1", "100m"),
    ("1.5", "1500m"),
    ("1.5k", "1500"),
    ("2.000", "2"),
    ("1.0", "1"),
    ("1000m", "1"),
    ("1000P", "1E"),
    ("3.14159", "3141590u"),
    ("0.000000001", "1n"),
    ("0.0000000001", "1n"),
    ("-0.0000000001", "-1n"),
    ("1.0000000001", "1000000001n"),
    ("1.23456789012345678901", "1234567891n"),
    ("9223372036854775807", "9223372036854775807"),
    ("9223372036854775808", "9223372036854775808"),
    ("1000E", "1"),
    ("10000000000000000000000", "10"),
    // Canonicalised: exponent.
    ("12e1", "120"),
    ("15e-4", "1500e-6"),
    ("1.5e-6", "1500e-9"),
    ("1e-10", "1e-9"),
    ("5e-10", "1e-9"),
    ("1000e18", "1e21"),
    // Canonicalised: binary.
    ("8Ki", "8Ki"),
    ("200Mi", "200Mi"),
    ("1024Ki", "1Mi"),
    ("1024Mi", "1Gi"),
    ("1.5Gi", "1536Mi"),
    ("0.5Ki", "512"),
    ("1.1Ki", "1126400m"),
    ("0.000001Ki", "1024u"),
    ("123456789012Ki", "123456789012Ki"),
    ("1Pi", "1Pi"),
    ("7Ei", "7Ei"),
    ("8Ei", "9223372036854775807"),
    ("-8Ei", "-9223372036854775807"),
    ("-8Ki", "-8Ki"),
    // Go's scanner quirks: no digits at all still reads as zero on the fast path.
    ("Ki", "0"),
    ("-", "0"),
    (".", "0"),
    // Surrounding Unicode white space is trimmed before parsing.
    (" 100m\u{a0}", "100m"),
];

const REFUSED: &[&str] = &[
    "",
    "   ",
    "abc",
    "1 Ki",
    "1Kb",
    "1K",
    "1.2.3",
    "Mi1",
    "1e",
    "1ee3",
    "1E3.5",
    "--1",
    "0x10",
    "e-10",
    ".e-10",
    "1e99999999999999999999",
    r"1\u0030",
    "\u{221e}",
];

#[test]
fn every_spelling_is_written_exactly_as_the_kubelet_writes_it() {
    assert!(WRITTEN.len() >= 40);
    for &(spelling, written) in WRITTEN {
        let quantity = Quantity::parse(spelling).unwrap();
        assert_eq!(quantity.written(), written, "{spelling:?}");
    }
}

#[test]
fn spellings_the_kubelet_refuses_are_refused() {
    for &spelling in REFUSED {
        assert!(Quantity::parse(spelling).is_err(), "{spelling:?} accepted");
    }
}

#[test]
fn canonical_forms_keep_the_value_and_kept_forms_keep_the_spelling() {
    let value = |s: &str| Quantity::parse(s).unwrap();
    assert!(value("1.5Gi").same_value(&value("1536Mi")));
    assert!(value("0.5").same_value(&value("500m")));
    assert!(value("07Ti").same_value(&value("7Ti")));
    assert!(!value("1000E").same_value(&value("1")));
    assert!(!value("1n").same_value(&value("1u")));
}

/// Spellings across all three families, with optional sign, leading zeros and fraction,
/// kept below the decimal-SI ceiling where Go drops the suffix and so the value.
fn spelling() -> impl Strategy<Value = String> {
    let sign = prop::sample::select(vec!["", "+", "-"]);
    let int = "0{0,2}[0-9]{0,8}";
    let frac = prop::option::of("[0-9]{0,10}");
    let suffix = prop_oneof![
        prop::sample::select(vec!["", "n", "u", "m", "k", "M", "G"]).prop_map(str::to_owned),
        prop::sample::select(vec!["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]).prop_map(str::to_owned),
        (-15i32..15).prop_map(|e| format!("e{e}")),
    ];
    (sign, int, frac, suffix).prop_filter_map("needs a digit", |(sign, int, frac, suffix)| {
        let number = match frac {
            Some(frac) => format!("{int}.{frac}"),
            None => int,
        };
        number
            .bytes()
            .any(|b| b.is_ascii_digit())
            .then(|| format!("{sign}{number}{suffix}"))
    })
}

proptest! {
    #[test]
    fn a_written_quantity_reads_back_to_the_same_value_and_form(spelling in spelling()) {
        let first = Quantity::parse(&spelling).unwrap();
        let again = Quantity::parse(first.written()).unwrap();
        prop_assert_eq!(again.written(), first.written(), "from {}", spelling);
        prop_assert!(again.same_value(&first), "{} -> {}", spelling, first.written());
    }
}
