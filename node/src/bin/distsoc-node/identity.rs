//! The identity commands of `distsoc-node` (personas), the formats
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

/// "1 new post", "2 new posts".
pub(crate) fn posts(n: usize) -> String {
    if n == 1 {
        "1 new post".into()
    } else {
        format!("{n} new posts")
    }
}

/// How long before `now_ms` a time was, as a person reads it: `just now`,
/// `5m ago`, `3h ago`, `2d ago`, then the date (`in 2m` for a clock ahead).
pub(crate) fn fmt_ago(now_ms: u64, at_ms: u64) -> String {
    let ahead = at_ms > now_ms;
    let secs = now_ms.abs_diff(at_ms) / 1000;
    let span = match secs {
        0..60 => return "just now".into(),
        60..3_600 => format!("{}m", secs / 60),
        3_600..86_400 => format!("{}h", secs / 3_600),
        86_400..604_800 => format!("{}d", secs / 86_400),
        _ => return fmt_utc(at_ms)[..10].to_string(),
    };
    if ahead {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
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

/// At the end of a `dm` command: the DMs it archived go to the anchor it
/// used, as archive posts (`distsoc_node::archive`), with any other post of
/// ours that anchor lacks. A failure is reported, not fatal: the next sync
/// with an anchor deposits them.
pub(crate) async fn deposit_after_dm(
    running: &distsoc_node::node::Running,
    anchor: &distsoc_net::transport::Peer,
    json_mode: bool,
) {
    if let Err(e) = running.deposit_at(anchor).await {
        if !json_mode {
            eprintln!(
                "the DM archive is not deposited at the anchor yet ({e}); the next sync will"
            );
        }
    }
}

/// `dm history PEER`: the archived thread, oldest first, with times and
/// names.
pub(crate) fn dm_history(
    node: &Node,
    (me, thread_id): (NodeId, NodeId),
    peer: NodeId,
    limit: usize,
    json_mode: bool,
) -> anyhow::Result<()> {
    // A persona's thread is filed under its own id (`dm_persona`).
    let thread = node
        .store()
        .dm_history(&node.archive_key(), thread_id, limit)?;
    let name = node
        .store()
        .get_profile(PostingId(peer.0))?
        .map(|p| p.body().display_name.clone())
        .unwrap_or_else(|| peer.short());
    let v: Vec<_> = thread
        .iter()
        .map(|m| {
            json!({"from": if m.outgoing { me.to_hex() } else { peer.to_hex() },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_read_them() {
        let now = 1_765_000_000_000; // 2025-12-06 05:46:40 UTC
        assert_eq!(fmt_utc(now), "2025-12-06 05:46 UTC");
        assert_eq!(fmt_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(fmt_utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(fmt_ago(now, now - 59_000), "just now");
        assert_eq!(fmt_ago(now, now - 5 * 60_000), "5m ago");
        assert_eq!(fmt_ago(now, now - 3 * 3_600_000), "3h ago");
        assert_eq!(fmt_ago(now, now - 2 * 86_400_000), "2d ago");
        assert_eq!(fmt_ago(now, now - 30 * 86_400_000), "2025-11-06");
        assert_eq!(fmt_ago(now, now + 120_000), "in 2m");
    }
}
