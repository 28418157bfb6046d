//! `distsoc loadgen` against a stub anchor written here: a [`Transport`] whose
//! handler keeps an in-memory mailbox (CreateChannel, Enqueue, Fetch,
//! FetchWait woken by a tokio `Notify`), acknowledges valid `PushPost`s and
//! `PostNotification`s.
//! It can also refuse everything with `rateLimited`, or rate-limit each
//! identity with a token bucket, like the real anchor.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use distsoc_net::transport::{Handler, HandlerFuture, RequestCtx, Transport, TransportConfig};
use distsoc_protocol::error::{ErrorCode, WireCode};
use distsoc_protocol::ids::{ChannelId, ConnectString, NodeId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::messages::common::Role;
use distsoc_protocol::messages::mailbox::{
    CreateChannelResponse, EnqueueResponse, Fetch, FetchResponse, FetchWaitResponse, MailboxMessage,
};
use distsoc_protocol::messages::wire::{self, Limits};
use distsoc_protocol::messages::Message;
use distsoc_protocol::sign::SigningKey;
use distsoc_tools::loadgen::{self, Options, Report, Scenario, StopReason};
use tokio::sync::Notify;

const TTL_MS: u64 = 7 * 24 * 3600 * 1000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Serve everything.
    Serve,
    /// Refuse every request with `rateLimited` and this `retryAfterMs`.
    RefuseAll { retry_after_ms: u32 },
    /// A token bucket per identity: `per_second` sustained, burst 5.
    Limit { per_second: f64 },
    /// Like a database that crashes in `COMMIT` after the commit was
    /// durable: every `every`-th new Enqueue is stored and then answered
    /// `unavailable` (outcome unknown). `dedup`: retries with the same
    /// `clientMessageId` are acknowledged as the original, as the spec
    /// requires; without it (a broken anchor) they are stored again.
    CommitThenFail { every: u64, dedup: bool },
}

#[derive(Default)]
struct Queue {
    next_id: u64,
    messages: Vec<MailboxMessage>,
    notify: Arc<Notify>,
    /// (sender, clientMessageId) → (message id, received at).
    by_cmid: HashMap<(NodeId, [u8; 16]), (u64, u64)>,
}

#[derive(Default)]
struct State {
    channels: HashMap<ChannelId, [NodeId; 2]>,
    by_pair: HashMap<[NodeId; 2], ChannelId>,
    queues: HashMap<(NodeId, ChannelId), Queue>,
    next_channel: u64,
    /// Ids of the posts acknowledged.
    post_ids: std::collections::HashSet<[u8; 32]>,
    /// (author, post id) of the notifications acknowledged.
    notified: std::collections::HashSet<(NodeId, [u8; 32])>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    /// Enqueues stored but answered `unavailable`.
    failed_after_commit: AtomicU64,
    rate_limited: AtomicU64,
    enqueued: AtomicU64,
    delivered: AtomicU64,
    posts: AtomicU64,
    notifications: AtomicU64,
}

struct StubAnchor {
    mode: Mode,
    state: Mutex<State>,
    buckets: Mutex<HashMap<NodeId, (f64, Instant)>>,
    counters: Counters,
}

fn refuse(code: ErrorCode, why: &str) -> wire::Error {
    wire::Error::new(code, 0, why)
}

impl StubAnchor {
    fn new(mode: Mode) -> Self {
        Self {
            mode,
            state: Mutex::new(State::default()),
            buckets: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        }
    }

