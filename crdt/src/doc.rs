//! JSON documents: nested maps, lists and collaborative text as one delta-state lattice.
//!
//! A document is a tree of *objects*: the root map, and every map, list or text a write created,
//! named by that write's dot ([`ObjId`]). Three parts hold them all:
//!
//! - `fields`: every map's fields, one dot kernel keyed by `(object, field)` — add-wins, and a
//!   field written concurrently keeps every write (a multi-value conflict; it reads as the write
//!   with the greatest dot);
//! - `lists`: each list's elements, a [`Seq`] of [`Leaf`]s;
//! - `texts`: each text's characters, a [`Text`].
//!
//! A leaf is a JSON scalar, or says "a new map/list/text lives here", named by the dot of the
//! field write or list item that holds it. Every string a document is given becomes a text, so
//! any string can be edited character by character (`splice`) and concurrent edits merge.
//!
//! One dot space: the kernel's causal context also records the dots of sequence items, so a new
//! write's dot is fresh across the whole document and object ids never collide. The document is
//! the product of its three parts, so join, order, the decomposition, Δ and the pieces are theirs:
//! BP+RR, catch-up, checkpoints and rollback work unchanged.
//!
//! Reading follows the tree from the root; a peer could send a document whose objects form a
//! cycle (one dot both a field write and a list item), so a reading never enters an object twice
//! on one path and stops at [`MAX_DEPTH`].

use crate::dot::{Dot, ReplicaId};
use crate::error::CrdtError;
use crate::gmap::GMap;
use crate::kernel::DotKernel;
use crate::lattice::{Decompose, Lattice, Measure};
use crate::seq::{Seq, Text};
use crate::value::Value;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

mod removed;
use removed::Removed;

/// An object of a document: the root, or the map, list or text a write created (its dot).
pub type ObjId = Dot;

/// The root map (counter 0 is no write's dot).
pub const ROOT: ObjId = Dot {
    replica: ReplicaId(0),
    counter: 0,
};

/// The deepest a document reads (and an edit may reach): deeper objects read as `null`.
pub const MAX_DEPTH: usize = 64;

/// What a map field or a list element holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Leaf {
    /// A JSON scalar: null, a boolean or a number.
    Scalar(Value),
    /// A map, named by this leaf's dot.
    Map,
    /// A list, named by this leaf's dot.
    List,
    /// A text, named by this leaf's dot.
    Text,
}

/// One step of a path: a map's field or a list's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A field of a map.
    Field(String),
    /// A position in a list (or a text).
    Index(usize),
}

/// A path from the root: field names and list indexes.
pub type Path = [Step];

/// Parses a path given as JSON: an array of strings (fields) and non-negative integers (indexes).
pub fn parse_path(json: &Json) -> Result<Vec<Step>, String> {
    let Json::Array(steps) = json else {
        return Err("a path is an array of field names and list indexes".into());
    };
    steps
        .iter()
        .map(|s| match s {
            Json::String(f) => Ok(Step::Field(f.clone())),
            Json::Number(n) => n
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .map(Step::Index)
                .ok_or_else(|| format!("{n} is not a list index")),
            other => Err(format!("{other} is neither a field name nor a list index")),
        })
        .collect()
}

/// A JSON document. See the module docs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Doc {
    fields: DotKernel<(ObjId, String), Leaf>,
    lists: GMap<ObjId, Seq<Leaf>>,
    texts: GMap<ObjId, Text>,
    /// The fields recent joins removed (not part of the state: see [`removed`]).
    #[serde(skip)]
    removed: Removed,
}

/// Where a path leads.
#[derive(Clone, Copy, Debug)]
enum Node<'a> {
    Map(ObjId),
    List(ObjId),
    Text(ObjId),
    Scalar(&'a Value),
}

impl<'a> Node<'a> {
    fn of(dot: Dot, leaf: &'a Leaf) -> Node<'a> {
        match leaf {
            Leaf::Scalar(v) => Node::Scalar(v),
            Leaf::Map => Node::Map(dot),
            Leaf::List => Node::List(dot),
            Leaf::Text => Node::Text(dot),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Node::Map(_) => "a map",
            Node::List(_) => "a list",
            Node::Text(_) => "a text",
            Node::Scalar(_) => "a scalar",
        }
    }
}

fn path_error(path: &Path, why: impl Into<String>) -> CrdtError {
    let shown: Vec<Json> = path
        .iter()
        .map(|s| match s {
            Step::Field(f) => Json::from(f.as_str()),
            Step::Index(i) => Json::from(*i),
        })
        .collect();
    CrdtError::Path {
        path: Json::from(shown).to_string(),
        why: why.into(),
    }
}

impl Doc {
    /// The document as plain JSON (texts as strings).
    pub fn value(&self) -> Json {
        self.render(Node::Map(ROOT), &mut Vec::new())
    }

