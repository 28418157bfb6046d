//! Follows belong to personas, through the `distsoc-node` binary (real
//! processes, real SQLite, QUIC on 127.0.0.1):
//!
//! * Two personas follow different authors (and one the same): the merged
//!   feed shows both and says whose follow brought each item;
//!   `feed --persona` isolates each; `unfollow --as` and deleting a persona
//!   take only that persona's follows; export → import keeps every follow
//!   with its persona.
//! * A post to a circle without `--as` goes out as the persona last used
//!   for that circle.
//! * A data directory written by the release before personas owned follows
//!   (store version 6, committed under `tests/fixtures/datadir-v6`) opens
//!   with nothing visible changed: same NodeId, profile, follows, circles
//!   and feed; one persona; no labels.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;
use common::{cli, init_quiet as init, Running, BIN};

/// Runs a command without `--json`; it must succeed; its stdout.
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
        "distsoc-node {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

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

/// The feed's texts, newest first.
fn texts(feed: &Value) -> Vec<String> {
    feed.as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap_or("(sealed)").to_string())
        .collect()
}

fn item<'a>(feed: &'a Value, text: &str) -> &'a Value {
    feed.as_array()
        .unwrap()
        .iter()
        .find(|i| i["text"] == text)
        .unwrap_or_else(|| panic!("{text:?} not in {feed}"))
}

