//! The value constraints of kubelift's API, each stated once: a CEL rule that the API server
//! evaluates at apply time, the message a user reads when it fails, and the Rust predicate that
//! `validate()` applies to objects that reached the operator without that schema.
//!
//! The schema transforms at the bottom attach the rules to the generated CRD (`x-kubernetes-
//! validations`), together with the `maxLength`/`maxItems` bounds that the API server's CEL cost
//! estimator needs: without them it assumes strings as long as a whole request and refuses the CRD.

use std::net::Ipv4Addr;

use schemars::Schema;
use serde_json::{Value, json};

/// One constraint: the CEL rule the API server evaluates and the message both sides report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    /// CEL expression over `self`, true when the value is acceptable.
    pub(crate) cel: &'static str,
    /// What the value must be, completing "<field>: ...".
    pub(crate) message: &'static str,
}

/// A Kubernetes version as `version::parse` accepts it.
pub(crate) const VERSION: Rule = Rule {
    cel: "self.matches('^v(0|[1-9][0-9]*)[.](0|[1-9][0-9]*)[.](0|[1-9][0-9]*)\
          (-[0-9A-Za-z-]+([.][0-9A-Za-z-]+)*)?([+][0-9A-Za-z-]+([.][0-9A-Za-z-]+)*)?$')",
    message: "must be a Kubernetes version such as v1.32.3, optionally with a suffix such as \
              -rc.1 or +k3s1",
};

/// A SHA-256 digest in lowercase hex.
pub(crate) const SHA256: Rule = Rule {
    cel: "self.matches('^[0-9a-f]{64}$')",
    message: "must be 64 lowercase hexadecimal characters",
};

/// A download URL: HTTPS anywhere, plain HTTP only to the node itself.
pub(crate) const URL: Rule = Rule {
    // The regular expression, unescaped: ^(https://[^/?#\s]+|http://(localhost|127(\.OCTET){3}|
    // \[::1\])(:[0-9]{1,5})?)([/?#]\S*)?$ with OCTET one of 0..255 without leading zeros.
    cel: concat!(
        r"self.matches('^(https://[^/?#\\s]+|http://(localhost",
        r"|127([.](25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}|\\[::1\\])",
        r"(:[0-9]{1,5})?)([/?#]\\S*)?$')",
    ),
    message: "must be an https:// URL, or an http:// URL to a loopback address (localhost, \
              127.0.0.0/8 or [::1])",
};

/// An absolute node-local path that cannot climb out of the host root.
pub(crate) const PATH: Rule = Rule {
    cel: "self.startsWith('/') && !('/' + self + '/').contains('/../')",
    message: "must be an absolute path without '..' segments",
};

/// Exactly one of the two ways to name a binary.
pub(crate) const ONE_SOURCE: Rule = Rule {
    cel: "has(self.url) != has(self.path)",
    message: "exactly one of url and path must be set",
};

/// A number of nodes or a percentage of them, never zero.
///
/// An int-or-string is `dyn` in CEL. `self == string(self)` (false for a number under CEL's
/// heterogeneous equality) tells the two apart where the usual `type(self) == int` would do,
/// because kube-cel, which the tests evaluate the rules with, does not provide `type()`.
pub(crate) const MAX_UNAVAILABLE: Rule = Rule {
    cel: "self == string(self) ? string(self).matches('^(100|[1-9][0-9]?)%$') : int(self) > 0",
    message: "must be a positive number of nodes, or a percentage from 1% to 100%",
};

/// Counts and durations that may be zero.
pub(crate) const NON_NEGATIVE: Rule = Rule {
    cel: "self >= 0",
    message: "must be 0 or greater",
};

/// Timeouts: zero would fail every node at once.
pub(crate) const POSITIVE: Rule = Rule {
    cel: "self > 0",
    message: "must be greater than 0",
};

/// Names the operator must be able to look up.
pub(crate) const NON_EMPTY: Rule = Rule {
    cel: "self != ''",
    message: "must not be empty",
};

/// A wall-clock time of day.
pub(crate) const CLOCK: Rule = Rule {
    cel: "self.matches('^([01][0-9]|2[0-3]):[0-5][0-9]$')",
    message: "must be a time of day as HH:MM, from 00:00 to 23:59",
};

/// The shape of an IANA time-zone name; whether the zone exists only Rust can tell.
pub(crate) const TIME_ZONE: Rule = Rule {
    cel: "self.matches('^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$')",
    message: "must be an IANA time-zone name such as Europe/Berlin or UTC",
};

/// A window that opens and closes at the same minute never opens.
pub(crate) const WINDOW_LENGTH: Rule = Rule {
    cel: "self.start != self.end",
    message: "start and end must differ",
};

/// Whether `text` is a SHA-256 digest in lowercase hex.
pub(crate) fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `url` is HTTPS, or plain HTTP to a loopback host.
pub(crate) fn is_allowed_url(url: &str) -> bool {
    if url.bytes().any(|b| b.is_ascii_whitespace()) {
        return false;
    }

    if let Some(rest) = url.strip_prefix("https://") {
        return !authority(rest).is_empty();
    }
    url.strip_prefix("http://")
        .is_some_and(|rest| is_loopback_authority(authority(rest)))
}

