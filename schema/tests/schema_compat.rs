#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Fails when the schema does more than add, compared with the committed
//! previous schema in `schema/compat/previous.txt` (`schema/README.md` §3).
//!
//! The current schema is read from the committed bindings: every generated
//! type carries its encoded schema node (`ENCODED_NODE` in
//! `schema/generated/*.rs`, a `schema.capnp` `Node`), so no `capnp` binary is
//! needed. Each node is described as text, one line per node, field and
//! enumerant (ids, names, ordinals, union discriminants, slot offsets, types,
//! primitive defaults), and compared with the snapshot:
//!
//! * every node of the snapshot must still exist with the same id, kind,
//!   name and scope (a changed file or struct id, a renamed or removed
//!   struct fails);
//! * every field must keep its name, ordinal, union discriminant, offset,
//!   type and default (a renumbered, retyped, renamed or removed field or
//!   union arm fails);
//! * every enumerant must keep its ordinal and name;
//! * anything new (nodes, fields with new ordinals, enumerants, union arms)
//!   passes.
//!
//! **Bumping the snapshot deliberately** (after an addition, so that the next
//! change is checked against it; or to record an incompatible change that was
//! decided on, with a new ALPN/protocol version):
//!
//! ```text
//! DISTSOC_SCHEMA_COMPAT_BLESS=1 cargo nextest run -p distsoc-schema --test schema_compat
//! git add schema/compat/previous.txt
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use capnp::schema_capnp::{field, node, type_, value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn snapshot_path() -> PathBuf {
    root().join("schema/compat/previous.txt")
}

/// The encoded nodes (`ENCODED_NODE` arrays) in one generated source file.
fn encoded_nodes(src: &str) -> Vec<Vec<u8>> {
    let mut nodes = Vec::new();
    let mut lines = src.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.split("ENCODED_NODE: [::capnp::Word; ").nth(1) else {
            continue;
        };
        let words: usize = rest.split(']').next().unwrap().trim().parse().unwrap();
        let mut bytes = Vec::with_capacity(words * 8);
        for line in lines.by_ref() {
            let line = line.trim();
            if line.starts_with("];") {
                break;
            }
            let inner = line
                .strip_prefix("::capnp::word(")
                .and_then(|l| l.strip_suffix("),"))
                .unwrap_or_else(|| panic!("unexpected line in ENCODED_NODE: {line}"));
            bytes.extend(inner.split(',').map(|b| b.trim().parse::<u8>().unwrap()));
        }
        assert_eq!(bytes.len(), words * 8, "ENCODED_NODE length");
        nodes.push(bytes);
    }
    nodes
}

fn type_name(t: type_::Reader<'_>) -> capnp::Result<String> {
    use type_::Which as T;
    Ok(match t.which()? {
        T::Void(()) => "void".into(),
        T::Bool(()) => "bool".into(),
        T::Int8(()) => "int8".into(),
        T::Int16(()) => "int16".into(),
        T::Int32(()) => "int32".into(),
        T::Int64(()) => "int64".into(),
        T::Uint8(()) => "uint8".into(),
        T::Uint16(()) => "uint16".into(),
        T::Uint32(()) => "uint32".into(),
        T::Uint64(()) => "uint64".into(),
        T::Float32(()) => "float32".into(),
        T::Float64(()) => "float64".into(),
        T::Text(()) => "text".into(),
        T::Data(()) => "data".into(),
        T::List(l) => format!("list({})", type_name(l.get_element_type()?)?),
        T::Enum(e) => format!("enum:{:#018x}", e.get_type_id()),
        T::Struct(s) => format!("struct:{:#018x}", s.get_type_id()),
        T::Interface(i) => format!("interface:{:#018x}", i.get_type_id()),
        T::AnyPointer(_) => "anyPointer".into(),
    })
}

/// A primitive default value (pointer defaults are not compared).
fn default_value(v: value::Reader<'_>) -> capnp::Result<String> {
    use value::Which as V;
    Ok(match v.which()? {
        V::Bool(b) => b.to_string(),
        V::Int8(x) => x.to_string(),
        V::Int16(x) => x.to_string(),
        V::Int32(x) => x.to_string(),
        V::Int64(x) => x.to_string(),
        V::Uint8(x) => x.to_string(),
        V::Uint16(x) => x.to_string(),
        V::Uint32(x) => x.to_string(),
        V::Uint64(x) => x.to_string(),
        V::Float32(x) => format!("{:#x}", x.to_bits()),
        V::Float64(x) => format!("{:#x}", x.to_bits()),
        V::Enum(x) => x.to_string(),
        _ => "-".into(),
    })
}

