//! The restart-prediction model: which container hash a given kubelet version computes.
//!
//! Pure and free of I/O; `kubelet-hash/SPEC.md` states the facts it encodes. The
//! kubelet stores the hash of each container it creates (CRI annotation
//! `io.kubernetes.container.hash`) and restarts the container when its own hash of the pod spec
//! differs. [`hash`] computes that annotation for any kubelet from 1.16 on, [`calibrate`] checks
//! the model against hashes a running kubelet stored, and [`predict`] judges a kubelet upgrade.
//!
//! Everything works from the raw JSON text the API server serves: quantity spellings, number
//! spellings and string escapes all reach the hash, so nothing goes through a lossy parser.

mod direct;
mod json;
mod model;
mod predict;
mod quantity;
mod rendered;
mod schema;
mod version;
mod write;

use std::fmt;
use std::str::FromStr;

pub use json::JsonError;
pub use model::DecodeError;
pub use predict::{
    Calibration, ContainerKind, ContainerPrediction, PodPrediction, StoredHashes, Verdict,
    calibrate, container_names_and_json, predict,
};
pub use quantity::{Quantity, QuantityError};
pub use schema::{SchemaError, embedded_minors};
pub use version::{KubeletVersion, VersionError};

/// How the kubelet's Go toolchain writes the control bytes 0x08 and 0x0C in JSON strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GoEscapes {
    /// Go before 1.22: `\u0008` and `\u000c`.
    Legacy,
    /// Go 1.22 and later: `\b` and `\f` (every kubelet from 1.30, some late 1.28/1.29 patches).
    Go122,
}

impl GoEscapes {
    /// Both settings, the usual one for `kubelet` first.
    #[must_use]
    pub fn candidates(kubelet: &KubeletVersion) -> [GoEscapes; 2] {
        match GoEscapes::default_for(kubelet) {
            GoEscapes::Legacy => [GoEscapes::Legacy, GoEscapes::Go122],
            GoEscapes::Go122 => [GoEscapes::Go122, GoEscapes::Legacy],
        }
    }

    /// The setting assumed when none is given: `go1.22` from 1.30, `legacy` before.
    #[must_use]
    pub fn default_for(kubelet: &KubeletVersion) -> GoEscapes {
        if kubelet.minor_pair() >= (1, 30) {
            GoEscapes::Go122
        } else {
            GoEscapes::Legacy
        }
    }
}

impl fmt::Display for GoEscapes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GoEscapes::Legacy => "legacy",
            GoEscapes::Go122 => "go1.22",
        })
    }
}

impl FromStr for GoEscapes {
    type Err = HashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "legacy" => Ok(GoEscapes::Legacy),
            "go1.22" => Ok(GoEscapes::Go122),
            other => Err(HashError::UnknownGoEscapes(other.to_owned())),
        }
    }
}

/// Model parameters of a kubelet beyond its version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashOptions {
    /// The toolchain's escaping; `None` means [`GoEscapes::default_for`] the kubelet.
    pub go_escapes: Option<GoEscapes>,
    /// Compute `io.kubernetes.container.hashWithoutResources` (1.27–1.30 only).
    pub without_resources: bool,
}

/// Why a hash or a prediction could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Kubelets before 1.16 hash a Go struct dump; the model refuses rather than guesses.
    #[error(
        "failed to hash for kubelet {0}: kubelets before v1.16 hash a Go struct dump, which this \
         model does not reproduce"
    )]
    UnsupportedVersion(KubeletVersion),
    /// `hashWithoutResources` was asked of a kubelet that never writes it.
    #[error("failed to hash for kubelet {0}: hashWithoutResources exists only on v1.27 to v1.30")]
    WithoutResourcesUnsupported(KubeletVersion),
    /// A minor in 1.16–1.30 without an embedded field list (a packaging mistake).
    #[error("failed to hash for kubelet {0}: no container field list is embedded for it")]
    NoSchema(KubeletVersion),
    /// An escaping setting other than `legacy` and `go1.22`.
    #[error("failed to parse go escapes {0:?}: expected legacy or go1.22")]
    UnknownGoEscapes(String),
    /// An embedded field list is broken.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The input is not JSON.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The kubelet's decoder would refuse the container.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The input is JSON but not a pod or container of the expected shape.
    #[error("failed to read pod: {0}")]
    PodShape(String),
}