/// The `host[:port]` part of a URL after its scheme.
fn authority(after_scheme: &str) -> &str {
    let end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    &after_scheme[..end]
}

fn is_loopback_authority(authority: &str) -> bool {
    let (host, port) = match authority.strip_prefix("[::1]") {
        Some(port) => ("[::1]", port),
        None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|digits| {
            (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        });
    port_ok && is_loopback_host(host)
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `path` is absolute and has no `..` segment.
pub(crate) fn is_safe_path(path: &str) -> bool {
    path.starts_with('/') && !path.split('/').any(|segment| segment == "..")
}

/// Whether `text` is a percentage from 1% to 100%, written without leading zeros.
pub(crate) fn is_percentage(text: &str) -> bool {
    let Some(digits) = text.strip_suffix('%') else {
        return false;
    };
    let canonical = !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit());
    canonical
        && digits
            .parse::<u8>()
            .is_ok_and(|percent| (1..=100).contains(&percent))
}

/// Whether `text` is `HH:MM` on a 24-hour clock.
pub(crate) fn is_clock(text: &str) -> bool {
    let Some((hours, minutes)) = text.split_once(':') else {
        return false;
    };
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    two_digits(hours)
        && two_digits(minutes)
        && hours.parse::<u8>().is_ok_and(|h| h < 24)
        && minutes.parse::<u8>().is_ok_and(|m| m < 60)
}

/// Whether `name` has the shape of an IANA zone name and names a zone jiff knows.
pub(crate) fn is_time_zone(name: &str) -> bool {
    let part_ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-'))
    };
    name.split('/').all(part_ok) && jiff::tz::TimeZone::get(name).is_ok()
}

/// Attaches `rule` to a schema, after any rules it already carries.
fn attach(schema: &mut Schema, rule: Rule) {
    let object = schema.ensure_object();
    let entry = json!({ "rule": rule.cel, "message": rule.message });
    match object.get_mut("x-kubernetes-validations") {
        Some(Value::Array(rules)) => rules.push(entry),
        _ => {
            object.insert("x-kubernetes-validations".to_owned(), json!([entry]));
        }
    }
}

/// Attaches `rule` to a string schema and bounds its length for the CEL cost estimator.
fn attach_to_string(schema: &mut Schema, rule: Rule, max_length: u32) {
    schema.insert("maxLength".to_owned(), json!(max_length));
    attach(schema, rule);
}

/// Schema transform for `version` fields.
pub(crate) fn version(schema: &mut Schema) {
    attach_to_string(schema, VERSION, 64);
}

/// Schema transform for `sha256` fields.
pub(crate) fn sha256(schema: &mut Schema) {
    attach_to_string(schema, SHA256, 64);
}

/// Schema transform for `url` fields.
pub(crate) fn url(schema: &mut Schema) {
    attach_to_string(schema, URL, 2048);
}

/// Schema transform for `path` fields.
pub(crate) fn path(schema: &mut Schema) {
    attach_to_string(schema, PATH, 4096);
}

/// Schema transform for objects holding `url` and `path`.
pub(crate) fn one_source(schema: &mut Schema) {
    attach(schema, ONE_SOURCE);
}

/// Schema transform for `maxUnavailable`.
///
/// kube marks every optional int-or-string property `nullable`; with a default that keeps an
/// explicit `null` in storage, which no client could read back as a number or a percentage.
pub(crate) fn max_unavailable(schema: &mut Schema) {
    schema.insert("nullable".to_owned(), json!(false));
    attach(schema, MAX_UNAVAILABLE);
}

/// Schema transform for counts and durations that may be zero.
pub(crate) fn non_negative(schema: &mut Schema) {
    attach(schema, NON_NEGATIVE);
}

/// Schema transform for timeouts.
pub(crate) fn positive(schema: &mut Schema) {
    attach(schema, POSITIVE);
}

/// Schema transform for object names (node and plan names are at most 253 characters).
pub(crate) fn object_name(schema: &mut Schema) {
    attach_to_string(schema, NON_EMPTY, 253);
}

/// Schema transform for window opening and closing times.
pub(crate) fn clock(schema: &mut Schema) {
    attach_to_string(schema, CLOCK, 5);
}

/// Schema transform for `timeZone`.
pub(crate) fn time_zone(schema: &mut Schema) {
    attach_to_string(schema, TIME_ZONE, 64);
}

/// Schema transform for the maintenance window as a whole.
pub(crate) fn window(schema: &mut Schema) {
    attach(schema, WINDOW_LENGTH);
}

/// Schema transform for `days`: a week has seven.
pub(crate) fn days(schema: &mut Schema) {
    schema.insert("maxItems".to_owned(), json!(7));
}

/// Schema transform for `architectures`: a handful of CPU architectures at most.
pub(crate) fn architectures(schema: &mut Schema) {
    schema.insert("maxProperties".to_owned(), json!(16));
}
