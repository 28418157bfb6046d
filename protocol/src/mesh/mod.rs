//! The mesh (`schema/README.md` §13): the 3-hop discovery map, diff gossip,
//! worm lookups, address resolution and connection slots, as sans-IO state.

pub mod route;
