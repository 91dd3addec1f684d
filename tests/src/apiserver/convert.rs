//! Conversion between the stored form and a served form: `events.k8s.io/v1` Events share the
//! core/v1 Event store, and custom resources are served at the version asked for.

use serde_json::{Map, Value};

use super::resources::{Conversion, ResourceInfo};

/// Field renames between core/v1 (left) and events.k8s.io/v1 (right).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// The served form of a stored object.
pub fn to_served(info: &ResourceInfo, stored: &Value) -> Value {
    let mut served = match info.conversion {
        Conversion::None => stored.clone(),
        Conversion::EventsV1 => rename(stored, false),
    };
    served["apiVersion"] = Value::String(info.api_version());
    served["kind"] = Value::String(info.kind.clone());
    served
}

/// The stored form of a written object.
pub fn to_stored(info: &ResourceInfo, served: Value) -> Value {
    match info.conversion {
        Conversion::None => served,
        Conversion::EventsV1 => {
            let mut stored = rename(&served, true);
            stored["apiVersion"] = Value::String("v1".to_owned());
            stored
        }
    }
}

fn rename(object: &Value, to_core: bool) -> Value {
    let Some(map) = object.as_object() else {
        return object.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let renamed = EVENT_FIELDS.iter().find_map(|(core, v1)| {
            let (from, to) = if to_core { (v1, core) } else { (core, v1) };
            (key == from).then_some(*to)
        });
        out.insert(renamed.unwrap_or(key).to_owned(), value.clone());
    }
    Value::Object(out)
}
