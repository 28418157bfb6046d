//! The operator surface of a real anchor (SQLite in a temp dir, QUIC on
//! 127.0.0.1): the admin gRPC API through the generated tonic client, the
//! standard gRPC health service, and Prometheus `GET /metrics`, checked
//! against what real QUIC clients do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;
mod pg_harness;
use common::{code, LOOPBACK};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use distsoc_anchor::admin::pb::admin_client::AdminClient;
use distsoc_anchor::admin::pb::{
    BanRequest, DrainRequest, GetStatsRequest, GetStatsResponse, RetentionSource,
    SetRetentionRequest, UnbanRequest,
};
use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_net::transport::{
    CloseReason, Peer, RequestError, Transport, TransportError, CLOSE_REFUSED,
};
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{ChannelId, NodeId};
use distsoc_protocol::messages::mailbox::{
    Enqueue, EnqueueResponse, ListChannels, ListChannelsResponse,
};
use distsoc_protocol::sign::SigningKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const ADMIN_SERVICE: &str = "distsoc.admin.v1.Admin";

struct TestAnchor {
    _dir: tempfile::TempDir,
    anchor: Anchor,
    id: NodeId,
    addr: SocketAddr,
}

/// An anchor with the admin API and metrics on ephemeral loopback ports.
async fn anchor() -> TestAnchor {
    anchor_with(AnchorConfig {
        admin_listen: "127.0.0.1:0".into(),
        metrics_listen: "127.0.0.1:0".into(),
        ..AnchorConfig::default()
    })
    .await
}

async fn anchor_with(cfg: AnchorConfig) -> TestAnchor {
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let opts = RunOptions {
        data_dir: dir.path().into(),
        drain_timeout: Duration::from_secs(5),
    };
    let cfg = AnchorConfig {
        listen: LOOPBACK,
        ..cfg
    };
    cfg.validate().unwrap();
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let addr = anchor.local_addr().unwrap();
    TestAnchor {
        _dir: dir,
        anchor,
        id: key.node_id(),
        addr,
    }
}

async fn channel(a: &TestAnchor) -> Channel {
    let addr = a.anchor.admin_addr().expect("admin API enabled");
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn admin(a: &TestAnchor) -> AdminClient<Channel> {
    AdminClient::new(channel(a).await)
}

async fn stats(admin: &mut AdminClient<Channel>) -> GetStatsResponse {
    admin
        .get_stats(GetStatsRequest {})
        .await
        .unwrap()
        .into_inner()
}

async fn health(h: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    let r = h
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(r.status).unwrap()
}

struct Client {
    _transport: Transport,
    peer: Peer,
    id: NodeId,
}

async fn client(a: &TestAnchor) -> Client {
    let (t, peer, id) = common::connect(a.id, a.addr, LOOPBACK).await;
    Client {
        _transport: t,
        peer,
        id,
    }
}

async fn create(c: &Client, other: NodeId) -> ChannelId {
    common::create_channel(&c.peer, other).await
}

async fn enqueue(
    c: &Client,
    channel: ChannelId,
    to: NodeId,
    payload: &[u8],
) -> Result<EnqueueResponse, RequestError> {
    let msg = Enqueue {
        version: 2,
        channel_id: Some(channel),
        recipient: to,
        payload: payload.to_vec(),
        client_message_id: None,
    };
    c.peer.call(msg).await
}

async fn list(c: &Client) -> Result<ListChannelsResponse, RequestError> {
    c.peer.call(ListChannels::new(2)).await
}

/// `GET path` over HTTP/1.1; returns (status code, content type, body).
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut raw))
        .await
        .expect("response in time")
        .unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a full response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

async fn scrape(a: &TestAnchor) -> String {
    let (status, content_type, body) = http_get(
        a.anchor.metrics_addr().expect("metrics enabled"),
        "/metrics",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    body
}

/// The value of an unlabelled sample `name` in an exposition.
fn sample(body: &str, name: &str) -> u64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no sample {name} in\n{body}"))
}

