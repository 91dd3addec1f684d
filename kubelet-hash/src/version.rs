//! Kubelet versions as Kubernetes spells them (`v1.30.2`, `v1.31.0-rc.1`, `v1.29.3+k3s1`),
//! ordered like semantic versions.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A spelling that is not a kubelet version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse kubelet version {0:?}: expected v<major>.<minor>[.<patch>][-pre][+build]")]
pub struct VersionError(pub String);

/// A kubelet version: `major.minor.patch`, an optional pre-release and build metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KubeletVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version: what decides the hash algorithm and the container schema.
    pub minor: u32,
    /// Patch version (0 when not given).
    pub patch: u32,
    /// Pre-release, e.g. `rc.1` in `v1.31.0-rc.1`.
    pub pre: Option<String>,
    /// Build metadata, e.g. `k3s1` in `v1.29.3+k3s1`; only breaks ties when ordering.
    pub build: Option<String>,
}

impl KubeletVersion {
    /// The version `major.minor.0`.
    #[must_use]
    pub fn new(major: u32, minor: u32, patch: u32) -> Self {
        KubeletVersion {
            major,
            minor,
            patch,
            pre: None,
            build: None,
        }
    }

    /// Whether this is `major.minor` (any patch).
    #[must_use]
    pub fn is_minor(&self, major: u32, minor: u32) -> bool {
        self.major == major && self.minor == minor
    }

    /// `(major, minor)`, for comparing algorithm ranges.
    #[must_use]
    pub fn minor_pair(&self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl FromStr for KubeletVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || VersionError(s.to_owned());
        let text = s.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let (text, build) = split_off(text, '+');
        let (core, pre) = split_off(text, '-');
        let mut numbers = core.split('.').map(parse_number);
        let major = numbers.next().flatten().ok_or_else(invalid)?;
        let minor = numbers.next().flatten().ok_or_else(invalid)?;
        let patch = match numbers.next() {
            None => 0,
            Some(patch) => patch.ok_or_else(invalid)?,
        };
        let well_formed = |part: &Option<String>| part.as_deref() != Some("");
        if numbers.next().is_some() || !well_formed(&pre) || !well_formed(&build) {
            return Err(invalid());
        }
        Ok(KubeletVersion {
            major,
            minor,
            patch,
            pre,
            build,
        })
    }
}

fn split_off(text: &str, separator: char) -> (&str, Option<String>) {
    match text.split_once(separator) {
        Some((head, tail)) => (head, Some(tail.to_owned())),
        None => (text, None),
    }
}

fn parse_number(part: &str) -> Option<u32> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

impl fmt::Display for KubeletVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

impl Ord for KubeletVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let core = |v: &Self| (v.major, v.minor, v.patch);
        core(self)
            .cmp(&core(other))
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => compare_pre(a, b),
            })
            .then_with(|| self.build.cmp(&other.build))
    }
}

impl PartialOrd for KubeletVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Semantic-version pre-release order: numeric identifiers numerically, below alphanumeric ones.
fn compare_pre(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use super::*;

    fn v(s: &str) -> KubeletVersion {
        s.parse().unwrap()
    }

    #[test]
    fn accepted_spellings_parse_and_display_with_a_v() {
        assert_eq!(v("v1.30.2"), KubeletVersion::new(1, 30, 2));
        assert_eq!(v("1.30.2"), KubeletVersion::new(1, 30, 2));
        assert_eq!(v("v1.30"), KubeletVersion::new(1, 30, 0));
        assert_eq!(v("v1.31.0-rc.1").pre.as_deref(), Some("rc.1"));
        assert_eq!(v("v1.29.3+k3s1").build.as_deref(), Some("k3s1"));
        assert_eq!(v("1.30.2").to_string(), "v1.30.2");
        assert_eq!(v("v1.31.0-rc.1").to_string(), "v1.31.0-rc.1");
        assert_eq!(v("v1.29.3-eks-1+b2").to_string(), "v1.29.3-eks-1+b2");
    }

    #[test]
    fn malformed_spellings_are_refused() {
        for bad in [
            "",
            "v",
            "v1",
            "1.x",
            "v1.30.2.1",
            "v1.30.",
            "v1.30.2-",
            "v1.30.2+",
            "v-1.2",
        ] {
            assert!(bad.parse::<KubeletVersion>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn pre_releases_order_before_their_release() {
        assert!(v("v1.31.0-rc.1") < v("v1.31.0"));
        assert!(v("v1.31.0-rc.2") < v("v1.31.0-rc.10"));
        assert!(v("v1.30.9") < v("v1.31.0-alpha.1"));
        assert!(v("v1.30.10") > v("v1.30.9"));
    }
}
