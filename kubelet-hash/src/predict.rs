//! Judges a kubelet upgrade per container: calibrate the model of the running kubelet against
//! the hashes it stored, then compare what the target kubelet will compute with what is stored.
//!
//! A container is `Preserved` only when the target's hash equals the stored one (or, on
//! 1.27–1.30 kubelets with in-place resize, when only resources differ and the stored
//! `hashWithoutResources` still matches); `Unknown` when the model does not reproduce the stored
//! hash — callers treat it as `WillRestart`.

use std::collections::BTreeMap;
use std::fmt;

use crate::json::{self, Node, Value, decode_string, key_folds_to};
use crate::{GoEscapes, HashError, HashOptions, KubeletVersion, hash_container};

/// The hash annotations the kubelet stored on a running container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredHashes {
    /// `io.kubernetes.container.hash`, as stored (hex).
    pub hash: Option<String>,
    /// `io.kubernetes.container.hashWithoutResources` (1.27–1.30 with in-place resize only).
    pub hash_without_resources: Option<String>,
}

/// Model parameters that reproduce a container's stored hash on its running kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calibration {
    /// The escaping that reproduces the stored hash (the kubelet's default when both do).
    pub go_escapes: GoEscapes,
    /// Both escapings reproduce it: the container has no 0x08/0x0C, so the toolchain is open.
    pub escapes_ambiguous: bool,
    /// The kubelet stored `hashWithoutResources`, so it runs with in-place resize.
    pub in_place_resize: bool,
    /// Whether the model reproduces the stored `hashWithoutResources` too (`None` if absent).
    pub without_resources_matches: Option<bool>,
    /// Only `hashWithoutResources` is reproduced: the container was resized in place since it
    /// was created (its stored hash predates the new resources).
    pub resized_in_place: bool,
}

/// Which list of the pod spec a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContainerKind {
    /// `spec.containers`.
    Regular,
    /// `spec.initContainers` without `restartPolicy: Always`.
    Init,
    /// `spec.initContainers` with `restartPolicy: Always` (a sidecar).
    Sidecar,
}

impl fmt::Display for ContainerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContainerKind::Regular => "regular",
            ContainerKind::Init => "init",
            ContainerKind::Sidecar => "sidecar",
        })
    }
}

/// What the target kubelet will do with a running container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The target computes the stored hash (or resizes in place): the container keeps running.
    Preserved,
    /// The model is validated and the target's hash differs: the container will be restarted.
    WillRestart,
    /// The model does not reproduce the stored hash (or lacks one): treat as `WillRestart`.
    Unknown,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Preserved => "Preserved",
            Verdict::WillRestart => "WillRestart",
            Verdict::Unknown => "Unknown",
        })
    }
}

/// The verdict for one container, with the hashes that support it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPrediction {
    /// The container's name.
    pub name: String,
    /// Its list in the pod spec.
    pub kind: ContainerKind,
    /// The judgement.
    pub verdict: Verdict,
    /// The stored hash, when one was given.
    pub stored: Option<String>,
    /// What the model of the current kubelet computes (calibrated when possible).
    pub current: String,
    /// What the model of the target kubelet computes.
    pub target: String,
    /// How the current kubelet was calibrated, when stored hashes were given and reproduced.
    pub calibration: Option<Calibration>,
}

/// The verdicts for every regular, init and sidecar container of a pod, in spec order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPrediction {
    /// Init and sidecar containers first, then regular ones.
    pub containers: Vec<ContainerPrediction>,
}

/// Which model options reproduce a container's stored hash on `kubelet`, or `None` when none
/// does (or the container does not decode, or no hash is stored).
#[must_use]
pub fn calibrate(
    container_json: &str,
    kubelet: &KubeletVersion,
    stored: &StoredHashes,
) -> Option<Calibration> {
    let node = json::parse(container_json.as_bytes()).ok()?;
    calibrate_node(container_json.as_bytes(), &node, kubelet, stored)
}

