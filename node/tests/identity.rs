//! Identity as a person uses it, through the `distsoc-node` binary: real
//! processes, real SQLite, QUIC on 127.0.0.1.
//!
//! * Personas: three personas post; a peer that pulls sees three distinct
//!   authors, each post's signature verified by the peer's store against
//!   that persona's posting key, none of them the network key but one.
//! * The round trip: an identity with a persona, follows and circles is
//!   exported, imported into a fresh directory, and comes back the same
//!   (NodeId, default posting id, follows, circles and their members); the
//!   restored node pulls its followed author's posts again, and a post it
//!   makes verifies as the old identity's.
//! * Every bundle error: wrong passphrase, a truncated file, a corrupted
//!   byte, a newer file format, a newer bundle inside, an existing
//!   identity, an existing export file, an empty passphrase. Each is a
//!   precise message and a failed exit, and leaves nothing written: the
//!   target directory stays absent or unchanged, with no staging directory
//!   beside it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use distsoc_protocol::messages::identity::{
    EncryptedIdentityBundle, IdentityBundle, KdfParams, BUNDLE_VERSION, ENCRYPTED_BUNDLE_VERSION,
};
use distsoc_protocol::sign::SigningKey;
use serde_json::Value;
use zeroize::Zeroizing;

mod common;
use common::{cli, cli_raw, init_quiet as init, Running, BIN};

const PASS: &str = "correct horse battery staple";

/// Runs one command; it must fail; its error message (`--json`: the
/// `error` object on stdout).
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = cli_raw(dir, args);
    let err = serde_json::from_slice::<Value>(&out.stdout)
        .map(|v| {
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();
    assert!(!out.status.success(), "distsoc-node {args:?} succeeded");
    err
}

fn pass_file(root: &Path, name: &str, text: &str) -> PathBuf {
    let p = root.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The node's own state as the CLI shows it.
fn state(dir: &Path) -> (Value, Value, Value, Vec<Value>, Value) {
    let id = cli(dir, &["id"]);
    let personas = cli(dir, &["persona", "list"]);
    let following = cli(dir, &["following"]);
    let circles = cli(dir, &["circle", "list"]);
    let members = circles
        .as_array()
        .unwrap()
        .iter()
        .map(|c| cli(dir, &["circle", "members", c["name"].as_str().unwrap()]))
        .collect();
    (id, following, circles, members, personas)
}

/// Names beside `dir` that an import may leave: there must be none.
fn staging_left(dir: &Path) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!(".{name}.")))
        .collect()
}

#[test]
fn export_then_import_restores_the_identity_and_its_social_state() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let author = init(r, "author");
    cli(&author, &["post", "written before the move"]);
    let author_run = Running::start(&author);
    let author_id = cli(&author, &["id"])["node_id"]
        .as_str()
        .unwrap()
        .to_string();

    let old = init(r, "old-machine");
    cli(&old, &["profile", "set", "--name", "Mover"]);
    cli(&old, &["connect", &author_run.1]);
    cli(&old, &["follow", &author_id, "--offline"]);
    let other = hex::encode(SigningKey::from_seed(&[7; 32]).public());
    cli(&old, &["follow", &other, "--offline"]);
    cli(&old, &["circle", "create", "close friends"]);
    cli(&old, &["circle", "add", "close friends", &author_id]);
    cli(&old, &["circle", "add", "close friends", &other]);
    cli(&old, &["circle", "create", "empty"]);
    cli(&old, &["persona", "create", "work"]);
    cli(&old, &["persona", "create", "art"]);
    cli(&old, &["persona", "use", "art"]);
    let before = state(&old);
    assert_eq!(before.4.as_array().unwrap().len(), 3);
    assert_eq!(before.1.as_array().unwrap().len(), 2);

    let pass = pass_file(r, "pass", &format!("{PASS}\n"));
    let bundle = r.join("me.distsoc");
    let out = cli(
        &old,
        &[
            "export",
            "--out",
            bundle.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
    );
    assert_eq!(out["follows"], 2);
    assert_eq!(out["posting_identities"], 3);
    assert_eq!(out["circles"], 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&bundle).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the bundle is private");
    }
    // The file holds no secret in the clear.
    let bytes = std::fs::read(&bundle).unwrap();
    let seed_hex = std::fs::read_to_string(old.join("node.key")).unwrap();
    let seed = hex::decode(seed_hex.trim()).unwrap();
    assert!(!bytes.windows(32).any(|w| w == seed.as_slice()));

    // A new machine: only the bundle and the passphrase (a CRLF line this time).
    let pass_crlf = pass_file(r, "pass-crlf", &format!("{PASS}\r\n"));
    let new = r.join("new-machine");
    let imported = cli(
        &new,
        &[
            "import",
            bundle.to_str().unwrap(),
            "--passphrase-file",
            pass_crlf.to_str().unwrap(),
        ],
    );
    assert_eq!(imported["node_id"], before.0["node_id"]);
    assert!(imported["set_aside"].is_null());
    assert_eq!(
        state(&new),
        before,
        "identity, follows and circles restored"
    );
    assert!(staging_left(&new).is_empty());

    // The restored node pulls the followed author's posts again and posts
    // as the same identity.
    assert!(cli(&new, &["feed"]).as_array().unwrap().is_empty());
    cli(&new, &["connect", &author_run.1]);
    let feed = cli(&new, &["feed"]);
    assert!(
        feed.as_array()
            .unwrap()
            .iter()
            .any(|i| i["text"] == "written before the move"),
        "{feed}"
    );
    let post = cli(&new, &["post", "written after the move"]);
    assert!(post["post_id"].is_string());
    let mine = cli(&new, &["feed"]);
    let item = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["text"] == "written after the move")
        .unwrap()
        .clone();
    let art = before
        .4
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "art")
        .unwrap();
    assert_eq!(
        item["author"], art["posting_id"],
        "the persona in use, restored"
    );

    // A directory a node is serving is never replaced under it.
    let err = fails(
        &author,
        &[
            "import",
            bundle.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
            "--replace",
        ],
    );
    assert!(err.contains("in use by another process"), "{err}");
    assert_eq!(
        cli(&author, &["id"])["node_id"].as_str().unwrap(),
        author_id
    );
    assert!(staging_left(&author).is_empty());
}

