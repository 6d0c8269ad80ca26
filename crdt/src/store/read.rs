//! Reads of one object that cost what they return, not the object's size: its size, a page of
//! its elements or fields, whether it holds an element, one map field, and what a delta changed
//! in it. A write into a 10⁶-element set answers with these instead of the whole value.

use super::Object;
use crate::value::Value;
use serde_json::{json, Value as Json};

/// A page of an object's elements (sets) or fields (maps).
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The elements (an array) or fields (an object of arrays), in order.
    pub value: Json,
    /// Where the next page starts (pass it as `after`); `None` on the last page.
    pub next: Option<String>,
}

/// The first `limit` items of `it`, and whether more follow.
fn first<T>(it: impl Iterator<Item = T>, limit: usize) -> (Vec<T>, bool) {
    let mut taken: Vec<T> = it.take(limit.saturating_add(1)).collect();
    let more = taken.len() > limit;
    taken.truncate(limit);
    (taken, more)
}

fn array<'a>(it: impl Iterator<Item = &'a Value>) -> Json {
    Json::Array(it.map(Value::to_json).collect())
}

impl Object<'_> {
    /// How many elements (sets), fields (maps) or concurrent values (multi-value registers) it
    /// holds; 1 for counters and last-writer-wins registers. Costs at most its removals (two-phase
    /// sets), else constant time.
    pub fn size(&self) -> usize {
        match self {
            Object::GCounter(_) | Object::Counter(_) | Object::Lww(_) => 1,
            Object::GSet(s) => s.len(),
            Object::TwoPSet(s) => s.len(),
            Object::Set(s) => s.len(),
            Object::Register(r) => r.values().len(),
            Object::Map(m) => m.len(),
            Object::Doc(d) => d.len(),
        }
    }

    /// Up to `limit` elements (sets) or fields (maps) from just past `after` — an element's
    /// canonical JSON text, or a field name. Other types have no pages: the whole value, no next.
    /// `None`: `after` is not an element's JSON.
    pub fn page(&self, after: Option<&str>, limit: usize) -> Option<Page> {
        let element = match (self, after) {
            (Object::GSet(_) | Object::TwoPSet(_) | Object::Set(_), Some(a)) => {
                Some(Value::new(&serde_json::from_str::<Json>(a).ok()?))
            }
            _ => None,
        };
        let elements = |it: Box<dyn Iterator<Item = &Value> + '_>| {
            let (taken, more) = first(it, limit);
            Page {
                next: more
                    .then(|| taken.last().map(|v| v.as_str().to_string()))
                    .flatten(),
                value: array(taken.into_iter()),
            }
        };
        Some(match self {
            Object::GSet(s) => elements(s.iter_after(element.as_ref())),
            Object::TwoPSet(s) => elements(Box::new(s.iter_after(element.as_ref()))),
            Object::Set(s) => elements(s.kernel().keys_after(element.as_ref())),
            Object::Map(m) => {
                let after = after.map(str::to_string);
                let (fields, more) = first(m.fields_after(after.as_ref()), limit);
                Page {
                    next: more.then(|| fields.last().map(|f| f.to_string())).flatten(),
                    value: Json::Object(
                        fields
                            .into_iter()
                            .map(|f| (f.clone(), array(m.get(f).into_iter())))
                            .collect(),
                    ),
                }
            }
            _ => Page {
                value: self.value(),
                next: None,
            },
        })
    }

    /// Writes [`Object::value`] as JSON to `w`, element by element from their canonical text:
    /// nothing is parsed and no copy of the value is built (`/v1/state` streams with it).
    pub fn write_value(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        fn list<'a>(
            w: &mut dyn std::io::Write,
            it: impl Iterator<Item = &'a Value>,
        ) -> std::io::Result<()> {
            w.write_all(b"[")?;
            for (i, v) in it.enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                w.write_all(v.as_str().as_bytes())?;
            }
            w.write_all(b"]")
        }
        match self {
            Object::GSet(s) => list(w, s.iter()),
            Object::TwoPSet(s) => list(w, s.iter()),
            Object::Set(s) => list(w, s.iter()),
            Object::Lww(r) => w.write_all(r.get().map_or("null", Value::as_str).as_bytes()),
            Object::Register(r) => list(w, r.values().into_iter()),
            Object::Map(m) => {
                w.write_all(b"{")?;
                for (i, f) in m.fields().enumerate() {
                    if i > 0 {
                        w.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut *w, f)?;
                    w.write_all(b":")?;
                    list(w, m.get(f).into_iter())?;
                }
                w.write_all(b"}")
            }
            Object::GCounter(_) | Object::Counter(_) | Object::Doc(_) => {
                serde_json::to_writer(w, &self.value()).map_err(std::io::Error::other)
            }
        }
    }

    /// Whether [`Object::value`]'s JSON takes at most `limit` bytes: [`Object::write_value`]
    /// into a counter that gives up past the limit, so it costs at most the elements that fit.
    pub fn value_fits(&self, limit: usize) -> bool {
        struct Upto(usize);
        impl std::io::Write for Upto {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0 = self
                    .0
                    .checked_sub(buf.len())
                    .ok_or_else(|| std::io::Error::other("past the limit"))?;
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        self.write_value(&mut Upto(limit)).is_ok()
    }

    /// Whether a set holds `element`; `None` for other types.
    pub fn contains(&self, element: &Json) -> Option<bool> {
        let v = Value::new(element);
        match self {
            Object::GSet(s) => Some(s.contains(&v)),
            Object::TwoPSet(s) => Some(s.contains(&v)),
            Object::Set(s) => Some(s.contains(&v)),
            _ => None,
        }
    }

    /// The subtree of a document at `path` (`Some(None)` when the path leads nowhere); `None`
    /// for other types.
    pub fn at_path(&self, path: &crate::doc::Path) -> Option<Option<Json>> {
        match self {
            Object::Doc(d) => Some(d.get(path)),
            _ => None,
        }
    }

    /// A map field's concurrent values (empty when absent); `None` for other types.
    pub fn field(&self, field: &str) -> Option<Json> {
        match self {
            Object::Map(m) => Some(array(m.get(&field.to_string()).into_iter())),
            _ => None,
        }
    }

    /// What `delta` (an object of the same type, as a write or a neighbour's group produced it)
    /// changed in this object, its new state: the elements it added (and, two-phase sets, the
    /// ones it removed), the map fields it wrote with their values now, the new value of a
    /// counter or register, or the edits a document took ([`crate::Doc::edits`]: field writes,
    /// list and text splices). Costs the delta, not the object (a document's: the objects it
    /// touches). Removals from add-wins sets and maps carry no elements (only the dots they
    /// cover): they show in `size`. A delta of more than `most` elements, fields or edits (a
    /// catch-up, a bulk load) is told by count only: `{"added_count": N}`, `{"fields_count": N}`
    /// or `{"edits_count": N}`.
    pub fn change(&self, delta: &Object<'_>, most: usize) -> Json {
        let listed = |n: usize, name: &str, list: &dyn Fn() -> Json| {
            if n > most {
                json!({ format!("{name}_count"): n })
            } else {
                json!({ name: list() })
            }
        };
        match (self, delta) {
            (_, Object::GSet(d)) => listed(d.len(), "added", &|| array(d.iter())),
            (_, Object::TwoPSet(d)) => {
                let (added, removed) = (d.added(), d.removed());
                if added.len() + removed.len() > most {
                    return json!({"added_count": added.len(), "removed_count": removed.len()});
                }
                json!({
                    "added": array(added.iter().filter(|x| !removed.contains(x))),
                    "removed": array(removed.iter()),
                })
            }
            (_, Object::Set(d)) => listed(d.len(), "added", &|| array(d.iter())),
            (Object::Map(m), Object::Map(d)) => listed(d.len(), "fields", &|| {
                let fields: serde_json::Map<String, Json> = d
                    .fields()
                    .map(|f| (f.clone(), array(m.get(f).into_iter())))
                    .collect();
                Json::Object(fields)
            }),
            (Object::Doc(doc), Object::Doc(d)) => {
                let edits = doc.edits(d);
                if edits.len() > most {
                    json!({ "edits_count": edits.len() })
                } else {
                    json!({ "edits": edits })
                }
            }
            _ => json!({ "value": self.value() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Lattice, Op, ReplicaId, Store, Value, Writer};
    use serde_json::json;

    fn store_with(key: &str, ops: Vec<Op>) -> (Store, Store) {
        let w = Writer {
            replica: ReplicaId(1),
            now_ms: 1,
        };
        let mut s = Store::default();
        let mut last = Store::default();
        for op in ops {
            last = s.apply(key, op, &w).unwrap();
            s.join(&last);
        }
        (s, last)
    }

    #[test]
    fn pages_walk_every_element_once_in_order() {
        let ops = (0..25).map(|i| Op::SetAdd(Value::from(json!(i)))).collect();
        let (s, _) = store_with("k", ops);
        let o = s.get("k").unwrap();
        assert_eq!(o.size(), 25);
        let (mut seen, mut after) = (Vec::new(), None::<String>);
        loop {
            let page = o.page(after.as_deref(), 10).unwrap();
            seen.extend(page.value.as_array().unwrap().iter().cloned());
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(Some(&json!(seen)), Some(&o.value()));
        assert!(o.page(Some("not json"), 10).is_none());
        assert_eq!(o.contains(&json!(7)), Some(true));
        let bytes = o.value().to_string().len();
        assert!(o.value_fits(bytes) && !o.value_fits(bytes / 2));
        assert_eq!(o.contains(&json!(70)), Some(false));
    }

    #[test]
    fn a_written_value_is_the_value() {
        let (s, _) = store_with(
            "m",
            vec![
                Op::MapPut("a\"b".into(), Value::from(json!({"x": [1, "é"]}))),
                Op::MapPut("c".into(), Value::from(json!(null))),
            ],
        );
        let (s2, _) = store_with("c", vec![Op::CounterAdd(-3)]);
        let (s3, _) = store_with("s", vec![Op::SetAdd(Value::from(json!("q")))]);
        for (store, key) in [(&s, "m"), (&s2, "c"), (&s3, "s")] {
            let o = store.get(key).unwrap();
            let mut out = Vec::new();
            o.write_value(&mut out).unwrap();
            let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(parsed, o.value(), "{key}");
        }
    }

    #[test]
    fn map_fields_page_and_read_alone() {
        let ops = (0..5)
            .map(|i| Op::MapPut(format!("f{i}"), Value::from(json!(i))))
            .collect();
        let (s, last) = store_with("m", ops);
        let o = s.get("m").unwrap();
        let page = o.page(Some("f1"), 2).unwrap();
        assert_eq!(page.value, json!({"f2": [2], "f3": [3]}));
        assert_eq!(page.next.as_deref(), Some("f3"));
        assert_eq!(o.field("f4"), Some(json!([4])));
        assert_eq!(o.field("nope"), Some(json!([])));
        assert_eq!(
            o.change(&last.get("m").unwrap(), 10),
            json!({"fields": {"f4": [4]}})
        );
        assert_eq!(o.change(&o, 3), json!({"fields_count": 5}));
    }

    #[test]
    fn a_change_names_what_the_delta_added_or_removed() {
        let (s, last) = store_with(
            "k",
            vec![
                Op::SetAdd(Value::from(json!("a"))),
                Op::SetAdd(Value::from(json!("b"))),
            ],
        );
        let o = s.get("k").unwrap();
        assert_eq!(
            o.change(&last.get("k").unwrap(), 10),
            json!({"added": ["b"]})
        );
        assert_eq!(o.change(&s.get("k").unwrap(), 1), json!({"added_count": 2}));
        let (s, last) = store_with(
            "t",
            vec![
                Op::TwoPSetAdd(Value::from(json!(1))),
                Op::TwoPSetRemove(Value::from(json!(1))),
            ],
        );
        let o = s.get("t").unwrap();
        assert_eq!(o.size(), 0);
        assert_eq!(
            o.change(&last.get("t").unwrap(), 10),
            json!({"added": [], "removed": [1]})
        );
        let (s, last) = store_with("c", vec![Op::CounterAdd(5), Op::CounterAdd(-2)]);
        let o = s.get("c").unwrap();
        assert_eq!(o.change(&last.get("c").unwrap(), 10), json!({"value": 3}));
    }
}