/// [`calibrate`] of a container given as its raw text and its tree.
fn calibrate_node(
    raw: &[u8],
    node: &Node<'_>,
    kubelet: &KubeletVersion,
    stored: &StoredHashes,
) -> Option<Calibration> {
    let stored_hash = parse_stored(stored.hash.as_deref()?)?;
    let stored_without = stored
        .hash_without_resources
        .as_deref()
        .and_then(parse_stored);
    let reproduces = |escapes, without_resources: bool| {
        let expected = if without_resources {
            stored_without
        } else {
            Some(stored_hash)
        };
        let options = HashOptions {
            go_escapes: Some(escapes),
            without_resources,
        };
        hash_container(raw, node, kubelet, options).is_ok_and(|h| Some(u64::from(h)) == expected)
    };
    let in_place_resize =
        stored.hash_without_resources.is_some() && writes_without_resources(kubelet);
    let candidates = GoEscapes::candidates(kubelet);
    let matching = |without_resources| {
        let found = candidates
            .into_iter()
            .find(|&e| reproduces(e, without_resources))?;
        let ambiguous = candidates
            .into_iter()
            .all(|e| reproduces(e, without_resources));
        Some((found, ambiguous))
    };
    if let Some((go_escapes, escapes_ambiguous)) = matching(false) {
        let without_resources_matches = in_place_resize.then(|| reproduces(go_escapes, true));
        return Some(Calibration {
            go_escapes,
            escapes_ambiguous,
            in_place_resize,
            without_resources_matches,
            resized_in_place: false,
        });
    }
    // After an in-place resize the stored hash is stale by design; the kubelet then goes by
    // hashWithoutResources, and so does the calibration.
    let (go_escapes, escapes_ambiguous) = in_place_resize.then(|| matching(true)).flatten()?;
    Some(Calibration {
        go_escapes,
        escapes_ambiguous,
        in_place_resize,
        without_resources_matches: Some(true),
        resized_in_place: true,
    })
}

fn writes_without_resources(kubelet: &KubeletVersion) -> bool {
    ((1, 27)..=(1, 30)).contains(&kubelet.minor_pair())
}

/// The kubelet reads the annotation with `strconv.ParseUint(s, 16, 64)`.
fn parse_stored(text: &str) -> Option<u64> {
    let valid = !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| u64::from_str_radix(text, 16).ok()).flatten()
}

/// Predicts, for every container of a pod, whether upgrading the kubelet from `current` to
/// `target` restarts it.
///
/// Without `stored` hashes this compares the two models only (an estimate); with them (keyed by
/// container name) it calibrates `current` per container and judges against what is stored.
pub fn predict(
    pod_json: &str,
    current: &KubeletVersion,
    target: &KubeletVersion,
    stored: Option<&BTreeMap<String, StoredHashes>>,
) -> Result<PodPrediction, HashError> {
    let node = json::parse(pod_json.as_bytes())?;
    let containers = pod_containers(&node)?
        .into_iter()
        .map(|c| {
            let raw = pod_json
                .as_bytes()
                .get(c.node.span.clone())
                .unwrap_or_default();
            predict_container(&c, raw, current, target, stored)
        })
        .collect::<Result<_, _>>()?;
    Ok(PodPrediction { containers })
}

/// The containers of a pod (or a pod spec, or a single container, which counts as regular):
/// kind, name and raw JSON text, init and sidecar containers first.
pub fn container_names_and_json(
    pod_json: &str,
) -> Result<Vec<(ContainerKind, String, String)>, HashError> {
    let node = json::parse(pod_json.as_bytes())?;
    let containers = pod_containers(&node)?;
    let raw = |c: &PodContainer<'_>| pod_json.get(c.node.span.clone()).unwrap_or_default();
    Ok(containers
        .iter()
        .map(|c| (c.kind, c.name.clone(), raw(c).to_owned()))
        .collect())
}

