//! Direct messages through an anchor's 1:1 DM channels (`schema/README.md`
//! §9, `schema/mailbox.capnp`): the client side of the mailbox.
//!
//! A [`DmClient`] is a node's key material plus a [`Peer`] connection to an
//! anchor. The anchor identifies the caller by the QUIC handshake key, so the
//! connection must be made with the node's own transport (its NodeId is the
//! channel member): use [`DmClient::connect`] on a [`Running`] node.
//!
//! * [`DmClient::channel_with`] — `CreateChannel`: the 16-byte channel id the
//!   anchor made for this pair (asking again returns the same channel, so no
//!   channel state needs to be kept here).
//! * [`DmClient::seal`] + [`DmClient::enqueue`] — `Enqueue` of a sealed
//!   message with a random `clientMessageId`; enqueueing the same
//!   [`OutgoingDm`] again is a safe retry (the anchor acknowledges it without
//!   storing a duplicate). [`DmClient::send`] does both, with bounded retries.
//! * [`DmClient::fetch`] / [`DmClient::fetch_wait`] — `Fetch` / `FetchWait`
//!   with `ackThrough`, each message verified and decrypted ([`Received`]);
//!   [`DmClient::read_all`] drains every channel and acknowledges.
//! * [`DmClient::list_channels`] / [`DmClient::pending_channels`] —
//!   `ListChannels`, paged through to the end (channels with waiting
//!   messages first; `pendingOnly` for the latter, which `read_all` uses).
//!
//! # Payload format
//!
//! As `schema/README.md` §9 specifies, a DM payload is the **canonical
//! bytes of a `SyncPost`** whose `Post` has sealed content (§5): the text is
//! a `PostBody`, sealed for the recipient and the sender, and the post is
//! signed by the sender's default posting key. The receiver therefore gets
//! the same guarantees as for an encrypted post — signature and id checked
//! (`SyncPost::validate`), content opened with the envelope construction —
//! and checks that the signer is the NodeId the anchor authenticated as the
//! sender (a pre-split identity, whose posting id equals its NodeId).
//!
//! # Storage
//!
//! Received DMs are **not** stored by the node: they are returned to the
//! caller — except those it cannot open (undecodable, over a limit, badly
//! signed, not for us): those are kept in the store
//! (`Store::undecryptable_dms`) before the page is returned, because an
//! acknowledgement makes the anchor delete them and `ackThrough` is
//! cumulative (not acknowledging one would hold back every later message). Delivery is at-least-once: a message stays queued at the anchor
//! until a later `Fetch` acknowledges it (`ackThrough`), so a caller that
//! needs durability acknowledges only after it has kept what it was given.

use std::time::Duration;

use distsoc_protocol::codec;
use distsoc_protocol::dm_rotation::ChainSeed;
use distsoc_protocol::error::{ErrorCode, WireCode};
use distsoc_protocol::ids::{ChannelId, ConnectString, NodeId, PostId, PostingId};
use distsoc_protocol::limits::{MAX_MAILBOX_PAYLOAD_BYTES, PROTOCOL_VERSION};
use distsoc_protocol::messages::content::{
    open_post, seal_post, DmGroup, DmRotation, PostBody, SyncPost,
};
use distsoc_protocol::messages::mailbox::{
    ChannelInfo, CreateChannel, Enqueue, Fetch, FetchResponse, FetchWait, ListChannels,
    ListChannelsResponse, MailboxMessage, CLIENT_MESSAGE_ID_LEN,
};
use distsoc_protocol::sign::SigningKey;
use rand_core::RngCore;

use crate::node::{Node, NodeError, Running};
use distsoc_net::now_ms;
use distsoc_net::transport::{Peer, RequestError};

/// Attempts of [`DmClient::send`] (the first one included).
pub const SEND_ATTEMPTS: u32 = 3;

/// Longest pause between two attempts of [`DmClient::send`], whatever the
/// anchor's `retryAfterMs`.
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// Most pages [`DmClient::read_all`] fetches from one queue.
const MAX_PAGES: usize = 1000;

/// Most `ListChannels` pages one listing reads (10^7 channels at the
/// default page size), a bound against an anchor whose cursor never ends.
const MAX_LIST_PAGES: usize = 1000;

