//! Rotating DM ids (`schema/README.md` §9.1): DM threads whose messages go
//! through the anchor under short-lived ids, so that the anchor cannot tie
//! two messages of a thread together nor to the people in it.
//!
//! Each direction of a thread with a peer is a chain of secret seeds
//! ([`distsoc_protocol::dm_rotation`]). The first message goes as any DM
//! (our NodeId to theirs, on the identity channel) and carries, inside its
//! sealed body, the seed s(1) of our next message. Message n ≥ 1 is signed
//! by the send id of s(n), sealed to the receive id of s(n) (and to the
//! send id: the sender's copy), and enqueued over a **separate QUIC
//! connection authenticated as the send id**, in the channel between the
//! send id and the receive id, which the send id creates. Its sealed body
//! carries s(n+1).
//!
//! The receiver keeps, per peer, the first seed of a window of
//! [`WINDOW`](distsoc_protocol::dm_rotation::WINDOW) ids; to read it connects as each receive id of the window (one
//! connection per id, each with its own endpoint and UDP port), lists its
//! waiting channels, fetches, opens, archives under the peer's NodeId and
//! slides the window past the highest message accepted. A lost message does
//! not break the thread: the next one is still in the window. If the chain
//! is lost beyond the window (more than [`WINDOW`](distsoc_protocol::dm_rotation::WINDOW) messages lost in a row,
//! or a lost re-seed), the sender re-seeds from the identity channel
//! ([`DmClient::send_rotating`] with `reseed`).
//!
//! Accepted messages go to the local archive under the thread's peer, like
//! every other DM, so `dm history PEER` is one thread whatever the wire ids
//! were. The chain state is in the node's store ([`crate::store::DmChain`]),
//! sealed under the archive key; only the current seed of each chain is
//! kept.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use distsoc_net::now_ms;
use distsoc_net::transport::{Peer, Router, Transport, TransportConfig};
use distsoc_protocol::dm_rotation::ChainSeed;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::messages::content::DmRotation;
use distsoc_protocol::messages::mailbox::{ChannelInfo, CreateChannel, Fetch, ListChannels};

use crate::dm::{
    enqueue_retrying, open_message, seal_dm, DmClient, DmError, OpenError, Received, Sent,
};
use crate::node::NodeError;
use crate::store::DmChain;

/// Most pages read from one queue of one window id.
const MAX_PAGES: usize = 1000;

/// Most `ListChannels` pages read for one window id.
const MAX_LIST_PAGES: usize = 100;

/// How long closing an ephemeral connection waits for the endpoint to go
/// idle. The close is sent at once; the wait only covers QUIC's draining
/// period (about three probe timeouts), which the anchor does not need: if
/// the close is lost it times the connection out. All the connections of a
/// read close concurrently, so a read waits this at most once.
const EPHEMERAL_CLOSE: Duration = Duration::from_millis(250);

/// What [`DmClient::send_rotating`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotatedSent {
    /// The anchor's acknowledgement.
    pub sent: Sent,
    /// The chain position of the message: 0 for a message on the identity
    /// channel (a thread's first message, or a re-seed), n ≥ 1 for message
    /// n of the chain.
    pub n: u64,
    /// The id that signed and enqueued it (our NodeId when `n` is 0).
    pub send_id: NodeId,
    /// The id it was sealed and enqueued to (the peer's NodeId when `n` is
    /// 0).
    pub recv_id: NodeId,
}

/// A connection to the anchor authenticated as an ephemeral key, on an
/// endpoint (and UDP port) of its own.
pub(crate) struct Ephemeral {
    pub(crate) transport: Transport,
    pub(crate) peer: Peer,
}

impl Ephemeral {
    pub(crate) async fn connect(
        key: &distsoc_protocol::sign::SigningKey,
        anchor: NodeId,
        addr: SocketAddr,
    ) -> Result<Self, DmError> {
        let listen = if addr.is_ipv4() {
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
        } else {
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
        };
        let cfg = TransportConfig {
            listen,
            close_timeout: EPHEMERAL_CLOSE,
            ..TransportConfig::default()
        };
        // Serves nothing: the anchor has no reason to call an ephemeral id.
        let router = Router::new(Arc::new(()), "dm-ephemeral");
        let transport = Transport::bind(key, cfg, Arc::new(router)).map_err(NodeError::from)?;
        match transport.connect(anchor, addr).await {
            Ok(peer) => Ok(Self { transport, peer }),
            Err(e) => {
                transport.close().await;
                Err(NodeError::from(e).into())
            }
        }
    }

