//! `AddressRequest` answered from the map (§13.7) and the privacy rules of
//! §13.1 (no address for a peer that advertised none; an unspecified IP is
//! the IP the peer is seen at).

use std::net::{IpAddr, SocketAddr};

use distsoc_schema::wire_capnp;

use super::harness::{
    address_request_frame, doc_addr, hex8, map_frame, read_entries, read_worm_response, show,
    show_entries, worm_query_frame, worm_request_frame, Id, Tester, Worm,
};
use super::{refused, tri};
use crate::suite::ctx::{expect_code, CaseError, Ctx, HelloSpec, Outcome, MAX_REPLY_BYTES};
use crate::suite::model::Role;
use crate::suite::wire::code;

/// MESH-13.7-050.
pub(super) async fn depth3(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::connect(ctx, &[]).await?;
    let t = ctx.random_node_id();
    let reply = a.exchange(&address_request_frame(&[t], 3)).await;
    Ok(refused(
        ctx,
        &a,
        &reply,
        &["malformed"],
        "AddressRequest with depth 3",
    )
    .await)
}

/// MESH-13.7-051.
pub(super) async fn order(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let x = ctx.random_node_id();
    let a = Tester::connect(ctx, &[]).await?;
    let r = a
        .exchange(&map_frame(0, 0, 1, &[(x, vec![doc_addr(6001)])], &[], 0))
        .await;
    if let Err(e) = super::expect_ack(&r) {
        return Err(CaseError::Setup(format!(
            "the tester's map was not acknowledged: {e}"
        )));
    }
    let b = Tester::peer(ctx, &[doc_addr(6002)]).await?;
    let u = ctx.random_node_id();
    let anchor = ctx.role == Role::Anchor;
    let expected = if anchor {
        "AddressRequest depth 0 to an anchor for [unknown U, peer B (advertised 192.0.2.7:6002, which the anchor cannot verify), X (reported by peer A at its hop 1 at 192.0.2.7:6001)]: three entries in request order with those nodeIds; U not found without referral; B not found (an anchor hands out only verified addresses); X not found with referral = A"
    } else {
        "AddressRequest depth 0 for [unknown U, peer B (advertised 192.0.2.7:6002), X (reported by peer A at its hop 1 at 192.0.2.7:6001)]: three entries in request order with those nodeIds; U not found without referral; B found at exactly [192.0.2.7:6002]; X found at the reported [192.0.2.7:6001]"
    };
    // The map may take a moment to apply.
    let _ = tri!(
        super::map::entry_until(&a, x, |e| !e.referral.is_empty() || e.found).await,
        expected
    );
    let e = tri!(
        read_entries(&b.s.request(&address_request_frame(&[u, b.id, x], 0)).await),
        expected
    );
    let ok = e.len() == 3
        && e[0].node == u
        && !e[0].found
        && e[0].referral.is_empty()
        && e[1].node == b.id
        && (if anchor {
            !e[1].found
        } else {
            e[1].found && e[1].addrs == [doc_addr(6002)]
        })
        && e[2].node == x
        && (if anchor {
            !e[2].found && e[2].referral == a.id
        } else {
            e[2].found && e[2].addrs == [doc_addr(6001)]
        });
    Ok(Outcome::check(
        ok,
        expected,
        format!("{} (A = {})", show_entries(&e), hex8(&a.id)),
    ))
}

/// The listen addresses of the target's HelloResponse.
async fn advertised(ctx: &mut Ctx) -> Result<Vec<SocketAddr>, CaseError> {
    let (conn, _) = ctx.connect_pinned().await?;
    let reply = conn
        .exchange(
            &HelloSpec::default().frame(),
            MAX_REPLY_BYTES,
            ctx.timeouts.reply,
        )
        .await;
    let f = expect_code(&reply, code::HELLO_RESPONSE).map_err(CaseError::Setup)?;
    let reader = f.reader();
    let r: wire_capnp::hello_response::Reader<'_> = reader
        .get_root()
        .map_err(|e| CaseError::Setup(e.to_string()))?;
    let mut out = Vec::new();
    for a in r
        .get_listen_addresses()
        .map_err(|e| CaseError::Setup(e.to_string()))?
        .iter()
    {
        let ip = a.get_ip().map_err(|e| CaseError::Setup(e.to_string()))?;
        let ip = match ip.len() {
            4 => IpAddr::from([ip[0], ip[1], ip[2], ip[3]]),
            16 => {
                IpAddr::from(<[u8; 16]>::try_from(ip).map_err(|_| CaseError::Setup("ip".into()))?)
            }
            _ => continue,
        };
        out.push(SocketAddr::new(ip, a.get_port()));
    }
    Ok(out)
}