/// Extra time given to a `FetchWait` request beyond its own timeout.
const FETCH_WAIT_SLACK: Duration = Duration::from_secs(10);

/// Why a DM operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DmError {
    /// The anchor refused (`Remote`: a typed wire error such as
    /// `unauthorized`, `rateLimited`, `tooLarge`) or the exchange failed
    /// (timeout, closed connection, bad reply).
    #[error("anchor request failed: {0}")]
    Request(#[from] RequestError),
    /// The anchor's `CreateChannelResponse` does not list this node and the
    /// requested peer as the members.
    #[error("the anchor returned a channel whose members are not us and {peer}")]
    WrongMembers {
        /// The peer asked for.
        peer: NodeId,
    },
    /// The message could not be sealed (text too long, unusable recipient
    /// key).
    #[error("cannot seal the message: {0}")]
    Seal(#[from] distsoc_protocol::messages::content::ContentError),
    /// Bad input from the caller (empty text, a DM to ourselves, a posting
    /// key that is not the network key).
    #[error("{0}")]
    Invalid(String),
    /// The node's store or keys failed.
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl DmError {
    /// The wire error code when the anchor refused the request.
    pub fn remote_code(&self) -> Option<ErrorCode> {
        match self {
            DmError::Request(RequestError::Remote(e)) => Some(e.code),
            _ => None,
        }
    }
}

/// Why one fetched message could not be read. The message is still returned
/// (in [`Received::content`]); it was kept in the node's store before it was
/// returned, so the caller can acknowledge past it without losing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The payload is not the canonical bytes of a `SyncPost`.
    #[error("payload is not a distsoc DM: {0}")]
    Malformed(String),
    /// The post's id or a signature does not verify.
    #[error("invalid DM ({code}): {reason}")]
    Invalid {
        /// The wire code a peer would get for this.
        code: ErrorCode,
        /// What failed.
        reason: String,
    },
    /// The content is not sealed: a DM must never travel in clear.
    #[error("the DM is not encrypted")]
    NotSealed,
    /// The signer is not the sender the anchor authenticated.
    #[error("signed by {author}, but the anchor delivered it from {sender}")]
    SenderMismatch {
        /// The posting id that signed the DM.
        author: PostingId,
        /// The anchor's (QUIC-authenticated) sender.
        sender: NodeId,
    },
    /// None of this node's keys is a recipient.
    #[error("cannot decrypt: not addressed to this node's keys")]
    NotForUs,
    /// Addressed to one of this node's keys, but the sealed content does
    /// not decrypt or does not decode (a body over a limit, say).
    #[error("addressed to this node, but its content cannot be read: {0}")]
    Unreadable(String),
}

/// A 1:1 channel at an anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    /// The 16-byte id the anchor generated.
    pub id: ChannelId,
    /// The other member.
    pub peer: NodeId,
    /// When the anchor created it, ms since epoch.
    pub created_at_ms: u64,
}

/// A sealed message ready to enqueue; enqueue the same value again to retry
/// (same `clientMessageId`, same payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingDm {
    /// The recipient (the channel's other member).
    pub recipient: NodeId,
    /// The sealed payload: canonical `SyncPost` bytes.
    pub payload: Vec<u8>,
    /// The id the anchor deduplicates retries with.
    pub client_message_id: [u8; CLIENT_MESSAGE_ID_LEN],
    /// Id of the sealed post inside the payload.
    pub post_id: PostId,
    /// When it was written (the post's signed time), ms since epoch.
    pub sent_at_ms: u64,
}

/// What the anchor acknowledged (after its durable commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The channel it went through.
    pub channel: ChannelId,
    /// The anchor's message id.
    pub message_id: u64,
    /// When the anchor accepted it.
    pub received_at_ms: u64,
    /// When the anchor will evict it if the recipient never acknowledges it.
    pub expires_at_ms: u64,
    /// Bytes of ciphertext-bearing payload the anchor holds.
    pub payload_len: usize,
}

/// A DM opened by its recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmContent {
    /// The text.
    pub text: String,
    /// When the sender wrote it (signed), ms since epoch.
    pub sent_at_ms: u64,
    /// Id of the sealed post that carried it.
    pub post_id: PostId,
    /// The rotation handshake it carried (`schema/README.md` §9.1): the
    /// seed of the sender's next message in the thread.
    pub rotation: Option<DmRotation>,
    /// The group thread it belongs to, when it was sent to a group
    /// (`schema/README.md` §9.1, "Group threads").
    pub group: Option<DmGroup>,
}