    /// The subtree at `path`, or `None` if the path leads nowhere.
    pub fn get(&self, path: &Path) -> Option<Json> {
        let node = self.resolve(path).ok()?;
        Some(self.render(node, &mut Vec::new()))
    }

    /// Fields of the root map.
    pub fn len(&self) -> usize {
        self.field_keys(ROOT).count()
    }

    /// Whether the root map has no field.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fields that read from the root and hold concurrent writes.
    pub fn conflicts(&self) -> usize {
        self.concurrent_fields().len()
    }

    /// Fields that read from the root and hold concurrent writes: each field's path (as JSON)
    /// and its writes — the value each holds and who wrote it — the one that reads first.
    pub fn concurrent_fields(&self) -> Vec<(Json, Vec<(Json, ReplicaId)>)> {
        let mut out = Vec::new();
        self.walk(Node::Map(ROOT), &mut Vec::new(), &mut Vec::new(), &mut out);
        out
    }

    fn walk(
        &self,
        node: Node<'_>,
        path: &mut Vec<Json>,
        on_path: &mut Vec<ObjId>,
        out: &mut Vec<(Json, Vec<(Json, ReplicaId)>)>,
    ) {
        let (Node::Map(obj) | Node::List(obj)) = node else {
            return;
        };
        if on_path.len() >= MAX_DEPTH || on_path.contains(&obj) {
            return;
        }
        on_path.push(obj);
        if let Node::List(_) = node {
            let list = self
                .lists
                .get(&obj)
                .map(|l| l.entries())
                .unwrap_or_default();
            for (i, (d, leaf)) in list.into_iter().enumerate() {
                path.push(Json::from(i));
                self.walk(Node::of(d, leaf), path, on_path, out);
                path.pop();
            }
        } else {
            for (name, mut writes) in self.fields_of(obj) {
                writes.sort_by_key(|(d, _)| std::cmp::Reverse(*d));
                path.push(Json::from(name));
                if writes.len() > 1 {
                    let values = writes
                        .iter()
                        .map(|(d, leaf)| (self.render(Node::of(*d, leaf), on_path), d.replica))
                        .collect();
                    out.push((Json::Array(path.clone()), values));
                }
                let (d, leaf) = writes[0];
                self.walk(Node::of(d, leaf), path, on_path, out);
                path.pop();
            }
        }
        on_path.pop();
    }

    /// The keys of the map `obj`'s fields (with a live write), in order.
    fn field_keys(&self, obj: ObjId) -> impl Iterator<Item = &(ObjId, String)> + '_ {
        self.fields
            .keys_from(&(obj, String::new()))
            .take_while(move |(o, _)| *o == obj)
    }

    /// The fields of the map `obj`, in order, each with its live writes.
    fn fields_of(&self, obj: ObjId) -> Vec<(&str, Vec<(Dot, &Leaf)>)> {
        self.field_keys(obj)
            .map(|key| (key.1.as_str(), self.fields.writes_of(key).collect()))
            .collect()
    }

