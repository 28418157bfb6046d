//! A decoded value as a tree, read through the schema (Cap'n Proto dynamic
//! reflection: field names, union arms and enumerants come from the
//! `.capnp` files), printed as indented text or as JSON.

use std::fmt::Write as _;

use capnp::dynamic_value;
use capnp::introspect::TypeVariant;
use serde_json::{json, Map, Value};

/// Bytes shown in full before the text view cuts a byte field (`--full`
/// shows everything).
const SHOWN_BYTES: usize = 48;
/// Characters of a text field shown before the text view cuts it.
const SHOWN_CHARS: usize = 200;

/// One decoded value.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A number, a boolean, an enumerant, void.
    Scalar(Value),
    /// A `Text` field.
    Text(String),
    /// A `Data` field; `inner` when its bytes are themselves a known
    /// canonical struct (`SignedPost.post` holds a `Post`).
    Bytes {
        bytes: Vec<u8>,
        inner: Option<Box<Inner>>,
    },
    /// A struct (or a group): its type name and its fields, the union arm
    /// in its place among them.
    Struct { ty: String, fields: Vec<Field> },
    /// A list.
    List(Vec<Node>),
    /// A null pointer: the field is not set.
    Absent,
    /// A value that could not be read (the reason).
    Unreadable(String),
}

/// One field of a struct.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name: String,
    /// Whether this field is the union's active arm.
    pub(crate) arm: bool,
    pub(crate) value: Node,
    /// What the value means, for the text view: the message a code names,
    /// the UTC time of a `…Ms` timestamp.
    pub(crate) note: Option<String>,
}

/// The UTC date and time of `ms` since the Unix epoch
/// (`2023-11-14T22:13:20.000Z`), for plausible timestamps (2001..2100).
fn utc(ms: u64) -> Option<String> {
    const FROM: u64 = 978_307_200_000; // 2001-01-01
    const TO: u64 = 4_102_444_800_000; // 2100-01-01
    if !(FROM..TO).contains(&ms) {
        return None;
    }
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    ))
}

/// The note of a field's value (see [`Field::note`]).
fn note(name: &str, value: &Node) -> Option<String> {
    let Node::Scalar(Value::Number(n)) = value else {
        return None;
    };
    let n = n.as_u64()?;
    if name.ends_with("Ms") {
        return utc(n);
    }
    if name.ends_with("Code") {
        let code = distsoc_protocol::codes::MessageCode::from_u8(u8::try_from(n).ok()?)?;
        return Some(format!("0x{n:02x} {}", code.name()));
    }
    None
}

/// Bytes held inside a `Data` field, decoded as the type they carry.
#[derive(Debug, Clone)]
pub(crate) struct Inner {
    /// The type name (`Post`, `SyncPost`, ...).
    pub(crate) ty: &'static str,
    /// What a receiver concludes about these bytes alone.
    pub(crate) verdict: Result<String, String>,
    pub(crate) value: Node,
}

/// Turns a nested `Data` field into its decoded form: `(struct type,
/// field) -> type name` of the bytes it carries.
pub(crate) type NestFn = fn(&str, &str, &[u8]) -> Option<Inner>;

/// Reads a dynamic value into a [`Node`], walking the whole value (the
/// reader's nesting and traversal limits bound it).
pub(crate) fn read(v: dynamic_value::Reader<'_>, nest: NestFn) -> Node {
    use dynamic_value::Reader as R;
    match v {
        R::Void => Node::Scalar(Value::Null),
        R::Bool(b) => Node::Scalar(json!(b)),
        R::Int8(x) => Node::Scalar(json!(x)),
        R::Int16(x) => Node::Scalar(json!(x)),
        R::Int32(x) => Node::Scalar(json!(x)),
        R::Int64(x) => Node::Scalar(json!(x)),
        R::UInt8(x) => Node::Scalar(json!(x)),
        R::UInt16(x) => Node::Scalar(json!(x)),
        R::UInt32(x) => Node::Scalar(json!(x)),
        R::UInt64(x) => Node::Scalar(json!(x)),
        R::Float32(x) => Node::Scalar(json!(x)),
        R::Float64(x) => Node::Scalar(json!(x)),
        R::Enum(e) => Node::Scalar(match e.get_enumerant() {
            Ok(Some(en)) => match en.get_proto().get_name().and_then(|n| Ok(n.to_str()?)) {
                Ok(n) => json!(n),
                Err(_) => json!(e.get_value()),
            },
            _ => json!(format!("unknown enumerant {}", e.get_value())),
        }),
        R::Text(t) => match t.to_str() {
            Ok(s) => Node::Text(s.to_string()),
            Err(e) => Node::Unreadable(format!("text is not UTF-8: {e}")),
        },
        R::Data(d) => Node::Bytes {
            bytes: d.to_vec(),
            inner: None,
        },
        R::Struct(s) => read_struct(s, nest),
        R::List(l) => {
            let mut items = Vec::with_capacity(l.len().min(4096) as usize);
            for item in l.iter() {
                items.push(match item {
                    Ok(v) => read(v, nest),
                    Err(e) => Node::Unreadable(e.to_string()),
                });
            }
            Node::List(items)
        }
        R::AnyPointer(_) => Node::Unreadable("an AnyPointer (not in distsoc schemas)".into()),
        R::Capability(_) => Node::Unreadable("a capability (never valid in distsoc)".into()),
    }
}