#[test]
fn every_bundle_error_is_precise_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let home = init(r, "home");
    cli(&home, &["follow", &hex::encode([9u8; 32]), "--offline"]);
    let pass = pass_file(r, "pass", PASS);
    let bundle = r.join("b.distsoc");
    let p = pass.to_str().unwrap();
    cli(
        &home,
        &[
            "export",
            "--out",
            bundle.to_str().unwrap(),
            "--passphrase-file",
            p,
        ],
    );
    let good = std::fs::read(&bundle).unwrap();

    // The export never overwrites.
    let err = fails(
        &home,
        &[
            "export",
            "--out",
            bundle.to_str().unwrap(),
            "--passphrase-file",
            p,
        ],
    );
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&bundle).unwrap(), good);
    // An empty passphrase protects nothing.
    let empty = pass_file(r, "empty", "\n");
    let err = fails(
        &home,
        &[
            "export",
            "--out",
            r.join("x").to_str().unwrap(),
            "--passphrase-file",
            empty.to_str().unwrap(),
        ],
    );
    assert!(err.contains("passphrase is empty"), "{err}");
    assert!(!r.join("x").exists());

    let target = r.join("target");
    let import = |file: &Path, pass: &Path| {
        fails(
            &target,
            &[
                "import",
                file.to_str().unwrap(),
                "--passphrase-file",
                pass.to_str().unwrap(),
            ],
        )
    };
    let nothing_written = |what: &str| {
        assert!(!target.exists(), "{what}: the target was created");
        assert!(staging_left(&target).is_empty(), "{what}: staging left");
    };

    let wrong = pass_file(r, "wrong", "Correct horse battery staple");
    let err = import(&bundle, &wrong);
    assert!(err.contains("wrong passphrase"), "{err}");
    nothing_written("wrong passphrase");

    let truncated = r.join("truncated");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let err = import(&truncated, &pass);
    assert!(err.contains("damaged or truncated"), "{err}");
    nothing_written("truncated");

    // A flipped ciphertext byte fails authentication like a wrong passphrase.
    let mut bad = good.clone();
    let at = bad.len() - 20;
    bad[at] ^= 0x40;
    let corrupt = r.join("corrupt");
    std::fs::write(&corrupt, &bad).unwrap();
    let err = import(&corrupt, &pass);
    assert!(
        err.contains("wrong passphrase") && err.contains("altered"),
        "{err}"
    );
    nothing_written("corrupted");

    let not_a_bundle = r.join("notes.txt");
    std::fs::write(&not_a_bundle, "dear diary").unwrap();
    let err = import(&not_a_bundle, &pass);
    assert!(err.contains("not a distsoc identity bundle"), "{err}");
    nothing_written("not a bundle");

    // A newer file format, and a newer bundle inside a current file.
    let mut sealed = EncryptedIdentityBundle::from_file_bytes(&good).unwrap();
    sealed.version = ENCRYPTED_BUNDLE_VERSION + 1;
    let newer_file = r.join("newer-file");
    std::fs::write(&newer_file, sealed.to_file_bytes()).unwrap();
    let err = import(&newer_file, &pass);
    assert!(
        err.contains("newer distsoc") && err.contains("file format version 2"),
        "{err}"
    );
    nothing_written("newer file format");

    let mut inner = IdentityBundle::new(Zeroizing::new([3; 32]), 1);
    inner.version = BUNDLE_VERSION + 1;
    let sealed = EncryptedIdentityBundle::seal(
        &inner,
        PASS.as_bytes(),
        KdfParams {
            memory_kib: 8192,
            iterations: 1,
            ..KdfParams::recommended([1; 16])
        },
        [2; 12],
    )
    .unwrap();
    let newer_bundle = r.join("newer-bundle");
    std::fs::write(&newer_bundle, sealed.to_file_bytes()).unwrap();
    let err = import(&newer_bundle, &pass);
    assert!(
        err.contains("newer distsoc") && err.contains("bundle version 2"),
        "{err}"
    );
    nothing_written("newer bundle");

    // An existing identity is refused and left as it was.
    let other = init(r, "other");
    let before = std::fs::read(other.join("node.key")).unwrap();
    let err = fails(
        &other,
        &["import", bundle.to_str().unwrap(), "--passphrase-file", p],
    );
    assert!(
        err.contains("already holds an identity") && err.contains("--replace"),
        "{err}"
    );
    assert_eq!(std::fs::read(other.join("node.key")).unwrap(), before);
    assert!(staging_left(&other).is_empty());

    // With --replace it is set aside, not deleted.
    let out = cli(
        &other,
        &[
            "import",
            bundle.to_str().unwrap(),
            "--passphrase-file",
            p,
            "--replace",
        ],
    );
    let aside = PathBuf::from(out["set_aside"].as_str().unwrap());
    assert_eq!(std::fs::read(aside.join("node.key")).unwrap(), before);
    assert_eq!(cli(&other, &["id"]), cli(&home, &["id"]));
    assert_eq!(cli(&other, &["following"]), cli(&home, &["following"]));
    assert!(staging_left(&other).is_empty());
}

