//! DMs to and from personas (identity rollout phase 5: "DMs to each persona
//! land in separate threads").
//!
//! A persona other than the network key's own (`default`) is, to everyone
//! else, an identity of its own: a DM to it goes to its posting id, in the
//! anchor channel between the sender and that posting id. The anchor knows
//! a channel member by the key its QUIC connection authenticated, so the
//! node reads (and sends) a persona's DMs over a connection of its own
//! authenticated as the persona's posting key, on an endpoint (and UDP
//! port) of its own ([`PersonaDm`]). The anchor therefore sees the persona
//! and the node's NodeId as unrelated identities.
//!
//! Each (persona, peer) pair is one thread: its archive rows and its
//! rotating chains (`schema/README.md` §9.1) are filed under a 32-byte
//! thread id derived from the two ([`thread_id`]), never under the bare
//! peer, so a peer writing to two personas of one node has two threads
//! there, as it has two on its side (one per posting id it writes to). The
//! node's own identity keeps filing its threads under the peer, as before.
//! The messages of a persona's rotated threads are read with every other
//! rotated thread (their window ids are the chain's, not the persona's).

use distsoc_protocol::ids::{NodeId, PostingId};

use crate::dm::{DmClient, DmError};
use crate::node::{Node, NodeError};
use crate::rotation::Ephemeral;
use crate::store::PostingIdentityInfo;

/// The thread id under which the DMs between `persona` and `peer` are
/// filed: BLAKE3 `derive_key` with the context
/// `"distsoc 2026-12 persona dm thread v1"` over the persona's posting id
/// then the peer's id (64 bytes). Local only: it never travels.
pub fn thread_id(persona: PostingId, peer: NodeId) -> NodeId {
    let mut input = [0u8; 64];
    input[..32].copy_from_slice(&persona.0);
    input[32..].copy_from_slice(&peer.0);
    NodeId(blake3::derive_key(
        "distsoc 2026-12 persona dm thread v1",
        &input,
    ))
}

/// A DM client acting as a persona, over a connection to the anchor
/// authenticated as the persona's posting key. Close it with
/// [`PersonaDm::close`].
pub struct PersonaDm {
    client: DmClient,
    conn: Ephemeral,
}

impl PersonaDm {
    /// Connects to the anchor of `via` (the node's own client: its
    /// anchor's id and address) as the persona `persona`.
    pub async fn connect(via: &DmClient, persona: &PostingIdentityInfo) -> Result<Self, DmError> {
        let node = via.node();
        let held = node
            .store()
            .posting_identity(persona.posting_id)
            .map_err(NodeError::from)?
            .ok_or_else(|| {
                DmError::Invalid(format!("persona {:?} has no key", persona.display_name))
            })?;
        let key = distsoc_protocol::sign::SigningKey::from_seed(&held.secret_seed);
        let conn =
            Ephemeral::connect(&key, via.anchor().node_id(), via.anchor().remote_address()).await?;
        let client = DmClient::for_persona(node.clone(), conn.peer.clone(), key);
        Ok(Self { client, conn })
    }

    /// The client.
    pub fn client(&self) -> &DmClient {
        &self.client
    }

    /// Closes the connection.
    pub async fn close(self) {
        self.conn.close().await;
    }
}

impl Node {
    /// The personas whose DMs go over connections of their own: every
    /// persona but the network key's.
    pub fn dm_personas(&self) -> Result<Vec<PostingIdentityInfo>, NodeError> {
        let me = self.node_id();
        Ok(self
            .personas()?
            .into_iter()
            .filter(|p| p.posting_id.0 != me.0)
            .collect())
    }

    /// Who a DM thread id stands for: `(Some(persona), peer)` for a persona
    /// thread, `(None, id)` for a thread of the node's own identity.
    pub fn dm_thread_parts(&self, id: NodeId) -> Result<(Option<PostingId>, NodeId), NodeError> {
        Ok(match self.store().persona_thread(id)? {
            Some((persona, peer)) => (Some(persona), peer),
            None => (None, id),
        })
    }
}
