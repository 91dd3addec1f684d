//! Kubernetes versions as plans and Nodes spell them (`v1.32.3`, `v1.33.0-rc.1`, `v1.31.4+k3s1`),
//! parsed exactly as the CRD's `version` rule accepts them and ordered by semantic-versioning
//! precedence, so the operator can tell an upgrade from a downgrade and a node already at target.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A parsed Kubernetes version.
///
/// Equality and order follow semantic-versioning precedence: build metadata (`+k3s1`) is kept for
/// display but ignored, so a node reporting `v1.31.4+k3s1` is at target `v1.31.4`; a pre-release
/// (`-rc.1`) comes before its release.
#[derive(Clone, Debug)]
pub struct KubeVersion {
    /// Major version (`1`).
    pub major: u64,
    /// Minor version (`32` in `v1.32.3`).
    pub minor: u64,
    /// Patch version (`3` in `v1.32.3`).
    pub patch: u64,
    /// Pre-release identifiers after `-`, e.g. `rc.1`.
    pub pre_release: Option<String>,
    /// Build metadata after `+`, e.g. `k3s1`.
    pub build: Option<String>,
}

/// Why a text is not a Kubernetes version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The text does not start with `v`.
    #[error("failed to parse version {0:?}: it must start with 'v'")]
    MissingPrefix(String),
    /// `major.minor.patch` is not three numbers without leading zeros.
    #[error("failed to parse version {0:?}: expected vMAJOR.MINOR.PATCH")]
    Core(String),
    /// A pre-release or build suffix holds an empty or non-alphanumeric identifier.
    #[error("failed to parse version {0:?}: suffix identifiers must be letters, digits and '-'")]
    Suffix(String),
}

/// Parses a Kubernetes version such as `v1.32.3`, `v1.33.0-rc.1` or `v1.31.4+k3s1`.
pub fn parse(text: &str) -> Result<KubeVersion, VersionError> {
    let rest = text
        .strip_prefix('v')
        .ok_or_else(|| VersionError::MissingPrefix(text.to_owned()))?;

    let (rest, build) = split_suffix(rest, '+');
    let (core, pre_release) = split_suffix(rest, '-');
    let suffixes_ok = [pre_release, build]
        .into_iter()
        .flatten()
        .all(is_dotted_identifiers);
    if !suffixes_ok {
        return Err(VersionError::Suffix(text.to_owned()));
    }

    let [major, minor, patch] =
        parse_core(core).ok_or_else(|| VersionError::Core(text.to_owned()))?;
    Ok(KubeVersion {
        major,
        minor,
        patch,
        pre_release: pre_release.map(str::to_owned),
        build: build.map(str::to_owned),
    })
}

/// Splits `text` at the first `separator` into what comes before and the suffix after it.
fn split_suffix(text: &str, separator: char) -> (&str, Option<&str>) {
    match text.split_once(separator) {
        Some((head, suffix)) => (head, Some(suffix)),
        None => (text, None),
    }
}

fn is_dotted_identifiers(suffix: &str) -> bool {
    suffix.split('.').all(|identifier| {
        !identifier.is_empty()
            && identifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

fn parse_core(core: &str) -> Option<[u64; 3]> {
    let mut numbers = core.split('.').map(parse_number);
    let parsed = [numbers.next()??, numbers.next()??, numbers.next()??];
    numbers.next().is_none().then_some(parsed)
}

fn parse_number(text: &str) -> Option<u64> {
    let canonical = text == "0" || !text.starts_with('0');
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if canonical && digits {
        text.parse().ok()
    } else {
        None
    }
}

impl KubeVersion {
    /// Whether `self` and `other` share major and minor version (a patch upgrade between them).
    #[must_use]
    pub fn same_minor(&self, other: &Self) -> bool {
        (self.major, self.minor) == (other.major, other.minor)
    }
}

/// Compares dot-separated pre-release identifiers: numbers numerically and before words, and a
/// shorter list first when it is a prefix of the longer one.
fn compare_pre_release(left: &str, right: &str) -> Ordering {
    let mut left_ids = left.split('.');
    let mut right_ids = right.split('.');
    loop {
        let order = match (left_ids.next(), right_ids.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(l), Some(r)) => compare_identifier(l, r),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
}

fn compare_identifier(left: &str, right: &str) -> Ordering {
    match (left.parse::<u64>(), right.parse::<u64>()) {
        (Ok(l), Ok(r)) => l.cmp(&r),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => left.cmp(right),
    }
}

impl Ord for KubeVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let core =
            (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch));
        core.then_with(|| match (&self.pre_release, &other.pre_release) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(l), Some(r)) => compare_pre_release(l, r),
        })
    }
}

impl PartialOrd for KubeVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for KubeVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for KubeVersion {}

impl FromStr for KubeVersion {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse(text)
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre_release) = &self.pre_release {
            write!(f, "-{pre_release}")?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use super::*;

    #[test]
    fn plain_release_candidate_and_distribution_versions_parse() {
        let plain = parse("v1.32.3").unwrap();
        assert_eq!((plain.major, plain.minor, plain.patch), (1, 32, 3));

        let rc = parse("v1.33.0-rc.1").unwrap();
        assert_eq!(rc.pre_release.as_deref(), Some("rc.1"));

        let k3s = parse("v1.31.4+k3s1").unwrap();
        assert_eq!(k3s.build.as_deref(), Some("k3s1"));

        let eks = parse("v1.30.2-eks-1a2b3c").unwrap();
        assert_eq!(eks.pre_release.as_deref(), Some("eks-1a2b3c"));
    }

    #[test]
    fn malformed_versions_are_refused_with_the_reason() {
        assert!(matches!(
            parse("1.32.3"),
            Err(VersionError::MissingPrefix(_))
        ));
        assert!(matches!(parse("v1.32"), Err(VersionError::Core(_))));
        assert!(matches!(parse("v1.32.3.4"), Err(VersionError::Core(_))));
        assert!(matches!(parse("v1.032.3"), Err(VersionError::Core(_))));
        assert!(matches!(parse("v1.32.x"), Err(VersionError::Core(_))));
        assert!(matches!(parse("v1.32.3-"), Err(VersionError::Suffix(_))));
        assert!(matches!(
            parse("v1.32.3-rc..1"),
            Err(VersionError::Suffix(_))
        ));
        assert!(matches!(
            parse("v1.32.3+k3s_1"),
            Err(VersionError::Suffix(_))
        ));
    }

    #[test]
    fn versions_order_by_precedence_and_ignore_build_metadata() {
        let order = [
            "v1.31.9",
            "v1.32.0-alpha.1",
            "v1.32.0-rc.1",
            "v1.32.0-rc.2",
            "v1.32.0",
        ];
        let parsed: Vec<_> = order.iter().map(|text| parse(text).unwrap()).collect();
        assert!(parsed.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(parse("v1.31.4+k3s1").unwrap(), parse("v1.31.4").unwrap());
        assert!(parse("v1.32.0-rc.10").unwrap() > parse("v1.32.0-rc.9").unwrap());
    }

    #[test]
    fn display_writes_back_what_was_parsed() {
        for text in [
            "v1.32.3",
            "v1.33.0-rc.1",
            "v1.31.4+k3s1",
            "v1.30.0-beta.0+abc",
        ] {
            assert_eq!(parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn same_minor_tells_a_patch_upgrade_from_a_minor_one() {
        let from = parse("v1.32.1").unwrap();
        assert!(from.same_minor(&parse("v1.32.3").unwrap()));
        assert!(!from.same_minor(&parse("v1.33.0").unwrap()));
    }
}
