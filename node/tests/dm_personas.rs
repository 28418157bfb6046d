//! DMs to each persona land in separate threads, through the `distsoc-node`
//! binary against a real anchor: a peer writes to two personas of one node
//! (its own identity and a second persona); both sides keep two threads,
//! by posting id, in `dm channels`, `dm read` and `dm history`, on the
//! identity channels and on the rotated chains after them; the persona
//! answers as itself (`dm send --as`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/anchor_net.rs"]
mod anchor_net;
mod common;

use anchor_net::{history, run, Net};
use serde_json::Value;

async fn persona_id(dir: &std::path::Path, name: &str) -> String {
    run(dir, &["persona", "list"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()["posting_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `dm read`: (from, to_persona, text), in the order read.
async fn read(net: &Net, dir: &std::path::Path) -> Vec<(String, Value, String)> {
    net.dm(dir, &["read"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert!(m.get("error").is_none(), "unreadable DM: {m}");
            (
                m["from"].as_str().unwrap().to_string(),
                m["to_persona"].clone(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dms_to_two_personas_of_one_node_are_two_threads() {
    let net = Net::start().await;
    let (sam, sam_id) = net.node("sam").await;
    let (ria, ria_id) = net.node("ria").await;
    run(&ria, &["persona", "create", "work"]).await;
    let work = persona_id(&ria, "work").await;

    // Two first messages (identity channels), then one rotated message in
    // each thread: both chains start at Ria's node in the same read, so
    // one overwriting the other would lose a message.
    for (to, text) in [(&ria_id, "to ria 1"), (&work, "to work 1")] {
        let s = net.dm(&sam, &["send", "--to", to, text]).await;
        assert_eq!(s["chain_n"], 0, "{s}");
    }
    for (to, text) in [(&ria_id, "to ria 2"), (&work, "to work 2")] {
        let s = net.dm(&sam, &["send", "--to", to, text]).await;
        assert_eq!(s["chain_n"], 1, "{s}");
    }

    // Sam has two channels, one per posting id written to.
    let peers: Vec<String> = net
        .dm(&sam, &["channels"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["peer"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sorted(peers), sorted(vec![ria_id.clone(), work.clone()]));
    // Ria sees one identity channel for herself and one for work.
    let chans = net.dm(&ria, &["channels"]).await;
    let mut seen: Vec<(Value, String, u64)> = chans
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["persona"].clone(),
                c["peer"].as_str().unwrap().to_string(),
                c["queued"].as_u64().unwrap(),
            )
        })
        .collect();
    seen.sort_by_key(|(p, _, _)| p.to_string());
    assert_eq!(
        seen,
        vec![
            (Value::from("work"), sam_id.clone(), 1),
            (Value::Null, sam_id.clone(), 1),
        ],
        "{chans}"
    );

    // One read gets all four, each filed under the persona written to.
    let got = read(&net, &ria).await;
    let by = |p: Value| -> Vec<String> {
        got.iter()
            .filter(|(f, to, _)| *f == sam_id && *to == p)
            .map(|(_, _, t)| t.clone())
            .collect()
    };
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(by(Value::Null), ["to ria 1", "to ria 2"]);
    assert_eq!(by(Value::from("work")), ["to work 1", "to work 2"]);
    assert!(read(&net, &ria).await.is_empty());

    let out = |t: &str| (true, t.to_string());
    let inc = |t: &str| (false, t.to_string());
    assert_eq!(
        history(&ria, &sam_id, &[]).await,
        [inc("to ria 1"), inc("to ria 2")]
    );
    assert_eq!(
        history(&ria, &sam_id, &["--as", "work"]).await,
        [inc("to work 1"), inc("to work 2")]
    );

    // Work answers as itself: Sam sees it from work's posting id, in the
    // thread with work, and the thread goes on rotating both ways.
    let s = net
        .dm(
            &ria,
            &["send", "--as", "work", "--to", &sam_id, "from work"],
        )
        .await;
    assert_eq!(s["send_id"], work.as_str(), "{s}");
    assert_eq!(s["persona"], "work");
    let s = net
        .dm(
            &ria,
            &["send", "--as", "work", "--to", &sam_id, "from work 2"],
        )
        .await;
    assert_eq!(s["chain_n"], 1, "{s}");
    net.dm(&sam, &["send", "--to", &work, "to work 3"]).await;
    let got = read(&net, &sam).await;
    assert_eq!(
        got,
        [
            (work.clone(), Value::Null, "from work".to_string()),
            (work.clone(), Value::Null, "from work 2".to_string()),
        ]
    );
    assert_eq!(
        read(&net, &ria).await,
        [(sam_id.clone(), Value::from("work"), "to work 3".to_string())]
    );
    assert_eq!(
        history(&sam, &work, &[]).await,
        [
            out("to work 1"),
            out("to work 2"),
            inc("from work"),
            inc("from work 2"),
            out("to work 3")
        ]
    );
    assert_eq!(
        history(&sam, &ria_id, &[]).await,
        [out("to ria 1"), out("to ria 2")]
    );
    assert_eq!(
        history(&ria, &sam_id, &["--as", "work"]).await,
        [
            inc("to work 1"),
            inc("to work 2"),
            out("from work"),
            out("from work 2"),
            inc("to work 3")
        ]
    );
    // Ria's own thread with Sam did not get work's messages.
    assert_eq!(history(&ria, &sam_id, &[]).await.len(), 2);
    net.stop().await;
}
