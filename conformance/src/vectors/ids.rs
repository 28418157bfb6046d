//! `ids.json`: text forms of ids and connect strings.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Record, VectorFile, FORMAT_VERSION};

fn rec(
    id: String,
    comment: &str,
    tags: &[&str],
    valid: bool,
    input: Value,
    expected: Value,
) -> Record {
    let to_map = |v: Value| -> BTreeMap<String, Value> {
        match v {
            Value::Object(m) => m.into_iter().collect(),
            _ => BTreeMap::new(),
        }
    };
    Record {
        id,
        comment: comment.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        valid,
        input: to_map(input),
        expected: to_map(expected),
    }
}

/// Generates `ids.json`.
pub(super) fn generate() -> VectorFile {
    let mut records = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("ids-{n:03}")
    };
    let node = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";

    // Ids: kind, text, valid, expected bytes or error.
    let id_cases: &[(&str, String, &str)] = &[
        ("NodeId", node.to_string(), "lowercase hex of 32 bytes"),
        (
            "NodeId",
            node.to_uppercase(),
            "uppercase hex is accepted; the canonical text form is lowercase",
        ),
        (
            "NodeId",
            "00".repeat(32),
            "all-zero bytes parse as an id (key validity is checked elsewhere)",
        ),
        (
            "PostingId",
            "ff".repeat(32),
            "posting ids use the same text form",
        ),
        (
            "PostId",
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262".to_string(),
            "BLAKE3-256 of the empty string, as a PostId text form",
        ),
        (
            "ChannelId",
            "00112233445566778899aabbccddeeff".to_string(),
            "channel ids are 16 bytes",
        ),
        ("WormId", "0f".repeat(16), "worm ids are 16 bytes"),
    ];
    for (kind, text, comment) in id_cases {
        records.push(rec(
            next(),
            comment,
            &["id", "text"],
            true,
            json!({"kind": kind, "text": text}),
            json!({"bytes": text.to_lowercase(), "text": text.to_lowercase()}),
        ));
    }
    let bad_ids: &[(&str, String, &str, &str)] = &[
        ("NodeId", node[..62].to_string(), "31 bytes", "wrongLength"),
        ("NodeId", format!("{node}00"), "33 bytes", "wrongLength"),
        ("NodeId", String::new(), "empty", "wrongLength"),
        (
            "NodeId",
            format!("{}zz", &node[..62]),
            "non-hex digits",
            "invalidHex",
        ),
        (
            "NodeId",
            node[..63].to_string(),
            "odd number of hex digits (63)",
            "wrongLength",
        ),
        (
            "NodeId",
            format!("0x{}", &node[..62]),
            "0x prefix is not part of the form",
            "invalidHex",
        ),
        (
            "ChannelId",
            "00".repeat(32),
            "a 32-byte value is not a channel id",
            "wrongLength",
        ),
        ("ChannelId", "00".repeat(15), "15 bytes", "wrongLength"),
        (
            "PostId",
            format!(" {}", &node[..63]),
            "leading space",
            "invalidHex",
        ),
    ];
    for (kind, text, comment, err) in bad_ids {
        records.push(rec(
            next(),
            comment,
            &["id", "text", "invalid"],
            false,
            json!({"kind": kind, "text": text}),
            json!({"error": err}),
        ));
    }

    // Connect strings.
    let good: &[(String, &str, &str, u16, &str)] = &[
        (
            format!("{node}@127.0.0.1:4433"),
            "IPv4 literal",
            "127.0.0.1",
            4433,
            "ip",
        ),
        (
            format!("{node}@[::1]:4433"),
            "IPv6 literal in brackets",
            "::1",
            4433,
            "ip",
        ),
        (
            format!("{node}@[2001:db8::7]:1"),
            "IPv6, port 1",
            "2001:db8::7",
            1,
            "ip",
        ),
        (
            format!("{node}@anchor.example.org:443"),
            "DNS name",
            "anchor.example.org",
            443,
            "name",
        ),
        (
            format!("{node}@Anchor.Example.ORG:443"),
            "DNS names are case-insensitive and normalised to lowercase",
            "anchor.example.org",
            443,
            "name",
        ),
        (
            format!("{node}@localhost:65535"),
            "single-label name, highest port",
            "localhost",
            65535,
            "name",
        ),
    ];
    for (text, comment, host, port, host_kind) in good {
        records.push(rec(
            next(),
            comment,
            &["connect-string"],
            true,
            json!({"text": text}),
            json!({"node_id": node, "host": host, "host_kind": host_kind, "port": port}),
        ));
    }
    let bad: &[(String, &str, &str)] = &[
        (format!("{node}127.0.0.1:4433"), "missing @", "missingAt"),
        (format!("{node}@127.0.0.1"), "missing port", "missingPort"),
        (format!("{node}@127.0.0.1:0"), "port 0", "badPort"),
        (
            format!("{node}@127.0.0.1:65536"),
            "port out of range",
            "badPort",
        ),
        (
            format!("{node}@127.0.0.1:http"),
            "port not a number",
            "badPort",
        ),
        (
            format!("{node}@::1:4433"),
            "IPv6 literal without brackets",
            "badHost",
        ),
        (format!("{node}@:4433"), "empty host", "badHost"),
        (
            format!("{node}@bad_host:4433"),
            "underscore is not allowed in a DNS name",
            "badHost",
        ),
        (
            format!("{node}@-bad.example:4433"),
            "label starting with '-'",
            "badHost",
        ),
        (
            format!("{}@127.0.0.1:4433", &node[..62]),
            "short NodeId",
            "nodeId",
        ),
        ("@127.0.0.1:4433".to_string(), "empty NodeId", "nodeId"),
    ];
    for (text, comment, err) in bad {
        records.push(rec(
            next(),
            comment,
            &["connect-string", "invalid"],
            false,
            json!({"text": text}),
            json!({"error": err}),
        ));
    }

    // Edges of the grammar (schema/README.md §1.1), appended so earlier
    // record ids stay stable.
    // Ok((host, port, host kind)) or Err(error name).
    type Want = Result<(&'static str, u16, &'static str), &'static str>;
    let more: &[(String, &str, Want)] = &[
        (
            format!("{node}@[::ffff:192.0.2.1]:4433"),
            "IPv4-mapped IPv6 literal in brackets",
            Ok(("::ffff:192.0.2.1", 4433, "ip")),
        ),
        (
            format!("{node}@[2001:DB8::7]:443"),
            "IPv6 hex digits are case-insensitive; the host is given in RFC 5952 form",
            Ok(("2001:db8::7", 443, "ip")),
        ),
        (
            format!("{node}@127.0.0.1:0443"),
            "leading zeros in the port are allowed (at most 5 digits)",
            Ok(("127.0.0.1", 443, "ip")),
        ),
        (
            format!("{node}@127.0.0.1:+443"),
            "a sign is not a digit",
            Err("badPort"),
        ),
        (
            format!("{node}@127.0.0.1:000443"),
            "more than 5 port digits",
            Err("badPort"),
        ),
        (
            format!("{node}@127.0.0.1:4433/"),
            "nothing may follow the port",
            Err("badPort"),
        ),
        (
            format!("{node}@256.1.1.1:4433"),
            "not an IPv4 address, and a name's last label is not all digits",
            Err("badHost"),
        ),
        (
            format!("{node}@[fe80::1%eth0]:4433"),
            "IPv6 zone identifiers are not allowed",
            Err("badHost"),
        ),
        (
            format!("{node}@[127.0.0.1]:4433"),
            "only IPv6 literals go in brackets",
            Err("badHost"),
        ),
        (
            format!("{node}@[::1]4433"),
            "the port follows the closing bracket after ':'",
            Err("missingPort"),
        ),
        (
            format!("{node}@example.org.:4433"),
            "no trailing dot",
            Err("badHost"),
        ),
        (format!("{node}@a..b:4433"), "empty label", Err("badHost")),
        (
            format!("{node}@{}.example:4433", "a".repeat(64)),
            "label longer than 63 bytes",
            Err("badHost"),
        ),
        (
            format!("{node} @127.0.0.1:4433"),
            "no spaces anywhere",
            Err("nodeId"),
        ),
    ];
    for (text, comment, want) in more {
        let (valid, expected, tags): (bool, _, &[&str]) = match want {
            Ok((host, port, host_kind)) => (
                true,
                json!({"node_id": node, "host": host, "host_kind": host_kind, "port": port}),
                &["connect-string"],
            ),
            Err(err) => (false, json!({"error": err}), &["connect-string", "invalid"]),
        };
        records.push(rec(
            next(),
            comment,
            tags,
            valid,
            json!({"text": text}),
            expected,
        ));
    }

    VectorFile {
        file: "ids.json".into(),
        description: "Text forms of ids (lowercase hex of the exact byte length; uppercase accepted) and connect strings `NodeId@host:port` (grammar in schema/README.md §1.1: IPv6 in brackets, DNS names lowercased, port 1 to 5 digits with value 1..=65535). For ids: parse `input.text` as `input.kind`; valid records give `expected.bytes` and the canonical `expected.text`. For connect strings: valid records give node_id, host, host_kind (ip|name) and port. Invalid records name the error: wrongLength, invalidHex, missingAt, missingPort, badPort, badHost, nodeId.".into(),
        format_version: FORMAT_VERSION,
        records,
    }
}
