//! The node's part of the mesh (`schema/README.md` §13) on the shared driver
//! ([`distsoc_net::mesh::MeshHandle`]):
//!
//! * starting: [`Node::start`] (short-lived commands: a mesh with no slots
//!   of its own, [`passive_config`]) and [`Node::start_mesh`] (`run`: the
//!   `[mesh] profile` of `config.toml`, [`mesh_config`]);
//! * joining: [`Running::join_mesh`] gives the mesh the anchors
//!   (`anchors.json` and the `bootstrap` list) as known nodes, dials them,
//!   asks one for `bootstrap_want` peers (BootstrapRequest) and hands the
//!   answer to the mesh, and sets the social wish list from follows and the
//!   audience ([`social_candidates`]);
//! * finding: [`Running::lookup`] resolves a NodeId through the whole chain
//!   (mesh tiers, then the anchors' address caches) and
//!   [`Running::connect_id`] connects to what it found;
//! * reporting: `run` writes a status snapshot ([`StatusSnapshot`],
//!   `mesh-status.json`, 0600, atomically) every `status_interval_secs`; the
//!   `map` and `peers` commands read it and call it stale once it is older
//!   than three intervals (no node running).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use distsoc_net::mesh::{MeshHandle, MeshStatus, Resolution, ResolveHints};
use distsoc_net::now_ms;
use distsoc_net::transport::{Peer, Transport, TransportConfig};
use distsoc_protocol::ids::{ConnectString, NodeId, PostingId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::mesh::{MeshConfig, SocialCandidate};
use distsoc_protocol::messages::common::{PeerAddress, SocketAddress};
use distsoc_protocol::messages::discovery::BootstrapRequest;
use distsoc_protocol::messages::wire::Limits;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::config::{self, MeshProfile};
use crate::node::{advertised, resolve, Node, NodeError, Running, NODE_CAPABILITIES};
use crate::service::Service;

/// Seconds after `run` starts during which the status snapshot is written
/// every second (then every `[mesh] status_interval_secs`).
pub const STATUS_JOIN_SECS: u64 = 30;

/// File name of the status snapshot inside the data directory.
pub const STATUS_FILE: &str = "mesh-status.json";
/// How long a dial to an anchor may take.
const ANCHOR_DIAL: Duration = Duration::from_secs(10);
/// Social priorities (`schema/README.md` §13.6).
const MUTUAL_FOLLOW: u8 = 4;
const AUDIENCE: u8 = 3;
const FOLLOWED: u8 = 2;
const SYNC_PARTNER: u8 = 1;
/// Recent sync partners offered as (lowest-priority) social candidates.
const MAX_SYNC_PARTNERS: usize = 32;
/// A sync partner counts as recent for this long.
const RECENT_MS: u64 = 7 * 24 * 3600 * 1000;

/// The slot profile of `run`.
pub fn mesh_config(profile: MeshProfile) -> MeshConfig {
    match profile {
        MeshProfile::Desktop => MeshConfig::desktop(),
        MeshProfile::Mobile => MeshConfig::mobile(),
    }
}

/// The mesh of a short-lived command: no social or wide slots (it dials
/// nobody on its own), but it syncs maps with, answers and asks the peers
/// it is connected to.
pub fn passive_config() -> MeshConfig {
    MeshConfig {
        social_slots: 0,
        wide_slots: 0,
        min_anchors: 0,
        ..MeshConfig::desktop()
    }
}

impl Node {
    /// Starts the network side for a short-lived command: binds the QUIC
    /// endpoint and serves peers, with a mesh of no slots of its own.
    pub async fn start(&self, listen: Option<SocketAddr>) -> Result<Running, NodeError> {
        self.start_mesh(listen, passive_config()).await
    }

    /// Starts the network side with the mesh configured by `mesh` (`run`
    /// passes the `[mesh] profile`).
    pub async fn start_mesh(
        &self,
        listen: Option<SocketAddr>,
        mesh: MeshConfig,
    ) -> Result<Running, NodeError> {
        let driver = MeshHandle::new(self.node_id(), mesh);
        let service = Arc::new(Service::with_mesh(self.clone(), driver.clone()));
        let announced = advertised(&self.config, listen);
        let cfg = TransportConfig {
            listen: listen.unwrap_or(self.config.listen),
            capabilities: NODE_CAPABILITIES.iter().map(|s| s.to_string()).collect(),
            limits: Limits {
                max_pull_batch: self.config.max_pull_batch,
                ..Limits::default()
            },
            listen_addresses: announced.clone(),
            idle_timeout: Duration::from_secs(self.config.idle_timeout_secs.max(1)),
            hello_timeout: Duration::from_secs(self.config.connect_timeout_secs.max(1)),
            max_connections_per_ip: self.config.max_connections_per_ip.max(1),
            idle_slot_grace: Duration::from_secs(self.config.idle_slot_grace_secs),
            frame_deadline_floor: Duration::from_secs(self.config.frame_deadline_floor_secs.max(1)),
            frame_min_rate: self.config.frame_min_rate.max(1),
            ..TransportConfig::default()
        };
        let router = Arc::new(service.clone().router());
        let transport = Transport::bind(self.key.signing_key(), cfg, router)?;
        let transport = Arc::new(transport);
        service.set_transport(&transport);
        let port = transport.local_addr().map_or(0, |a| a.port());
        let own = announced
            .into_iter()
            .map(|a| {
                if a.port() == 0 {
                    SocketAddr::new(a.ip(), port)
                } else {
                    a
                }
            })
            .collect();
        driver.set_own_addresses(own);
        driver.attach(&transport);
        Ok(Running {
            node: self.clone(),
            transport,
            service,
            deposit_paused: Default::default(),
        })
    }
}

/// The anchors of the configuration: `anchors.json` (anchors) and the
/// `bootstrap` list (any node), as connect strings with a flag "anchor";
/// unreadable entries are logged and skipped.
pub fn configured_anchors(node: &Node) -> Vec<(ConnectString, bool)> {
    let mut out = Vec::new();
    match config::read_anchors(&node.config().anchors_path(node.dir())) {
        Ok(list) => out.extend(list.into_iter().map(|s| (s, true))),
        Err(e) => warn!(error = %e, "cannot read the anchors file"),
    }
    out.extend(node.config().bootstrap.iter().cloned().map(|s| (s, false)));
    out.into_iter()
        .filter_map(|(s, anchor)| match s.parse::<ConnectString>() {
            Ok(cs) => Some((cs, anchor)),
            Err(e) => {
                warn!(target = %s, error = %e, "bad connect string in configuration");
                None
            }
        })
        .collect()
}

/// The social wish list (§13.6): a followed id that is also in our
/// audience is a mutual follow (4), an audience member 3, a followed id 2,
/// a recent sync partner 1; addresses from the peer records when known.
/// Posting ids are taken as NodeIds (a pre-split identity has one key).
pub fn social_candidates(node: &Node) -> Result<Vec<SocialCandidate>, NodeError> {
    let store = node.store();
    let me = node.node_id();
    let follows = store.follows()?;
    let mut audience = Vec::new();
    for own in node.own_ids()? {
        audience.extend(store.audience_members(PostingId(own))?);
    }
    let mut wish: Vec<(NodeId, u8)> = Vec::new();
    let mut add = |id: NodeId, prio: u8| {
        if id == me {
            return;
        }
        match wish.iter_mut().find(|(w, _)| *w == id) {
            Some((_, p)) => *p = (*p).max(prio),
            None => wish.push((id, prio)),
        }
    };
    for m in &audience {
        let prio = if follows.contains(&m.member) {
            MUTUAL_FOLLOW
        } else {
            AUDIENCE
        };
        add(NodeId(m.member.0), prio);
    }
    for f in &follows {
        add(NodeId(f.0), FOLLOWED);
    }
    let cutoff = now_ms().saturating_sub(RECENT_MS);
    for p in store
        .peers(MAX_SYNC_PARTNERS)?
        .into_iter()
        .filter(|p| !p.is_anchor && p.last_seen_ms >= cutoff)
    {
        add(p.node_id, SYNC_PARTNER);
    }
    let mut out = Vec::with_capacity(wish.len());
    for (id, priority) in wish {
        let addresses = store.get_peer(id)?.map(|p| p.addresses).unwrap_or_default();
        out.push(SocialCandidate {
            id,
            priority,
            addresses,
        });
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.priority));
    Ok(out)
}

