//! A small YAML tree with a line and column on every node, built from yaml-rust2's event
//! parser. The tree is built iteratively (no recursion), and hostile input is refused early:
//! nesting depth, scalar length, node count and alias expansion are all capped.
//!
//! Aliases share the anchored subtree (`Rc`, scalar text included), so an alias costs no
//! copy; the number of nodes an alias stands for is still counted, so that walking the tree
//! stays bounded.

use std::collections::HashMap;
use std::rc::Rc;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

/// Deepest nesting of lists and mappings accepted.
pub const MAX_DEPTH: usize = 64;
/// Longest scalar accepted, in bytes.
pub const MAX_SCALAR_BYTES: usize = 64 * 1024;
/// Most nodes that aliases may stand for, in total.
pub const MAX_ALIAS_EXPANSION: u64 = 1_000_000;
/// Most nodes written in the file.
pub const MAX_NODES: u64 = 4_000_000;

/// A position in the source, both 1-based (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn new(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    /// yaml-rust2 markers have a 1-based line and a 0-based column.
    fn from_marker(mark: &Marker) -> Pos {
        Pos::new(mark.line().max(1), mark.col() + 1)
    }
}

#[derive(Debug, Clone)]
pub enum Kind {
    /// `plain` is false for quoted and block scalars: those are always strings.
    Scalar {
        text: Rc<str>,
        plain: bool,
    },
    Seq(Rc<Vec<Node>>),
    Map(Rc<Vec<(Node, Node)>>),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

/// A problem that stops the reading of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
    pub hint: String,
}

impl Node {
    /// A mapping of `entries`, at `pos`.
    pub fn mapping(pos: Pos, entries: Vec<(Node, Node)>) -> Node {
        Node {
            pos,
            kind: Kind::Map(Rc::new(entries)),
        }
    }

    /// The text of a plain scalar (the forms that may mean null, booleans or numbers).
    fn plain(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, plain: true } => Some(text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.plain(), Some("" | "~" | "null" | "Null" | "NULL"))
    }

    /// Any scalar but null, as text (numbers and booleans included).
    pub fn as_str(&self) -> Option<&str> {
        self.shared_str().map(|text| &**text)
    }

    /// [`as_str`](Node::as_str)'s text, shared: a copy costs no allocation.
    pub fn shared_str(&self) -> Option<&Rc<str>> {
        match &self.kind {
            Kind::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.plain()? {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        let text = self.plain()?;
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    }

    pub fn as_f64(&self) -> Option<f64> {
        let text = self.plain()?;
        let ok = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
        let value: f64 = if ok { text.parse().ok()? } else { return None };
        value.is_finite().then_some(value)
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// What this node is, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
            Kind::Scalar { .. } if self.is_null() => "nothing",
            Kind::Scalar { .. } if self.as_bool().is_some() => "a boolean",
            Kind::Scalar { .. } if self.as_f64().is_some() => "a number",
            Kind::Scalar { .. } => "a string",
        }
    }
}

/// Parses one YAML document. `Ok(None)` for an empty stream.
pub fn parse(src: &str) -> Result<Option<Node>, YamlError> {
    let mut parser = Parser::new_from_str(src);
    let mut builder = Builder::default();
    let mut documents = 0;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| scan_error(&e))?;
        let pos = Pos::from_marker(&mark);
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(error(
                        pos,
                        "the file holds more than one yaml document",
                        "keep one topology per file: remove the second '---' and what follows",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, _) => builder.scalar(text, style, anchor, pos)?,
            Event::SequenceStart(anchor, _) => builder.open(pos, anchor, false)?,
            Event::MappingStart(anchor, _) => builder.open(pos, anchor, true)?,
            Event::SequenceEnd | Event::MappingEnd => builder.close()?,
            Event::Alias(id) => builder.alias(id, pos)?,
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
        }
    }
    Ok(builder.root)
}

fn error(pos: Pos, message: &str, hint: &str) -> YamlError {
    YamlError {
        pos,
        message: message.to_string(),
        hint: hint.to_string(),
    }
}

fn scan_error(e: &ScanError) -> YamlError {
    // The scanner has its own (higher) cap on flow nesting, which it may hit first.
    if e.info().contains("recursion limit") {
        return error(
            Pos::from_marker(e.marker()),
            &format!("nesting deeper than {MAX_DEPTH} levels"),
            "a topology needs only a few levels of nesting; flatten the file",
        );
    }
    YamlError {
        pos: Pos::from_marker(e.marker()),
        message: format!("yaml syntax error: {}", e.info()),
        hint: "check the indentation, the quoting and the brackets at this position".to_string(),
    }
}