/// The annotation value (lowercase hex, no padding) the kubelet computes for a container.
///
/// `container_json` is the container exactly as the API server serves it.
pub fn hash(
    container_json: &str,
    kubelet: &KubeletVersion,
    options: &HashOptions,
) -> Result<String, HashError> {
    hash_bytes(container_json.as_bytes(), kubelet, options)
}

/// [`hash`] of raw bytes; invalid UTF-8 inside strings is replaced as Go's decoder does.
pub fn hash_bytes(
    container_json: &[u8],
    kubelet: &KubeletVersion,
    options: &HashOptions,
) -> Result<String, HashError> {
    let hash = match direct_bytes(container_json, kubelet, *options) {
        Some(json) => rendered::fnv1a_of_rendered(&json),
        None => hash_node(&json::parse(container_json)?, kubelet, *options)?,
    };
    Ok(format!("{hash:x}"))
}

/// The exact JSON text the kubelet feeds to its hash (a debugging and test aid).
pub fn hashed_json(
    container_json: &str,
    kubelet: &KubeletVersion,
    options: &HashOptions,
) -> Result<String, HashError> {
    let input = container_json.as_bytes();
    let bytes = match direct_bytes(input, kubelet, *options) {
        Some(bytes) => bytes,
        None => hashed_bytes(&json::parse(input)?, kubelet, *options)?,
    };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The hash of a container given both as raw text and as its tree: one pass over the text
/// when it has the common shape, the tree otherwise.
pub(crate) fn hash_container(
    raw: &[u8],
    node: &json::Node<'_>,
    kubelet: &KubeletVersion,
    options: HashOptions,
) -> Result<u32, HashError> {
    match direct_bytes(raw, kubelet, options) {
        Some(json) => Ok(rendered::fnv1a_of_rendered(&json)),
        None => hash_node(node, kubelet, options),
    }
}

pub(crate) fn hash_node(
    node: &json::Node<'_>,
    kubelet: &KubeletVersion,
    options: HashOptions,
) -> Result<u32, HashError> {
    Ok(rendered::fnv1a_of_rendered(&hashed_bytes(
        node, kubelet, options,
    )?))
}

/// The hashed JSON by the one-pass reader ([`direct`]), or `None` when the general path must
/// decide (unusual input, an error, an unsupported version).
fn direct_bytes(input: &[u8], kubelet: &KubeletVersion, options: HashOptions) -> Option<Vec<u8>> {
    let escapes = supported(kubelet, options).ok()?;
    if kubelet.minor_pair() >= (1, 31) {
        let fields = &schema::newest().ok()?.fields;
        let mut decoded = Vec::with_capacity(input.len());
        let spans = direct::encode_container(input, fields, escapes, None, &mut decoded)?;
        let written = |name: &str| {
            let index = fields.iter().position(|f| f.name == name)?;
            decoded.get(spans[index].clone()?)
        };
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(b"{\"image\":");
        out.extend_from_slice(written("image").unwrap_or(b"\"\""));
        out.extend_from_slice(b",\"name\":");
        out.extend_from_slice(written("name").unwrap_or(b"\"\""));
        out.push(b'}');
        return Some(out);
    }
    let fields = &schema::schema(kubelet.minor).ok()??.fields;
    let blank = options
        .without_resources
        .then(|| fields.iter().position(|f| f.name == "resources"))
        .flatten();
    let mut out = Vec::with_capacity(input.len() + 64);
    direct::encode_container(input, fields, escapes, blank, &mut out)?;
    Some(out)
}

/// The escaping to use, once the version and options are known to be supported.
fn supported(kubelet: &KubeletVersion, options: HashOptions) -> Result<GoEscapes, HashError> {
    let minor = kubelet.minor_pair();
    if kubelet.major != 1 || minor < (1, 16) {
        return Err(HashError::UnsupportedVersion(kubelet.clone()));
    }
    if options.without_resources && !((1, 27)..=(1, 30)).contains(&minor) {
        return Err(HashError::WithoutResourcesUnsupported(kubelet.clone()));
    }
    Ok(options
        .go_escapes
        .unwrap_or_else(|| GoEscapes::default_for(kubelet)))
}

fn hashed_bytes(
    node: &json::Node<'_>,
    kubelet: &KubeletVersion,
    options: HashOptions,
) -> Result<Vec<u8>, HashError> {
    let escapes = supported(kubelet, options)?;
    let minor = kubelet.minor_pair();
    if minor >= (1, 31) {
        return name_and_image(node, escapes);
    }
    let schema = schema::schema(kubelet.minor)?;
    let schema = schema.ok_or_else(|| HashError::NoSchema(kubelet.clone()))?;
    let mut slots = model::decode(&schema.fields, node)?;
    if options.without_resources
        && let Some(index) = schema.fields.iter().position(|f| f.name == "resources")
    {
        slots[index] = model::Slot::Zero;
    }
    let mut out = Vec::with_capacity(node.span.len() + 64);
    model::encode(&schema.fields, &slots, escapes, &mut out);
    Ok(out)
}

/// What kubelets from 1.31 hash: `{"image":…,"name":…}` of the decoded container (it must still
/// decode, so it is read with the newest field list).
fn name_and_image(node: &json::Node<'_>, escapes: GoEscapes) -> Result<Vec<u8>, HashError> {
    let schema = schema::newest()?;
    let slots = model::decode(&schema.fields, node)?;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"image\":");
    write::write_string(
        &mut out,
        model::string_field(&schema.fields, &slots, "image"),
        escapes,
    );
    out.extend_from_slice(b",\"name\":");
    write::write_string(
        &mut out,
        model::string_field(&schema.fields, &slots, "name"),
        escapes,
    );
    out.push(b'}');
    Ok(out)
}