    /// Token bucket: Ok, or the ms until a token is there.
    fn take_token(&self, peer: NodeId, per_second: f64) -> Result<(), u32> {
        const BURST: f64 = 5.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap();
        let (tokens, updated) = buckets.entry(peer).or_insert((BURST, now));
        *tokens = (*tokens + now.duration_since(*updated).as_secs_f64() * per_second).min(BURST);
        *updated = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - *tokens) / per_second) * 1000.0).ceil().max(1.0) as u32)
        }
    }

    /// The other member of `channel`, if `me` is a member.
    fn other(state: &State, channel: ChannelId, me: NodeId) -> Result<NodeId, wire::Error> {
        match state.channels.get(&channel) {
            Some([a, b]) if *a == me => Ok(*b),
            Some([a, b]) if *b == me => Ok(*a),
            _ => Err(refuse(ErrorCode::Unauthorized, "not a member")),
        }
    }

    /// Acknowledges through `fetch.ack_through`, then returns a page.
    fn fetch(&self, me: NodeId, f: &Fetch) -> Result<FetchResponse, wire::Error> {
        let channel = f
            .channel_id
            .ok_or_else(|| refuse(ErrorCode::Unauthorized, "the stub has no legacy mailbox"))?;
        let mut state = self.state.lock().unwrap();
        Self::other(&state, channel, me)?;
        let queue = state.queues.entry((me, channel)).or_default();
        queue.messages.retain(|m| m.message_id > f.ack_through);
        let max = f.effective_max_messages();
        let messages: Vec<MailboxMessage> = queue.messages.iter().take(max).cloned().collect();
        self.counters
            .delivered
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        Ok(FetchResponse {
            version: PROTOCOL_VERSION,
            more: queue.messages.len() > messages.len(),
            messages,
        })
    }

    async fn serve(&self, ctx: RequestCtx, msg: Message) -> Result<Option<Message>, wire::Error> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let limited = match self.mode {
            Mode::Serve | Mode::CommitThenFail { .. } => None,
            Mode::RefuseAll { retry_after_ms } => Some(retry_after_ms),
            Mode::Limit { per_second } => self.take_token(ctx.peer, per_second).err(),
        };
        if let Some(ms) = limited {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Err(refuse(ErrorCode::RateLimited, "stub rate limit").with_retry_after(ms));
        }
        let me = ctx.peer;
        match msg {
            Message::CreateChannel(r) => {
                if r.peer == me {
                    return Err(refuse(ErrorCode::Malformed, "peer must differ"));
                }
                let pair = if me < r.peer {
                    [me, r.peer]
                } else {
                    [r.peer, me]
                };
                let mut state = self.state.lock().unwrap();
                let id = match state.by_pair.get(&pair) {
                    Some(id) => *id,
                    None => {
                        state.next_channel += 1;
                        let mut id = [0xC4u8; 16];
                        id[..8].copy_from_slice(&state.next_channel.to_le_bytes());
                        let id = ChannelId(id);
                        state.by_pair.insert(pair, id);
                        state.channels.insert(id, pair);
                        id
                    }
                };
                Ok(Some(Message::CreateChannelResponse(
                    CreateChannelResponse::new(PROTOCOL_VERSION, id, me, r.peer, now_ms()),
                )))
            }
            Message::Enqueue(r) => {
                let channel = r
                    .channel_id
                    .ok_or_else(|| refuse(ErrorCode::Unauthorized, "no legacy mailbox"))?;
                let mut state = self.state.lock().unwrap();
                if Self::other(&state, channel, me)? != r.recipient {
                    return Err(refuse(ErrorCode::Unauthorized, "not the other member"));
                }
                let now = now_ms();
                let queue = state.queues.entry((r.recipient, channel)).or_default();
                let dedup = !matches!(self.mode, Mode::CommitThenFail { dedup: false, .. });
                if let (true, Some(cmid)) = (dedup, r.client_message_id) {
                    if let Some((id, at)) = queue.by_cmid.get(&(me, cmid)) {
                        return Ok(Some(Message::EnqueueResponse(EnqueueResponse {
                            version: PROTOCOL_VERSION,
                            message_id: *id,
                            received_at_ms: *at,
                            expires_at_ms: *at + TTL_MS,
                        })));
                    }
                }
                queue.next_id += 1;
                if let Some(cmid) = r.client_message_id {
                    queue.by_cmid.insert((me, cmid), (queue.next_id, now));
                }
                queue.messages.push(MailboxMessage {
                    message_id: queue.next_id,
                    channel_id: Some(channel),
                    sender: me,
                    received_at_ms: now,
                    expires_at_ms: now + TTL_MS,
                    payload: r.payload,
                });
                queue.notify.notify_waiters();
                let n = self.counters.enqueued.fetch_add(1, Ordering::Relaxed) + 1;
                if let Mode::CommitThenFail { every, .. } = self.mode {
                    if n.is_multiple_of(every) {
                        self.counters
                            .failed_after_commit
                            .fetch_add(1, Ordering::Relaxed);
                        return Err(refuse(ErrorCode::Unavailable, "COMMIT outcome lost"));
                    }
                }
                Ok(Some(Message::EnqueueResponse(EnqueueResponse {
                    version: PROTOCOL_VERSION,
                    message_id: queue.next_id,
                    received_at_ms: now,
                    expires_at_ms: now + TTL_MS,
                })))
            }
            Message::Fetch(f) => Ok(Some(Message::FetchResponse(self.fetch(me, &f)?))),
            Message::FetchWait(w) => {
                let f = w.as_fetch();
                let channel = f
                    .channel_id
                    .ok_or_else(|| refuse(ErrorCode::Unauthorized, "no legacy mailbox"))?;
                let notify = {
                    let mut state = self.state.lock().unwrap();
                    Self::other(&state, channel, me)?;
                    state
                        .queues
                        .entry((me, channel))
                        .or_default()
                        .notify
                        .clone()
                };
                // Register before the first fetch so an enqueue in between
                // still wakes us.
                let notified = notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let first = self.fetch(me, &f)?;
                if !first.messages.is_empty() {
                    return Ok(Some(Message::FetchWaitResponse(FetchWaitResponse(first))));
                }
                let wait = Duration::from_millis(u64::from(w.effective_timeout_ms(60_000)));
                let page = if tokio::time::timeout(wait, notified).await.is_ok() {
                    self.fetch(
                        me,
                        &Fetch {
                            ack_through: 0,
                            ..f
                        },
                    )?
                } else {
                    first
                };
                Ok(Some(Message::FetchWaitResponse(FetchWaitResponse(page))))
            }
            Message::PushPost(p) => {
                p.post
                    .validate(None)
                    .map_err(|e| refuse(e.error_code(), &e.to_string()))?;
                if p.post.post.body().author.0 != me.0 {
                    return Err(refuse(ErrorCode::Unauthorized, "not the author"));
                }
                self.counters.posts.fetch_add(1, Ordering::Relaxed);
                self.state
                    .lock()
                    .unwrap()
                    .post_ids
                    .insert(p.post.post_id().0);
                Ok(None)
            }
            Message::PostNotification(n) => {
                if n.author.0 != me.0 {
                    return Err(refuse(ErrorCode::Unauthorized, "not the author"));
                }
                self.counters.notifications.fetch_add(1, Ordering::Relaxed);
                self.state
                    .lock()
                    .unwrap()
                    .notified
                    .insert((me, n.post_id.0));
                Ok(None)
            }
            other => Err(refuse(
                ErrorCode::UnknownMessage,
                &format!("{} is not served by the stub", other.code()),
            )),
        }
    }
}

