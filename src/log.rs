//! One structured JSON line per event, to the worker's log.

/// Logs `{"event": name, key: value, ...}`.
pub fn event(name: &str, fields: &[(&str, &str)]) {
    let mut line = serde_json::Map::new();
    line.insert("event".into(), name.into());
    for (key, value) in fields {
        line.insert((*key).into(), (*value).into());
    }
    worker::console_log!("{}", serde_json::Value::Object(line));
}
