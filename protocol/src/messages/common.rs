//! Domain types of `schema/common.capnp`.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use distsoc_schema::common_capnp;

use crate::codec::{self, len32, Struct};
use crate::error::DecodeError;
use crate::ids::NodeId;

/// Most addresses kept per peer; extra entries on the wire are ignored.
pub const MAX_ADDRESSES: usize = 8;

/// `SocketAddress`: an IP address and UDP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketAddress(pub SocketAddr);

impl Struct for SocketAddress {
    type Schema = common_capnp::socket_address::Owned;

    fn read(r: common_capnp::socket_address::Reader<'_>) -> Result<Self, DecodeError> {
        let ip = r.get_ip()?;
        let ip = match ip.len() {
            4 => IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(ip).map_err(|_| DecodeError::Missing("ip"))?,
            )),
            16 => IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(ip).map_err(|_| DecodeError::Missing("ip"))?,
            )),
            n => {
                return Err(DecodeError::BadLength {
                    field: "ip",
                    expected: 16,
                    got: n,
                })
            }
        };
        Ok(Self(SocketAddr::new(ip, r.get_port())))
    }

    fn write(&self, mut b: common_capnp::socket_address::Builder<'_>) {
        match self.0.ip() {
            IpAddr::V4(a) => b.set_ip(&a.octets()),
            IpAddr::V6(a) => b.set_ip(&a.octets()),
        }
        b.set_port(self.0.port());
    }
}

/// Reads an address list, keeping at most [`MAX_ADDRESSES`] entries (extra
/// entries are ignored as the schema says; a hostile count is still bounded).
pub fn read_addresses(
    l: capnp::Result<capnp::struct_list::Reader<'_, common_capnp::socket_address::Owned>>,
) -> Result<Vec<SocketAddress>, DecodeError> {
    let l = l?;
    codec::check_len("addresses", l.len(), 1024)?;
    l.iter()
        .take(MAX_ADDRESSES)
        .map(SocketAddress::read)
        .collect()
}

/// Writes an address list.
pub fn write_addresses(
    mut b: capnp::struct_list::Builder<'_, common_capnp::socket_address::Owned>,
    addrs: &[SocketAddress],
) {
    for (i, a) in addrs.iter().enumerate() {
        a.write(b.reborrow().get(i as u32));
    }
}

/// `Role` of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// A user node.
    Node,
    /// An always-on anchor.
    Anchor,
}

impl Role {
    /// From the generated enum.
    pub fn from_wire(r: common_capnp::Role) -> Self {
        match r {
            common_capnp::Role::Node => Role::Node,
            common_capnp::Role::Anchor => Role::Anchor,
        }
    }

    /// To the generated enum.
    pub fn to_wire(self) -> common_capnp::Role {
        match self {
            Role::Node => common_capnp::Role::Node,
            Role::Anchor => common_capnp::Role::Anchor,
        }
    }
}

/// Reads a role list, ignoring roles this implementation does not know (a newer
/// peer may declare more).
pub fn read_roles(
    l: capnp::Result<capnp::enum_list::Reader<'_, common_capnp::Role>>,
) -> Result<Vec<Role>, DecodeError> {
    let l = l?;
    codec::check_len("roles", l.len(), 16)?;
    Ok(l.iter()
        .filter_map(|r| r.ok().map(Role::from_wire))
        .collect())
}

/// Writes a role list.
pub(crate) fn write_roles(
    mut b: capnp::enum_list::Builder<'_, common_capnp::Role>,
    roles: &[Role],
) {
    for (i, r) in roles.iter().enumerate() {
        b.set(i as u32, r.to_wire());
    }
}

/// `VisibilityHint`: whether a post's body is readable without a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VisibilityHint {
    /// Plaintext body.
    Public,
    /// Sealed body.
    Encrypted,
}

impl VisibilityHint {
    /// From the generated enum.
    pub fn from_wire(
        r: Result<common_capnp::VisibilityHint, capnp::NotInSchema>,
    ) -> Result<Self, DecodeError> {
        match r {
            Ok(common_capnp::VisibilityHint::Public) => Ok(Self::Public),
            Ok(common_capnp::VisibilityHint::Encrypted) => Ok(Self::Encrypted),
            Err(_) => Err(DecodeError::UnknownVariant("hint")),
        }
    }

    /// To the generated enum.
    pub fn to_wire(self) -> common_capnp::VisibilityHint {
        match self {
            Self::Public => common_capnp::VisibilityHint::Public,
            Self::Encrypted => common_capnp::VisibilityHint::Encrypted,
        }
    }
}

/// `PeerAddress`: how to reach a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerAddress {
    /// The peer's NodeId.
    pub node_id: NodeId,
    /// Reachable addresses, most recent first (at most [`MAX_ADDRESSES`]).
    pub addresses: Vec<SocketAddress>,
    /// The peer declared the anchor role.
    pub is_anchor: bool,
    /// Last working connection, ms since epoch (0 = unknown).
    pub last_seen_ms: u64,
}

impl Struct for PeerAddress {
    type Schema = common_capnp::peer_address::Owned;

    fn read(r: common_capnp::peer_address::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: NodeId(codec::id("nodeId", r.get_node_id())?),
            addresses: read_addresses(r.get_addresses())?,
            is_anchor: r.get_is_anchor(),
            last_seen_ms: r.get_last_seen_ms(),
        })
    }

    fn write(&self, mut b: common_capnp::peer_address::Builder<'_>) {
        b.set_node_id(self.node_id.as_bytes());
        write_addresses(
            b.reborrow().init_addresses(len32(&self.addresses)),
            &self.addresses,
        );
        b.set_is_anchor(self.is_anchor);
        b.set_last_seen_ms(self.last_seen_ms);
    }
}
