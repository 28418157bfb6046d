//! The identity commands of `distsoc-node` (personas), the time format
//! export and import print, and how a failed command reports its error.

use clap::Subcommand;
use distsoc_node::bundle::BundleError;
use distsoc_node::node::{Node, NodeError};
use distsoc_protocol::ids::{NodeId, PostingId};
use serde_json::json;

use super::print;

#[derive(Debug, Subcommand)]
pub(crate) enum PersonaCommand {
    /// Create a persona with a new posting key.
    Create {
        /// Its name (local only: your profile's display name is separate).
        name: String,
    },
    /// List personas; `*` marks the one posts use.
    List,
    /// Post as this persona from now on.
    Use {
        /// The persona's name.
        name: String,
    },
    /// Forget a persona's posting key (not the one in use, not `default`).
    /// Its posts stay published, but nobody can post as it again: export
    /// first if you may want it back.
    Delete {
        /// The persona's name.
        name: String,
    },
}

pub(crate) fn persona(node: &Node, c: PersonaCommand, json_mode: bool) -> anyhow::Result<()> {
    let show = |p: &distsoc_node::store::PostingIdentityInfo| {
        json!({"name": p.display_name, "posting_id": p.posting_id.to_hex(),
               "default": p.is_default, "created_at_ms": p.created_at_ms})
    };
    match c {
        PersonaCommand::Create { name } => {
            let p = node.create_persona(&name)?;
            print(json_mode, show(&p), || {
                format!(
                    "persona {:?} created: posting id {}",
                    p.display_name, p.posting_id
                )
            });
        }
        PersonaCommand::List => {
            let all = node.personas()?;
            print(
                json_mode,
                json!(all.iter().map(show).collect::<Vec<_>>()),
                || {
                    all.iter()
                        .map(|p| {
                            let mark = if p.is_default { "*" } else { " " };
                            format!("{mark} {} {}", p.posting_id, p.display_name)
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
        PersonaCommand::Use { name } => {
            let p = node.use_persona(&name)?;
            print(json_mode, show(&p), || {
                format!(
                    "posting as {:?} ({}) from now on",
                    p.display_name, p.posting_id
                )
            });
        }
        PersonaCommand::Delete { name } => {
            let id = node.delete_persona(&name)?;
            print(
                json_mode,
                json!({"deleted": name, "posting_id": id.to_hex()}),
                || format!("persona {name:?} ({id}) deleted"),
            );
        }
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM UTC` of a time in ms since the Unix epoch.
pub(crate) fn fmt_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Reports a failed command: `error: MESSAGE` on stderr, and with `--json`
/// also `{"error": {"code": CODE, "message": MESSAGE}}` on stdout. The message
/// is the error and its causes joined by `: `, each said once (a cause
/// already contained in the text before it is left out). A backtrace only
/// when asked for (`RUST_BACKTRACE=1`).
pub(crate) fn report_error(e: &anyhow::Error, json_mode: bool) {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    let message = parts.join(": ");
    if json_mode {
        println!(
            "{}",
            json!({"error": {"code": error_code(e), "message": message}})
        );
    }
    eprintln!("error: {message}");
    if matches!(
        std::env::var("RUST_BACKTRACE").as_deref(),
        Ok("1") | Ok("full")
    ) {
        eprintln!("{}", e.backtrace());
    }
}

/// The machine-readable code of an error (`--json`).
fn error_code(e: &anyhow::Error) -> &'static str {
    if let Some(b) = e.downcast_ref::<BundleError>() {
        return b.code();
    }
    if let Some(n) = e.downcast_ref::<NodeError>() {
        return n.code();
    }
    "error"
}

/// `dm history PEER`: the archived thread, oldest first, with times and
/// names.
pub(crate) fn dm_history(
    node: &Node,
    peer: NodeId,
    limit: usize,
    json_mode: bool,
) -> anyhow::Result<()> {
    let thread = node.store().dm_history(&node.archive_key(), peer, limit)?;
    let name = node
        .store()
        .get_profile(PostingId(peer.0))?
        .map(|p| p.body().display_name.clone())
        .unwrap_or_else(|| peer.short());
    let v: Vec<_> = thread
        .iter()
        .map(|m| {
            json!({"from": if m.outgoing { node.node_id().to_hex() } else { peer.to_hex() },
                   "outgoing": m.outgoing, "sent_at_ms": m.sent_at_ms, "text": m.text})
        })
        .collect();
    print(json_mode, json!(v), || {
        if thread.is_empty() {
            return format!("no DMs with {name} in this node's archive");
        }
        thread
            .iter()
            .map(|m| {
                let who = if m.outgoing { "me" } else { name.as_str() };
                format!("{}  {who}: {}", fmt_utc(m.sent_at_ms), m.text)
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
