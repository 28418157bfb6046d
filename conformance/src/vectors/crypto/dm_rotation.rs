//! `dm_rotation.json`: the seed chain of a rotated DM thread
//! (`schema/README.md` §9.1, `protocol/src/dm_rotation.rs`).

use serde_json::json;

use distsoc_protocol::dm_rotation::{ChainSeed, WINDOW};

use super::{file, h, rec};
use crate::vectors::VectorFile;

/// Chain steps written as `step` records.
const STEPS: usize = 12;

pub(super) fn dm_rotation_file() -> VectorFile {
    let mut records = Vec::new();
    // s(1): BLAKE3 of a fixed label, so the file needs no RNG.
    let first = *blake3::hash(b"distsoc dm_rotation.json s1").as_bytes();
    let mut seed = ChainSeed::from_bytes(first);
    for n in 1..=STEPS {
        let next = seed.next();
        records.push(rec(
            &format!("step-{n:02}"),
            "One step of a chain: send_seed = BLAKE3 derive_key(\"distsoc 2026-12 dm send v1\", seed), recv_seed = derive_key(\"distsoc 2026-12 dm recv v1\", seed), next_seed = derive_key(\"distsoc 2026-12 dm next v1\", seed); send_id and recv_id are the ed25519 public keys of those secret seeds (RFC 8032). Each record's seed is the previous record's next_seed.",
            &["chain"],
            true,
            json!({"kind": "step", "n": n, "seed": h(seed.as_bytes())}),
            json!({
                "send_seed": h(*seed.send_seed()),
                "send_id": h(seed.send_key().public()),
                "recv_seed": h(*seed.recv_seed()),
                "recv_id": h(seed.recv_key().public()),
                "next_seed": h(next.as_bytes()),
            }),
        ));
        seed = next;
    }
    let start = ChainSeed::from_bytes(first);
    let window = start.window();
    assert_eq!(window.len(), WINDOW);
    records.push(rec(
        "window",
        "The receive window of a chain whose next expected seed is s(1): the recv_id of s(1) and of its next 9 default successors, in order (the recv_id of step-01 .. step-10).",
        &["window"],
        true,
        json!({"kind": "window", "seed": h(first), "size": WINDOW}),
        json!({"recv_ids": window.iter().map(|s| h(s.recv_key().public())).collect::<Vec<_>>()}),
    ));
    file(
        "dm_rotation.json",
        "Rotating DM ids (schema/README.md §9.1, protocol/src/dm_rotation.rs). Kinds: step (one chain seed -> its send and receive key seeds and ids and the default next seed; 12 consecutive steps from s(1) = BLAKE3(\"distsoc dm_rotation.json s1\")), window (the 10 receive ids a reader watches from a seed).",
        records,
    )
}