/// The struct's name as written in its schema file (`Post`, not
/// `content.capnp:Post`).
fn type_name(s: &capnp::dynamic_struct::Reader<'_>) -> String {
    let proto = s.get_schema().get_proto();
    let display = proto
        .get_display_name()
        .ok()
        .and_then(|n| n.to_str().ok())
        .unwrap_or("?");
    let prefix = proto.get_display_name_prefix_length() as usize;
    display.get(prefix..).unwrap_or(display).to_string()
}

fn read_struct(s: capnp::dynamic_struct::Reader<'_>, nest: NestFn) -> Node {
    let ty = type_name(&s);
    let schema = s.get_schema();
    let mut fields = Vec::new();
    let plain = match schema.get_non_union_fields() {
        Ok(p) => p,
        Err(e) => return Node::Unreadable(e.to_string()),
    };
    let active = match s.which() {
        Ok(a) => a,
        Err(e) => {
            fields.push(Field {
                name: "(union)".into(),
                arm: true,
                value: Node::Unreadable(e.to_string()),
                note: None,
            });
            None
        }
    };
    // Fields in ordinal order (the order of the schema file), with the
    // active union arm among them.
    let mut chosen: Vec<capnp::schema::Field> = plain.iter().collect();
    if let Some(a) = active {
        chosen.push(a);
    }
    chosen.sort_by_key(|f| f.get_proto().get_code_order());
    for f in chosen {
        let name = f
            .get_proto()
            .get_name()
            .ok()
            .and_then(|n| n.to_str().ok())
            .unwrap_or("?")
            .to_string();
        let arm =
            f.get_proto().get_discriminant_value() != capnp::schema_capnp::field::NO_DISCRIMINANT;
        let is_pointer = matches!(
            f.get_type().which(),
            TypeVariant::Text
                | TypeVariant::Data
                | TypeVariant::List(_)
                | TypeVariant::AnyPointer
                | TypeVariant::Capability
        ) || (matches!(f.get_type().which(), TypeVariant::Struct(_))
            && !matches!(
                f.get_proto().which(),
                Ok(capnp::schema_capnp::field::Group(_))
            ));
        let value = if is_pointer && !s.has(f).unwrap_or(true) {
            Node::Absent
        } else {
            match s.get(f) {
                Ok(v) => {
                    let mut n = read(v, nest);
                    if let Node::Bytes { bytes, inner } = &mut n {
                        *inner = nest(&ty, &name, bytes).map(Box::new);
                    }
                    n
                }
                Err(e) => Node::Unreadable(e.to_string()),
            }
        };
        let note = note(&name, &value);
        fields.push(Field {
            name,
            arm,
            value,
            note,
        });
    }
    Node::Struct { ty, fields }
}

/// The tree as indented text; `full`: every byte and character.
pub(crate) fn render(node: &Node, full: bool) -> String {
    let mut out = String::new();
    match node {
        Node::Struct { ty, fields } => {
            let _ = writeln!(out, "{ty}");
            render_fields(&mut out, fields, 1, full);
        }
        other => {
            let _ = writeln!(out, "{}", inline(other, full));
            render_children(&mut out, other, 1, full);
        }
    }
    out
}

fn pad(depth: usize) -> String {
    "  ".repeat(depth)
}

