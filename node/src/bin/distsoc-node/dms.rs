//! `distsoc-node dm …`: direct messages through an anchor's channels,
//! rotated threads and the local archive.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Subcommand;
use distsoc_node::dm::DmClient;
use distsoc_node::dm_persona::PersonaDm;
use distsoc_node::node::Node;
use distsoc_protocol::ids::{ConnectString, NodeId, PostingId};
use serde_json::json;

use super::identity::{self, fmt_utc};
use super::print;

#[derive(Debug, Subcommand)]
pub(crate) enum DmCommand {
    /// Show the thread with a peer from the local archive (every DM sent
    /// and read here, with times; no anchor needed).
    History {
        /// The peer's NodeId (or posting id); or, with `--group`, none.
        #[arg(required_unless_present = "group")]
        peer: Option<NodeId>,
        /// The group thread with this id (32 hex digits, or the start of
        /// one, as `dm groups` lists them) instead of a peer.
        #[arg(long, conflicts_with = "peer")]
        group: Option<String>,
        /// Most recent messages to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// The thread of this persona with the peer (each persona's DMs are
        /// threads of their own); default: the node's own identity.
        #[arg(long = "as", value_name = "PERSONA")]
        persona: Option<String>,
    },
    /// Send a DM to a NodeId through an anchor, on a rotated thread: the
    /// first message goes from your NodeId to theirs and starts a chain of
    /// short-lived ids; every later one goes under ids of its own, which the
    /// anchor cannot tie to you, to them or to each other.
    Send {
        /// The anchor (`NodeId@host:port`); default: the first entry of
        /// anchors.json.
        #[arg(long)]
        anchor: Option<ConnectString>,
        /// The recipient's NodeId (or posting id). Repeat it to write to a
        /// group: one thread per set of people (you included), which each of
        /// them writes in by naming the others; the message goes to each on
        /// your rotated thread with them, the group named inside.
        #[arg(long, required = true)]
        to: Vec<NodeId>,
        /// Restart the thread's chain from your NodeId (when the recipient
        /// lost track of it: more than 10 messages in a row lost).
        #[arg(long)]
        reseed: bool,
        /// Send from your NodeId to theirs without rotating ids.
        #[arg(long, conflicts_with = "reseed")]
        no_rotate: bool,
        /// Send as this persona (its posting id is the thread's first
        /// sender); default: the node's own identity (its NodeId).
        #[arg(long = "as", value_name = "PERSONA")]
        persona: Option<String>,
        /// The text.
        text: String,
    },
    /// Fetch, decrypt and print your queued DMs (those to your NodeId, to
    /// each persona's posting id, and those of rotated threads, read under each thread's window of 10
    /// short-lived ids), keep them in the local archive (`dm history`), then
    /// acknowledge them (the anchor deletes them).
    Read {
        /// The anchor; default: the first entry of anchors.json.
        #[arg(long)]
        anchor: Option<ConnectString>,
        /// Leave them queued at the anchor (they come again next time).
        #[arg(long)]
        keep: bool,
    },
    /// List the group threads you are in (from the local archive).
    Groups,
    /// List your channels at an anchor and the DMs waiting in each.
    Channels {
        /// The anchor; default: the first entry of anchors.json.
        #[arg(long)]
        anchor: Option<ConnectString>,
    },
}

/// The anchor given, else the first connect string in anchors.json.
fn dm_anchor(node: &Node, given: Option<ConnectString>) -> anyhow::Result<ConnectString> {
    if let Some(a) = given {
        return Ok(a);
    }
    let path = node.config().anchors_path(node.dir());
    let first = distsoc_node::config::read_anchors(&path)?
        .into_iter()
        .next()
        .with_context(|| {
            format!(
                "no anchor given and {} lists none: pass --anchor NodeId@host:port",
                path.display()
            )
        })?;
    first
        .parse()
        .map_err(|e| anyhow::anyhow!("bad connect string {first:?} in {}: {e}", path.display()))
}

