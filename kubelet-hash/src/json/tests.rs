//! The reader accepts exactly Go's grammar and decodes strings exactly as Go does.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests fail loudly on unexpected input"
)]

use super::{Value, decode_string, key_folds_to, parse};

/// Raw string content (between the quotes, as bytes) and what Go decodes it to.
const STRINGS: &[(&[u8], &str)] = &[
    (b"plain", "plain"),
    (br#"\"\\\/"#, "\"\\/"),
    (br"\b\f\n\r\t", "\u{8}\u{c}\n\r\t"),
    (br"\u0041\u00e9\u20ac", "A\u{e9}\u{20ac}"),
    (br"\ud83d\ude00", "\u{1f600}"),
    (br"\uD83D\uDE00", "\u{1f600}"),
    (br"lone\ud800surrogate", "lone\u{fffd}surrogate"),
    (br"\udc00", "\u{fffd}"),
    (br"\ude00\ud83d", "\u{fffd}\u{fffd}"),
    (br"\ud83d\u0041", "\u{fffd}A"),
    (br"\ud83d\ud83d\ude00", "\u{fffd}\u{1f600}"),
    (br"\ud83dx", "\u{fffd}x"),
    (b"caf\xc3\xa9", "caf\u{e9}"),
    (b"bad\xffbyte", "bad\u{fffd}byte"),
    (b"\xe2\x82", "\u{fffd}\u{fffd}"),
    (b"\xf0\x9f\x98", "\u{fffd}\u{fffd}\u{fffd}"),
    (b"\xed\xa0\x80", "\u{fffd}\u{fffd}\u{fffd}"),
    (b"\xc0\xaf", "\u{fffd}\u{fffd}"),
    (b"\xf4\x90\x80\x80", "\u{fffd}\u{fffd}\u{fffd}\u{fffd}"),
    (b"\x80x\\n\xff", "\u{fffd}x\n\u{fffd}"),
    (br"\u007f\u2028", "\u{7f}\u{2028}"),
];

#[test]
fn strings_decode_as_go_decodes_them() {
    for &(raw, expected) in STRINGS {
        assert_eq!(
            decode_string(raw),
            expected,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn scalars_keep_their_raw_token_text() {
    let node = parse(br#" [1.50, -0, 1E+3, "a\u0031", true, null] "#).unwrap();
    let Value::Array(items) = node.value else {
        panic!("not an array")
    };
    let raw: Vec<String> = items
        .iter()
        .map(|item| match &item.value {
            Value::Number(raw) | Value::String(raw) => String::from_utf8_lossy(raw).into_owned(),
            other => other.kind().to_owned(),
        })
        .collect();
    assert_eq!(raw, ["1.50", "-0", "1E+3", r"a\u0031", "bool", "null"]);
}

#[test]
fn spans_cover_the_raw_text_of_each_value() {
    let text = br#"{"a": {"b" : [1, 2]} , "c":"d"}"#;
    let node = parse(text).unwrap();
    let Value::Object(members) = node.value else {
        panic!("not an object")
    };
    assert_eq!(&text[members[0].1.span.clone()], br#"{"b" : [1, 2]}"#);
    assert_eq!(&text[members[1].1.span.clone()], br#""d""#);
}

#[test]
fn what_go_refuses_is_refused() {
    let bad: &[&[u8]] = &[
        b"",
        b"{",
        b"{}}",
        b"{\"a\":1,}",
        b"[1,]",
        b"[01]",
        b"[1.]",
        b"[.5]",
        b"[+1]",
        b"[1e]",
        b"[-]",
        b"[tru]",
        b"[NaN]",
        b"{'a':1}",
        b"{a:1}",
        b"[\"tab\there\"]",
        b"[\"\\x\"]",
        b"[\"\\u12\"]",
        b"[\"open]",
        b"\xef\xbb\xbf{}",
        b"{} {}",
    ];
    for text in bad {
        assert!(
            parse(text).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn what_go_accepts_is_accepted() {
    let good: &[&[u8]] = &[
        b" \t\r\n{}\n",
        b"[-0.0e-0]",
        b"[1E400]",
        b"{\"\":null}",
        b"[\"\x7f\xff\"]",
        b"{\"a\":1,\"a\":2}",
    ];
    for text in good {
        assert!(
            parse(text).is_ok(),
            "refused {:?}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn nesting_is_bounded_instead_of_overflowing_the_stack() {
    let deep = "[".repeat(5000) + &"]".repeat(5000);
    let error = parse(deep.as_bytes()).unwrap_err();
    assert_eq!(error.reason, "nesting too deep");
}

#[test]
fn keys_fold_like_go_field_names() {
    assert!(key_folds_to("NAME", "name"));
    assert!(key_folds_to("imagePullPolicy", "imagepullpolicy"));
    assert!(key_folds_to("\u{212a}ind", "kind"));
    assert!(key_folds_to("\u{17f}pec", "spec"));
    assert!(!key_folds_to("names", "name"));
    assert!(!key_folds_to("nam", "name"));
    assert!(!key_folds_to("n\u{e4}me", "name"));
}
