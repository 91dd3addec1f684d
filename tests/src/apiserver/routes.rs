//! URL parsing: which document or resource a path names, and the RBAC verb of the request.

use http::Method;

use super::resources::Registry;

/// A resource request path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group (empty for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Plural resource name.
    pub plural: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`, `eviction`).
    pub subresource: Option<String>,
    /// Legacy `/watch/` prefix.
    pub legacy_watch: bool,
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/version`.
    Version,
    /// `/healthz`, `/readyz`, `/livez`.
    Health,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`.
    Resources(String, String),
    /// A resource, collection or object.
    Resource(ResourcePath),
    /// Anything else.
    Unknown,
}

/// Parses a request path.
pub fn parse(path: &str, registry: &Registry) -> Target {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        ["version"] => Target::Version,
        ["healthz" | "readyz" | "livez", ..] => Target::Health,
        ["api"] => Target::CoreVersions,
        ["apis"] => Target::Groups,
        ["apis", group] => Target::Group((*group).to_owned()),
        ["api", version] => Target::Resources(String::new(), (*version).to_owned()),
        ["apis", group, version] => Target::Resources((*group).to_owned(), (*version).to_owned()),
        ["api", version, rest @ ..] => resource("", version, rest, registry),
        ["apis", group, version, rest @ ..] => resource(group, version, rest, registry),
        _ => Target::Unknown,
    }
}

fn resource(group: &str, version: &str, rest: &[&str], registry: &Registry) -> Target {
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let owned = |s: Option<&&str>| s.map(|s| (*s).to_owned());
    let namespaced = match rest {
        ["namespaces", namespace, plural, tail @ ..]
            if registry
                .find(group, version, plural)
                .is_some_and(|r| r.namespaced) =>
        {
            Some((Some((*namespace).to_owned()), *plural, tail))
        }
        _ => None,
    };
    let (namespace, plural, tail) = match namespaced {
        Some(found) => found,
        None => match rest {
            [plural, tail @ ..] => (None, *plural, tail),
            [] => return Target::Unknown,
        },
    };
    Target::Resource(ResourcePath {
        group: group.to_owned(),
        version: version.to_owned(),
        namespace,
        plural: plural.to_owned(),
        name: owned(tail.first()),
        subresource: owned(tail.get(1)),
        legacy_watch,
    })
}

/// The RBAC verb of a request on a resource path.
pub fn verb(method: &Method, path: &ResourcePath, watch: bool) -> &'static str {
    let named = path.name.is_some();
    match *method {
        Method::GET if path.legacy_watch || watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}
