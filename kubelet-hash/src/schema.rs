//! The `v1.Container` field lists of the kubelets that hash a JSON projection (1.16–1.30).
//!
//! The lists are data (`schemas/v1.N.txt`, one `.path (GoType) [omitempty]` per line in Go's
//! encoding order), embedded at build time and parsed once. A release that changes the
//! container type needs one new file and one line in [`RELEASES`].

use std::sync::LazyLock;

/// The embedded field lists, by kubelet minor (major 1).
const RELEASES: &[(u32, &str)] = &[
    (16, include_str!("../schemas/v1.16.txt")),
    (17, include_str!("../schemas/v1.17.txt")),
    (18, include_str!("../schemas/v1.18.txt")),
    (19, include_str!("../schemas/v1.19.txt")),
    (20, include_str!("../schemas/v1.20.txt")),
    (21, include_str!("../schemas/v1.21.txt")),
    (22, include_str!("../schemas/v1.22.txt")),
    (23, include_str!("../schemas/v1.23.txt")),
    (24, include_str!("../schemas/v1.24.txt")),
    (25, include_str!("../schemas/v1.25.txt")),
    (26, include_str!("../schemas/v1.26.txt")),
    (27, include_str!("../schemas/v1.27.txt")),
    (28, include_str!("../schemas/v1.28.txt")),
    (29, include_str!("../schemas/v1.29.txt")),
    (30, include_str!("../schemas/v1.30.txt")),
];

static SCHEMAS: LazyLock<Result<Vec<Schema>, SchemaError>> = LazyLock::new(|| {
    RELEASES
        .iter()
        .map(|&(minor, text)| parse(minor, text))
        .collect()
});

/// An embedded field list that does not parse (a packaging mistake, caught by the tests).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse schema v1.{minor} line {line}: {reason}")]
pub struct SchemaError {
    /// The kubelet minor of the file.
    pub minor: u32,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// The container struct of one kubelet minor.
#[derive(Debug)]
pub(crate) struct Schema {
    pub minor: u32,
    pub fields: Vec<Field>,
}

/// One struct field, in declaration (= encoding) order.
#[derive(Debug)]
pub(crate) struct Field {
    /// The JSON key.
    pub name: String,
    /// `,"name":`, what precedes the value of any member but the first.
    pub member_prefix: Box<[u8]>,
    pub shape: Shape,
    pub base: Base,
    pub omitempty: bool,
    /// Fields of a struct base, empty otherwise.
    pub children: Vec<Field>,
}

/// Whether a field holds its base directly, through a pointer, or as a slice of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Value,
    Pointer,
    Slice,
}

/// The Go types that decide decoding and encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    String,
    Int32,
    Int64,
    Bool,
    Quantity,
    IntOrString,
    /// `v1.ResourceList`: a map from resource name to quantity.
    ResourceList,
    Struct,
}

/// The schema of a minor in 1.16–1.30.
pub(crate) fn schema(minor: u32) -> Result<Option<&'static Schema>, SchemaError> {
    let schemas = SCHEMAS.as_ref().map_err(Clone::clone)?;
    Ok(schemas.iter().find(|s| s.minor == minor))
}

/// The schema of the newest embedded minor.
pub(crate) fn newest() -> Result<&'static Schema, SchemaError> {
    let schemas = SCHEMAS.as_ref().map_err(Clone::clone)?;
    schemas.last().ok_or_else(|| SchemaError {
        minor: 0,
        line: 0,
        reason: "none".into(),
    })
}

/// The minors with an embedded field list, oldest first.
pub fn embedded_minors() -> impl Iterator<Item = u32> {
    RELEASES.iter().map(|&(minor, _)| minor)
}

/// A parsed line before its base type is known (that depends on whether it has children).
struct Line<'t> {
    path: Vec<&'t str>,
    go_type: &'t str,
    omitempty: bool,
}

