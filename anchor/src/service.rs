//! What an anchor serves: the mailbox and 1:1 DM channels, check-in and the
//! address cache, bootstrap, and pull sync from its store — the transport's
//! request handler for an anchor ([`AnchorService`]).
//!
//! Authorization is always on the QUIC-authenticated caller (`ctx.peer`):
//! channel membership for enqueue, and "only your own queue" for fetch.
//! Unknown channel ids are refused exactly like channels the caller is not in
//! (`unauthorized`), so ids cannot be probed. Every refusal is a typed
//! `Error`; nothing is stored for a refused request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use distsoc_net::mesh::MeshHandle;
use distsoc_net::now_ms;
use distsoc_net::transport::{RequestCtx, Router};
use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::error::{ErrorCode, RateLimited, ToWireError};
use distsoc_protocol::ids::{ChannelId, NodeId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::messages::common::{PeerAddress, SocketAddress};
use distsoc_protocol::messages::content::{IngestError, SignedVisibilityUpdate};
use distsoc_protocol::messages::discovery::{
    AddressEntry, AddressRequest, AddressResponse, BootstrapRequest, BootstrapResponse,
};
use distsoc_protocol::messages::files::PostNotification;
use distsoc_protocol::messages::mailbox::{
    ChannelInfo, CreateChannel, CreateChannelResponse, Enqueue, EnqueueResponse, Fetch,
    FetchResponse, FetchWait, FetchWaitResponse, ListChannels, ListChannelsResponse,
    MailboxMessage,
};
use distsoc_protocol::messages::social::{
    DeleteRecord, ProfileUpdate, PullSyncRequest, PushPost, VisibilityUpdate,
};
use distsoc_protocol::messages::stored::StoredPullSyncResponse;
use distsoc_protocol::messages::wire;
use distsoc_protocol::sign;
use tracing::{debug, warn};

use crate::ingest::{Admission, Deposited, IngestVerifier};
use crate::quota::{QuotaConfig, Quotas};
use crate::ratelimit::{Decision, LimitConfig, RateLimiter};
use crate::store::{
    AnchorStore, AuditEvent, AuditKind, Inserted, NewMessage, StoreError, VisibilityOutcome,
    SETTING_MAILBOX_TTL_MS,
};
use crate::verify::Verifier;

/// Capabilities an anchor serves.
pub const ANCHOR_CAPABILITIES: &[&str] = &[
    "mailbox/1",
    "bootstrap/1",
    "address-cache/1",
    "pull-sync/1",
    "mesh/1",
    "worm/1",
];

/// Runtime settings of the service (from `anchor.toml`).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Mailbox retention (initial value; see [`AnchorService::set_mailbox_ttl`]).
    pub mailbox_ttl: Duration,
    /// Longest FetchWait, ms.
    pub max_fetch_wait_ms: u32,
    /// Request rate limits (per identity; per IP, shared fairly).
    pub rate: LimitConfig,
    /// `CreateChannel` limits, charged on top of `rate` (per creator; per
    /// IP, shared fairly).
    pub channel_rate: LimitConfig,
    /// Recent check-in window.
    pub checkin_window: Duration,
    /// Most posts per pull response.
    pub max_pull_batch: u16,
    /// Deposit quotas.
    pub quota: QuotaConfig,
    /// Threads that validate deposited posts, their signatures in batches
    /// (0: one per two cores, at least one; [`crate::ingest`]).
    pub ingest_verify_threads: usize,
}

/// Counters exposed as metrics and by the admin API.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests handled (all codes).
    pub requests: AtomicU64,
    /// Requests refused with `rateLimited`.
    pub rate_limited: AtomicU64,
    /// Requests refused with `unauthorized`.
    pub unauthorized: AtomicU64,
    /// Messages enqueued.
    pub enqueued: AtomicU64,
    /// Messages delivered by Fetch/FetchWait.
    pub delivered: AtomicU64,
    /// Requests answered `unavailable` (store down or draining).
    pub unavailable: AtomicU64,
    /// Deposits refused `quotaExceeded` by the per-author quota.
    pub quota_refused_author: AtomicU64,
    /// Deposits refused `quotaExceeded` by the per-depositor quota (or
    /// because the anchor tracks [`crate::quota::MAX_TRACKED`] identities).
    pub quota_refused_depositor: AtomicU64,
    /// Check-ins written to the store (verified, coalesced).
    pub checkins_written: AtomicU64,
    /// Dial-backs done (either outcome) to verify announced addresses.
    pub dialbacks: AtomicU64,
    /// Dial-backs that reached the announced NodeId.
    pub dialbacks_verified: AtomicU64,
}