struct StubHandler(Arc<StubAnchor>);

impl Handler for StubHandler {
    fn handle<'a>(&'a self, ctx: RequestCtx, msg: Message) -> HandlerFuture<'a> {
        Box::pin(self.0.serve(ctx, msg))
    }
}

struct Stub {
    anchor: Arc<StubAnchor>,
    transport: Transport,
    target: ConnectString,
}

fn stub(mode: Mode) -> Stub {
    let key = SigningKey::from_seed(&[0xA5; 32]);
    let anchor = Arc::new(StubAnchor::new(mode));
    let cfg = TransportConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        roles: vec![Role::Anchor],
        capabilities: vec!["mailbox/1".into()],
        agent: "stub-anchor/test".into(),
        limits: Limits {
            rate_limit_per_second: match mode {
                Mode::Limit { per_second } => per_second as u16,
                _ => 0,
            },
            max_fetch_wait_ms: 60_000,
            ..Limits::default()
        },
        max_concurrent_bidi: 100,
        ..TransportConfig::default()
    };
    let transport = Transport::bind(&key, cfg, Arc::new(StubHandler(anchor.clone()))).unwrap();
    let addr = transport.local_addr().unwrap();
    let target = format!("{}@127.0.0.1:{}", transport.node_id(), addr.port())
        .parse()
        .unwrap();
    Stub {
        anchor,
        transport,
        target,
    }
}