impl Running {
    /// The mesh driver.
    pub fn mesh(&self) -> &MeshHandle {
        self.service.mesh()
    }

    /// Dials the configured anchors (and bootstrap peers), after giving
    /// them to the mesh as known nodes; returns the connections made.
    pub async fn connect_anchors(&self) -> Vec<Peer> {
        let mut known = Vec::new();
        let mut targets = Vec::new();
        for (cs, is_anchor) in configured_anchors(&self.node) {
            if cs.node_id == self.node.node_id() {
                continue;
            }
            match resolve(&cs).await {
                Ok(addr) => {
                    known.push(PeerAddress {
                        node_id: cs.node_id,
                        addresses: vec![SocketAddress(addr)],
                        is_anchor,
                        last_seen_ms: 0,
                    });
                    targets.push((cs.node_id, addr));
                }
                Err(e) => warn!(target = %cs, error = %e, "cannot resolve anchor"),
            }
        }
        self.mesh().add_known(known);
        // All at once: an unreachable anchor costs its timeout once.
        let mut dials = tokio::task::JoinSet::new();
        for (id, addr) in targets {
            let transport = self.transport.clone();
            dials.spawn(async move {
                let r = tokio::time::timeout(ANCHOR_DIAL, transport.connect(id, addr)).await;
                (id, r)
            });
        }
        let mut up = Vec::new();
        for (id, r) in dials.join_all().await {
            match r {
                Ok(Ok(peer)) => {
                    self.mesh().connected(peer.info());
                    up.push(peer);
                }
                Ok(Err(e)) => debug!(anchor = %id.short(), error = %e, "anchor dial failed"),
                Err(_) => debug!(anchor = %id.short(), "anchor dial timed out"),
            }
        }
        up
    }