#[test]
fn three_personas_are_three_authors_to_a_peer() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let author = init(r, "author");
    let reader = init(r, "reader");
    let node_id = cli(&author, &["id"])["node_id"]
        .as_str()
        .unwrap()
        .to_string();
    cli(&author, &["persona", "create", "work"]);
    cli(&author, &["persona", "create", "art"]);
    // A name is unique; the persona in use cannot be deleted.
    assert!(fails(&author, &["persona", "create", "work"]).contains("exists"));
    assert!(fails(&author, &["persona", "delete", "default"]).contains("default persona"));
    cli(&author, &["post", "as the default"]);
    cli(&author, &["post", "--as", "work", "as work"]);
    cli(&author, &["persona", "use", "art"]);
    cli(&author, &["post", "as art"]);
    assert!(fails(&author, &["persona", "delete", "art"]).contains("default persona"));
    // Nor the node's own key, even when another persona is in use.
    assert!(fails(&author, &["persona", "delete", "default"]).contains("cannot be deleted"));
    let personas = cli(&author, &["persona", "list"]);
    let id_of = |name: &str| {
        personas
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["posting_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(id_of("default"), node_id);

    // The reader follows each persona: to it they are three people.
    for name in ["default", "work", "art"] {
        cli(&reader, &["follow", &id_of(name), "--offline"]);
    }
    let running = Running::start(&author);
    cli(&reader, &["connect", &running.1]);
    let feed = cli(&reader, &["feed"]);
    let by = |text: &str| {
        feed.as_array()
            .unwrap()
            .iter()
            .find(|i| i["text"] == text)
            .unwrap_or_else(|| panic!("{text:?} not in {feed}"))["author"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(by("as the default"), id_of("default"));
    assert_eq!(by("as work"), id_of("work"));
    assert_eq!(by("as art"), id_of("art"));
    let mut authors = vec![by("as the default"), by("as work"), by("as art")];
    authors.sort();
    authors.dedup();
    assert_eq!(authors.len(), 3);

    // A deleted persona's key is gone: nobody posts as it again.
    cli(&author, &["persona", "use", "default"]);
    cli(&author, &["persona", "delete", "work"]);
    assert!(fails(&author, &["post", "--as", "work", "again"]).contains("no persona named"));
}

#[test]
fn errors_are_one_line_or_json_and_profile_set_keeps_what_is_not_given() {
    let root = tempfile::tempdir().unwrap();
    let dir = init(root.path(), "n");
    // --json: the error is a JSON object on stdout, and the exit fails.
    let out = cli_raw(&dir, &["persona", "use", "nope"]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "invalidInput");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no persona named \"nope\""));
    // Without: one line on stderr, no backtrace unless asked.
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&dir)
        .args(["persona", "use", "nope"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: no persona named"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Following yourself (or a persona of yours) is refused.
    let me = cli(&dir, &["id"])["node_id"].as_str().unwrap().to_string();
    assert!(fails(&dir, &["follow", &me, "--offline"]).contains("is you"));

    // profile set: what is not given keeps its value.
    assert!(fails(&dir, &["profile", "set", "--bio", "x"]).contains("--name"));
    let anchor = hex::encode([5u8; 32]);
    cli(
        &dir,
        &[
            "profile", "set", "--name", "Ann", "--bio", "b1", "--anchor", &anchor,
        ],
    );
    cli(&dir, &["profile", "set", "--name", "Anna"]);
    let p = cli(&dir, &["profile", "show"]);
    assert_eq!(p["display_name"], "Anna");
    assert_eq!(p["bio"], "b1");
    assert_eq!(p["anchors"], serde_json::json!([anchor]));
    cli(&dir, &["profile", "set", "--no-anchors"]);
    let p = cli(&dir, &["profile", "show"]);
    assert_eq!(
        (p["display_name"].as_str(), p["bio"].as_str()),
        (Some("Anna"), Some("b1"))
    );
    assert_eq!(p["anchors"], serde_json::json!([]));
}