    pub(crate) async fn close(self) {
        self.transport.close().await;
    }
}

impl DmClient {
    /// Sends `text` to `to` over a rotated thread: message n of our chain
    /// through an ephemeral connection, or — when the thread has no chain
    /// yet, or with `reseed` — on the identity channel, carrying a fresh
    /// seed that starts (or restarts) the chain. The message is archived
    /// under `to` and the chain moved on once the anchor acknowledged it.
    pub async fn send_rotating(
        &self,
        to: NodeId,
        text: &str,
        reseed: bool,
    ) -> Result<RotatedSent, DmError> {
        self.send_rotating_in(to, text, reseed, None).await
    }

    /// [`DmClient::send_rotating`] of one member's copy of a message of
    /// group thread `group` (`crate::dm_group`): the same rotated thread
    /// with `to`, the group in the sealed body, and not archived as a 1:1
    /// message (the caller archives it once, in the group thread). With
    /// `None`, a 1:1 message.
    pub async fn send_rotating_in(
        &self,
        to: NodeId,
        text: &str,
        reseed: bool,
        group: Option<&distsoc_protocol::messages::content::DmGroup>,
    ) -> Result<RotatedSent, DmError> {
        let node = self.node();
        let key = node.archive_key();
        // A persona's thread with `to` is filed under its own id.
        let thread = self.thread_of(to)?;
        let chain = if reseed {
            None
        } else {
            node.store()
                .dm_chain(&key, thread, true)
                .map_err(NodeError::from)?
        };
        let Some(chain) = chain else {
            let first = ChainSeed::generate(&mut rand_core::OsRng);
            let rotation = DmRotation {
                next_posting_id: *first.as_bytes(),
            };
            let dm = self.seal_in(to, text, Some(rotation), group)?;
            let channel = self.channel_with(to).await?;
            let sent = enqueue_retrying(self.anchor(), channel.id, &dm).await?;
            if group.is_none() {
                self.archive_sent(to, &dm, text)?;
            }
            let next = DmChain {
                seed: first,
                n: 1,
                at_ms: dm.sent_at_ms,
            };
            node.store()
                .set_dm_chain(&key, thread, true, &next)
                .map_err(NodeError::from)?;
            return Ok(RotatedSent {
                sent,
                n: 0,
                send_id: self.me(),
                recv_id: to,
            });
        };
        let send_key = chain.seed.send_key();
        let send_id = NodeId(send_key.public());
        let recv_id = NodeId(chain.seed.recv_key().public());
        let next_seed = chain.seed.next();
        let rotation = DmRotation {
            next_posting_id: *next_seed.as_bytes(),
        };
        let dm = seal_dm(&send_key, recv_id, text, Some(rotation), group)?;
        let anchor = self.anchor();
        let eph = Ephemeral::connect(&send_key, anchor.node_id(), anchor.remote_address()).await?;
        let result = async {
            let r = eph
                .peer
                .call(CreateChannel {
                    version: PROTOCOL_VERSION,
                    peer: recv_id,
                })
                .await?;
            if r.other(&send_id) != Some(recv_id) {
                return Err(DmError::WrongMembers { peer: recv_id });
            }
            enqueue_retrying(&eph.peer, r.channel_id, &dm).await
        }
        .await;
        eph.close().await;
        let sent = result?;
        if group.is_none() {
            self.archive_sent(to, &dm, text)?;
        }
        let next = DmChain {
            seed: next_seed,
            n: chain.n + 1,
            at_ms: dm.sent_at_ms,
        };
        node.store()
            .set_dm_chain(&key, thread, true, &next)
            .map_err(NodeError::from)?;
        Ok(RotatedSent {
            sent,
            n: chain.n,
            send_id,
            recv_id,
        })
    }