    /// What `delta` (a write's, or a neighbour's group) did to this document, which already
    /// holds it, as edits an editor can apply to its copy, in order: `{"path", "index",
    /// "delete", "text"}` for a text splice, `{"path", "index", "delete", "values"}` for a list
    /// splice, `{"path", "value"}` for a field write that reads now and `{"path", "removed":
    /// true}` for a field it deleted (one that reads another, concurrent, write now is a
    /// `value`). Shallower paths come first, and paths are the document's as it is now, so each
    /// edit applies to the copy as the ones before it left it; the splices of one text or list
    /// turn it from what it was into what it is. Objects the delta created come whole inside
    /// their parent's edit. A deletion's delta holds only the dots it removed: their fields are
    /// found among those the document's last joins removed ([`removed::REMEMBERED`] of them),
    /// so the edits of a change that removed more fields at once name only the last of them.
    /// Costs the objects the delta touches and the fields last removed.
    pub fn edits(&self, delta: &Doc) -> Vec<Json> {
        let paths = self.paths();
        // Objects the delta made: their content is in the edit that writes them.
        let created: HashSet<Dot> = delta
            .fields
            .entries()
            .map(|(d, ..)| d)
            .chain(delta.lists.iter().flat_map(|(_, l)| l.dots()))
            .collect();
        let mut out: Vec<(usize, Json)> = Vec::new();
        for (obj, chars) in delta.texts.iter() {
            let (Some(path), Some(text)) = (paths.get(obj), self.texts.get(obj)) else {
                continue;
            };
            if created.contains(obj) {
                continue;
            }
            for (index, delete, inserted) in text.splices(chars) {
                let text: String = inserted.into_iter().collect();
                let e = json!({"path": path, "index": index, "delete": delete, "text": text});
                out.push((path.len(), e));
            }
        }
        for (obj, items) in delta.lists.iter() {
            let (Some(path), Some(list)) = (paths.get(obj), self.lists.get(obj)) else {
                continue;
            };
            if created.contains(obj) {
                continue;
            }
            let now = list.entries();
            for (index, delete, inserted) in list.splices(items) {
                // An inserted element's index in the splices is its index now.
                let values: Vec<Json> = (index..)
                    .zip(inserted)
                    .map(|(i, leaf)| self.render(Node::of(now[i].0, leaf), &mut Vec::new()))
                    .collect();
                let e = json!({"path": path, "index": index, "delete": delete, "values": values});
                out.push((path.len(), e));
            }
        }
        // The path of field `name` of map `obj`, if the map reads and the delta did not make it.
        let field_path = |obj: &ObjId, name: &str| {
            let mut path = paths.get(obj).filter(|_| !created.contains(obj))?.clone();
            path.push(Json::from(name));
            Some(path)
        };
        // The edit that writes a field's value, `leaf` under `dot`.
        let written = |path: Vec<Json>, dot: Dot, leaf: &Leaf| {
            let value = self.render(Node::of(dot, leaf), &mut Vec::new());
            (path.len(), json!({"path": path, "value": value}))
        };
        let seen = |d: &Dot| delta.fields.context().contains(d);
        for (dot, (obj, name), leaf) in delta.fields.entries() {
            let reads = self.field(*obj, name).is_some_and(|(d, _)| d == dot);
            if let Some(path) = field_path(obj, name).filter(|_| reads) {
                out.push(written(path, dot, leaf));
            }
        }
        // Fields whose writes it removed: gone, or reading another (concurrent) write now.
        let mut named = HashSet::new();
        for (obj, name) in self.removed.covered_by(&seen) {
            let Some(path) = field_path(&obj, name) else {
                continue;
            };
            if !named.insert((obj, name)) {
                continue;
            }
            match self.field(obj, name) {
                // Written by this delta too: that write's edit says it.
                Some((d, _)) if seen(&d) => {}
                Some((d, leaf)) => out.push(written(path, d, leaf)),
                None => out.push((path.len(), json!({"path": path, "removed": true}))),
            }
        }
        out.sort_by_key(|(depth, _)| *depth);
        out.into_iter().map(|(_, e)| e).collect()
    }

