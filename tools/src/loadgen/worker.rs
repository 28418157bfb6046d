//! Clients and their workers: one QUIC endpoint per identity, the
//! per-client request loop, retries and rate-limit pauses.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::payload::{
    client_message_id, make_payload, now_ms, now_us, parse_payload, stamp, Header,
};
use super::report::{STOP_NONE, STOP_PRESIGNED, STOP_REQUESTS};
use super::stats::{micros, Live, Op, Stats};
use super::{
    Options, Scenario, DEFAULT_RETRY_AFTER, ENQUEUE_ATTEMPTS, ERROR_BACKOFF, MIXED_FETCH_WAIT,
    RECONNECT_BACKOFF,
};
use distsoc_net::transport::{Handler, HandlerFuture, Peer, RequestCtx, RequestError, Transport};
use distsoc_node::compose::compose;
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{ChannelId, NodeId, PostId, PostingId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::messages::common::VisibilityHint;
use distsoc_protocol::messages::content::{SyncPost, MAX_POST_TEXT_BYTES};
use distsoc_protocol::messages::files::PostNotification;
use distsoc_protocol::messages::mailbox::{
    CreateChannel, Enqueue, Fetch, FetchResponse, FetchWait, FetchWaitResponse, MailboxMessage,
};
use distsoc_protocol::messages::social::PushPost;
use distsoc_protocol::messages::wire::{self, Ack};
use distsoc_protocol::messages::Message;
use distsoc_protocol::request::{Push, Request};
use distsoc_protocol::sign::SigningKey;
use rand_chacha::ChaCha8Rng;
use rand_core::{OsRng, RngCore, SeedableRng};
use tokio::sync::{watch, Semaphore};

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// A client endpoint serves nothing.
pub(super) struct Refuse;

impl Handler for Refuse {
    fn handle<'a>(&'a self, _ctx: RequestCtx, _msg: Message) -> HandlerFuture<'a> {
        Box::pin(async {
            Err(wire::Error::new(
                ErrorCode::UnknownMessage,
                0,
                "loadgen client serves nothing",
            ))
        })
    }
}

/// A signed public post of client `idx`, its text naming the run and `seq`
/// and padded to `payload_bytes` (within the post text limit).
pub(super) fn compose_post(
    key: &SigningKey,
    run_id: u64,
    idx: usize,
    seq: u64,
    payload_bytes: usize,
) -> Option<SyncPost> {
    let mut text = format!("distsoc loadgen run {run_id:016x} client {idx} post {seq} ");
    let len = payload_bytes.clamp(text.len(), MAX_POST_TEXT_BYTES);
    text.extend(std::iter::repeat_n('x', len.saturating_sub(text.len())));
    compose(key, now_ms(), text, Vec::new(), None, &mut OsRng).ok()
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) struct Client {
    /// Index among all clients (`--clients`), as in payloads.
    pub(super) idx: usize,
    pub(super) key: SigningKey,
    pub(super) id: NodeId,
    pub(super) transport: Transport,
    /// The anchor this client talks to (and reconnects to).
    pub(super) target: (NodeId, SocketAddr),
    pub(super) peer: Mutex<Peer>,
    /// No request before this instant (retryAfterMs).
    pub(super) paused_until: Mutex<Option<Instant>>,
    /// Time paused honouring `retryAfterMs`, µs.
    pub(super) retry_paused_us: AtomicU64,
    pub(super) reconnecting: tokio::sync::Mutex<()>,
}

impl Client {
    fn peer(&self) -> Peer {
        lock(&self.peer).clone()
    }

    /// No request before `d` from now; `retry`: the pause honours a
    /// `retryAfterMs` (counted in the report).
    fn pause(&self, d: Duration, retry: bool) {
        let now = Instant::now();
        let until = now + d;
        let mut p = lock(&self.paused_until);
        let from = match *p {
            Some(prev) if prev > now => prev,
            _ => now,
        };
        if until > from {
            *p = Some(until);
            if retry {
                self.retry_paused_us
                    .fetch_add(micros(until - from), Ordering::Relaxed);
            }
        }
    }
}