/// `following --json` as sorted (posting id, persona name) pairs.
fn follows(dir: &Path, args: &[&str]) -> Vec<(String, String)> {
    let mut all = vec!["following"];
    all.extend_from_slice(args);
    let mut v: Vec<(String, String)> = cli(dir, &all)
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["posting_id"].as_str().unwrap().to_string(),
                f["persona"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn follows_belong_to_personas_and_the_feed_says_whose() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let (ann, ben, reader) = (init(r, "ann"), init(r, "ben"), init(r, "reader"));
    let (ann_id, ben_id) = (id_of(&ann), id_of(&ben));
    cli(&ann, &["post", "from ann"]);
    cli(&ben, &["post", "from ben"]);

    // One identity: no labels anywhere.
    cli(&reader, &["follow", &ann_id, "--offline"]);
    assert_eq!(human(&reader, &["following"]).trim(), ann_id);

    // A second persona follows Ben, and Ann too.
    cli(&reader, &["persona", "create", "work"]);
    let followed = cli(&reader, &["follow", &ben_id, "--as", "work", "--offline"]);
    assert_eq!(followed["persona"], "work");
    cli(&reader, &["follow", &ann_id, "--as", "work", "--offline"]);
    // Following twice as one persona changes nothing.
    assert_eq!(
        cli(&reader, &["follow", &ann_id, "--as", "work", "--offline"])["new"],
        false
    );
    let all = follows(&reader, &[]);
    let pair = |id: &str, p: &str| (id.to_string(), p.to_string());
    assert_eq!(all, {
        let mut v = vec![
            pair(&ann_id, "default"),
            pair(&ann_id, "work"),
            pair(&ben_id, "work"),
        ];
        v.sort();
        v
    });
    assert_eq!(
        follows(&reader, &["--as", "default"]),
        vec![pair(&ann_id, "default")]
    );
    assert!(human(&reader, &["following"]).contains(&format!("{ben_id}  as work")));

    // Pull both authors: pull sync asks for every persona's follows.
    for author in [&ann, &ben] {
        let running = Running::start(author);
        cli(&reader, &["connect", &running.1]);
    }
    let merged = cli(&reader, &["feed"]);
    assert_eq!(texts(&merged).len(), 2, "{merged}");
    assert_eq!(
        item(&merged, "from ann")["followed_by"],
        serde_json::json!(["default", "work"])
    );
    assert_eq!(
        item(&merged, "from ben")["followed_by"],
        serde_json::json!(["work"])
    );
    let shown = human(&reader, &["feed"]);
    assert!(shown.contains("from ben  (via work)"), "{shown}");
    assert_eq!(
        texts(&cli(&reader, &["feed", "--persona", "default"])),
        vec!["from ann"]
    );
    let mut work = texts(&cli(&reader, &["feed", "--persona", "work"]));
    work.sort();
    assert_eq!(work, vec!["from ann", "from ben"]);
    // A persona's own posts are in its view, not in another's.
    cli(&reader, &["post", "--as", "work", "work news"]);
    assert!(texts(&cli(&reader, &["feed", "--persona", "work"])).contains(&"work news".into()));
    assert!(!texts(&cli(&reader, &["feed", "--persona", "default"])).contains(&"work news".into()));

    // Export → import keeps each follow with its persona.
    let pass = r.join("pass");
    std::fs::write(&pass, "a long enough passphrase").unwrap();
    let bundle = r.join("reader.bundle");
    cli(
        &reader,
        &[
            "export",
            "--out",
            bundle.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
    );
    let copy = r.join("copy");
    cli(
        &copy,
        &[
            "import",
            bundle.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
    );
    assert_eq!(follows(&copy, &[]), all);

    // Unfollowing as one persona keeps the other's follow.
    cli(&reader, &["unfollow", &ann_id, "--as", "work"]);
    assert_eq!(
        texts(&cli(&reader, &["feed", "--persona", "work"])).len(),
        2
    );
    assert!(!texts(&cli(&reader, &["feed", "--persona", "work"])).contains(&"from ann".into()));
    assert!(texts(&cli(&reader, &["feed", "--persona", "default"])).contains(&"from ann".into()));
    // Deleting a persona takes its follows with it.
    cli(&reader, &["persona", "delete", "work"]);
    assert_eq!(follows(&reader, &[]), vec![pair(&ann_id, "default")]);
    // Unfollow without --as stops every persona's follow.
    cli(&copy, &["unfollow", &ann_id]);
    assert_eq!(follows(&copy, &[]), vec![pair(&ben_id, "work")]);
}

#[test]
fn a_circle_post_goes_out_as_the_persona_last_used_there() {
    let root = tempfile::tempdir().unwrap();
    let me = init(root.path(), "me");
    let friend = init(root.path(), "friend");
    let friend_id = id_of(&friend);
    cli(&me, &["persona", "create", "work"]);
    let (default_id, work_id) = (persona_id(&me, "default"), persona_id(&me, "work"));
    cli(&me, &["circle", "create", "team"]);
    cli(&me, &["circle", "add", "team", &friend_id]);
    cli(
        &me,
        &["post", "--to", "circle:team", "first, as the default"],
    );
    cli(
        &me,
        &["post", "--to", "circle:team", "--as", "work", "now as work"],
    );
    cli(&me, &["post", "--to", "circle:team", "no --as: work again"]);
    cli(&me, &["post", "public: the default"]);
    let feed = cli(&me, &["feed"]);
    assert_eq!(
        item(&feed, "first, as the default")["author"],
        default_id.as_str()
    );
    assert_eq!(item(&feed, "now as work")["author"], work_id.as_str());
    assert_eq!(
        item(&feed, "no --as: work again")["author"],
        work_id.as_str()
    );
    assert_eq!(
        item(&feed, "public: the default")["author"],
        default_id.as_str()
    );
    // Once the persona is gone, the circle falls back to the default.
    cli(&me, &["persona", "delete", "work"]);
    cli(&me, &["post", "--to", "circle:team", "after the delete"]);
    let feed = cli(&me, &["feed"]);
    assert_eq!(
        item(&feed, "after the delete")["author"],
        default_id.as_str()
    );
}

const FIXTURE_V6: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/datadir-v6");
/// The fixture's identity (Ada) and what it holds, as the release that
/// wrote it showed them.
const ADA: &str = "c0a64d86b396038baefe579efefb6bdac4a31690eb86959c6703f29016d2962d";
const BEA: &str = "5a71897f85f66020f9dfa21995c223642650f6c86f5f4149071115fd54e06cd4";
const ONES: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fn user_version(store: &Path) -> u32 {
    rusqlite::Connection::open(store)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn a_version_6_data_directory_opens_with_nothing_visible_changed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("ada");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    for f in ["anchors.json", "config.toml", "node.key", "store.sqlite"] {
        let to = dir.join(f);
        std::fs::copy(Path::new(FIXTURE_V6).join(f), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(
        user_version(&dir.join("store.sqlite")),
        6,
        "the fixture is a v6 store"
    );

    assert_eq!(id_of(&dir), ADA);
    assert_eq!(
        user_version(&dir.join("store.sqlite")),
        distsoc_node::store::migrations::supported_version(),
        "opened means migrated"
    );
    let profile = cli(&dir, &["profile", "show"]);
    assert_eq!(profile["display_name"], "Ada");
    assert_eq!(profile["bio"], "fixture of a v6 store");
    // One persona, the network key; both follows are its.
    let personas = cli(&dir, &["persona", "list"]);
    assert_eq!(personas.as_array().unwrap().len(), 1, "{personas}");
    assert_eq!(persona_id(&dir, "default"), ADA);
    let mut expected = vec![
        (BEA.to_string(), "default".to_string()),
        (ONES.to_string(), "default".to_string()),
    ];
    expected.sort();
    assert_eq!(follows(&dir, &[]), expected);
    // Shown as before: bare ids, in the order they were followed.
    assert_eq!(human(&dir, &["following"]).trim(), format!("{BEA}\n{ONES}"));
    let circles = cli(&dir, &["circle", "list"]);
    assert_eq!(
        circles,
        serde_json::json!([{"name": "friends", "members": 1}])
    );
    let feed = cli(&dir, &["feed"]);
    assert_eq!(
        texts(&feed),
        vec![
            "to my friends",
            "hello from Ada",
            "for Ada only",
            "hello from Bea"
        ]
    );
    assert_eq!(
        item(&feed, "hello from Bea")["followed_by"],
        serde_json::json!(["default"])
    );
    let shown = human(&dir, &["feed"]);
    assert!(!shown.contains("(via"), "one persona: no labels\n{shown}");
    // The upgraded directory works on: a post, a second persona.
    cli(&dir, &["post", "after the upgrade"]);
    cli(&dir, &["persona", "create", "work"]);
    cli(&dir, &["follow", BEA, "--as", "work", "--offline"]);
    assert!(human(&dir, &["following"]).contains(&format!("{BEA}  as work")));
}