    /// The path of every map, list and text that reads from the root.
    fn paths(&self) -> HashMap<ObjId, Vec<Json>> {
        let mut out = HashMap::new();
        let mut stack = vec![(Node::Map(ROOT), Vec::new())];
        while let Some((node, path)) = stack.pop() {
            let (Node::Map(obj) | Node::List(obj) | Node::Text(obj)) = node else {
                continue;
            };
            if path.len() > MAX_DEPTH || out.contains_key(&obj) {
                continue;
            }
            out.insert(obj, path.clone());
            match node {
                Node::Map(_) => {
                    for (name, writes) in self.fields_of(obj) {
                        if let Some((d, leaf)) = writes.into_iter().max_by_key(|(d, _)| *d) {
                            let mut p = path.clone();
                            p.push(Json::from(name));
                            stack.push((Node::of(d, leaf), p));
                        }
                    }
                }
                Node::List(_) => {
                    for (i, (d, leaf)) in self
                        .lists
                        .get(&obj)
                        .map(|l| l.entries())
                        .unwrap_or_default()
                        .into_iter()
                        .enumerate()
                    {
                        let mut p = path.clone();
                        p.push(Json::from(i));
                        stack.push((Node::of(d, leaf), p));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Who wrote the live field writes (of any map in the document).
    pub fn writers(&self) -> Vec<ReplicaId> {
        self.fields.entries().map(|(d, ..)| d.replica).collect()
    }

    /// The write a field reads as: the greatest dot of its live writes.
    fn field(&self, obj: ObjId, name: &str) -> Option<(Dot, &Leaf)> {
        self.fields
            .writes_of(&(obj, name.to_string()))
            .max_by_key(|(d, _)| *d)
    }

    /// The list `obj` (empty if it holds nothing yet), borrowed.
    fn list(&self, obj: ObjId) -> &Seq<Leaf> {
        static EMPTY: OnceLock<Seq<Leaf>> = OnceLock::new();
        self.lists
            .get(&obj)
            .unwrap_or_else(|| EMPTY.get_or_init(Seq::default))
    }

    /// The text `obj` (empty if it holds nothing yet), borrowed.
    fn text(&self, obj: ObjId) -> &Text {
        static EMPTY: OnceLock<Text> = OnceLock::new();
        self.texts
            .get(&obj)
            .unwrap_or_else(|| EMPTY.get_or_init(Text::default))
    }

    /// Follows `path` from the root.
    fn resolve(&self, path: &Path) -> Result<Node<'_>, CrdtError> {
        if path.len() > MAX_DEPTH {
            return Err(path_error(path, format!("deeper than {MAX_DEPTH}")));
        }
        let mut node = Node::Map(ROOT);
        for (i, step) in path.iter().enumerate() {
            let here = &path[..=i];
            node = match (node, step) {
                (Node::Map(obj), Step::Field(f)) => {
                    let (dot, leaf) = self
                        .field(obj, f)
                        .ok_or_else(|| path_error(here, "no such field"))?;
                    Node::of(dot, leaf)
                }
                (Node::List(obj), Step::Index(at)) => {
                    let (dot, leaf) = self
                        .lists
                        .get(&obj)
                        .and_then(|l| l.get(*at))
                        .ok_or_else(|| path_error(here, "no such index"))?;
                    Node::of(dot, leaf)
                }
                (n, _) => {
                    return Err(path_error(
                        here,
                        format!("{} has no {}", n.kind(), step_kind(step)),
                    ))
                }
            };
        }
        Ok(node)
    }

    fn render(&self, node: Node<'_>, on_path: &mut Vec<ObjId>) -> Json {
        let obj = match node {
            Node::Scalar(v) => return v.to_json(),
            Node::Map(o) | Node::List(o) | Node::Text(o) => o,
        };
        if on_path.len() >= MAX_DEPTH || on_path.contains(&obj) {
            return Json::Null;
        }
        on_path.push(obj);
        let out = match node {
            Node::Text(_) => {
                Json::String(self.texts.get(&obj).map(Text::value).unwrap_or_default())
            }
            Node::List(_) => Json::Array(
                self.lists
                    .get(&obj)
                    .map(|l| l.entries())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(d, leaf)| self.render(Node::of(d, leaf), on_path))
                    .collect(),
            ),
            _ => Json::Object(
                // Each field reads as its write with the greatest dot.
                self.fields_of(obj)
                    .into_iter()
                    .filter_map(|(name, writes)| {
                        let (d, leaf) = writes.into_iter().max_by_key(|(d, _)| *d)?;
                        Some((name.to_string(), self.render(Node::of(d, leaf), on_path)))
                    })
                    .collect(),
            ),
        };
        on_path.pop();
        out
    }

    /// Delta-mutator: `value` written at `path` by `replica` — a map's field (set, overwriting
    /// what it held) or a list's element (replaced; the index one past the end appends). An
    /// empty path writes each field of an object `value` into the root.
    pub fn put(&self, replica: ReplicaId, path: &Path, value: &Json) -> Result<Doc, CrdtError> {
        let mut e = Edit::new(self, replica);
        match path.split_last() {
            None => {
                let Json::Object(fields) = value else {
                    return Err(path_error(path, "the root is a map: put an object"));
                };
                for (name, v) in fields {
                    e.set_field(ROOT, name.clone(), v);
                }
            }
            Some((last, parent)) => match (self.resolve(parent)?, last) {
                (Node::Map(obj), Step::Field(name)) => e.set_field(obj, name.clone(), value),
                (Node::List(obj), Step::Index(at)) => {
                    let list = self.list(obj);
                    if *at > list.len() {
                        return Err(path_error(path, "past the end of the list"));
                    }
                    e.delta
                        .lists
                        .join(&GMap::singleton(obj, list.delete(*at, 1)));
                    e.insert_into(obj, list, *at, std::slice::from_ref(value));
                }
                (n, step) => {
                    return Err(path_error(
                        path,
                        format!("{} has no {}", n.kind(), step_kind(step)),
                    ))
                }
            },
        }
        Ok(e.finish())
    }

    /// Delta-mutator: the field or list element at `path` removed.
    pub fn delete(&self, path: &Path) -> Result<Doc, CrdtError> {
        let (last, parent) = path
            .split_last()
            .ok_or_else(|| path_error(path, "the root cannot be deleted"))?;
        let mut delta = Doc::default();
        match (self.resolve(parent)?, last) {
            (Node::Map(obj), Step::Field(name)) => {
                if self.field(obj, name).is_none() {
                    return Err(path_error(path, "no such field"));
                }
                delta.fields = self.fields.remove_key(&(obj, name.clone()));
            }
            (Node::List(obj), Step::Index(at)) => {
                let list = self.list(obj);
                if *at >= list.len() {
                    return Err(path_error(path, "no such index"));
                }
                delta.lists = GMap::singleton(obj, list.delete(*at, 1));
            }
            (n, step) => {
                return Err(path_error(
                    path,
                    format!("{} has no {}", n.kind(), step_kind(step)),
                ))
            }
        }
        Ok(delta)
    }

    /// Delta-mutator: `values` inserted into the list at `path`, from `index` (at most its length).
    pub fn insert(
        &self,
        replica: ReplicaId,
        path: &Path,
        index: usize,
        values: &[Json],
    ) -> Result<Doc, CrdtError> {
        let Node::List(obj) = self.resolve(path)? else {
            return Err(path_error(path, "not a list"));
        };
        let list = self.list(obj);
        if index > list.len() {
            return Err(path_error(path, "index past the end of the list"));
        }
        let mut e = Edit::new(self, replica);
        e.insert_into(obj, list, index, values);
        Ok(e.finish())
    }

    /// Delta-mutator: in the text at `path`, `delete` characters removed from `index` (what lies
    /// past the end is left alone) and `text` inserted there.
    pub fn splice(
        &self,
        replica: ReplicaId,
        path: &Path,
        index: usize,
        delete: usize,
        text: &str,
    ) -> Result<Doc, CrdtError> {
        let Node::Text(obj) = self.resolve(path)? else {
            return Err(path_error(path, "not a text"));
        };
        let current = self.text(obj);
        if index > current.len() {
            return Err(path_error(path, "index past the end of the text"));
        }
        let mut e = Edit::new(self, replica);
        let mut delta = current.delete(index, delete);
        let chars: Vec<char> = text.chars().collect();
        let first = e.fresh(chars.len() as u64);
        delta.join(&current.insert_at(first, index, chars));
        e.delta.texts.join(&GMap::singleton(obj, delta));
        Ok(e.finish())
    }
}

fn step_kind(step: &Step) -> &'static str {
    match step {
        Step::Field(_) => "fields",
        Step::Index(_) => "indexes",
    }
}

/// One edit under way: its delta, and the dots it hands out (consecutive, above every dot the
/// document has seen from the replica).
struct Edit<'a> {
    doc: &'a Doc,
    replica: ReplicaId,
    first: u64,
    next: u64,
    delta: Doc,
}

impl<'a> Edit<'a> {
    fn new(doc: &'a Doc, replica: ReplicaId) -> Self {
        let first = doc.fields.context().next_dot(replica).counter;
        Edit {
            doc,
            replica,
            first,
            next: first,
            delta: Doc::default(),
        }
    }

