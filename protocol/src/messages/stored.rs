//! A `PullSyncResponse` built from stored canonical `SyncPost` bytes.
//!
//! A relay keeps each post as the canonical bytes of the `SyncPost` it
//! validated on deposit. Answering a pull by decoding those bytes into a
//! [`SyncPost`] and encoding it again costs a full validation (two
//! canonical checks, the post body's rules, copies into owned values) per
//! post for bytes that were validated when they were stored.
//! [`StoredPullSyncResponse`] sends them without that: each post is copied
//! into the response's `posts` list from a reader over its stored bytes.
//!
//! The frame is byte for byte the frame of the decoded
//! [`PullSyncResponse`] ([`StoredPullSyncResponse::into_response`]): the
//! copy ([`copy_sync_post`]) sets the fields in the order [`SyncPost`]'s
//! `write` does, with the normalizations of its `read` (an absent
//! visibility is written as `public`, an empty `visibilitySignature` is
//! left null), and builds every struct at its schema size. A plain
//! Cap'n Proto struct copy would not: it keeps the sizes of the canonical
//! form, whose trailing zero data words and null pointers are cut (a
//! public `PostVisibility` is an empty struct there).

use std::fmt;

use capnp::message::{Builder, Reader};
use distsoc_schema::{content_capnp, social_capnp};

use super::any::{EncodeReply, Message, ReplyOf};
use super::content::{SignedDeleteRecord, SyncPost};
use super::identity::SignedProfile;
use super::social::PullSyncResponse;
use crate::codec::{self, len32, write_structs, WireMessage};
use crate::codes::MessageCode;
use crate::error::DecodeError;
use crate::frame::{self, FrameError};
use crate::ids::PostingId;
use crate::limits::{reader_options, WORD_BYTES};

/// The canonical bytes of a stored, previously validated `SyncPost`, held
/// in word-aligned memory, with what a pull filter needs to know about it
/// (author and recipients) read from them.
///
/// [`StoredSyncPost::new`] checks the length and reads the post's author
/// and its recipients under the reader limits; it does not validate the
/// post again (its canonical form and rules were checked when it was
/// stored). Bytes that are not a well-formed message fail there or when
/// the reply is encoded, never silently.
pub struct StoredSyncPost {
    words: Vec<capnp::Word>,
    author: PostingId,
    recipients: Option<Vec<PostingId>>,
}

impl fmt::Debug for StoredSyncPost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSyncPost")
            .field("bytes", &(self.words.len() * WORD_BYTES))
            .field("author", &self.author)
            .field("recipients", &self.recipients.as_ref().map(Vec::len))
            .finish()
    }
}

impl StoredSyncPost {
    /// Holds `bytes` (canonical `SyncPost` bytes of at most `max` bytes)
    /// and reads the post's author and recipients.
    pub fn new(bytes: &[u8], max: usize) -> Result<Self, DecodeError> {
        const FIELD: &str = "syncPost";
        if bytes.len() > max {
            return Err(DecodeError::TooLong {
                field: FIELD,
                max,
                got: bytes.len(),
            });
        }
        if bytes.is_empty() {
            return Err(DecodeError::Missing(FIELD));
        }
        if !bytes.len().is_multiple_of(WORD_BYTES) {
            return Err(DecodeError::NonCanonical(FIELD));
        }
        let mut words = capnp::Word::allocate_zeroed_vec(bytes.len() / WORD_BYTES);
        capnp::Word::words_to_bytes_mut(&mut words).copy_from_slice(bytes);
        let (author, recipients) = with_root(&words, |r| {
            if !r.has_post() {
                return Err(DecodeError::Missing("post"));
            }
            let author = post_author(r.get_post()?.get_post()?)?;
            let recipients = if r.has_visibility() {
                match r
                    .get_visibility()?
                    .which()
                    .map_err(|_| DecodeError::UnknownVariant("visibility"))?
                {
                    content_capnp::post_visibility::Public(()) => None,
                    content_capnp::post_visibility::Encrypted(e) => {
                        let keys = e?.get_recipients()?;
                        let mut out = Vec::with_capacity(keys.len() as usize);
                        for k in keys.iter() {
                            out.push(PostingId(codec::id::<32>("recipient", k.get_recipient())?));
                        }
                        Some(out)
                    }
                }
            } else {
                None
            };
            Ok((author, recipients))
        })?;
        Ok(Self {
            words,
            author,
            recipients,
        })
    }

