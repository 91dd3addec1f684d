//! The registry of served resources: built-in kinds plus every established CRD version, keyed by
//! group, version and plural name, with what discovery, tables and selectors need to know.

use std::sync::Arc;

use serde_json::Value;

/// How a resource's objects are converted between the stored and the served form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// Served as stored (apart from `apiVersion`).
    None,
    /// `events.k8s.io/v1` Events served from the core/v1 Event store.
    EventsV1,
}

/// One printer column of a CRD version.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// `OpenAPI` type (`string`, `integer`, `date`, ...).
    pub kind: String,
    /// `JSONPath` into the object.
    pub json_path: String,
    /// 0 for default columns, more for `-o wide`.
    pub priority: i64,
    /// Column description.
    pub description: String,
}

/// A served group/version/resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group, empty for core.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// List kind.
    pub list_kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories such as `all`.
    pub categories: Vec<String>,
    /// Whether `/status` is a subresource (spec and status isolated).
    pub status_subresource: bool,
    /// Storage key shared by all versions of the resource.
    pub store: Arc<str>,
    /// Conversion between stored and served form.
    pub conversion: Conversion,
    /// CRD printer columns (empty for built-ins).
    pub printer_columns: Vec<PrinterColumn>,
    /// CRD selectable fields, without the leading dot.
    pub selectable_fields: Vec<String>,
    /// CRD `openAPIV3Schema`.
    pub schema: Option<Arc<Value>>,
    /// Whether this version comes from a CRD.
    pub custom: bool,
}

impl ResourceInfo {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (or `plural`) as Kubernetes names it in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            singular: kind.to_lowercase(),
            kind: kind.to_owned(),
            list_kind: format!("{kind}List"),
            namespaced,
            short_names: Vec::new(),
            categories: Vec::new(),
            status_subresource: false,
            store: Arc::from(if group.is_empty() {
                plural.to_owned()
            } else {
                format!("{group}/{plural}")
            }),
            conversion: Conversion::None,
            printer_columns: Vec::new(),
            selectable_fields: Vec::new(),
            schema: None,
            custom: false,
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }
}

/// All served resources.
#[derive(Debug, Clone)]
pub struct Registry {
    resources: Vec<ResourceInfo>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            resources: builtins(),
        }
    }
}

fn builtins() -> Vec<ResourceInfo> {
    let b = ResourceInfo::builtin;
    let mut events_v1 = b("events.k8s.io", "v1", "events", "Event", true).short(&["ev"]);
    events_v1.store = Arc::from("events");
    events_v1.conversion = Conversion::EventsV1;
    vec![
        b("", "v1", "namespaces", "Namespace", false)
            .short(&["ns"])
            .with_status(),
        b("", "v1", "nodes", "Node", false)
            .short(&["no"])
            .with_status(),
        b("", "v1", "pods", "Pod", true)
            .short(&["po"])
            .with_status(),
        b("", "v1", "events", "Event", true).short(&["ev"]),
        b("", "v1", "configmaps", "ConfigMap", true).short(&["cm"]),
        b("", "v1", "secrets", "Secret", true),
        b("", "v1", "serviceaccounts", "ServiceAccount", true).short(&["sa"]),
        b("", "v1", "services", "Service", true)
            .short(&["svc"])
            .with_status(),
        b("apps", "v1", "daemonsets", "DaemonSet", true)
            .short(&["ds"])
            .with_status(),
        b("apps", "v1", "deployments", "Deployment", true)
            .short(&["deploy"])
            .with_status(),
        b("apps", "v1", "replicasets", "ReplicaSet", true)
            .short(&["rs"])
            .with_status(),
        b(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
        )
        .short(&["pdb"])
        .with_status(),
        b("coordination.k8s.io", "v1", "leases", "Lease", true),
        events_v1,
        b(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
        )
        .short(&["crd", "crds"])
        .with_status(),
    ]
}

impl Registry {
    /// The resource served at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// Every served resource.
    pub fn all(&self) -> &[ResourceInfo] {
        &self.resources
    }

    /// Replaces the resources of one CRD (by storage key) with `served`.
    pub fn set_custom(&mut self, store: &str, served: Vec<ResourceInfo>) {
        self.resources.retain(|r| !(r.custom && &*r.store == store));
        self.resources.extend(served);
    }

    /// Groups with their versions, in registration order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.resources.iter().filter(|r| !r.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) if !versions.contains(&r.version) => {
                    versions.push(r.version.clone());
                }
                Some(_) => {}
                None => groups.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        groups
    }
}

/// The resources served for a CRD object: one per served version.
pub fn from_crd(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let store: Arc<str> = Arc::from(format!("{group}/{plural}"));
    let versions = spec["versions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .map(|v| ResourceInfo {
            group: group.to_owned(),
            version: v["name"].as_str().unwrap_or_default().to_owned(),
            plural: plural.to_owned(),
            singular: names["singular"]
                .as_str()
                .map_or_else(|| kind.to_lowercase(), str::to_owned),
            kind: kind.to_owned(),
            list_kind: names["listKind"]
                .as_str()
                .map_or_else(|| format!("{kind}List"), str::to_owned),
            namespaced: spec["scope"].as_str() == Some("Namespaced"),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            status_subresource: v["subresources"].get("status").is_some(),
            store: store.clone(),
            conversion: Conversion::None,
            printer_columns: printer_columns(&v["additionalPrinterColumns"]),
            selectable_fields: selectable_fields(&v["selectableFields"]),
            schema: v["schema"].get("openAPIV3Schema").cloned().map(Arc::new),
            custom: true,
        })
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn printer_columns(value: &Value) -> Vec<PrinterColumn> {
    let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
    let text = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
    items
        .iter()
        .map(|c| PrinterColumn {
            name: text(c, "name"),
            kind: text(c, "type"),
            json_path: text(c, "jsonPath"),
            priority: c["priority"].as_i64().unwrap_or(0),
            description: text(c, "description"),
        })
        .collect()
}

fn selectable_fields(value: &Value) -> Vec<String> {
    let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .filter_map(|f| f["jsonPath"].as_str())
        .map(|p| p.trim_start_matches('.').to_owned())
        .collect()
}
