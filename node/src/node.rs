//! The node: identity, store and transport put together ([`Running`]), and
//! the operations a person performs ([`Node`]). What it serves to peers is
//! [`Service`] (`service.rs`).
//!
//! Every operation works on the store, so the `distsoc-node` command line can
//! act on a node whether or not its `run` process is up (SQLite WAL lets both
//! processes write). Operations that need the network (`connect`, `sync`) bind
//! a transport of their own when the caller did not start one.

use std::collections::hash_map::{Entry, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use distsoc_net::now_ms;
use distsoc_protocol::error::{ErrorCode, WireCode};
use distsoc_protocol::ids::{BlobId, ConnectString, Host, NodeId, PostId, PostingId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::messages::content::{
    open_post, Attachment, DeleteRecordBody, SignedDeleteRecord, SyncPost,
};
use distsoc_protocol::messages::files::{FileContent, FileRequest, FileResponse, FileTarget};
use distsoc_protocol::messages::identity::{PostingIdentity, SignedProfile};
use distsoc_protocol::messages::social::{
    AudienceDecision, AudienceRequest, AudienceRequestBody, AudienceResponse, AudienceResponseBody,
    DeleteRecord, ProfileUpdate, PullSyncRequest, PushPost,
};
use distsoc_protocol::sign::SigningKey;
use tracing::{debug, info, warn};

use crate::compose::{self, VisibilityIntent};
use crate::config::{self, Config};
use crate::service::Service;
use crate::store::{DeleteOutcome, Inserted, PeerRecord, Store, StoreError};
use distsoc_net::identity::{NetworkKey, KEY_FILE};
use distsoc_net::transport::{Peer, RequestError, Transport};

/// The anchors list shipped with the node (`node/anchors.json`), copied into a
/// new data directory by `init`: connect strings of public bootstrap anchors.
pub const SHIPPED_ANCHORS: &str = include_str!("../anchors.json");

/// Capabilities a user node serves.
pub const NODE_CAPABILITIES: &[&str] = &["pull-sync/1", "files/1", "mesh/1", "worm/1"];

/// Most pull pages fetched from one peer in one sync round.
const MAX_PULL_ROUNDS: usize = 1000;

/// Own posts read from the store per round of [`Running::deposit_at`].
const DEPOSIT_BATCH: usize = 100;

/// Whether `peer` declared the anchor role in its Hello.
fn is_anchor(peer: &Peer) -> bool {
    peer.info()
        .roles
        .contains(&distsoc_protocol::messages::common::Role::Anchor)
}

pub use crate::error::NodeError;
pub use crate::feed::FeedItem;

/// A key this node reads with (see [`Node::reading_keys`]): the seed and
/// its public key, derived once.
pub struct ReadingKey {
    seed: zeroize::Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl ReadingKey {
    /// The key of `seed`.
    pub fn new(seed: zeroize::Zeroizing<[u8; 32]>) -> Self {
        let public = SigningKey::from_seed(&seed).public();
        Self { seed, public }
    }

    /// The public key (the recipient id a sealed post names).
    pub fn public(&self) -> [u8; 32] {
        self.public
    }
}

impl std::fmt::Debug for ReadingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadingKey")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

/// What a sync with one peer brought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Posts stored that were new.
    pub new_posts: usize,
    /// Posts already held.
    pub duplicates: usize,
    /// Posts refused (invalid, or deleted by their author).
    pub rejected: usize,
    /// Delete records applied.
    pub deletes: usize,
    /// Pull pages requested.
    pub pages: usize,
    /// Attachment blobs fetched.
    pub blobs: usize,
    /// Our own posts deposited at the peer (anchors only).
    pub deposited: usize,
}

/// A node opened on its data directory.
#[derive(Debug, Clone)]
pub struct Node {
    dir: PathBuf,
    pub(crate) config: Config,
    pub(crate) key: Arc<NetworkKey>,
    pub(crate) store: Store,
}

impl Node {
    /// Creates a node in `dir`: the network key (0600), `config.toml` with every
    /// default written out, the store, and the first posting identity (equal
    /// to the network key, as for a pre-split identity).
    ///
    /// The directory is created 0700 and every file 0600 whatever the umask.
    /// A directory that already holds a store but no key is refused
    /// ([`NodeError::KeyLost`]): a new key would silently become a new
    /// identity over the old one's posts, follows and circles.
    pub fn init(dir: &Path, config: Option<Config>) -> Result<Node, NodeError> {
        Self::init_with_key(dir, config, None)
    }

    /// [`Node::init`] with a given network key (`None`: a fresh one), as an
    /// import restores one.
    pub fn init_with_key(
        dir: &Path,
        config: Option<Config>,
        key: Option<SigningKey>,
    ) -> Result<Node, NodeError> {
        distsoc_net::datadir::create_private_dir(dir).map_err(|source| NodeError::Io {
            path: dir.into(),
            source,
        })?;
        let key_path = dir.join(KEY_FILE);
        if !key_path.exists() && dir.join(config::STORE_FILE).exists() {
            return Err(NodeError::KeyLost(dir.into()));
        }
        let key = match key {
            Some(k) => NetworkKey::create_with(&key_path, k)?,
            None => NetworkKey::create(&key_path)?,
        };
        let config = config.unwrap_or_default();
        config.write_if_missing(dir)?;
        let anchors = config.anchors_path(dir);
        match distsoc_net::datadir::write_new_private_file(&anchors, SHIPPED_ANCHORS.as_bytes()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(NodeError::Io {
                    path: anchors,
                    source,
                })
            }
        }
        let store = Store::open(dir.join(config::STORE_FILE))?;
        let posting = PostingIdentity {
            posting_id: PostingId(key.node_id().0),
            secret_seed: key.signing_key().seed(),
            display_name: "default".into(),
            created_at_ms: now_ms(),
            ephemeral: false,
        };
        store.add_posting_identity(&posting)?;
        Ok(Node {
            dir: dir.into(),
            config,
            key: Arc::new(key),
            store,
        })
    }

    /// Opens the node in `dir`.
    pub fn open(dir: &Path) -> Result<Node, NodeError> {
        let key_path = dir.join(KEY_FILE);
        if !key_path.exists() {
            if dir.join(config::STORE_FILE).exists() {
                return Err(NodeError::KeyLost(dir.into()));
            }
            return Err(NodeError::NotInitialized(dir.into()));
        }
        let key = NetworkKey::load(&key_path)?;
        let config = Config::load(dir)?;
        let store = Store::open(dir.join(config::STORE_FILE))?;
        Ok(Node {
            dir: dir.into(),
            config,
            key: Arc::new(key),
            store,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// This node's NodeId.
    pub fn node_id(&self) -> NodeId {
        self.key.node_id()
    }

    /// The posting key used when none is chosen.
    pub fn posting_key(&self) -> Result<SigningKey, NodeError> {
        match self.store.default_posting_identity()? {
            Some(p) => Ok(SigningKey::from_seed(&p.secret_seed)),
            None => Ok(SigningKey::from_seed(&self.key.signing_key().seed())),
        }
    }

    /// All ids this node answers to: its NodeId and its posting ids.
    pub fn own_ids(&self) -> Result<Vec<[u8; 32]>, NodeError> {
        let mut ids = vec![self.node_id().0];
        for p in self.store.posting_identities()? {
            if !ids.contains(&p.posting_id.0) {
                ids.push(p.posting_id.0);
            }
        }
        Ok(ids)
    }

    /// Resolves a visibility intent to an audience (`None` = public) for a
    /// post by `author`: `friends` are the ids that persona follows.
    pub fn resolve(
        &self,
        author: PostingId,
        intent: &VisibilityIntent,
    ) -> Result<Option<Vec<PostingId>>, NodeError> {
        Ok(match intent {
            VisibilityIntent::Public => None,
            VisibilityIntent::Friends => Some(self.store.follows_of(author)?),
            VisibilityIntent::Circle(name) => {
                if !self.store.circles()?.iter().any(|c| &c.name == name) {
                    return Err(NodeError::Invalid(format!("no circle named {name:?}")));
                }
                Some(self.store.circle_members(name)?)
            }
            VisibilityIntent::Direct(ids) => Some(ids.clone()),
        })
    }

    /// Creates, signs and stores a post, and updates the author's recent-post
    /// list. Followers fetch it by pull; recipients of an encrypted post find
    /// it by recipient match (it is never pushed to them).
    pub fn post(
        &self,
        text: String,
        attachments: Vec<(Vec<u8>, String, Option<String>)>,
        intent: &VisibilityIntent,
    ) -> Result<SyncPost, NodeError> {
        self.post_as(None, text, attachments, intent)
    }

    /// [`Node::post`] as the persona named `persona` (`None`: the default).
    pub fn post_as(
        &self,
        persona: Option<&str>,
        text: String,
        attachments: Vec<(Vec<u8>, String, Option<String>)>,
        intent: &VisibilityIntent,
    ) -> Result<SyncPost, NodeError> {
        let key = match (persona, intent) {
            (None, VisibilityIntent::Circle(name)) => self.circle_persona_key(name)?,
            _ => self.persona_key(persona)?,
        };
        let now = now_ms();
        let refs: Vec<Attachment> = attachments
            .iter()
            .map(|(bytes, mime, name)| Attachment::for_blob(bytes, mime.clone(), name.clone()))
            .collect();
        let audience = self.resolve(PostingId(key.public()), intent)?;
        // Composed (and checked against every limit) before anything is
        // stored.
        let post = compose::compose(
            &key,
            now,
            text,
            refs,
            audience.as_deref(),
            &mut rand_core::OsRng,
        )?;
        for (bytes, _, _) in &attachments {
            self.store.put_blob(bytes, now)?;
        }
        self.store.insert_post(&post, now)?;
        self.publish_recent(&key, &post, now)?;
        if let VisibilityIntent::Circle(name) = intent {
            self.store
                .set_circle_last_persona(name, PostingId(key.public()))?;
        }
        Ok(post)
    }

    pub(crate) fn publish_recent(
        &self,
        key: &SigningKey,
        post: &SyncPost,
        now: u64,
    ) -> Result<(), NodeError> {
        let previous = self.store.get_recent(PostingId(key.public()))?;
        let next = compose::next_recent(key, previous.as_ref().map(|p| p.body()), post, now)?;
        self.store.put_recent(&next)?;
        Ok(())
    }

    /// Removes `member` from circle `name`. With `revoke`, also revokes its
    /// access to the circle's past posts by this author: `Rewrap` re-wraps the
    /// same key for the remaining members (visibility update), `Reencrypt`
    /// replaces each post with a re-encrypted copy and deletes the old one.
    pub fn remove_from_circle(
        &self,
        name: &str,
        member: PostingId,
        revoke: Option<Revocation>,
    ) -> Result<usize, NodeError> {
        let before = self.store.circle_members(name)?;
        if !before.contains(&member) {
            return Err(NodeError::Invalid(format!(
                "{member} is not in circle {name:?}"
            )));
        }
        self.store.remove_circle_member(name, member)?;
        let Some(revoke) = revoke else { return Ok(0) };
        let remaining = self.store.circle_members(name)?;
        let key = self.posting_key()?;
        let author = PostingId(key.public());
        let mut changed = 0;
        for post in self.store.posts_by_author(author, usize::MAX, None)? {
            if !post
                .visibility
                .recipients()
                .iter()
                .any(|w| w.recipient == member.0)
            {
                continue;
            }
            let now = now_ms();
            match revoke {
                Revocation::Rewrap => {
                    let update =
                        compose::rewrap(&key, &post, &remaining, now, &mut rand_core::OsRng)?;
                    self.store.apply_visibility_update(&update)?;
                }
                Revocation::Reencrypt => {
                    let (replacement, delete) =
                        compose::reencrypt(&key, &post, &remaining, now, &mut rand_core::OsRng)?;
                    self.store.insert_post(&replacement, now)?;
                    self.store.apply_delete(&delete)?;
                    self.publish_recent(&key, &replacement, now)?;
                }
            }
            changed += 1;
        }
        Ok(changed)
    }

    /// Deletes one of this node's own posts as its author: signs a
    /// `DeleteRecord` with the posting key that wrote the post and applies
    /// it (the post is removed and a tombstone kept). The tombstone is
    /// served to pulls from this node to whoever the post was served to,
    /// and deposited at anchors on the next sync with each. Works for a stored post
    /// that no longer decodes (its author column decides). Refused for a
    /// post not held here or not written by one of our posting ids.
    pub fn delete_post(&self, id: PostId) -> Result<SignedDeleteRecord, NodeError> {
        let Some(author) = self.store.post_author(id)? else {
            return Err(NodeError::Invalid(format!("no post {id} is held here")));
        };
        let Some(identity) = self.store.posting_identity(author)? else {
            return Err(NodeError::Invalid(format!(
                "post {id} is by {author}, not by one of this node's posting ids"
            )));
        };
        let key = SigningKey::from_seed(&identity.secret_seed);
        let record = distsoc_protocol::messages::content::sign_checked(
            DeleteRecordBody {
                post_id: id,
                author,
                deleted_at_ms: now_ms(),
                replaced_by: None,
            },
            &key,
        )
        .map_err(|e| NodeError::Invalid(e.to_string()))?;
        self.store.apply_delete(&record)?;
        Ok(record)
    }

    /// Approves a pending audience request: the requester will receive this
    /// author's public posts by push.
    pub fn approve_audience(&self, requester: PostingId) -> Result<bool, NodeError> {
        let author = PostingId(self.posting_key()?.public());
        Ok(self
            .store
            .approve_audience_member(author, requester, now_ms())?)
    }

    /// The key the local DM archive is sealed under (derived from the
    /// network key; [`crate::store::archive_key`]).
    pub fn archive_key(&self) -> zeroize::Zeroizing<[u8; 32]> {
        crate::store::archive_key(&self.key.signing_key().seed())
    }

    /// Seeds of every key this node reads with: its posting identities and
    /// its network key.
    pub fn reading_seeds(&self) -> Result<Vec<zeroize::Zeroizing<[u8; 32]>>, NodeError> {
        let mut seeds = vec![self.key.signing_key().seed()];
        for p in self.store.posting_identities()? {
            if let Some(full) = self.store.posting_identity(p.posting_id)? {
                if !seeds.iter().any(|s| **s == *full.secret_seed) {
                    seeds.push(full.secret_seed);
                }
            }
        }
        Ok(seeds)
    }

    /// [`reading_seeds`](Self::reading_seeds) with each seed's public key
    /// derived once: what [`readable_attachments`](Self::readable_attachments)
    /// matches recipients against (a pull sync derives them once, not per
    /// post).
    pub fn reading_keys(&self) -> Result<Vec<ReadingKey>, NodeError> {
        Ok(self
            .reading_seeds()?
            .into_iter()
            .map(ReadingKey::new)
            .collect())
    }

    /// The attachments of `post` that can be read with `keys`: a public
    /// post's as they are, an encrypted post's only when one of the keys is
    /// a recipient (checked by id before any decryption).
    pub fn readable_attachments(post: &SyncPost, keys: &[ReadingKey]) -> Vec<Attachment> {
        use distsoc_protocol::messages::content::PostContent;
        match &post.post.body().content {
            PostContent::Plain(body) => body.attachments.clone(),
            PostContent::Sealed(_) => {
                let recipients = post.visibility.recipients();
                keys.iter()
                    .filter(|k| recipients.iter().any(|w| w.recipient == k.public))
                    .find_map(|k| open_post(&k.seed, &post.post, &post.visibility).ok())
                    .map(|b| b.attachments)
                    .unwrap_or_default()
            }
        }
    }
}

/// The listen addresses announced in Hello: `advertise` when set, else the
/// listen address (`listen` override first, then `config.listen`) when it
/// is concrete. An unspecified IP (`0.0.0.0`, `::`) or port 0 says nothing
/// about where peers can reach us, so then nothing is announced rather
/// than a wrong address. A short-lived endpoint of a CLI command (bound to
/// `0.0.0.0:0`) thus announces the configured address, where this node's
/// `run` process, with the same key, listens.
pub fn advertised(config: &Config, listen: Option<SocketAddr>) -> Vec<SocketAddr> {
    if !config.advertise.is_empty() {
        return config.advertise.clone();
    }
    // Port 0 (bind any port) is announced as the bound port by the transport.
    let concrete = |a: &SocketAddr| !a.ip().is_unspecified();
    listen
        .into_iter()
        .chain(std::iter::once(config.listen))
        .find(concrete)
        .into_iter()
        .collect()
}

/// How to revoke a removed circle member's access to past posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Re-wrap the same key for the remaining members.
    Rewrap,
    /// Re-encrypt with a new key, delete the old posts.
    Reencrypt,
}

/// A node with its transport bound.
#[derive(Debug, Clone)]
pub struct Running {
    pub(crate) node: Node,
    pub(crate) transport: Arc<Transport>,
    pub(crate) service: Arc<Service>,
    /// Anchors that refused a deposit with `quotaExceeded`, and until when
    /// not to deposit there again (their `retryAfterMs`).
    pub(crate) deposit_paused: Arc<std::sync::Mutex<HashMap<NodeId, std::time::Instant>>>,
}

impl Running {
    /// The request handler serving peers.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// `NodeId@addr` of this node's endpoint (its bound address).
    pub fn connect_string(&self) -> Result<String, NodeError> {
        let addr = self
            .transport
            .local_addr()
            .map_err(|source| NodeError::Io {
                path: "socket".into(),
                source,
            })?;
        Ok(format!("{}@{}", self.node.node_id(), addr))
    }

    /// Connects to a peer by connect string (DNS names resolved here),
    /// records it and exchanges profiles.
    pub async fn connect(&self, target: &ConnectString) -> Result<Peer, NodeError> {
        let addr = resolve(target).await?;
        let peer = self.dial(target.node_id, addr).await?;
        self.after_connect(&peer).await?;
        Ok(peer)
    }

    /// Connects to `target` at `addr`; a failure names both
    /// ([`NodeError::Unreachable`]).
    pub async fn dial(&self, target: NodeId, addr: SocketAddr) -> Result<Peer, NodeError> {
        self.transport
            .connect(target, addr)
            .await
            .map_err(|source| NodeError::Unreachable {
                target,
                addr,
                source: Box::new(source),
            })
    }

    pub(crate) async fn after_connect(&self, peer: &Peer) -> Result<(), NodeError> {
        let info = peer.info().clone();
        let is_anchor = is_anchor(peer);
        let mut addrs = info.listen_addresses.clone();
        if info.direction == distsoc_net::transport::Direction::Outbound {
            addrs.insert(0, peer.remote_address());
        }
        let store = self.node.store.clone();
        let node_id = peer.node_id();
        blocking(move || store.upsert_peer(node_id, &addrs, is_anchor, now_ms())).await??;
        push_profiles(&self.node, peer).await;
        Ok(())
    }

    /// Pulls everything we may see from one peer since our cursor, storing
    /// new posts and applying deletes; advances the cursor.
    ///
    /// The next page is requested while the current one is validated and
    /// stored (its cursor is the current page's `nextSeq`, known before
    /// storing); the stored cursor still advances only past pages that are
    /// stored: with the page's posts in one transaction
    /// ([`Store::insert_page`]) when nothing else is to be done for the page
    /// (no deletes, profiles or attachments), else after that is done. Each
    /// page's signatures are verified in one batch; the reading keys that
    /// find attachments to fetch are derived once per sync.
    pub async fn sync_with(&self, peer: &Peer) -> Result<SyncReport, NodeError> {
        use distsoc_protocol::messages::content::PostContent;
        let node = self.node.clone();
        let mut ids = node.own_ids()?;
        for f in node.store.follows()? {
            if !ids.contains(&f.0) {
                ids.push(f.0);
            }
        }
        let ids: Vec<PostingId> = ids.into_iter().map(PostingId).collect();
        let request = |since_seq: u64| PullSyncRequest {
            version: PROTOCOL_VERSION,
            ids: ids.clone(),
            since_seq,
            limit: 0,
        };
        let keys = {
            let node = node.clone();
            blocking(move || node.reading_keys()).await??
        };
        let peer_id = peer.node_id();
        let mut report = SyncReport::default();
        let mut cursor = node.store.get_cursor(peer.node_id())?;
        let mut page = peer.call(request(cursor)).await?;
        for round in 1..=MAX_PULL_ROUNDS {
            report.pages += 1;
            let next_cursor = cursor.max(page.next_seq);
            let want_more = page.more && page.next_seq > cursor && round < MAX_PULL_ROUNDS;
            let store = node.store.clone();
            let posts = page.posts;
            let deletes = page.deletes;
            let profiles = page.profiles;
            let honour = node.config.honour_deletes;
            // A page with nothing to do after its posts are stored (no
            // deletes, no profiles, no post that may have attachments to
            // fetch) commits its cursor with its posts; otherwise the
            // cursor is set once that is done, as a separate write.
            let with_cursor = deletes.is_empty()
                && profiles.is_empty()
                && posts.iter().all(|p| match &p.post.body().content {
                    PostContent::Plain(body) => body.attachments.is_empty(),
                    PostContent::Sealed(_) => false,
                });
            let stored = blocking(move || {
                let now = now_ms();
                let (mut new, mut dup, mut rejected, mut applied) = (0, 0, 0, 0);
                let cursor_set = with_cursor.then_some((peer_id, next_cursor));
                let (results, cursor_set) = match store.insert_page(&posts, now, cursor_set) {
                    Ok(results) => (results, cursor_set.is_some()),
                    Err(e) => {
                        warn!(error = %e, "storing a pulled page failed");
                        (Vec::new(), false)
                    }
                };
                rejected += posts.len() - results.len();
                for r in results {
                    match r {
                        Ok(Inserted::New { .. }) => new += 1,
                        Ok(Inserted::Duplicate) => dup += 1,
                        Ok(Inserted::Tombstoned) | Err(_) => rejected += 1,
                    }
                }
                if honour {
                    for d in &deletes {
                        if let Ok(DeleteOutcome::Deleted { .. } | DeleteOutcome::Recorded { .. }) =
                            store.apply_delete(d)
                        {
                            applied += 1;
                        }
                    }
                }
                for p in &profiles {
                    if let Err(e) = store.upsert_profile(p) {
                        debug!(error = %e, "profile from pull refused");
                    }
                }
                (posts, new, dup, rejected, applied, cursor_set)
            });
            // The next page travels (and the peer queries it) while this
            // one is stored.
            let (stored, next) = if want_more {
                let (stored, next) = tokio::join!(stored, peer.call(request(next_cursor)));
                (stored, Some(next))
            } else {
                (stored.await, None)
            };
            let (posts, new, dup, rejected, applied, cursor_set) = stored?;
            report.new_posts += new;
            report.duplicates += dup;
            report.rejected += rejected;
            report.deletes += applied;
            report.blobs += self.fetch_missing_blobs(peer, &posts, &keys).await;
            cursor = next_cursor;
            if !cursor_set {
                let store = node.store.clone();
                blocking(move || store.set_cursor(peer_id, cursor)).await??;
            }
            match next {
                Some(next) => page = next?,
                None => break,
            }
        }
        if report.new_posts > 0 {
            // Our own archive posts, pulled back (a restored identity's
            // DM history): merged into the local archive.
            let node = node.clone();
            match blocking(move || node.restore_archive()).await? {
                Ok(r) if r.restored > 0 => {
                    info!(
                        posts = r.posts,
                        restored = r.restored,
                        "DM archive restored"
                    );
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "restoring the DM archive failed"),
            }
        }
        if is_anchor(peer) {
            match self.deposit_at(peer).await {
                Ok(n) => report.deposited = n,
                Err(e) => warn!(anchor = %peer.node_id().short(), error = %e, "deposit failed"),
            }
        }
        info!(peer = %peer.node_id().short(), new = report.new_posts, pages = report.pages, deposited = report.deposited, "pull sync done");
        Ok(report)
    }

    /// Deposits our own posts and delete records that `anchor` has not had
    /// yet (public and encrypted posts alike: an anchor is store-and-forward
    /// infrastructure, not a recipient, and serves them by recipient-match
    /// pull; schema §7), in store order, each acknowledged before the next.
    /// A post whose visibility changed moved to a new store `seq`, so it is
    /// deposited again carrying its visibility update, which the anchor
    /// applies; a delete goes as a `DeleteRecord`, after which the anchor
    /// serves the delete instead of the post. The per-anchor cursor advances
    /// only past acknowledged items, so an interrupted deposit resumes where
    /// it stopped. Returns how many items were deposited.
    ///
    /// An anchor that answers `quotaExceeded` (schema §12) is not asked
    /// again until its `retryAfterMs` has passed (the cursor stays, so the
    /// refused post is the first one offered then); a post refused with
    /// `retryAfterMs` = 0 (it alone exceeds that anchor's quota) is skipped
    /// at that anchor.
    pub async fn deposit_at(&self, anchor: &Peer) -> Result<usize, NodeError> {
        let now = std::time::Instant::now();
        {
            let mut paused = self
                .deposit_paused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match paused.get(&anchor.node_id()) {
                Some(until) if *until > now => {
                    debug!(anchor = %anchor.node_id().short(), "deposit paused: quota exceeded");
                    return Ok(0);
                }
                Some(_) => {
                    paused.remove(&anchor.node_id());
                }
                None => {}
            }
        }
        let node = self.node.clone();
        {
            // DMs archived since the last deposit go too, as archive posts.
            let node = node.clone();
            if let Err(e) = blocking(move || node.deposit_archive()).await? {
                warn!(error = %e, "packing the DM archive failed");
            }
        }
        let authors: Vec<PostingId> = node.own_ids()?.into_iter().map(PostingId).collect();
        let mut cursor = node.store.get_deposit_cursor(anchor.node_id())?;
        let mut deposited = 0;
        // Each author's current recent-post list, read once per deposit.
        let mut recents: HashMap<
            PostingId,
            Option<distsoc_protocol::messages::content::SignedAuthorRecentPosts>,
        > = HashMap::new();
        loop {
            let (store, a) = (node.store.clone(), authors.clone());
            let (batch, full) = blocking(move || own_items_since(&store, &a, cursor)).await??;
            for (seq, item) in batch {
                let is_delete = matches!(item, OwnItem::Delete(_));
                let sent = match item {
                    OwnItem::Post(post) => {
                        let author = post.post.body().author;
                        let recent = match recents.entry(author) {
                            Entry::Occupied(e) => e.get().clone(),
                            Entry::Vacant(e) => e.insert(node.store.get_recent(author)?).clone(),
                        };
                        let push = PushPost {
                            version: PROTOCOL_VERSION,
                            post: *post,
                            recent,
                        };
                        anchor.push_acked(push).await
                    }
                    OwnItem::Delete(record) => {
                        let delete = DeleteRecord {
                            version: PROTOCOL_VERSION,
                            record,
                        };
                        anchor.push_acked(delete).await
                    }
                };
                match sent {
                    Ok(_) => deposited += 1,
                    // An anchor that does not take delete records (an
                    // older one) must not block every later deposit: the
                    // delete still reaches followers by pull from us.
                    Err(RequestError::Remote(e))
                        if is_delete && e.code == ErrorCode::UnknownMessage =>
                    {
                        debug!(anchor = %anchor.node_id().short(), "anchor does not take delete records");
                    }
                    Err(RequestError::Remote(e))
                        if e.code == ErrorCode::QuotaExceeded && e.retry_after_ms == 0 =>
                    {
                        warn!(anchor = %anchor.node_id().short(), error = %e.message, "post skipped at this anchor: over its quota");
                    }
                    Err(RequestError::Remote(e)) if e.code == ErrorCode::QuotaExceeded => {
                        let wait = Duration::from_millis(u64::from(e.retry_after_ms));
                        self.deposit_paused
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(anchor.node_id(), std::time::Instant::now() + wait);
                        info!(anchor = %anchor.node_id().short(), retry_after_ms = e.retry_after_ms, "deposit quota exceeded: pausing deposits at this anchor");
                        node.store.set_deposit_cursor(anchor.node_id(), cursor)?;
                        return Ok(deposited);
                    }
                    Err(e) => {
                        node.store.set_deposit_cursor(anchor.node_id(), cursor)?;
                        return Err(e.into());
                    }
                }
                cursor = seq;
            }
            node.store.set_deposit_cursor(anchor.node_id(), cursor)?;
            if !full {
                break;
            }
        }
        Ok(deposited)
    }

    /// Asks `author` (reached through `via`) to join its audience: pushes a
    /// signed AudienceRequest and follows the author, so that the author's
    /// pushes are accepted here.
    pub async fn request_audience(
        &self,
        via: &ConnectString,
        author: PostingId,
        message: String,
    ) -> Result<(), NodeError> {
        let key = self.node.posting_key()?;
        let body = AudienceRequestBody {
            requester: PostingId(key.public()),
            author,
            message,
            created_at_ms: now_ms(),
        };
        compose::check_limits("audience request", &body)?;
        let request = distsoc_protocol::messages::content::sign_checked(body, &key)
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        let peer = self.connect(via).await?;
        peer.push_acked(AudienceRequest {
            version: PROTOCOL_VERSION,
            request,
        })
        .await?;
        self.node.store.follow(author, now_ms())?;
        Ok(())
    }

    /// A connection to `target`: the live one, else a new one to its stored
    /// address; `None` when neither exists.
    async fn reach(&self, target: NodeId) -> Result<Option<Peer>, NodeError> {
        if let Some(p) = self.transport.peer(&target) {
            return Ok(Some(p));
        }
        let addr = self
            .node
            .store
            .get_peer(target)?
            .and_then(|p| p.addresses.first().copied());
        match addr {
            Some(addr) => Ok(Some(self.dial(target, addr).await?)),
            None => Ok(None),
        }
    }

    /// Tells a requester the author's decision (best effort: only if the
    /// requester is connected or has a known address).
    pub async fn send_audience_decision(
        &self,
        requester: PostingId,
        decision: AudienceDecision,
    ) -> Result<bool, NodeError> {
        let key = self.node.posting_key()?;
        let body = AudienceResponseBody {
            author: PostingId(key.public()),
            requester,
            decision,
            decided_at_ms: now_ms(),
        };
        let response = distsoc_protocol::messages::content::sign_checked(body, &key)
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        let target = NodeId(requester.0);
        let Some(peer) = self.reach(target).await? else {
            return Ok(false);
        };
        peer.push_acked(AudienceResponse {
            version: PROTOCOL_VERSION,
            response,
        })
        .await?;
        Ok(true)
    }

    /// Pushes a public post to every approved audience member we can reach
    /// (connected, or with a known address). Encrypted posts are never pushed:
    /// their recipients pull them. Returns how many members accepted it.
    pub async fn push_to_audience(&self, post: &SyncPost) -> Result<usize, NodeError> {
        if post.post.body().is_sealed() {
            return Ok(0);
        }
        let author = post.post.body().author;
        let members = self.node.store.audience_members(author)?;
        let recent = self.node.store.get_recent(author)?;
        let mut delivered = 0;
        for m in members {
            // A pre-split identity's posting id is its NodeId.
            let target = NodeId(m.member.0);
            let peer = match self.reach(target).await {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => {
                    debug!(member = %target.short(), error = %e, "audience member unreachable");
                    continue;
                }
            };
            let msg = PushPost {
                version: PROTOCOL_VERSION,
                post: post.clone(),
                recent: recent.clone(),
            };
            match peer.push_acked(msg).await {
                Ok(_) => delivered += 1,
                Err(e) => debug!(member = %target.short(), error = %e, "audience push refused"),
            }
        }
        Ok(delivered)
    }

    /// Fetches a post by id from `peer`, checking that the bytes hash to the
    /// id asked for (`idMismatch` otherwise) and that it is validly signed,
    /// then stores it.
    pub async fn fetch_post(&self, peer: &Peer, id: PostId) -> Result<SyncPost, NodeError> {
        let request = FileRequest {
            version: PROTOCOL_VERSION,
            target: FileTarget::Post(id),
        };
        let FileResponse {
            content: FileContent::Post(file),
            ..
        } = peer.call(request).await?
        else {
            return Err(NodeError::Peer(
                ErrorCode::Malformed,
                "FileRequest for a post answered with something else".into(),
            ));
        };
        let post = file.post;
        post.validate(Some(id))
            .map_err(|e| NodeError::Peer(e.error_code(), e.to_string()))?;
        self.node.store.insert_post(&post, now_ms())?;
        Ok(post)
    }

    /// Fetches a blob by id from `peer`, checking its BLAKE3 hash, and stores it.
    pub async fn fetch_blob(&self, peer: &Peer, id: BlobId) -> Result<Vec<u8>, NodeError> {
        let request = FileRequest {
            version: PROTOCOL_VERSION,
            target: FileTarget::Blob(id),
        };
        let FileResponse {
            content: FileContent::Blob(bytes),
            ..
        } = peer.call(request).await?
        else {
            return Err(NodeError::Peer(
                ErrorCode::Malformed,
                "FileRequest for a blob answered with something else".into(),
            ));
        };
        if BlobId::of_blob(&bytes) != id {
            return Err(NodeError::Peer(
                ErrorCode::IdMismatch,
                format!("blob does not hash to {id}"),
            ));
        }
        self.node.store.put_blob(&bytes, now_ms())?;
        Ok(bytes)
    }

    /// Fetches from `peer` the attachments of `posts` readable with `keys`
    /// ([`Node::reading_keys`]) whose blobs we lack. Returns how many blobs
    /// were stored.
    pub async fn fetch_missing_blobs(
        &self,
        peer: &Peer,
        posts: &[SyncPost],
        keys: &[ReadingKey],
    ) -> usize {
        let mut wanted = Vec::new();
        for post in posts {
            for a in Node::readable_attachments(post, keys) {
                if !self.node.store.has_blob(a.blob_id).unwrap_or(true)
                    && !wanted.contains(&a.blob_id)
                {
                    wanted.push(a.blob_id);
                }
            }
        }
        let mut fetched = 0;
        for id in wanted {
            match self.fetch_blob(peer, id).await {
                Ok(_) => fetched += 1,
                Err(e) => {
                    debug!(peer = %peer.node_id().short(), blob = %id.short(), error = %e, "blob fetch failed")
                }
            }
        }
        fetched
    }

    /// Connects to every known peer with an address (and the configured
    /// bootstrap and anchors) and syncs with each; failures are logged.
    pub async fn sync_all(&self) -> Vec<(NodeId, Result<SyncReport, NodeError>)> {
        let mut targets: Vec<(NodeId, SocketAddr)> = Vec::new();
        let mut strings = self.node.config.bootstrap.clone();
        if let Ok(anchors) = config::read_anchors(&self.node.config.anchors_path(&self.node.dir)) {
            strings.extend(anchors);
        }
        for s in strings {
            match s.parse::<ConnectString>() {
                Ok(cs) => match resolve(&cs).await {
                    Ok(addr) => targets.push((cs.node_id, addr)),
                    Err(e) => warn!(target = %s, error = %e, "cannot resolve bootstrap peer"),
                },
                Err(e) => warn!(target = %s, error = %e, "bad connect string in configuration"),
            }
        }
        let peers: Vec<PeerRecord> = self.node.store.peers(256).unwrap_or_default();
        for p in peers {
            if let Some(a) = p.addresses.first() {
                if !targets.iter().any(|(id, _)| *id == p.node_id) {
                    targets.push((p.node_id, *a));
                }
            }
        }
        let mut results = Vec::new();
        for (id, addr) in targets {
            if id == self.node.node_id() {
                continue;
            }
            let result = async {
                let peer = self.dial(id, addr).await?;
                self.after_connect(&peer).await?;
                self.sync_with(&peer).await
            }
            .await;
            if let Err(e) = &result {
                debug!(peer = %id.short(), error = %e, "sync failed");
            }
            results.push((id, result));
        }
        results
    }

    /// Serves until `shutdown` resolves, syncing every `sync_interval_secs`.
    pub async fn serve_until(&self, shutdown: impl std::future::Future<Output = ()>) {
        let period = Duration::from_secs(self.node.config.sync_interval_secs.max(1));
        let mut ticker = tokio::time::interval(period);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticker.tick() => {}
            }
            // A sync round may wait on unreachable peers: shutdown cancels it.
            tokio::select! {
                () = &mut shutdown => break,
                results = self.sync_all() => {
                    let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
                    debug!(peers = results.len(), ok, "sync round");
                }
            }
        }
        // No new dials from the mesh while the endpoint closes.
        self.mesh().stop();
        self.transport.close().await;
    }
}

/// One of our own items to deposit at an anchor.
enum OwnItem {
    Post(Box<SyncPost>),
    Delete(distsoc_protocol::messages::content::SignedDeleteRecord),
}

/// Our own posts and delete records after local `since`, merged in store
/// order, at most [`DEPOSIT_BATCH`]; `true` when more may follow. Each list
/// is complete up to its own last `seq`, so the first `DEPOSIT_BATCH` of
/// the merge are too.
fn own_items_since(
    store: &Store,
    authors: &[PostingId],
    since: u64,
) -> Result<(Vec<(u64, OwnItem)>, bool), StoreError> {
    let posts = store.posts_by_authors_since(authors, since, DEPOSIT_BATCH)?;
    let deletes = store.deletes_since(authors, since, DEPOSIT_BATCH)?;
    let full = posts.len() == DEPOSIT_BATCH || deletes.len() == DEPOSIT_BATCH;
    let mut items: Vec<(u64, OwnItem)> = posts
        .into_iter()
        .map(|(seq, p)| (seq, OwnItem::Post(Box::new(p))))
        .chain(
            deletes
                .into_iter()
                .map(|d| (d.seq, OwnItem::Delete(d.record))),
        )
        .collect();
    items.sort_by_key(|(seq, _)| *seq);
    items.truncate(DEPOSIT_BATCH);
    Ok((items, full))
}

pub(crate) async fn resolve(target: &ConnectString) -> Result<SocketAddr, NodeError> {
    match &target.host {
        Host::Ip(ip) => Ok(SocketAddr::new(*ip, target.port)),
        Host::Name(name) => tokio::net::lookup_host((name.as_str(), target.port))
            .await
            .map_err(|source| NodeError::Io {
                path: name.into(),
                source,
            })?
            .next()
            .ok_or_else(|| NodeError::Invalid(format!("{name} has no address"))),
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NodeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NodeError::Task(e.to_string()))
}

/// Pushes every profile we hold for our own posting ids to `peer`.
pub(crate) async fn push_profiles(node: &Node, peer: &Peer) {
    let own = node.own_ids().unwrap_or_default();
    let profiles: Vec<SignedProfile> = node
        .store
        .profiles()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| own.contains(&p.body().posting_id.0))
        .collect();
    for profile in profiles {
        let msg = ProfileUpdate {
            version: PROTOCOL_VERSION,
            profile,
        };
        if let Err(e) = peer.push_acked(msg).await {
            debug!(peer = %peer.node_id().short(), error = %e, "profile push refused");
        }
    }
}

/// The post id of a feed item as typed by a user (full hex).
pub fn parse_post_id(s: &str) -> Result<PostId, NodeError> {
    s.parse()
        .map_err(|e| NodeError::Invalid(format!("bad post id: {e}")))
}