    /// The canonical bytes.
    pub fn bytes(&self) -> &[u8] {
        capnp::Word::words_to_bytes(&self.words)
    }

    /// `Post.author`.
    pub fn author(&self) -> &PostingId {
        &self.author
    }

    /// The recipients of an encrypted post (`None`: public).
    pub fn recipients(&self) -> Option<&[PostingId]> {
        self.recipients.as_deref()
    }

    /// Decodes and validates the post (what [`StoredPullSyncResponse`]
    /// avoids).
    pub fn decode(&self) -> Result<SyncPost, DecodeError> {
        let bytes = self.bytes();
        codec::from_canonical::<SyncPost>("syncPost", bytes, bytes.len())
    }
}

/// Runs `f` on the root `SyncPost` of `words`.
fn with_root<T>(
    words: &[capnp::Word],
    f: impl FnOnce(content_capnp::sync_post::Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let segments: [&[u8]; 1] = [capnp::Word::words_to_bytes(words)];
    let reader = Reader::new(&segments[..], reader_options(words.len()));
    f(reader.get_root()?)
}

/// `Post.author` of canonical `Post` bytes (a `Data` field of a message in
/// word-aligned memory, so word-aligned itself).
fn post_author(bytes: &[u8]) -> Result<PostingId, DecodeError> {
    let segments: [&[u8]; 1] = [bytes];
    let reader = Reader::new(&segments[..], reader_options(bytes.len() / WORD_BYTES));
    let post: content_capnp::post::Reader<'_> = reader.get_root()?;
    Ok(PostingId(codec::id::<32>("author", post.get_author())?))
}

/// Copies a stored `SyncPost` into `b` exactly as decoding it and writing
/// the [`SyncPost`] would (see the module docs).
pub fn copy_sync_post(
    r: content_capnp::sync_post::Reader<'_>,
    mut b: content_capnp::sync_post::Builder<'_>,
) -> capnp::Result<()> {
    let post = r.get_post()?;
    let mut pb = b.reborrow().init_post();
    pb.set_post(post.get_post()?);
    pb.set_signature(post.get_signature()?);
    let mut vb = b.reborrow().init_visibility();
    let encrypted = if r.has_visibility() {
        match r.get_visibility()?.which()? {
            content_capnp::post_visibility::Public(()) => None,
            content_capnp::post_visibility::Encrypted(e) => Some(e?),
        }
    } else {
        None
    };
    match encrypted {
        None => vb.set_public(()),
        Some(e) => {
            let mut eb = vb.init_encrypted();
            eb.set_ephemeral_key(e.get_ephemeral_key()?);
            let keys = e.get_recipients()?;
            let mut lb = eb.init_recipients(keys.len());
            for (i, k) in keys.iter().enumerate() {
                let mut kb = lb.reborrow().get(i as u32);
                kb.set_recipient(k.get_recipient()?);
                kb.set_wrapped(k.get_wrapped()?);
            }
        }
    }
    if r.has_header() {
        let h = r.get_header()?;
        let mut hb = b.reborrow().init_header();
        hb.set_header(h.get_header()?);
        hb.set_signature(h.get_signature()?);
    }
    let signature = r.get_visibility_signature()?;
    if !signature.is_empty() {
        b.set_visibility_signature(signature);
    }
    if r.has_visibility_update() {
        let u = r.get_visibility_update()?;
        let mut ub = b.reborrow().init_visibility_update();
        ub.set_update(u.get_update()?);
        ub.set_signature(u.get_signature()?);
    }
    Ok(())
}

/// A `PullSyncResponse` (code 0x41) whose posts are stored canonical
/// bytes: sent as the same frame as [`Self::into_response`]'s, without
/// decoding the posts.
#[derive(Debug)]
pub struct StoredPullSyncResponse {
    /// Version of this message.
    pub version: u16,
    /// Matching posts in store order.
    pub posts: Vec<StoredSyncPost>,
    /// Cursor to send as `since_seq` next time.
    pub next_seq: u64,
    /// The responder stopped early; pull again at once.
    pub more: bool,
    /// Delete records by the matched authors.
    pub deletes: Vec<SignedDeleteRecord>,
    /// Newest profiles held for ids in the request.
    pub profiles: Vec<SignedProfile>,
}

impl StoredPullSyncResponse {
    /// The Cap'n Proto message, built as [`PullSyncResponse`]'s `write`
    /// builds it.
    fn build(&self) -> capnp::Result<Builder<capnp::message::HeapAllocator>> {
        let mut msg = Builder::new_default();
        let mut b = msg.init_root::<social_capnp::pull_sync_response::Builder<'_>>();
        b.set_version(self.version);
        let mut list = b.reborrow().init_posts(len32(&self.posts));
        for (i, p) in self.posts.iter().enumerate() {
            let out = list.reborrow().get(i as u32);
            with_root(&p.words, |r| {
                copy_sync_post(r, out).map_err(DecodeError::from)
            })
            .map_err(|e| capnp::Error::failed(e.to_string()))?;
        }
        b.set_next_seq(self.next_seq);
        b.set_more(self.more);
        write_structs(
            b.reborrow().init_deletes(len32(&self.deletes)),
            &self.deletes,
        );
        write_structs(
            b.reborrow().init_profiles(len32(&self.profiles)),
            &self.profiles,
        );
        Ok(msg)
    }

    /// The frame (code, segment table, segments); fails like
    /// [`Message::to_frame`] over the code's cap, and as
    /// [`FrameError::Malformed`] if a stored post is not a well-formed
    /// message.
    pub fn to_frame(&self) -> Result<Vec<u8>, FrameError> {
        let msg = self
            .build()
            .map_err(|e| FrameError::Malformed(e.to_string()))?;
        frame::encode_frame(PullSyncResponse::CODE, &msg)
    }

    /// The response with every post decoded and validated.
    pub fn into_response(self) -> Result<PullSyncResponse, DecodeError> {
        Ok(PullSyncResponse {
            version: self.version,
            posts: self
                .posts
                .iter()
                .map(StoredSyncPost::decode)
                .collect::<Result<_, _>>()?,
            next_seq: self.next_seq,
            more: self.more,
            deletes: self.deletes,
            profiles: self.profiles,
        })
    }
}

impl EncodeReply for StoredPullSyncResponse {
    fn code(&self) -> MessageCode {
        PullSyncResponse::CODE
    }

    fn to_frame(&self) -> Result<Vec<u8>, FrameError> {
        StoredPullSyncResponse::to_frame(self)
    }

    fn into_message(self: Box<Self>) -> Result<Message, DecodeError> {
        self.into_response().map(Message::PullSyncResponse)
    }
}

impl ReplyOf<PullSyncResponse> for StoredPullSyncResponse {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::super::content::{seal_post, PostBody, VisibilityUpdateBody};
    use super::super::files::fixtures::{author, delete, header, key, sync_post};
    use super::super::identity::PublicProfile;
    use super::super::signed::Signed;
    use super::*;
    use crate::codes::MessageCode;
    use crate::ids::PostId;
    use crate::limits::PROTOCOL_VERSION;

    /// A post sealed by `seed` to `n` recipients, with a header, a
    /// visibility update (and then no visibility signature) as asked.
    fn sealed(seed: u8, t: u64, n: usize, with_header: bool, update: bool) -> SyncPost {
        let k = key(seed);
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let to: Vec<PostingId> = (0..n)
            .map(|i| {
                let mut s = [7u8; 32];
                s[0] = seed;
                s[1..3].copy_from_slice(&(i as u16).to_le_bytes());
                PostingId(crate::sign::SigningKey::from_seed(&s).public())
            })
            .collect();
        let body = PostBody {
            text: format!("sealed {t}"),
            attachments: Vec::new(),
            rotation: None,
            archive: None,
            group: None,
        };
        let (p, v) = seal_post(&k, t, &body, &to, &mut rng).unwrap();
        let h = with_header.then(|| header(seed, p.post_id(), t));
        let mut sp = SyncPost::new(&k, p, v, h);
        if update {
            let u = Signed::sign(
                VisibilityUpdateBody {
                    post_id: sp.post_id(),
                    author: author(seed),
                    visibility: sp.visibility.clone(),
                    updated_at_ms: t + 1,
                },
                &k,
            );
            sp.visibility_update = Some(u);
            sp.visibility_signature = None;
        }
        sp
    }

    fn profile(seed: u8) -> SignedProfile {
        Signed::sign(
            PublicProfile {
                posting_id: author(seed),
                display_name: format!("p{seed}"),
                bio: String::new(),
                anchors: Vec::new(),
                avatar: None,
                updated_at_ms: u64::from(seed),
                network_id: None,
            },
            &key(seed),
        )
    }

    /// Both replies for `posts`: the stored one and the decoded one.
    fn both(
        posts: &[SyncPost],
        deletes: Vec<SignedDeleteRecord>,
        profiles: Vec<SignedProfile>,
    ) -> (StoredPullSyncResponse, Message) {
        let mut canonical: Vec<(&SyncPost, Vec<u8>)> = Vec::new();
        let stored = StoredPullSyncResponse {
            version: PROTOCOL_VERSION,
            posts: posts
                .iter()
                .map(|p| {
                    // Posts repeat in the larger tests: encode each once.
                    let i = match canonical.iter().position(|(q, _)| *q == p) {
                        Some(i) => i,
                        None => {
                            canonical.push((p, codec::canonical_of(p)));
                            canonical.len() - 1
                        }
                    };
                    StoredSyncPost::new(&canonical[i].1, usize::MAX).unwrap()
                })
                .collect(),
            next_seq: 77,
            more: true,
            deletes: deletes.clone(),
            profiles: profiles.clone(),
        };
        let decoded = Message::PullSyncResponse(PullSyncResponse {
            version: PROTOCOL_VERSION,
            posts: posts.to_vec(),
            next_seq: 77,
            more: true,
            deletes,
            profiles,
        });
        (stored, decoded)
    }

    fn mixed(n: usize) -> Vec<SyncPost> {
        (0..n)
            .map(|i| {
                let seed = (i % 7) as u8;
                let t = 1_000 + i as u64;
                match i % 5 {
                    0 => sync_post(seed, t, &"x".repeat(i % 300), false),
                    1 => sync_post(seed, t, "with a header", true),
                    2 => sealed(seed, t, 1 + i % 4, false, false),
                    3 => sealed(seed, t, 3, true, true),
                    _ => sealed(seed, t, 2, false, true),
                }
            })
            .collect()
    }

    /// The frame from stored bytes is the frame of the decoded reply, for
    /// public and sealed posts, headers, visibility updates, deletes and
    /// profiles, and any number of posts (several segments).
    #[test]
    fn the_stored_reply_is_the_frame_of_the_decoded_reply() {
        let all = mixed(300);
        for n in [0, 1, 2, 5, 17, 300] {
            let posts = &all[..n];
            let deletes = (0..n.min(4) as u8)
                .map(|s| delete(s, PostId([s; 32]), None))
                .collect();
            let profiles = (0..n.min(3) as u8).map(profile).collect();
            let (stored, decoded) = both(posts, deletes, profiles);
            let frame = stored.to_frame().unwrap();
            assert_eq!(frame, decoded.to_frame().unwrap(), "{n} posts");
            assert_eq!(Message::from_frame(&parse(&frame)).unwrap(), decoded);
            let back = Box::new(stored).into_message().unwrap();
            assert_eq!(back, decoded);
        }
    }

    fn parse(bytes: &[u8]) -> crate::frame::Frame {
        crate::frame::decode_frame(bytes).unwrap()
    }

    /// The author and recipients read from the bytes are the decoded ones.
    #[test]
    fn author_and_recipients_are_read_from_the_bytes() {
        for p in mixed(10) {
            let s = StoredSyncPost::new(&codec::canonical_of(&p), usize::MAX).unwrap();
            assert_eq!(s.author(), &p.post.body().author);
            let want: Option<Vec<PostingId>> = p.visibility.is_encrypted().then(|| {
                p.visibility
                    .recipients()
                    .iter()
                    .map(|w| PostingId(w.recipient))
                    .collect()
            });
            assert_eq!(s.recipients().map(<[PostingId]>::to_vec), want);
            assert_eq!(s.decode().unwrap(), p);
        }
    }

    /// A post stored without its visibility (absent = public) is sent as
    /// the decoded post is: with a `public` visibility.
    #[test]
    fn an_absent_visibility_is_sent_as_public() {
        let p = sync_post(3, 5, "no visibility", false);
        let mut msg = Builder::new_default();
        let mut b = msg.init_root::<content_capnp::sync_post::Builder<'_>>();
        let mut pb = b.reborrow().init_post();
        pb.set_post(p.post.bytes());
        pb.set_signature(p.post.signature());
        let words = msg.into_reader().canonicalize().unwrap();
        let bytes = capnp::Word::words_to_bytes(&words);
        let decoded: SyncPost = codec::from_canonical("syncPost", bytes, usize::MAX).unwrap();
        assert_eq!(decoded, p);
        let stored = StoredSyncPost::new(bytes, usize::MAX).unwrap();
        assert_eq!(stored.recipients(), None);
        let (_, want) = both(std::slice::from_ref(&p), Vec::new(), Vec::new());
        let got = StoredPullSyncResponse {
            posts: vec![stored],
            ..both(&[], Vec::new(), Vec::new()).0
        };
        assert_eq!(got.to_frame().unwrap(), want.to_frame().unwrap());
    }

    /// Over the frame cap both fail alike, and at the largest page that
    /// fits both succeed with the same bytes: the reply stops where it did.
    #[test]
    fn the_frame_cap_falls_at_the_same_post() {
        // About 40 KiB each: some 200 fit.
        let one = sealed(9, 1, 400, true, true);
        let fits = |n: usize| -> (Result<Vec<u8>, FrameError>, Result<Vec<u8>, FrameError>) {
            let (s, d) = both(&vec![one.clone(); n], Vec::new(), Vec::new());
            (s.to_frame(), d.to_frame())
        };
        // Find the largest n that fits by bisection on the decoded reply.
        let (mut lo, mut hi) = (1usize, 1_024);
        assert!(fits(lo).1.is_ok());
        assert!(fits(hi).1.is_err(), "1,024 of these posts exceed the cap");
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if fits(mid).1.is_ok() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let (s, d) = fits(lo);
        assert_eq!(
            s.unwrap(),
            d.unwrap(),
            "{lo} posts: the largest reply that fits"
        );
        let (s, d) = fits(hi);
        let (s, d) = (s.unwrap_err(), d.unwrap_err());
        assert!(
            matches!(
                s,
                FrameError::TooLarge {
                    code: MessageCode::PullSyncResponse,
                    ..
                }
            ),
            "{s:?}"
        );
        assert_eq!(s, d);
    }

    /// 65,535 posts (the most a request can ask for): even the smallest
    /// posts exceed the cap, and both replies are refused alike; 32,768 of
    /// them fit, with the same bytes.
    #[test]
    fn the_largest_pages_are_the_same() {
        let p = sync_post(1, 1, "", false);
        let max = super::super::social::MAX_PULL_POSTS;
        let (s, d) = both(&vec![p.clone(); max], Vec::new(), Vec::new());
        let e = s.to_frame().unwrap_err();
        assert!(matches!(e, FrameError::TooLarge { .. }), "{e:?}");
        assert_eq!(Err(e), d.to_frame());
        let (s, d) = both(&vec![p; max / 2 + 1], Vec::new(), Vec::new());
        assert_eq!(s.to_frame().unwrap(), d.to_frame().unwrap());
    }

    /// Bytes that are not a message are refused when they are held.
    #[test]
    fn malformed_bytes_are_refused() {
        assert!(matches!(
            StoredSyncPost::new(&[], 64),
            Err(DecodeError::Missing(_))
        ));
        assert!(matches!(
            StoredSyncPost::new(&[0; 12], 64),
            Err(DecodeError::NonCanonical(_))
        ));
        assert!(matches!(
            StoredSyncPost::new(&[0; 72], 64),
            Err(DecodeError::TooLong { .. })
        ));
        // A root pointer past the end.
        let mut bad = vec![0u8; 16];
        bad[0] = 0x40;
        bad[6] = 5;
        assert!(StoredSyncPost::new(&bad, 64).is_err());
        // A null root: no post.
        assert!(matches!(
            StoredSyncPost::new(&[0; 8], 64),
            Err(DecodeError::Missing("post"))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// Any mix of posts, deletes and profiles: the same frame.
        #[test]
        fn same_frame_for_any_page(
            kinds in prop::collection::vec((0u8..5, any::<u8>(), 0usize..6, "[a-z]{0,40}"), 0..16),
            n_deletes in 0u8..4,
            n_profiles in 0u8..3,
        ) {
            let posts: Vec<SyncPost> = kinds
                .iter()
                .enumerate()
                .map(|(i, (k, seed, r, text))| match k {
                    0 => sync_post(*seed, i as u64, text, false),
                    1 => sync_post(*seed, i as u64, text, true),
                    2 => sealed(*seed, i as u64, 1 + r, false, false),
                    3 => sealed(*seed, i as u64, 1 + r, true, false),
                    _ => sealed(*seed, i as u64, 1 + r, r % 2 == 0, true),
                })
                .collect();
            let deletes = (0..n_deletes).map(|s| delete(s, PostId([s; 32]), Some(PostId([1; 32])))).collect();
            let profiles = (0..n_profiles).map(profile).collect();
            let (stored, decoded) = both(&posts, deletes, profiles);
            prop_assert_eq!(stored.to_frame().unwrap(), decoded.to_frame().unwrap());
        }
    }
}