    /// `n` fresh consecutive dots; the first.
    fn fresh(&mut self, n: u64) -> Dot {
        let d = Dot::new(self.replica, self.next);
        self.next = self.next.saturating_add(n);
        d
    }

    /// `obj.name ← value`, overwriting the field's writes.
    fn set_field(&mut self, obj: ObjId, name: String, value: &Json) {
        let dot = self.fresh(1);
        let leaf = self.content(dot, value);
        let w = self.doc.fields.write_at(dot, (obj, name), leaf);
        self.delta.fields.join(&w);
    }

    /// `values` inserted into the list `obj` (whose state is `list`) at `index`.
    fn insert_into(&mut self, obj: ObjId, list: &Seq<Leaf>, index: usize, values: &[Json]) {
        let first = self.fresh(values.len() as u64);
        let leaves = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let dot = Dot::new(self.replica, first.counter.saturating_add(i as u64));
                self.content(dot, v)
            })
            .collect();
        let items = list.insert_at(first, index, leaves);
        self.delta.lists.join(&GMap::singleton(obj, items));
    }

    /// The leaf for `value` held by the write or item `at`; a map, list or string value's content
    /// is written into the new object `at` names.
    fn content(&mut self, at: Dot, value: &Json) -> Leaf {
        match value {
            Json::Object(fields) => {
                for (name, v) in fields {
                    let dot = self.fresh(1);
                    let leaf = self.content(dot, v);
                    self.delta.fields.join(&DotKernel::default().write_at(
                        dot,
                        (at, name.clone()),
                        leaf,
                    ));
                }
                Leaf::Map
            }
            Json::Array(items) => {
                self.insert_into(at, &Seq::default(), 0, items);
                Leaf::List
            }
            Json::String(s) => {
                let chars: Vec<char> = s.chars().collect();
                let first = self.fresh(chars.len() as u64);
                let text = Text::default().insert_at(first, 0, chars);
                self.delta.texts.join(&GMap::singleton(at, text));
                Leaf::Text
            }
            scalar => Leaf::Scalar(Value::new(scalar)),
        }
    }

    /// The delta, with every dot it handed out recorded as seen.
    fn finish(mut self) -> Doc {
        if self.next > self.first {
            // Each is a write of this delta or an item of a sequence.
            self.delta
                .fields
                .mark_seen(self.replica, self.first, self.next - 1);
        }
        self.delta
    }
}

impl Lattice for Doc {
    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.fields.is_bottom() && self.lists.is_bottom() && self.texts.is_bottom()
    }

    fn join(&mut self, other: &Self) {
        let (fields, removed) = (&mut self.fields, &mut self.removed);
        fields.join_noting(&other.fields, &mut |d, (obj, field), _| {
            removed.note(d, obj, field)
        });
        self.lists.join(&other.lists);
        self.texts.join(&other.texts);
    }

    fn leq(&self, other: &Self) -> bool {
        self.fields.leq(&other.fields)
            && self.lists.leq(&other.lists)
            && self.texts.leq(&other.texts)
    }
}

