//! `distsoc-node follow | unfollow | following | feed`: follows belong to a
//! persona; the merged feed says whose follow surfaced each item.

use std::net::SocketAddr;

use distsoc_node::node::Node;
use distsoc_protocol::ids::{NodeId, PostingId};
use serde_json::json;

use super::identity::{fmt_ago, posts};
use super::print;

/// Whether the node has more than one persona (only then are follows and
/// feed items labelled with one: a person with one identity sees no
/// change).
fn several_personas(node: &Node) -> anyhow::Result<bool> {
    Ok(node.personas()?.len() > 1)
}

pub(crate) fn follow(
    node: &Node,
    id: PostingId,
    offline: bool,
    persona: Option<&str>,
    json_mode: bool,
) -> anyhow::Result<()> {
    let added = node.follow_as(persona, id)?;
    let as_whom = match persona {
        Some(p) => format!(" as {p}"),
        None => String::new(),
    };
    let lookup = !offline && !distsoc_node::mesh::configured_anchors(node).is_empty();
    let pulled = if lookup {
        let target = NodeId(id.0);
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(async {
            let running = node
                .start(Some(SocketAddr::from(([0, 0, 0, 0], 0))))
                .await?;
            let r = async {
                let (peer, _) = running.connect_id(target).await?;
                running.sync_with(&peer).await
            }
            .await;
            running.transport().close().await;
            anyhow::Ok(r)
        })?
        .map_err(|e| e.to_string())
    } else {
        Err("not looked up".to_string())
    };
    let new_posts = pulled.as_ref().ok().map(|r| r.new_posts);
    print(
        json_mode,
        json!({"following": id.to_hex(), "persona": persona, "new": added,
               "new_posts": new_posts, "pull_error": pulled.as_ref().err()}),
        || {
            let already = if added { "" } else { " (already)" };
            match &pulled {
                Ok(r) => format!(
                    "following {id}{as_whom}{already}; found it and pulled {}",
                    posts(r.new_posts)
                ),
                Err(e) if lookup => {
                    format!("following {id}{as_whom}{already}; not reachable now: {e}")
                }
                Err(_) => format!("following {id}{as_whom}{already}"),
            }
        },
    );
    Ok(())
}

pub(crate) fn unfollow(
    node: &Node,
    id: PostingId,
    persona: Option<&str>,
    json_mode: bool,
) -> anyhow::Result<()> {
    let removed = match persona {
        Some(p) => {
            let persona_id = node.persona_id(Some(p))?;
            usize::from(node.store().unfollow_as(id, persona_id)?)
        }
        None => node.store().unfollow(id)?,
    };
    print(
        json_mode,
        json!({"unfollowed": removed > 0, "personas": removed}),
        || match (removed, persona) {
            (0, Some(p)) => format!("{p} was not following {id}"),
            (0, None) => format!("you were not following {id}"),
            (_, Some(p)) => format!("{p} unfollowed {id}"),
            (1, None) => format!("unfollowed {id}"),
            (n, None) => format!("unfollowed {id} from {n} personas"),
        },
    );
    Ok(())
}

pub(crate) fn following(node: &Node, persona: Option<&str>, json_mode: bool) -> anyhow::Result<()> {
    let names: std::collections::HashMap<PostingId, String> = node
        .personas()?
        .into_iter()
        .map(|p| (p.posting_id, p.display_name))
        .collect();
    let only = persona.map(|p| node.persona_id(Some(p))).transpose()?;
    let entries: Vec<_> = node
        .store()
        .follow_entries()?
        .into_iter()
        .filter(|f| only.is_none_or(|p| f.persona == p))
        .collect();
    let labelled = several_personas(node)?;
    let name_of = |p: &PostingId| names.get(p).cloned().unwrap_or_else(|| p.to_hex());
    if json_mode {
        let v: Vec<_> = entries
            .iter()
            .map(|f| {
                json!({"posting_id": f.posting_id.to_hex(), "persona": name_of(&f.persona),
                       "followed_at_ms": f.followed_at_ms})
            })
            .collect();
        print(true, json!(v), String::new);
    } else {
        let lines: Vec<String> = entries
            .iter()
            .map(|f| {
                if labelled {
                    format!("{}  as {}", f.posting_id.to_hex(), name_of(&f.persona))
                } else {
                    f.posting_id.to_hex()
                }
            })
            .collect();
        print(false, json!(null), || lines.join("\n"));
    }
    Ok(())
}

pub(crate) fn feed(
    node: &Node,
    limit: usize,
    persona: Option<&str>,
    json_mode: bool,
) -> anyhow::Result<()> {
    let items = node.feed_of(limit, persona)?;
    // Labels only help when the merged feed mixes personas.
    let labelled = persona.is_none() && several_personas(node)?;
    let now = distsoc_net::clock::now_ms();
    print(json_mode, serde_json::to_value(&items)?, || {
        distsoc_node::feed::threaded(&items)
            .into_iter()
            .map(|(depth, i)| {
                let who = i
                    .author_name
                    .clone()
                    .unwrap_or_else(|| i.author[..8].to_string());
                let lock = if i.encrypted { " [encrypted]" } else { "" };
                let text = i
                    .text
                    .clone()
                    .unwrap_or_else(|| "(cannot decrypt: not a recipient)".into());
                let ago = fmt_ago(now, i.created_at_ms);
                let via = if labelled && !i.followed_by.is_empty() {
                    format!("  (via {})", i.followed_by.join(", "))
                } else {
                    String::new()
                };
                // Replies under their post, indented; a reply whose post
                // is not on this page says which post it answers.
                let reply = match (&i.reply_to, depth) {
                    (Some(p), 0) => format!("↳ re {}  ", &p[..8]),
                    (Some(_), _) => "↳ ".to_string(),
                    (None, _) => String::new(),
                };
                let indent = "    ".repeat(depth);
                format!(
                    "{indent}{} {ago:>8}  {reply}{}{}: {}{via}",
                    &i.id[..8],
                    who,
                    lock,
                    text
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `distsoc-node reply POSTID TEXT [--as PERSONA]`.
pub(crate) fn reply(
    node: &Node,
    parent: &str,
    text: String,
    persona: Option<&str>,
    json_mode: bool,
) -> anyhow::Result<()> {
    let parent = distsoc_node::node::parse_post_id(parent)?;
    let r = node.reply(parent, text, persona)?;
    let id = r.post.post_id();
    let recipients = r.post.visibility.recipients().len();
    print(
        json_mode,
        json!({"post_id": id.to_hex(), "reply_to": parent.to_hex(),
               "author": r.post.post.body().author.to_hex(), "persona": r.persona,
               "persona_reason": r.reason, "encrypted": recipients > 0,
               "recipients": recipients}),
        || {
            let sealed = if recipients > 0 {
                format!(", sealed to the post's {recipients} readers")
            } else {
                String::new()
            };
            let labelled = several_personas(node).unwrap_or(false);
            let as_whom = if labelled {
                format!(" as {}", r.persona)
            } else {
                String::new()
            };
            format!("replied {id} to {}{as_whom}{sealed}", parent.short())
        },
    );
    Ok(())
}
