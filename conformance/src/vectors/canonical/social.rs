//! The `identity-bundle-social` vector's bundle: the social state a node
//! exports (follows with their personas, circles, rotating-DM threads, the
//! anchors holding its DM archive).

use distsoc_protocol::ids::{NodeId, PostingId};
use distsoc_protocol::messages::identity::{
    BundleCircle, BundleDmThread, BundleFollow, IdentityBundle,
};
use distsoc_protocol::sign::SigningKey;

use super::{pid, BOB, CAROL, T0};

/// A `BundleDmThread` with `peer`'s id, set at `T0 + 30 + n`, whose seed
/// is 32 bytes of `fill`.
fn thread(peer: &[u8; 32], outgoing: bool, n: u64, fill: u8) -> BundleDmThread {
    BundleDmThread {
        peer: NodeId(pid(peer).0),
        outgoing,
        n,
        at_ms: T0 + 30 + n,
        seed: SigningKey::from_seed(&[fill; 32]).seed(),
    }
}

/// `bundle` with three follows, two circles, two DM thread directions and
/// an archive anchor.
pub(super) fn social_bundle(bundle: &IdentityBundle) -> IdentityBundle {
    IdentityBundle {
        follows: vec![
            BundleFollow {
                posting_id: pid(&BOB),
                followed_at_ms: T0 + 10,
                persona: None,
            },
            BundleFollow {
                posting_id: pid(&CAROL),
                followed_at_ms: T0 + 11,
                persona: None,
            },
            BundleFollow {
                posting_id: pid(&BOB),
                followed_at_ms: T0 + 12,
                persona: Some(PostingId(
                    SigningKey::from_seed(&bundle.network_seed).public(),
                )),
            },
        ],
        circles: vec![
            BundleCircle {
                name: "close friends".into(),
                created_at_ms: T0 + 20,
                members: vec![pid(&BOB), pid(&CAROL)],
            },
            BundleCircle {
                name: "empty".into(),
                created_at_ms: T0 + 21,
                members: Vec::new(),
            },
        ],
        dm_threads: vec![thread(&BOB, true, 3, 0x5e), thread(&CAROL, false, 1, 0x5f)],
        archive_anchors: vec![format!(
            "{}@192.0.2.7:4433",
            NodeId(SigningKey::from_seed(&[0xa7; 32]).public())
        )],
        ..bundle.clone()
    }
}
