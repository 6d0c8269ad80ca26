//! Parsing the API's JSON operations (`{"type":T,"op":…,…}`, SPEC "Data types and operations")
//! into `crdt::Op`. Strict: unknown types, ops and fields are errors, so a typo never writes
//! something else than was meant.

use crdt::{Kind, Op, Value};
use serde_json::{Map, Value as Json};

/// Why a JSON operation was refused (the API answers 400 with it).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct OpError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, OpError> {
    Err(OpError(msg.into()))
}

/// Parses one operation object. `extra` names fields the caller consumes itself (`key` in a batch).
pub fn parse(body: &Json, extra: &[&str]) -> Result<Op, OpError> {
    let Json::Object(obj) = body else {
        return err("an operation must be a JSON object");
    };
    let type_name = str_field(obj, "type")?;
    let kind = Kind::from_name(type_name).ok_or_else(|| {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        OpError(format!(
            "unknown type {type_name:?}; expected one of {}",
            names.join(", ")
        ))
    })?;
    let op = str_field(obj, "op")?;
    let (parsed, allowed): (Op, &[&str]) = match (kind, op) {
        (Kind::GCounter, "inc") => (Op::GCounterInc(by(obj)?), &["by"]),
        (Kind::Counter, "inc") => (Op::CounterAdd(signed(by(obj)?)?), &["by"]),
        (Kind::Counter, "dec") => (Op::CounterAdd(-signed(by(obj)?)?), &["by"]),
        (Kind::GSet, "add") => (Op::GSetAdd(value(obj)?), &["value"]),
        (Kind::TwoPSet, "add") => (Op::TwoPSetAdd(value(obj)?), &["value"]),
        (Kind::TwoPSet, "remove") => (Op::TwoPSetRemove(value(obj)?), &["value"]),
        (Kind::Set, "add") => (Op::SetAdd(value(obj)?), &["value"]),
        (Kind::Set, "remove") => (Op::SetRemove(value(obj)?), &["value"]),
        (Kind::Lww, "set") => (Op::LwwSet(value(obj)?), &["value"]),
        (Kind::Register, "set") => (Op::RegisterSet(value(obj)?), &["value"]),
        (Kind::Map, "put") => (
            Op::MapPut(str_field(obj, "field")?.to_string(), value(obj)?),
            &["field", "value"],
        ),
        (Kind::Map, "remove") => (
            Op::MapRemove(str_field(obj, "field")?.to_string()),
            &["field"],
        ),
        (Kind::Doc, "put") => (
            Op::DocPut(path(obj)?, required(obj, "value")?.clone()),
            &["path", "value"],
        ),
        (Kind::Doc, "delete") => (Op::DocDelete(path(obj)?), &["path"]),
        (Kind::Doc, "insert") => {
            let Json::Array(values) = required(obj, "values")? else {
                return err("\"values\" must be an array");
            };
            (
                Op::DocInsert(path(obj)?, index(obj, "index")?, values.clone()),
                &["path", "index", "values"],
            )
        }
        (Kind::Doc, "splice") => (
            Op::DocSplice(
                path(obj)?,
                index(obj, "index")?,
                match obj.get("delete") {
                    None => 0,
                    Some(_) => index(obj, "delete")?,
                },
                match obj.get("text") {
                    None => String::new(),
                    Some(_) => str_field(obj, "text")?.to_string(),
                },
            ),
            &["path", "index", "delete", "text"],
        ),
        (keep, "resolve") => (Op::Resolve(keep), &[]),
        _ => return err(format!("type {type_name} has no op {op:?}")),
    };
    if let Some(unknown) = obj.keys().find(|k| {
        !["type", "op"].contains(&k.as_str())
            && !allowed.contains(&k.as_str())
            && !extra.contains(&k.as_str())
    }) {
        return err(format!("unknown field {unknown:?} for {type_name} {op}"));
    }
    Ok(parsed)
}

fn str_field<'a>(obj: &'a Map<String, Json>, name: &str) -> Result<&'a str, OpError> {
    match obj.get(name) {
        Some(Json::String(s)) => Ok(s),
        Some(_) => err(format!("field {name:?} must be a string")),
        None => err(format!("missing field {name:?}")),
    }
}

fn value(obj: &Map<String, Json>) -> Result<Value, OpError> {
    obj.get("value")
        .map(Value::new)
        .ok_or_else(|| OpError("missing field \"value\"".into()))
}

fn required<'a>(obj: &'a Map<String, Json>, name: &str) -> Result<&'a Json, OpError> {
    obj.get(name)
        .ok_or_else(|| OpError(format!("missing field {name:?}")))
}

/// A document path: an array of field names and list indexes (`[]` is the root).
fn path(obj: &Map<String, Json>) -> Result<Vec<crdt::doc::Step>, OpError> {
    crdt::doc::parse_path(required(obj, "path")?).map_err(|e| OpError(format!("\"path\": {e}")))
}