/// MESH-13.7-052.
pub(super) async fn itself(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let adv = advertised(ctx).await?;
    let a = Tester::connect(ctx, &[]).await?;
    let me: Id = ctx.target.node_id;
    let specified: Vec<SocketAddr> = adv
        .iter()
        .copied()
        .filter(|a| !a.ip().is_unspecified() && a.port() != 0)
        .collect();
    let expected = format!(
        "AddressRequest for the target's own NodeId: {} (it advertised [{}]); never an unspecified IP or port 0",
        if specified.is_empty() && adv.is_empty() {
            "not found".to_string()
        } else if specified.is_empty() {
            "found at its observed IP, or not found".to_string()
        } else {
            format!("found, with [{}] among the addresses", show(&specified))
        },
        show(&adv)
    );
    let e = tri!(
        read_entries(&a.s.request(&address_request_frame(&[me], 0)).await),
        expected
    );
    let Some(e) = e.first().filter(|e| e.node == me) else {
        return Ok(Outcome::fail(expected, show_entries(&e)));
    };
    let clean = e
        .addrs
        .iter()
        .all(|a| !a.ip().is_unspecified() && a.port() != 0);
    let ok = if adv.is_empty() {
        !e.found
    } else if specified.is_empty() {
        clean
    } else {
        e.found && clean && specified.iter().all(|s| e.addrs.contains(s))
    };
    Ok(Outcome::check(ok, expected, e.to_string()))
}

/// MESH-13.7-053.
pub(super) async fn unknown(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::connect(ctx, &[]).await?;
    let t = ctx.random_node_id();
    let expected = "AddressRequest (depth 0 and depth 2) for a NodeId nobody reported: one entry, that nodeId, found = false, no referral";
    let e0 = tri!(
        read_entries(&a.s.request(&address_request_frame(&[t], 0)).await),
        expected
    );
    let e2 = tri!(
        read_entries(&a.s.request(&address_request_frame(&[t], 2)).await),
        expected
    );
    let good = |e: &[super::harness::Entry]| {
        e.len() == 1 && e[0].node == t && !e[0].found && e[0].referral.is_empty()
    };
    Ok(Outcome::check(
        good(&e0) && good(&e2),
        expected,
        format!(
            "depth 0: {}; depth 2: {}",
            show_entries(&e0),
            show_entries(&e2)
        ),
    ))
}

/// MESH-13.7-054.
pub(super) async fn depth1(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let x = ctx.random_node_id();
    let mut a = Tester::connect(ctx, &[]).await?;
    a.knows(x, &[doc_addr(6003)]);
    let r = a
        .exchange(&map_frame(0, 0, 1, &[(x, vec![doc_addr(6003)])], &[], 0))
        .await;
    if let Err(e) = super::expect_ack(&r) {
        return Err(CaseError::Setup(format!(
            "the tester's map was not acknowledged: {e}"
        )));
    }
    let q = Tester::peer(ctx, &[]).await?;
    let anchor = ctx.role == Role::Anchor;
    let expected = if anchor {
        "X reported by peer A at its hop 1 at 192.0.2.7:6003; AddressRequest{[X], depth 1} from peer Q to an anchor: it asks A (AddressRequest with X, depth 0) and relays A's entry: found at [192.0.2.7:6003]"
    } else {
        "X reported by peer A at its hop 1 at 192.0.2.7:6003; AddressRequest{[X], depth 1} from peer Q: found at [192.0.2.7:6003] (the reported address, or A's relayed entry; any AddressRequest the target sends A has depth 0)"
    };
    let _ = tri!(
        super::map::entry_until(&q, x, |e| !e.referral.is_empty() || e.found).await,
        expected
    );
    a.clear();
    let e = tri!(
        read_entries(&q.s.request(&address_request_frame(&[x], 1)).await),
        expected
    );
    let asked: Vec<(u8, bool)> = a
        .received()
        .iter()
        .filter(|g| g.code == code::ADDRESS_REQUEST)
        .map(|g| {
            let depth0 = g.frame().ok().and_then(|f| {
                let reader = f.reader();
                let r: distsoc_schema::discovery_capnp::address_request::Reader<'_> =
                    reader.get_root().ok()?;
                Some(r.get_depth() == 0)
            });
            (g.code, depth0 == Some(true))
        })
        .collect();
    let ok = e.len() == 1
        && e[0].node == x
        && e[0].found
        && e[0].addrs == [doc_addr(6003)]
        && (!anchor || !asked.is_empty())
        && asked.iter().all(|(_, d0)| *d0);
    Ok(Outcome::check(
        ok,
        expected,
        format!(
            "{}; AddressRequests at A: {} (all depth 0: {})",
            show_entries(&e),
            asked.len(),
            asked.iter().all(|(_, d0)| *d0)
        ),
    ))
}