/// The value of the sample `name{...}` whose labels include every one of
/// `labels` (`key="value"`), as a float.
fn labelled(body: &str, name: &str, labels: &[&str]) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.rsplit_once(' ')?;
            let (metric, set) = n.split_once('{')?;
            (metric == name && labels.iter().all(|want| set.contains(want)))
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no sample {name}{labels:?} in\n{body}"))
}

/// The float value of an unlabelled sample.
fn sample_f64(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no sample {name} in\n{body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_stats_reflects_an_enqueue_over_quic() {
    let a = anchor().await;
    let mut admin = admin(&a).await;
    let before = stats(&mut admin).await;
    assert_eq!(
        (before.channels, before.queued_messages, before.queued_bytes),
        (0, 0, 0)
    );
    assert_eq!(before.mailbox_ttl_secs, 7 * 24 * 3600);
    assert!(!before.draining);
    assert!(before.banned.is_empty());

    let (alice, bob) = (client(&a).await, client(&a).await);
    let ch = create(&alice, bob.id).await;
    enqueue(&alice, ch, bob.id, b"hello bob").await.unwrap();

    let after = stats(&mut admin).await;
    assert_eq!(after.connections, 2);
    assert_eq!(after.channels, 1);
    assert_eq!(after.queued_messages, 1);
    assert_eq!(after.queued_bytes, b"hello bob".len() as u64);
    let c = after.requests.unwrap();
    assert_eq!(c.total, 2, "CreateChannel + Enqueue");
    assert_eq!(c.enqueued, 1);
    assert_eq!(
        (c.rate_limited, c.unauthorized, c.unavailable, c.delivered),
        (0, 0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_refuses_the_client_and_unban_restores_it() {
    let a = anchor().await;
    let mut admin = admin(&a).await;
    let (alice, bob) = (client(&a).await, client(&a).await);
    list(&alice).await.unwrap();

    let r = admin
        .ban(BanRequest {
            node_id: alice.id.to_hex(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.newly_banned);
    assert!(
        !admin
            .ban(BanRequest {
                node_id: alice.id.to_hex().to_uppercase(),
            })
            .await
            .unwrap()
            .into_inner()
            .newly_banned,
        "a second ban (any hex case) is a no-op"
    );
    assert_eq!(code(list(&alice).await), ErrorCode::Unauthorized);
    list(&bob).await.expect("others are not affected");
    let s = stats(&mut admin).await;
    assert_eq!(s.banned, vec![alice.id.to_hex()]);
    assert_eq!(s.requests.unwrap().unauthorized, 1);

    let r = admin
        .unban(UnbanRequest {
            node_id: alice.id.to_hex(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.was_banned);
    list(&alice).await.expect("unbanned");
    assert!(
        !admin
            .unban(UnbanRequest {
                node_id: alice.id.to_hex(),
            })
            .await
            .unwrap()
            .into_inner()
            .was_banned
    );
    assert!(stats(&mut admin).await.banned.is_empty());

    // Malformed ids are refused, not ignored.
    for bad in ["", "zz", &alice.id.to_hex()[..62]] {
        let e = admin
            .ban(BanRequest {
                node_id: bad.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_retention_changes_the_expiry_of_the_next_enqueue() {
    let a = anchor().await;
    let mut admin = admin(&a).await;
    let (alice, bob) = (client(&a).await, client(&a).await);
    let ch = create(&alice, bob.id).await;
    let week = enqueue(&alice, ch, bob.id, b"1").await.unwrap();
    assert_eq!(
        week.expires_at_ms - week.received_at_ms,
        7 * 24 * 3600 * 1000
    );

    let r = admin
        .set_retention(SetRetentionRequest {
            mailbox_ttl_secs: 60,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.previous_ttl_secs, 7 * 24 * 3600);
    let minute = enqueue(&alice, ch, bob.id, b"2").await.unwrap();
    assert_eq!(minute.expires_at_ms - minute.received_at_ms, 60_000);
    assert_eq!(stats(&mut admin).await.mailbox_ttl_secs, 60);

    for bad in [0, u64::MAX] {
        let e = admin
            .set_retention(SetRetentionRequest {
                mailbox_ttl_secs: bad,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }
    assert_eq!(stats(&mut admin).await.mailbox_ttl_secs, 60, "unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_serving_then_drain_refuses_quic_requests() {
    let a = anchor().await;
    let ch = channel(&a).await;
    let mut admin = AdminClient::new(ch.clone());
    let mut h = HealthClient::new(ch);
    assert_eq!(health(&mut h, "").await, ServingStatus::Serving);
    assert_eq!(health(&mut h, ADMIN_SERVICE).await, ServingStatus::Serving);
    let unknown = h
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let alice = client(&a).await;
    list(&alice).await.unwrap();

    let r = admin.drain(DrainRequest {}).await.unwrap().into_inner();
    assert!(r.newly_draining);
    assert_eq!(health(&mut h, "").await, ServingStatus::NotServing);
    assert_eq!(
        health(&mut h, ADMIN_SERVICE).await,
        ServingStatus::NotServing
    );
    assert_eq!(code(list(&alice).await), ErrorCode::Unavailable);
    assert!(
        !admin
            .drain(DrainRequest {})
            .await
            .unwrap()
            .into_inner()
            .newly_draining
    );
    // The admin API keeps answering while drained.
    let s = stats(&mut admin).await;
    assert!(s.draining);
    assert_eq!(s.requests.unwrap().unavailable, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_counters_and_cached_gauges() {
    let a = anchor().await;
    let mut admin = admin(&a).await;
    let (alice, bob, mallory) = (client(&a).await, client(&a).await, client(&a).await);
    let ch = create(&alice, bob.id).await;
    enqueue(&alice, ch, bob.id, b"hello").await.unwrap();
    enqueue(&alice, ch, bob.id, b"world!").await.unwrap();
    assert_eq!(
        code(enqueue(&mallory, ch, bob.id, b"x").await),
        ErrorCode::Unauthorized
    );

    let body = scrape(&a).await;
    let grpc = stats(&mut admin).await.requests.unwrap();
    assert_eq!(sample(&body, "distsoc_anchor_requests_total"), 4);
    assert_eq!(sample(&body, "distsoc_anchor_requests_total"), grpc.total);
    assert_eq!(sample(&body, "distsoc_anchor_messages_enqueued_total"), 2);
    assert_eq!(
        sample(&body, "distsoc_anchor_requests_unauthorized_total"),
        1
    );
    assert_eq!(
        sample(&body, "distsoc_anchor_requests_rate_limited_total"),
        0
    );
    assert_eq!(
        sample(&body, "distsoc_anchor_requests_unavailable_total"),
        0
    );
    assert_eq!(sample(&body, "distsoc_anchor_connections"), 3);
    assert_eq!(sample(&body, "distsoc_anchor_store_up"), 1);
    assert_eq!(sample(&body, "distsoc_anchor_channels"), 1);
    assert_eq!(sample(&body, "distsoc_anchor_queued_messages"), 2);
    assert_eq!(sample(&body, "distsoc_anchor_queued_bytes"), 11);
    assert_eq!(sample(&body, "distsoc_anchor_draining"), 0);
    assert_eq!(sample(&body, "distsoc_anchor_mailbox_ttl_seconds"), 604_800);
    assert!(body.contains("# TYPE distsoc_anchor_requests counter\n"));
    assert!(body.contains("# TYPE distsoc_anchor_queued_messages gauge\n"));
    assert!(body.contains(&format!(
        "distsoc_anchor_build_info{{version=\"{}\",protocol_version=\"2\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    )));

    // Per message: latency histograms and outcomes by error code.
    let enq = ["message=\"Enqueue\""];
    assert_eq!(
        labelled(&body, "distsoc_anchor_request_duration_seconds_count", &enq),
        3.0
    );
    assert_eq!(
        labelled(
            &body,
            "distsoc_anchor_request_duration_seconds_bucket",
            &["message=\"Enqueue\"", "le=\"+Inf\""]
        ),
        3.0
    );
    let enq_secs = labelled(&body, "distsoc_anchor_request_duration_seconds_sum", &enq);
    assert!(enq_secs > 0.0 && enq_secs < 30.0, "{enq_secs}");
    assert_eq!(
        labelled(
            &body,
            "distsoc_anchor_responses_total",
            &["message=\"Enqueue\"", "outcome=\"ok\""]
        ),
        2.0
    );
    assert_eq!(
        labelled(
            &body,
            "distsoc_anchor_responses_total",
            &["message=\"Enqueue\"", "outcome=\"unauthorized\""]
        ),
        1.0
    );
    assert_eq!(
        labelled(
            &body,
            "distsoc_anchor_responses_total",
            &["message=\"CreateChannel\"", "outcome=\"ok\""]
        ),
        1.0
    );
    // Connections by slot class, every class present: what the mesh holds
    // (these plain QUIC clients do not take part in the mesh, so none).
    let class = |c: &str| {
        labelled(
            &body,
            "distsoc_anchor_mesh_connections",
            &[&format!("class=\"{c}\"")],
        )
    };
    assert_eq!(
        [
            class("social"),
            class("wide"),
            class("anchor"),
            class("inbound")
        ],
        [0.0; 4]
    );
    // Store gauges (SQLite: the writer queue; no pool).
    assert_eq!(
        labelled(&body, "distsoc_anchor_store_info", &["backend=\"sqlite\""]),
        1.0
    );
    assert_eq!(sample(&body, "distsoc_anchor_store_reachable"), 1);
    assert!(sample(&body, "distsoc_anchor_store_write_queue_capacity") > 0);
    assert!(
        sample(&body, "distsoc_anchor_store_write_queue")
            <= sample(&body, "distsoc_anchor_store_write_queue_capacity")
    );
    assert!(
        !body.contains("distsoc_anchor_store_pool"),
        "no pool on SQLite"
    );
    assert_eq!(sample(&body, "distsoc_anchor_mailbox_ttl_overridden"), 0);
    // The standard process metrics, with plausible values.
    let cpu = sample_f64(&body, "process_cpu_seconds_total");
    assert!(cpu > 0.0 && cpu < 3600.0, "{cpu}");
    let rss = sample(&body, "process_resident_memory_bytes");
    assert!(rss > 1 << 20 && rss < 8 << 30, "{rss}");
    assert!(sample(&body, "process_virtual_memory_bytes") >= rss);
    let fds = sample(&body, "process_open_fds");
    assert!(fds >= 3 && fds <= sample(&body, "process_max_fds"), "{fds}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = sample_f64(&body, "process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 3600.0,
        "{started} vs {now}"
    );

    // Counters are live; store sizes come from a cache of a few seconds, so
    // scrapes do not each count the tables.
    enqueue(&alice, ch, bob.id, b"third").await.unwrap();
    let body = scrape(&a).await;
    assert_eq!(sample(&body, "distsoc_anchor_messages_enqueued_total"), 3);
    assert_eq!(sample(&body, "distsoc_anchor_queued_messages"), 2, "cached");
    assert_eq!(
        stats(&mut admin).await.queued_messages,
        3,
        "GetStats is fresh"
    );

    // A client that takes part in the mesh dialled in: an inbound mesh
    // connection, holding none of the anchor's slots.
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let meshed = Transport::bind(
        &key,
        distsoc_net::transport::TransportConfig {
            listen: LOOPBACK,
            capabilities: vec![distsoc_net::mesh::MESH_CAPABILITY.to_string()],
            ..Default::default()
        },
        std::sync::Arc::new(common::Refuse),
    )
    .unwrap();
    let _meshed_peer = meshed.connect(a.id, a.addr).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let body = scrape(&a).await;
        let inbound = labelled(
            &body,
            "distsoc_anchor_mesh_connections",
            &["class=\"inbound\""],
        );
        if inbound == 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "inbound {inbound}\n{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Only /metrics is served.
    let (status, _, _) = http_get(a.anchor.metrics_addr().unwrap(), "/").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_turns_health_not_serving_and_closes_both_servers() {
    let a = anchor().await;
    let (admin_addr, metrics_addr) = (
        a.anchor.admin_addr().unwrap(),
        a.anchor.metrics_addr().unwrap(),
    );
    let ch = channel(&a).await;
    let mut h = HealthClient::new(ch.clone());
    assert_eq!(health(&mut h, "").await, ServingStatus::Serving);

    // Draining the service directly (not through the API) also flips health.
    a.anchor.service.drain();
    let deadline = Instant::now() + Duration::from_secs(5);
    while health(&mut h, "").await != ServingStatus::NotServing {
        assert!(Instant::now() < deadline, "health never turned NOT_SERVING");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Stop completes promptly although a gRPC channel is still open.
    let started = Instant::now();
    a.anchor.stop(Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    for addr in [admin_addr, metrics_addr] {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still accepts connections"
        );
    }
    drop(ch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_addresses_disable_both_servers() {
    let a = anchor_with(AnchorConfig {
        admin_listen: String::new(),
        metrics_listen: String::new(),
        ..AnchorConfig::default()
    })
    .await;
    assert_eq!(a.anchor.admin_addr(), None);
    assert_eq!(a.anchor.metrics_addr(), None);
    let alice = client(&a).await;
    list(&alice).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_fails_start() {
    let holder = std::net::TcpListener::bind(LOOPBACK).unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    for (admin, metrics, key) in [
        (taken.clone(), String::new(), "admin_listen"),
        ("127.0.0.1:0".to_string(), taken.clone(), "metrics_listen"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let key_pair = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
        let cfg = AnchorConfig {
            listen: LOOPBACK,
            admin_listen: admin,
            metrics_listen: metrics,
            ..AnchorConfig::default()
        };
        let opts = RunOptions {
            data_dir: dir.path().into(),
            drain_timeout: Duration::from_secs(1),
        };
        let e = Anchor::start(&key_pair, &cfg, &opts).await.unwrap_err();
        assert!(e.to_string().contains(key), "{e}");
    }
}

/// Bans and a retention set through the admin API are stored: an anchor
/// restarted on the same data directory still refuses the banned identity,
/// keeps the retention and announces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_and_retention_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let opts = RunOptions {
        data_dir: dir.path().into(),
        drain_timeout: Duration::from_secs(5),
    };
    let cfg = AnchorConfig {
        listen: LOOPBACK,
        admin_listen: "127.0.0.1:0".into(),
        metrics_listen: String::new(),
        ..AnchorConfig::default()
    };
    let start = || async {
        let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
        let addr = anchor.local_addr().unwrap();
        TestAnchor {
            _dir: tempfile::tempdir().unwrap(),
            anchor,
            id: key.node_id(),
            addr,
        }
    };
    let alice_key = SigningKey::generate(&mut rand_core::OsRng);
    let alice_id = NodeId(alice_key.public());

    let a = start().await;
    let mut admin_api = admin(&a).await;
    admin_api
        .ban(BanRequest {
            node_id: alice_id.to_hex(),
        })
        .await
        .unwrap();
    admin_api
        .set_retention(SetRetentionRequest {
            mailbox_ttl_secs: 120,
            ..Default::default()
        })
        .await
        .unwrap();
    drop(admin_api);
    a.anchor.stop(Duration::from_secs(5)).await;

    let a = start().await;
    let mut admin_api = admin(&a).await;
    let s = stats(&mut admin_api).await;
    assert_eq!(s.banned, vec![alice_id.to_hex()]);
    assert_eq!(s.mailbox_ttl_secs, 120);
    assert_eq!(s.mailbox_ttl_source(), RetentionSource::Api);
    assert_eq!(s.configured_mailbox_ttl_secs, 604_800);
    // The reloaded ban refuses alice when she connects (before Hello).
    let (_t, refused) = common::try_connect_as(&alice_key, a.id, a.addr, LOOPBACK).await;
    match refused {
        Err(TransportError::ConnectionLost(CloseReason::Application { code, .. })) => {
            assert_eq!(code, u64::from(CLOSE_REFUSED));
        }
        other => panic!("expected alice to be refused, got {other:?}"),
    }
    let bob = client(&a).await;
    assert_eq!(
        bob.peer.info().limits.mailbox_ttl_ms,
        120_000,
        "Hello announces it"
    );
    list(&bob).await.expect("others are served");

    // Clearing the override goes back to the configuration, for good.
    let r = admin_api
        .set_retention(SetRetentionRequest {
            clear: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.previous_ttl_secs, r.mailbox_ttl_secs, r.source()),
        (120, 604_800, RetentionSource::Config)
    );
    let e = admin_api
        .set_retention(SetRetentionRequest {
            clear: true,
            mailbox_ttl_secs: 5,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    drop(admin_api);
    drop(bob);
    a.anchor.stop(Duration::from_secs(5)).await;
    let a = start().await;
    let s = stats(&mut admin(&a).await).await;
    assert_eq!(
        (s.mailbox_ttl_secs, s.mailbox_ttl_source()),
        (604_800, RetentionSource::Config)
    );
    assert_eq!(s.banned, vec![alice_id.to_hex()], "the ban stays");
}

/// gRPC server reflection lists the admin, health and reflection services
/// and serves admin.proto's descriptor (what grpcurl needs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_and_serves_the_descriptor() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let a = anchor().await;
    let mut client = ServerReflectionClient::new(channel(&a).await);
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol(format!("{ADMIN_SERVICE}.GetStats")),
    ]
    .map(|m| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    });
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            ADMIN_SERVICE,
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ]
    );
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected admin.proto's descriptor");
    };
    let file = <prost_types::FileDescriptorProto as prost::Message>::decode(
        files.file_descriptor_proto[0].as_slice(),
    )
    .unwrap();
    assert_eq!(file.name(), "admin.proto");
    assert_eq!(file.package(), "distsoc.admin.v1");
}

/// Runs `distsoc-anchor admin ARGS…`; returns (success, stdout, stderr).
fn admin_cli(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_distsoc-anchor"))
        .arg("--data-dir")
        .arg("/nonexistent-distsoc-admin-test")
        .arg("admin")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The `distsoc-anchor admin` client, the way an operator uses it: text
/// and JSON output, bans, retention with its source, drain, and one-line
/// errors that name the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_drives_a_running_anchor() {
    let a = anchor().await;
    let addr = a.anchor.admin_addr().unwrap().to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["--admin", addr.as_str()];
        all.extend_from_slice(args);
        let all: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                admin_cli(&all.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .await
            .unwrap()
        }
    };
    let json = |out: &str| -> serde_json::Value { serde_json::from_str(out.trim()).unwrap() };

    let (ok, out, err) = cli(&["stats"]).await;
    assert!(ok, "{err}");
    assert!(out.contains(&format!("anchor at {addr}")), "{out}");
    assert!(out.contains("state        serving"), "{out}");
    assert!(
        out.contains(
            "retention    604800 s (7d), mailbox_ttl_secs of the configuration (the default)"
        ),
        "{out}"
    );

    let mallory = NodeId(SigningKey::generate(&mut rand_core::OsRng).public()).to_hex();
    let (ok, out, _) = cli(&["ban", &mallory]).await;
    assert!(ok);
    assert_eq!(
        out,
        format!("banned {mallory} (stored: survives restarts)\n")
    );
    let (ok, out, _) = cli(&["ban", &mallory, "--json"]).await;
    assert!(ok);
    assert_eq!(
        json(&out),
        serde_json::json!({"node_id": mallory, "action": "ban", "changed": false})
    );

    let (ok, out, _) = cli(&["retention", "36h"]).await;
    assert!(ok);
    assert!(
        out.starts_with("mailbox retention 129600 s (1d12h) for new messages (was 604800 s)"),
        "{out}"
    );
    let (ok, out, _) = cli(&["retention", "--json"]).await;
    assert!(ok);
    assert_eq!(
        json(&out),
        serde_json::json!({
            "mailbox_ttl_secs": 129_600,
            "source": "admin-api",
            "configured_mailbox_ttl_secs": 604_800,
            "default_mailbox_ttl_secs": 604_800,
        })
    );
    let (ok, out, _) = cli(&["retention"]).await;
    assert!(ok);
    assert!(
        out.contains("set through the admin API; overrides mailbox_ttl_secs = 604800"),
        "{out}"
    );

    let (ok, out, _) = cli(&["stats", "--json"]).await;
    assert!(ok);
    let s = json(&out);
    assert_eq!(s["banned"], serde_json::json!([mallory]));
    assert_eq!(s["retention"]["source"], "admin-api");
    assert_eq!(s["draining"], false);

    let (ok, out, _) = cli(&["retention", "--clear"]).await;
    assert!(ok);
    assert!(
        out.starts_with("retention override cleared: 604800 s (7d)"),
        "{out}"
    );
    let (ok, out, _) = cli(&["unban", &mallory]).await;
    assert!(ok);
    assert_eq!(out, format!("unbanned {mallory}\n"));

    // Errors: one line on stderr, naming the address, exit status 1.
    let (ok, out, err) = cli(&["ban", "abc"]).await;
    assert!(!ok && out.is_empty());
    assert_eq!(
        err,
        format!("error: not sent to the admin API at {addr}: 'abc' is not a NodeId: expected 64 hex digits, got 3 characters\n")
    );
    let (ok, _, err) = cli(&["retention", "0"]).await;
    assert!(!ok);
    assert!(err.contains("between 1 second and 10 years"), "{err}");
    let closed = std::net::TcpListener::bind(LOOPBACK).unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (ok, _, err) =
        tokio::task::spawn_blocking(move || admin_cli(&["--admin", &closed_addr, "stats"]))
            .await
            .unwrap();
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot reach the admin API at 127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("connection refused"), "{err}");

    let (ok, out, _) = cli(&["drain"]).await;
    assert!(ok);
    assert!(
        out.starts_with("draining: new requests are refused"),
        "{out}"
    );
    let (ok, out, _) = cli(&["stats"]).await;
    assert!(ok);
    assert!(out.contains("state        draining"), "{out}");
}

/// Health follows the database: PostgreSQL stopped under a running anchor
/// turns health NOT_SERVING (and `store_reachable` 0); started again, the
/// anchor turns SERVING by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_a_postgres_outage() {
    if pg_harness::skip() {
        return;
    }
    let cluster = std::sync::Arc::new(
        tokio::task::spawn_blocking(|| pg_harness::Cluster::start("health"))
            .await
            .unwrap(),
    );
    let url = cluster.create_database().await;
    let a = anchor_with(AnchorConfig {
        admin_listen: "127.0.0.1:0".into(),
        metrics_listen: "127.0.0.1:0".into(),
        store: url,
        ..AnchorConfig::default()
    })
    .await;
    let mut h = HealthClient::new(channel(&a).await);
    assert_eq!(health(&mut h, "").await, ServingStatus::Serving);
    let body = scrape(&a).await;
    assert_eq!(sample(&body, "distsoc_anchor_store_reachable"), 1);
    assert_eq!(
        labelled(
            &body,
            "distsoc_anchor_store_info",
            &["backend=\"postgres\""]
        ),
        1.0
    );
    let max = sample(&body, "distsoc_anchor_store_pool_max_connections");
    assert!(max >= 1, "{max}");
    let in_use = labelled(
        &body,
        "distsoc_anchor_store_pool_connections",
        &["state=\"in_use\""],
    );
    let idle = labelled(
        &body,
        "distsoc_anchor_store_pool_connections",
        &["state=\"idle\""],
    );
    assert!(
        in_use + idle >= 1.0 && in_use + idle <= max as f64,
        "{in_use} {idle}"
    );

    // Waits (bounded) for both health names to report `want`.
    async fn wait_for(h: &mut HealthClient<Channel>, want: ServingStatus, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (whole, admin) = (health(h, "").await, health(h, ADMIN_SERVICE).await);
            if whole == want && admin == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "health still {whole:?}, not {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop_server())
        .await
        .unwrap();
    let t = Instant::now();
    // The LISTEN connection is closed by the server's shutdown (noticed at
    // once); its ping would notice a silent loss within 5 s + 3 s.
    wait_for(&mut h, ServingStatus::NotServing, Duration::from_secs(10)).await;
    eprintln!("NOT_SERVING {:?} after the server stopped", t.elapsed());
    let body = scrape(&a).await;
    assert_eq!(sample(&body, "distsoc_anchor_store_reachable"), 0);
    // The admin API still answers, and says why the sizes are missing.
    let s = stats(&mut admin(&a).await).await;
    assert!(!s.store_reachable && !s.draining);
    assert!(!s.store_error.is_empty());
    let addr = a.anchor.admin_addr().unwrap().to_string();
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || admin_cli(&["--admin", &addr, "stats"]))
            .await
            .unwrap();
    assert!(ok, "{err}");
    assert!(
        out.contains("state        database unreachable (health NOT_SERVING"),
        "{out}"
    );
    assert!(out.contains("store        sizes unavailable: "), "{out}");

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.start_server())
        .await
        .unwrap();
    let t = Instant::now();
    // The listener reconnects with backoff of at most 2 s.
    wait_for(&mut h, ServingStatus::Serving, Duration::from_secs(15)).await;
    eprintln!("SERVING {:?} after the server started", t.elapsed());
    let alice = client(&a).await;
    list(&alice).await.expect("served again");
    let s = stats(&mut admin(&a).await).await;
    assert!(s.store_reachable && s.store_error.is_empty());
    assert_eq!(
        sample(&scrape(&a).await, "distsoc_anchor_store_reachable"),
        1
    );

    // Draining wins over a reachable store, for good.
    a.anchor.service.drain();
    wait_for(&mut h, ServingStatus::NotServing, Duration::from_secs(5)).await;
    drop(alice);
    a.anchor.stop(Duration::from_secs(5)).await;
    drop(cluster);
}

/// A child process killed (SIGKILL) and reaped when dropped, also when a
/// test fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The operator's path through the binaries: `init`, `run` with the admin
/// API on the address in anchor.toml, `admin ban` and `admin retention`
/// with the address taken from the configuration, `kill -9`, `run` again:
/// the ban and the retention are still there, and the anchor warns at start
/// that the stored retention overrides `mailbox_ttl_secs`; after
/// `admin retention --clear` and another restart, it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_keeps_bans_and_retention_and_warns_about_the_override() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    const BIN: &str = env!("CARGO_BIN_EXE_distsoc-anchor");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("anchor");
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .arg("init")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let admin_addr = {
        let l = std::net::TcpListener::bind(LOOPBACK).unwrap();
        l.local_addr().unwrap()
    };
    let toml_path = data.join("anchor.toml");
    let text = std::fs::read_to_string(&toml_path).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("admin_listen")),
        "{text}"
    );
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("admin_listen") {
                format!("admin_listen = \"{admin_addr}\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&toml_path, text).unwrap();

    // Starts the anchor; returns it once serving, with its stderr file.
    let run = |n: u32| {
        let log = dir.path().join(format!("run{n}.log"));
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(&data)
            .args(["run", "--listen", "127.0.0.1:0", "--metrics-listen", ""])
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains('@'), "anchor printed {line:?}");
        (KillOnDrop(child), log)
    };
    let cli = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--data-dir")
            .arg(&data)
            .arg("admin")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "admin {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let json = |out: String| -> serde_json::Value { serde_json::from_str(out.trim()).unwrap() };
    let banned = NodeId(SigningKey::generate(&mut rand_core::OsRng).public()).to_hex();

    let (child, _) = run(0);
    cli(&["ban", &banned]);
    cli(&["retention", "2h"]);
    drop(child);

    let (child, log) = run(1);
    let stats = json(cli(&["stats", "--json"]));
    assert_eq!(stats["banned"], serde_json::json!([banned]));
    assert_eq!(
        stats["retention"],
        serde_json::json!({
            "mailbox_ttl_secs": 7200,
            "source": "admin-api",
            "configured_mailbox_ttl_secs": 604_800,
            "default_mailbox_ttl_secs": 604_800,
        })
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    let warning = logged
        .lines()
        .find(|l| l.contains("overrides mailbox_ttl_secs"))
        .unwrap_or_else(|| panic!("no override warning in\n{logged}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("7200") && warning.contains("604800"),
        "{warning}"
    );
    cli(&["retention", "--clear"]);
    drop(child);

    let (child, log) = run(2);
    let retention = json(cli(&["retention", "--json"]));
    assert_eq!(retention["source"], "config");
    assert_eq!(retention["mailbox_ttl_secs"], 604_800);
    assert_eq!(
        json(cli(&["stats", "--json"]))["banned"],
        serde_json::json!([banned])
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains("overrides mailbox_ttl_secs"), "{logged}");
    drop(child);
}