pub(crate) fn dm(node: &Node, cmd: DmCommand, json_mode: bool) -> anyhow::Result<()> {
    let anchor = match &cmd {
        DmCommand::Groups => return groups(node, json_mode),
        DmCommand::History {
            group: Some(g),
            limit,
            ..
        } => return group_history(node, g, *limit, json_mode),
        DmCommand::History { peer: None, .. } => unreachable!("clap requires a peer or --group"),
        DmCommand::History {
            peer: Some(peer),
            limit,
            persona,
            group: None,
        } => {
            let ids = match dm_persona(node, persona.as_deref())? {
                Some(p) => (
                    NodeId(p.posting_id.0),
                    distsoc_node::dm_persona::thread_id(p.posting_id, *peer),
                ),
                None => (node.node_id(), *peer),
            };
            return identity::dm_history(node, ids, *peer, *limit, json_mode);
        }
        DmCommand::Send { anchor, .. }
        | DmCommand::Read { anchor, .. }
        | DmCommand::Channels { anchor } => dm_anchor(node, anchor.clone())?,
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let running = node
            .start(Some(SocketAddr::from(([0, 0, 0, 0], 0))))
            .await?;
        let result = dm_on(node, &running, &anchor, cmd, json_mode).await;
        running.transport().close().await;
        result
    })
}

/// The persona a `dm` command acts as: `None` for the node's own identity
/// (no `--as`, or the persona that is the network key).
fn dm_persona(
    node: &Node,
    name: Option<&str>,
) -> anyhow::Result<Option<distsoc_node::store::PostingIdentityInfo>> {
    let Some(name) = name else { return Ok(None) };
    let p = node.persona(name)?;
    Ok((p.posting_id.0 != node.node_id().0).then_some(p))
}

/// `(persona name, peer)` of a received message's sender as `dm read`
/// returns it (a persona thread id stands for its persona and peer).
fn who(node: &Node, sender: NodeId) -> (Option<String>, NodeId) {
    match node.dm_thread_parts(sender) {
        Ok((Some(p), peer)) => (Some(persona_name(node, p)), peer),
        _ => (None, sender),
    }
}

fn persona_name(node: &Node, id: PostingId) -> String {
    node.personas()
        .ok()
        .and_then(|ps| ps.into_iter().find(|p| p.posting_id == id))
        .map_or_else(|| id.short(), |p| p.display_name)
}

