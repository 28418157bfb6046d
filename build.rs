//! Compiles every `schema/*.capnp` into the committed bindings in
//! `schema/generated/` when (and only when) the schema sources changed.
//! See `schema/codegen.rs` and `schema/README.md`.

#[path = "schema/codegen.rs"]
#[allow(unreachable_pub, dead_code)]
mod codegen;

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let schema_dir = root.join("schema");
    let generated_dir = schema_dir.join("generated");
    println!("cargo:rerun-if-changed=schema");
    println!("cargo:rerun-if-changed=schema/generated");
    println!("cargo:rerun-if-changed=schema/codegen.rs");

    let files = match codegen::schema_files(&schema_dir) {
        Ok(f) => f,
        Err(e) => fail(&format!("cannot list schema/*.capnp: {e}")),
    };
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let hash = match codegen::schema_hash(&files) {
        Ok(h) => h,
        Err(e) => fail(&format!("cannot read schema sources: {e}")),
    };
    if codegen::committed_is_fresh(&files, &generated_dir, &hash) {
        return;
    }
    if !codegen::capnp_available() {
        fail(
            "the Cap'n Proto schema in schema/*.capnp changed, but the committed bindings in \
             schema/generated/ were made from another version, and the `capnp` compiler is not \
             installed to regenerate them.\n  Install it (Debian/Ubuntu: `sudo apt-get install \
             capnproto`; macOS: `brew install capnp`) and build again, then commit \
             schema/generated/.",
        );
    }
    let scratch = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| "target/capnp".into()))
        .join("capnp");
    let generated = match codegen::generate(&schema_dir, &files, &scratch, &hash) {
        Ok(g) => g,
        Err(e) => fail(&e),
    };
    if let Err(e) = std::fs::create_dir_all(&generated_dir) {
        fail(&format!("cannot create schema/generated: {e}"));
    }
    for (name, body) in generated {
        if let Err(e) = std::fs::write(generated_dir.join(&name), body) {
            fail(&format!("cannot write schema/generated/{name}: {e}"));
        }
    }
    println!(
        "cargo:warning=regenerated schema/generated/ from schema/*.capnp (hash {}); commit it",
        &hash[..16]
    );
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}
