//! `distsoc-node anchor add|remove|list`: the anchors this node checks in
//! with, kept in `anchors.json`.

use anyhow::bail;
use clap::Subcommand;
use distsoc_node::config;
use distsoc_node::node::Node;
use distsoc_protocol::ids::{ConnectString, NodeId};
use serde_json::json;

use super::print;

#[derive(Debug, Subcommand)]
pub(crate) enum AnchorCommand {
    /// Add an anchor (`NodeId@host:port`); an anchor already listed with
    /// another address gets the new one.
    Add {
        /// The anchor's connect string.
        anchor: ConnectString,
    },
    /// Remove an anchor, by NodeId or connect string.
    Remove {
        /// The anchor's NodeId (or its connect string).
        anchor: String,
    },
    /// List the anchors in anchors.json.
    List,
}

/// An anchor named on the command line: a bare NodeId, or a connect string
/// (`NodeId@host:port`, which also says where to reach it) — the same
/// forms everywhere an anchor is taken.
#[derive(Debug, Clone)]
pub(crate) struct AnchorRef {
    /// The anchor's NodeId.
    pub(crate) id: NodeId,
    /// Its connect string, when one was given.
    pub(crate) connect: Option<ConnectString>,
}

impl std::str::FromStr for AnchorRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.contains('@') {
            let cs: ConnectString = s.parse().map_err(|e| format!("{e}"))?;
            Ok(Self {
                id: cs.node_id,
                connect: Some(cs),
            })
        } else {
            let id: NodeId = s.parse().map_err(|e| {
                format!("{e}; an anchor is its NodeId or its connect string NodeId@host:port")
            })?;
            Ok(Self { id, connect: None })
        }
    }
}

/// Adds (or re-addresses) each connect string in anchors.json; returns
/// how many entries changed.
pub(crate) fn remember(node: &Node, anchors: &[AnchorRef]) -> anyhow::Result<usize> {
    let path = node.config().anchors_path(node.dir());
    let mut list = config::read_anchors(&path)?;
    let before = list.clone();
    for cs in anchors.iter().filter_map(|a| a.connect.as_ref()) {
        list.retain(|s| s.parse::<ConnectString>().ok().map(|c| c.node_id) != Some(cs.node_id));
        list.push(cs.to_string());
    }
    if list != before {
        config::write_anchors(&path, &list)?;
    }
    Ok(list.iter().filter(|s| !before.contains(s)).count())
}

pub(crate) fn anchor(node: &Node, c: AnchorCommand, json_mode: bool) -> anyhow::Result<()> {
    let path = node.config().anchors_path(node.dir());
    let mut list = config::read_anchors(&path)?;
    // The NodeId of an entry (entries that do not parse are kept as they are).
    let id_of = |s: &str| s.parse::<ConnectString>().ok().map(|cs| cs.node_id);
    match c {
        AnchorCommand::Add { anchor } => {
            let before = list.len();
            list.retain(|s| id_of(s) != Some(anchor.node_id));
            let replaced = list.len() != before;
            list.push(anchor.to_string());
            config::write_anchors(&path, &list)?;
            print(
                json_mode,
                json!({"added": anchor.to_string(), "replaced": replaced}),
                || {
                    if replaced {
                        format!("anchor {} now at {anchor}", anchor.node_id.short())
                    } else {
                        format!("anchor {anchor} added")
                    }
                },
            );
        }
        AnchorCommand::Remove { anchor } => {
            let id: NodeId = match anchor.parse::<ConnectString>() {
                Ok(cs) => cs.node_id,
                Err(_) => anchor.parse()?,
            };
            let before = list.len();
            list.retain(|s| id_of(s) != Some(id));
            if list.len() == before {
                bail!("{id} is not in {}", path.display());
            }
            config::write_anchors(&path, &list)?;
            print(json_mode, json!({"removed": id.to_hex()}), || {
                format!("anchor {} removed", id.short())
            });
        }
        AnchorCommand::List => {
            print(json_mode, json!(list), || {
                if list.is_empty() {
                    format!("no anchors in {}", path.display())
                } else {
                    list.join("\n")
                }
            });
        }
    }
    Ok(())
}
