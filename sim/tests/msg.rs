//! Tests of the message-level simulator: small networks (tens of nodes,
//! minutes of simulated time) that run in seconds in a debug build.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use distsoc_protocol::mesh::{MeshMessage, MeshRequest, MeshResponse};
use distsoc_protocol::messages::Message;
use distsoc_sim::msg::sizes::{frame_len, proto, SizeModel};
use distsoc_sim::msg::{run, Params, Report};

/// A small network: `nodes` nodes, mostly mobile (15 connections) so the
/// map does not cover everything, communities of 10.
fn small(nodes: u32, minutes: u64, seed: u64) -> Params {
    let mut p = Params::new(nodes, Duration::from_secs(minutes * 60), seed);
    p.community = 10;
    p.cross = 2;
    p.mobile_share = 0.8;
    p.anchor_share = 0.03;
    p.join_window = Duration::from_secs(60);
    p.warmup = Duration::from_secs(300);
    p.min_observation = Duration::from_secs(420);
    p.lookups = 20;
    p.map_samples = 50;
    p.sample_interval = Duration::from_secs(120);
    p.progress = false;
    p
}

fn without_wall(r: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("wall_s");
    o.remove("cpu_s");
    o.remove("events_per_s");
    o.remove("threads");
    o.remove("parallel_chunks");
    o.remove("worker_chunks");
    o.remove("critical_path_cpu_s");
    // Heap bytes of the maps follow std HashMap capacities, which depend on
    // the process's random hash keys (tombstones and growth): not part of
    // the deterministic report.
    let map = o.get_mut("map").unwrap().as_object_mut().unwrap();
    map.remove("bytes_per_node");
    map.remove("by_profile");
    for s in o.get_mut("series").unwrap().as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("map_bytes_p50");
    }
    v
}

#[test]
fn same_seed_same_report() {
    let mut p = small(60, 10, 7);
    p.churn = 30.0;
    p.loss = 0.01;
    let a = run(&p).unwrap();
    let b = run(&p).unwrap();
    assert!(a.events > 10_000, "the run did something: {}", a.events);
    assert_eq!(without_wall(&a), without_wall(&b));
    p.seed = 8;
    let c = run(&p).unwrap();
    assert_ne!(without_wall(&a), without_wall(&c), "the seed matters");
}

#[test]
fn any_number_of_threads_gives_the_same_report() {
    let mut p = small(60, 10, 7);
    p.churn = 30.0;
    p.loss = 0.01;
    p.threads = 1;
    let one = run(&p).unwrap();
    assert_eq!((one.parallel_chunks, one.worker_chunks), (0, 0));
    assert!(one.events > 10_000, "the run did something: {}", one.events);
    // 2 and 3 threads: a shard per region; 7: node i in shard i % 7.
    for t in [2, 3, 7] {
        p.threads = t;
        let r = run(&p).unwrap();
        assert_eq!(r.threads, t);
        // How often the threads overlap depends on the machine's load;
        // that the workers ran a share of the chunks does not.
        assert!(
            r.worker_chunks > 100,
            "{t} threads: the workers ran chunks: {}",
            r.worker_chunks
        );
        assert_eq!(without_wall(&one), without_wall(&r), "{t} threads");
    }
}

#[test]
fn a_node_that_leaves_disappears_from_every_map() {
    let mut p = small(60, 20, 3);
    p.churn = 40.0;
    let r = run(&p).unwrap();
    let d = &r.departure_convergence_s;
    assert!(d.sampled >= 3, "departures followed: {d:?}");
    assert_eq!(d.unconverged, 0, "every departure converged: {d:?}");
    assert!(d.converged >= 1, "{d:?}");
    // A crash is noticed after 30 s; each hop of the 3-hop map then takes
    // at most one diff round (120 s) plus the receive hold: 3 rounds.
    assert!(d.max <= 30.0 + 3.0 * 120.0 + 60.0, "bounded: {d:?}");
}

#[test]
fn lookups_succeed_in_a_small_connected_network() {
    // At this size the map covers everyone: the targets are any online
    // node, found by every tier of the chain.
    let mut p = small(80, 12, 5);
    p.lookups = 30;
    p.targets_outside_map = false;
    let r = run(&p).unwrap();
    let w = &r.worm;
    assert!(w.lookups >= 5, "lookups started: {w:?}");
    assert_eq!(w.finished, w.lookups, "every lookup finished: {w:?}");
    assert!(w.success_rate >= 0.9, "success: {w:?}");
    // Direct and hop-2 answers carry the address: no round trip.
    assert!(w.latency_ms.max < 10_000.0, "{w:?}");
    assert!(!w.by_tier.is_empty(), "{w:?}");
}