fn render_fields(out: &mut String, fields: &[Field], depth: usize, full: bool) {
    for f in fields {
        let mark = if f.arm { " (union)" } else { "" };
        let shown = inline(&f.value, full);
        // A group's type name is its field's name: nothing to add.
        let shown = if shown == f.name {
            String::new()
        } else {
            match &f.note {
                Some(n) => format!(" {shown} ({n})"),
                None => format!(" {shown}"),
            }
        };
        let _ = writeln!(out, "{}{}{mark}:{shown}", pad(depth), f.name);
        render_children(out, &f.value, depth + 1, full);
    }
}

/// The part of a value printed on its field's line.
fn inline(node: &Node, full: bool) -> String {
    match node {
        Node::Scalar(Value::Null) => "void".into(),
        Node::Scalar(Value::String(s)) => s.clone(),
        Node::Scalar(v) => v.to_string(),
        Node::Text(t) => {
            let n = t.len();
            let shown: String = if full {
                t.clone()
            } else {
                t.chars().take(SHOWN_CHARS).collect()
            };
            let cut = if shown.len() < n { "…" } else { "" };
            format!("{shown:?}{cut} ({n} bytes)")
        }
        Node::Bytes { bytes, inner } => {
            let n = bytes.len();
            let head = if full || n <= SHOWN_BYTES {
                hex::encode(bytes)
            } else {
                format!(
                    "{}… ({} more)",
                    hex::encode(&bytes[..SHOWN_BYTES]),
                    n - SHOWN_BYTES
                )
            };
            match inner {
                Some(i) => format!(
                    "{n} bytes, canonical {} ({})",
                    i.ty,
                    match &i.verdict {
                        Ok(v) => format!("valid: {v}"),
                        Err(e) => format!("REJECTED: {e}"),
                    }
                ),
                None if n == 0 => "0 bytes".into(),
                None => format!("{n} bytes {head}"),
            }
        }
        Node::Struct { ty, .. } => ty.clone(),
        Node::List(items) => format!(
            "{} item{}",
            items.len(),
            if items.len() == 1 { "" } else { "s" }
        ),
        Node::Absent => "(not set)".into(),
        Node::Unreadable(e) => format!("(unreadable: {e})"),
    }
}

fn render_children(out: &mut String, node: &Node, depth: usize, full: bool) {
    match node {
        Node::Struct { fields, .. } => render_fields(out, fields, depth, full),
        Node::List(items) => {
            for (i, item) in items.iter().enumerate() {
                let _ = writeln!(out, "{}[{i}]: {}", pad(depth), inline(item, full));
                render_children(out, item, depth + 1, full);
            }
        }
        Node::Bytes { inner: Some(i), .. } => {
            let _ = writeln!(out, "{}{}", pad(depth), inline(&i.value, full));
            render_children(out, &i.value, depth + 1, full);
        }
        _ => {}
    }
}

/// The tree as JSON: structs as objects (the union arm is one key among
/// the fields), lists as arrays, bytes as lowercase hex (an object with
/// the decoded value when they carry a known struct), absent pointers as
/// `null`.
pub(crate) fn to_json(node: &Node) -> Value {
    match node {
        Node::Scalar(v) => v.clone(),
        Node::Text(t) => json!(t),
        Node::Bytes { bytes, inner: None } => json!(hex::encode(bytes)),
        Node::Bytes {
            bytes,
            inner: Some(i),
        } => json!({
            "hex": hex::encode(bytes),
            "type": i.ty,
            "valid": i.verdict.is_ok(),
            "verdict": match &i.verdict { Ok(v) | Err(v) => v },
            "value": to_json(&i.value),
        }),
        Node::Struct { fields, .. } => {
            let mut m = Map::new();
            for f in fields {
                m.insert(f.name.clone(), to_json(&f.value));
            }
            Value::Object(m)
        }
        Node::List(items) => Value::Array(items.iter().map(to_json).collect()),
        Node::Absent => Value::Null,
        Node::Unreadable(e) => json!({ "unreadable": e }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::utc;

    #[test]
    fn utc_times() {
        assert_eq!(utc(1_700_000_000_000).unwrap(), "2023-11-14T22:13:20.000Z");
        assert_eq!(utc(951_782_400_123), None); // 2000: not plausible
        assert_eq!(utc(1_709_164_800_001).unwrap(), "2024-02-29T00:00:00.001Z");
        assert_eq!(utc(4_102_444_799_999).unwrap(), "2099-12-31T23:59:59.999Z");
        assert_eq!(utc(0), None);
    }
}