/// MESH-13.7-055.
pub(super) async fn over(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::connect(ctx, &[]).await?;
    let t: Vec<Id> = (0..65).map(|_| ctx.random32()).collect();
    let reply = a.exchange(&address_request_frame(&t, 0)).await;
    Ok(refused(
        ctx,
        &a,
        &reply,
        &["tooLarge"],
        "AddressRequest with 65 targets",
    )
    .await)
}

// ---- privacy ----------------------------------------------------------------------

/// MESH-13.1-060.
pub(super) async fn silent_peer(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = Tester::peer(ctx, &[]).await?;
    let q = Tester::peer(ctx, &[doc_addr(6010)]).await?;
    let expected = "a peer P that advertised no listen address: AddressRequest for P (depth 0 and 2) not found; WormQuery and WormRequest (ttl 0) for P: no hit";
    let e0 = tri!(
        read_entries(&q.s.request(&address_request_frame(&[p.id], 0)).await),
        expected
    );
    let e2 = tri!(
        read_entries(&q.s.request(&address_request_frame(&[p.id], 2)).await),
        expected
    );
    let mut id = [0u8; 16];
    id.copy_from_slice(&ctx.random32()[..16]);
    let wq = tri!(
        read_worm_response(&q.s.request(&worm_query_frame(&id, &[p.id])).await),
        expected
    );
    let w = Worm {
        id: ctx.random32()[..16].to_vec(),
        targets: vec![p.id],
        ttl: 0,
        originator: Some(q.id),
        visited: Vec::new(),
    };
    let wr = tri!(
        read_worm_response(&q.s.request(&worm_request_frame(&w)).await),
        expected
    );
    let not_found = |e: &[super::harness::Entry]| e.iter().all(|e| !e.found || e.addrs.is_empty());
    let ok = not_found(&e0)
        && not_found(&e2)
        && e0.iter().chain(&e2).all(|e| !e.found)
        && !wq.hits.iter().any(|h| h.target == p.id)
        && !wr.hits.iter().any(|h| h.target == p.id);
    Ok(Outcome::check(
        ok,
        expected,
        format!(
            "depth 0: {}; depth 2: {}; WormQuery: {wq}; WormRequest: {wr}",
            show_entries(&e0),
            show_entries(&e2)
        ),
    ))
}

/// MESH-13.1-061.
pub(super) async fn unspecified_ip(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let any: SocketAddr = if ctx.target.addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 6020))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 6020))
    };
    let p = Tester::peer(ctx, &[any]).await?;
    let seen =
        p.s.hello
            .observed
            .map(|a| a.ip())
            .or_else(|| p.s.conn.local_addr().map(|a| a.ip()))
            .ok_or_else(|| CaseError::Setup("cannot tell the tester's IP".into()))?;
    let want = SocketAddr::new(seen, 6020);
    let q = Tester::peer(ctx, &[]).await?;
    let anchor = ctx.role == Role::Anchor;
    let expected = if anchor {
        format!(
            "a peer advertising {any} (\"the IP you see me at, this port\"), seen at {seen}: an anchor answers found only at [{want}] and only once verified (nothing listens there, so: not found); never an unspecified IP"
        )
    } else {
        format!(
            "a peer advertising {any} (\"the IP you see me at, this port\"), seen at {seen}: AddressRequest for it found at [{want}], never at an unspecified IP"
        )
    };
    let e = tri!(
        read_entries(&q.s.request(&address_request_frame(&[p.id], 0)).await),
        expected
    );
    let ok = e.len() == 1
        && if anchor {
            !e[0].found || e[0].addrs == [want]
        } else {
            e[0].found && e[0].addrs == [want]
        };
    Ok(Outcome::check(ok, expected, show_entries(&e)))
}