/// One fetched mailbox message, opened or with the reason it could not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The anchor's message id (acknowledge with `ackThrough`).
    pub message_id: u64,
    /// The channel; `None` for the legacy mailbox.
    pub channel: Option<ChannelId>,
    /// The sender: as authenticated by the anchor, or for a message of a
    /// rotated thread (`rotated`), the thread's peer (whose first message,
    /// on the identity channel, started the chain).
    pub sender: NodeId,
    /// Came over a rotated thread (`schema/README.md` §9.1): the anchor saw
    /// only the message's ephemeral ids, not `sender`.
    pub rotated: bool,
    /// When the anchor accepted it.
    pub received_at_ms: u64,
    /// When the anchor will evict it.
    pub expires_at_ms: u64,
    /// The opened message, or why it cannot be read.
    pub content: Result<DmContent, OpenError>,
}

/// One page of a queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inbox {
    /// The messages, in message-id order.
    pub messages: Vec<Received>,
    /// More messages are queued than were returned.
    pub more: bool,
}

impl Inbox {
    /// The highest message id in this page (0 if empty): pass it as
    /// `ack_through` once the page has been handled.
    pub fn last_message_id(&self) -> u64 {
        self.messages
            .iter()
            .map(|m| m.message_id)
            .max()
            .unwrap_or(0)
    }
}

/// A node's DM client on one anchor connection.
#[derive(Debug, Clone)]
pub struct DmClient {
    node: Node,
    anchor: Peer,
    list_page_size: u32,
    /// The persona this client acts as, when not the network key's own
    /// (`crate::dm_persona`): `anchor` is then a connection authenticated
    /// as the persona's posting key.
    persona: Option<PersonaKey>,
}

/// A persona's posting key (its `Debug` does not print the seed).
#[derive(Clone)]
pub(crate) struct PersonaKey {
    pub(crate) key: SigningKey,
    pub(crate) id: PostingId,
}

impl std::fmt::Debug for PersonaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PersonaKey({})", self.id)
    }
}

impl DmClient {
    /// A client for `node` over `anchor`, a connection made with the node's
    /// own network key (the anchor treats that key as the caller).
    pub fn new(node: Node, anchor: Peer) -> Self {
        Self {
            node,
            anchor,
            list_page_size: 0,
            persona: None,
        }
    }

    /// A client acting as a persona over `anchor`, a connection
    /// authenticated as the persona's posting key (`crate::dm_persona`).
    pub(crate) fn for_persona(node: Node, anchor: Peer, key: SigningKey) -> Self {
        let id = PostingId(key.public());
        Self {
            persona: Some(PersonaKey { key, id }),
            ..Self::new(node, anchor)
        }
    }

    /// The id this client sends and reads as: the persona's posting id, or
    /// the node's NodeId.
    pub fn me(&self) -> NodeId {
        self.persona
            .as_ref()
            .map_or_else(|| self.node.node_id(), |p| NodeId(p.id.0))
    }

    /// The persona this client acts as, when not the network key's own.
    pub fn persona(&self) -> Option<PostingId> {
        self.persona.as_ref().map(|p| p.id)
    }

    /// The id the thread with `peer` is filed under (archive, rotating
    /// chains): `peer` itself for the node's own identity, else the
    /// persona thread id ([`crate::dm_persona::thread_id`]), recorded so it
    /// can be shown as its persona and peer.
    pub(crate) fn thread_of(&self, peer: NodeId) -> Result<NodeId, DmError> {
        match &self.persona {
            None => Ok(peer),
            Some(p) => {
                let thread = crate::dm_persona::thread_id(p.id, peer);
                self.node
                    .store()
                    .record_persona_thread(thread, p.id, peer, now_ms())
                    .map_err(NodeError::from)?;
                Ok(thread)
            }
        }
    }

    /// Connects `running` to the anchor at `anchor` (recording it as a peer
    /// and exchanging profiles, as any connect does) and returns a client.
    pub async fn connect(running: &Running, anchor: &ConnectString) -> Result<Self, DmError> {
        let peer = running.connect(anchor).await?;
        Ok(Self::new(running.node().clone(), peer))
    }