enum Open {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Frame {
    pos: Pos,
    anchor: usize,
    /// Nodes under this one, aliases counted at their expanded size.
    weight: u64,
    open: Open,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Completed anchored nodes with their expanded size.
    anchors: HashMap<usize, (Node, u64)>,
    expanded: u64,
    nodes: u64,
    root: Option<Node>,
}

impl Builder {
    fn count(&mut self, pos: Pos) -> Result<(), YamlError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(error(
                pos,
                "the file has too many yaml nodes",
                "split the lab into smaller files",
            ));
        }
        Ok(())
    }

    fn scalar(
        &mut self,
        text: String,
        style: TScalarStyle,
        anchor: usize,
        pos: Pos,
    ) -> Result<(), YamlError> {
        self.count(pos)?;
        if text.len() > MAX_SCALAR_BYTES {
            return Err(error(
                pos,
                &format!("value longer than {MAX_SCALAR_BYTES} bytes"),
                "shorten the value; long scripts belong in a file bound into the node",
            ));
        }
        let plain = style == TScalarStyle::Plain;
        self.complete(
            Node {
                pos,
                kind: Kind::Scalar {
                    text: text.into(),
                    plain,
                },
            },
            1,
            anchor,
        );
        Ok(())
    }

    fn open(&mut self, pos: Pos, anchor: usize, map: bool) -> Result<(), YamlError> {
        self.count(pos)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(error(
                pos,
                &format!("nesting deeper than {MAX_DEPTH} levels"),
                "a topology needs only a few levels of nesting; flatten the file",
            ));
        }
        let open = if map {
            Open::Map {
                entries: Vec::new(),
                key: None,
            }
        } else {
            Open::Seq(Vec::new())
        };
        self.stack.push(Frame {
            pos,
            anchor,
            weight: 0,
            open,
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), YamlError> {
        let Some(frame) = self.stack.pop() else {
            return Err(error(
                Pos::new(1, 1),
                "yaml syntax error: unbalanced collection end",
                "check the brackets",
            ));
        };
        let mut pos = frame.pos;
        // Trimmed to size: most collections of a topology hold one to three items, and a
        // growing Vec starts at four.
        let kind = match frame.open {
            Open::Seq(mut items) => {
                items.shrink_to_fit();
                Kind::Seq(Rc::new(items))
            }
            Open::Map { entries, .. } => {
                // A block mapping's start mark is at its first ':'; point at the first key.
                if let Some((first, _)) = entries.first() {
                    pos = pos.min(first.pos);
                }
                let mut entries = merge_keys(entries)?;
                entries.shrink_to_fit();
                Kind::Map(Rc::new(entries))
            }
        };
        let node = Node { pos, kind };
        self.complete(node, frame.weight + 1, frame.anchor);
        Ok(())
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<(), YamlError> {
        let Some((node, weight)) = self.anchors.get(&id).cloned() else {
            return Err(error(
                pos,
                "alias refers to an anchor that contains it",
                "an alias cannot be used inside its own anchor; remove the recursion",
            ));
        };
        self.expanded = self.expanded.saturating_add(weight);
        if self.expanded > MAX_ALIAS_EXPANSION {
            return Err(error(
                pos,
                "alias expansion too large",
                &format!(
                    "aliases here stand for more than {MAX_ALIAS_EXPANSION} nodes; write the \
                     values out or use fewer nested aliases"
                ),
            ));
        }
        // The alias's own position, so that type errors point at the alias.
        let node = Node { pos, ..node };
        self.complete(node, weight, 0);
        Ok(())
    }

    fn complete(&mut self, node: Node, weight: u64, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), weight));
        }
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        top.weight = top.weight.saturating_add(weight);
        match &mut top.open {
            Open::Seq(items) => items.push(node),
            Open::Map { entries, key } => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

/// `over` laid over `base`, as a node over its group: where both are mappings, they merge key
/// by key, recursively, `over`'s keys winning; any other value of `over` (a list, a scalar,
/// null) replaces `base`. `over`'s entries come first, then those `base` adds; every entry
/// keeps its position, that of the text it comes from.
///
/// The work is one shallow copy per entry of the mappings that both sides have, at most the
/// size of `base` plus that of `over`; the recursion goes no deeper than the tree
/// ([`MAX_DEPTH`]).
pub fn overlay(base: &Node, over: &Node) -> Node {
    let (Some(low), Some(high)) = (base.as_map(), over.as_map()) else {
        return over.clone();
    };
    let mut below: HashMap<&str, &Node> = HashMap::with_capacity(low.len());
    for (k, v) in low {
        if let Some(key) = k.as_str() {
            below.entry(key).or_insert(v);
        }
    }
    let mut taken = std::collections::HashSet::with_capacity(high.len());
    let mut entries = Vec::with_capacity(high.len() + low.len());
    for (k, v) in high {
        // The first of duplicate keys merges; the reader reports the others.
        let under = k
            .as_str()
            .filter(|key| taken.insert(*key))
            .and_then(|key| below.get(key));
        let value = match under {
            Some(b) => overlay(b, v),
            None => v.clone(),
        };
        entries.push((k.clone(), value));
    }
    for (k, v) in low {
        if k.as_str().is_none_or(|key| !taken.contains(key)) {
            entries.push((k.clone(), v.clone()));
        }
    }
    Node::mapping(over.pos, entries)
}

/// Whether `key` is the YAML 1.1 merge key: a plain `<<` (a quoted one is an ordinary key).
fn is_merge_key(key: &Node) -> bool {
    matches!(&key.kind, Kind::Scalar { text, plain: true } if &**text == "<<")
}

/// Resolves the merge keys of a mapping's entries (YAML 1.1 merge-key type): `<<: *x` puts
/// the entries of mapping `x` where the `<<` entry is, and `<<: [*x, *y]` those of each
/// mapping in turn. The mapping's own keys win over merged ones, and an earlier mapping of
/// the list wins over a later one. Merged entries keep their positions, those of the
/// anchor's lines. Their sources were completed before this mapping, so their own merge
/// keys are resolved already.
///
/// The work is one shallow copy per merged entry. Every merged entry is counted in the
/// node count (written out) or in the alias expansion (behind an alias), so the caps on
/// those bound merging too.
fn merge_keys(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, YamlError> {
    let mut merges = entries.iter().filter(|(k, _)| is_merge_key(k));
    let Some(first) = merges.next() else {
        return Ok(entries);
    };
    if let Some((second, _)) = merges.next() {
        return Err(error(
            second.pos,
            &format!(
                "duplicate merge key '<<' (the first is at line {}, column {})",
                first.0.pos.line, first.0.pos.column
            ),
            "merge several mappings with one key: '<<: [*first, *second]'",
        ));
    }
    let mut taken: std::collections::HashSet<&str> = entries
        .iter()
        .filter(|(k, _)| !is_merge_key(k))
        .filter_map(|(k, _)| k.as_str())
        .collect();
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in &entries {
        if !is_merge_key(key) {
            out.push((key.clone(), value.clone()));
            continue;
        }
        let sources: &[Node] = match &value.kind {
            Kind::Seq(items) => items,
            _ => std::slice::from_ref(value),
        };
        for source in sources {
            let Some(map) = source.as_map() else {
                // An empty value's position is that of what follows it: point at the key.
                let at = if value.is_null() { key.pos } else { source.pos };
                return Err(error(
                    at,
                    &format!(
                        "expected a mapping or a list of mappings after '<<', found {}",
                        source.type_name()
                    ),
                    "'<<' merges mappings into this one: write '<<: *anchor' or \
                     '<<: [*anchor1, *anchor2]', each anchor set on a mapping ('&anchor {...}')",
                ));
            };
            for (k, v) in map {
                if k.as_str().is_none_or(|text| taken.insert(text)) {
                    out.push((k.clone(), v.clone()));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(src: &str) -> Node {
        parse(src).unwrap().unwrap()
    }

    #[test]
    fn spans_are_one_based() {
        let n = root("# c\na:\n  b: [x, 'y']\n");
        let map = n.as_map().unwrap();
        assert_eq!(map[0].0.pos, Pos::new(2, 1));
        let inner = map[0].1.as_map().unwrap();
        assert_eq!(inner[0].0.pos, Pos::new(3, 3));
        let seq = inner[0].1.as_seq().unwrap();
        assert_eq!(seq[0].pos, Pos::new(3, 7));
        assert_eq!(seq[1].pos, Pos::new(3, 10));
        assert_eq!(seq[1].as_str(), Some("y"));
    }

    #[test]
    fn scalar_types() {
        let n = root("[1, -2, 1.5, true, '1', ~, '', abc]");
        let s = n.as_seq().unwrap();
        assert_eq!(s[0].as_i64(), Some(1));
        assert_eq!(s[1].as_i64(), Some(-2));
        assert_eq!(s[2].as_f64(), Some(1.5));
        assert_eq!(s[3].as_bool(), Some(true));
        assert_eq!(s[4].as_i64(), None);
        assert!(s[5].is_null());
        assert!(!s[6].is_null());
        assert_eq!(s[7].type_name(), "a string");
    }

    #[test]
    fn empty_stream() {
        assert!(parse("").unwrap().is_none());
        assert!(parse("# only a comment\n").unwrap().is_none());
    }

    #[test]
    fn aliases_share_and_count() {
        let n = root("a: &x [1, 2]\nb: *x\n");
        let map = n.as_map().unwrap();
        assert_eq!(map[1].1.as_seq().unwrap().len(), 2);
        assert_eq!(map[1].1.pos, Pos::new(2, 4));
    }

    #[test]
    fn aliases_share_scalar_text() {
        // A long scalar behind many aliases is one allocation, not one per alias.
        let long = "x".repeat(MAX_SCALAR_BYTES);
        let n = root(&format!("a: &a \"{long}\"\nb: [*a, *a]\n"));
        let map = n.as_map().unwrap();
        let text = |node: &Node| match &node.kind {
            Kind::Scalar { text, .. } => Rc::clone(text),
            _ => panic!("not a scalar"),
        };
        let items = map[1].1.as_seq().unwrap();
        assert!(Rc::ptr_eq(&text(&map[0].1), &text(&items[0])));
        assert!(Rc::ptr_eq(&text(&items[0]), &text(&items[1])));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&src).unwrap_err();
        assert!(e.message.contains("alias expansion too large"), "{e:?}");
    }

    /// The keys of a mapping and the lines they are on.
    fn keys(n: &Node) -> Vec<(String, usize)> {
        n.as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| (k.as_str().unwrap().to_string(), k.pos.line))
            .collect()
    }

    fn get<'n>(n: &'n Node, key: &str) -> &'n Node {
        let map = n.as_map().unwrap();
        &map.iter().find(|(k, _)| k.as_str() == Some(key)).unwrap().1
    }

    #[test]
    fn merge_keys_own_keys_win_and_earlier_mappings_win() {
        let src = "\
base: &base {a: 1, b: 2}
more: &more {b: 3, c: 4}
one:
  <<: *base
  a: own
list:
  <<: [*more, *base]
  d: 5
";
        let n = root(src);
        let one = get(&n, "one");
        assert_eq!(keys(one), [("b".into(), 1), ("a".into(), 5)]);
        assert_eq!(get(one, "a").as_str(), Some("own"));
        // Merged values keep the anchor's position.
        assert_eq!(get(one, "b").pos, Pos::new(1, 23));
        // The mapping itself is where its first key is.
        assert_eq!(one.pos, Pos::new(4, 3));
        let list = get(&n, "list");
        assert_eq!(
            keys(list),
            [
                ("b".into(), 2),
                ("c".into(), 2),
                ("a".into(), 1),
                ("d".into(), 8)
            ]
        );
        assert_eq!(get(list, "b").as_i64(), Some(3));
        assert_eq!(get(list, "a").as_i64(), Some(1));
    }

    #[test]
    fn merge_keys_nest_and_reach_into_lists() {
        let src = "\
a: &a {x: 1}
b: &b {<<: *a, y: 2}
c: {<<: *b, z: 3}
l: [{<<: *a, w: 0}]
q: {'<<': *a}
";
        let n = root(src);
        let c = get(&n, "c");
        let mut got: Vec<String> = keys(c).into_iter().map(|(k, _)| k).collect();
        got.sort();
        assert_eq!(got, ["x", "y", "z"]);
        assert_eq!(get(c, "x").pos.line, 1);
        let item = &get(&n, "l").as_seq().unwrap()[0];
        assert_eq!(keys(item).len(), 2);
        // A quoted '<<' is an ordinary key.
        assert_eq!(keys(get(&n, "q")), [("<<".into(), 5)]);
    }

    #[test]
    fn merge_of_what_is_not_a_mapping_is_refused() {
        for (src, pos, found) in [
            ("a: {<<: 1}", Pos::new(1, 9), "a number"),
            ("s: &s [1]\na: {<<: *s}", Pos::new(1, 8), "a number"),
            (
                "m: &m {x: 1}\na:\n  <<: [*m, x]\n",
                Pos::new(3, 12),
                "a string",
            ),
            ("a:\n  <<:\n  b: 1\n", Pos::new(2, 3), "nothing"),
            ("a: {<<: [[]]}", Pos::new(1, 10), "a list"),
        ] {
            let e = parse(src).unwrap_err();
            assert_eq!(e.pos, pos, "{src}: {e:?}");
            assert!(e.message.contains("after '<<'"), "{e:?}");
            assert!(e.message.ends_with(found), "{e:?}");
            assert!(e.hint.contains("<<: *anchor"), "{e:?}");
        }
        let e = parse("m: &m {x: 1}\na: {<<: *m, b: 1, <<: *m}").unwrap_err();
        assert!(e.message.contains("duplicate merge key"), "{e:?}");
        assert_eq!(e.pos, Pos::new(2, 19));
        // An empty list merges nothing.
        assert_eq!(keys(get(&root("a: {<<: [], b: 1}"), "a")).len(), 1);
    }

    #[test]
    fn hostile_nested_merges_are_refused() {
        // Each level merges the previous one twice: the mappings stay small (merged keys
        // are unique), but the aliases still count at their full size, so the chain is
        // refused as an alias bomb would be, and quickly.
        let mut src = String::from("m0: &m0 {k0: 0}\n");
        for i in 1..64 {
            let p = i - 1;
            src.push_str(&format!(
                "m{i}: &m{i} {{<<: [*m{p}, *m{p}, *m{p}, *m{p}], k{i}: {i}}}\n"
            ));
        }
        let start = std::time::Instant::now();
        let e = parse(&src).unwrap_err();
        assert!(e.message.contains("alias expansion too large"), "{e:?}");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        // One wide mapping merged into many: the copies count as alias expansion.
        let mut src = String::from("w: &w {");
        for i in 0..1000 {
            src.push_str(&format!("k{i}: {i}, "));
        }
        src.push_str("}\nl:\n");
        for _ in 0..2000 {
            src.push_str("  - {<<: *w}\n");
        }
        let e = parse(&src).unwrap_err();
        assert!(e.message.contains("alias expansion too large"), "{e:?}");
        // A few levels are fine, and merge to what they say.
        let mut src = String::from("m0: &m0 {k0: 0}\n");
        for i in 1..8 {
            let p = i - 1;
            src.push_str(&format!("m{i}: &m{i} {{<<: [*m{p}, *m{p}], k{i}: {i}}}\n"));
        }
        let n = root(&src);
        assert_eq!(keys(get(&n, "m7")).len(), 8);
    }

    #[test]
    fn overlay_merges_mappings_and_replaces_the_rest() {
        let src = "\
base:
  env: {A: 1, B: 2}
  binds: [x, y]
  services: {zebra: z, bgpd: b}
  userns: false
over:
  binds: [o]
  services: {bgpd: own}
  env: ~
  rootfs: /r
";
        let n = root(src);
        let merged = overlay(get(&n, "base"), get(&n, "over"));
        assert_eq!(merged.pos, Pos::new(7, 3));
        let got: Vec<String> = keys(&merged).into_iter().map(|(k, _)| k).collect();
        assert_eq!(got, ["binds", "services", "env", "rootfs", "userns"]);
        // Lists and null replace; mappings merge, the node's keys first and winning.
        assert_eq!(get(&merged, "binds").as_seq().unwrap().len(), 1);
        assert!(get(&merged, "env").is_null());
        let services = get(&merged, "services");
        assert_eq!(keys(services), [("bgpd".into(), 8), ("zebra".into(), 4)]);
        assert_eq!(get(services, "bgpd").as_str(), Some("own"));
        // What comes from the base is where the base's text is.
        assert_eq!(get(&merged, "userns").pos, Pos::new(5, 11));
        // A mapping over a scalar, and a scalar over a mapping, replace.
        let scalar = root("text");
        assert_eq!(overlay(&scalar, &n).as_map().unwrap().len(), 2);
        assert_eq!(overlay(&n, &scalar).as_str(), Some("text"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let src = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse(&src).unwrap_err();
        assert!(e.message.contains("nesting deeper"), "{e:?}");
        let src = format!("{}{}", "{a: ".repeat(100), "}".repeat(100));
        let e = parse(&src).unwrap_err();
        assert!(e.message.contains("nesting deeper"), "{e:?}");
        let mut src = String::new();
        for i in 0..100 {
            src.push_str(&format!("{}k:\n", " ".repeat(i)));
        }
        let e = parse(&src).unwrap_err();
        assert!(e.message.contains("nesting deeper"), "{e:?}");
        assert_eq!(e.pos.line, MAX_DEPTH + 1);
    }

    #[test]
    fn long_scalar_is_refused() {
        let src = format!("a: {}\n", "x".repeat(MAX_SCALAR_BYTES + 1));
        assert!(parse(&src).unwrap_err().message.contains("longer than"));
    }

    #[test]
    fn syntax_error_position() {
        let e = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(e.message.starts_with("yaml syntax error"), "{e:?}");
    }

    #[test]
    fn two_documents_are_refused() {
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.contains("more than one"), "{e:?}");
    }
}