struct PodContainer<'n> {
    kind: ContainerKind,
    name: String,
    node: &'n Node<'n>,
}

fn pod_containers<'n>(node: &'n Node<'n>) -> Result<Vec<PodContainer<'n>>, HashError> {
    let Value::Object(members) = &node.value else {
        return Err(HashError::PodShape(format!(
            "expected an object, found {}",
            node.value.kind()
        )));
    };
    let spec = member(members, "spec").unwrap_or(node);
    let Value::Object(spec_members) = &spec.value else {
        return Err(HashError::PodShape("spec is not an object".to_owned()));
    };
    let regular = member(spec_members, "containers");
    let init = member(spec_members, "initContainers");
    if regular.is_none() && init.is_none() && !std::ptr::eq(spec, node) {
        return Ok(Vec::new());
    }
    if regular.is_none() && init.is_none() {
        let name = container_name(members, "the container")?;
        return Ok(vec![PodContainer {
            kind: ContainerKind::Regular,
            name,
            node,
        }]);
    }
    let mut containers = list(init, "initContainers")?;
    containers.extend(list(regular, "containers")?);
    Ok(containers)
}

fn list<'n>(
    node: Option<&'n Node<'n>>,
    list_name: &str,
) -> Result<Vec<PodContainer<'n>>, HashError> {
    let items = match node.map(|n| &n.value) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            let found = other.kind();
            return Err(HashError::PodShape(format!(
                "{list_name} is a {found}, not an array"
            )));
        }
    };
    let mut containers = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let place = format!("{list_name}[{index}]");
        let Value::Object(members) = &item.value else {
            return Err(HashError::PodShape(format!("{place} is not an object")));
        };
        let name = container_name(members, &place)?;
        let kind = match (list_name, restart_policy(members).as_deref()) {
            ("containers", _) => ContainerKind::Regular,
            (_, Some("Always")) => ContainerKind::Sidecar,
            _ => ContainerKind::Init,
        };
        containers.push(PodContainer {
            kind,
            name,
            node: item,
        });
    }
    Ok(containers)
}