fn options(stub: &Stub, scenario: Scenario) -> Options {
    let mut o = Options::new(stub.target.clone());
    o.clients = 4;
    o.scenario = scenario;
    o.duration = Duration::from_secs(1);
    o.payload_bytes = 256;
    o.seed = Some(7);
    o.fetch_wait_timeout = Duration::from_millis(500);
    o.drain_timeout = Duration::from_secs(5);
    o
}

async fn run(o: Options) -> (Report, Duration) {
    let start = Instant::now();
    let report = loadgen::run(o).await.expect("run");
    let took = start.elapsed();
    println!("{}", report.table());
    // The JSON report always encodes.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["scenario"], report.scenario.name());
    (report, took)
}

fn ok(r: &Report, op: &str) -> u64 {
    r.op(op).map_or(0, |o| o.ok)
}

fn errors(r: &Report, op: &str, code: &str) -> u64 {
    r.op(op)
        .and_then(|o| o.errors_by_code.get(code).copied())
        .unwrap_or(0)
}

fn assert_no_errors(r: &Report) {
    for o in &r.ops {
        assert_eq!(o.errors, 0, "{}: {:?}", o.op, o.errors_by_code);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_enqueued_equals_delivered() {
    let s = stub(Mode::Serve);
    let mut o = options(&s, Scenario::Mailbox);
    o.concurrency_per_client = 2;
    let (r, took) = run(o).await;
    assert_eq!(r.clients_connected, 4);
    assert_eq!(r.stopped_by, StopReason::Duration);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(r.consistent, "{}", r.table());
    assert_no_errors(&r);
    assert_eq!(ok(&r, "connect"), 4);
    assert_eq!(ok(&r, "create_channel"), 2, "one CreateChannel per pair");
    let m = r.mailbox.clone().unwrap();
    assert!(m.enqueued > 10, "{m:?}");
    assert_eq!(m.enqueued, ok(&r, "enqueue"));
    assert_eq!(m.enqueued, m.delivered, "{m:?}");
    assert_eq!((m.missing, m.mismatched, m.stale), (0, 0, 0));
    assert!(m.drain_complete);
    assert_eq!(
        s.anchor.counters.enqueued.load(Ordering::Relaxed),
        m.enqueued
    );
    // Deliveries during the load phase have latencies.
    let d = r.op("delivery").unwrap();
    assert_eq!(d.ok + m.delivered_during_drain, m.delivered);
    assert!(d.p50_ms.is_some() && d.p99_ms >= d.p50_ms && d.max_ms >= d.p99_ms);
    assert!(!r.rate_limit.limited);
    assert!(r
        .anchor
        .as_ref()
        .unwrap()
        .capabilities
        .contains(&"mailbox/1".to_string()));
    s.transport.close().await;
}

/// Issue 9 item 12: an `unavailable` answer to an `Enqueue` that was
/// stored anyway is an unknown outcome. The load generator retries it with
/// the same `clientMessageId`, the anchor deduplicates, and the check
/// demands exactly-once delivery. Before, such a message was counted as
/// "refused, not stored" and its delivery as a mismatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_outcome_enqueues_are_retried_and_delivered_exactly_once() {
    let s = stub(Mode::CommitThenFail {
        every: 7,
        dedup: true,
    });
    let (r, _) = run(options(&s, Scenario::Mailbox)).await;
    let failed = s
        .anchor
        .counters
        .failed_after_commit
        .load(Ordering::Relaxed);
    assert!(failed >= 3, "{failed}: too few outcome-unknown enqueues");
    let m = r.mailbox.clone().unwrap();
    assert!(r.consistent, "{}", r.table());
    assert!(m.enqueue_retries >= failed, "{m:?}");
    assert_eq!((m.missing, m.duplicates, m.mismatched), (0, 0, 0), "{m:?}");
    // Retries resolve unknown outcomes; only one cut short by the end of
    // the run (at most one per client) may stay unknown.
    assert!(m.enqueue_unknown <= 4, "{m:?}");
    assert_eq!(m.delivered, m.enqueued + m.delivered_unconfirmed, "{m:?}");
    // Every message the stub stored was delivered once.
    assert_eq!(
        s.anchor.counters.enqueued.load(Ordering::Relaxed),
        m.delivered
    );
    assert_eq!(errors(&r, "enqueue", "unavailable"), failed);
    s.transport.close().await;
}

/// The same, against an anchor that does not deduplicate retries: the
/// check catches the second copies and the run is inconsistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anchor_that_stores_retries_twice_is_inconsistent() {
    let s = stub(Mode::CommitThenFail {
        every: 7,
        dedup: false,
    });
    let (r, _) = run(options(&s, Scenario::Mailbox)).await;
    let m = r.mailbox.clone().unwrap();
    assert!(m.duplicates > 0, "{m:?}");
    assert!(!r.consistent, "{}", r.table());
    s.transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchwait_records_wake_latency() {
    let s = stub(Mode::Serve);
    let (r, took) = run(options(&s, Scenario::Fetchwait)).await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(r.consistent, "{}", r.table());
    assert_no_errors(&r);
    let wake = r.op("wake").expect("wake latencies");
    assert!(wake.ok > 5, "{wake:?}");
    assert!(wake.p50_ms.is_some() && wake.max_ms.is_some());
    assert!(ok(&r, "fetch_wait") > 5);
    // Two senders only.
    assert!(ok(&r, "enqueue") > 5);
    assert_eq!(
        r.op("fetch").map_or(0, |o| o.ok),
        0,
        "waiters only FetchWait"
    );
    let m = r.mailbox.clone().unwrap();
    assert_eq!(m.enqueued, m.delivered, "{m:?}");
    assert_eq!(m.missing + m.mismatched, 0);
    s.transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_stops_at_request_count_and_every_post_is_acked() {
    let s = stub(Mode::Serve);
    let mut o = options(&s, Scenario::Ingest);
    o.duration = Duration::from_secs(20);
    o.requests = Some(40);
    o.concurrency_per_client = 2;
    let (r, took) = run(o).await;
    assert_eq!(r.stopped_by, StopReason::Requests);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_no_errors(&r);
    assert_eq!(r.load_requests, 40);
    assert_eq!(ok(&r, "push_post"), 40);
    assert_eq!(s.anchor.counters.posts.load(Ordering::Relaxed), 40);
    assert!(r.mailbox.is_none());
    assert!(r.consistent);
    s.transport.close().await;
}

/// `--scenario notify`: every client pushes `PostNotification`s as its own
/// author, each a distinct post id, each acknowledged; the run is an
/// ingest-like run with no mailbox part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_stops_at_request_count_and_every_notification_is_acked() {
    let s = stub(Mode::Serve);
    let mut o = options(&s, Scenario::Notify);
    o.duration = Duration::from_secs(20);
    o.requests = Some(60);
    o.concurrency_per_client = 3;
    let (r, took) = run(o).await;
    assert_eq!(r.stopped_by, StopReason::Requests);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_no_errors(&r);
    assert_eq!(r.load_requests, 60);
    assert_eq!(ok(&r, "notify"), 60);
    assert_eq!(ok(&r, "push_post"), 0);
    assert_eq!(s.anchor.counters.notifications.load(Ordering::Relaxed), 60);
    assert_eq!(s.anchor.state.lock().unwrap().notified.len(), 60);
    assert!(r.mailbox.is_none());
    assert!(r.consistent);
    s.transport.close().await;
}

/// `--presign`: the posts are signed before the load phase, which ends
/// when they are used up; every one is a distinct post; `--server-pid`
/// reports CPU per acknowledged post (here the stub runs in this process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_ingest_ends_when_the_posts_are_used_up_and_reports_cpu() {
    let s = stub(Mode::Serve);
    let mut o = options(&s, Scenario::Ingest);
    o.duration = Duration::from_secs(20);
    o.concurrency_per_client = 3;
    o.presign = 50;
    o.server_pid = Some(std::process::id());
    let (r, took) = run(o).await;
    assert_eq!(r.stopped_by, StopReason::Presigned);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_no_errors(&r);
    assert_eq!(r.presigned, 50);
    assert_eq!(ok(&r, "push_post"), 50);
    assert_eq!(s.anchor.state.lock().unwrap().post_ids.len(), 50);
    let cpu = r.cpu.as_ref().expect("cpu report");
    assert_eq!((cpu.op.as_str(), cpu.ops), ("push_post", 50));
    assert!(cpu.server_us_per_op.is_some_and(|us| us >= 0.0));
    assert!(cpu.load_average.is_some());
    assert!(r.table().contains("cpu per push_post (50 ops): server"));
    s.transport.close().await;
}

