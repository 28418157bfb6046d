//! [`Service`]: what a user node serves to its peers, registered with the
//! transport one handler per message code ([`Service::router`]), and the one
//! mapping of store failures to wire errors (`wire_error`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use distsoc_net::mesh::MeshHandle;
use distsoc_net::now_ms;
use distsoc_net::transport::{PeerInfo, RequestCtx, Router, Transport};
use distsoc_protocol::codes::{Kind, MessageCode};
use distsoc_protocol::error::{ErrorCode, RateLimited, ToWireError, WireCode};
use distsoc_protocol::ids::{NodeId, PostingId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::messages::files::{
    AuthorUpdate, AuthorUpdatePush, AuthorUpdateRequest, AuthorUpdateResponse, FileContent,
    FileRequest, FileResponse, FileTarget, PostNotification, StoredFile,
};
use distsoc_protocol::messages::social::{
    AudienceRequest, AudienceResponse, DeleteRecord, ProfileUpdate, PullSyncRequest,
    PullSyncResponse, PushPost, VisibilityUpdate, MAX_PULL_PROFILES,
};
use distsoc_protocol::messages::wire;
use distsoc_protocol::recent::RecentDecision;
use tracing::{debug, info, warn};

use crate::node::{blocking, push_profiles, Node};
use crate::store::{Inserted, StoreError, Upsert, VisibilityOutcome};

/// The one place where an error met while serving a peer becomes the wire
/// error the peer is told ([`ToWireError`]: a refusal of the peer's own input
/// carries its reason; a failure of this node — SQLite, the file system, a
/// damaged row, a failed task — only its code and a generic message, by the
/// shared [`StorageFault`](distsoc_protocol::error::StorageFault) rule). The
/// detail of a failure of this node is logged here.
fn wire_error(e: &(impl ToWireError + ?Sized)) -> wire::Error {
    let reply = e.to_wire_error();
    if !reply.code.nothing_done() {
        warn!(code = reply.code.name(), error = %e, "request failed inside this node");
    }
    reply
}

/// A blocking task that did not finish (panicked or was cancelled): a
/// failure of this node, `internal`.
#[derive(Debug, thiserror::Error)]
#[error("blocking task failed: {0}")]
struct TaskFailed(crate::node::NodeError);

impl WireCode for TaskFailed {
    fn error_code(&self) -> ErrorCode {
        ErrorCode::Internal
    }
}

impl ToWireError for TaskFailed {}

/// Runs a store operation on the blocking pool for a peer's request; a
/// failure becomes the wire error to answer with.
async fn store_call<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, wire::Error> {
    blocking(f)
        .await
        .map_err(|e| wire_error(&TaskFailed(e)))?
        .map_err(|e| wire_error(&e))
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> wire::Error {
    wire::Error::new(code, 0, message)
}

/// The node's request handler: what a user node serves to its peers.
pub struct Service {
    node: Node,
    transport: OnceLock<std::sync::Weak<Transport>>,
    /// Per peer, the connection on which our profiles were last pushed back
    /// (its `PeerInfo`, which lives exactly as long as the connection). A
    /// `Weak` pins the allocation, so a new connection can never compare
    /// equal to a dead one; entries of closed connections are pruned, so the
    /// map holds at most one entry per live connection (plus
    /// [`PROFILE_PUSHED_SLACK`]).
    profile_pushed:
        std::sync::Mutex<HashMap<NodeId, std::sync::Weak<distsoc_net::transport::PeerInfo>>>,
    /// Per-peer token buckets for pushes.
    push_limiter: crate::ratelimit::PushLimiter,
    /// The mesh driver (0x01, 0x02, 0x06, 0x10, 0x11, 0x20).
    mesh: MeshHandle,
}

/// Entries of closed connections tolerated in `Service::profile_pushed`
/// before they are pruned.
const PROFILE_PUSHED_SLACK: usize = 64;

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("node", &self.node.node_id())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// A handler serving `node`, with a mesh that holds no slots of its
    /// own ([`crate::mesh::passive_config`]: it answers the mesh's messages
    /// and keeps the connections it is given).
    pub fn new(node: Node) -> Self {
        let mesh = MeshHandle::new(node.node_id(), crate::mesh::passive_config());
        Self::with_mesh(node, mesh)
    }

    /// A handler serving `node` with `mesh` as its mesh driver.
    pub fn with_mesh(node: Node, mesh: MeshHandle) -> Self {
        let push_limiter = crate::ratelimit::PushLimiter::new(
            node.config.push_rate_per_second,
            node.config.push_burst,
        );
        Self {
            node,
            transport: OnceLock::new(),
            profile_pushed: Default::default(),
            push_limiter,
            mesh,
        }
    }

    /// The mesh driver.
    pub fn mesh(&self) -> &MeshHandle {
        &self.mesh
    }

    /// The transport handler serving this node's peers: one handler per
    /// message code; a push over the peer's rate is refused before any
    /// handler runs, a code not listed is answered `unknownMessage`.
    pub fn router(self: Arc<Self>) -> Router<Service> {
        let router = Router::new(self, "a user node").guard(Service::admit_push);
        MeshHandle::route(router, Service::mesh)
            .request(Service::pull_sync)
            .request(Service::file)
            .request(Service::author_update)
            .push(Service::profile_update)
            .push(Service::author_update_push)
            .push(Service::push_post)
            .push(Service::delete_record)
            .push(Service::visibility_update)
            .push(Service::audience_request)
            .push(Service::audience_response)
            // Announcements are accepted and not acted on yet.
            .push(|_, _, _: PostNotification| async { Ok(()) })
            .on_connected(Service::record_listen_addresses)
    }

    /// Admission before work: a push over the peer's rate is refused before
    /// anything is verified or stored.
    fn admit_push(&self, ctx: &RequestCtx, code: MessageCode) -> Result<(), wire::Error> {
        if code.kind() != Kind::Push {
            return Ok(());
        }
        self.push_limiter
            .check(ctx.peer, std::time::Instant::now())
            .map_err(|wait| {
                let refusal = RateLimited {
                    what: "too many pushes; slow down",
                    retry_after: wait,
                }
                .to_wire_error();
                debug!(peer = %ctx.peer.short(), code = code.name(), retry_after_ms = refusal.retry_after_ms, "push rate limited");
                refusal
            })
    }

    /// Lets the service reach peers through `transport` (to push our
    /// profiles back); set once, right after the transport is bound.
    pub fn set_transport(&self, transport: &Arc<Transport>) {
        let _ = self.transport.set(Arc::downgrade(transport));
    }

    /// Serves `PullSyncRequest`.
    async fn pull_sync(
        self: Arc<Self>,
        ctx: RequestCtx,
        req: PullSyncRequest,
    ) -> Result<PullSyncResponse, wire::Error> {
        let store = self.node.store.clone();
        let max_batch = usize::from(self.node.config.max_pull_batch.max(1));
        let limit = req.effective_limit(max_batch as u16, max_batch as u16);
        let ids: Vec<[u8; 32]> = req.ids.iter().map(|i| i.0).collect();
        let peer = ctx.peer;
        let (page, profiles) = store_call(move || -> Result<_, StoreError> {
            let page = store.pull(peer, &ids, req.since_seq, usize::from(limit))?;
            let mut profiles = Vec::new();
            for id in &ids {
                if profiles.len() >= MAX_PULL_PROFILES {
                    break;
                }
                if let Some(p) = store.get_profile(PostingId(*id))? {
                    profiles.push(p);
                }
            }
            Ok((page, profiles))
        })
        .await?;
        Ok(PullSyncResponse {
            version: PROTOCOL_VERSION,
            posts: page.posts,
            next_seq: page.next_seq,
            more: page.more,
            deletes: page.deletes,
            profiles,
        })
    }

    /// Serves `FileRequest`.
    async fn file(
        self: Arc<Self>,
        _ctx: RequestCtx,
        req: FileRequest,
    ) -> Result<FileResponse, wire::Error> {
        let store = self.node.store.clone();
        let content = store_call(move || -> Result<Option<FileContent>, StoreError> {
            Ok(match req.target {
                FileTarget::Post(id) => match store.get_post(id)? {
                    Some(post) => {
                        let recent = store.get_recent(post.post.body().author)?;
                        Some(FileContent::Post(Box::new(StoredFile {
                            post,
                            author_recent_posts: recent,
                            comments: Vec::new(),
                            hearts: Vec::new(),
                        })))
                    }
                    None => None,
                },
                FileTarget::Blob(id) => store.get_blob(id)?.map(FileContent::Blob),
            })
        })
        .await?;
        match content {
            Some(content) => Ok(FileResponse {
                version: PROTOCOL_VERSION,
                content,
            }),
            None => Err(refuse(ErrorCode::NotFound, "not held here")),
        }
    }

    /// Serves `AuthorUpdateRequest`.
    async fn author_update(
        self: Arc<Self>,
        _ctx: RequestCtx,
        req: AuthorUpdateRequest,
    ) -> Result<AuthorUpdateResponse, wire::Error> {
        let store = self.node.store.clone();
        let recent = store_call(move || store.get_recent(req.author)).await?;
        match recent {
            Some(r) if r.body().seq > req.have_seq => Ok(AuthorUpdateResponse {
                version: PROTOCOL_VERSION,
                outcome: AuthorUpdate::Recent(r),
            }),
            Some(_) => Ok(AuthorUpdateResponse {
                version: PROTOCOL_VERSION,
                outcome: AuthorUpdate::NotModified,
            }),
            None => Err(refuse(
                ErrorCode::NotFound,
                "no recent-post list for this author",
            )),
        }
    }

    /// Serves `ProfileUpdate`.
    async fn profile_update(
        self: Arc<Self>,
        ctx: RequestCtx,
        ProfileUpdate { profile, .. }: ProfileUpdate,
    ) -> Result<(), wire::Error> {
        let store = self.node.store.clone();
        let outcome = store_call(move || store.upsert_profile(&profile)).await?;
        self.push_profiles_back(&ctx).await;
        match outcome {
            Upsert::Updated | Upsert::Same => Ok(()),
            Upsert::Stale => Err(refuse(ErrorCode::Stale, "an newer profile is held")),
        }
    }

    /// Serves `AuthorUpdatePush`.
    async fn author_update_push(
        self: Arc<Self>,
        _ctx: RequestCtx,
        push: AuthorUpdatePush,
    ) -> Result<(), wire::Error> {
        let store = self.node.store.clone();
        // Lists of authors this node does not follow go to the
        // store's bounded cache (Store::put_recent).
        let decision = store_call(move || store.put_recent(&push.recent)).await?;
        match decision {
            RecentDecision::Accept | RecentDecision::Duplicate => Ok(()),
            RecentDecision::Stale | RecentDecision::Conflict => Err(refuse(
                ErrorCode::Stale,
                "a list with a higher or equal seq is held",
            )),
        }
    }

    /// Serves `PushPost`.
    async fn push_post(
        self: Arc<Self>,
        _ctx: RequestCtx,
        push: PushPost,
    ) -> Result<(), wire::Error> {
        let store = self.node.store.clone();
        let author = push.post.post.body().author;
        if push.post.post.body().is_sealed() {
            return Err(refuse(
                ErrorCode::Unauthorized,
                "encrypted posts are never pushed; recipients pull them",
            ));
        }
        let post = push.post;
        let outcome = store_call(move || -> Result<Option<Inserted>, StoreError> {
            if !store.is_following(author)? {
                return Ok(None);
            }
            store.insert_post(&post, now_ms()).map(Some)
        })
        .await?;
        match outcome {
            None => Err(refuse(ErrorCode::Unauthorized, "not following this author")),
            Some(_) => Ok(()),
        }
    }

    /// Serves `DeleteRecord`.
    async fn delete_record(
        self: Arc<Self>,
        _ctx: RequestCtx,
        DeleteRecord { record, .. }: DeleteRecord,
    ) -> Result<(), wire::Error> {
        let store = self.node.store.clone();
        if !self.node.config.honour_deletes {
            return Ok(());
        }
        record
            .verify()
            .map_err(|e| refuse(ErrorCode::BadSignature, e.to_string()))?;
        let applied = store_call(move || -> Result<bool, StoreError> {
            // A delete is applied whichever peer brings it, if the
            // post is held or its author is followed; a stranger's
            // delete for a post we never had would only leave a
            // tombstone, so it is not stored.
            let body = record.body();
            if store.post_seq(body.post_id)?.is_none() && !store.is_following(body.author)? {
                return Ok(false);
            }
            store.apply_delete(&record)?;
            Ok(true)
        })
        .await?;
        if !applied {
            return Err(refuse(
                ErrorCode::NotFound,
                "post not held here and its author is not followed",
            ));
        }
        Ok(())
    }

    /// Serves `VisibilityUpdate`.
    async fn visibility_update(
        self: Arc<Self>,
        _ctx: RequestCtx,
        VisibilityUpdate { update, .. }: VisibilityUpdate,
    ) -> Result<(), wire::Error> {
        let store = self.node.store.clone();
        let outcome = store_call(move || store.apply_visibility_update(&update)).await?;
        match outcome {
            VisibilityOutcome::Stale { .. } => {
                Err(refuse(ErrorCode::Stale, "a newer visibility is held"))
            }
            VisibilityOutcome::NotHeld => Err(refuse(ErrorCode::NotFound, "post not held here")),
            _ => Ok(()),
        }
    }

    /// Serves `AudienceRequest`.
    async fn audience_request(
        self: Arc<Self>,
        _ctx: RequestCtx,
        req: AudienceRequest,
    ) -> Result<(), wire::Error> {
        let store = self.node.store.clone();
        let request = req.request;
        request
            .verify()
            .map_err(|e| refuse(ErrorCode::BadSignature, e.to_string()))?;
        let author = request.body().author;
        store_call(move || -> Result<(), StoreError> {
            // Only requests addressed to one of our posting ids are
            // kept; anything else is refused before it is stored.
            if store.posting_identity(author)?.is_none() {
                return Err(StoreError::NotFound {
                    what: "posting identity (the request's author) on this node",
                });
            }
            store.add_audience_request(&request, now_ms())?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Serves `AudienceResponse`.
    async fn audience_response(
        self: Arc<Self>,
        _ctx: RequestCtx,
        r: AudienceResponse,
    ) -> Result<(), wire::Error> {
        r.response
            .verify()
            .map_err(|e| refuse(ErrorCode::BadSignature, e.to_string()))?;
        let body = r.response.body();
        info!(author = %body.author.short(), decision = ?body.decision, "audience decision received");
        Ok(())
    }

    /// An inbound peer's announced listen addresses become candidates for
    /// reaching it later (an audience push, a decision): without them a
    /// node knows only the addresses it dialled itself.
    fn record_listen_addresses(&self, info: Arc<PeerInfo>) {
        if info.direction != distsoc_net::transport::Direction::Inbound
            || info.listen_addresses.is_empty()
        {
            return;
        }
        let store = self.node.store.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) =
                store.add_peer_candidates(info.node_id, &info.listen_addresses, now_ms())
            {
                debug!(peer = %info.node_id.short(), error = %e, "peer addresses not recorded");
            }
        });
    }

    /// Connections currently remembered as "our profiles were pushed back"
    /// (bounded by the live connections plus a small slack).
    pub fn profile_push_entries(&self) -> usize {
        self.profile_pushed.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Answers a peer's profile push with ours, once per connection.
    async fn push_profiles_back(&self, ctx: &RequestCtx) {
        let first = self
            .profile_pushed
            .lock()
            .map(|mut map| {
                let this = &ctx.peer_info;
                if map
                    .get(&ctx.peer)
                    .and_then(std::sync::Weak::upgrade)
                    .is_some_and(|held| Arc::ptr_eq(&held, this))
                {
                    return false;
                }
                map.insert(ctx.peer, Arc::downgrade(this));
                if map.len() > PROFILE_PUSHED_SLACK {
                    map.retain(|_, conn| conn.strong_count() > 0);
                }
                true
            })
            .unwrap_or(false);
        if !first {
            return;
        }
        let Some(transport) = self.transport.get().and_then(std::sync::Weak::upgrade) else {
            return;
        };
        let Some(peer) = transport.peer(&ctx.peer) else {
            return;
        };
        let node = self.node.clone();
        tokio::spawn(async move { push_profiles(&node, &peer).await });
    }
}