/// One line per node, field and enumerant of an encoded node.
fn describe_node(bytes: &[u8], out: &mut Vec<String>) -> capnp::Result<()> {
    let segments: [&[u8]; 1] = [bytes];
    let message = capnp::message::Reader::new(
        capnp::message::SegmentArray::new(&segments),
        capnp::message::ReaderOptions::new(),
    );
    let n: node::Reader<'_> = message.get_root()?;
    let id = n.get_id();
    let name = n.get_display_name()?.to_str()?;
    let scope = n.get_scope_id();
    match n.which()? {
        node::Struct(s) => {
            out.push(format!(
                "node {id:#018x} struct {name} scope={scope:#018x} data={} ptrs={} union={}@{} group={}",
                s.get_data_word_count(),
                s.get_pointer_count(),
                s.get_discriminant_count(),
                s.get_discriminant_offset(),
                s.get_is_group(),
            ));
            for f in s.get_fields()? {
                let fname = f.get_name()?.to_str()?;
                let ord = match f.get_ordinal().which()? {
                    field::ordinal::Implicit(()) => "implicit".to_string(),
                    field::ordinal::Explicit(o) => o.to_string(),
                };
                let disc = match f.get_discriminant_value() {
                    field::NO_DISCRIMINANT => "none".to_string(),
                    d => d.to_string(),
                };
                let what = match f.which()? {
                    field::Slot(slot) => format!(
                        "slot off={} type={} default={}",
                        slot.get_offset(),
                        type_name(slot.get_type()?)?,
                        default_value(slot.get_default_value()?)?
                    ),
                    field::Group(g) => format!("group {:#018x}", g.get_type_id()),
                };
                out.push(format!(
                    "field {id:#018x} {fname} ord={ord} disc={disc} {what}"
                ));
            }
        }
        node::Enum(e) => {
            out.push(format!("node {id:#018x} enum {name} scope={scope:#018x}"));
            for (i, en) in e.get_enumerants()?.iter().enumerate() {
                out.push(format!(
                    "enumerant {id:#018x} @{i} {}",
                    en.get_name()?.to_str()?
                ));
            }
        }
        node::File(()) => out.push(format!("node {id:#018x} file {name} scope={scope:#018x}")),
        node::Interface(_) => out.push(format!(
            "node {id:#018x} interface {name} scope={scope:#018x}"
        )),
        node::Const(c) => out.push(format!(
            "node {id:#018x} const {name} scope={scope:#018x} type={}",
            type_name(c.get_type()?)?
        )),
        node::Annotation(a) => out.push(format!(
            "node {id:#018x} annotation {name} scope={scope:#018x} type={}",
            type_name(a.get_type()?)?
        )),
    }
    Ok(())
}

/// The description of the schema as committed in `schema/generated/`.
fn describe_current() -> String {
    let dir = root().join("schema/generated");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let src = std::fs::read_to_string(&file).unwrap();
        for bytes in encoded_nodes(&src) {
            describe_node(&bytes, &mut lines).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
    lines.sort();
    lines.dedup();
    let mut text = String::from(
        "# The previous schema, for schema/tests/schema_compat.rs (generated; see its doc to bump).\n",
    );
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    text
}

/// A parsed description.
#[derive(Default)]
struct Model<'a> {
    /// node id → (kind, name, scope)
    nodes: BTreeMap<&'a str, (&'a str, &'a str, &'a str, Vec<&'a str>)>,
    /// (node id, field name) → the rest of the line's tokens
    fields: BTreeMap<(&'a str, &'a str), Vec<&'a str>>,
    /// (node id, explicit ordinal) → field name
    ordinals: BTreeMap<(&'a str, &'a str), &'a str>,
    /// (node id, "@index") → enumerant name
    enumerants: BTreeMap<(&'a str, &'a str), &'a str>,
}

fn parse(text: &str) -> Model<'_> {
    let mut m = Model::default();
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        match t.first().copied() {
            Some("node") => {
                m.nodes
                    .insert(t[1], (t[2], t[3], t[4], t.get(5..).unwrap_or(&[]).to_vec()));
            }
            Some("field") => {
                let ord = t[3];
                if ord != "ord=implicit" {
                    m.ordinals.insert((t[1], ord), t[2]);
                }
                m.fields.insert((t[1], t[2]), t[3..].to_vec());
            }
            Some("enumerant") => {
                m.enumerants.insert((t[1], t[2]), t[3]);
            }
            _ => {}
        }
    }
    m
}