fn container_name(members: &[(&[u8], Node<'_>)], place: &str) -> Result<String, HashError> {
    match member(members, "name").map(|n| &n.value) {
        Some(Value::String(raw)) if !raw.is_empty() => Ok(decode_string(raw).into_owned()),
        _ => Err(HashError::PodShape(format!("{place} has no name"))),
    }
}

fn restart_policy(members: &[(&[u8], Node<'_>)]) -> Option<String> {
    match member(members, "restartPolicy").map(|n| &n.value) {
        Some(Value::String(raw)) => Some(decode_string(raw).into_owned()),
        _ => None,
    }
}

/// The member Go's decoder would use for a field: the last key matching it exactly or, failing
/// that, case-insensitively.
fn member<'n>(members: &'n [(&[u8], Node<'n>)], name: &str) -> Option<&'n Node<'n>> {
    let keys = || members.iter().rev().map(|(k, n)| (decode_string(k), n));
    keys()
        .find(|(k, _)| k == name)
        .or_else(|| keys().find(|(k, _)| key_folds_to(k, name)))
        .map(|(_, n)| n)
}

fn predict_container(
    container: &PodContainer<'_>,
    raw: &[u8],
    current: &KubeletVersion,
    target: &KubeletVersion,
    stored: Option<&BTreeMap<String, StoredHashes>>,
) -> Result<ContainerPrediction, HashError> {
    let node = container.node;
    let defaults = HashOptions::default();
    let current_hash = hash_container(raw, node, current, defaults)?;
    let target_hash = hash_container(raw, node, target, defaults)?;
    let mut prediction = ContainerPrediction {
        name: container.name.clone(),
        kind: container.kind,
        verdict: if current_hash == target_hash {
            Verdict::Preserved
        } else {
            Verdict::WillRestart
        },
        stored: None,
        current: format!("{current_hash:x}"),
        target: format!("{target_hash:x}"),
        calibration: None,
    };
    let Some(stored) = stored else {
        return Ok(prediction);
    };
    prediction.verdict = Verdict::Unknown;
    let Some(entry) = stored.get(&container.name) else {
        return Ok(prediction);
    };
    prediction.stored.clone_from(&entry.hash);
    let Some(calibration) = calibrate_node(raw, node, current, entry) else {
        return Ok(prediction);
    };
    let judged = Judge {
        raw,
        node,
        current,
        target,
        calibration,
        stored: entry,
    };
    let (verdict, target_hash) = judged.verdict()?;
    let options = HashOptions {
        go_escapes: Some(calibration.go_escapes),
        without_resources: false,
    };
    prediction.current = format!("{:x}", hash_container(raw, node, current, options)?);
    prediction.target = format!("{target_hash:x}");
    prediction.verdict = verdict;
    prediction.calibration = Some(calibration);
    Ok(prediction)
}

/// The judgement of one calibrated container.
struct Judge<'a, 'n> {
    raw: &'a [u8],
    node: &'a Node<'n>,
    current: &'a KubeletVersion,
    target: &'a KubeletVersion,
    calibration: Calibration,
    stored: &'a StoredHashes,
}

impl Judge<'_, '_> {
    /// The verdict, agreed by every toolchain the target may have been built with, and the
    /// target hash under the most likely one.
    fn verdict(&self) -> Result<(Verdict, u32), HashError> {
        let mut outcomes = Vec::new();
        for escapes in self.target_escapes() {
            outcomes.push(self.verdict_with(escapes)?);
        }
        let (first_verdict, first_hash) = outcomes[0];
        if outcomes
            .iter()
            .all(|(verdict, _)| *verdict == first_verdict)
        {
            Ok((first_verdict, first_hash))
        } else {
            Ok((Verdict::Unknown, first_hash))
        }
    }

    /// Toolchains the target may use: Go ≥ 1.22 from 1.30, older before 1.28, and for 1.28/1.29
    /// the calibrated one when it cannot have changed (same build, or already Go 1.22).
    fn target_escapes(&self) -> Vec<GoEscapes> {
        let minor = self.target.minor_pair();
        let known = self.calibration.go_escapes;
        if minor >= (1, 30) {
            vec![GoEscapes::Go122]
        } else if minor < (1, 28) {
            vec![GoEscapes::Legacy]
        } else if self.target == self.current
            || (known == GoEscapes::Go122 && self.target >= self.current)
        {
            vec![known]
        } else {
            vec![GoEscapes::default_for(self.target), GoEscapes::Go122]
        }
    }

    fn verdict_with(&self, escapes: GoEscapes) -> Result<(Verdict, u32), HashError> {
        let options = HashOptions {
            go_escapes: Some(escapes),
            without_resources: false,
        };
        let target_hash = hash_container(self.raw, self.node, self.target, options)?;
        let stored = self.stored.hash.as_deref().and_then(parse_stored);
        if stored == Some(u64::from(target_hash)) || self.resized_in_place(escapes)? {
            return Ok((Verdict::Preserved, target_hash));
        }
        Ok((Verdict::WillRestart, target_hash))
    }

    /// A 1.27–1.30 target with in-place resize resizes instead of restarting when only the
    /// resources changed, i.e. its `hashWithoutResources` matches the stored one.
    fn resized_in_place(&self, escapes: GoEscapes) -> Result<bool, HashError> {
        let usable = self.calibration.without_resources_matches == Some(true)
            && writes_without_resources(self.target);
        if !usable {
            return Ok(false);
        }
        let options = HashOptions {
            go_escapes: Some(escapes),
            without_resources: true,
        };
        let hash = hash_container(self.raw, self.node, self.target, options)?;
        let stored = self
            .stored
            .hash_without_resources
            .as_deref()
            .and_then(parse_stored);
        Ok(stored == Some(u64::from(hash)))
    }
}
