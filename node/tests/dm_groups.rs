//! Group DM threads that rotate (`schema/README.md` §9.1, "Group threads"),
//! through the `distsoc-node` binary against a real anchor: a group of
//! three, messages from two members, every member's `dm history --group`
//! shows the one group thread in order (and no 1:1 thread gets them); each
//! message goes to each other member on the pairwise rotated thread, so
//! after the first message of each pair the anchor stores only ephemeral
//! ids. A member's group threads come back on a second device (the
//! archive deposit).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/anchor_net.rs"]
mod anchor_net;
mod common;

use std::collections::HashSet;
use std::path::Path;

use anchor_net::{history, run, Net};
use serde_json::Value;

/// (sender, recipient) of every message the anchor holds, oldest first.
fn stored(net: &Net) -> Vec<(String, String)> {
    let db = net.anchor_db();
    let mut st = db
        .prepare("SELECT sender, recipient FROM messages ORDER BY id")
        .unwrap();
    st.query_map([], |r| {
        Ok((
            hex::encode(r.get::<_, Vec<u8>>(0)?),
            hex::encode(r.get::<_, Vec<u8>>(1)?),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

async fn group_send(net: &Net, from: &Path, to: &[&str], text: &str) -> Value {
    let mut args = vec!["send"];
    for t in to {
        args.extend_from_slice(&["--to", t]);
    }
    args.push(text);
    let v = net.dm(from, &args).await;
    assert_eq!(v["failed"], 0, "{v}");
    v
}

/// `dm read`: (from, group, text).
async fn read(net: &Net, dir: &Path) -> Vec<(String, Value, String)> {
    net.dm(dir, &["read"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert!(m.get("error").is_none(), "unreadable DM: {m}");
            (
                m["from"].as_str().unwrap().to_string(),
                m["group"].clone(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `dm history --group G`: (from, text), oldest first, and the members.
async fn group_history(dir: &Path, group: &str) -> (Vec<(String, String)>, HashSet<String>) {
    let v = run(dir, &["dm", "history", "--group", group]).await;
    let msgs = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["from"].as_str().unwrap().to_string(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let members = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    (msgs, members)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_three_is_one_rotating_thread_for_each_member() {
    let net = Net::start().await;
    let (a, a_id) = net.node("ann").await;
    let (b, b_id) = net.node("bob").await;
    let (c, c_id) = net.node("cat").await;
    let people: HashSet<String> = [&a_id, &b_id, &c_id].into_iter().cloned().collect();

    // Ann writes to Bob and Cat: the first message of each pair goes on
    // the identity channel, NodeId to NodeId.
    let first = group_send(&net, &a, &[&b_id, &c_id], "hello both").await;
    let group = first["group"].as_str().unwrap().to_string();
    assert_eq!(group.len(), 32);
    for s in first["sent"].as_array().unwrap() {
        assert_eq!(s["chain_n"], 0, "{first}");
    }
    assert_eq!(
        read(&net, &b).await,
        [(
            a_id.clone(),
            Value::from(group.as_str()),
            "hello both".into()
        )]
    );
    assert_eq!(
        read(&net, &c).await,
        [(
            a_id.clone(),
            Value::from(group.as_str()),
            "hello both".into()
        )]
    );

    // Bob answers the group by naming the others: the same thread.
    let v = group_send(&net, &b, &[&a_id, &c_id], "hi from bob").await;
    assert_eq!(v["group"], group.as_str());
    // Ann writes again: now on her rotated threads with each.
    let before = stored(&net).len();
    let again = group_send(&net, &a, &[&c_id, &b_id], "second from ann").await;
    assert_eq!(again["group"], group.as_str());
    for s in again["sent"].as_array().unwrap() {
        assert_eq!(s["chain_n"], 1, "{again}");
        assert!(!people.contains(s["send_id"].as_str().unwrap()), "{again}");
        assert!(!people.contains(s["recv_id"].as_str().unwrap()), "{again}");
    }
    // What the anchor holds for those two copies names nobody.
    let held = stored(&net);
    assert_eq!(held.len(), before + 2, "{held:?}");
    for (sender, recipient) in &held[before..] {
        assert!(!people.contains(sender) && !people.contains(recipient));
    }
    let from_cat = group_send(&net, &c, &[&a_id, &b_id], "cat too").await;
    assert_eq!(from_cat["group"], group.as_str());
    // Bob's own copies were first messages (identity channels); his next
    // one rotates too.
    let rotated = group_send(&net, &b, &[&c_id, &a_id], "bob again").await;
    for s in rotated["sent"].as_array().unwrap() {
        assert_eq!(s["chain_n"], 1, "{rotated}");
    }

    for dir in [&a, &b, &c] {
        read(&net, dir).await;
    }
    let expected: Vec<(String, String)> = [
        (&a_id, "hello both"),
        (&b_id, "hi from bob"),
        (&a_id, "second from ann"),
        (&c_id, "cat too"),
        (&b_id, "bob again"),
    ]
    .iter()
    .map(|(f, t)| (f.to_string(), t.to_string()))
    .collect();
    for dir in [&a, &b, &c] {
        let (msgs, members) = group_history(dir, &group[..8]).await;
        assert_eq!(msgs, expected, "{}", dir.display());
        assert_eq!(members, people);
    }
    // `dm groups` lists it; no 1:1 thread got the group's messages.
    let groups = run(&b, &["dm", "groups"]).await;
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
    assert_eq!(groups[0]["group"], group.as_str());
    assert!(history(&a, &b_id, &[]).await.is_empty());
    assert!(history(&b, &a_id, &[]).await.is_empty());
    // A 1:1 message between two members stays in their 1:1 thread.
    net.dm(&a, &["send", "--to", &b_id, "just us"]).await;
    assert_eq!(
        read(&net, &b).await,
        [(a_id.clone(), Value::Null, "just us".into())]
    );
    assert_eq!(
        history(&b, &a_id, &[]).await,
        [(false, "just us".to_string())]
    );
    assert_eq!(group_history(&b, &group).await.0.len(), expected.len());
    net.stop().await;
}

/// How many posts by `author` (hex NodeId) the anchor holds.
fn anchor_posts_by(net: &Net, author: &str) -> i64 {
    net.anchor_db()
        .query_row(
            "SELECT count(*) FROM posts WHERE author = ?1",
            [hex::decode(author).unwrap()],
            |r| r.get(0),
        )
        .unwrap()
}

/// Group threads travel in the archive deposit (issue 13): Bob, a member
/// of a group with messages from all three members (his own included) and
/// a 1:1 thread, exports; the first `sync` of the directory he imports
/// into brings back `dm groups` and `dm history --group` exactly as on the
/// old one (senders, directions, times, members), and the 1:1 thread; a
/// second sync adds nothing, and the restored rows are not deposited
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_threads_come_back_on_a_second_device() {
    let net = Net::start().await;
    let (a, a_id) = net.node("ann").await;
    let (b, b_id) = net.node("bob").await;
    let (c, c_id) = net.node("cat").await;
    let first = group_send(&net, &a, &[&b_id, &c_id], "hello both").await;
    let group = first["group"].as_str().unwrap().to_string();
    read(&net, &b).await;
    group_send(&net, &b, &[&a_id, &c_id], "hi from bob").await;
    read(&net, &c).await;
    group_send(&net, &c, &[&a_id, &b_id], "cat too").await;
    net.dm(&a, &["send", "--to", &b_id, "just us"]).await;
    group_send(&net, &b, &[&c_id, &a_id], "bob again").await;
    // Bob's last read deposits what it archived.
    assert_eq!(read(&net, &b).await.len(), 2);

    let before = run(&b, &["dm", "history", "--group", &group]).await;
    let (msgs, members) = group_history(&b, &group).await;
    assert_eq!(msgs.len(), 4, "{before}");
    assert_eq!(members.len(), 3);
    let groups = run(&b, &["dm", "groups"]).await;
    let one_to_one = history(&b, &a_id, &[]).await;
    assert_eq!(one_to_one, [(false, "just us".to_string())]);
    let held = anchor_posts_by(&net, &b_id);
    assert!(held > 0, "Bob deposited archive posts");

    let pass = net.dir.path().join("pass");
    std::fs::write(&pass, "a long enough passphrase").unwrap();
    let file = net.dir.path().join("bob.bundle");
    let (file_s, pass_s) = (file.to_str().unwrap(), pass.to_str().unwrap());
    run(
        &b,
        &["export", "--out", file_s, "--passphrase-file", pass_s],
    )
    .await;
    let b2 = net.dir.path().join("bob2");
    run(&b2, &["import", file_s, "--passphrase-file", pass_s]).await;
    assert_eq!(run(&b2, &["dm", "groups"]).await, serde_json::json!([]));

    run(&b2, &["sync"]).await;
    assert_eq!(
        run(&b2, &["dm", "history", "--group", &group]).await,
        before
    );
    assert_eq!(run(&b2, &["dm", "groups"]).await, groups);
    assert_eq!(history(&b2, &a_id, &[]).await, one_to_one);
    // A second sync adds nothing, and deposits nothing.
    run(&b2, &["sync"]).await;
    assert_eq!(
        run(&b2, &["dm", "history", "--group", &group]).await,
        before
    );
    assert_eq!(run(&b2, &["dm", "groups"]).await, groups);
    assert_eq!(history(&b2, &a_id, &[]).await, one_to_one);
    assert_eq!(anchor_posts_by(&net, &b_id), held);
    net.stop().await;
}
