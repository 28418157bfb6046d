//! `distsoc demo`: a walk-through of the protocol core, entirely local.
//!
//! Three people (Alice, Bob, Carol) exchange posts the way nodes will: every
//! object is signed, put in a real frame, decoded by the receiving side's frame
//! decoder and message validator, and checked with the same functions the node
//! and anchor use. Nothing here is mocked; nothing touches the network.

use anyhow::{anyhow, Context};
use distsoc_net::now_ms;
use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::error::{ErrorCode, WireCode};
use distsoc_protocol::fof::VouchKey;
use distsoc_protocol::frame::decode_frame;
use distsoc_protocol::ids::{NodeId, PostingId};
use distsoc_protocol::limits::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use distsoc_protocol::messages::content::{
    open_post, seal_post, CommentBody, CommentVerdict, InlineComment, Post, PostBody, PostHeader,
    PostVisibility, SyncPost,
};
use distsoc_protocol::messages::social::PullSyncResponse;
use distsoc_protocol::messages::wire::{negotiate, Hello, Limits};
use distsoc_protocol::messages::Message;
use distsoc_protocol::sign::SigningKey;
use distsoc_protocol::sync::{Audience, PullFilter};

struct Person {
    name: &'static str,
    key: SigningKey,
}

impl Person {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            key: SigningKey::generate(&mut rand_core::OsRng),
        }
    }
    fn id(&self) -> PostingId {
        PostingId(self.key.public())
    }
    fn node(&self) -> NodeId {
        NodeId(self.key.public())
    }
    fn seed(&self) -> [u8; 32] {
        *self.key.seed()
    }
}

fn heading(n: u32, title: &str) {
    outln!("\n── {n}. {title} ──");
}

fn show_frame(label: &str, frame: &[u8]) {
    let head: String = frame
        .iter()
        .take(13)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    outln!("   {label}: {} bytes  [{head} …]", frame.len());
    if frame.len() >= 9 {
        let segs = u32::from_le_bytes([frame[1], frame[2], frame[3], frame[4]]) + 1;
        let words = u32::from_le_bytes([frame[5], frame[6], frame[7], frame[8]]);
        outln!(
            "      code 0x{:02x} | segments-1 = {} | segment 0 = {words} words",
            frame[0],
            segs - 1
        );
    }
}

/// Sends a message through the wire format and returns what the receiver decoded.
fn transmit(msg: Message) -> anyhow::Result<(Vec<u8>, Message)> {
    let bytes = msg.to_frame().map_err(|e| anyhow!("encode: {e}"))?;
    let frame = decode_frame(&bytes).map_err(|e| anyhow!("decode: {e}"))?;
    let received = Message::from_frame(&frame).map_err(|e| anyhow!("validate: {e}"))?;
    Ok((bytes, received))
}

