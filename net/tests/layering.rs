//! The layering of the workspace (ARCHITECTURE.md, "Bird's-eye view"):
//! `distsoc-net` has no database and does not depend on the user node, and
//! the anchor and the conformance suite take their runtime from
//! `distsoc-net`, not from `distsoc-node` (only their tests that run a user
//! node may use it, as a dev-dependency).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

/// The dependency names of one `[section]` of a Cargo.toml (lines
/// `name = ...` or `name.workspace = true` up to the next section).
fn deps(manifest: &str, section: &str) -> Vec<String> {
    let mut in_section = false;
    let mut names = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == format!("[{section}]");
            continue;
        }
        if !in_section || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
        names.push(name.to_string());
    }
    names
}

fn manifest(crate_dir: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("Cargo.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn net_has_no_database_and_no_user_node() {
    let net = manifest("net");
    // The parser sees the sections (a renamed section would pass vacuously).
    assert!(deps(&net, "dependencies").contains(&"distsoc-protocol".to_string()));
    for section in ["dependencies", "dev-dependencies"] {
        let names = deps(&net, section);
        for banned in ["rusqlite", "distsoc-node", "distsoc-anchor"] {
            assert!(
                !names.iter().any(|n| n == banned),
                "net/Cargo.toml [{section}] depends on {banned}"
            );
        }
    }
}

#[test]
fn anchor_and_conformance_run_on_net_not_on_the_user_node() {
    for crate_dir in ["anchor", "conformance"] {
        let m = manifest(crate_dir);
        let normal = deps(&m, "dependencies");
        assert!(
            normal.iter().any(|n| n == "distsoc-net"),
            "{crate_dir} does not depend on distsoc-net"
        );
        assert!(
            !normal.iter().any(|n| n == "distsoc-node"),
            "{crate_dir}/Cargo.toml [dependencies] depends on distsoc-node"
        );
    }
}
