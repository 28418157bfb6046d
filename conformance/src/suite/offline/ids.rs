//! Offline checks of `ids.json`: the text forms of ids and connect strings,
//! parsed here by the documented rules.

use super::{eh, eq_hex, eq_val, exp, inp, sx, ux, verdict, Check};
use crate::vectors::Record;

// ---------------------------------------------------------------------------
// ids.json

fn parse_id(text: &str, len: usize) -> Result<Vec<u8>, &'static str> {
    // Exactly 2 × len hex digits; the length is judged on the text first.
    if text.len() != 2 * len {
        return Err("wrongLength");
    }
    hex::decode(text).map_err(|_| "invalidHex")
}

fn is_dns_name(h: &str) -> bool {
    let last_all_digits = h
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    !h.is_empty()
        && h.len() <= 253
        && !last_all_digits
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `NodeId@host:port` → (node id hex, host, host kind, port).
fn parse_connect(text: &str) -> Result<(String, String, &'static str, u16), &'static str> {
    let (id, addr) = text.split_once('@').ok_or("missingAt")?;
    let node_id = parse_id(id, 32).map_err(|_| "nodeId")?;
    let (host, kind, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or("missingPort")?;
        let ip: std::net::Ipv6Addr = h.parse().map_err(|_| "badHost")?;
        (ip.to_string(), "ip", p)
    } else {
        let (h, p) = addr.rsplit_once(':').ok_or("missingPort")?;
        if h.contains(':') {
            return Err("badHost");
        }
        match h.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => (ip.to_string(), "ip", p),
            Err(_) if is_dns_name(h) => (h.to_ascii_lowercase(), "name", p),
            Err(_) => return Err("badHost"),
        }
    };
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("badPort");
    }
    let port: u16 = port.parse().map_err(|_| "badPort")?;
    if port == 0 {
        return Err("badPort");
    }
    Ok((hex::encode(node_id), host, kind, port))
}

pub(super) fn check_ids(rec: &Record, kind: &str) -> Check {
    let text = sx(inp(rec, "text")?, "input.text")?;
    if kind == "connect-string" {
        return match parse_connect(text) {
            Ok((node_id, host, host_kind, port)) if rec.valid => {
                eq_val(
                    "expected.node_id",
                    sx(exp(rec, "node_id")?, "node_id")?,
                    node_id.as_str(),
                )?;
                eq_val(
                    "expected.host",
                    sx(exp(rec, "host")?, "host")?,
                    host.as_str(),
                )?;
                eq_val(
                    "expected.host_kind",
                    sx(exp(rec, "host_kind")?, "host_kind")?,
                    host_kind,
                )?;
                eq_val(
                    "expected.port",
                    ux(exp(rec, "port")?, "port")?,
                    u64::from(port),
                )
            }
            other => verdict(
                "parsing the connect string",
                rec,
                other.map(drop).map_err(str::to_owned),
            ),
        };
    }
    let len = if matches!(kind, "ChannelId" | "WormId") {
        16
    } else {
        32
    };
    match parse_id(text, len) {
        Ok(bytes) if rec.valid => {
            eq_hex("expected.bytes", &eh(rec, "bytes")?, &bytes)?;
            eq_val(
                "expected.text (canonical form)",
                sx(exp(rec, "text")?, "expected.text")?,
                hex::encode(&bytes).as_str(),
            )
        }
        other => verdict(
            &format!("parsing as {kind}"),
            rec,
            other.map(drop).map_err(str::to_owned),
        ),
    }
}