/// Every way `current` does more than add to `previous`.
fn violations(previous: &str, current: &str) -> Vec<String> {
    let (p, c) = (parse(previous), parse(current));
    let mut out = Vec::new();
    for (id, (kind, name, scope, rest)) in &p.nodes {
        let Some((ckind, cname, cscope, crest)) = c.nodes.get(id) else {
            out.push(format!("{kind} {name} ({id}) removed or its id changed"));
            continue;
        };
        if (kind, name, scope) != (ckind, cname, cscope) {
            out.push(format!(
                "{kind} {name} ({id}) changed to {ckind} {cname} ({cscope})"
            ));
        }
        // Struct layout: sections only grow; an existing union keeps its
        // discriminant offset; a group stays a group.
        if *kind == "struct" {
            for (was, now) in rest.iter().zip(crest) {
                let (key, a) = was.split_once('=').unwrap_or((was, ""));
                let b = now.split_once('=').map_or("", |x| x.1);
                let shrank = |a: &str, b: &str| {
                    a.parse::<u64>().unwrap_or(0) > b.parse::<u64>().unwrap_or(0)
                };
                let bad = match key {
                    "data" | "ptrs" => shrank(a, b),
                    "union" => {
                        let (ac, ao) = a.split_once('@').unwrap_or((a, ""));
                        let (bc, bo) = b.split_once('@').unwrap_or((b, ""));
                        shrank(ac, bc) || (ac != "0" && ao != bo)
                    }
                    _ => a != b,
                };
                if bad {
                    out.push(format!("struct {name}: {was} became {now}"));
                }
            }
        }
    }
    for ((node, fname), rest) in &p.fields {
        let owner = p.nodes.get(node).map_or(*node, |n| n.1);
        match c.fields.get(&(*node, *fname)) {
            None => match c.ordinals.get(&(*node, rest[0])) {
                Some(other) => out.push(format!(
                    "{owner}.{fname} ({}) renamed to {other}",
                    rest[0]
                )),
                None => out.push(format!("{owner}.{fname} removed")),
            },
            Some(now) if now != rest => out.push(format!(
                "{owner}.{fname} changed (renumbered, retyped, moved or its default changed): `{}` became `{}`",
                rest.join(" "),
                now.join(" ")
            )),
            Some(_) => {}
        }
    }
    for ((node, at), ename) in &p.enumerants {
        let owner = p.nodes.get(node).map_or(*node, |n| n.1);
        match c.enumerants.get(&(*node, *at)) {
            None => out.push(format!("{owner}.{ename} ({at}) removed")),
            Some(now) if now != ename => {
                out.push(format!("{owner}.{ename} ({at}) renamed to {now}"));
            }
            Some(_) => {}
        }
    }
    out
}

#[test]
fn the_schema_only_grows() {
    let current = describe_current();
    let path = snapshot_path();
    if std::env::var_os("DISTSOC_SCHEMA_COMPAT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &current).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let previous = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (see this test's doc)", path.display()));
    let broken = violations(&previous, &current);
    assert!(
        broken.is_empty(),
        "the schema does more than add, against schema/compat/previous.txt:\n  {}\n\
         (if this is deliberate, see schema/tests/schema_compat.rs for how to bump the snapshot)",
        broken.join("\n  ")
    );
}

#[test]
fn the_description_covers_the_schema() {
    let current = describe_current();
    let m = parse(&current);
    // Spot checks that the reader sees what schema/*.capnp says.
    assert!(
        m.nodes
            .values()
            .any(|n| n.0 == "struct" && n.1 == "wire.capnp:Hello"),
        "wire.capnp:Hello not found"
    );
    assert!(
        m.nodes
            .values()
            .any(|n| n.0 == "enum" && n.1 == "wire.capnp:ErrorCode"),
        "wire.capnp:ErrorCode not found"
    );
    let structs = m.nodes.values().filter(|n| n.0 == "struct").count();
    assert!(structs >= 50, "only {structs} structs described");
    assert!(m.fields.len() > structs);
}

/// Unit tests of the checker: the current schema, edited by hand.
mod checker {
    use super::*;

    fn current() -> String {
        describe_current()
    }