#[test]
fn loss_produces_gaps_and_the_maps_still_converge() {
    let mut p = small(60, 24, 11);
    p.loss = 0.01;
    p.churn = 30.0;
    p.min_observation = Duration::from_secs(720);
    let r = run(&p).unwrap();
    assert!(r.gossip.lost_messages > 0);
    assert!(
        r.gossip.gaps > 0,
        "lost diffs are seen as gaps: {:?}",
        r.gossip
    );
    assert!(r.gossip.map_sync_requests > 0, "gaps ask for a resync");
    let d = &r.departure_convergence_s;
    assert!(d.converged >= 1, "{d:?}");
    assert_eq!(d.unconverged, 0, "converged despite loss: {d:?}");
}

/// A copy of `m` with other ids, addresses, kinds and flags (same shape).
fn other_content(m: &MeshMessage, salt: u8) -> MeshMessage {
    use distsoc_protocol::messages::common::SocketAddress;
    use distsoc_protocol::messages::discovery::{Hop1ChangeKind, Hop2ChangeKind};
    let id = |x: &mut distsoc_protocol::ids::NodeId| {
        x.0[5] ^= salt;
        x.0[17] = x.0[17].wrapping_add(salt);
    };
    let addr = |a: &mut SocketAddress| {
        let ip = match a.0.ip() {
            std::net::IpAddr::V4(v4) => {
                let mut o = v4.octets();
                o[3] ^= salt;
                std::net::IpAddr::from(o)
            }
            v6 => v6,
        };
        a.0 = std::net::SocketAddr::new(ip, a.0.port() ^ u16::from(salt));
    };
    let mut m = m.clone();
    match &mut m {
        MeshMessage::RoutingDiff(d) => {
            d.seq += u64::from(salt) << 40;
            for c in &mut d.hop1_changes {
                id(&mut c.node_id);
                c.addresses.iter_mut().for_each(addr);
                c.is_anchor = !c.is_anchor;
                c.is_wide = !c.is_wide;
                c.kind = Hop1ChangeKind::AddressChanged;
            }
            for c in &mut d.hop2_changes {
                id(&mut c.node_id);
                c.kind = Hop2ChangeKind::Removed;
                c.is_anchor = !c.is_anchor;
            }
        }
        MeshMessage::InitialMapSync(s) => {
            s.seq = u64::MAX - u64::from(salt);
            s.chunk_count = 9;
            s.chunk_index = 8;
            for e in &mut s.hop1 {
                id(&mut e.peer.node_id);
                e.peer.addresses.iter_mut().for_each(addr);
                e.peer.is_anchor = !e.peer.is_anchor;
                e.peer.last_seen_ms = u64::MAX / 3;
                e.is_wide = !e.is_wide;
            }
            for e in &mut s.hop2 {
                id(&mut e.node_id);
                e.is_anchor = !e.is_anchor;
            }
        }
        MeshMessage::MapSyncRequest(_) => {}
    }
    m
}

fn frame_of(m: &MeshMessage) -> u64 {
    match m.clone() {
        MeshMessage::RoutingDiff(d) => frame_len(Message::from(d)),
        MeshMessage::InitialMapSync(s) => frame_len(Message::from(s)),
        MeshMessage::MapSyncRequest(r) => frame_len(Message::from(r)),
    }
}

