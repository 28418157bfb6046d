//! DISC: what an anchor serves for discovery — the address cache
//! (`address-cache/1`: AddressRequest answered from check-ins) and bootstrap
//! (`bootstrap/1`: BootstrapRequest) — discovery.capnp, schema/README.md §2
//! (codes) and §10 (list limits).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use distsoc_net::transport::{Router, Transport, TransportConfig};

use distsoc_schema::{common_capnp, discovery_capnp, wire_capnp};

use super::def;
use crate::suite::client::Reply;
use crate::suite::ctx::{
    error_words, expect_code, expect_error, now_ms, CaseError, Ctx, Outcome, Session,
};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::{self, code, PROTOCOL_VERSION as V};

/// Returns `Ok(Outcome::fail(expected, why))` from the case on `Err(why)`.
macro_rules! tri {
    ($e:expr, $expected:expr) => {
        match $e {
            Ok(v) => v,
            Err(why) => return Ok(Outcome::fail($expected, why)),
        }
    };
}

const ADDR: Option<&str> = Some("address-cache/1");
const BOOT: Option<&str> = Some("bootstrap/1");

const CHECKIN: &str = "AddressRequest: \"At what address can these nodes be reached?\" [...] anchors also answer from their check-in cache (capability `address-cache/1`). Hello.listenAddresses: Addresses at which the sender accepts connections [...] Anchors record them in their address cache (check-in). (discovery.capnp, wire.capnp)";
const ENTRIES: &str = "AddressResponse.entries: One entry per requested target, in request order. At most 64. AddressEntry.found: True if `peer` holds the node's addresses. peer: [...] Its nodeId must equal this entry's nodeId. (discovery.capnp)";
const TARGETS: &str = "targets: NodeIds (32 bytes) to resolve. At most 64. (discovery.capnp AddressRequest); list and text fields: stated on each field → tooLarge (schema/README.md §10)";
const ID_LEN: &str = "Ids are `Data` of a fixed length (NodeId, PostingId, PostId: 32 bytes; ChannelId, WormId: 16 bytes). A wrong length is rejected as `malformed`. (common.capnp)";
const WANT: &str = "want: How many peers to return; at most 200 (larger values are clamped); 0 means the responder's default (200). BootstrapResponse.peers: Up to `want` recently seen peers with addresses [...] At most 200. (discovery.capnp)";
const DIVERSE: &str = "BootstrapRequest: \"I'm new, give me diverse peers\". exclude: NodeIds (32 bytes) the requester already knows; at most 96 (what fits the 4 KiB frame cap of this message). (discovery.capnp)";
const EXCLUDE_LIMIT: &str = "exclude: NodeIds (32 bytes) the requester already knows; at most 96 (what fits the 4 KiB frame cap of this message). (discovery.capnp BootstrapRequest); list and text fields: stated on each field → tooLarge (schema/README.md §10)";
const VERIFIED: &str = "An anchor hands out an address (AddressResponse, BootstrapResponse) only after it verified it by dialling back with the NodeId pinned [...] It never hands out the address it observed a connection from: a client that announced no listen address is not checked in. (schema/README.md §12)";
const WELL_FORMED: &str = "PeerAddress.nodeId: The peer's NodeId: its 32-byte ed25519 network public key. addresses: [...] At most 8 entries. SocketAddress.ip: 4 bytes (IPv4) or 16 bytes (IPv6). Any other length is `malformed`. port: The UDP port. 0 is invalid in a listen address. (common.capnp)";

// ---- frames ---------------------------------------------------------------------

/// A Hello (node role, version 2) announcing `listen` as listen addresses.
fn hello_listening(listen: &[SocketAddr]) -> Vec<u8> {
    hello_as(listen, common_capnp::Role::Node)
}

/// A Hello (role `role`, version 2) announcing `listen` as listen addresses.
fn hello_as(listen: &[SocketAddr], role: common_capnp::Role) -> Vec<u8> {
    wire::build::<wire_capnp::hello::Owned, _>(code::HELLO, |mut b| {
        b.set_version(V);
        b.set_min_version(V);
        b.set_max_version(V);
        b.reborrow().init_roles(1).set(0, role);
        {
            let mut l = b.reborrow().init_listen_addresses(listen.len() as u32);
            for (i, a) in listen.iter().enumerate() {
                let mut e = l.reborrow().get(i as u32);
                match a.ip() {
                    IpAddr::V4(ip) => e.set_ip(&ip.octets()),
                    IpAddr::V6(ip) => e.set_ip(&ip.octets()),
                }
                e.set_port(a.port());
            }
        }
        b.set_agent(concat!("distsoc-conformance/", env!("CARGO_PKG_VERSION")));
        b.set_time_ms(now_ms());
    })
}