fn parse(minor: u32, text: &str) -> Result<Schema, SchemaError> {
    let fail = |line: usize, reason: &str| SchemaError {
        minor,
        line,
        reason: reason.to_owned(),
    };
    let mut lines = Vec::new();
    for (index, raw) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        lines.push(parse_line(raw).ok_or_else(|| fail(index + 1, "malformed line"))?);
    }
    let fields = build(&lines, &[]).map_err(|(line, reason)| fail(line + 1, reason))?;
    Ok(Schema { minor, fields })
}

fn parse_line(raw: &str) -> Option<Line<'_>> {
    let (path, rest) = raw.trim().split_once(' ')?;
    let (go_type, tail) = rest.strip_prefix('(')?.split_once(')')?;
    let omitempty = match tail.trim() {
        "" => false,
        "omitempty" => true,
        _ => return None,
    };
    let path: Vec<&str> = path.strip_prefix('.')?.split('.').collect();
    path.iter().all(|p| !p.is_empty()).then_some(Line {
        path,
        go_type,
        omitempty,
    })
}

/// Builds the fields directly under `parent` from the lines in order.
fn build(lines: &[Line<'_>], parent: &[&str]) -> Result<Vec<Field>, (usize, &'static str)> {
    let depth = parent.len() + 1;
    let mut fields = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if line.path.len() != depth || !line.path.starts_with(parent) {
            continue;
        }
        let children = build(lines, &line.path)?;
        let (shape, base) = classify(line.go_type, !children.is_empty()).ok_or((index, "type"))?;
        let name = line.path[depth - 1].to_owned();
        fields.push(Field {
            member_prefix: format!(",\"{name}\":").into_bytes().into(),
            name,
            shape,
            base,
            omitempty: line.omitempty,
            children,
        });
    }
    Ok(fields)
}

/// Reads a Go type such as `*v1.Probe`, `[]string` or `intstr.IntOrString`.
fn classify(go_type: &str, has_children: bool) -> Option<(Shape, Base)> {
    let (shape, element) = if let Some(element) = go_type.strip_prefix('*') {
        (Shape::Pointer, element)
    } else if let Some(element) = go_type.strip_prefix("[]") {
        (Shape::Slice, element)
    } else {
        (Shape::Value, go_type)
    };
    let base = match element {
        "string" => Base::String,
        "int32" => Base::Int32,
        "int64" => Base::Int64,
        "bool" => Base::Bool,
        "resource.Quantity" => Base::Quantity,
        "intstr.IntOrString" => Base::IntOrString,
        "v1.ResourceList" => Base::ResourceList,
        named if named.starts_with("v1.") && has_children => Base::Struct,
        // Named string types: v1.Protocol, v1.Capability, v1.ProcMountType, …
        named if named.starts_with("v1.") => Base::String,
        _ => return None,
    };
    Some((shape, base))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use super::*;

    #[test]
    fn every_embedded_schema_parses_with_name_first_and_resources_a_struct() {
        for minor in embedded_minors() {
            let schema = schema(minor).unwrap().unwrap();
            assert_eq!(schema.fields[0].name, "name");
            let resources = schema
                .fields
                .iter()
                .find(|f| f.name == "resources")
                .unwrap();
            assert_eq!(
                (resources.shape, resources.base),
                (Shape::Value, Base::Struct)
            );
        }
    }

    #[test]
    fn types_are_read_from_their_spelling_and_children() {
        assert_eq!(
            classify("*v1.Probe", true),
            Some((Shape::Pointer, Base::Struct))
        );
        assert_eq!(
            classify("*v1.ProcMountType", false),
            Some((Shape::Pointer, Base::String))
        );
        assert_eq!(
            classify("[]v1.Capability", false),
            Some((Shape::Slice, Base::String))
        );
        assert_eq!(
            classify("v1.ResourceList", false),
            Some((Shape::Value, Base::ResourceList))
        );
        assert_eq!(classify("map[string]string", false), None);
    }

    #[test]
    fn a_malformed_line_names_its_file_and_line() {
        let error = parse(99, ".name (string)\n.image string\n").unwrap_err();
        assert_eq!((error.minor, error.line), (99, 2));
    }
}