    /// The anchor connection.
    pub fn anchor(&self) -> &Peer {
        &self.anchor
    }

    /// The channel between this node and `peer` (created by the anchor on
    /// first use; the same channel afterwards).
    pub async fn channel_with(&self, peer: NodeId) -> Result<Channel, DmError> {
        let me = self.me();
        if peer == me {
            return Err(DmError::Invalid(
                "a DM channel needs another identity".into(),
            ));
        }
        let request = CreateChannel {
            version: PROTOCOL_VERSION,
            peer,
        };
        let r = self.anchor.call(request).await?;
        if r.other(&me) != Some(peer) {
            return Err(DmError::WrongMembers { peer });
        }
        Ok(Channel {
            id: r.channel_id,
            peer,
            created_at_ms: r.created_at_ms,
        })
    }

    /// Channels per `ListChannels` page this client asks for (0: the
    /// anchor's default, 10,000). Smaller pages mean more round trips but
    /// smaller responses.
    pub fn with_list_page_size(mut self, channels: u32) -> Self {
        self.list_page_size = channels;
        self
    }

    /// One `ListChannels` page as the anchor answers it.
    pub async fn list_channels_page(
        &self,
        request: ListChannels,
    ) -> Result<ListChannelsResponse, DmError> {
        Ok(self.anchor.call(request).await?)
    }

    /// Every channel this node belongs to at the anchor, with the number of
    /// messages waiting in each: channels with waiting messages first (the
    /// anchor's listing order), paging through the whole listing.
    pub async fn list_channels(&self) -> Result<Vec<ChannelInfo>, DmError> {
        self.list_all(false).await
    }

    /// Every channel with messages waiting for this node (`pendingOnly`),
    /// paging through the whole listing.
    pub async fn pending_channels(&self) -> Result<Vec<ChannelInfo>, DmError> {
        self.list_all(true).await
    }

    async fn list_all(&self, pending_only: bool) -> Result<Vec<ChannelInfo>, DmError> {
        let mut request = ListChannels {
            version: PROTOCOL_VERSION,
            after: None,
            limit: self.list_page_size,
            pending_only,
        };
        let mut out = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let page = self.list_channels_page(request).await?;
            let next = page.next_request(&request);
            out.extend(page.channels);
            match next {
                // A cursor that does not move would loop forever.
                Some(n) if n.after != request.after => request = n,
                _ => break,
            }
        }
        Ok(out)
    }

    /// Seals `text` for `to` (and for this node, so the sender can read its
    /// own copy), signed with the node's default posting key, with a fresh
    /// random `clientMessageId`.
    pub fn seal(&self, to: NodeId, text: &str) -> Result<OutgoingDm, DmError> {
        self.seal_with(to, text, None)
    }

    /// [`DmClient::seal`] with a rotation handshake in the sealed body
    /// (`schema/README.md` §9.1): the first message of a rotated thread,
    /// or a re-seed, on the identity channel.
    pub fn seal_with(
        &self,
        to: NodeId,
        text: &str,
        rotation: Option<DmRotation>,
    ) -> Result<OutgoingDm, DmError> {
        self.seal_in(to, text, rotation, None)
    }

    /// [`DmClient::seal_with`] for a message of group thread `group` (or a
    /// 1:1 message when `None`).
    pub fn seal_in(
        &self,
        to: NodeId,
        text: &str,
        rotation: Option<DmRotation>,
        group: Option<&DmGroup>,
    ) -> Result<OutgoingDm, DmError> {
        let me = self.me();
        if to == me || self.node.own_ids()?.contains(&to.0) {
            return Err(DmError::Invalid("cannot DM yourself".into()));
        }
        if let Some(p) = &self.persona {
            return seal_dm(&p.key, to, text, rotation, group);
        }
        let key = self.node.posting_key()?;
        if key.public() != me.0 {
            return Err(DmError::Invalid(
                "the default posting key is not the network key; DMs are signed by the \
                 NodeId the anchor authenticates"
                    .into(),
            ));
        }
        seal_dm(&key, to, text, rotation, group)
    }
}