fn address_frame(targets: &[Vec<u8>]) -> Vec<u8> {
    wire::build::<discovery_capnp::address_request::Owned, _>(code::ADDRESS_REQUEST, |mut b| {
        b.set_version(V);
        let mut l = b.init_targets(targets.len() as u32);
        for (i, t) in targets.iter().enumerate() {
            l.set(i as u32, t);
        }
    })
}

fn bootstrap_frame(want: u16, exclude: &[Vec<u8>]) -> Vec<u8> {
    wire::build::<discovery_capnp::bootstrap_request::Owned, _>(code::BOOTSTRAP_REQUEST, |mut b| {
        b.set_version(V);
        b.set_want(want);
        let mut l = b.init_exclude(exclude.len() as u32);
        for (i, t) in exclude.iter().enumerate() {
            l.set(i as u32, t);
        }
    })
}

// ---- replies --------------------------------------------------------------------

fn err(e: capnp::Error) -> String {
    e.to_string()
}

/// A PeerAddress as read; addresses that are not 4/16-byte IPs are kept as
/// `Err(length)`.
struct Peer {
    node: Vec<u8>,
    addrs: Vec<Result<SocketAddr, usize>>,
}

fn read_peer(p: common_capnp::peer_address::Reader<'_>) -> Result<Peer, String> {
    let mut addrs = Vec::new();
    for a in p.get_addresses().map_err(err)?.iter() {
        let ip = a.get_ip().map_err(err)?;
        let ip: Result<IpAddr, usize> = match ip.len() {
            4 => Ok(IpAddr::from([ip[0], ip[1], ip[2], ip[3]])),
            16 => <[u8; 16]>::try_from(ip)
                .map(IpAddr::from)
                .map_err(|_| ip.len()),
            n => Err(n),
        };
        addrs.push(ip.map(|ip| SocketAddr::new(ip, a.get_port())));
    }
    Ok(Peer {
        node: p.get_node_id().map_err(err)?.to_vec(),
        addrs,
    })
}

struct Entry {
    node: Vec<u8>,
    found: bool,
    peer: Option<Peer>,
}

fn read_entries(reply: &Reply) -> Result<Vec<Entry>, String> {
    let f = expect_code(reply, code::ADDRESS_RESPONSE)?;
    let reader = f.reader();
    let r: discovery_capnp::address_response::Reader<'_> = reader.get_root().map_err(err)?;
    let mut out = Vec::new();
    for e in r.get_entries().map_err(err)?.iter() {
        let found = e.get_found();
        out.push(Entry {
            node: e.get_node_id().map_err(err)?.to_vec(),
            found,
            peer: if found && e.has_peer() {
                Some(read_peer(e.get_peer().map_err(err)?)?)
            } else {
                None
            },
        });
    }
    Ok(out)
}

fn read_peers(reply: &Reply) -> Result<Vec<Peer>, String> {
    let f = expect_code(reply, code::BOOTSTRAP_RESPONSE)?;
    let reader = f.reader();
    let r: discovery_capnp::bootstrap_response::Reader<'_> = reader.get_root().map_err(err)?;
    let mut out = Vec::new();
    for p in r.get_peers().map_err(err)?.iter() {
        out.push(read_peer(p)?);
    }
    Ok(out)
}

fn hex8(b: &[u8]) -> String {
    hex::encode(&b[..b.len().min(8)])
}

