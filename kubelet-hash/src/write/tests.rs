//! Byte-exact tables of Go's string escaping, one row per class, under both toolchains.

use super::write_string;
use crate::GoEscapes::{self, Go122, Legacy};

fn quoted(s: &str, escapes: GoEscapes) -> String {
    let mut out = Vec::new();
    write_string(&mut out, s, escapes);
    String::from_utf8(out).unwrap_or_default()
}

/// Input, then the exact output under legacy and go1.22 (quotes included).
const TABLE: &[(&str, &str, &str)] = &[
    ("plain", r#""plain""#, r#""plain""#),
    ("", r#""""#, r#""""#),
    ("quote\"", r#""quote\"""#, r#""quote\"""#),
    ("back\\slash", r#""back\\slash""#, r#""back\\slash""#),
    ("a\nb", r#""a\nb""#, r#""a\nb""#),
    ("a\rb", r#""a\rb""#, r#""a\rb""#),
    ("a\tb", r#""a\tb""#, r#""a\tb""#),
    ("bell\u{8}", r#""bell\u0008""#, r#""bell\b""#),
    ("feed\u{c}", r#""feed\u000c""#, r#""feed\f""#),
    ("nul\u{0}", r#""nul\u0000""#, r#""nul\u0000""#),
    ("us\u{1f}", r#""us\u001f""#, r#""us\u001f""#),
    ("esc\u{1b}[0m", r#""esc\u001b[0m""#, r#""esc\u001b[0m""#),
    ("vt\u{b}", r#""vt\u000b""#, r#""vt\u000b""#),
    ("<tag>", r#""\u003ctag\u003e""#, r#""\u003ctag\u003e""#),
    ("a&b", r#""a\u0026b""#, r#""a\u0026b""#),
    (
        "line\u{2028}sep",
        r#""line\u2028sep""#,
        r#""line\u2028sep""#,
    ),
    (
        "para\u{2029}sep",
        r#""para\u2029sep""#,
        r#""para\u2029sep""#,
    ),
    (
        "near\u{2027}\u{202a}",
        "\"near\u{2027}\u{202a}\"",
        "\"near\u{2027}\u{202a}\"",
    ),
    ("del\u{7f}", "\"del\u{7f}\"", "\"del\u{7f}\""),
    ("a/b", r#""a/b""#, r#""a/b""#),
    ("'single'", r#""'single'""#, r#""'single'""#),
    (
        "caf\u{e9} \u{1f600}",
        "\"caf\u{e9} \u{1f600}\"",
        "\"caf\u{e9} \u{1f600}\"",
    ),
    ("\u{fffd}", "\"\u{fffd}\"", "\"\u{fffd}\""),
    (
        "\u{80}\u{85}\u{a0}",
        "\"\u{80}\u{85}\u{a0}\"",
        "\"\u{80}\u{85}\u{a0}\"",
    ),
    ("\u{8}\u{c}\u{8}", r#""\u0008\u000c\u0008""#, r#""\b\f\b""#),
];

#[test]
fn every_escape_class_is_written_byte_for_byte_as_go_writes_it() {
    for &(input, legacy, go122) in TABLE {
        assert_eq!(quoted(input, Legacy), legacy, "legacy {input:?}");
        assert_eq!(quoted(input, Go122), go122, "go1.22 {input:?}");
    }
}

#[test]
fn every_control_byte_has_the_escape_go_gives_it() {
    for byte in 0u8..0x20 {
        let input = char::from(byte).to_string();
        let expected = match byte {
            b'\n' => r#""\n""#.to_owned(),
            b'\r' => r#""\r""#.to_owned(),
            b'\t' => r#""\t""#.to_owned(),
            _ => format!("\"\\u{byte:04x}\""),
        };
        assert_eq!(quoted(&input, Legacy), expected, "byte {byte:#04x}");
    }
}

#[test]
fn printable_ascii_other_than_quote_backslash_and_html_is_written_raw() {
    for byte in 0x20u8..0x80 {
        if matches!(byte, b'"' | b'\\' | b'<' | b'>' | b'&') {
            continue;
        }
        let input = char::from(byte).to_string();
        assert_eq!(
            quoted(&input, Go122),
            format!("\"{input}\""),
            "byte {byte:#04x}"
        );
    }
}