impl Decompose for Doc {
    fn decompose(&self) -> Vec<Self> {
        let mut all = Vec::new();
        self.for_each_irreducible(&mut |y| all.push(y));
        all
    }

    fn for_each_irreducible(&self, f: &mut dyn FnMut(Self)) {
        self.each_part(Split::Irreducibles, f);
    }

    fn for_each_piece(&self, f: &mut dyn FnMut(Self)) {
        self.each_part(Split::Pieces, f);
    }

    fn delta(&self, base: &Self) -> Self {
        Doc {
            fields: self.fields.delta(&base.fields),
            lists: self.lists.delta(&base.lists),
            texts: self.texts.delta(&base.texts),
            removed: Removed::default(),
        }
    }
}

/// How [`Doc::each_part`] splits its three parts.
#[derive(Clone, Copy)]
enum Split {
    Irreducibles,
    Pieces,
}

/// `part` split as `how` says, each element handed to `f`.
fn split<L: Decompose>(part: &L, how: Split, f: &mut dyn FnMut(L)) {
    match how {
        Split::Irreducibles => part.for_each_irreducible(f),
        Split::Pieces => part.for_each_piece(f),
    }
}

impl Doc {
    /// Each element of its fields, lists and texts, split as `how` says, as a document.
    fn each_part(&self, how: Split, f: &mut dyn FnMut(Doc)) {
        let doc = Doc::default;
        split(&self.fields, how, &mut |fields| f(Doc { fields, ..doc() }));
        split(&self.lists, how, &mut |lists| f(Doc { lists, ..doc() }));
        split(&self.texts, how, &mut |texts| f(Doc { texts, ..doc() }));
    }
}

impl Measure for Doc {
    fn payload_units(&self) -> u64 {
        self.fields.payload_units() + self.lists.payload_units() + self.texts.payload_units()
    }

    fn metadata_units(&self) -> u64 {
        self.fields.metadata_units() + self.lists.metadata_units() + self.texts.metadata_units()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: Json) -> Vec<Step> {
        parse_path(&p).unwrap()
    }

    fn edit(doc: &mut Doc, f: impl FnOnce(&Doc) -> Result<Doc, CrdtError>) {
        let d = f(doc).unwrap();
        doc.join(&d);
    }

    /// A random edit: fields set to scalars, nested maps with text, lists; text spliced; list
    /// elements inserted, replaced and deleted; fields deleted. An edit whose path does not
    /// exist yet changes nothing.
    fn mutate(s: &Doc, r: ReplicaId, what: u8, arg: u8) -> Doc {
        let field = format!("f{}", arg % 3);
        let len = |p: &Json| match s.get(&path(p.clone())) {
            Some(Json::String(t)) => t.chars().count(),
            Some(Json::Array(a)) => a.len(),
            _ => 0,
        };
        let text = json!([field.clone(), "t"]);
        let result = match what % 8 {
            0 => s.put(r, &path(json!([field])), &json!(arg)),
            1 => s.put(r, &path(json!([field])), &json!({"t": "ab", "n": arg})),
            2 => s.put(r, &path(json!(["l"])), &json!([arg, "x"])),
            3 | 4 => {
                let n = len(&text);
                let at = usize::from(arg) % (n + 1);
                let ch = char::from(b'a' + arg % 26).to_string();
                s.splice(r, &path(text), at, usize::from(what % 2), &ch)
            }
            5 => {
                let n = len(&json!(["l"]));
                s.insert(
                    r,
                    &path(json!(["l"])),
                    usize::from(arg) % (n + 1),
                    &[json!(arg)],
                )
            }
            6 => {
                let n = len(&json!(["l"]));
                let at = usize::from(arg) % n.max(1);
                s.put(r, &path(json!(["l", at])), &json!({"k": [1]}))
            }
            _ => match arg % 2 {
                0 => s.delete(&path(json!([field]))),
                _ => s.delete(&path(json!(["l", 0]))),
            },
        };
        result.unwrap_or_default()
    }

    crate::laws::lattice_laws!(Doc, mutate);