    /// The first field line of `Hello` with an explicit ordinal.
    fn hello_field(text: &str, name: &str) -> String {
        let m = parse(text);
        let id = m
            .nodes
            .iter()
            .find(|(_, n)| n.1 == "wire.capnp:Hello")
            .map(|(id, _)| *id)
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(&format!("field {id} {name} ")))
            .unwrap_or_else(|| panic!("no field {name}"))
            .to_string()
    }

    fn edit(text: &str, old: &str, new: &str) -> String {
        assert!(text.contains(old), "{old}");
        text.replacen(old, new, 1)
    }

    #[test]
    fn unchanged_passes() {
        let s = current();
        assert_eq!(violations(&s, &s), Vec::<String>::new());
    }

    #[test]
    fn an_added_field_passes() {
        let prev = current();
        let line = hello_field(&prev, "agent");
        let added = line
            .replace(" agent ", " nickname ")
            .replace("ord=", "ord=9")
            .replace("off=", "off=9");
        let now = format!("{prev}{added}\n");
        assert_eq!(violations(&prev, &now), Vec::<String>::new());
    }

    #[test]
    fn added_nodes_and_enumerants_pass() {
        let prev = current();
        let now = format!(
            "{prev}node 0x0000000000000001 struct wire.capnp:New scope=0x0 data=0 ptrs=0 union=0@0 group=false\n\
             enumerant 0x0000000000000002 @0 fresh\n"
        );
        assert_eq!(violations(&prev, &now), Vec::<String>::new());
    }

    #[test]
    fn a_removed_field_fails() {
        let prev = current();
        let line = hello_field(&prev, "agent");
        let now = edit(&prev, &format!("{line}\n"), "");
        let v = violations(&prev, &now);
        assert!(v.iter().any(|e| e.contains("Hello.agent removed")), "{v:?}");
    }

    #[test]
    fn a_renumbered_field_fails() {
        let prev = current();
        let line = hello_field(&prev, "agent");
        let now = edit(&prev, &line, &line.replace(" ord=", " ord=4"));
        let v = violations(&prev, &now);
        assert!(v.iter().any(|e| e.contains("Hello.agent changed")), "{v:?}");
    }

    #[test]
    fn a_retyped_field_fails() {
        let prev = current();
        let line = hello_field(&prev, "minVersion");
        assert!(line.contains("type=uint16"), "{line}");
        let now = edit(&prev, &line, &line.replace("type=uint16", "type=uint32"));
        let v = violations(&prev, &now);
        assert!(
            v.iter().any(|e| e.contains("Hello.minVersion changed")),
            "{v:?}"
        );
    }

    #[test]
    fn a_renamed_ordinal_fails() {
        let prev = current();
        let line = hello_field(&prev, "agent");
        let now = edit(&prev, &line, &line.replace(" agent ", " userAgent "));
        let v = violations(&prev, &now);
        assert!(
            v.iter()
                .any(|e| e.contains("Hello.agent") && e.contains("renamed to userAgent")),
            "{v:?}"
        );
    }

    #[test]
    fn a_changed_union_arm_fails() {
        let prev = current();
        let arm = prev
            .lines()
            .find(|l| l.starts_with("field ") && !l.contains(" disc=none "))
            .expect("the schema has a union")
            .to_string();
        let disc = arm
            .split(" disc=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        let moved = arm.replace(&format!(" disc={disc} "), " disc=999 ");
        let now = edit(&prev, &arm, &moved);
        let v = violations(&prev, &now);
        assert!(v.iter().any(|e| e.contains("changed")), "{v:?}");
    }

    #[test]
    fn a_removed_or_renamed_enumerant_fails() {
        let prev = current();
        let line = prev
            .lines()
            .find(|l| l.starts_with("enumerant ") && l.ends_with(" unsupportedVersion"))
            .unwrap()
            .to_string();
        let renamed = edit(
            &prev,
            &line,
            &line.replace("unsupportedVersion", "badVersion"),
        );
        let v = violations(&prev, &renamed);
        assert!(
            v.iter().any(|e| e.contains("renamed to badVersion")),
            "{v:?}"
        );
        let removed = edit(&prev, &format!("{line}\n"), "");
        let v = violations(&prev, &removed);
        assert!(
            v.iter()
                .any(|e| e.contains("unsupportedVersion") && e.contains("removed")),
            "{v:?}"
        );
    }

    #[test]
    fn a_changed_struct_id_fails() {
        let prev = current();
        let m = parse(&prev);
        let (id, _) = m
            .nodes
            .iter()
            .find(|(_, n)| n.1 == "wire.capnp:Hello")
            .unwrap();
        let now = prev.replace(id, "0x0123456789abcdef");
        let v = violations(&prev, &now);
        assert!(
            v.iter()
                .any(|e| e.contains("wire.capnp:Hello") && e.contains("id changed")),
            "{v:?}"
        );
    }

    #[test]
    fn a_changed_file_id_fails() {
        let prev = current();
        let m = parse(&prev);
        let scope = m
            .nodes
            .values()
            .find(|n| n.1 == "wire.capnp:Hello")
            .map(|n| n.2)
            .unwrap();
        let line = prev
            .lines()
            .find(|l| l.contains(" struct wire.capnp:Hello "))
            .unwrap()
            .to_string();
        let now = edit(
            &prev,
            &line,
            &line.replace(scope, "scope=0x0123456789abcdef"),
        );
        let v = violations(&prev, &now);
        assert!(v.iter().any(|e| e.contains("wire.capnp:Hello")), "{v:?}");
    }
}