/// Real encodings of messages of many shapes against what the simulator
/// counts: exact for pushes (model up to one segment, the replayed layout
/// above it: checked on messages of the same shape and other content too),
/// within 1 % + 16 bytes for requests and responses.
#[test]
fn size_model_matches_real_encodings() {
    let m = SizeModel::calibrate();
    let worst = std::cell::Cell::new(0.0f64);
    let close = |model: u64, real: u64, what: &str| {
        let tol = real as f64 * 0.01 + 16.0;
        let rel = (model as f64 - real as f64).abs() / real as f64;
        if rel > worst.get() {
            worst.set(rel);
            eprintln!(
                "worst so far: {what} model {model} real {real} ({:.2} %)",
                rel * 100.0
            );
        }
        assert!(
            (model as f64 - real as f64).abs() <= tol,
            "{what}: model {model} real {real}"
        );
    };
    let counts = [0u64, 1, 3, 17, 100, 1000, 4096];
    for &a in &counts {
        for &b in &counts[..5] {
            let d = proto::diff(b, 1, a);
            let real = frame_len(Message::from(d.clone()));
            assert_eq!(m.push(&MeshMessage::RoutingDiff(d)), real, "diff {b} {a}");
            let s = proto::sync(b, 2, a);
            let real = frame_len(Message::from(s.clone()));
            assert_eq!(
                m.push(&MeshMessage::InitialMapSync(s.clone())),
                real,
                "sync {b} {a}"
            );
            // The same shapes with other content.
            for salt in [1u8, 0x5a] {
                for msg in [
                    MeshMessage::RoutingDiff(proto::diff(b, 1, a)),
                    MeshMessage::InitialMapSync(s.clone()),
                ] {
                    let other = other_content(&msg, salt);
                    assert_ne!(other, msg);
                    let real = frame_of(&other);
                    assert_eq!(m.push(&other), real, "same shape, other content: {a} {b}");
                }
            }
        }
    }
    // Mixed address families change the layout: another shape.
    let mut s = proto::sync(3, 2, 4096);
    s.hop1[1].peer.addresses[0] =
        distsoc_protocol::messages::common::SocketAddress("[2001:db8::1]:4433".parse().unwrap());
    let real = frame_of(&MeshMessage::InitialMapSync(s.clone()));
    assert_eq!(
        m.push(&MeshMessage::InitialMapSync(s)),
        real,
        "IPv6 address"
    );
    for t in [1u64, 2, 8, 16] {
        for v in [0u64, 1, 5, 40] {
            let w = proto::worm_request(t, 0, 2, v);
            let real = frame_len(Message::from(w.clone()));
            close(m.request(&MeshRequest::Worm(w)), real, "worm request");
        }
        let q = proto::worm_query(t, 1);
        let real = frame_len(Message::from(q.clone()));
        close(m.request(&MeshRequest::Query(q)), real, "worm query");
        let a = proto::address_request(t);
        let real = frame_len(Message::from(a.clone()));
        close(m.request(&MeshRequest::Address(a)), real, "address request");
        for c in [false, true] {
            let r = proto::worm_response(t, 1, c, 2);
            let real = frame_len(Message::from(r.clone()));
            close(
                m.response(&Ok(MeshResponse::Worm(r))),
                real,
                "worm response",
            );
        }
        let r = proto::address_response(t, 1, t / 2, 1);
        let real = frame_len(Message::from(r.clone()));
        close(
            m.response(&Ok(MeshResponse::Address(r))),
            real,
            "address response",
        );
    }
}

/// The replayed segment layout gives the real encoder's frame length for
/// pushes of every size: list lengths around the segment boundaries, one
/// to three addresses of either family per hop-1 element, hop-3 ids.
#[test]
fn layout_replays_the_encoder() {
    use distsoc_protocol::messages::common::SocketAddress;
    use distsoc_sim::msg::sizes::layout_len;
    let v6 = SocketAddress("[2001:db8::7]:4433".parse().unwrap());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut checked = 0;
    for round in 0..600u64 {
        // Half the rounds near the first segment's end (1,024 words).
        let h2 = if round % 2 == 0 {
            rand(5000)
        } else {
            150 + rand(40)
        };
        let h1 = rand(if round % 3 == 0 { 300 } else { 20 });
        let addrs = 1 + rand(3);
        let mut d = proto::diff(h1, addrs, h2);
        let mut s = proto::sync(h1, addrs, h2);
        for i in 0..h1 as usize {
            if rand(4) == 0 {
                d.hop1_changes[i].addresses[0] = v6;
                s.hop1[i].peer.addresses[0] = v6;
            }
            if rand(8) == 0 {
                d.hop1_changes[i].addresses.clear();
            }
        }
        if round % 5 == 0 {
            s.hop3 = (0..rand(300))
                .map(|i| distsoc_protocol::ids::NodeId([i as u8; 32]))
                .collect();
        }
        for msg in [MeshMessage::RoutingDiff(d), MeshMessage::InitialMapSync(s)] {
            assert_eq!(
                layout_len(&msg),
                Some(frame_of(&msg)),
                "round {round}: {h1} hop-1 ({addrs} addresses), {h2} hop-2"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 1200);
}

#[test]
fn durations_parse_like_the_cli_writes_them() {
    use distsoc_sim::msg::cli::parse_duration;
    assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
    assert!(parse_duration("2x").is_err());
    assert!(parse_duration("5m3").is_err());
}
