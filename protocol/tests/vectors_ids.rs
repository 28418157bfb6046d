//! Checks every record of `conformance/vectors/ids.json` against `protocol::ids`.
// Reads its vector files: the sans-IO lint (protocol/clippy.toml) does not apply to tests.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use distsoc_protocol::ids::*;
use serde_json::Value;

fn load() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/vectors/ids.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("ids.json")).expect("json")
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("missing {k}"))
}

fn parse_id(kind: &str, text: &str) -> Result<(Vec<u8>, String), IdError> {
    macro_rules! p {
        ($t:ty) => {
            text.parse::<$t>()
                .map(|i| (i.as_bytes().to_vec(), i.to_string()))
        };
    }
    match kind {
        "NodeId" => p!(NodeId),
        "PostingId" => p!(PostingId),
        "PostId" => p!(PostId),
        "ChannelId" => p!(ChannelId),
        "WormId" => p!(WormId),
        other => panic!("unknown kind {other}"),
    }
}

fn id_error_name(e: &IdError) -> &'static str {
    match e {
        IdError::WrongLength { .. } | IdError::WrongHexLength { .. } => "wrongLength",
        IdError::InvalidHex { .. } => "invalidHex",
    }
}

fn cs_error_name(e: &ConnectStringError) -> &'static str {
    match e {
        ConnectStringError::MissingAt => "missingAt",
        ConnectStringError::NodeId(_) => "nodeId",
        ConnectStringError::MissingPort => "missingPort",
        ConnectStringError::BadPort(_) => "badPort",
        ConnectStringError::BadHost(_) => "badHost",
    }
}

#[test]
fn every_ids_record() {
    let file = load();
    let records = file["records"].as_array().unwrap();
    let mut checked = 0;
    for r in records {
        let id = s(r, "id");
        let input = &r["input"];
        let expected = &r["expected"];
        let valid = r["valid"].as_bool().unwrap();
        if r["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "connect-string")
        {
            let got = s(input, "text").parse::<ConnectString>();
            if valid {
                let c = got.unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(c.node_id.to_string(), s(expected, "node_id"), "{id}");
                assert_eq!(c.port as u64, expected["port"].as_u64().unwrap(), "{id}");
                match (&c.host, s(expected, "host_kind")) {
                    (Host::Ip(ip), "ip") => assert_eq!(ip.to_string(), s(expected, "host"), "{id}"),
                    (Host::Name(n), "name") => assert_eq!(n, s(expected, "host"), "{id}"),
                    (h, k) => panic!("{id}: host {h:?} is not of kind {k}"),
                }
            } else {
                let e = got
                    .err()
                    .unwrap_or_else(|| panic!("{id}: accepted an invalid connect string"));
                assert_eq!(cs_error_name(&e), s(expected, "error"), "{id}");
            }
        } else {
            let got = parse_id(s(input, "kind"), s(input, "text"));
            if valid {
                let (bytes, text) = got.unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(hex::encode(bytes), s(expected, "bytes"), "{id}");
                assert_eq!(text, s(expected, "text"), "{id}");
            } else {
                let e = got
                    .err()
                    .unwrap_or_else(|| panic!("{id}: accepted an invalid id"));
                assert_eq!(id_error_name(&e), s(expected, "error"), "{id}");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, records.len());
    assert!(checked >= 30);
}
