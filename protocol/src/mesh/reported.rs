//! What one peer reports as its hop 1 (this node's hop 2), as the map
//! ([`super::map`]) stores it: each entry's first advertised address packed
//! in 19 bytes and its anchor flag, the list sorted by id (and shared in
//! chunks between simulated meshes), and the edit that applies a diff's
//! hop-1 changes to it.

use std::cmp::Ordering;
use std::net::SocketAddr;

use super::chunked::{Chunked, Entry};
use super::map::{id_cmp, MAX_REPORTED_HOP1};
use crate::ids::NodeId;

/// A socket address in 19 bytes (IPv4 stored mapped into IPv6), so a
/// peer's reported hop 1 costs ~54 bytes per entry instead of ~80.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PackedAddr {
    ip: [u8; 16],
    port: u16,
    v4: bool,
}

impl From<SocketAddr> for PackedAddr {
    fn from(a: SocketAddr) -> Self {
        match a {
            SocketAddr::V4(v4) => PackedAddr {
                ip: v4.ip().to_ipv6_mapped().octets(),
                port: v4.port(),
                v4: true,
            },
            SocketAddr::V6(v6) => PackedAddr {
                ip: v6.ip().octets(),
                port: v6.port(),
                v4: false,
            },
        }
    }
}

impl From<PackedAddr> for SocketAddr {
    fn from(p: PackedAddr) -> Self {
        let v6 = std::net::Ipv6Addr::from(p.ip);
        match (p.v4, v6.to_ipv4_mapped()) {
            (true, Some(v4)) => SocketAddr::from((v4, p.port)),
            _ => SocketAddr::from((v6, p.port)),
        }
    }
}

/// One entry of a peer's reported hop 1 (this node's hop 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Reported {
    pub(super) addr: Option<PackedAddr>,
    pub(crate) is_anchor: bool,
}

impl Reported {
    pub(crate) fn new(addr: Option<SocketAddr>, is_anchor: bool) -> Self {
        Reported {
            addr: addr.map(PackedAddr::from),
            is_anchor,
        }
    }

    /// The first address the node advertised, as reported.
    pub(crate) fn addr(&self) -> Option<SocketAddr> {
        self.addr.map(SocketAddr::from)
    }
}

/// A peer's reported hop 1, sorted by id (lookups by binary search): one
/// exact-size chunk, or with [`SharedReports`] content-defined chunks
/// shared between meshes ([`super::chunked`]). A change builds the new
/// list ([`edit_hop1`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct ReportedHop1 {
    pub(crate) entries: Chunked<(NodeId, Reported)>,
}

impl Entry for (NodeId, Reported) {
    // ~430 bytes a chunk (54 bytes an entry).
    const SPAN: u64 = 8;
    const MAX: usize = 32;
    fn key_hash(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0 .0[24..32]);
        u64::from_le_bytes(b)
    }
    fn order(&self, other: &Self) -> Ordering {
        id_cmp(&self.0, &other.0)
    }
}

impl ReportedHop1 {
    pub(crate) fn get(&self, id: &NodeId) -> Option<&Reported> {
        self.entries.find_by(|(x, _)| id_cmp(x, id)).map(|(_, r)| r)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&NodeId, &Reported)> {
        self.entries.iter().map(|(x, r)| (x, r))
    }

    pub(super) fn bytes(&self) -> usize {
        self.entries.bytes()
    }
}

/// What one change of a reported hop 1 did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Hop1Outcome {
    /// Dropped: a self-report, over the bound, or removing an absent entry.
    Ignored,
    /// A new entry.
    Inserted,
    /// An entry replaced; whether the old one had an address.
    Updated(bool),
    /// An entry removed; whether it had an address.
    Removed(bool),
}

/// `old` (sorted) with the changes `ops` of reporter `from` applied in
/// order (`None`: remove), at most [`MAX_REPORTED_HOP1`] entries; and what
/// each change did.
pub(super) fn edit_hop1(
    mut v: Vec<(NodeId, Reported)>,
    from: &NodeId,
    ops: &[(NodeId, Option<Reported>)],
) -> (Vec<(NodeId, Reported)>, Vec<Hop1Outcome>) {
    let mut outcomes = Vec::with_capacity(ops.len());
    for (x, op) in ops {
        let pos = v.binary_search_by(|(y, _)| id_cmp(y, x));
        let o = match (op, pos) {
            (Some(_), _) if x == from => Hop1Outcome::Ignored,
            (Some(rep), Ok(i)) => {
                let had = v[i].1.addr.is_some();
                v[i].1 = *rep;
                Hop1Outcome::Updated(had)
            }
            (Some(rep), Err(i)) => {
                if v.len() >= MAX_REPORTED_HOP1 {
                    Hop1Outcome::Ignored
                } else {
                    v.insert(i, (*x, *rep));
                    Hop1Outcome::Inserted
                }
            }
            (None, Ok(i)) => Hop1Outcome::Removed(v.remove(i).1.addr.is_some()),
            (None, Err(_)) => Hop1Outcome::Ignored,
        };
        outcomes.push(o);
    }
    (v, outcomes)
}