/// Posts signed while sending are distinct too, with several requests in
/// flight per client (one sequence per client, not per worker).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_signed_posts_are_distinct() {
    let s = stub(Mode::Serve);
    let mut o = options(&s, Scenario::Ingest);
    o.duration = Duration::from_secs(20);
    o.requests = Some(60);
    o.concurrency_per_client = 4;
    let (r, _) = run(o).await;
    assert_eq!(ok(&r, "push_post"), 60);
    assert_eq!(s.anchor.state.lock().unwrap().post_ids.len(), 60);
    assert!(r.cpu.is_none());
    s.transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_with_an_unpaired_client() {
    let s = stub(Mode::Serve);
    let mut o = options(&s, Scenario::Mixed);
    o.clients = 5;
    let (r, _) = run(o).await;
    assert!(r.consistent, "{}", r.table());
    assert_no_errors(&r);
    assert_eq!(r.clients_idle, 0);
    for op in ["enqueue", "fetch", "fetch_wait", "push_post"] {
        assert!(ok(&r, op) > 0, "{op} never ran");
    }
    let m = r.mailbox.clone().unwrap();
    assert_eq!(m.enqueued, m.delivered, "{m:?}");
    assert_eq!(
        s.anchor.counters.posts.load(Ordering::Relaxed),
        ok(&r, "push_post")
    );
    s.transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_target_counts_errors_honours_retry_after_and_ends_on_time() {
    for scenario in [Scenario::Mailbox, Scenario::Ingest] {
        let s = stub(Mode::RefuseAll {
            retry_after_ms: 200,
        });
        let (r, took) = run(options(&s, scenario)).await;
        assert!(took < Duration::from_secs(4), "{scenario}: took {took:?}");
        assert!(r.elapsed_s < 1.0 + 2.0, "{scenario}: {}", r.elapsed_s);
        assert!(r.rate_limit.limited);
        assert_eq!(r.rate_limit.refused, r.rate_limit.requests);
        assert!(r.table().contains("RATE LIMITED"));
        let op = if scenario == Scenario::Mailbox {
            "create_channel"
        } else {
            "push_post"
        };
        let refused = errors(&r, op, "rateLimited");
        assert!(refused > 0, "{scenario}");
        // retryAfterMs = 200 over ~1 s: at most ~6 attempts per requesting
        // client (2 channel creators in mailbox, 4 posters in ingest).
        assert!(refused <= 4 * 7, "{scenario}: {refused} refusals");
        assert_eq!(
            s.anchor.counters.rate_limited.load(Ordering::Relaxed),
            r.rate_limit.refused
        );
        assert!(r.rate_limit.paused_s > 0.5, "{scenario}");
        assert_eq!(ok(&r, op), 0);
        s.transport.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_mailbox_still_delivers_everything() {
    let s = stub(Mode::Limit { per_second: 20.0 });
    let mut o = options(&s, Scenario::Mailbox);
    o.duration = Duration::from_millis(1500);
    o.concurrency_per_client = 2;
    let (r, took) = run(o).await;
    assert!(took < Duration::from_secs(9), "took {took:?}");
    assert!(r.rate_limit.limited, "{}", r.table());
    assert_eq!(r.rate_limit.per_second, 20);
    assert!(errors(&r, "enqueue", "rateLimited") + errors(&r, "fetch", "rateLimited") > 0);
    let m = r.mailbox.clone().unwrap();
    assert!(m.enqueued > 0);
    assert_eq!(m.enqueued, m.delivered, "{m:?}");
    assert!(r.consistent, "{}", r.table());
    // Per client at most ~20/s plus the burst: the limiter shaped the run.
    let sent = ok(&r, "enqueue") + ok(&r, "fetch") + ok(&r, "create_channel");
    assert!(sent as f64 <= 4.0 * (20.0 * r.elapsed_s + 6.0), "{sent}");
    s.transport.close().await;
}

/// Binds a stub transport serving `anchor` at `addr`, retrying while the
/// previous endpoint's socket is being released.
async fn rebind(anchor: Arc<StubAnchor>, addr: SocketAddr) -> Transport {
    let key = SigningKey::from_seed(&[0xA5; 32]);
    for _ in 0..50 {
        let cfg = TransportConfig {
            listen: addr,
            roles: vec![Role::Anchor],
            capabilities: vec!["mailbox/1".into()],
            max_concurrent_bidi: 100,
            ..TransportConfig::default()
        };
        if let Ok(t) = Transport::bind(&key, cfg, Arc::new(StubHandler(anchor.clone()))) {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot rebind {addr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reconnect_after_an_anchor_restart() {
    let s = stub(Mode::Serve);
    let addr = s.transport.local_addr().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    let mut o = options(&s, Scenario::Mailbox);
    o.duration = Duration::from_secs(3);
    let load = tokio::spawn(run(o));
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Restart: every connection closes; the state survives (like a durable
    // anchor).
    s.transport.close().await;
    drop(s.transport);
    let restarted = rebind(s.anchor.clone(), addr).await;
    let (r, took) = load.await.unwrap();
    assert!(took < Duration::from_secs(9), "took {took:?}");
    let connect = r.op("connect").unwrap();
    assert!(connect.ok > 4, "no reconnection: {connect:?}");
    let lost: u64 = ["enqueue", "fetch"]
        .iter()
        .map(|op| errors(&r, op, "connectionClosed"))
        .sum();
    assert!(lost > 0, "{}", r.table());
    let m = r.mailbox.clone().unwrap();
    assert_eq!((m.missing, m.mismatched), (0, 0), "{m:?}");
    assert!(m.drain_complete);
    assert!(r.consistent, "{}", r.table());
    // Enqueues after the restart were delivered too.
    assert!(ok(&r, "enqueue") > 50);
    restarted.close().await;
}
