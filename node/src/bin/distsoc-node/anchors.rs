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
