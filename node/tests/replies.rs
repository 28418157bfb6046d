//! Replies through the `distsoc-node` binary (real processes, real SQLite,
//! QUIC on 127.0.0.1): `reply` without `--as` is signed by the persona that
//! decrypted the post (the one a sealed post was sealed to; the one that
//! follows a public post's author), a reply to a sealed post is sealed to
//! the post's readers, and the original author pulls the replies and sees
//! them linked to its posts (`reply_to`, and under the post in the feed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;
use common::{cli, cli_raw, init_quiet as init, Running, BIN};

fn id_of(dir: &Path) -> String {
    cli(dir, &["id"])["node_id"].as_str().unwrap().to_string()
}

fn persona_id(dir: &Path, name: &str) -> String {
    cli(dir, &["persona", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no persona {name}"))["posting_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn item<'a>(feed: &'a Value, text: &str) -> &'a Value {
    feed.as_array()
        .unwrap()
        .iter()
        .find(|i| i["text"] == text)
        .unwrap_or_else(|| panic!("{text:?} not in {feed}"))
}

fn human(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn replies_default_to_the_persona_that_decrypted_and_reach_the_author() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let (ann, me, eve) = (init(r, "ann"), init(r, "me"), init(r, "eve"));
    let ann_id = id_of(&ann);
    cli(&me, &["persona", "create", "work"]);
    cli(&me, &["persona", "create", "fan"]);
    let (work, fan) = (persona_id(&me, "work"), persona_id(&me, "fan"));
    let eve_id = id_of(&eve);

    // Ann seals a post to "work" (and Eve), and posts in public; "fan"
    // follows Ann.
    let sealed = cli(
        &ann,
        &[
            "post",
            "--to",
            &format!("{work},{eve_id}"),
            "sealed to work",
        ],
    )["post_id"]
        .as_str()
        .unwrap()
        .to_string();
    let public = cli(&ann, &["post", "hello world"])["post_id"]
        .as_str()
        .unwrap()
        .to_string();
    cli(&me, &["follow", &ann_id, "--as", "fan", "--offline"]);
    {
        let running = Running::start(&ann);
        cli(&me, &["connect", &running.1]);
    }

    // A reply to a post not held here is refused, naming the post.
    let missing = "ab".repeat(32);
    let out = cli_raw(&me, &["reply", &missing, "into the void"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not held here"));

    // Sealed: the persona whose key opened it replies, sealed to the same
    // readers (Ann, Eve, work).
    let reply = cli(&me, &["reply", &sealed, "answer from work"]);
    assert_eq!(reply["author"], work.as_str(), "{reply}");
    assert_eq!(reply["persona"], "work");
    assert_eq!(reply["persona_reason"], "decrypted");
    assert_eq!(reply["reply_to"], sealed.as_str());
    assert_eq!(reply["encrypted"], true);
    assert_eq!(reply["recipients"], 3, "{reply}");
    // Public, followed by fan: fan replies, in public.
    let reply2 = cli(&me, &["reply", &public, "answer from fan"]);
    assert_eq!(reply2["author"], fan.as_str(), "{reply2}");
    assert_eq!(reply2["persona_reason"], "follows");
    assert_eq!(reply2["encrypted"], false);
    // `--as` overrides; a reply to one's own reply is by its author.
    let chosen = cli(&me, &["reply", &public, "as default", "--as", "default"]);
    assert_eq!(chosen["author"], id_of(&me).as_str());
    assert_eq!(chosen["persona_reason"], "chosen");
    let own = cli(
        &me,
        &["reply", reply2["post_id"].as_str().unwrap(), "fan again"],
    );
    assert_eq!(own["author"], fan.as_str());
    assert_eq!(own["persona_reason"], "author");

    // The replier's feed links each reply to its post.
    let feed = cli(&me, &["feed"]);
    assert_eq!(item(&feed, "answer from work")["reply_to"], sealed.as_str());
    assert_eq!(item(&feed, "hello world")["reply_to"], Value::Null);

    // Ann pulls: the sealed reply by recipient match, the public one
    // because she follows fan.
    cli(&ann, &["follow", &fan, "--offline"]);
    {
        let running = Running::start(&me);
        cli(&ann, &["connect", &running.1]);
        cli(&eve, &["connect", &running.1]);
    }
    let feed = cli(&ann, &["feed"]);
    let got = item(&feed, "answer from work");
    assert_eq!(got["reply_to"], sealed.as_str(), "{feed}");
    assert_eq!(got["author"], work.as_str());
    assert_eq!(got["encrypted"], true);
    let got = item(&feed, "answer from fan");
    assert_eq!(got["reply_to"], public.as_str());
    assert_eq!(got["author"], fan.as_str());
    // In the text feed each reply sits under its post, indented.
    let shown = human(&ann, &["feed"]);
    let lines: Vec<&str> = shown.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not in\n{shown}"))
    };
    assert_eq!(at("answer from work"), at("sealed to work") + 1, "{shown}");
    assert!(lines[at("answer from work")].starts_with("    "), "{shown}");
    assert!(lines[at("answer from work")].contains("↳"), "{shown}");
    assert_eq!(at("answer from fan"), at("hello world") + 1, "{shown}");
    assert!(lines[at("fan again")].starts_with("        "), "{shown}");

    // Eve, another reader of the sealed post, reads the sealed reply too.
    let eve_feed = cli(&eve, &["feed"]);
    assert_eq!(
        item(&eve_feed, "answer from work")["reply_to"],
        sealed.as_str()
    );
}