    #[test]
    fn nested_values_read_back_as_written_and_by_path() {
        let mut d = Doc::default();
        let note = json!({"title": "Hi", "body": "hello", "tags": ["a", "b"], "meta": {"n": 1, "ok": true, "x": null}});
        edit(&mut d, |d| {
            d.put(ReplicaId(1), &path(json!(["note"])), &note)
        });
        assert_eq!(d.value(), json!({ "note": note }));
        assert_eq!(d.get(&path(json!(["note", "tags", 1]))), Some(json!("b")));
        assert_eq!(
            d.get(&path(json!(["note", "meta"]))),
            Some(json!({"n": 1, "ok": true, "x": null}))
        );
        assert_eq!(d.get(&path(json!(["note", "nope"]))), None);
        edit(&mut d, |d| {
            d.splice(
                ReplicaId(1),
                &path(json!(["note", "body"])),
                5,
                0,
                ", world",
            )
        });
        edit(&mut d, |d| {
            d.insert(
                ReplicaId(1),
                &path(json!(["note", "tags"])),
                1,
                &[json!("z")],
            )
        });
        edit(&mut d, |d| {
            d.put(ReplicaId(1), &path(json!(["note", "tags", 0])), &json!(7))
        });
        edit(&mut d, |d| d.delete(&path(json!(["note", "meta", "x"]))));
        edit(&mut d, |d| {
            d.put(ReplicaId(1), &path(json!([])), &json!({"top": 1, "": 2}))
        });
        assert_eq!(
            d.value(),
            json!({"note": {"title": "Hi", "body": "hello, world", "tags": [7, "z", "b"], "meta": {"n": 1, "ok": true}}, "top": 1, "": 2})
        );
        assert_eq!(d.len(), 3);
        assert_eq!(d.get(&path(json!([""]))), Some(json!(2)));
    }

    #[test]
    fn edits_that_do_not_fit_the_document_are_refused() {
        let mut d = Doc::default();
        edit(&mut d, |d| {
            d.put(
                ReplicaId(1),
                &path(json!(["a"])),
                &json!({"s": "t", "l": [1]}),
            )
        });
        let r = ReplicaId(1);
        let refused = [
            d.put(r, &path(json!(["b", "c"])), &json!(1)),
            d.put(r, &path(json!(["a", "l", 5])), &json!(1)),
            d.put(r, &path(json!(["a", "s", "x"])), &json!(1)),
            d.put(r, &path(json!([])), &json!(1)),
            d.delete(&path(json!([]))),
            d.delete(&path(json!(["a", "nope"]))),
            d.insert(r, &path(json!(["a", "s"])), 0, &[json!(1)]),
            d.insert(r, &path(json!(["a", "l"])), 2, &[json!(1)]),
            d.splice(r, &path(json!(["a", "l"])), 0, 0, "x"),
            d.splice(r, &path(json!(["a", "s"])), 2, 0, "x"),
        ];
        for (i, e) in refused.into_iter().enumerate() {
            assert!(matches!(e, Err(CrdtError::Path { .. })), "{i}: {e:?}");
        }
        assert!(parse_path(&json!(["a", -1])).is_err());
        assert!(parse_path(&json!("a")).is_err());
        assert!(parse_path(&json!([null])).is_err());
    }

    /// Two replicas edit one note's body at once, each typing at its own place, and set the same
    /// field at once: the body keeps both edits, the field keeps both writes (reading as one).
    #[test]
    fn concurrent_edits_of_one_text_merge_in_any_order() {
        let mut base = Doc::default();
        edit(&mut base, |b| {
            b.put(ReplicaId(9), &path(json!(["body"])), &json!("hello world"))
        });
        let (mut a, mut b) = (base.clone(), base.clone());
        let body = path(json!(["body"]));
        let da = a.splice(ReplicaId(1), &body, 5, 0, " big").unwrap();
        a.join(&da);
        let da2 = a.splice(ReplicaId(1), &body, 0, 1, "H").unwrap();
        a.join(&da2);
        let db = b.splice(ReplicaId(2), &body, 11, 0, "!").unwrap();
        b.join(&db);
        let db2 = b
            .put(ReplicaId(2), &path(json!(["title"])), &json!("B"))
            .unwrap();
        b.join(&db2);
        let da3 = a
            .put(ReplicaId(1), &path(json!(["title"])), &json!("A"))
            .unwrap();
        a.join(&da3);
        let ab = a.clone().joined(&b);
        let ba = b.clone().joined(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.get(&body), Some(json!("Hello big world!")));
        assert_eq!(ab.get(&path(json!(["title"]))), Some(json!("B")));
        assert_eq!(
            ab.concurrent_fields(),
            vec![(
                json!(["title"]),
                vec![(json!("B"), ReplicaId(2)), (json!("A"), ReplicaId(1))]
            )]
        );
        assert_eq!(ab.conflicts(), 1);
        // A write that saw both settles it.
        let settle = ab
            .put(ReplicaId(1), &path(json!(["title"])), &json!("C"))
            .unwrap();
        assert_eq!(ab.joined(&settle).conflicts(), 0);
    }