/// The anchor's request handler.
#[derive(Debug)]
pub struct AnchorService {
    store: AnchorStore,
    cfg: ServiceConfig,
    limiter: RateLimiter,
    channel_limiter: RateLimiter,
    counters: Arc<Counters>,
    draining: AtomicBool,
    /// Flips to `true` once, on [`AnchorService::drain`] (for health).
    drain_signal: tokio::sync::watch::Sender<bool>,
    /// Mailbox retention for new enqueues, ms (changed by the admin API).
    mailbox_ttl_ms: AtomicU64,
    /// Whether `mailbox_ttl_ms` is an override set through the admin API
    /// (stored) rather than `cfg.mailbox_ttl`.
    mailbox_ttl_overridden: AtomicBool,
    banned: std::sync::RwLock<std::collections::HashSet<NodeId>>,
    quotas: Arc<Quotas>,
    /// Validates deposited posts off the network threads.
    ingest: IngestVerifier,
    verifier: std::sync::OnceLock<Arc<Verifier>>,
    /// The mesh driver (0x01, 0x02, 0x06, 0x10, 0x11; 0x20 after the cache).
    mesh: MeshHandle,
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> wire::Error {
    wire::Error::new(code, 0, message)
}

impl AnchorService {
    /// A service on `store`, taking part in the mesh with `mesh`.
    pub fn new(store: AnchorStore, cfg: ServiceConfig, mesh: MeshHandle) -> Self {
        let quotas = Arc::new(Quotas::new(cfg.quota));
        let counters = Arc::new(Counters::default());
        let admission = Admission {
            quotas: Arc::clone(&quotas),
            counters: Arc::clone(&counters),
        };
        Self {
            mesh,
            limiter: RateLimiter::new(cfg.rate),
            channel_limiter: RateLimiter::new(cfg.channel_rate),
            quotas,
            ingest: IngestVerifier::start(cfg.ingest_verify_threads, admission, store.clone()),
            verifier: std::sync::OnceLock::new(),
            mailbox_ttl_ms: AtomicU64::new(duration_ms(cfg.mailbox_ttl)),
            mailbox_ttl_overridden: AtomicBool::new(false),
            drain_signal: tokio::sync::watch::channel(false).0,
            store,
            cfg,
            counters,
            draining: AtomicBool::new(false),
            banned: Default::default(),
        }
    }

    /// Installs the address verifier that records check-ins (once; later
    /// calls are ignored). Without one, no check-in is recorded.
    pub fn set_verifier(&self, verifier: Arc<Verifier>) {
        let _ = self.verifier.set(verifier);
    }

    /// The mesh driver.
    pub fn mesh(&self) -> &MeshHandle {
        &self.mesh
    }

    /// The counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// The store.
    pub fn store(&self) -> &AnchorStore {
        &self.store
    }

    /// Stops accepting new requests (they get `unavailable`); in-flight ones
    /// finish. Returns `false` if it was already draining.
    pub fn drain(&self) -> bool {
        let newly = !self.draining.swap(true, Ordering::SeqCst);
        self.drain_signal.send_replace(true);
        newly
    }

    /// Whether [`AnchorService::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Watches the draining flag (`true` once drained).
    pub fn drain_watch(&self) -> tokio::sync::watch::Receiver<bool> {
        self.drain_signal.subscribe()
    }

    /// Mailbox retention applied to new enqueues.
    pub fn mailbox_ttl(&self) -> Duration {
        Duration::from_millis(self.mailbox_ttl_ms.load(Ordering::SeqCst))
    }