    /// Reads every rotated thread: for each peer whose chain has started,
    /// the window of receive ids, each over its own ephemeral connection.
    /// Opened messages are archived under the peer; with `ack` they are
    /// acknowledged (deleted at the anchor) and the window slides past the
    /// highest accepted one. Without `ack` nothing moves: the same messages
    /// come again next time.
    pub async fn read_rotated(&self, ack: bool) -> Result<Vec<Received>, DmError> {
        let key = self.node().archive_key();
        let chains = self
            .node()
            .store()
            .incoming_dm_chains(&key)
            .map_err(NodeError::from)?;
        let mut out = Vec::new();
        // Ephemeral connections close in the background (each waits for
        // the anchor's acknowledgement) and are all waited for at the end.
        let mut closing = tokio::task::JoinSet::new();
        let mut result = Ok(());
        for (peer, chain) in chains {
            match self.read_thread(peer, chain, ack, &mut closing).await {
                Ok(got) => out.extend(got),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        while closing.join_next().await.is_some() {}
        result.map(|()| out)
    }

    /// Reads one peer's chain from `chain` on. Each pass probes every
    /// window id not probed yet at once (connect, list its waiting
    /// channels), then reads those with waiting messages in chain order,
    /// sliding the window past each accepted message; a pass that moved the
    /// window is followed by one over the ids that entered it.
    async fn read_thread(
        &self,
        peer: NodeId,
        mut chain: DmChain,
        ack: bool,
        closing: &mut tokio::task::JoinSet<()>,
    ) -> Result<Vec<Received>, DmError> {
        let anchor = self.anchor();
        let (anchor_id, addr) = (anchor.node_id(), anchor.remote_address());
        let mut probed = HashSet::new();
        let mut out = Vec::new();
        loop {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, seed) in chain.seed.window().into_iter().enumerate() {
                if probed.insert(NodeId(seed.recv_key().public())) {
                    tasks.spawn(async move {
                        let r = probe(&seed, anchor_id, addr).await;
                        (i, seed, r)
                    });
                }
            }
            if tasks.is_empty() {
                break;
            }
            let mut probes = Vec::with_capacity(tasks.len());
            let mut failed = None;
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok((i, seed, Ok((eph, channels)))) if !channels.is_empty() => {
                        probes.push((i, seed, (eph, channels)))
                    }
                    Ok((_, _, Ok((eph, _)))) => {
                        closing.spawn(eph.close());
                    }
                    Ok((_, _, Err(e))) => failed = failed.or(Some(e)),
                    Err(e) => {
                        failed = failed.or(Some(DmError::Invalid(format!("probe failed: {e}"))))
                    }
                }
            }
            if let Some(e) = failed {
                for (_, _, (eph, _)) in probes {
                    closing.spawn(eph.close());
                }
                return Err(e);
            }
            probes.sort_by_key(|(i, _, _)| *i);
            let mut moved_any = false;
            let mut result = Ok(());
            for (_, seed, (eph, channels)) in probes {
                // Still in the window? (A re-seed by an earlier message of
                // this pass takes the later ids out of it.)
                let recv_id = NodeId(seed.recv_key().public());
                let step = chain
                    .seed
                    .window()
                    .iter()
                    .position(|s| NodeId(s.recv_key().public()) == recv_id);
                if let (Some(step), Ok(())) = (step, &result) {
                    match self
                        .read_on(&eph.peer, channels, peer, &seed, &chain, step as u64, ack)
                        .await
                    {
                        Ok((got, moved)) => {
                            out.extend(got);
                            if let Some(m) = moved {
                                chain = m;
                                moved_any = true;
                            }
                        }
                        Err(e) => result = Err(e),
                    }
                }
                closing.spawn(eph.close());
            }
            result?;
            if !moved_any {
                break;
            }
        }
        Ok(out)
    }

    /// Reads the waiting `channels` of one receive id (`seed`, `step`
    /// places after the window's first) over `conn`, a connection
    /// authenticated as that id: returns what it got and, if a message was
    /// accepted, the chain moved past it (already stored when `ack`).
    #[allow(clippy::too_many_arguments)]
    async fn read_on(
        &self,
        conn: &Peer,
        channels: Vec<ChannelInfo>,
        peer: NodeId,
        seed: &ChainSeed,
        chain: &DmChain,
        step: u64,
        ack: bool,
    ) -> Result<(Vec<Received>, Option<DmChain>), DmError> {
        let send_id = NodeId(seed.send_key().public());
        let node = self.node();
        let key = node.archive_key();
        let recv_seed = [seed.recv_seed()];
        let mut out = Vec::new();
        let mut moved: Option<DmChain> = None;
        for info in channels {
            let channel = Some(info.channel_id);
            let mut ack_through = 0;
            for _ in 0..MAX_PAGES {
                let page = conn
                    .call(Fetch {
                        version: PROTOCOL_VERSION,
                        channel_id: channel,
                        ack_through,
                        max_messages: 0,
                        max_bytes: 0,
                    })
                    .await?;
                let more = page.more;
                let last = page
                    .messages
                    .iter()
                    .map(|m| m.message_id)
                    .max()
                    .unwrap_or(0);
                for m in page.messages {
                    let payload = m.payload.clone();
                    let mut r = open_message(&recv_seed, m);
                    if r.sender != send_id {
                        r.content = Err(OpenError::SenderMismatch {
                            author: distsoc_protocol::ids::PostingId(send_id.0),
                            sender: r.sender,
                        });
                    }
                    match &r.content {
                        Ok(c) => {
                            // Under the thread's peer (a persona thread's
                            // id stands for its peer), or its group thread.
                            let sender = node.dm_thread_parts(peer)?.1;
                            crate::dm_group::archive_received(
                                node,
                                &key,
                                peer,
                                sender,
                                c,
                                *blake3::hash(&payload).as_bytes(),
                            )?;
                            // Message n carries s(n+1); without it the
                            // default derivation continues the chain.
                            let next = c
                                .rotation
                                .as_ref()
                                .map(|r| ChainSeed::from_bytes(r.next_posting_id))
                                .unwrap_or_else(|| seed.next());
                            moved = Some(DmChain {
                                seed: next,
                                n: chain.n + step + 1,
                                at_ms: c.sent_at_ms.max(chain.at_ms),
                            });
                            r.sender = peer;
                            r.rotated = true;
                        }
                        Err(reason) => {
                            let kept = crate::store::KeptDm {
                                anchor: conn.node_id(),
                                channel: r.channel,
                                message_id: r.message_id,
                                sender: r.sender,
                                received_at_ms: r.received_at_ms,
                                reason: reason.to_string(),
                                payload,
                            };
                            node.store()
                                .keep_undecryptable_dm(&kept, now_ms())
                                .map_err(NodeError::from)?;
                        }
                    }
                    out.push(r);
                }
                if !ack || last <= ack_through {
                    break;
                }
                // The chain moves (durably) before the anchor deletes.
                if let Some(m) = &moved {
                    node.store()
                        .set_dm_chain(&key, peer, false, m)
                        .map_err(NodeError::from)?;
                }
                ack_through = last;
                if !more {
                    conn.call(Fetch {
                        version: PROTOCOL_VERSION,
                        channel_id: channel,
                        ack_through,
                        max_messages: 1,
                        max_bytes: 1,
                    })
                    .await?;
                    break;
                }
            }
        }
        Ok((out, moved))
    }
}

/// Connects as the receive id of `seed` and lists its channels with waiting
/// messages whose other member is the send id of `seed` (any other channel
/// of the id is not part of the thread and is left alone), with the
/// connection (for the caller to read on, then close).
async fn probe(
    seed: &ChainSeed,
    anchor: NodeId,
    addr: SocketAddr,
) -> Result<(Ephemeral, Vec<ChannelInfo>), DmError> {
    let send_id = NodeId(seed.send_key().public());
    let eph = Ephemeral::connect(&seed.recv_key(), anchor, addr).await?;
    let mut request = ListChannels {
        version: PROTOCOL_VERSION,
        after: None,
        limit: 0,
        pending_only: true,
    };
    let mut channels = Vec::new();
    for _ in 0..MAX_LIST_PAGES {
        let page = match eph.peer.call(request).await {
            Ok(p) => p,
            Err(e) => {
                eph.close().await;
                return Err(e.into());
            }
        };
        let next = page.next_request(&request);
        channels.extend(
            page.channels
                .into_iter()
                .filter(|c| c.peer == send_id && c.queued > 0),
        );
        match next {
            Some(n) if n.after != request.after => request = n,
            _ => break,
        }
    }
    Ok((eph, channels))
}
