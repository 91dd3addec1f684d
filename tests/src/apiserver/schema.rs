//! Structural knowledge used by merges: which lists are maps (and their keys), sets or atomic,
//! taken from a CRD's `OpenAPI` schema or, for built-in kinds, from Kubernetes' merge keys.

use serde_json::Value;

/// How a list merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// Items are unique scalars.
    Set,
    /// Items are objects identified by these keys.
    Map(Vec<String>),
}

/// A position in an object's structure.
#[derive(Debug, Clone, Copy)]
pub enum Schema<'a> {
    /// A built-in kind; the string is the field name leading here.
    Builtin(&'a str),
    /// The root of a custom resource.
    CrdRoot(&'a Value),
    /// Inside a custom resource (None when the schema says nothing).
    Crd(Option<&'a Value>),
}

impl<'a> Schema<'a> {
    /// The root position for an object with an optional CRD schema.
    pub fn root(schema: Option<&'a Value>) -> Self {
        schema.map_or(Schema::Builtin(""), Schema::CrdRoot)
    }

    /// The position of field `name` of an object here.
    pub fn field(self, name: &'a str) -> Schema<'a> {
        match self {
            Schema::Builtin(_) => Schema::Builtin(name),
            Schema::CrdRoot(_) if name == "metadata" => Schema::Builtin(name),
            Schema::CrdRoot(node) => Schema::Crd(property(node, name)),
            Schema::Crd(node) => Schema::Crd(node.and_then(|n| property(n, name))),
        }
    }

    /// The position of the items of a list here.
    pub fn items(self) -> Schema<'a> {
        match self {
            Schema::Builtin(_) => Schema::Builtin(""),
            Schema::CrdRoot(node) => Schema::Crd(node.get("items")),
            Schema::Crd(node) => Schema::Crd(node.and_then(|n| n.get("items"))),
        }
    }

    /// How a list here merges.
    pub fn list_type(self) -> ListType {
        match self {
            Schema::Builtin(field) => builtin_list_type(field),
            Schema::CrdRoot(node) | Schema::Crd(Some(node)) => crd_list_type(node),
            Schema::Crd(None) => ListType::Atomic,
        }
    }

    /// Whether a map here is replaced as a whole.
    pub fn atomic_map(self) -> bool {
        match self {
            Schema::CrdRoot(node) | Schema::Crd(Some(node)) => {
                node["x-kubernetes-map-type"].as_str() == Some("atomic")
            }
            Schema::Builtin(_) | Schema::Crd(None) => false,
        }
    }
}

fn property<'a>(node: &'a Value, name: &str) -> Option<&'a Value> {
    node["properties"]
        .get(name)
        .or_else(|| node.get("additionalProperties").filter(|v| v.is_object()))
}

fn crd_list_type(node: &Value) -> ListType {
    match node["x-kubernetes-list-type"].as_str() {
        Some("map") => {
            let keys = node["x-kubernetes-list-map-keys"]
                .as_array()
                .map(Vec::as_slice);
            let keys = keys.unwrap_or_default().iter().filter_map(Value::as_str);
            ListType::Map(keys.map(str::to_owned).collect())
        }
        Some("set") => ListType::Set,
        _ => ListType::Atomic,
    }
}

/// Merge keys of built-in kinds, by field name.
pub fn builtin_list_type(field: &str) -> ListType {
    let keys: &[&str] = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "readinessGates" => &["name"],
        "conditions" | "addresses" => &["type"],
        "volumeMounts" | "volumeDevices" => &["mountPath"],
        "ports" => &["containerPort"],
        "taints" => &["key", "effect"],
        "ownerReferences" => &["uid"],
        "finalizers" => return ListType::Set,
        _ => return ListType::Atomic,
    };
    ListType::Map(keys.iter().map(|k| (*k).to_owned()).collect())
}

/// Whether `item` has the same key values as `other` for a list-map.
pub fn same_key(keys: &[String], item: &Value, other: &Value) -> bool {
    keys.iter().all(|k| item.get(k) == other.get(k))
}