fn index(obj: &Map<String, Json>, name: &str) -> Result<usize, OpError> {
    required(obj, name)?
        .as_u64()
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| OpError(format!("{name:?} must be a non-negative integer")))
}

fn by(obj: &Map<String, Json>) -> Result<u64, OpError> {
    match obj.get("by") {
        None => Ok(1),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| OpError("\"by\" must be a non-negative integer".into())),
    }
}

fn signed(by: u64) -> Result<i64, OpError> {
    i64::try_from(by).map_err(|_| OpError(format!("\"by\" must be at most {}", i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt::doc::Step;
    use serde_json::json;

    #[test]
    fn every_spec_operation_parses() {
        let ok = [
            (json!({"type":"gcounter","op":"inc"}), Op::GCounterInc(1)),
            (
                json!({"type":"gcounter","op":"inc","by":5}),
                Op::GCounterInc(5),
            ),
            (
                json!({"type":"counter","op":"dec","by":2}),
                Op::CounterAdd(-2),
            ),
            (
                json!({"type":"gset","op":"add","value":[1]}),
                Op::GSetAdd(json!([1]).into()),
            ),
            (
                json!({"type":"twopset","op":"remove","value":"x"}),
                Op::TwoPSetRemove(json!("x").into()),
            ),
            (
                json!({"type":"set","op":"add","value":{"a":1}}),
                Op::SetAdd(json!({"a":1}).into()),
            ),
            (
                json!({"type":"lww","op":"set","value":null}),
                Op::LwwSet(json!(null).into()),
            ),
            (
                json!({"type":"register","op":"set","value":3}),
                Op::RegisterSet(json!(3).into()),
            ),
            (
                json!({"type":"map","op":"put","field":"f","value":true}),
                Op::MapPut("f".into(), json!(true).into()),
            ),
            (
                json!({"type":"map","op":"remove","field":"f"}),
                Op::MapRemove("f".into()),
            ),
            (
                json!({"type":"doc","op":"put","path":["a", 2],"value":{"b":[1]}}),
                Op::DocPut(
                    vec![Step::Field("a".into()), Step::Index(2)],
                    json!({"b":[1]}),
                ),
            ),
            (
                json!({"type":"doc","op":"delete","path":["a"]}),
                Op::DocDelete(vec![Step::Field("a".into())]),
            ),
            (
                json!({"type":"doc","op":"insert","path":[],"index":0,"values":[1, "x"]}),
                Op::DocInsert(vec![], 0, vec![json!(1), json!("x")]),
            ),
            (
                json!({"type":"doc","op":"splice","path":["t"],"index":3,"delete":1,"text":"é"}),
                Op::DocSplice(vec![Step::Field("t".into())], 3, 1, "é".into()),
            ),
            (
                json!({"type":"doc","op":"splice","path":["t"],"index":3}),
                Op::DocSplice(vec![Step::Field("t".into())], 3, 0, String::new()),
            ),
        ];
        for (body, op) in ok {
            assert_eq!(parse(&body, &[]), Ok(op), "{body}");
        }
    }

    #[test]
    fn malformed_operations_say_what_is_wrong() {
        let bad = [
            (json!([1]), "JSON object"),
            (json!({"op":"inc"}), "missing field \"type\""),
            (json!({"type":"nope","op":"inc"}), "unknown type"),
            (json!({"type":"gset","op":"remove","value":1}), "has no op"),
            (json!({"type":"gset","op":"add"}), "missing field \"value\""),
            (
                json!({"type":"gcounter","op":"inc","by":-1}),
                "non-negative",
            ),
            (
                json!({"type":"counter","op":"inc","by":u64::MAX}),
                "at most",
            ),
            (
                json!({"type":"set","op":"add","vale":1,"value":1}),
                "unknown field \"vale\"",
            ),
            (
                json!({"type":"map","op":"put","field":7,"value":1}),
                "must be a string",
            ),
            (
                json!({"type":"doc","op":"put","value":1}),
                "missing field \"path\"",
            ),
            (
                json!({"type":"doc","op":"put","path":"a","value":1}),
                "\"path\": a path is an array",
            ),
            (
                json!({"type":"doc","op":"delete","path":["a", -1]}),
                "not a list index",
            ),
            (
                json!({"type":"doc","op":"insert","path":[],"index":0,"values":1}),
                "must be an array",
            ),
            (
                json!({"type":"doc","op":"splice","path":[],"index":-2}),
                "\"index\" must be a non-negative integer",
            ),
        ];
        for (body, msg) in bad {
            let e = parse(&body, &[]).unwrap_err();
            assert!(e.0.contains(msg), "{body}: {e}");
        }
        assert!(parse(&json!({"key":"k","type":"gcounter","op":"inc"}), &["key"]).is_ok());
    }
}