/// Messages addressed to one client.
#[derive(Debug, Default)]
pub(super) struct Book {
    pub(super) attempted: HashSet<u64>,
    pub(super) confirmed: HashSet<u64>,
    /// Sequence → the message id it was first delivered under.
    pub(super) delivered: HashMap<u64, u64>,
    pub(super) drained: u64,
    pub(super) duplicates: u64,
    pub(super) redelivered: u64,
    pub(super) mismatched: u64,
    pub(super) stale: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Idle,
    /// Creates the pair's channel (the lower index); waits in `fetchwait`.
    PairLow,
    /// The other member; sends in `fetchwait`.
    PairHigh,
    Ingest,
}

pub(super) struct Slot {
    pub(super) client: Arc<Client>,
    pub(super) role: Role,
    /// The partner's slot.
    pub(super) partner: Option<usize>,
    /// The pair's channel (shared by both members).
    pub(super) channel: Option<Arc<watch::Sender<Option<ChannelId>>>>,
    /// Sequence of the messages this client sends.
    pub(super) next_seq: AtomicU64,
    /// `ackThrough` of the own queue; serializes its fetches.
    pub(super) inbox: tokio::sync::Mutex<u64>,
    /// Messages addressed to this client.
    pub(super) book: Mutex<Book>,
    /// Posts signed before the load phase (`--presign`), sent last first.
    pub(super) presigned: Mutex<Vec<SyncPost>>,
    /// `fetchwait`: messages on their way to this client (its sender takes a
    /// permit per message, the waiter returns it on delivery).
    pub(super) in_flight: Semaphore,
}

pub(super) struct Run {
    pub(super) opts: Options,
    pub(super) run_id: u64,
    pub(super) slots: Vec<Slot>,
    pub(super) stop_tx: watch::Sender<bool>,
    pub(super) stop_rx: watch::Receiver<bool>,
    pub(super) stop_reason: AtomicU8,
    pub(super) interrupt_tx: watch::Sender<bool>,
    pub(super) interrupt_rx: watch::Receiver<bool>,
    pub(super) issued: AtomicU64,
    pub(super) live: Live,
    pub(super) draining: AtomicBool,
}

/// When an operation is abandoned.
#[derive(Debug, Clone, Copy)]
enum Cutoff {
    /// When the load phase ends (held FetchWaits).
    AtStop,
    /// A grace period after the load phase ends.
    Grace,
    /// At this instant, or on interruption (drain).
    At(Instant),
}

/// The outcome of one request whose success is a `T` (the request's own
/// response type, or `Ack` for a push).
enum Reply<T> {
    /// Answered, with the latency.
    Ok(T, Duration),
    /// A typed refusal (`Error`) with its code.
    Refused(ErrorCode),
    Failed,
    Cancelled,
    /// Not sent: the phase ended while the client was paused.
    NotSent,
}

impl<T> Reply<T> {
    /// The same outcome with the success value mapped (FetchWait's response
    /// to Fetch's page).
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        match self {
            Reply::Ok(t, lat) => Reply::Ok(f(t), lat),
            Reply::Refused(code) => Reply::Refused(code),
            Reply::Failed => Reply::Failed,
            Reply::Cancelled => Reply::Cancelled,
            Reply::NotSent => Reply::NotSent,
        }
    }
}

fn local_kind(e: &RequestError) -> &'static str {
    match e {
        RequestError::Timeout(_) => "timeout",
        RequestError::Closed(_) => "connectionClosed",
        RequestError::Stream(_) => "streamFailed",
        RequestError::BadFrame(_) | RequestError::BadReply(_) => "badReply",
        RequestError::UnexpectedReply { .. } => "unexpectedReply",
        RequestError::Encode(_) => "encodeFailed",
        RequestError::Remote(_) => "remote",
    }
}

impl Run {
    fn is_over(&self) -> bool {
        *self.stop_rx.borrow()
    }