pub(crate) fn run() -> anyhow::Result<()> {
    outln!(
        "distsoc protocol core walk-through (protocol version {PROTOCOL_VERSION}, ALPN distsoc/2)"
    );
    let alice = Person::new("Alice");
    let bob = Person::new("Bob");
    let carol = Person::new("Carol");

    heading(1, "identities");
    for p in [&alice, &bob, &carol] {
        outln!("   {:<6} NodeId {}", p.name, p.node());
    }
    outln!("   (pre-split identities: each posting id equals the NodeId)");

    heading(2, "connection setup: Hello and version negotiation");
    let hello = Hello {
        version: PROTOCOL_VERSION,
        min_version: MIN_PROTOCOL_VERSION,
        max_version: PROTOCOL_VERSION,
        roles: vec![],
        capabilities: vec!["pull-sync/1".into(), "files/1".into()],
        limits: Limits::default(),
        listen_addresses: vec![],
        agent: "distsoc-demo/0.1".into(),
        time_ms: now_ms(),
    };
    let (bytes, _) = transmit(hello.into())?;
    show_frame("Hello", &bytes);
    outln!(
        "   peer speaking 2..=5 → selected version {:?}",
        negotiate(2, 5)
    );
    outln!(
        "   peer speaking 3..=5 → {:?} (answer Error(unsupportedVersion), close)",
        negotiate(3, 5)
    );

    heading(3, "Alice publishes a public post");
    let post = Post::new_public(
        alice.id(),
        now_ms(),
        "Hello, distsoc! No server was involved.",
        vec![],
    )
    .sign(&alice.key)
    .map_err(|e| anyhow!("{e}"))?;
    let public_id = post.post_id();
    outln!(
        "   PostId = BLAKE3(canonical Post, {} bytes) = {public_id}",
        post.bytes().len()
    );
    let public = SyncPost::new(&alice.key, post, PostVisibility::Public, None);

    heading(4, "Alice seals a post for Bob only (envelope encryption)");
    let body = PostBody {
        text: "Bob — dinner on Friday? (only you can read this)".into(),
        attachments: vec![],
        rotation: None,
        archive: None,
        group: None,
    };
    let (sealed, visibility) = seal_post(
        &alice.key,
        now_ms(),
        &body,
        &[bob.id(), alice.id()],
        &mut rand_core::OsRng,
    )
    .map_err(|e| anyhow!("{e}"))?;
    let dm_id = sealed.post_id();
    outln!(
        "   PostId {} — {} wrapped keys (80 bytes each), ciphertext only on the wire",
        dm_id.short(),
        visibility.recipients().len()
    );
    let dm = SyncPost::new(&alice.key, sealed, visibility, None);

    heading(5, "Bob pulls from Alice's node (should_send_post filter)");
    for (who, follows) in [(&bob, vec![alice.id()]), (&carol, vec![alice.id()])] {
        let mut ids: Vec<[u8; 32]> = follows.iter().map(|p| p.0).collect();
        ids.push(who.id().0);
        let filter = PullFilter::new(who.node(), ids);
        let mut sent = Vec::new();
        for p in [&public, &dm] {
            let recips: Vec<PostingId> = p
                .visibility
                .recipients()
                .iter()
                .map(|w| PostingId(w.recipient))
                .collect();
            let audience = if p.visibility.is_encrypted() {
                Audience::Encrypted(&recips)
            } else {
                Audience::Public
            };
            if let Some(reason) = filter.decide(&p.post.body().author, audience) {
                outln!(
                    "   to {:<6} send {} ({reason:?})",
                    who.name,
                    p.post_id().short()
                );
                sent.push(p.clone());
            } else {
                outln!(
                    "   to {:<6} skip {} (encrypted, not a recipient)",
                    who.name,
                    p.post_id().short()
                );
            }
        }
        let response = PullSyncResponse {
            version: PROTOCOL_VERSION,
            posts: sent,
            next_seq: 2,
            more: false,
            deletes: vec![],
            profiles: vec![],
        };
        let (bytes, received) = transmit(response.into())?;
        show_frame("PullSyncResponse", &bytes);
        let r = PullSyncResponse::try_from(received)
            .map_err(|other| anyhow!("decoded as {}, not PullSyncResponse", other.code()))?;
        for p in &r.posts {
            let id = p.validate(Some(p.post_id())).map_err(|e| anyhow!("{e}"))?;
            match open_post(&who.seed(), &p.post, &p.visibility) {
                Ok(b) => outln!("   {} reads {}: {:?}", who.name, id.short(), b.text),
                Err(e) => outln!("   {} cannot read {}: {e}", who.name, id.short()),
            }
        }
    }
    match open_post(&carol.seed(), &dm.post, &dm.visibility) {
        Err(e) => outln!("   even holding the ciphertext, Carol gets: {e}"),
        Ok(_) => return Err(anyhow!("Carol must not read Bob's post")),
    }

    heading(6, "hostile input gets a typed error");
    let good = Message::from(distsoc_protocol::messages::social::PushPost {
        version: PROTOCOL_VERSION,
        post: public.clone(),
        recent: None,
    })
    .to_frame()
    .map_err(|e| anyhow!("{e}"))?;
    let text_at = good
        .windows(5)
        .position(|w| w == b"Hello")
        .context("post text not found in frame")?;
    let mut tampered = good.clone();
    tampered[text_at] ^= 0x20;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown message code 0x99", {
            let mut f = good.clone();
            f[0] = 0x99;
            f
        }),
        ("truncated frame", good[..good.len() / 2].to_vec()),
        ("segment table claiming 64 MiB", {
            let mut f = vec![MessageCode::PushPost.as_u8(), 0, 0, 0, 0];
            f.extend_from_slice(&(8u32 << 20).to_le_bytes());
            f
        }),
        ("trailing garbage after the frame", {
            let mut f = good.clone();
            f.extend_from_slice(&[0; 8]);
            f
        }),
        ("version 9 message", {
            let m = Message::from(distsoc_protocol::messages::social::PushPost {
                version: 9,
                post: public.clone(),
                recent: None,
            });
            m.to_frame().map_err(|e| anyhow!("{e}"))?
        }),
    ];
    cases.push(("one bit of the post text flipped", tampered));
    for (what, bytes) in cases {
        // What a receiving stream does: framing, the message, the post.
        let message = distsoc_protocol::frame::decode_frame(&bytes)
            .map_err(|e| e.error_code())
            .and_then(|f| Message::from_frame(&f).map_err(|e| e.error_code()));
        let verdict = match message {
            Err(code) => code,
            Ok(Message::PushPost(p)) => match p.post.validate(None) {
                Ok(_) => return Err(anyhow!("{what} was accepted")),
                Err(e) => e.error_code(),
            },
            Ok(_) => ErrorCode::Internal,
        };
        outln!("   {what:<36} → Error({verdict})");
    }

    heading(7, "friend-of-friend gated comments");
    let v = VouchKey::generate(&mut rand_core::OsRng);
    outln!("   Alice hands vouch key V to Bob (VouchGrant); Carol has none");
    let per_post = SigningKey::generate(&mut rand_core::OsRng);
    let fof_post = Post::new_public(
        alice.id(),
        now_ms(),
        "Comments: friends of friends only",
        vec![],
    )
    .sign(&alice.key)
    .map_err(|e| anyhow!("{e}"))?;
    let header = PostHeader::new_fof(
        fof_post.post_id(),
        alice.id(),
        per_post.public(),
        std::slice::from_ref(&v),
        &per_post.seed(),
        now_ms(),
    )
    .map_err(|e| anyhow!("{e}"))?;
    let comment_body = |who: &Person, text: &str| CommentBody {
        parent_post_id: fof_post.post_id(),
        author: who.id(),
        created_at_ms: now_ms(),
        text: text.into(),
        reply_to: None,
    };
    let (idx, seed) = header
        .open_fof(std::slice::from_ref(&v))
        .context("Bob's vouch key opens a slot")?;
    outln!(
        "   Bob's key opens wrap slot {idx}; Carol's keyring opens none: {}",
        header.open_fof(&[]).is_none()
    );
    let bob_comment = InlineComment::new(
        &bob.key,
        comment_body(&bob, "Count me in"),
        Some((&seed, &v, &per_post.public())),
    )
    .map_err(|e| anyhow!("{e}"))?;
    let carol_comment = InlineComment::new(&carol.key, comment_body(&carol, "Me too?"), None)
        .map_err(|e| anyhow!("{e}"))?;
    for (who, c) in [("Bob", &bob_comment), ("Carol", &carol_comment)] {
        let verdict = c.check(Some(&header));
        let shown = if verdict == CommentVerdict::Accepted {
            "shown"
        } else {
            "filtered at render"
        };
        outln!("   {who:<6} comment → {verdict:?} ({shown})");
    }

    outln!("\nAll of the above ran through the same frame decoder, validators and crypto");
    outln!("that nodes and anchors use. Try `distsoc inspect` on your own bytes\n(a file, - for stdin, or --hex).");
    Ok(())
}