/// Seals `text` as a DM signed by `key` for `to` (and for `key` itself, the
/// sender's copy), with `rotation` in the sealed body: the payload of an
/// identity-channel DM (`key` is the sender's NodeId key) or of message n of
/// a rotated thread (`key` is the send id of s(n), `to` the receive id).
pub fn seal_dm(
    key: &SigningKey,
    to: NodeId,
    text: &str,
    rotation: Option<DmRotation>,
    group: Option<&DmGroup>,
) -> Result<OutgoingDm, DmError> {
    if text.is_empty() {
        return Err(DmError::Invalid("a DM needs some text".into()));
    }
    let body = PostBody {
        text: text.to_string(),
        attachments: Vec::new(),
        rotation,
        archive: None,
        group: group.cloned(),
    };
    // Refused here, before anything is enqueued: the recipient could not
    // read a body over the limits (and must not have to destroy it).
    crate::compose::check_limits("DM", &body).map_err(NodeError::from)?;
    let recipients = [PostingId(to.0), PostingId(key.public())];
    let mut rng = rand_core::OsRng;
    let sent_at_ms = now_ms();
    let (post, visibility) = seal_post(key, sent_at_ms, &body, &recipients, &mut rng)?;
    let sync = SyncPost::new(key, post, visibility, None);
    let payload = codec::canonical_of(&sync);
    if payload.is_empty() || payload.len() > MAX_MAILBOX_PAYLOAD_BYTES {
        return Err(DmError::Invalid(format!(
            "sealed message is {} bytes; a mailbox payload is 1..={MAX_MAILBOX_PAYLOAD_BYTES}",
            payload.len()
        )));
    }
    let mut client_message_id = [0u8; CLIENT_MESSAGE_ID_LEN];
    rng.fill_bytes(&mut client_message_id);
    Ok(OutgoingDm {
        recipient: to,
        payload,
        client_message_id,
        post_id: sync.post_id(),
        sent_at_ms,
    })
}

impl DmClient {
    /// The node this client acts for.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Enqueues `dm` in `channel`. Calling it again with the same `dm` (after
    /// a timeout, say) does not store a second copy.
    pub async fn enqueue(&self, channel: ChannelId, dm: &OutgoingDm) -> Result<Sent, DmError> {
        enqueue_on(&self.anchor, channel, dm).await
    }

    /// Sends `text` to `to`: looks up (or creates) the channel, seals, and
    /// enqueues — retrying up to [`SEND_ATTEMPTS`] times with the same
    /// `clientMessageId` when the anchor is rate limiting or unavailable or
    /// the request timed out. Any other refusal is returned at once.
    pub async fn send(&self, to: NodeId, text: &str) -> Result<Sent, DmError> {
        // Sealed (and checked against every limit) before the anchor is
        // asked for anything.
        let dm = self.seal(to, text)?;
        let channel = self.channel_with(to).await?;
        let sent = enqueue_retrying(&self.anchor, channel.id, &dm).await?;
        // Kept in the local archive once the anchor has it.
        self.archive_sent(to, &dm, text)?;
        Ok(sent)
    }

    /// Archives a DM the anchor acknowledged, under the thread's peer.
    pub(crate) fn archive_sent(
        &self,
        peer: NodeId,
        dm: &OutgoingDm,
        text: &str,
    ) -> Result<(), DmError> {
        let archived = crate::store::ArchivedDm {
            peer: self.thread_of(peer)?,
            outgoing: true,
            sent_at_ms: dm.sent_at_ms,
            text: text.to_string(),
        };
        self.node
            .store()
            .archive_dm(
                &self.node.archive_key(),
                &archived,
                *blake3::hash(&dm.payload).as_bytes(),
                now_ms(),
            )
            .map_err(NodeError::from)?;
        Ok(())
    }

    /// Fetches this node's queued messages in `channel` (`None`: the legacy
    /// mailbox) without waiting, after acknowledging (deleting) those with
    /// id ≤ `ack_through` (0 acknowledges nothing).
    pub async fn fetch(
        &self,
        channel: Option<ChannelId>,
        ack_through: u64,
    ) -> Result<Inbox, DmError> {
        let msg = Fetch {
            version: PROTOCOL_VERSION,
            channel_id: channel,
            ack_through,
            max_messages: 0,
            max_bytes: 0,
        };
        let page = self.anchor.call(msg).await?;
        self.open_page(page)
    }