    pub(super) fn stop(&self, reason: u8) {
        let _ = self.stop_reason.compare_exchange(
            STOP_NONE,
            reason,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.stop_tx.send_replace(true);
    }

    async fn load_over(&self) {
        let mut rx = self.stop_rx.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    async fn interrupted(&self) {
        let mut rx = self.interrupt_rx.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    async fn cut(&self, cutoff: Cutoff) {
        match cutoff {
            Cutoff::AtStop => self.load_over().await,
            Cutoff::Grace => {
                self.load_over().await;
                tokio::time::sleep(self.opts.grace).await;
            }
            Cutoff::At(t) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(t.into()) => {}
                    _ = self.interrupted() => {}
                }
            }
        }
    }

    /// Takes one request from the `--requests` budget; false once the load
    /// phase is over.
    fn take(&self) -> bool {
        if self.is_over() {
            return false;
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        match self.opts.requests {
            Some(limit) if n >= limit => {
                self.issued.fetch_sub(1, Ordering::SeqCst);
                self.stop(STOP_REQUESTS);
                false
            }
            Some(limit) if n + 1 == limit => {
                // The last one: end the load phase; this request still runs
                // within the grace period.
                self.stop(STOP_REQUESTS);
                true
            }
            _ => true,
        }
    }

    fn channel(&self, slot: usize) -> Option<ChannelId> {
        self.slots[slot].channel.as_ref().and_then(|c| *c.borrow())
    }
}

pub(super) struct Worker {
    run: Arc<Run>,
    pub(super) stats: Stats,
    rng: ChaCha8Rng,
}

impl Worker {
    pub(super) fn new(run: Arc<Run>, stream: u64) -> Self {
        let seed = match run.opts.seed {
            Some(s) => s ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            None => OsRng.next_u64(),
        };
        Self {
            run,
            stats: Stats::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Waits out the client's pause (which other tasks of the client may
    /// extend meanwhile); false if the phase ended first.
    async fn wait_pause(&self, client: &Client, cutoff: Cutoff) -> bool {
        let cut = match cutoff {
            Cutoff::Grace | Cutoff::AtStop => Cutoff::AtStop,
            at => at,
        };
        loop {
            let until = *lock(&client.paused_until);
            let Some(until) = until.filter(|u| *u > Instant::now()) else {
                return true;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = self.run.cut(cut) => return false,
            }
        }
    }

    /// Sends request `req` from `slot`'s client (reply within `timeout`).
    async fn request<R: Request>(
        &mut self,
        slot: usize,
        op: Op,
        req: R,
        timeout: Duration,
        cutoff: Cutoff,
    ) -> Reply<R::Response> {
        self.exchange(slot, op, cutoff, move |peer| async move {
            peer.call_with_timeout(req, timeout).await
        })
        .await
    }

    /// Sends push `msg` from `slot`'s client on a bidirectional stream and
    /// waits for its `Ack` (within the peer's request timeout).
    async fn push_acked<P: Push>(
        &mut self,
        slot: usize,
        op: Op,
        msg: P,
        cutoff: Cutoff,
    ) -> Reply<Ack> {
        self.exchange(slot, op, cutoff, move |peer| async move {
            peer.push_acked(msg).await
        })
        .await
    }

    /// Waits out the client's pause, runs `send` on its connection and
    /// counts refusals and failures (pausing on `retryAfterMs`, reconnecting
    /// a closed connection); the caller counts a success.
    async fn exchange<T, F, Fut>(
        &mut self,
        slot: usize,
        op: Op,
        cutoff: Cutoff,
        send: F,
    ) -> Reply<T>
    where
        F: FnOnce(Peer) -> Fut,
        Fut: Future<Output = Result<T, RequestError>>,
    {
        let run = self.run.clone();
        let client = run.slots[slot].client.clone();
        if !self.wait_pause(&client, cutoff).await {
            return Reply::NotSent;
        }
        let peer = client.peer();
        let start = Instant::now();
        let fut = send(peer);
        let result = tokio::select! {
            biased;
            r = fut => Some(r),
            _ = run.cut(cutoff) => None,
        };
        let latency = start.elapsed();
        let live = &run.live;
        match result {
            None => {
                self.stats.cancelled(op);
                Reply::Cancelled
            }
            Some(Err(RequestError::Remote(e))) => {
                live.errors.fetch_add(1, Ordering::Relaxed);
                self.stats.err(op, e.code.name());
                let retry = Duration::from_millis(u64::from(e.retry_after_ms));
                match e.code {
                    ErrorCode::RateLimited => {
                        live.rate_limited.fetch_add(1, Ordering::Relaxed);
                        client.pause(
                            if retry.is_zero() {
                                DEFAULT_RETRY_AFTER
                            } else {
                                retry
                            },
                            true,
                        );
                    }
                    ErrorCode::Unavailable if !retry.is_zero() => client.pause(retry, true),
                    _ => {}
                }
                Reply::Refused(e.code)
            }
            Some(Ok(reply)) => {
                live.ok.fetch_add(1, Ordering::Relaxed);
                Reply::Ok(reply, latency)
            }
            Some(Err(e)) => {
                live.errors.fetch_add(1, Ordering::Relaxed);
                self.stats.err(op, local_kind(&e));
                if matches!(e, RequestError::Closed(_)) {
                    self.reconnect(&client, cutoff).await;
                }
                Reply::Failed
            }
        }
    }

    /// Replaces the client's closed connection (at most one attempt at a
    /// time per client; abandoned at the phase's cutoff).
    async fn reconnect(&mut self, client: &Client, cutoff: Cutoff) {
        let run = self.run.clone();
        let _guard = tokio::select! {
            g = client.reconnecting.lock() => g,
            _ = run.cut(cutoff) => return,
        };
        if !client.peer().is_closed() {
            return;
        }
        let start = Instant::now();
        // connect() bounds the handshake and Hello by hello_timeout each.
        let connect = client.transport.connect(client.target.0, client.target.1);
        let result = tokio::select! {
            r = connect => r,
            _ = run.cut(cutoff) => return,
        };
        match result {
            Ok(peer) => {
                self.stats.ok(Op::Connect, start.elapsed());
                *lock(&client.peer) = peer;
            }
            Err(_) => {
                self.stats.err(Op::Connect, "connectFailed");
                client.pause(RECONNECT_BACKOFF, false);
            }
        }
    }

    /// The lower member creates the pair's channel; both wait for it. None
    /// if the load phase ended first.
    async fn channel(&mut self, slot: usize, creator: bool) -> Option<ChannelId> {
        let run = self.run.clone();
        let s = &run.slots[slot];
        let partner = s.partner?;
        let tx = s.channel.clone()?;
        if creator {
            let me = s.client.id;
            let peer_id = run.slots[partner].client.id;
            while !run.is_over() {
                let req = CreateChannel {
                    version: PROTOCOL_VERSION,
                    peer: peer_id,
                };
                match self
                    .request(
                        slot,
                        Op::CreateChannel,
                        req,
                        run.opts.request_timeout,
                        Cutoff::Grace,
                    )
                    .await
                {
                    Reply::Ok(r, lat) => {
                        if r.other(&me) == Some(peer_id) {
                            self.stats.ok(Op::CreateChannel, lat);
                            tx.send_replace(Some(r.channel_id));
                            return Some(r.channel_id);
                        }
                        self.run.live.ok.fetch_sub(1, Ordering::Relaxed);
                        self.stats.err(Op::CreateChannel, "mismatch");
                        s.client.pause(ERROR_BACKOFF, false);
                    }
                    Reply::Refused(_) | Reply::Failed => s.client.pause(ERROR_BACKOFF, false),
                    Reply::Cancelled | Reply::NotSent => return None,
                }
            }
            None
        } else {
            let mut rx = tx.subscribe();
            tokio::select! {
                r = rx.wait_for(Option::is_some) => r.ok().and_then(|c| *c),
                _ = run.load_over() => None,
            }
        }
    }

    /// Enqueues one message from `slot` to its partner. True if the message
    /// may be on its way (acknowledged or unknown outcome).
    async fn enqueue(&mut self, slot: usize, channel: ChannelId) -> bool {
        let run = self.run.clone();
        let s = &run.slots[slot];
        let Some(partner) = s.partner else {
            return false;
        };
        let to = &run.slots[partner];
        let seq = s.next_seq.fetch_add(1, Ordering::Relaxed);
        let header = Header {
            run_id: run.run_id,
            sender: s.client.idx as u32,
            recipient: to.client.idx as u32,
            seq,
            sent_us: 0,
        };
        let mut payload = make_payload(&header, run.opts.payload_bytes);
        lock(&to.book).attempted.insert(seq);
        stamp(&mut payload, now_us());
        let msg = Enqueue {
            version: PROTOCOL_VERSION,
            channel_id: Some(channel),
            recipient: to.client.id,
            payload,
            client_message_id: Some(client_message_id(run.run_id, s.client.idx, seq)),
        };
        // An error that does not say "nothing was done" (`unavailable`,
        // `internal`), a timeout or a lost connection leaves the outcome
        // unknown: retry the same message (same clientMessageId, which the
        // anchor deduplicates) until it is answered (schema/README.md §9).
        let mut unknown = false;
        for attempt in 0..ENQUEUE_ATTEMPTS {
            if attempt > 0 {
                self.stats.enqueue_retries += 1;
            }
            let reply = self
                .request(
                    slot,
                    Op::Enqueue,
                    msg.clone(),
                    run.opts.request_timeout,
                    Cutoff::Grace,
                )
                .await;
            match reply {
                Reply::Ok(_, lat) => {
                    self.stats.ok(Op::Enqueue, lat);
                    lock(&to.book).confirmed.insert(seq);
                    return true;
                }
                Reply::Refused(code) if code.nothing_done() => {
                    if !unknown {
                        // Certainly not stored: a later delivery would be a
                        // mismatch.
                        lock(&to.book).attempted.remove(&seq);
                        return false;
                    }
                    // This attempt was refused (e.g. `rateLimited`, and the
                    // client is paused for its retryAfterMs), but an earlier
                    // one may have been stored: keep asking.
                }
                Reply::Refused(_) | Reply::Failed => {
                    unknown = true;
                    if attempt + 1 < ENQUEUE_ATTEMPTS {
                        s.client.pause(ERROR_BACKOFF, false);
                    }
                }
                Reply::Cancelled => return true,
                Reply::NotSent => {
                    if !unknown {
                        lock(&to.book).attempted.remove(&seq);
                    }
                    return unknown;
                }
            }
        }
        // Still unknown: it may be delivered (not a mismatch) or not (not
        // missing); reported as `enqueue_unknown`.
        true
    }

    /// Fetches `slot`'s own queue (FetchWait when `wait` is set),
    /// acknowledging what was fetched before, and records the deliveries.
    async fn fetch(
        &mut self,
        slot: usize,
        channel: ChannelId,
        wait: Option<Duration>,
        op: Op,
        cutoff: Cutoff,
        draining: bool,
    ) -> Option<FetchResponse> {
        let run = self.run.clone();
        let s = &run.slots[slot];
        let mut ack = tokio::select! {
            g = s.inbox.lock() => g,
            _ = run.cut(cutoff) => return None,
        };
        if !draining && run.is_over() {
            return None;
        }
        let reply = match wait {
            Some(w) => {
                let req = FetchWait {
                    version: PROTOCOL_VERSION,
                    channel_id: Some(channel),
                    ack_through: *ack,
                    max_messages: 0,
                    max_bytes: 0,
                    timeout_ms: u32::try_from(w.as_millis()).unwrap_or(u32::MAX),
                };
                self.request(slot, op, req, w + run.opts.request_timeout, cutoff)
                    .await
                    .map(|FetchWaitResponse(r)| r)
            }
            None => {
                let req = Fetch {
                    version: PROTOCOL_VERSION,
                    channel_id: Some(channel),
                    ack_through: *ack,
                    max_messages: 0,
                    max_bytes: 0,
                };
                self.request(slot, op, req, run.opts.request_timeout, cutoff)
                    .await
            }
        };
        let Reply::Ok(r, lat) = reply else {
            return None;
        };
        self.stats.ok(op, lat);
        if wait.is_some() && r.messages.is_empty() {
            self.stats.fetch_wait_empty += 1;
        }
        let via = if wait.is_some() {
            Op::Wake
        } else {
            Op::Delivery
        };
        for m in &r.messages {
            self.deliver(slot, channel, m, via, draining);
            *ack = (*ack).max(m.message_id);
        }
        Some(r)
    }

    /// Checks one delivered message and records it.
    fn deliver(
        &mut self,
        slot: usize,
        channel: ChannelId,
        m: &MailboxMessage,
        via: Op,
        draining: bool,
    ) {
        let now = now_us();
        let run = self.run.clone();
        let s = &run.slots[slot];
        let Some(partner) = s.partner else { return };
        let from = &run.slots[partner];
        let mut book = lock(&s.book);
        let header = parse_payload(&m.payload);
        if let Some(h) = header {
            if h.run_id != run.run_id {
                book.stale += 1;
                return;
            }
        }
        let seq = match header {
            Some(h)
                if m.sender == from.client.id
                    && m.channel_id == Some(channel)
                    && h.sender as usize == from.client.idx
                    && h.recipient as usize == s.client.idx
                    && m.payload.len() == run.opts.payload_bytes
                    && book.attempted.contains(&h.seq) =>
            {
                h.seq
            }
            _ => {
                book.mismatched += 1;
                drop(book);
                self.stats.err(via, "mismatch");
                return;
            }
        };
        match book.delivered.get(&seq) {
            Some(id) if *id == m.message_id => {
                book.redelivered += 1;
                return;
            }
            Some(_) => {
                // A second stored copy of one message.
                book.duplicates += 1;
                drop(book);
                self.stats.err(via, "duplicate");
                return;
            }
            None => {
                book.delivered.insert(seq, m.message_id);
            }
        }
        if draining {
            book.drained += 1;
            return;
        }
        drop(book);
        if let Some(h) = header {
            self.stats.ok_us(via, now.saturating_sub(h.sent_us));
        }
        if run.opts.scenario == Scenario::Fetchwait {
            s.in_flight.add_permits(1);
        }
    }

    /// Pushes one post; false when this client has no pre-signed post
    /// left (the request taken is given back; once every client's are
    /// used up, the load phase ends).
    async fn push_post(&mut self, slot: usize) -> bool {
        let run = self.run.clone();
        let s = &run.slots[slot];
        let post = if run.opts.presign > 0 {
            let next = lock(&s.presigned).pop();
            match next {
                Some(p) => p,
                None => {
                    run.issued.fetch_sub(1, Ordering::SeqCst);
                    if run.slots.iter().all(|s| lock(&s.presigned).is_empty()) {
                        run.stop(STOP_PRESIGNED);
                    }
                    return false;
                }
            }
        } else {
            let seq = s.next_seq.fetch_add(1, Ordering::Relaxed);
            match compose_post(
                &s.client.key,
                run.run_id,
                s.client.idx,
                seq,
                run.opts.payload_bytes,
            ) {
                Some(p) => p,
                None => {
                    self.stats.err(Op::PushPost, "composeFailed");
                    return true;
                }
            }
        };
        let msg = PushPost {
            version: PROTOCOL_VERSION,
            post,
            recent: None,
        };
        if let Reply::Ok(_, lat) = self
            .push_acked(slot, Op::PushPost, msg, Cutoff::Grace)
            .await
        {
            self.stats.ok(Op::PushPost, lat);
        }
        true
    }

    // --- scenario loops ----------------------------------------------------

    pub(super) async fn mailbox_loop(&mut self, slot: usize, setup: bool) {
        let creator = setup && self.run.slots[slot].role == Role::PairLow;
        let Some(channel) = self.channel(slot, creator).await else {
            return;
        };
        loop {
            if !self.run.take() {
                break;
            }
            self.enqueue(slot, channel).await;
            if !self.run.take() {
                break;
            }
            self.fetch(slot, channel, None, Op::Fetch, Cutoff::Grace, false)
                .await;
        }
    }

    pub(super) async fn waiter_loop(&mut self, slot: usize) {
        let Some(channel) = self.channel(slot, true).await else {
            return;
        };
        let wait = self.run.opts.fetch_wait_timeout;
        while self.run.take() {
            self.fetch(
                slot,
                channel,
                Some(wait),
                Op::FetchWait,
                Cutoff::AtStop,
                false,
            )
            .await;
        }
    }

    pub(super) async fn sender_loop(&mut self, slot: usize) {
        let run = self.run.clone();
        let Some(channel) = self.channel(slot, false).await else {
            return;
        };
        let Some(partner) = run.slots[slot].partner else {
            return;
        };
        let permits = &run.slots[partner].in_flight;
        loop {
            let permit = tokio::select! {
                p = permits.acquire() => p,
                _ = run.load_over() => break,
            };
            match permit {
                Ok(p) => p.forget(),
                Err(_) => break,
            }
            if !run.take() {
                break;
            }
            if !self.enqueue(slot, channel).await {
                permits.add_permits(1);
            }
        }
    }

    /// Pushes `PostNotification`s (answered `Ack`, no work on an anchor),
    /// each with a distinct post id: this task's counter, the run id, and
    /// a per-task tag (several tasks push as the same client).
    pub(super) async fn notify_loop(&mut self, slot: usize) {
        let author = PostingId(self.run.slots[slot].client.key.public());
        let tag = self.rng.next_u64();
        let mut n = 0u64;
        while self.run.take() {
            n += 1;
            let mut post_id = [0u8; 32];
            post_id[..8].copy_from_slice(&n.to_le_bytes());
            post_id[8..16].copy_from_slice(&self.run.run_id.to_le_bytes());
            post_id[16..24].copy_from_slice(&tag.to_le_bytes());
            let msg = PostNotification {
                version: PROTOCOL_VERSION,
                author,
                post_id: PostId(post_id),
                hint: VisibilityHint::Public,
                recent: None,
            };
            if let Reply::Ok(_, lat) = self.push_acked(slot, Op::Notify, msg, Cutoff::Grace).await {
                self.stats.ok(Op::Notify, lat);
            }
        }
    }

    pub(super) async fn ingest_loop(&mut self, slot: usize) {
        while self.run.take() {
            if !self.push_post(slot).await {
                break;
            }
        }
    }

    pub(super) async fn mixed_loop(&mut self, slot: usize, setup: bool) {
        let creator = setup && self.run.slots[slot].role == Role::PairLow;
        let Some(channel) = self.channel(slot, creator).await else {
            return;
        };
        while self.run.take() {
            match self.rng.next_u32() % 100 {
                0..35 => {
                    self.enqueue(slot, channel).await;
                }
                35..65 => {
                    self.fetch(slot, channel, None, Op::Fetch, Cutoff::Grace, false)
                        .await;
                }
                65..75 => {
                    self.fetch(
                        slot,
                        channel,
                        Some(MIXED_FETCH_WAIT),
                        Op::FetchWait,
                        Cutoff::AtStop,
                        false,
                    )
                    .await;
                }
                _ => {
                    if !self.push_post(slot).await {
                        break;
                    }
                }
            }
        }
    }

    /// Fetches `slot`'s queue until it is empty; true if it got there before
    /// `until`.
    pub(super) async fn drain(&mut self, slot: usize, until: Instant) -> bool {
        let Some(channel) = self.run.channel(slot) else {
            return true;
        };
        while Instant::now() < until && !*self.run.interrupt_rx.borrow() {
            match self
                .fetch(slot, channel, None, Op::DrainFetch, Cutoff::At(until), true)
                .await
            {
                Some(r) if r.messages.is_empty() && !r.more => return true,
                Some(_) => {}
                None => {
                    let client = &self.run.slots[slot].client;
                    if lock(&client.paused_until).is_none_or(|p| p <= Instant::now()) {
                        client.pause(ERROR_BACKOFF, false);
                    }
                }
            }
        }
        false
    }
}
