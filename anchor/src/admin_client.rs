//! `distsoc-anchor admin …`: a command-line client for the admin gRPC API
//! ([`crate::admin`]) of a running anchor — `stats`, `ban`, `unban`,
//! `retention` and `drain` — with human output or one JSON object
//! (`--json`).
//!
//! Every failure is one line that names the address: a refused or timed-out
//! connection, a NodeId that is not 64 hex digits, a status from the anchor.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use distsoc_protocol::ids::NodeId;
use serde_json::json;
use tonic::transport::Channel;

use crate::admin::pb::admin_client::AdminClient;
use crate::admin::pb::{
    BanRequest, DrainRequest, GetStatsRequest, GetStatsResponse, RetentionSource,
    SetRetentionRequest, UnbanRequest,
};
use crate::admin::MAX_MAILBOX_TTL_SECS;

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One admin command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// Sizes, counters, retention, bans.
    Stats,
    /// Ban a NodeId (as typed: checked before anything is sent).
    Ban(String),
    /// Lift a ban.
    Unban(String),
    /// Show the retention and where it comes from.
    ShowRetention,
    /// Set the retention (seconds), overriding `mailbox_ttl_secs`.
    SetRetention(u64),
    /// Remove the override: `mailbox_ttl_secs` applies again.
    ClearRetention,
    /// Stop accepting requests.
    Drain,
}

/// A failed admin command: one line, naming the address.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AdminError(String);

/// Parses a duration as typed: seconds, or a number with `s`, `m`, `h`,
/// `d` or `w` (`7d`, `36h`).
pub fn parse_duration_secs(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "'{s}' is not a duration: seconds, or a number with s, m, h, d or w (7d)"
            ))
        }
    };
    let n: u64 = num.parse().map_err(|_| {
        format!("'{s}' is not a duration: seconds, or a number with s, m, h, d or w (7d)")
    })?;
    let secs = n.saturating_mul(factor);
    if secs == 0 || secs > MAX_MAILBOX_TTL_SECS {
        return Err(format!(
            "retention must be between 1 second and 10 years (3650d); '{s}' is not"
        ));
    }
    Ok(secs)
}

/// `604800` → `7d`, `5400` → `1h30m`, `90` → `1m30s`.
pub fn human_secs(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

fn node_id(addr: SocketAddr, typed: &str) -> Result<NodeId, AdminError> {
    typed.trim().parse().map_err(|_| {
        let n = typed.trim().chars().count();
        let got = if n == 64 {
            "not all of them hex".to_string()
        } else {
            format!("got {n} characters")
        };
        AdminError(format!(
            "not sent to the admin API at {addr}: '{typed}' is not a NodeId: expected 64 hex \
             digits, {got}"
        ))
    })
}

/// The innermost cause of a transport failure, as the operator knows it.
fn transport_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut last = e.to_string();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::TimedOut => "timed out".into(),
                _ => io.to_string(),
            };
        }
        last = err.to_string();
        cur = err.source();
    }
    last
}

fn status_error(addr: SocketAddr, s: &tonic::Status) -> AdminError {
    let cause = match s.code() {
        tonic::Code::Unavailable => {
            // A connection failure surfaces as UNAVAILABLE with the io
            // error as its source.
            match std::error::Error::source(s) {
                Some(src) => transport_cause(src),
                None => format!("unavailable: {}", s.message()),
            }
        }
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            format!("no answer within {}s", CALL_TIMEOUT.as_secs())
        }
        tonic::Code::Unimplemented => {
            "the anchor does not serve this call (an older version?)".into()
        }
        code => format!("{code}: {}", s.message()),
    };
    let hint = if cause == "connection refused" {
        " (is the anchor running, and is this its admin_listen?)"
    } else {
        ""
    };
    AdminError(format!("admin API at {addr}: {cause}{hint}"))
}