    /// Like [`DmClient::fetch`], but if the queue is empty waits up to
    /// `timeout` (the anchor caps it, at most 60 s) for a message; an empty
    /// page means none came.
    pub async fn fetch_wait(
        &self,
        channel: Option<ChannelId>,
        ack_through: u64,
        timeout: Duration,
    ) -> Result<Inbox, DmError> {
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let msg = FetchWait {
            version: PROTOCOL_VERSION,
            channel_id: channel,
            ack_through,
            max_messages: 0,
            max_bytes: 0,
            timeout_ms,
        };
        let page = self
            .anchor
            .call_with_timeout(msg, timeout + FETCH_WAIT_SLACK)
            .await?;
        self.open_page(page.0)
    }

    /// Acknowledges (deletes at the anchor) the messages of `channel` with id
    /// ≤ `through`.
    pub async fn ack(&self, channel: Option<ChannelId>, through: u64) -> Result<(), DmError> {
        let msg = Fetch {
            version: PROTOCOL_VERSION,
            channel_id: channel,
            ack_through: through,
            // The acknowledgement is what matters; return as little as allowed.
            max_messages: 1,
            max_bytes: 1,
        };
        self.anchor.call(msg).await?;
        Ok(())
    }

    /// Fetches every queued message of every channel this node is in (pages
    /// until the queue is drained) and, with `ack`, acknowledges them at the
    /// anchor: they are then only in the returned list, which the caller must
    /// keep. Without `ack` they stay queued and come again next time.
    pub async fn read_all(&self, ack: bool) -> Result<Vec<Received>, DmError> {
        let mut out = Vec::new();
        // Only channels with waiting messages, all of them (paged), however
        // many empty channels others have opened with this node.
        for info in self.pending_channels().await? {
            if info.queued == 0 {
                continue;
            }
            let channel = Some(info.channel_id);
            let mut ack_through = 0;
            for _ in 0..MAX_PAGES {
                // Each page acknowledges the one before it.
                let page = self.fetch(channel, ack_through).await?;
                let last = page.last_message_id();
                let more = page.more;
                out.extend(page.messages);
                // Without acks the next page would be this one again.
                if !ack || last <= ack_through {
                    break;
                }
                ack_through = last;
                if !more {
                    self.ack(channel, ack_through).await?;
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Opens a fetched page. A message that cannot be opened is kept in the
    /// node's store (payload and reason, see [`Store::undecryptable_dms`])
    /// before this returns, so acknowledging the page afterwards never
    /// destroys a message the user has not read. If it cannot be kept (the
    /// store fails, or [`crate::store::MAX_KEPT_DMS`] are already kept) the
    /// page is an error, and the caller does not acknowledge it.
    ///
    /// [`Store::undecryptable_dms`]: crate::store::Store::undecryptable_dms
    fn open_page(&self, r: FetchResponse) -> Result<Inbox, DmError> {
        let seeds = self.node.reading_seeds()?;
        let key = self.node.archive_key();
        let mut messages = Vec::with_capacity(r.messages.len());
        for m in r.messages {
            let payload = m.payload.clone();
            let received = open_message(&seeds, m);
            // Archived (or kept unreadable) before the page can be
            // acknowledged: an acknowledged DM is never lost.
            if let Ok(c) = &received.content {
                let thread = self.thread_of(received.sender)?;
                crate::dm_group::archive_received(
                    &self.node,
                    &key,
                    thread,
                    received.sender,
                    c,
                    *blake3::hash(&payload).as_bytes(),
                )?;
                // The first message of a rotated thread (or a re-seed): the
                // sender's next messages come over the chain it starts.
                if let Some(r) = &c.rotation {
                    let chain = crate::store::DmChain {
                        seed: ChainSeed::from_bytes(r.next_posting_id),
                        n: 1,
                        at_ms: c.sent_at_ms,
                    };
                    self.node
                        .store()
                        .reseed_incoming_dm_chain(&key, thread, &chain)
                        .map_err(NodeError::from)?;
                }
            }
            if let Err(reason) = &received.content {
                let kept = crate::store::KeptDm {
                    anchor: self.anchor.node_id(),
                    channel: received.channel,
                    message_id: received.message_id,
                    sender: received.sender,
                    received_at_ms: received.received_at_ms,
                    reason: reason.to_string(),
                    payload,
                };
                self.node
                    .store()
                    .keep_undecryptable_dm(&kept, now_ms())
                    .map_err(NodeError::from)?;
            }
            messages.push(received);
        }
        Ok(Inbox {
            messages,
            more: r.more,
        })
    }
}

/// Verifies and opens one mailbox message with the reader's key seeds.
pub fn open_message(seeds: &[zeroize::Zeroizing<[u8; 32]>], m: MailboxMessage) -> Received {
    let content = open_payload(seeds, m.sender, &m.payload);
    Received {
        message_id: m.message_id,
        channel: m.channel_id,
        sender: m.sender,
        received_at_ms: m.received_at_ms,
        expires_at_ms: m.expires_at_ms,
        rotated: false,
        content,
    }
}

/// Decodes, verifies and decrypts a DM payload sent by `sender`.
pub fn open_payload(
    seeds: &[zeroize::Zeroizing<[u8; 32]>],
    sender: NodeId,
    payload: &[u8],
) -> Result<DmContent, OpenError> {
    let sync: SyncPost = codec::from_canonical("payload", payload, MAX_MAILBOX_PAYLOAD_BYTES)
        .map_err(|e| OpenError::Malformed(e.to_string()))?;
    let post_id = sync.validate(None).map_err(|e| OpenError::Invalid {
        code: e.error_code(),
        reason: e.to_string(),
    })?;
    let body = sync.post.body();
    if !body.is_sealed() {
        return Err(OpenError::NotSealed);
    }
    if body.author.0 != sender.0 {
        return Err(OpenError::SenderMismatch {
            author: body.author,
            sender,
        });
    }
    let recipients = sync.visibility.recipients();
    let mut ours = seeds.iter().filter(|s| {
        let id = distsoc_protocol::sign::SigningKey::from_seed(s).public();
        recipients.iter().any(|w| w.recipient == id)
    });
    let Some(first) = ours.next() else {
        return Err(OpenError::NotForUs);
    };
    let opened = match open_post(first, &sync.post, &sync.visibility) {
        Ok(body) => body,
        Err(e) => ours
            .find_map(|s| open_post(s, &sync.post, &sync.visibility).ok())
            .ok_or_else(|| OpenError::Unreadable(e.to_string()))?,
    };
    Ok(DmContent {
        text: opened.text,
        sent_at_ms: body.created_at_ms,
        post_id,
        rotation: opened.rotation,
        group: opened.group,
    })
}

/// `Enqueue` of `dm` in `channel` over `anchor` (whose caller must be a
/// member of the channel).
pub(crate) async fn enqueue_on(
    anchor: &Peer,
    channel: ChannelId,
    dm: &OutgoingDm,
) -> Result<Sent, DmError> {
    let msg = Enqueue {
        version: PROTOCOL_VERSION,
        channel_id: Some(channel),
        recipient: dm.recipient,
        payload: dm.payload.clone(),
        client_message_id: Some(dm.client_message_id),
    };
    let r = anchor.call(msg).await?;
    Ok(Sent {
        channel,
        message_id: r.message_id,
        received_at_ms: r.received_at_ms,
        expires_at_ms: r.expires_at_ms,
        payload_len: dm.payload.len(),
    })
}

/// [`enqueue_on`], retried up to [`SEND_ATTEMPTS`] times with the same
/// `clientMessageId` when the anchor is rate limiting or unavailable or the
/// request timed out. Any other refusal is returned at once.
pub(crate) async fn enqueue_retrying(
    anchor: &Peer,
    channel: ChannelId,
    dm: &OutgoingDm,
) -> Result<Sent, DmError> {
    let mut attempt = 1;
    loop {
        match enqueue_on(anchor, channel, dm).await {
            Ok(sent) => return Ok(sent),
            Err(e) if attempt < SEND_ATTEMPTS => {
                let pause = match &e {
                    DmError::Request(RequestError::Remote(w))
                        if matches!(w.code, ErrorCode::RateLimited | ErrorCode::Unavailable) =>
                    {
                        Duration::from_millis(u64::from(w.retry_after_ms.max(1)))
                    }
                    DmError::Request(RequestError::Timeout(_)) => Duration::ZERO,
                    _ => return Err(e),
                };
                tokio::time::sleep(pause.min(MAX_RETRY_PAUSE)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
