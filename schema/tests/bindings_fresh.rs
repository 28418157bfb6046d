#![allow(clippy::unwrap_used, clippy::panic)]
//! Fails when the committed bindings in `schema/generated/` are stale: their
//! header hash must match the schema sources, and — where `capnp` is installed
//! (always in CI) — their bytes must equal a fresh generation.

#[path = "../codegen.rs"]
#[allow(unreachable_pub, dead_code)]
mod codegen;

use std::path::PathBuf;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema")
}

#[test]
fn committed_bindings_match_schema_hash() {
    let dir = schema_dir();
    let files = codegen::schema_files(&dir).unwrap();
    assert!(
        files.len() >= 8,
        "expected the 8 schema files, found {files:?}"
    );
    let hash = codegen::schema_hash(&files).unwrap();
    assert!(
        codegen::committed_is_fresh(&files, &dir.join("generated"), &hash),
        "schema/generated/ is stale: build with capnproto installed and commit the result"
    );
}

#[test]
fn committed_bindings_equal_fresh_generation() {
    if !codegen::capnp_available() {
        if std::env::var_os("CI").is_some() {
            panic!("capnp must be installed in CI to check the committed bindings");
        }
        eprintln!("capnp not installed: byte comparison skipped (hash check still ran)");
        return;
    }
    let dir = schema_dir();
    let files = codegen::schema_files(&dir).unwrap();
    let hash = codegen::schema_hash(&files).unwrap();
    let scratch = std::env::temp_dir().join(format!("distsoc-capnp-{}", std::process::id()));
    let fresh = codegen::generate(&dir, &files, &scratch, &hash).unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    for (name, body) in fresh {
        let committed = std::fs::read_to_string(dir.join("generated").join(&name)).unwrap();
        assert!(
            committed == body,
            "schema/generated/{name} differs from a fresh generation"
        );
    }
}