    /// Joins the mesh (`run`): dials the anchors, asks the first that
    /// answers for `[mesh] bootstrap_want` peers and gives them to the mesh
    /// (its wide slots dial some), and sets the social wish list.
    pub async fn join_mesh(&self) -> usize {
        let anchors = self.connect_anchors().await;
        let want = self.node.config.mesh.bootstrap_want;
        for anchor in &anchors {
            let req = BootstrapRequest {
                version: PROTOCOL_VERSION,
                want,
                exclude: Vec::new(),
            };
            match anchor.call(req).await {
                Ok(resp) => {
                    info!(anchor = %anchor.node_id().short(), peers = resp.peers.len(), "bootstrap peers");
                    self.mesh().add_known(resp.peers);
                    break;
                }
                Err(e) => {
                    debug!(anchor = %anchor.node_id().short(), error = %e, "bootstrap refused")
                }
            }
        }
        self.refresh_social();
        anchors.len()
    }

    /// Gives the mesh the current social wish list (follows, audience).
    pub fn refresh_social(&self) {
        match social_candidates(&self.node) {
            Ok(list) => self.mesh().set_social(list),
            Err(e) => warn!(error = %e, "cannot read the social list"),
        }
    }

    /// Resolves `target` through the whole chain: the mesh (direct, hop 2,
    /// hop 3, worm) after the anchors' map sync has arrived (at most
    /// `[mesh] sync_wait_secs`), then the address caches of the anchors the
    /// target's held profile names, then those of this node's anchors.
    pub async fn lookup(&self, target: NodeId) -> Result<Resolution, NodeError> {
        let anchors: Vec<NodeId> = self
            .connect_anchors()
            .await
            .iter()
            .map(Peer::node_id)
            .collect();
        let wait = Duration::from_secs(self.node.config.mesh.sync_wait_secs);
        let synced = self.mesh().wait_synced(&anchors, wait).await;
        if synced.len() < anchors.len() {
            debug!(
                synced = synced.len(),
                anchors = anchors.len(),
                "not every anchor sent its map in time"
            );
        }
        let profile_anchors = self.profile_anchors(target).unwrap_or_else(|e| {
            warn!(error = %e, "cannot read the target's profile anchors");
            Vec::new()
        });
        let hints = ResolveHints {
            profile_anchors,
            anchors,
        };
        Ok(self.mesh().resolve(target, &hints).await?)
    }