    /// Edits say what a delta did, as splices that turn each text and list as it was into what
    /// it is — whether the delta is a local write or a neighbour's group of several.
    #[test]
    fn edits_replay_what_a_delta_did() {
        let mut d = Doc::default();
        edit(&mut d, |d| {
            d.put(
                ReplicaId(1),
                &path(json!(["n"])),
                &json!({"body": "hello world", "tags": ["a", "b"]}),
            )
        });
        let before = d.clone();
        let body = path(json!(["n", "body"]));
        let tags = path(json!(["n", "tags"]));
        let mut group = Doc::default();
        let r = ReplicaId(2);
        type Step<'a> = &'a dyn Fn(&Doc) -> Result<Doc, CrdtError>;
        let steps: [Step<'_>; 6] = [
            &|d| d.splice(r, &body, 0, 1, "H"),
            &|d| d.splice(r, &body, 5, 6, "!"),
            &|d| d.insert(r, &tags, 1, &[json!({"x": 1})]),
            &|d| d.put(r, &path(json!(["n", "title"])), &json!("T")),
            &|d| d.delete(&path(json!(["n", "tags", 0]))),
            &|d| d.delete(&path(json!(["n", "body"]))),
        ];
        for step in steps {
            let step = step(&d).unwrap();
            d.join(&step);
            group.join(&step);
        }
        let after = before.clone().joined(&group);
        assert_eq!(after.get(&body), None);
        // Replaying the edits on the JSON as it was gives the JSON as it is.
        let edits = after.edits(&group);
        assert!(edits.contains(&json!({"path": ["n", "body"], "removed": true})));
        let replay = replayed(before.value(), &edits);
        assert_eq!(replay, after.value());
        assert!(after.edits(&Doc::default()).is_empty());
    }

    /// `json` with `edits` applied, in order, as an editor would apply them to its copy.
    fn replayed(mut json: Json, edits: &[Json]) -> Json {
        for e in edits {
            let at: Vec<Step> = parse_path(&e["path"]).unwrap();
            let writes_field = e.get("value").is_some() || e.get("removed").is_some();
            let mut target = &mut json;
            for s in &at[..at.len() - usize::from(writes_field)] {
                target = match s {
                    Step::Field(f) => &mut target[f.as_str()],
                    Step::Index(i) => &mut target[*i],
                };
            }
            let (i, n) = (
                e["index"].as_u64().unwrap_or(0) as usize,
                e["delete"].as_u64().unwrap_or(0) as usize,
            );
            if writes_field {
                let Some(Step::Field(f)) = at.last() else {
                    panic!("{e}")
                };
                match e.get("value") {
                    Some(v) => target[f.as_str()] = v.clone(),
                    None => {
                        target.as_object_mut().unwrap().remove(f.as_str());
                    }
                }
            } else if let Some(t) = e.get("text") {
                let mut chars: Vec<char> = target.as_str().unwrap().chars().collect();
                chars.splice(i..i + n, t.as_str().unwrap().chars());
                *target = Json::from(chars.into_iter().collect::<String>());
            } else {
                let list = target.as_array_mut().unwrap();
                list.splice(i..i + n, e["values"].as_array().unwrap().iter().cloned());
            }
        }
        json
    }

    proptest! {
        /// Whatever a group of random edits did (on one replica, or merged from two), its edits
        /// replayed on the JSON as it was give the JSON as it is: fields written, deleted, or
        /// deleted on one side and written on the other, texts and lists spliced.
        #[test]
        fn edits_of_any_group_replay_it(first in crate::laws::steps(), then in crate::laws::steps()) {
            let mut d = Doc::default();
            for (who, what, arg) in first {
                let delta = mutate(&d, ReplicaId(u64::from(who % 2) + 1), what, arg);
                d.join(&delta);
            }
            let mut sides = [d.clone(), d.clone()];
            let mut group = Doc::default();
            for (who, what, arg) in then {
                let i = usize::from(who % 2);
                let delta = mutate(&sides[i], ReplicaId(i as u64 + 1), what, arg);
                sides[i].join(&delta);
                group.join(&delta);
            }
            let after = d.clone().joined(&group);
            prop_assert_eq!(replayed(d.value(), &after.edits(&group)), after.value());
        }
    }

    /// A peer's document whose objects form a cycle (one dot both a field write holding a list
    /// and an item of that list holding a map) reads without looping.
    #[test]
    fn a_cycle_from_a_peer_reads_without_looping() {
        let d1 = Dot::new(ReplicaId(1), 1);
        let d2 = Dot::new(ReplicaId(1), 2);
        let mut doc = Doc::default();
        doc.fields
            .join(&DotKernel::default().write_at(d1, (ROOT, "a".into()), Leaf::List));
        doc.fields
            .join(&DotKernel::default().write_at(d2, (d1, "b".into()), Leaf::List));
        let items = Seq::default().insert_at(d1, 0, vec![Leaf::Map]);
        doc.lists.join(&GMap::singleton(d2, items));
        let items = Seq::default().insert_at(d2, 0, vec![Leaf::Map]);
        doc.lists.join(&GMap::singleton(d1, items));
        let v = doc.value();
        assert!(v.is_object());
        let deep = vec![Step::Field("a".into()); MAX_DEPTH + 1];
        assert!(doc.get(&deep).is_none());
    }
}