async fn dm_on(
    node: &Node,
    running: &distsoc_node::node::Running,
    anchor: &ConnectString,
    cmd: DmCommand,
    json_mode: bool,
) -> anyhow::Result<()> {
    let client = DmClient::connect(running, anchor)
        .await
        .with_context(|| format!("cannot reach the anchor {anchor}"))?;
    match cmd {
        DmCommand::Send {
            to,
            text,
            reseed,
            no_rotate,
            persona,
            ..
        } => {
            let persona = dm_persona(node, persona.as_deref())?;
            if to.len() > 1 {
                if reseed || no_rotate {
                    anyhow::bail!("--reseed and --no-rotate are for one recipient, not a group");
                }
                let conn = match &persona {
                    Some(p) => Some(PersonaDm::connect(&client, p).await?),
                    None => None,
                };
                let c = conn.as_ref().map_or(&client, |c| c.client());
                let result = c.send_group(&to, &text).await;
                if let Some(conn) = conn {
                    conn.close().await;
                }
                return group_sent(node, result?, json_mode);
            }
            let to = to[0];
            let conn = match &persona {
                Some(p) => Some(PersonaDm::connect(&client, p).await?),
                None => None,
            };
            let c = conn.as_ref().map_or(&client, |c| c.client());
            let result = async {
                anyhow::Ok(if no_rotate {
                    (c.send(to, &text).await?, None)
                } else {
                    let r = c.send_rotating(to, &text, reseed).await?;
                    (r.sent, Some(r))
                })
            }
            .await;
            if let Some(conn) = conn {
                conn.close().await;
            }
            let (sent, rotated) = result?;
            let mut v = json!({"channel": sent.channel.to_hex(), "message_id": sent.message_id,
                               "expires_at_ms": sent.expires_at_ms,
                               "persona": persona.as_ref().map(|p| p.display_name.clone())});
            if let Some(r) = rotated {
                v["chain_n"] = json!(r.n);
                v["send_id"] = json!(r.send_id.to_hex());
                v["recv_id"] = json!(r.recv_id.to_hex());
            }
            print(json_mode, v, || {
                let as_whom = persona
                    .as_ref()
                    .map(|p| format!(" as {}", p.display_name))
                    .unwrap_or_default();
                format!(
                    "sent to {}{as_whom} (channel {}, message {}; sealed, {} bytes at the anchor)",
                    name_of(node, to),
                    sent.channel.short(),
                    sent.message_id,
                    sent.payload_len
                )
            });
        }
        DmCommand::Read { keep, .. } => {
            // The identity channels first (the node's, then each
            // persona's): a first message there starts the chain the
            // rotated threads are then read with.
            let mut received = client.read_all(!keep).await?;
            for p in node.dm_personas()? {
                let conn = PersonaDm::connect(&client, &p).await?;
                let got = conn.client().read_all(!keep).await;
                conn.close().await;
                received.extend(got?.into_iter().map(|mut r| {
                    r.sender = distsoc_node::dm_persona::thread_id(p.posting_id, r.sender);
                    r
                }));
            }
            received.extend(client.read_rotated(!keep).await?);
            let v: Vec<_> = received
                .iter()
                .map(|r| {
                    let (to, from) = who(node, r.sender);
                    match &r.content {
                        Ok(c) => json!({"message_id": r.message_id, "from": from.to_hex(),
                                        "to_persona": to, "sent_at_ms": c.sent_at_ms,
                                        "text": c.text, "rotated": r.rotated,
                                        "group": c.group.as_ref().map(|g| hex::encode(g.thread_id))}),
                        Err(e) => json!({"message_id": r.message_id, "from": from.to_hex(),
                                         "to_persona": to, "error": e.to_string(),
                                         "kept": true}),
                    }
                })
                .collect();
            print(json_mode, json!(v), || {
                if received.is_empty() {
                    return "no DMs waiting".to_string();
                }
                received
                    .iter()
                    .map(|r| {
                        let (to, from) = who(node, r.sender);
                        let to = to.map(|p| format!(" (to {p})")).unwrap_or_default();
                        match &r.content {
                            Ok(c) => format!(
                                "{}  {}{}{to}: {}",
                                fmt_utc(c.sent_at_ms),
                                c.group
                                    .as_ref()
                                    .map(|g| format!("[group {}] ", &hex::encode(g.thread_id)[..8]))
                                    .unwrap_or_default(),
                                name_of(node, from),
                                c.text
                            ),
                            Err(e) => format!(
                                "{}{to}: (unreadable: {e}; kept in this node's store, not lost)",
                                name_of(node, from)
                            ),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DmCommand::History { .. } | DmCommand::Groups => {
            unreachable!("handled without an anchor")
        }
        DmCommand::Channels { .. } => {
            let mut channels: Vec<(Option<String>, _)> = client
                .list_channels()
                .await?
                .into_iter()
                .map(|c| (None, c))
                .collect();
            for p in node.dm_personas()? {
                let conn = PersonaDm::connect(&client, &p).await?;
                let got = conn.client().list_channels().await;
                conn.close().await;
                channels.extend(got?.into_iter().map(|c| (Some(p.display_name.clone()), c)));
            }
            let v: Vec<_> = channels
                .iter()
                .map(|(p, c)| {
                    json!({"channel": c.channel_id.to_hex(), "peer": c.peer.to_hex(),
                           "persona": p, "queued": c.queued,
                           "created_at_ms": c.created_at_ms})
                })
                .collect();
            print(json_mode, json!(v), || {
                channels
                    .iter()
                    .map(|(p, c)| {
                        let of = p.as_ref().map(|p| format!(" (as {p})")).unwrap_or_default();
                        format!(
                            "{} with {}{of}: {} waiting",
                            c.channel_id,
                            name_of(node, c.peer),
                            c.queued
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    identity::deposit_after_dm(running, client.anchor(), json_mode).await;
    Ok(())
}

/// A peer's display name where its profile is known, else its short id.
pub(crate) fn name_of(node: &Node, id: NodeId) -> String {
    node.store()
        .get_profile(PostingId(id.0))
        .ok()
        .flatten()
        .map(|p| format!("{} ({})", p.body().display_name, id.short()))
        .unwrap_or_else(|| id.short())
}

fn group_sent(
    node: &Node,
    (thread, sent): (
        distsoc_node::store::GroupThreadId,
        Vec<distsoc_node::dm_group::GroupSent>,
    ),
    json_mode: bool,
) -> anyhow::Result<()> {
    let v: Vec<_> = sent
        .iter()
        .map(|s| match &s.result {
            Ok(r) => json!({"to": s.to.to_hex(), "chain_n": r.n, "send_id": r.send_id.to_hex(),
                            "recv_id": r.recv_id.to_hex(), "message_id": r.sent.message_id}),
            Err(e) => json!({"to": s.to.to_hex(), "error": e.to_string()}),
        })
        .collect();
    let failed = sent.iter().filter(|s| s.result.is_err()).count();
    print(
        json_mode,
        json!({"group": hex::encode(thread), "sent": v, "failed": failed}),
        || {
            let mut lines = vec![format!(
                "sent to group {} ({} members, you included)",
                &hex::encode(thread)[..8],
                sent.len() + 1
            )];
            for s in &sent {
                if let Err(e) = &s.result {
                    lines.push(format!("  not to {}: {e}", name_of(node, s.to)));
                }
            }
            lines.join("\n")
        },
    );
    if failed == sent.len() {
        anyhow::bail!("the message reached no member of the group");
    }
    Ok(())
}

/// The group thread whose id is or starts with `prefix` (hex).
fn find_group(node: &Node, prefix: &str) -> anyhow::Result<distsoc_node::store::DmGroupInfo> {
    let prefix = prefix.to_ascii_lowercase();
    let found: Vec<_> = node
        .store()
        .dm_groups()?
        .into_iter()
        .filter(|g| hex::encode(g.thread).starts_with(&prefix))
        .collect();
    let n = found.len();
    match found.into_iter().next() {
        Some(g) if n == 1 => Ok(g),
        None => anyhow::bail!("no group thread {prefix} here (see `dm groups`)"),
        Some(_) => anyhow::bail!("{n} group threads start with {prefix}; give more digits"),
    }
}

fn members_line(node: &Node, members: &[NodeId]) -> String {
    members
        .iter()
        .map(|m| name_of(node, *m))
        .collect::<Vec<_>>()
        .join(", ")
}

fn groups(node: &Node, json_mode: bool) -> anyhow::Result<()> {
    let all = node.store().dm_groups()?;
    let v: Vec<_> = all
        .iter()
        .map(|g| {
            json!({"group": hex::encode(g.thread),
                   "members": g.members.iter().map(|m| m.to_hex()).collect::<Vec<_>>(),
                   "updated_at_ms": g.updated_at_ms})
        })
        .collect();
    print(json_mode, json!(v), || {
        if all.is_empty() {
            return "no group threads".to_string();
        }
        all.iter()
            .map(|g| {
                format!(
                    "{}  {}  ({})",
                    &hex::encode(g.thread)[..8],
                    fmt_utc(g.updated_at_ms),
                    members_line(node, &g.members)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

fn group_history(node: &Node, prefix: &str, limit: usize, json_mode: bool) -> anyhow::Result<()> {
    let g = find_group(node, prefix)?;
    let thread = node
        .store()
        .dm_group_history(&node.archive_key(), &g.thread, limit)?;
    let v: Vec<_> = thread
        .iter()
        .map(|m| {
            json!({"from": m.sender.to_hex(), "outgoing": m.outgoing,
                   "sent_at_ms": m.sent_at_ms, "text": m.text})
        })
        .collect();
    print(
        json_mode,
        json!({"group": hex::encode(g.thread),
               "members": g.members.iter().map(|m| m.to_hex()).collect::<Vec<_>>(),
               "messages": v}),
        || {
            let mut lines = vec![format!(
                "group {} with {}",
                &hex::encode(g.thread)[..8],
                members_line(node, &g.members)
            )];
            lines.extend(thread.iter().map(|m| {
                let who = if m.outgoing {
                    "me".to_string()
                } else {
                    name_of(node, m.sender)
                };
                format!("{}  {who}: {}", fmt_utc(m.sent_at_ms), m.text)
            }));
            lines.join("\n")
        },
    );
    Ok(())
}