/// Every byte value in decimal, without leading zeros.
const DECIMAL: [([u8; 3], usize); 256] = decimal_table();

/// The same, preceded by the separating space.
const SPACED_DECIMAL: [([u8; 4], usize); 256] = spaced_decimal_table();

const fn spaced_decimal_table() -> [([u8; 4], usize); 256] {
    let mut table = [([b' ', 0, 0, 0], 0usize); 256];
    let mut n = 0;
    while n < 256 {
        let (digits, len) = DECIMAL[n];
        table[n] = ([b' ', digits[0], digits[1], digits[2]], len + 1);
        n += 1;
    }
    table
}

#[allow(clippy::cast_possible_truncation, reason = "indices are below 256")]
const fn decimal_table() -> [([u8; 3], usize); 256] {
    let mut table = [([0u8; 3], 0usize); 256];
    let mut n = 0;
    while n < 256 {
        let byte = n as u8;
        table[n] = if byte >= 100 {
            (
                [b'0' + byte / 100, b'0' + byte / 10 % 10, b'0' + byte % 10],
                3,
            )
        } else if byte >= 10 {
            ([b'0' + byte / 10, b'0' + byte % 10, 0], 2)
        } else {
            ([b'0' + byte, 0, 0], 1)
        };
        n += 1;
    }
    table
}

/// 32-bit FNV-1a, stepped one byte at a time.
struct Fnv1a(u32);

impl Fnv1a {
    const PRIME: u32 = 0x0100_0193;

    fn new() -> Self {
        Fnv1a(0x811c_9dc5)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.step(byte);
        }
    }

    fn step(&mut self, byte: u8) {
        self.0 = (self.0 ^ u32::from(byte)).wrapping_mul(Self::PRIME);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_values() {
        let mut empty = Fnv1a::new();
        empty.write(b"");
        assert_eq!(empty.0, 0x811c_9dc5);
        let mut a = Fnv1a::new();
        a.write(b"a");
        assert_eq!(a.0, 0xe40c_292c);
        let mut foobar = Fnv1a::new();
        foobar.write(b"foobar");
        assert_eq!(foobar.0, 0xbf9c_f968);
    }

    #[test]
    fn decimal_rendering_covers_one_two_and_three_digit_bytes() {
        assert_eq!(DECIMAL[7], ([b'7', 0, 0], 1));
        assert_eq!(DECIMAL[42], ([b'4', b'2', 0], 2));
        assert_eq!(DECIMAL[255], ([b'2', b'5', b'5'], 3));
    }
}