    /// Changes the retention of new enqueues (queued messages keep their
    /// expiry) and stores it, so it survives a restart and reaches every
    /// anchor on the same database at its next
    /// [`AnchorService::refresh_operator_state`]. Returns the previous one.
    pub async fn set_mailbox_ttl(&self, ttl: Duration) -> Result<Duration, StoreError> {
        self.store
            .set_setting(SETTING_MAILBOX_TTL_MS, duration_ms(ttl))
            .await?;
        self.mailbox_ttl_overridden.store(true, Ordering::SeqCst);
        Ok(Duration::from_millis(
            self.mailbox_ttl_ms.swap(duration_ms(ttl), Ordering::SeqCst),
        ))
    }

    /// Removes the retention set through [`AnchorService::set_mailbox_ttl`]
    /// (from the store, so every anchor on the database goes back to its
    /// configured retention at its next refresh): new enqueues get the
    /// configured `mailbox_ttl_secs` again. Returns the previous retention.
    pub async fn clear_mailbox_ttl(&self) -> Result<Duration, StoreError> {
        self.store.clear_setting(SETTING_MAILBOX_TTL_MS).await?;
        self.mailbox_ttl_overridden.store(false, Ordering::SeqCst);
        Ok(Duration::from_millis(
            self.mailbox_ttl_ms
                .swap(duration_ms(self.cfg.mailbox_ttl), Ordering::SeqCst),
        ))
    }

    /// Whether the retention in force was set through the admin API (a
    /// stored override) rather than configured (`mailbox_ttl_secs`).
    pub fn mailbox_ttl_overridden(&self) -> bool {
        self.mailbox_ttl_overridden.load(Ordering::SeqCst)
    }

    /// The configured retention (`mailbox_ttl_secs` in `anchor.toml`),
    /// whether or not an override is in force.
    pub fn configured_mailbox_ttl(&self) -> Duration {
        self.cfg.mailbox_ttl
    }

    /// Refuses every request from `id` with `unauthorized` from now on, on
    /// this anchor at once and on every anchor sharing the database at its
    /// next [`AnchorService::refresh_operator_state`]; stored, so it
    /// survives a restart. Returns `false` if it was already banned.
    pub async fn ban(&self, id: NodeId) -> Result<bool, StoreError> {
        let changed = self.store.set_ban(id, true, now_ms()).await?;
        let local = self
            .banned
            .write()
            .map(|mut b| b.insert(id))
            .unwrap_or(false);
        Ok(changed || local)
    }

    /// Whether `id` is banned (in-memory; no storage access).
    pub fn is_banned(&self, id: &NodeId) -> bool {
        self.banned.read().map(|b| b.contains(id)).unwrap_or(false)
    }

