//! Mesh benchmarks on a desktop map of the seed's size (101 peers, ~5,500
//! hop-2 and ~350,000 hop-3 entries; `tests/mesh_fixture`). Results in
//! docs/BENCHMARKS.md.
//!
//! ```sh
//! cargo bench -p distsoc-protocol --bench mesh
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/mesh_fixture/mod.rs"]
mod mesh_fixture;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::mesh::route::{self, Hop};
use distsoc_protocol::mesh::{InEvent, MeshMessage};
use distsoc_protocol::messages::discovery::{
    Hop1Change, Hop1ChangeKind, Hop2Change, Hop2ChangeKind, RoutingDiff,
};
use mesh_fixture::{full_map, id, Seq};

fn map(c: &mut Criterion) {
    let mut mesh = full_map();
    let mut g = c.benchmark_group("mesh map");
    let hop3_known = id(3, 7);
    g.bench_function("find hop-3 hit", |b| {
        b.iter(|| black_box(mesh.map().find(black_box(&hop3_known))))
    });
    let unknown: Vec<NodeId> = (0..4096).map(|i| id(9, i)).collect();
    let mut i = 0usize;
    g.bench_function("find miss", |b| {
        b.iter(|| {
            i = (i + 1) % unknown.len();
            black_box(mesh.map().find(&unknown[i]))
        })
    });
    // A typical diff at 1 % hourly churn: a few hop-1 and ~20 hop-2
    // changes, alternately added and removed so the map stays the same size.
    let peer = id(1, 5);
    let mut seq = 1u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("apply RoutingDiff (2 hop-1 + 20 hop-2 changes)", |b| {
        b.iter(|| {
            let kind2 = if seq % 2 == 1 {
                Hop2ChangeKind::Added
            } else {
                Hop2ChangeKind::Removed
            };
            let kind1 = if seq % 2 == 1 {
                Hop1ChangeKind::Added
            } else {
                Hop1ChangeKind::Removed
            };
            let base = (seq / 2) as u32 * 20;
            let diff = RoutingDiff {
                version: PROTOCOL_VERSION,
                seq,
                hop1_changes: (0..2)
                    .map(|k| Hop1Change {
                        node_id: id(5, base + k),
                        kind: kind1,
                        addresses: Vec::new(),
                        is_anchor: false,
                        is_wide: false,
                    })
                    .collect(),
                hop2_changes: (0..20)
                    .map(|k| Hop2Change {
                        node_id: id(6, base + k),
                        kind: kind2,
                        is_anchor: false,
                    })
                    .collect(),
            };
            seq += 1;
            mesh.handle(
                Duration::from_secs(1),
                InEvent::Message {
                    peer,
                    msg: MeshMessage::RoutingDiff(diff),
                },
            );
            while mesh.poll().is_some() {}
        })
    });
    g.finish();
}

fn worm_step(c: &mut Criterion) {
    // The forward step over a full map's candidates: 101 direct peers and
    // 10,100 reported hop-1 entries.
    let mut rng = Seq(3);
    let peers: Vec<NodeId> = (0..101).map(|p| id(1, p)).collect();
    let mut hops: Vec<Hop> = peers.iter().map(|p| Hop { via: *p, known: *p }).collect();
    for p in &peers {
        for _ in 0..100 {
            hops.push(Hop {
                via: *p,
                known: id(2, rng.next(1 << 30)),
            });
        }
    }
    let target = id(8, 1);
    let visited = [peers[3], peers[9]];
    c.bench_function("worm forward_choice over 10,201 candidates", |b| {
        b.iter(|| {
            black_box(route::forward_choice(&target, hops.iter().copied(), |v| {
                visited.contains(v)
            }))
        })
    });
}

fn wide_choice(c: &mut Criterion) {
    // A re-evaluation over a full map's candidates: 101 peers (20 of them
    // wide) and ~5,500 addressed hop-2 nodes, two anchors among them.
    let me = id(9, 0);
    let mut cands: Vec<route::WideCandidate> = (0..101)
        .map(|p| route::WideCandidate {
            id: id(1, p),
            is_anchor: p < 2,
            current: p < 20,
        })
        .collect();
    cands.extend((0..5_500).map(|i| route::WideCandidate {
        id: id(2, i),
        is_anchor: i % 100 == 0,
        current: false,
    }));
    let mut salt = 0u64;
    c.bench_function("select_wide over 5,601 candidates (20 slots)", |b| {
        b.iter(|| {
            salt += 1;
            black_box(route::select_wide(&me, &cands, 20, 2, |n| {
                let mut h = [0u8; 8];
                h.copy_from_slice(&n.0[..8]);
                u64::from_le_bytes(h) ^ salt
            }))
        })
    });
}

criterion_group!(benches, map, worm_step, wide_choice);
criterion_main!(benches);
