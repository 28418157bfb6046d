//! UNK: unknown fields, tokens and roles are ignored (schema/README.md §3).

use super::{def, refuse, served};
use crate::suite::ctx::{expect_code, CaseError, Ctx, HelloInfo, HelloSpec, Outcome};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::{self, code, lp, single, sp};

const IGNORE: &str = "Receivers **ignore unknown fields** (automatic in Cap'n Proto), ignore unknown capability tokens and unknown roles, and treat an unknown `ErrorCode` as `unspecified`.";
const UNION: &str =
    "An unknown union arm or enumerant in a field they must interpret is `malformed`.";

/// `frame` (single segment, root struct first) with `extra_data` more data
/// words and `extra_ptrs` more pointers (to a text, a data and a struct,
/// cycling) on its root.
fn widen(frame: &[u8], code: u8, extra_data: usize, extra_ptrs: usize) -> Vec<u8> {
    let Some(words) = wire::single_segment_words(frame) else {
        return frame.to_vec();
    };
    let Some((d, p, rest)) = wire::split_root(&words) else {
        return frame.to_vec();
    };
    let data: Vec<u64> = (0..extra_data)
        .map(|i| 0x5a5a_0000_0000_0000 | i as u64 | 0xff00)
        .collect();
    let mut w = wire::widen_root(&d, &p, &rest, &data, extra_ptrs);
    // Targets of the extra pointers, appended: "future" (text), 3 bytes of
    // data, a struct of 1 data word.
    let mut tail = Vec::new();
    let mut targets = Vec::new();
    for j in 0..extra_ptrs {
        targets.push(tail.len());
        match j % 3 {
            0 => tail.push(u64::from_le_bytes(*b"future\0\0")),
            1 => tail.push(0x0003_0201),
            _ => tail.push(0x1234),
        }
    }
    let tail_start = w.len();
    for (j, &target) in targets.iter().enumerate() {
        let idx = 1 + d.len() + data.len() + p.len() + j;
        let off = (tail_start + target - (idx + 1)) as i32;
        w[idx] = match j % 3 {
            0 => lp(off, 2, 7),
            1 => lp(off, 2, 3),
            _ => sp(off, 1, 0),
        };
    }
    w.extend(tail);
    single(code, &w)
}

async fn hello_ok(ctx: &mut Ctx, bytes: &[u8], what: &str) -> Result<Outcome, CaseError> {
    let (conn, _) = ctx.connect_pinned().await?;
    let reply = conn.exchange(bytes, 1 << 20, ctx.timeouts.reply).await;
    let expected = format!("{what}: HelloResponse");
    Ok(
        match expect_code(&reply, code::HELLO_RESPONSE).and_then(|f| HelloInfo::read(&f)) {
            Ok(h) => Outcome::pass(expected, format!("HelloResponse version {}", h.version)),
            Err(e) => Outcome::fail(expected, e),
        },
    )
}

/// The UNK cases.
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Negative, Positive};
    use Level::Must;
    vec![
        def("UNK-3-001", Must, Positive, Role::Any, None, "a request with 3 extra data words beyond the schema is served", "schema/README.md §3", IGNORE)
            .run(|ctx| Box::pin(async move {
                let p = ctx.probe();
                served(ctx, &widen(&p.frame, p.code, 3, 0), p.response, p.name).await
            })),
        def("UNK-3-002", Must, Positive, Role::Any, None, "a request with 3 extra pointer fields (text, data, struct) is served", "schema/README.md §3", IGNORE)
            .run(|ctx| Box::pin(async move {
                let p = ctx.probe();
                served(ctx, &widen(&p.frame, p.code, 0, 3), p.response, p.name).await
            })),
        def("UNK-3-003", Must, Positive, Role::Any, None, "a request with extra data words and extra pointers is served", "schema/README.md §3", IGNORE)
            .run(|ctx| Box::pin(async move {
                let p = ctx.probe();
                served(ctx, &widen(&p.frame, p.code, 2, 6), p.response, p.name).await
            })),
        def("UNK-3-004", Must, Positive, Role::Any, None, "Hello with unknown capability tokens is answered", "schema/README.md §3", IGNORE)
            .run(|ctx| Box::pin(async move {
                let bytes = HelloSpec { capabilities: vec!["future-thing/7".into(), "x".repeat(64), "mailbox/99".into()], ..HelloSpec::default() }.frame();
                hello_ok(ctx, &bytes, "Hello with capabilities future-thing/7, 64 × 'x', mailbox/99").await
            })),
        def("UNK-3-005", Must, Positive, Role::Any, None, "Hello with an unknown role enumerant is answered", "schema/README.md §3", IGNORE)
            .run(|ctx| Box::pin(async move {
                let bytes = HelloSpec { roles: vec![0, 7], ..HelloSpec::default() }.frame();
                hello_ok(ctx, &bytes, "Hello with roles [node, 7]").await
            })),
        def("UNK-3-006", Must, Positive, Role::Any, None, "Hello with extra data words and pointer fields is answered", "schema/README.md §3", IGNORE)
            .run(|ctx| Box::pin(async move {
                let bytes = widen(&HelloSpec::default().frame(), code::HELLO, 2, 3);
                hello_ok(ctx, &bytes, "Hello with 2 extra data words and 3 extra pointers").await
            })),
        def("UNK-3-007", Must, Positive, Role::Any, Some("pull-sync/1"), "a request whose data section is shorter than the schema's reads the missing fields as defaults", "schema/README.md §3", "The schema evolves only in the ways Cap'n Proto keeps compatible [...] new fields take the next ordinal (a message from an older sender lacks them and reads as defaults).")
            .run(|ctx| Box::pin(async move {
                let f = crate::suite::ctx::req::pull_sync(2, &[], 1);
                let bytes = match wire::single_segment_words(&f).and_then(|w| wire::split_root(&w)) {
                    Some((d, p, rest)) => {
                        let mut w = vec![sp(0, 1, p.len() as u16)];
                        w.extend_from_slice(&d[..1.min(d.len())]);
                        w.extend_from_slice(&p);
                        w.extend_from_slice(&rest);
                        single(code::PULL_SYNC_REQUEST, &w)
                    }
                    None => f,
                };
                served(ctx, &bytes, code::PULL_SYNC_RESPONSE, "PullSyncRequest with 1 data word (sinceSeq absent)").await
            })),
        def("UNK-3-008", Must, Negative, Role::Node, Some("files/1"), "FileRequest with an unknown union arm is malformed", "schema/README.md §3", UNION)
            .run(|ctx| Box::pin(async move {
                let f = crate::suite::ctx::req::file_post(2, &ctx.random32());
                // The union discriminant is the second 16-bit slot of data word 0.
                let mut bytes = f.clone();
                if bytes.len() > 20 {
                    bytes[19..21].copy_from_slice(&9u16.to_le_bytes());
                }
                refuse(ctx, &bytes, &["malformed"]).await
            })),
    ]
}