    /// The banned identities known to this anchor, sorted.
    pub fn banned(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self
            .banned
            .read()
            .map(|b| b.iter().copied().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Lifts a ban (stored, like [`AnchorService::ban`]). Returns `false`
    /// if `id` was not banned.
    pub async fn unban(&self, id: NodeId) -> Result<bool, StoreError> {
        let changed = self.store.set_ban(id, false, now_ms()).await?;
        let local = self
            .banned
            .write()
            .map(|mut b| b.remove(&id))
            .unwrap_or(false);
        Ok(changed || local)
    }

    /// Reloads the operator state other anchors on the same database may
    /// have changed, and that a restart must keep: bans and the mailbox
    /// retention (a stored retention overrides the configured one; without
    /// one, the configured retention applies again). Called
    /// at start and then periodically.
    pub async fn refresh_operator_state(&self) -> Result<(), StoreError> {
        let bans = self.store.bans().await?;
        if let Ok(mut b) = self.banned.write() {
            *b = bans.into_iter().collect();
        }
        let stored = self.store.setting(SETTING_MAILBOX_TTL_MS).await?;
        self.mailbox_ttl_overridden
            .store(stored.is_some(), Ordering::SeqCst);
        let ms = stored.unwrap_or_else(|| duration_ms(self.cfg.mailbox_ttl));
        self.mailbox_ttl_ms.store(ms, Ordering::SeqCst);
        Ok(())
    }

    /// Drops idle rate-limit buckets and quota accounting that left the
    /// window (call periodically).
    pub fn prune_limits(&self) {
        let now = Instant::now();
        self.limiter.prune(now);
        self.channel_limiter.prune(now);
        self.quotas.prune(now_ms());
    }

    /// Seeds the per-author deposit quotas from the posts stored in the
    /// current window (call once at start; see [`crate::quota`]).
    pub async fn seed_quotas(&self) -> Result<(), StoreError> {
        let now = now_ms();
        let rows = self
            .store
            .post_volume_since(self.quotas.window_start_ms(now), self.quotas.bucket_ms())
            .await?;
        for r in rows {
            self.quotas
                .seed(r.author, r.bucket_start_ms, r.posts, r.bytes);
        }
        Ok(())
    }

    /// The one place where an error met while serving a peer becomes the
    /// wire error the peer is told ([`ToWireError`]: a storage failure by
    /// the shared [`StorageFault`](distsoc_protocol::error::StorageFault)
    /// rule with a generic message, a refusal of the peer's input with its
    /// reason). The detail of a failure of this anchor is logged here.
    fn store_error(&self, e: &(impl ToWireError + ?Sized)) -> wire::Error {
        let reply = e.to_wire_error();
        if reply.code == ErrorCode::Unavailable {
            self.counters.unavailable.fetch_add(1, Ordering::Relaxed);
        }
        if !reply.code.nothing_done() {
            warn!(code = reply.code.name(), error = %e, "request failed inside this anchor");
        }
        reply
    }

    async fn unauthorized(
        &self,
        ctx: &RequestCtx,
        channel: Option<ChannelId>,
        why: &str,
    ) -> wire::Error {
        self.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
        let event = AuditEvent {
            at_ms: now_ms(),
            kind: AuditKind::AuthzFailure,
            actor: ctx.peer,
            channel,
            detail: why.to_string(),
        };
        if let Err(e) = self.store.audit(event).await {
            debug!(error = %e, "audit write failed");
        }
        refuse(ErrorCode::Unauthorized, why)
    }

    async fn audit(
        &self,
        kind: AuditKind,
        actor: NodeId,
        channel: Option<ChannelId>,
        detail: String,
    ) {
        let event = AuditEvent {
            at_ms: now_ms(),
            kind,
            actor,
            channel,
            detail,
        };
        if let Err(e) = self.store.audit(event).await {
            debug!(error = %e, "audit write failed");
        }
    }

    /// Checks that `caller` may use the queue `(channel, caller)`; returns the
    /// other member for a channel.
    async fn member_of(&self, ctx: &RequestCtx, channel: ChannelId) -> Result<NodeId, wire::Error> {
        let found = self
            .store
            .channel(channel)
            .await
            .map_err(|e| self.store_error(&e))?;
        match found {
            Some(c) if c.members.contains(&ctx.peer) => {
                let other = if c.members[0] == ctx.peer {
                    c.members[1]
                } else {
                    c.members[0]
                };
                Ok(other)
            }
            // Unknown and foreign channels look the same to the caller.
            _ => Err(self
                .unauthorized(ctx, Some(channel), "not a member of this channel")
                .await),
        }
    }

    async fn fetch(&self, ctx: &RequestCtx, f: &Fetch) -> Result<FetchResponse, wire::Error> {
        if let Some(channel) = f.channel_id {
            self.member_of(ctx, channel).await?;
        }
        // The acknowledgement and the `receive` audit row commit together.
        let page = self
            .store
            .fetch_audited(
                ctx.peer,
                f.channel_id,
                f.ack_through,
                f.effective_max_messages(),
                f.effective_max_bytes(),
                now_ms(),
            )
            .await
            .map_err(|e| self.store_error(&e))?;
        let n = page.messages.len();
        if n > 0 {
            self.counters
                .delivered
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(FetchResponse {
            version: PROTOCOL_VERSION,
            messages: page
                .messages
                .into_iter()
                .map(|m| MailboxMessage {
                    message_id: m.message_id,
                    channel_id: m.channel,
                    sender: m.sender,
                    received_at_ms: m.received_at_ms,
                    expires_at_ms: m.expires_at_ms,
                    payload: m.payload,
                })
                .collect(),
            more: page.more,
        })
    }

    /// Charges one request of `ctx`'s caller to `limiter`; `rateLimited`
    /// with `retryAfterMs` when over.
    fn admit(
        &self,
        limiter: &RateLimiter,
        ctx: &RequestCtx,
        now: Instant,
    ) -> Result<(), wire::Error> {
        match limiter.check(ctx.peer, ctx.remote.ip(), now) {
            Decision::Allow => Ok(()),
            Decision::Limit { retry_after } => {
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                Err(RateLimited {
                    what: "rate limit exceeded",
                    retry_after,
                }
                .to_wire_error())
            }
        }
    }

    /// Applies an author's visibility update to a held post.
    async fn visibility_update(&self, update: &SignedVisibilityUpdate) -> Result<(), wire::Error> {
        match self.store.apply_visibility_update(update).await {
            Ok(VisibilityOutcome::Applied { .. } | VisibilityOutcome::Unchanged) => Ok(()),
            Ok(VisibilityOutcome::Stale) => {
                Err(refuse(ErrorCode::Stale, "a newer visibility is held"))
            }
            Ok(VisibilityOutcome::NotHeld) => {
                Err(refuse(ErrorCode::NotFound, "post not held here"))
            }
            Err(e) => Err(self.store_error(&e)),
        }
    }

    /// The transport handler serving this anchor's peers: one handler per
    /// message code, after the admission guard (`admit_request`);
    /// a code not listed is answered `unknownMessage`.
    pub fn router(self: Arc<Self>) -> Router<AnchorService> {
        let router = Router::new(self, "an anchor").guard(AnchorService::admit_request);
        // The mesh's handlers first: the anchor's own AddressRequest
        // (check-in cache, then the mesh) replaces the mesh's.
        MeshHandle::route(router, AnchorService::mesh)
            .request(AnchorService::serve_create_channel)
            .request(AnchorService::serve_enqueue)
            .request(AnchorService::serve_fetch)
            .request(AnchorService::serve_fetch_wait)
            .request(AnchorService::serve_list_channels)
            .request(AnchorService::serve_address_request)
            .request(AnchorService::serve_bootstrap_request)
            .request_encoded(AnchorService::serve_pull_sync_request)
            .push(AnchorService::serve_delete_record)
            .push(AnchorService::serve_visibility_update)
            .push(AnchorService::serve_push_post)
            .push(AnchorService::serve_profile_update)
            // Announcements are accepted and not acted on.
            .push(|_, _, _: PostNotification| async { Ok(()) })
            // Banned identities are refused when they connect, before Hello and
            // before any request: no storage work, no audit row, no check-in.
            .admit(|s, peer, _| !s.is_banned(peer))
            // Check-in: only announced listen addresses, only once verified by a
            // dial-back, never the observed address ([`crate::verify`]).
            .on_connected(|s, info| {
                if let Some(v) = s.verifier.get() {
                    v.on_connected(&info);
                }
            })
    }

    /// Admission, for every request and push before its handler (and
    /// before `unknownMessage`): draining, then the rate limit, then bans.
    fn admit_request(&self, ctx: &RequestCtx, _code: MessageCode) -> Result<(), wire::Error> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        if self.draining.load(Ordering::SeqCst) {
            self.counters.unavailable.fetch_add(1, Ordering::Relaxed);
            return Err(
                refuse(ErrorCode::Unavailable, "anchor is shutting down").with_retry_after(5000)
            );
        }
        // Admission, cheapest first and all in memory: the rate limit, then
        // bans. Nothing is written (not even an audit row) for a request
        // that is not admitted.
        let now = Instant::now();
        self.admit(&self.limiter, ctx, now)?;
        if self.is_banned(&ctx.peer) {
            self.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
            return Err(refuse(
                ErrorCode::Unauthorized,
                "identity banned by the operator",
            ));
        }
        Ok(())
    }

    /// Serves `CreateChannel`.
    async fn serve_create_channel(
        self: Arc<Self>,
        ctx: RequestCtx,
        req: CreateChannel,
    ) -> Result<CreateChannelResponse, wire::Error> {
        if req.peer == ctx.peer {
            return Err(refuse(
                ErrorCode::Malformed,
                "peer must differ from the caller",
            ));
        }
        // A NodeId is an Ed25519 key that can pass a TLS handshake:
        // a canonical point, not of small order (schema/README.md §9).
        // Anything else (an all-zero key) could never fetch.
        if sign::check_public_key(req.peer.as_bytes()).is_err() {
            return Err(refuse(
                ErrorCode::Malformed,
                "peer is not a valid Ed25519 public key",
            ));
        }
        self.admit(&self.channel_limiter, &ctx, Instant::now())?;
        let c = self
            .store
            .create_channel(ctx.peer, req.peer, now_ms())
            .await
            .map_err(|e| self.store_error(&e))?;
        self.audit(
            AuditKind::ChannelCreated,
            ctx.peer,
            Some(c.id),
            String::new(),
        )
        .await;
        Ok(CreateChannelResponse::new(
            PROTOCOL_VERSION,
            c.id,
            c.members[0],
            c.members[1],
            c.created_at_ms,
        ))
    }

    /// Serves `Enqueue`.
    async fn serve_enqueue(
        self: Arc<Self>,
        ctx: RequestCtx,
        req: Enqueue,
    ) -> Result<EnqueueResponse, wire::Error> {
        if let Some(channel) = req.channel_id {
            let other = self.member_of(&ctx, channel).await?;
            if req.recipient != other {
                return Err(self
                    .unauthorized(&ctx, Some(channel), "recipient is not the other member")
                    .await);
            }
        }
        let now = now_ms();
        let ttl = self.mailbox_ttl_ms.load(Ordering::SeqCst);
        // The message and its `send` audit row commit together.
        let audit = AuditEvent {
            at_ms: now,
            kind: AuditKind::Send,
            actor: ctx.peer,
            channel: req.channel_id,
            detail: String::new(),
        };
        let done = self
            .store
            .enqueue_audited(
                NewMessage {
                    channel: req.channel_id,
                    sender: ctx.peer,
                    recipient: req.recipient,
                    payload: req.payload,
                    client_message_id: req.client_message_id,
                    received_at_ms: now,
                    expires_at_ms: now.saturating_add(ttl),
                },
                audit,
            )
            .await
            .map_err(|e| self.store_error(&e))?;
        self.counters.enqueued.fetch_add(1, Ordering::Relaxed);
        Ok(EnqueueResponse {
            version: PROTOCOL_VERSION,
            message_id: done.message_id,
            received_at_ms: done.received_at_ms,
            expires_at_ms: done.expires_at_ms,
        })
    }

    /// Serves `Fetch`.
    async fn serve_fetch(
        self: Arc<Self>,
        ctx: RequestCtx,
        req: Fetch,
    ) -> Result<FetchResponse, wire::Error> {
        self.fetch(&ctx, &req).await
    }

    /// Serves `FetchWait`.
    async fn serve_fetch_wait(
        self: Arc<Self>,
        ctx: RequestCtx,
        req: FetchWait,
    ) -> Result<FetchWaitResponse, wire::Error> {
        let f = req.as_fetch();
        if let Some(channel) = f.channel_id {
            self.member_of(&ctx, channel).await?;
        }
        // Register before the first fetch: an enqueue between the
        // fetch and the wait still wakes us.
        let waiter = self.store.waiter(ctx.peer, f.channel_id);
        let first = self.fetch(&ctx, &f).await?;
        if !first.messages.is_empty() {
            return Ok(FetchWaitResponse(first));
        }
        let timeout = Duration::from_millis(u64::from(
            req.effective_timeout_ms(self.cfg.max_fetch_wait_ms),
        ));
        let woke = tokio::time::timeout(timeout, waiter.wait()).await.is_ok();
        // Acks were applied by the first fetch.
        let again = Fetch {
            ack_through: 0,
            ..f
        };
        let page = if woke {
            self.fetch(&ctx, &again).await?
        } else {
            first
        };
        Ok(FetchWaitResponse(page))
    }

    /// Serves `ListChannels`.
    async fn serve_list_channels(
        self: Arc<Self>,
        ctx: RequestCtx,
        req: ListChannels,
    ) -> Result<ListChannelsResponse, wire::Error> {
        let page = self
            .store
            .list_channels(ctx.peer, req.after, req.effective_limit(), req.pending_only)
            .await
            .map_err(|e| self.store_error(&e))?;
        let legacy = self
            .store
            .legacy_queued(ctx.peer)
            .await
            .map_err(|e| self.store_error(&e))?;
        Ok(ListChannelsResponse {
            version: PROTOCOL_VERSION,
            channels: page
                .channels
                .into_iter()
                .map(|c| ChannelInfo {
                    channel_id: c.id,
                    peer: c.peer,
                    created_at_ms: c.created_at_ms,
                    queued: u32::try_from(c.queued).unwrap_or(u32::MAX),
                })
                .collect(),
            legacy_queued: u32::try_from(legacy).unwrap_or(u32::MAX),
            more: page.more,
            next: page.next,
        })
    }

    /// Serves `AddressRequest`: from the verified check-in cache first
    /// (only addresses a client announced and a dial-back confirmed), then
    /// from the mesh for targets the cache does not have and that are not
    /// this anchor's own connections (hop 2 and 3, the addresses those nodes
    /// announced to their peers, or a referral). A direct connection of the
    /// anchor is answered from the cache only: its address is handed out
    /// once the dial-back verified it, never before.
    async fn serve_address_request(
        self: Arc<Self>,
        ctx: RequestCtx,
        req: AddressRequest,
    ) -> Result<AddressResponse, wire::Error> {
        let window = u64::try_from(self.cfg.checkin_window.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now_ms().saturating_sub(window);
        let mut entries = Vec::with_capacity(req.targets.len());
        for target in &req.targets {
            let found = self
                .store
                .address(*target)
                .await
                .map_err(|e| self.store_error(&e))?;
            let peer = found
                .filter(|c| c.last_seen_ms >= cutoff)
                .map(|c| PeerAddress {
                    node_id: c.node,
                    addresses: c.addrs.into_iter().map(SocketAddress).collect(),
                    is_anchor: c.is_anchor,
                    last_seen_ms: c.last_seen_ms,
                });
            entries.push(AddressEntry {
                node_id: *target,
                peer,
                referral: None,
            });
        }
        let missing: Vec<NodeId> = entries
            .iter()
            .filter(|e| e.peer.is_none() && self.mesh.hops_to(&e.node_id).is_none_or(|h| h >= 2))
            .map(|e| e.node_id)
            .collect();
        if !missing.is_empty() {
            let ask = AddressRequest {
                version: req.version,
                targets: missing,
                depth: req.depth,
            };
            match self.mesh.serve_address(ctx.peer, ask).await {
                Ok(resp) => {
                    for m in resp.entries {
                        if let Some(e) = entries
                            .iter_mut()
                            .find(|e| e.node_id == m.node_id && e.peer.is_none())
                        {
                            e.peer = m.peer;
                            e.referral = m.referral;
                        }
                    }
                }
                // A rule broken or a rate exceeded is the peer's to know.
                Err(e) if matches!(e.code, ErrorCode::Malformed | ErrorCode::RateLimited) => {
                    return Err(e)
                }
                Err(e) => {
                    debug!(peer = %ctx.peer.short(), error = %e.code, "mesh address lookup failed")
                }
            }
        }
        Ok(AddressResponse {
            version: PROTOCOL_VERSION,
            entries,
        })
    }

    /// Serves `BootstrapRequest`.
    async fn serve_bootstrap_request(
        self: Arc<Self>,
        ctx: RequestCtx,
        req: BootstrapRequest,
    ) -> Result<BootstrapResponse, wire::Error> {
        let window = u64::try_from(self.cfg.checkin_window.as_millis()).unwrap_or(u64::MAX);
        let mut exclude = req.exclude.clone();
        exclude.push(ctx.peer);
        let peers = self
            .store
            .bootstrap_peers(
                req.effective_want(),
                &exclude,
                now_ms().saturating_sub(window),
            )
            .await
            .map_err(|e| self.store_error(&e))?;
        Ok(BootstrapResponse {
            version: PROTOCOL_VERSION,
            peers: peers
                .into_iter()
                .map(|c| PeerAddress {
                    node_id: c.node,
                    addresses: c.addrs.into_iter().map(SocketAddress).collect(),
                    is_anchor: c.is_anchor,
                    last_seen_ms: c.last_seen_ms,
                })
                .collect(),
        })
    }

    /// Serves `PullSyncRequest`.
    async fn serve_pull_sync_request(
        self: Arc<Self>,
        ctx: RequestCtx,
        req: PullSyncRequest,
    ) -> Result<StoredPullSyncResponse, wire::Error> {
        let max = self.cfg.max_pull_batch.max(1);
        let limit = req.effective_limit(max, max);
        let ids: Vec<[u8; 32]> = req.ids.iter().map(|i| i.0).collect();
        // The posts go out as stored (canonical bytes copied into the
        // reply, not decoded and encoded again): the same frame.
        let page = self
            .store
            .pull_stored(ctx.peer, &ids, req.since_seq, usize::from(limit))
            .await
            .map_err(|e| self.store_error(&e))?;
        Ok(page.into_response())
    }

    /// Serves `DeleteRecord`.
    // Deposited by authors like posts (schema §7): verified by the
    // author's signature, whoever sends it; the post stops being
    // served and the delete is served by pull instead.
    async fn serve_delete_record(
        self: Arc<Self>,
        _ctx: RequestCtx,
        DeleteRecord { record, .. }: DeleteRecord,
    ) -> Result<(), wire::Error> {
        match self.store.apply_delete(&record, now_ms()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.store_error(&e)),
        }
    }

    /// Serves `VisibilityUpdate`.
    async fn serve_visibility_update(
        self: Arc<Self>,
        _ctx: RequestCtx,
        VisibilityUpdate { update, .. }: VisibilityUpdate,
    ) -> Result<(), wire::Error> {
        self.visibility_update(&update).await
    }

    /// Serves `PushPost`.
    // Public and encrypted posts alike: an anchor is not a
    // recipient but store-and-forward infrastructure, and serves
    // encrypted posts only by recipient-match pull (schema §7).
    // A valid post is charged to the quotas (its canonical bytes,
    // encoded once) before any storage work; a post the store did
    // not keep is refunded ([`crate::ingest`]).
    async fn serve_push_post(
        self: Arc<Self>,
        ctx: RequestCtx,
        push: PushPost,
    ) -> Result<(), wire::Error> {
        // Kept for a re-deposit (rarely present: cloned only then).
        let update = push.post.visibility_update.clone();
        match self.ingest.deposit(push.post, ctx.peer).await {
            Deposited::Refused(e) => Err(e),
            Deposited::Failed(e) | Deposited::Stored(Err(e)) => Err(self.store_error(&e)),
            Deposited::Stored(Ok(Inserted::Tombstoned)) => Err(refuse(
                ErrorCode::Unauthorized,
                "deleted by its author; not stored again",
            )),
            // A re-deposit that carries a newer visibility update
            // (the author re-wrapped the post) applies it.
            // Boxed: the store futures it nests would otherwise make
            // every `PushPost` future (moved into its box per request)
            // several times larger.
            Deposited::Stored(Ok(Inserted::Duplicate)) => match &update {
                Some(update) => match Box::pin(self.visibility_update(update)).await {
                    Err(e) if e.code == ErrorCode::Stale => Ok(()),
                    other => other,
                },
                None => Ok(()),
            },
            Deposited::Stored(Ok(Inserted::New { .. })) => Ok(()),
        }
    }

    /// Serves `ProfileUpdate`.
    // `Ack` means "validated and accepted" (schema/README.md): the
    // anchor keeps no profiles, but it acknowledges only one whose
    // signature verifies.
    async fn serve_profile_update(
        self: Arc<Self>,
        _ctx: RequestCtx,
        update: ProfileUpdate,
    ) -> Result<(), wire::Error> {
        match update.profile.verify() {
            Ok(()) => Ok(()),
            Err(error) => {
                let e = IngestError::BadSignature {
                    what: "profile",
                    error,
                };
                Err(e.to_wire_error())
            }
        }
    }
}
