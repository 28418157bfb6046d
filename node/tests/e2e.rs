//! Real nodes on 127.0.0.1 (real quinn endpoints, real SQLite files in temp
//! directories) exercising the node's features end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;

use distsoc_node::compose::VisibilityIntent;
use distsoc_node::node::{Node, Revocation, Running};
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{ConnectString, PostingId};
use distsoc_protocol::messages::content::SyncPost;
use distsoc_protocol::messages::social::PushPost;
use distsoc_protocol::messages::Message;
use tempfile::TempDir;

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

struct TestNode {
    _dir: TempDir,
    node: Node,
    running: Running,
}

impl TestNode {
    async fn new() -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::init(dir.path(), None).unwrap();
        let running = node.start(Some(LOOPBACK)).await.unwrap();
        TestNode {
            _dir: dir,
            node,
            running,
        }
    }

    fn id(&self) -> PostingId {
        PostingId(self.node.node_id().0)
    }

    fn connect_string(&self) -> ConnectString {
        self.running.connect_string().unwrap().parse().unwrap()
    }

    /// Connects to `other` and pulls from it.
    async fn pull_from(&self, other: &TestNode) -> distsoc_node::node::SyncReport {
        let peer = self.running.connect(&other.connect_string()).await.unwrap();
        self.running.sync_with(&peer).await.unwrap()
    }

    fn texts(&self) -> Vec<Option<String>> {
        self.node
            .feed(100)
            .unwrap()
            .into_iter()
            .map(|i| i.text)
            .collect()
    }

    fn holds(&self, post: &SyncPost) -> bool {
        self.node
            .store()
            .get_post(post.post_id())
            .unwrap()
            .is_some()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_posts_profiles_and_follow_pull() {
    let (a, b, c) = (
        TestNode::new().await,
        TestNode::new().await,
        TestNode::new().await,
    );
    a.node
        .set_profile("Alice".into(), "bio".into(), vec![c.node.node_id()])
        .unwrap();
    let p = a
        .node
        .post("hello world".into(), vec![], &VisibilityIntent::Public)
        .unwrap();

    // B follows A: gets the post and A's profile (with its anchors list).
    b.node.store().follow(a.id(), 1).unwrap();
    let report = b.pull_from(&a).await;
    assert_eq!(report.new_posts, 1);
    assert!(b.holds(&p));
    let profile = b
        .node
        .store()
        .get_profile(a.id())
        .unwrap()
        .expect("profile pulled");
    assert_eq!(profile.body().display_name, "Alice");
    assert_eq!(profile.body().anchors, vec![c.node.node_id()]);
    assert_eq!(
        b.node.feed(10).unwrap()[0].author_name.as_deref(),
        Some("Alice")
    );

    // C does not follow A: nothing. A second pull from B is incremental.
    assert_eq!(c.pull_from(&a).await.new_posts, 0);
    assert!(!c.holds(&p));
    assert_eq!(b.pull_from(&a).await.new_posts, 0);

    // Unfollow: new posts no longer come.
    b.node.store().unfollow(a.id()).unwrap();
    let p2 = a
        .node
        .post("second".into(), vec![], &VisibilityIntent::Public)
        .unwrap();
    b.pull_from(&a).await;
    assert!(!b.holds(&p2));

    // Relayed: C follows A and pulls A's post from B, who holds it.
    c.node.store().follow(a.id(), 1).unwrap();
    assert_eq!(c.pull_from(&b).await.new_posts, 1);
    assert!(c.holds(&p));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_posts_reach_only_recipients() {
    let (a, b, c) = (
        TestNode::new().await,
        TestNode::new().await,
        TestNode::new().await,
    );
    a.node.store().create_circle("close", 1).unwrap();
    a.node
        .store()
        .add_circle_member("close", b.id(), 1)
        .unwrap();
    let circle = a
        .node
        .post(
            "circle only".into(),
            vec![],
            &VisibilityIntent::Circle("close".into()),
        )
        .unwrap();
    // Both follow A; only B is a recipient.
    b.node.store().follow(a.id(), 1).unwrap();
    c.node.store().follow(a.id(), 1).unwrap();
    b.pull_from(&a).await;
    c.pull_from(&a).await;
    assert!(b.holds(&circle));
    assert_eq!(b.texts(), vec![Some("circle only".into())]);
    assert!(
        !c.holds(&circle),
        "a non-recipient is not even sent the ciphertext"
    );
    // Given the ciphertext anyway, C cannot read it.
    c.node.store().insert_post(&circle, 1).unwrap();
    assert_eq!(c.texts(), vec![None]);

    // A DM from an author C does not follow is found by recipient match.
    let dm = b
        .node
        .post(
            "hi C".into(),
            vec![],
            &VisibilityIntent::Direct(vec![c.id()]),
        )
        .unwrap();
    assert!(!c.node.store().is_following(b.id()).unwrap());
    c.pull_from(&b).await;
    assert!(c.holds(&dm));
    assert!(c.texts().contains(&Some("hi C".into())));
    // Friends = follows, resolved at creation.
    a.node.store().follow(b.id(), 1).unwrap();
    let friends = a
        .node
        .post("friends".into(), vec![], &VisibilityIntent::Friends)
        .unwrap();
    b.pull_from(&a).await;
    c.pull_from(&a).await;
    assert!(b.holds(&friends) && !c.holds(&friends));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_member_loses_access() {
    let (a, b, c) = (
        TestNode::new().await,
        TestNode::new().await,
        TestNode::new().await,
    );
    a.node.store().create_circle("team", 1).unwrap();
    for m in [b.id(), c.id()] {
        a.node.store().add_circle_member("team", m, 1).unwrap();
    }
    b.node.store().follow(a.id(), 1).unwrap();
    c.node.store().follow(a.id(), 1).unwrap();

    // Re-encrypt: C already holds the post; after revocation C's node honours
    // the author's delete, never gets the replacement; B reads the new copy.
    let old = a
        .node
        .post(
            "plan".into(),
            vec![],
            &VisibilityIntent::Circle("team".into()),
        )
        .unwrap();
    b.pull_from(&a).await;
    c.pull_from(&a).await;
    assert!(c.holds(&old) && b.holds(&old));
    assert_eq!(
        a.node
            .remove_from_circle("team", c.id(), Some(Revocation::Reencrypt))
            .unwrap(),
        1
    );
    b.pull_from(&a).await;
    c.pull_from(&a).await;
    assert!(!c.holds(&old), "author delete honoured");
    assert!(!b.holds(&old));
    assert_eq!(c.texts(), Vec::<Option<String>>::new());
    assert_eq!(b.texts(), vec![Some("plan".into())]);

    // Sync access list (re-wrap) for a post C never fetched: C never gets it.
    a.node.store().add_circle_member("team", c.id(), 2).unwrap();
    let second = a
        .node
        .post(
            "later".into(),
            vec![],
            &VisibilityIntent::Circle("team".into()),
        )
        .unwrap();
    assert_eq!(
        a.node
            .remove_from_circle("team", c.id(), Some(Revocation::Rewrap))
            .unwrap(),
        1
    );
    c.pull_from(&a).await;
    b.pull_from(&a).await;
    assert!(!c.holds(&second));
    assert!(b.texts().contains(&Some("later".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_everything_and_bootstrap_from_anchors_json() {
    let a = TestNode::new().await;
    let dir = tempfile::tempdir().unwrap();
    let b = Node::init(dir.path(), None).unwrap();
    b.set_profile("Bob".into(), String::new(), vec![]).unwrap();
    b.store().follow(PostingId(a.node.node_id().0), 1).unwrap();
    b.store().create_circle("c", 1).unwrap();
    let own = b
        .post("mine".into(), vec![], &VisibilityIntent::Public)
        .unwrap();
    a.node
        .post("from a".into(), vec![], &VisibilityIntent::Public)
        .unwrap();
    // anchors.json shipped in the data dir: sync_all finds A through it.
    std::fs::write(
        dir.path().join("anchors.json"),
        format!("[\"{}\"]", a.connect_string()),
    )
    .unwrap();
    {
        let running = b.start(Some(LOOPBACK)).await.unwrap();
        let results = running.sync_all().await;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].1.as_ref().unwrap().new_posts, 1);
        running.transport().close().await;
    }
    drop(b);
    let b = Node::open(dir.path()).unwrap();
    let texts: Vec<_> = b
        .feed(10)
        .unwrap()
        .into_iter()
        .filter_map(|i| i.text)
        .collect();
    assert!(texts.contains(&"mine".to_string()) && texts.contains(&"from a".to_string()));
    assert!(b.store().get_post(own.post_id()).unwrap().is_some());
    assert_eq!(
        b.store()
            .get_profile(PostingId(b.node_id().0))
            .unwrap()
            .unwrap()
            .body()
            .display_name,
        "Bob"
    );
    assert!(b
        .store()
        .is_following(PostingId(a.node.node_id().0))
        .unwrap());
    assert_eq!(b.store().circles().unwrap().len(), 1);
    assert_eq!(b.store().peers(10).unwrap()[0].node_id, a.node.node_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pin_refused_and_hostile_pushes_rejected() {
    let (a, b, c) = (
        TestNode::new().await,
        TestNode::new().await,
        TestNode::new().await,
    );
    // Connecting to A's address while pinning C's key fails.
    let mut wrong = a.connect_string();
    wrong.node_id = c.node.node_id();
    assert!(b.running.connect(&wrong).await.is_err());

    // B follows A? No: A follows B, and B pushes posts to A.
    a.node.store().follow(b.id(), 1).unwrap();
    let peer = b.running.connect(&a.connect_string()).await.unwrap();
    let good = b
        .node
        .post("ok".into(), vec![], &VisibilityIntent::Public)
        .unwrap();

    // A post whose signature does not match its bytes.
    let mut frame = Message::from(PushPost {
        version: 2,
        post: good.clone(),
        recent: None,
    })
    .to_frame()
    .unwrap();
    let at = frame.windows(2).position(|w| w == b"ok").unwrap();
    frame[at] ^= 1;
    let reply = peer.raw_exchange(&frame).await.unwrap();
    assert_error(&reply, ErrorCode::BadSignature);
    // Garbage, unknown code, encrypted push: typed errors.
    assert_error(
        &peer.raw_exchange(b"\x42garbage!").await.unwrap(),
        ErrorCode::Malformed,
    );
    assert_error(
        &peer
            .raw_exchange(&[0x99, 0, 0, 0, 0, 0, 0, 0, 0])
            .await
            .unwrap(),
        ErrorCode::UnknownMessage,
    );
    let dm = b
        .node
        .post(
            "secret".into(),
            vec![],
            &VisibilityIntent::Direct(vec![a.id()]),
        )
        .unwrap();
    let err = peer
        .push_acked(PushPost {
            version: 2,
            post: dm,
            recent: None,
        })
        .await;
    assert!(format!("{err:?}").contains("Unauthorized"), "{err:?}");
    // The connection still serves: the good post is accepted.
    peer.push_acked(PushPost {
        version: 2,
        post: good.clone(),
        recent: None,
    })
    .await
    .unwrap();
    assert!(a.holds(&good));
}

fn assert_error(reply: &[u8], code: ErrorCode) {
    let frame = distsoc_protocol::frame::decode_frame(reply).unwrap();
    match Message::from_frame(&frame).unwrap() {
        Message::Error(e) => assert_eq!(e.code, code, "{}", e.message),
        other => panic!("expected Error({code}), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_request_approve_and_push() {
    let (a, b) = (TestNode::new().await, TestNode::new().await);
    b.running
        .request_audience(&a.connect_string(), a.id(), "let me in".into())
        .await
        .unwrap();
    let pending = a.node.store().audience_requests(a.id()).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].body().message, "let me in");
    assert!(a.node.approve_audience(b.id()).unwrap());
    assert!(a
        .running
        .send_audience_decision(
            b.id(),
            distsoc_protocol::messages::social::AudienceDecision::Approved
        )
        .await
        .unwrap());
    assert!(
        a.node.dir().join("anchors.json").exists(),
        "init ships anchors.json"
    );
    // A posts; the running A pushes to B over the live connection, no pull.
    let p = a
        .node
        .post("pushed".into(), vec![], &VisibilityIntent::Public)
        .unwrap();
    assert_eq!(a.running.push_to_audience(&p).await.unwrap(), 1);
    assert!(b.holds(&p));
    // Encrypted posts are never pushed.
    let dm = a
        .node
        .post("dm".into(), vec![], &VisibilityIntent::Direct(vec![b.id()]))
        .unwrap();
    assert_eq!(a.running.push_to_audience(&dm).await.unwrap(), 0);
    assert!(!b.holds(&dm));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_travel_as_blobs() {
    let (a, b) = (TestNode::new().await, TestNode::new().await);
    let image = vec![7u8; 200 * 1024];
    let p = a
        .node
        .post(
            "photo".into(),
            vec![(image.clone(), "image/png".into(), Some("x.png".into()))],
            &VisibilityIntent::Public,
        )
        .unwrap();
    b.node.store().follow(a.id(), 1).unwrap();
    let report = b.pull_from(&a).await;
    assert_eq!((report.new_posts, report.blobs), (1, 1));
    let blob_id = Node::readable_attachments(&p, &a.node.reading_keys().unwrap())[0].blob_id;
    assert_eq!(b.node.store().get_blob(blob_id).unwrap().unwrap(), image);
    // Over 256 KiB is refused at the author.
    assert!(a
        .node
        .post(
            "big".into(),
            vec![(vec![0; 256 * 1024 + 1], "image/png".into(), None)],
            &VisibilityIntent::Public
        )
        .is_err());
}

/// A peer that answers every FileRequest with the same (other) post.
struct Liar(SyncPost);

impl distsoc_net::transport::Handler for Liar {
    fn handle<'a>(
        &'a self,
        _ctx: distsoc_net::transport::RequestCtx,
        _msg: Message,
    ) -> distsoc_net::transport::HandlerFuture<'a> {
        let post = self.0.clone();
        Box::pin(async move {
            Ok(Some(Message::FileResponse(
                distsoc_protocol::messages::files::FileResponse {
                    version: 2,
                    content: distsoc_protocol::messages::files::FileContent::Post(Box::new(
                        distsoc_protocol::messages::files::StoredFile {
                            post,
                            author_recent_posts: None,
                            comments: vec![],
                            hearts: vec![],
                        },
                    )),
                },
            )))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_id_does_not_match_is_refused() {
    let (a, b) = (TestNode::new().await, TestNode::new().await);
    let real = a
        .node
        .post("real".into(), vec![], &VisibilityIntent::Public)
        .unwrap();
    let other = a
        .node
        .post("other".into(), vec![], &VisibilityIntent::Public)
        .unwrap();
    let key = distsoc_protocol::sign::SigningKey::from_seed(&[42; 32]);
    let liar = distsoc_net::transport::Transport::bind(
        &key,
        distsoc_net::transport::TransportConfig {
            listen: LOOPBACK,
            ..Default::default()
        },
        std::sync::Arc::new(Liar(other)),
    )
    .unwrap();
    let cs: ConnectString = format!("{}@{}", liar.node_id(), liar.local_addr().unwrap())
        .parse()
        .unwrap();
    let peer = b.running.connect(&cs).await.unwrap();
    match b.running.fetch_post(&peer, real.post_id()).await {
        Err(distsoc_node::node::NodeError::Peer(code, _)) => {
            assert_eq!(code, ErrorCode::IdMismatch)
        }
        other => panic!("expected idMismatch, got {other:?}"),
    }
    assert!(!b.holds(&real));
    // B keeps working with honest peers.
    let honest = b.running.connect(&a.connect_string()).await.unwrap();
    assert_eq!(
        b.running
            .fetch_post(&honest, real.post_id())
            .await
            .unwrap()
            .post_id(),
        real.post_id()
    );
}
