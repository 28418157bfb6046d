#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
use distsoc_protocol::codec;
use distsoc_protocol::ids::*;
use distsoc_protocol::messages::content::*;
use distsoc_protocol::messages::common::VisibilityHint;
use distsoc_schema::content_capnp;

fn w(b: &[u8]) -> String {
    b.chunks(8).map(hex::encode).collect::<Vec<_>>().join(" ")
}
fn sp(offset: i32, data: u16, ptrs: u16) -> u64 {
    u64::from((offset as u32) << 2) | (u64::from(data) << 32) | (u64::from(ptrs) << 48)
}
fn lp(offset: i32, size: u8, count: u32) -> u64 {
    (u64::from((offset as u32) << 2) | 1) | (u64::from(size) << 32) | (u64::from(count) << 35)
}
fn fp(pad: u32, double: bool, segment: u32) -> u64 {
    (u64::from(pad) << 3) | (u64::from(double) << 2) | 2 | (u64::from(segment) << 32)
}
fn bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[test]
fn exp() {
    let e = PostBody { text: String::new(), attachments: vec![] };
    println!("empty body: {}", w(&codec::canonical_of(&e)));
    println!("public vis: {}", w(&codec::canonical_of(&PostVisibility::Public)));
    let rp = |hint| RecentPost { post_id: PostId([1; 32]), created_at_ms: 5, hint };
    let l = AuthorRecentPosts { author: PostingId([2;32]), seq: 0, updated_at_ms: 0, posts: vec![rp(VisibilityHint::Public), rp(VisibilityHint::Public)] };
    println!("recent all public: {}", w(&codec::canonical_of(&l)));
    let l2 = AuthorRecentPosts { posts: vec![rp(VisibilityHint::Public), rp(VisibilityHint::Encrypted)], ..l.clone() };
    println!("recent mixed: {}", w(&codec::canonical_of(&l2)));
    // empty Data via schema builder
    let mut m = capnp::message::Builder::new_default();
    {
        let mut p = m.init_root::<content_capnp::heart_body::Builder<'_>>();
        p.set_post_id(&[]);
        p.set_reactor(&[7; 8]);
    }
    let c = distsoc_protocol::canonical::canonical_bytes_of_builder(&m).unwrap();
    println!("heart empty postId: {}", w(&c));
    // text variants: "abc" with padding garbage
    let cb = CommentBody { parent_post_id: PostId([1;32]), author: PostingId([2;32]), created_at_ms: 0, text: "abc".into(), reply_to: None };
    let mut c = codec::canonical_of(&cb);
    println!("comment: {}", w(&c));
    let pos = c.windows(4).position(|x| x == b"abc\0").unwrap();
    c[pos + 4] = 1;
    println!("padding garbage: {:?}", codec::from_canonical::<CommentBody>("body", &c, 1 << 20));
    // test candidates
    let cases: Vec<(&str, Vec<u64>)> = vec![
        ("empty struct offset -1", vec![sp(-1, 0, 0)]),
        ("empty struct offset 0", vec![sp(0, 0, 0)]),
        ("empty struct offset 5?", vec![sp(5, 0, 0)]),
        ("zero len list offset 0", vec![sp(0,0,1), lp(0,2,0)]),
        ("zero len list offset -1", vec![sp(0,0,1), lp(-1,2,0)]),
        ("zero len list offset -2", vec![sp(0,0,1), lp(-2,2,0)]),
        ("text no NUL", vec![sp(0,0,1), lp(0,2,3), 0x636261]),
        ("far same seg", vec![fp(2,false,0), 0x55, sp(-2,1,0)]),
        ("far seg1", vec![fp(0,false,1), sp(0,1,0), 0x55]),
        ("list root", vec![lp(0,2,3), 0x636261]),
    ];
    for (n, ws) in cases {
        let b = bytes(&ws);
        println!("{n}: canon={:?} heart={:?} pv={:?}", distsoc_protocol::canonical::read_canonical(&b, 1<<20).err(), codec::from_canonical::<HeartBody>("heart", &b, 1<<20).err(), codec::from_canonical::<PostVisibility>("v", &b, 1<<20).err());
    }
    // comment with no-NUL text
    let ws = vec![sp(0,1,3), 5, lp(2,2,32), lp(5,2,32), lp(8,2,3), 0x0101010101010101,0x0101010101010101,0x0101010101010101,0x0101010101010101, 0x0202020202020202,0x0202020202020202,0x0202020202020202,0x0202020202020202, 0x636261];
    println!("comment no nul: {:?}", codec::from_canonical::<CommentBody>("body", &bytes(&ws), 1<<20));
    let mut ws2 = ws.clone(); ws2[4] = lp(8,2,0); ws2.pop();
    println!("comment zero-len text: {:?}", codec::from_canonical::<CommentBody>("body", &bytes(&ws2), 1<<20));
}
