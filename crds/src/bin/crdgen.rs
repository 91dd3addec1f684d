//! Writes the CustomResourceDefinitions of kubelift's API as one YAML stream.

fn main() {}