    /// The anchors `target`'s held profile names, with the addresses this
    /// node knows for them (its peer records).
    fn profile_anchors(&self, target: NodeId) -> Result<Vec<PeerAddress>, NodeError> {
        let store = self.node.store();
        let mut out = Vec::new();
        for id in store.profile_anchors_of(target)? {
            let rec = store.get_peer(id)?;
            out.push(PeerAddress {
                node_id: id,
                addresses: rec
                    .map(|r| r.addresses.into_iter().map(SocketAddress).collect())
                    .unwrap_or_default(),
                is_anchor: true,
                last_seen_ms: 0,
            });
        }
        Ok(out)
    }

    /// Connects to `target` by NodeId alone: a live connection, else the
    /// address [`Running::lookup`] finds; records the peer and exchanges
    /// profiles. Returns the connection and how it was found (`None`: it
    /// was already connected).
    pub async fn connect_id(
        &self,
        target: NodeId,
    ) -> Result<(Peer, Option<Resolution>), NodeError> {
        if target == self.node.node_id() {
            return Err(NodeError::Invalid("that is this node's own id".into()));
        }
        if let Some(peer) = self.transport.peer(&target) {
            self.after_connect(&peer).await?;
            return Ok((peer, None));
        }
        let res = self.lookup(target).await?;
        let Some((found, _)) = &res.found else {
            return Err(NodeError::NotFound(target));
        };
        let mut last = None;
        for addr in &found.addresses {
            match self.transport.connect(target, addr.0).await {
                Ok(peer) => {
                    self.after_connect(&peer).await?;
                    return Ok((peer, Some(res)));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or(NodeError::NotFound(target), NodeError::from))
    }

    /// Writes the status snapshot now.
    pub fn write_status(&self) -> Result<(), NodeError> {
        let snap = StatusSnapshot::new(
            &self.mesh().status(),
            self.node.config.mesh.profile,
            self.node.config.mesh.status_interval_secs,
        );
        snap.write(self.node.dir())
    }

    /// Writes the status snapshot every second for the first
    /// [`STATUS_JOIN_SECS`] (while the node joins the mesh, so `map` and
    /// `peers` run just after `run` see it fill), then every `[mesh]
    /// status_interval_secs`, until dropped (`run` selects it against
    /// shutdown).
    pub async fn write_status_forever(&self) {
        let every = Duration::from_secs(self.node.config.mesh.status_interval_secs.max(1));
        let joining = tokio::time::Instant::now() + Duration::from_secs(STATUS_JOIN_SECS);
        loop {
            if let Err(e) = self.write_status() {
                warn!(error = %e, "cannot write the mesh status");
            }
            let now = tokio::time::Instant::now();
            let next = if now < joining {
                Duration::from_secs(1)
            } else {
                every
            };
            tokio::time::sleep(next).await;
        }
    }
}

/// Map sizes in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSnapshot {
    /// Direct peers.
    pub hop1: usize,
    /// Hop-2 nodes.
    pub hop2: usize,
    /// Hop-3 fingerprints at the last filter rebuild.
    pub hop3: usize,
    /// Hop-3 fingerprints kept over all peers (before de-duplication).
    pub hop3_raw: usize,
    /// Approximate heap bytes of the map.
    pub bytes: usize,
}

/// One connection in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSnapshot {
    /// The peer (hex).
    pub node_id: String,
    /// `social`, `wide`, `anchor` or `inbound`.
    pub class: String,
}