fn show_addrs(p: &Peer) -> String {
    p.addrs
        .iter()
        .map(|a| match a {
            Ok(a) => a.to_string(),
            Err(n) => format!("<{n}-byte ip>"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn refused(
    ctx: &mut Ctx,
    s: &Session,
    reply: &Reply,
    allowed: &[&str],
    what: &str,
) -> Outcome {
    let expected = format!("{what}: {}", error_words(allowed));
    let o = match expect_error(reply, allowed) {
        Ok(e) => Outcome::pass(&expected, e.to_string()),
        Err(got) => Outcome::fail(&expected, got),
    };
    o.and_usable(ctx.still_usable(s).await)
}

/// The suite's node side of a check-in: a real endpoint with the
/// session's key, listening where the Hello says (an anchor verifies a
/// listen address by dialling back with the NodeId pinned before it hands
/// it out, schema/README.md §12). It answers the Hello exchange and refuses
/// every request.
struct Listener(#[allow(dead_code)] Transport);

/// An identity that connects announcing a listen address where it really
/// listens (its own IP as the target sees it, a fresh port) and stays
/// connected; keep the [`Listener`] alive as long as the session.
async fn checked_in(ctx: &mut Ctx) -> Result<(Session, SocketAddr, Listener), CaseError> {
    let ip = if ctx.target.addr.ip().is_loopback() {
        ctx.target.addr.ip()
    } else {
        // The address our packets come from, as the target reports it.
        let probe = ctx.connect().await?;
        probe
            .hello
            .observed
            .map(|a| a.ip())
            .ok_or_else(|| CaseError::Setup("HelloResponse without observedAddress".into()))?
    };
    let seed = ctx.random32();
    let bind = if ctx.target.addr.ip().is_loopback() {
        SocketAddr::new(ip, 0)
    } else if ip.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    };
    let endpoint = Transport::bind(
        &distsoc_protocol::sign::SigningKey::from_seed(&seed),
        TransportConfig {
            listen: bind,
            agent: concat!("distsoc-conformance/", env!("CARGO_PKG_VERSION")).to_string(),
            ..TransportConfig::default()
        },
        // No handler registered: every request is answered unknownMessage.
        Arc::new(Router::new(Arc::new(()), "a conformance client")),
    )
    .map_err(|e| CaseError::Setup(format!("cannot listen: {e}")))?;
    let port = endpoint
        .local_addr()
        .map_err(|e| CaseError::Setup(format!("cannot listen: {e}")))?
        .port();
    let listen = SocketAddr::new(ip, port);
    let s = ctx
        .connect_as_with(seed, &hello_listening(&[listen]))
        .await?;
    Ok((s, listen, Listener(endpoint)))
}

/// How long a check-in (with its dial-back) may take to become visible.
const CHECK_IN_WAIT: Duration = Duration::from_secs(5);

/// Asks `asker` for `target` until it is found or [`CHECK_IN_WAIT`] has
/// passed (check-in is recorded after the HelloResponse, once the address
/// is verified).
async fn resolve(asker: &Session, target: &[u8]) -> Result<Entry, String> {
    let started = Instant::now();
    loop {
        let reply = asker.request(&address_frame(&[target.to_vec()])).await;
        let mut entries = read_entries(&reply)?;
        if entries.len() != 1 {
            return Err(format!("{} entries for 1 target", entries.len()));
        }
        let e = entries.remove(0);
        if e.found || started.elapsed() > CHECK_IN_WAIT {
            return Ok(e);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- AddressRequest ---------------------------------------------------------------

async fn addr_checked_in(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (x, listen, _l) = checked_in(ctx).await?;
    let asker = ctx.connect().await?;
    let expected = format!(
        "an identity that connected announcing listen address {listen}: found = true, peer.nodeId = its NodeId, addresses include {listen}"
    );
    let e = tri!(resolve(&asker, &x.client_id).await, expected);
    let Some(p) = e.peer.as_ref().filter(|_| e.found) else {
        return Ok(Outcome::fail(expected, "found = false within 5 s"));
    };
    Ok(Outcome::check(
        e.node == x.client_id && p.node == x.client_id && p.addrs.contains(&Ok(listen)),
        expected,
        format!(
            "entry {} found, peer {} at [{}]",
            hex8(&e.node),
            hex8(&p.node),
            show_addrs(p)
        ),
    ))
}

/// DISC-12-300: a client that announced no listen address is never handed
/// out, not even at the address its packets came from.
async fn addr_no_observed(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let silent = ctx.connect().await?;
    let seen = silent.conn.local_addr();
    // A verified check-in made after the silent one: once it is visible,
    // the anchor has processed the earlier connection too.
    let (y, _, _l) = checked_in(ctx).await?;
    let asker = ctx.connect().await?;
    let expected = format!(
        "an identity that connected without listen addresses (from {}) is not found, and is not in a BootstrapResponse",
        seen.map_or_else(|| "?".into(), |a| a.to_string())
    );
    let e = tri!(resolve(&asker, &y.client_id).await, expected);
    if !e.found {
        return Err(CaseError::Setup(
            "a listening identity was not found within 5 s (address cache or dial-back not working)"
                .into(),
        ));
    }
    let entries = tri!(
        read_entries(
            &asker
                .request(&address_frame(&[silent.client_id.to_vec()]))
                .await
        ),
        expected
    );
    let peers = tri!(boot(&asker, 200, &[]).await, expected);
    let in_boot = peers.iter().any(|p| p.node == silent.client_id);
    let found = entries.first().is_some_and(|e| e.found);
    Ok(Outcome::check(
        !found && !in_boot,
        expected,
        format!(
            "AddressResponse found = {found}{}; in bootstrap: {in_boot}",
            entries
                .first()
                .and_then(|e| e.peer.as_ref())
                .map(|p| format!(" at [{}]", show_addrs(p)))
                .unwrap_or_default()
        ),
    ))
}

/// DISC-12-301: addresses nothing answers at (a port on the client's own IP
/// where it does not listen, a documentation address) are never handed
/// out; the anchor-role claim of such a client counts for nothing.
async fn addr_unverified(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let closed = {
        let ip = if ctx.target.addr.ip().is_loopback() {
            ctx.target.addr.ip()
        } else {
            IpAddr::from([127, 0, 0, 1])
        };
        let sock = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))
            .map_err(|e| CaseError::Setup(format!("bind: {e}")))?;
        sock.local_addr()
            .map_err(|e| CaseError::Setup(format!("bind: {e}")))?
    };
    let claimed = [closed, SocketAddr::from(([203, 0, 113, 5], 4433))];
    let liar = ctx
        .connect_with(&hello_as(&claimed, common_capnp::Role::Anchor))
        .await?;
    let (y, _, _l) = checked_in(ctx).await?;
    let asker = ctx.connect().await?;
    let expected = format!(
        "an identity announcing [{}] (nothing answers there) is not found and not in a BootstrapResponse",
        claimed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    );
    let e = tri!(resolve(&asker, &y.client_id).await, expected);
    if !e.found {
        return Err(CaseError::Setup(
            "a listening identity was not found within 5 s (address cache or dial-back not working)"
                .into(),
        ));
    }
    let entries = tri!(
        read_entries(
            &asker
                .request(&address_frame(&[liar.client_id.to_vec()]))
                .await
        ),
        expected
    );
    let peers = tri!(boot(&asker, 200, &[]).await, expected);
    let in_boot = peers.iter().any(|p| p.node == liar.client_id);
    let found = entries.first().is_some_and(|e| e.found);
    Ok(Outcome::check(
        !found && !in_boot,
        expected,
        format!("AddressResponse found = {found}; in bootstrap: {in_boot}"),
    ))
}

async fn addr_unknown(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let target = ctx.random32().to_vec();
    let expected = "one entry for an identity never seen: nodeId = the target, found = false";
    let entries = tri!(
        read_entries(
            &s.request(&address_frame(std::slice::from_ref(&target)))
                .await
        ),
        expected
    );
    let ok = entries.len() == 1 && entries[0].node == target && !entries[0].found;
    Ok(Outcome::check(
        ok,
        expected,
        entries
            .iter()
            .map(|e| format!("{} found={}", hex8(&e.node), e.found))
            .collect::<Vec<_>>()
            .join(", "),
    ))
}

async fn addr_order(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (x, _, _l) = checked_in(ctx).await?;
    let asker = ctx.connect().await?;
    let expected = "targets [unknown, checked-in, unknown]: three entries in request order with the targets' nodeIds; only the checked-in one found";
    // Wait for the check-in first so the order check is about order.
    tri!(resolve(&asker, &x.client_id).await, expected);
    let targets = vec![
        ctx.random32().to_vec(),
        x.client_id.to_vec(),
        ctx.random32().to_vec(),
    ];
    let entries = tri!(
        read_entries(&asker.request(&address_frame(&targets)).await),
        expected
    );
    let nodes: Vec<Vec<u8>> = entries.iter().map(|e| e.node.clone()).collect();
    let found: Vec<bool> = entries.iter().map(|e| e.found).collect();
    Ok(Outcome::check(
        nodes == targets && found == [false, true, false],
        expected,
        format!(
            "[{}] found {found:?}",
            nodes.iter().map(|n| hex8(n)).collect::<Vec<_>>().join(", ")
        ),
    ))
}

async fn addr_empty(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let expected = "AddressRequest with no targets: an AddressResponse with no entries";
    let entries = tri!(
        read_entries(&s.request(&address_frame(&[])).await),
        expected
    );
    Ok(Outcome::check(
        entries.is_empty(),
        expected,
        format!("{} entries", entries.len()),
    ))
}

async fn addr_at_cap(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let targets: Vec<Vec<u8>> = (0..64).map(|_| ctx.random32().to_vec()).collect();
    let expected = "AddressRequest with 64 targets (the limit): 64 entries";
    let entries = tri!(
        read_entries(&s.request(&address_frame(&targets)).await),
        expected
    );
    Ok(Outcome::check(
        entries.len() == 64,
        expected,
        format!("{} entries", entries.len()),
    ))
}

async fn addr_over_cap(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let targets: Vec<Vec<u8>> = (0..65).map(|_| ctx.random32().to_vec()).collect();
    let reply = s.request(&address_frame(&targets)).await;
    Ok(refused(
        ctx,
        &s,
        &reply,
        &["tooLarge"],
        "AddressRequest with 65 targets",
    )
    .await)
}

async fn addr_bad_len(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let mut short = ctx.random32().to_vec();
    short.pop();
    let reply = s.request(&address_frame(&[short])).await;
    Ok(refused(
        ctx,
        &s,
        &reply,
        &["malformed"],
        "AddressRequest with a 31-byte target",
    )
    .await)
}

// ---- BootstrapRequest -------------------------------------------------------------

async fn boot(s: &Session, want: u16, exclude: &[Vec<u8>]) -> Result<Vec<Peer>, String> {
    read_peers(&s.request(&bootstrap_frame(want, exclude)).await)
        .map_err(|e| format!("BootstrapRequest got {e}"))
}

/// Two identities checked in (kept connected and listening), so the
/// anchor has peers.
async fn population(ctx: &mut Ctx) -> Result<Vec<(Session, Listener)>, CaseError> {
    let mut v = Vec::new();
    for _ in 0..2 {
        let (s, _, l) = checked_in(ctx).await?;
        v.push((s, l));
    }
    Ok(v)
}

async fn boot_want_one(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let _pop = population(ctx).await?;
    let s = ctx.connect().await?;
    let expected = "BootstrapRequest want = 1: at most 1 peer";
    let peers = tri!(boot(&s, 1, &[]).await, expected);
    Ok(Outcome::check(
        peers.len() <= 1,
        expected,
        format!("{} peer(s)", peers.len()),
    ))
}

async fn boot_clamped(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let _pop = population(ctx).await?;
    let s = ctx.connect().await?;
    let expected =
        "BootstrapRequest want = 65535: served (clamped, not refused) with at most 200 peers";
    let peers = tri!(boot(&s, u16::MAX, &[]).await, expected);
    Ok(Outcome::check(
        peers.len() <= 200,
        expected,
        format!("{} peer(s)", peers.len()),
    ))
}

async fn boot_default(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let pop = population(ctx).await?;
    let s = ctx.connect().await?;
    let expected = "with peers checked in, want = 0 (the default, 200) and want = 1 each return at least one peer";
    // Wait for the check-ins to be visible (want = 200).
    let started = Instant::now();
    loop {
        let peers = tri!(boot(&s, 200, &[]).await, expected);
        if !peers.is_empty() || started.elapsed() > CHECK_IN_WAIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let zero = tri!(boot(&s, 0, &[]).await, expected);
    let one = tri!(boot(&s, 1, &[]).await, expected);
    drop(pop);
    Ok(Outcome::check(
        !zero.is_empty() && !one.is_empty(),
        expected,
        format!(
            "want 0: {} peer(s); want 1: {} peer(s)",
            zero.len(),
            one.len()
        ),
    ))
}

async fn boot_not_self(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (s, _, _l) = checked_in(ctx).await?;
    let _pop = population(ctx).await?;
    let expected = "a (checked-in) requester is not offered itself (want = 200)";
    let peers = tri!(boot(&s, 200, &[]).await, expected);
    Ok(Outcome::check(
        !peers.iter().any(|p| p.node == s.client_id),
        expected,
        format!("{} peer(s), none is the requester", peers.len()),
    ))
}

async fn boot_well_formed(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let _pop = population(ctx).await?;
    let s = ctx.connect().await?;
    let expected = "every peer: 32-byte nodeId, at most 8 addresses of 4 or 16 bytes with a non-zero port; no peer twice";
    let peers = tri!(boot(&s, 200, &[]).await, expected);
    let mut bad = Vec::new();
    let mut seen = HashSet::new();
    for p in &peers {
        if p.node.len() != 32 {
            bad.push(format!("{}-byte nodeId", p.node.len()));
        }
        if !seen.insert(p.node.clone()) {
            bad.push(format!("{} twice", hex8(&p.node)));
        }
        if p.addrs.len() > 8 {
            bad.push(format!(
                "{} with {} addresses",
                hex8(&p.node),
                p.addrs.len()
            ));
        }
        for a in &p.addrs {
            match a {
                Ok(a) if a.port() == 0 => bad.push(format!("{} at port 0", hex8(&p.node))),
                Ok(_) => {}
                Err(n) => bad.push(format!("{} with a {n}-byte ip", hex8(&p.node))),
            }
        }
    }
    Ok(Outcome::check(
        bad.is_empty(),
        expected,
        if bad.is_empty() {
            format!("{} well-formed peer(s)", peers.len())
        } else {
            bad.join("; ")
        },
    ))
}

async fn boot_exclude(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let pop = population(ctx).await?;
    let s = ctx.connect().await?;
    let expected = "no peer listed in `exclude` is returned (want = 200)";
    let exclude: Vec<Vec<u8>> = pop.iter().map(|p| p.0.client_id.to_vec()).collect();
    let first = tri!(boot(&s, 200, &[]).await, expected);
    // Also exclude some of what came back first, so the exclusion is
    // observable (60 more ids: the request stays under its 4 KiB cap).
    let mut exclude = exclude;
    exclude.extend(first.iter().take(60).map(|p| p.node.clone()));
    let peers = tri!(boot(&s, 200, &exclude).await, expected);
    let leaked: Vec<String> = peers
        .iter()
        .filter(|p| exclude.contains(&p.node))
        .map(|p| hex8(&p.node))
        .collect();
    Ok(Outcome::check(
        leaked.is_empty(),
        expected,
        if leaked.is_empty() {
            format!(
                "{} excluded, {} returned, none excluded",
                exclude.len(),
                peers.len()
            )
        } else {
            format!("excluded peers returned: {}", leaked.join(", "))
        },
    ))
}

async fn boot_exclude_over(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let exclude: Vec<Vec<u8>> = (0..97).map(|_| ctx.random32().to_vec()).collect();
    let reply = s.request(&bootstrap_frame(10, &exclude)).await;
    Ok(refused(
        ctx,
        &s,
        &reply,
        &["tooLarge"],
        "BootstrapRequest with 97 excluded ids",
    )
    .await)
}

async fn boot_exclude_at_cap(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let exclude: Vec<Vec<u8>> = (0..96).map(|_| ctx.random32().to_vec()).collect();
    let reply = s.request(&bootstrap_frame(10, &exclude)).await;
    let outcome = match expect_code(&reply, code::BOOTSTRAP_RESPONSE) {
        Ok(_) => Outcome::pass("a BootstrapResponse", "a BootstrapResponse"),
        Err(got) => Outcome::fail("a BootstrapResponse", got),
    };
    Ok(outcome.and_usable(ctx.still_usable(&s).await))
}

async fn boot_exclude_bad(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let mut id = ctx.random32().to_vec();
    id.push(0);
    let reply = s.request(&bootstrap_frame(10, &[id])).await;
    Ok(refused(
        ctx,
        &s,
        &reply,
        &["malformed"],
        "BootstrapRequest excluding a 33-byte id",
    )
    .await)
}

/// The DISC cases.
#[allow(clippy::too_many_lines)]
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Limit, Negative, Positive};
    use Level::{Must, Should};
    let r = Role::Anchor;
    vec![
        def("DISC-2-001", Must, Positive, r, ADDR, "AddressRequest finds an identity that checked in with listen addresses, at those addresses", "discovery.capnp AddressRequest", CHECKIN)
            .run(|ctx| Box::pin(addr_checked_in(ctx))),
        def("DISC-2-003", Must, Negative, r, ADDR, "AddressRequest for an identity never seen: found = false", "discovery.capnp AddressResponse", ENTRIES)
            .run(|ctx| Box::pin(addr_unknown(ctx))),
        def("DISC-2-004", Must, Positive, r, ADDR, "AddressResponse has one entry per target, in request order", "discovery.capnp AddressResponse", ENTRIES)
            .run(|ctx| Box::pin(addr_order(ctx))),
        def("DISC-2-005", Must, Limit, r, ADDR, "AddressRequest with no targets: no entries", "discovery.capnp AddressResponse", ENTRIES)
            .run(|ctx| Box::pin(addr_empty(ctx))),
        def("DISC-10-006", Must, Limit, r, ADDR, "AddressRequest with 64 targets (the limit) is served", "discovery.capnp AddressRequest", TARGETS)
            .run(|ctx| Box::pin(addr_at_cap(ctx))),
        def("DISC-10-007", Must, Negative, r, ADDR, "AddressRequest with 65 targets is tooLarge", "schema/README.md §10", TARGETS)
            .run(|ctx| Box::pin(addr_over_cap(ctx))),
        def("DISC-2-008", Must, Negative, r, ADDR, "AddressRequest with a 31-byte target is malformed", "common.capnp conventions", ID_LEN)
            .run(|ctx| Box::pin(addr_bad_len(ctx))),
        def("DISC-2-009", Must, Positive, r, BOOT, "BootstrapRequest want = 1 returns at most one peer", "discovery.capnp BootstrapRequest", WANT)
            .run(|ctx| Box::pin(boot_want_one(ctx))),
        def("DISC-2-010", Must, Limit, r, BOOT, "BootstrapRequest want above 200 is clamped (served, at most 200 peers)", "discovery.capnp BootstrapRequest", WANT)
            .run(|ctx| Box::pin(boot_clamped(ctx))),
        def("DISC-2-011", Should, Positive, r, BOOT, "with peers checked in, want = 0 (the default) and want = 1 return peers", "discovery.capnp BootstrapRequest", WANT)
            .run(|ctx| Box::pin(boot_default(ctx))),
        def("DISC-2-012", Should, Negative, r, BOOT, "the requester is not offered itself", "discovery.capnp BootstrapRequest", DIVERSE)
            .run(|ctx| Box::pin(boot_not_self(ctx))),
        def("DISC-2-013", Must, Positive, r, BOOT, "offered peers are well formed (32-byte ids, 4/16-byte IPs, non-zero ports, ≤ 8 addresses, no duplicates)", "common.capnp PeerAddress", WELL_FORMED)
            .run(|ctx| Box::pin(boot_well_formed(ctx))),
        def("DISC-2-014", Should, Positive, r, BOOT, "peers listed in `exclude` are not returned", "discovery.capnp BootstrapRequest", DIVERSE)
            .run(|ctx| Box::pin(boot_exclude(ctx))),
        def("DISC-10-015", Must, Negative, r, BOOT, "BootstrapRequest with 97 excluded ids is tooLarge", "schema/README.md §10", EXCLUDE_LIMIT)
            .run(|ctx| Box::pin(boot_exclude_over(ctx))),
        def("DISC-2-016", Must, Negative, r, BOOT, "BootstrapRequest excluding a 33-byte id is malformed", "common.capnp conventions", ID_LEN)
            .run(|ctx| Box::pin(boot_exclude_bad(ctx))),
        def("DISC-10-017", Must, Limit, r, BOOT, "BootstrapRequest with 96 excluded ids (the limit) is served", "discovery.capnp BootstrapRequest", EXCLUDE_LIMIT)
            .run(|ctx| Box::pin(boot_exclude_at_cap(ctx))),
        def("DISC-12-300", Must, Negative, r, ADDR, "an identity that announced no listen address is never handed out (not found, not bootstrapped), not even at its observed address", "schema/README.md §12", VERIFIED)
            .run(|ctx| Box::pin(addr_no_observed(ctx))),
        def("DISC-12-301", Must, Negative, r, ADDR, "announced addresses nothing answers at (closed port, documentation address) are never handed out, whatever role was claimed", "schema/README.md §12", VERIFIED)
            .run(|ctx| Box::pin(addr_unverified(ctx))),
    ]
}
