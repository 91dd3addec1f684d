//! Label selectors (the full string grammar) and field selectors (`=`, `==`, `!=`) over a
//! per-resource set of supported fields; unsupported fields are rejected as kube-apiserver does.

use serde_json::{Map, Value};

use super::resources::ResourceInfo;

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelOp {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<(String, LabelOp)>);

/// Parses `a=b,c!=d,e in (f,g),!h,i` and friends.
pub fn parse_labels(text: &str) -> Result<LabelSelector, String> {
    let mut requirements = Vec::new();
    for term in split_terms(text) {
        let term = term.trim();
        if !term.is_empty() {
            requirements.push(parse_label_term(term)?);
        }
    }
    Ok(LabelSelector(requirements))
}

fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

fn parse_label_term(term: &str) -> Result<(String, LabelOp), String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok((key.trim().to_owned(), LabelOp::DoesNotExist));
    }
    for (word, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((key, set)) = term.split_once(word) {
            let values = parse_set(set)?;
            let op = if negated {
                LabelOp::NotIn(values)
            } else {
                LabelOp::In(values)
            };
            return Ok((key.trim().to_owned(), op));
        }
    }
    parse_comparison(term)
}

fn parse_set(set: &str) -> Result<Vec<String>, String> {
    let inner = set
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("unable to parse requirement: found '{set}', expected: '('"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_comparison(term: &str) -> Result<(String, LabelOp), String> {
    let number = |v: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|e| format!("invalid number: {e}"))
    };
    if let Some((k, v)) = term.split_once("!=") {
        return Ok((k.trim().to_owned(), LabelOp::NotEq(v.trim().to_owned())));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok((k.trim().to_owned(), LabelOp::Eq(v.trim().to_owned())));
    }
    if let Some((k, v)) = term.split_once('>') {
        return Ok((k.trim().to_owned(), LabelOp::Gt(number(v)?)));
    }
    if let Some((k, v)) = term.split_once('<') {
        return Ok((k.trim().to_owned(), LabelOp::Lt(number(v)?)));
    }
    if term.contains(char::is_whitespace) {
        return Err(format!("unable to parse requirement: {term}"));
    }
    Ok((term.to_owned(), LabelOp::Exists))
}

impl LabelSelector {
    /// Whether an object's labels satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let empty = Map::new();
        let labels = object["metadata"]["labels"].as_object().unwrap_or(&empty);
        self.0.iter().all(|(key, op)| {
            let value = labels.get(key).and_then(Value::as_str);
            match op {
                LabelOp::Eq(v) => value == Some(v.as_str()),
                LabelOp::NotEq(v) => value != Some(v.as_str()),
                LabelOp::In(vs) => value.is_some_and(|x| vs.iter().any(|v| v == x)),
                LabelOp::NotIn(vs) => value.is_none_or(|x| vs.iter().all(|v| v != x)),
                LabelOp::Exists => value.is_some(),
                LabelOp::DoesNotExist => value.is_none(),
                LabelOp::Gt(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                LabelOp::Lt(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }
}

/// Whether a `metav1.LabelSelector` object (matchLabels, matchExpressions) matches labels.
pub fn label_selector_object_matches(selector: &Value, object: &Value) -> bool {
    let labels = &object["metadata"]["labels"];
    let match_labels = selector["matchLabels"].as_object();
    let labels_ok = match_labels.is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let expressions = selector["matchExpressions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    labels_ok && expressions.iter().all(|e| expression_matches(e, labels))
}

fn expression_matches(expression: &Value, labels: &Value) -> bool {
    let value = expression["key"]
        .as_str()
        .and_then(|k| labels.get(k))
        .and_then(Value::as_str);
    let values = expression["values"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let listed = |x: &str| values.iter().any(|v| v.as_str() == Some(x));
    match expression["operator"].as_str() {
        Some("In") => value.is_some_and(listed),
        Some("NotIn") => value.is_none_or(|x| !listed(x)),
        Some("Exists") => value.is_some(),
        Some("DoesNotExist") => value.is_none(),
        _ => false,
    }
}

/// A parsed field selector.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// Parses `a=b,c!=d` and checks every field is supported for the resource.
pub fn parse_fields(text: &str, info: &ResourceInfo) -> Result<FieldSelector, String> {
    let mut requirements = Vec::new();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
            (f, false, v)
        } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            (f, true, v)
        } else {
            return Err(format!(
                "invalid selector: '{term}'; can't understand '{term}'"
            ));
        };
        let field = canonical_field(field.trim(), info)
            .ok_or_else(|| format!("field label not supported: {}", field.trim()))?;
        requirements.push((field, equal, value.trim().to_owned()));
    }
    Ok(FieldSelector(requirements))
}

fn canonical_field(field: &str, info: &ResourceInfo) -> Option<String> {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return Some(field.to_owned());
    }
    if info.selectable_fields.iter().any(|f| f == field) {
        return Some(field.to_owned());
    }
    let supported: &[&str] = match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => &[
            "spec.nodeName",
            "status.phase",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "namespaces") => &["status.phase"],
        ("", "secrets") => &["type"],
        (_, "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        _ => &[],
    };
    let field = match field.strip_prefix("regarding.") {
        Some(rest) if info.plural == "events" => format!("involvedObject.{rest}"),
        _ => field.to_owned(),
    };
    supported.contains(&field.as_str()).then_some(field)
}

impl FieldSelector {
    /// Adds `metadata.name=<name>` (a watch on a named path).
    #[must_use]
    pub fn with_name(mut self, name: &str) -> Self {
        self.0
            .push(("metadata.name".to_owned(), true, name.to_owned()));
        self
    }

    /// Whether the object's fields satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        self.0
            .iter()
            .all(|(field, equal, value)| (field_value(object, field) == *value) == *equal)
    }
}

fn field_value(object: &Value, field: &str) -> String {
    let found = field.split('.').try_fold(object, |v, part| v.get(part));
    match found {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ if matches!(field, "spec.unschedulable" | "spec.hostNetwork") => "false".to_owned(),
        _ => String::new(),
    }
}

/// Label and field selectors of one request.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Whether the object matches both.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}