async fn connect(addr: SocketAddr) -> Result<AdminClient<Channel>, AdminError> {
    let endpoint = Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| AdminError(format!("admin API at {addr}: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT);
    let channel = endpoint.connect().await.map_err(|e| {
        let cause = transport_cause(&e);
        let hint = if cause == "connection refused" {
            " (is the anchor running, and is this its admin_listen?)"
        } else {
            ""
        };
        AdminError(format!(
            "cannot reach the admin API at {addr}: {cause}{hint}"
        ))
    })?;
    Ok(AdminClient::new(channel))
}

fn source_name(source: i32) -> &'static str {
    match RetentionSource::try_from(source) {
        Ok(RetentionSource::Api) => "admin-api",
        Ok(RetentionSource::Config) => "config",
        _ => "unknown",
    }
}

/// Where the retention comes from, in words.
fn retention_origin(s: &GetStatsResponse) -> String {
    let configured = s.configured_mailbox_ttl_secs;
    let default_note = if configured == s.default_mailbox_ttl_secs {
        " (the default)"
    } else {
        ""
    };
    match RetentionSource::try_from(s.mailbox_ttl_source) {
        Ok(RetentionSource::Api) => format!(
            "set through the admin API; overrides mailbox_ttl_secs = {configured} ({}){default_note} \
             of the configuration until `distsoc-anchor admin retention --clear`",
            human_secs(configured)
        ),
        Ok(RetentionSource::Config) => {
            format!("mailbox_ttl_secs of the configuration{default_note}")
        }
        _ => "not reported by this anchor".into(),
    }
}

fn stats_json(s: &GetStatsResponse) -> serde_json::Value {
    let r = s.requests.unwrap_or_default();
    // Sizes are null when the store could not be read.
    let size = |v: u64| s.store_error.is_empty().then_some(v);
    json!({
        "connections": s.connections,
        "channels": size(s.channels),
        "queued_messages": size(s.queued_messages),
        "queued_bytes": size(s.queued_bytes),
        "posts": size(s.posts),
        "checkins": size(s.checkins),
        "store_error": (!s.store_error.is_empty()).then_some(&s.store_error),
        "requests": {
            "total": r.total,
            "rate_limited": r.rate_limited,
            "unauthorized": r.unauthorized,
            "unavailable": r.unavailable,
            "enqueued": r.enqueued,
            "delivered": r.delivered,
        },
        "uptime_secs": s.uptime_secs,
        "retention": retention_json(s),
        "draining": s.draining,
        "store_reachable": s.store_reachable,
        "banned": s.banned,
    })
}

fn retention_json(s: &GetStatsResponse) -> serde_json::Value {
    json!({
        "mailbox_ttl_secs": s.mailbox_ttl_secs,
        "source": source_name(s.mailbox_ttl_source),
        "configured_mailbox_ttl_secs": s.configured_mailbox_ttl_secs,
        "default_mailbox_ttl_secs": s.default_mailbox_ttl_secs,
    })
}

fn stats_text(addr: SocketAddr, s: &GetStatsResponse) -> String {
    let r = s.requests.unwrap_or_default();
    let mut o = String::new();
    let _ = writeln!(o, "anchor at {addr}");
    let state = match (s.draining, s.store_reachable) {
        (true, _) => "draining",
        (false, true) => "serving",
        (false, false) => "database unreachable (health NOT_SERVING; requests get unavailable)",
    };
    let _ = writeln!(o, "  state        {state}");
    let _ = writeln!(o, "  uptime       {}", human_secs(s.uptime_secs));
    let _ = writeln!(o, "  connections  {}", s.connections);
    if s.store_error.is_empty() {
        let _ = writeln!(o, "  channels     {}", s.channels);
        let _ = writeln!(
            o,
            "  queued       {} messages, {} bytes",
            s.queued_messages, s.queued_bytes
        );
        let _ = writeln!(o, "  posts        {}", s.posts);
        let _ = writeln!(o, "  check-ins    {}", s.checkins);
    } else {
        let _ = writeln!(o, "  store        sizes unavailable: {}", s.store_error);
    }
    let _ = writeln!(
        o,
        "  requests     {} total: {} rate-limited, {} unauthorized, {} unavailable",
        r.total, r.rate_limited, r.unauthorized, r.unavailable
    );
    let _ = writeln!(
        o,
        "  mailbox      {} enqueued, {} delivered",
        r.enqueued, r.delivered
    );
    let _ = writeln!(
        o,
        "  retention    {} s ({}), {}",
        s.mailbox_ttl_secs,
        human_secs(s.mailbox_ttl_secs),
        retention_origin(s)
    );
    if s.banned.is_empty() {
        let _ = writeln!(o, "  banned       none");
    } else {
        let _ = writeln!(o, "  banned       {}", s.banned.len());
        for b in &s.banned {
            let _ = writeln!(o, "    {b}");
        }
    }
    o
}

/// Runs `cmd` against the admin API at `addr`; returns what to print
/// (ending in a newline).
pub async fn run(addr: SocketAddr, cmd: AdminCommand, json: bool) -> Result<String, AdminError> {
    // Check what was typed before connecting.
    let target = match &cmd {
        AdminCommand::Ban(t) | AdminCommand::Unban(t) => Some(node_id(addr, t)?),
        _ => None,
    };
    let mut client = connect(addr).await?;
    let err = |s: tonic::Status| status_error(addr, &s);
    let out = match cmd {
        AdminCommand::Stats => {
            let s = client
                .get_stats(GetStatsRequest {})
                .await
                .map_err(err)?
                .into_inner();
            if json {
                stats_json(&s).to_string()
            } else {
                stats_text(addr, &s)
            }
        }
        AdminCommand::Ban(_) | AdminCommand::Unban(_) => {
            let Some(id) = target else {
                return Err(AdminError("no NodeId".into()));
            };
            let (verb, changed) = if matches!(cmd, AdminCommand::Ban(_)) {
                let r = client
                    .ban(BanRequest {
                        node_id: id.to_hex(),
                    })
                    .await
                    .map_err(err)?
                    .into_inner();
                ("ban", r.newly_banned)
            } else {
                let r = client
                    .unban(UnbanRequest {
                        node_id: id.to_hex(),
                    })
                    .await
                    .map_err(err)?
                    .into_inner();
                ("unban", r.was_banned)
            };
            if json {
                json!({ "node_id": id.to_hex(), "action": verb, "changed": changed }).to_string()
            } else {
                match (verb, changed) {
                    ("ban", true) => format!("banned {id} (stored: survives restarts)\n"),
                    ("ban", false) => format!("{id} was already banned\n"),
                    (_, true) => format!("unbanned {id}\n"),
                    (_, false) => format!("{id} was not banned\n"),
                }
            }
        }
        AdminCommand::ShowRetention => {
            let s = client
                .get_stats(GetStatsRequest {})
                .await
                .map_err(err)?
                .into_inner();
            if json {
                retention_json(&s).to_string()
            } else {
                format!(
                    "mailbox retention {} s ({}): {}\n",
                    s.mailbox_ttl_secs,
                    human_secs(s.mailbox_ttl_secs),
                    retention_origin(&s)
                )
            }
        }
        AdminCommand::SetRetention(_) | AdminCommand::ClearRetention => {
            let clear = matches!(cmd, AdminCommand::ClearRetention);
            let secs = secs_of(&cmd);
            let r = client
                .set_retention(SetRetentionRequest {
                    mailbox_ttl_secs: secs,
                    clear,
                })
                .await
                .map_err(err)?
                .into_inner();
            if json {
                json!({
                    "previous_ttl_secs": r.previous_ttl_secs,
                    "mailbox_ttl_secs": r.mailbox_ttl_secs,
                    "source": source_name(r.source),
                })
                .to_string()
            } else if clear {
                format!(
                    "retention override cleared: {} s ({}) from the configuration applies (was {} s)\n",
                    r.mailbox_ttl_secs,
                    human_secs(r.mailbox_ttl_secs),
                    r.previous_ttl_secs
                )
            } else {
                format!(
                    "mailbox retention {} s ({}) for new messages (was {} s); stored, overrides \
                     mailbox_ttl_secs until `distsoc-anchor admin retention --clear`\n",
                    r.mailbox_ttl_secs,
                    human_secs(r.mailbox_ttl_secs),
                    r.previous_ttl_secs
                )
            }
        }
        AdminCommand::Drain => {
            let r = client
                .drain(DrainRequest {})
                .await
                .map_err(err)?
                .into_inner();
            if json {
                json!({ "newly_draining": r.newly_draining }).to_string()
            } else if r.newly_draining {
                "draining: new requests are refused, health is NOT_SERVING; restart the process \
                 to serve again\n"
                    .into()
            } else {
                "already draining\n".into()
            }
        }
    };
    Ok(if out.ends_with('\n') { out } else { out + "\n" })
}

fn secs_of(cmd: &AdminCommand) -> u64 {
    match cmd {
        AdminCommand::SetRetention(s) => *s,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration_secs("3600"), Ok(3600));
        assert_eq!(parse_duration_secs("7d"), Ok(604_800));
        assert_eq!(parse_duration_secs("36h"), Ok(129_600));
        assert_eq!(parse_duration_secs("2w"), Ok(1_209_600));
        assert!(parse_duration_secs("0").is_err());
        assert!(parse_duration_secs("7x").is_err());
        assert!(parse_duration_secs("3651d").is_err());
        assert!(parse_duration_secs("").is_err());
        assert_eq!(human_secs(604_800), "7d");
        assert_eq!(human_secs(5400), "1h30m");
        assert_eq!(human_secs(90), "1m30s");
    }
}
