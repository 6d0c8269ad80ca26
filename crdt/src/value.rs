//! The values users store: any JSON value, held in its canonical encoding (compact, object keys
//! sorted), so equal values are equal bytes and sets order their elements by that encoding.
//!
//! The text is a `CompactString`: up to 24 bytes (a short string, a number, a small object) sit
//! inline in the value's 24 bytes with no heap allocation of their own, which halves what a set
//! of short elements holds (a `String` is a 24-byte header plus an allocation).

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A JSON value in canonical form. Decoding one checks it is canonical JSON: a peer cannot plant
/// a value that would sort or hash differently from its re-encoding.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Value(CompactString);

impl Serialize for Value {
    /// As its canonical text (borrowed: encoding a value copies nothing).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl Value {
    /// The canonical form of `json`.
    pub fn new(json: &serde_json::Value) -> Self {
        // serde_json's map is a BTreeMap (no `preserve_order`), so keys come out sorted.
        Value(CompactString::from(json.to_string()))
    }

    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        // Constructed only from valid canonical JSON, so this parse cannot fail.
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }

    /// The canonical encoding.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        Value::new(&json)
    }
}

impl TryFrom<String> for Value {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        let json: serde_json::Value =
            serde_json::from_str(&s).map_err(|e| format!("value is not JSON: {e}"))?;
        let canonical = Value::new(&json);
        if canonical.0 == s {
            Ok(canonical)
        } else {
            Err("value is not in canonical JSON form".into())
        }
    }
}

impl From<Value> for String {
    fn from(v: Value) -> Self {
        v.0.into_string()
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_sorts_keys_and_rejects_other_forms() {
        let v = Value::new(&json!({"b": 1, "a": [true, null]}));
        assert_eq!(v.as_str(), r#"{"a":[true,null],"b":1}"#);
        assert_eq!(v.to_json(), json!({"a": [true, null], "b": 1}));
        assert!(Value::try_from(r#"{"a":[true,null],"b":1}"#.to_string()).is_ok());
        assert!(Value::try_from(r#"{"b":1,"a":[true,null]}"#.to_string()).is_err());
        assert!(Value::try_from("not json".to_string()).is_err());
    }
}
