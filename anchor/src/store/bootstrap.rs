//! Bootstrap answers: where candidates come from, and the diverse pick
//! (anchors first, up to a quota, then one peer per address prefix).

use std::net::IpAddr;

use distsoc_protocol::ids::NodeId;

use super::CheckIn;

/// Where bootstrap candidates come from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BootstrapQuery {
    pub(crate) seen_after_ms: u64,
    pub(crate) recent_limit: usize,
    pub(crate) anchor_limit: usize,
    pub(crate) sample_start: [u8; 32],
    pub(crate) sample_limit: usize,
}

/// The anchors reserved in a bootstrap answer of `want` peers.
pub(super) fn anchor_quota(want: usize) -> usize {
    (want / 10).max(1)
}

/// The diversity key of a check-in: the /16 of its first IPv4 address or
/// the /32 of its first IPv6 address (IPv4-mapped addresses count as IPv4).
pub(super) fn prefix_of(c: &CheckIn) -> Option<[u8; 5]> {
    let a = c.addrs.first()?;
    Some(match a.ip() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [4, o[0], o[1], 0, 0]
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => {
                let o = v4.octets();
                [4, o[0], o[1], 0, 0]
            }
            None => {
                let o = v6.octets();
                [6, o[0], o[1], o[2], o[3]]
            }
        },
    })
}

/// Picks up to `want` diverse peers from the candidates (see
/// [`super::AnchorStore::bootstrap_peers`]).
pub(super) fn pick_diverse(
    candidates: Vec<CheckIn>,
    want: usize,
    exclude: &[NodeId],
    seen_after_ms: u64,
) -> Vec<CheckIn> {
    use std::collections::HashSet;
    let excluded: HashSet<NodeId> = exclude.iter().copied().collect();
    let mut seen_nodes = HashSet::new();
    let pool: Vec<CheckIn> = candidates
        .into_iter()
        .filter(|c| c.last_seen_ms >= seen_after_ms && !excluded.contains(&c.node))
        .filter(|c| seen_nodes.insert(c.node))
        .collect();
    let mut taken = vec![false; pool.len()];
    let mut prefixes: HashSet<[u8; 5]> = HashSet::new();
    let mut out = Vec::with_capacity(want);
    // Passes: anchors up to the quota (distinct prefixes first), then one
    // peer per prefix, then anyone.
    let quota = anchor_quota(want).min(want);
    let passes = [
        (quota, true, true),
        (quota, true, false),
        (want, false, true),
        (want, false, false),
    ];
    for (limit, anchors_only, distinct_only) in passes {
        for (i, c) in pool.iter().enumerate() {
            if out.len() >= limit {
                break;
            }
            let prefix = prefix_of(c);
            let fresh = prefix.is_none_or(|p| !prefixes.contains(&p));
            if taken[i] || (anchors_only && !c.is_anchor) || (distinct_only && !fresh) {
                continue;
            }
            taken[i] = true;
            if let Some(p) = prefix {
                prefixes.insert(p);
            }
            out.push(c.clone());
        }
    }
    out
}