/// What `run` writes to `mesh-status.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    /// The node (hex).
    pub node_id: String,
    /// When it was written, ms since the epoch.
    pub written_at_ms: u64,
    /// The writer's interval (a snapshot older than three is stale).
    pub interval_secs: u64,
    /// The slot profile.
    pub profile: String,
    /// Map sizes.
    pub map: MapSnapshot,
    /// The connections and their slot classes.
    pub peers: Vec<PeerSnapshot>,
    /// Mesh requests refused by rate limits so far.
    pub rate_limited: u64,
    /// Diff gaps (each repaired by a resync) so far.
    pub gaps: u64,
}

impl StatusSnapshot {
    /// A snapshot of `status` now.
    pub fn new(status: &MeshStatus, profile: MeshProfile, interval_secs: u64) -> Self {
        StatusSnapshot {
            node_id: status.node_id.to_hex(),
            written_at_ms: now_ms(),
            interval_secs,
            profile: profile.as_str().into(),
            map: MapSnapshot {
                hop1: status.map.hop1,
                hop2: status.map.hop2,
                hop3: status.map.hop3,
                hop3_raw: status.map.hop3_raw,
                bytes: status.map.bytes,
            },
            peers: status
                .peers
                .iter()
                .map(|p| PeerSnapshot {
                    node_id: p.node_id.to_hex(),
                    class: p.class.as_str().into(),
                })
                .collect(),
            rate_limited: status.rate_limited,
            gaps: status.gaps,
        }
    }

    /// Whether a node is still writing it: no older than three intervals.
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        let limit = self.interval_secs.max(1).saturating_mul(3000);
        now_ms.saturating_sub(self.written_at_ms) <= limit
    }

    /// Seconds since it was written.
    pub fn age_secs(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.written_at_ms) / 1000
    }

    /// Writes it to `dir/mesh-status.json` (0600) atomically: a temporary
    /// file, then a rename.
    pub fn write(&self, dir: &Path) -> Result<(), NodeError> {
        let path = dir.join(STATUS_FILE);
        let tmp = dir.join(format!("{STATUS_FILE}.tmp"));
        let io = |source| NodeError::Io {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| NodeError::Invalid(format!("cannot encode the status: {e}")))?;
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        distsoc_net::datadir::write_new_private_file(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Reads `dir/mesh-status.json`; `None` when there is none.
    pub fn read(dir: &Path) -> Result<Option<StatusSnapshot>, NodeError> {
        let path = dir.join(STATUS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                NodeError::Invalid(format!("{}: not a status snapshot: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(NodeError::Io { path, source }),
        }
    }

    /// Removes the snapshot (`run` on shutdown).
    pub fn remove(dir: &Path) {
        let _ = std::fs::remove_file(dir.join(STATUS_FILE));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn snapshot_round_trips_privately_and_goes_stale() {
        let dir = tempfile::tempdir().unwrap();
        assert!(StatusSnapshot::read(dir.path()).unwrap().is_none());
        let snap = StatusSnapshot {
            node_id: "ab".repeat(32),
            written_at_ms: 1_000_000,
            interval_secs: 10,
            profile: "desktop".into(),
            map: MapSnapshot {
                hop1: 3,
                hop2: 40,
                hop3: 500,
                hop3_raw: 600,
                bytes: 9000,
            },
            peers: vec![PeerSnapshot {
                node_id: "cd".repeat(32),
                class: "anchor".into(),
            }],
            rate_limited: 0,
            gaps: 1,
        };
        snap.write(dir.path()).unwrap();
        snap.write(dir.path()).unwrap();
        let path = dir.path().join(STATUS_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(StatusSnapshot::read(dir.path()).unwrap().unwrap(), snap);
        assert!(snap.is_fresh(1_000_000 + 30_000));
        assert!(!snap.is_fresh(1_000_000 + 30_001));
        StatusSnapshot::remove(dir.path());
        assert!(StatusSnapshot::read(dir.path()).unwrap().is_none());
    }
}
