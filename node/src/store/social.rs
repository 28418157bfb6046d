//! Posting identities, profiles, follows, circles and audience lists.

use distsoc_protocol::ids::{NodeId, PostingId};
use distsoc_protocol::messages::content::IngestError;
use distsoc_protocol::messages::identity::{
    PostingIdentity, PublicProfile, SignedProfile, MAX_LABEL_BYTES,
};
use distsoc_protocol::messages::signed::Signed;
use distsoc_protocol::messages::social::AudienceRequestBody;
use distsoc_protocol::sign::SigningKey;
use rusqlite::{params, OptionalExtension, Row, Transaction};
use zeroize::Zeroizing;

use super::{
    blob, decode_signed, evict_lru, from_sql_u64, id32, to_sql_u64, touch, Store, StoreError,
};

/// Most profiles held without a reason to keep them (see
/// [`Store::upsert_profile`]); beyond it the least recently seen go.
pub const MAX_CACHED_PROFILES: usize = 500;

/// Most bytes of profiles held without a reason to keep them (a signed
/// profile is at most ~5 KiB, so this binds before the count only for
/// profiles near their limits).
pub const MAX_CACHED_PROFILE_BYTES: usize = 2 * 1024 * 1024;

/// Most pending audience requests held, over all our authors.
pub const MAX_PENDING_AUDIENCE_REQUESTS: usize = 200;

/// Most pending audience requests from one requester (one per author it
/// asks; this bounds a requester against a node with many personas).
pub const MAX_PENDING_AUDIENCE_REQUESTS_PER_REQUESTER: usize = 8;

/// Profiles this node has a reason to keep, whatever the cache holds: its
/// own posting identities, followed ids, circle members, audience members
/// and pending requesters. Every other profile is in the bounded cache.
/// (`NOT IN` a subquery: SQLite builds its set once per statement.)
const CACHED_PROFILES_SQL: &str = "
SELECT p.posting_id, length(p.profile) + length(p.signature)
  FROM profiles AS p
 WHERE p.posting_id NOT IN (
           SELECT posting_id FROM posting_identities
           UNION SELECT posting_id FROM follows
           UNION SELECT member FROM circle_members
           UNION SELECT member FROM audience_members
           UNION SELECT requester FROM audience_requests)
 ORDER BY p.seen_order DESC";

/// Evicts the least recently seen cached profiles beyond
/// [`MAX_CACHED_PROFILES`] / [`MAX_CACHED_PROFILE_BYTES`].
fn evict_cached_profiles(tx: &Transaction<'_>) -> Result<usize, StoreError> {
    evict_lru(
        tx,
        CACHED_PROFILES_SQL,
        "DELETE FROM profiles WHERE posting_id = ?1",
        MAX_CACHED_PROFILES,
        MAX_CACHED_PROFILE_BYTES,
    )
}

/// A held posting identity without its secret (what lists show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingIdentityInfo {
    /// The public key.
    pub posting_id: PostingId,
    /// Local label.
    pub display_name: String,
    /// When the key was created, ms since epoch.
    pub created_at_ms: u64,
    /// A rotating DM id rather than a persona.
    pub ephemeral: bool,
    /// Whether it is the default posting identity.
    pub is_default: bool,
}

/// What [`Store::upsert_profile`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// Stored: no profile was held, or this one is newer (`updatedAtMs`).
    Updated,
    /// Not newer than the held one (older, or as old with other bytes —
    /// the first one seen is kept); nothing changed.
    Stale,
    /// Exactly the held profile; nothing changed.
    Same,
}

/// One follow: who is followed, from which persona, since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowEntry {
    /// The posting id followed.
    pub posting_id: PostingId,
    /// The persona (one of this node's posting ids) that follows it.
    pub persona: PostingId,
    /// When the follow was made, ms since epoch.
    pub followed_at_ms: u64,
}

/// A circle and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleInfo {
    /// Unique name.
    pub name: String,
    /// When it was created, ms since epoch.
    pub created_at_ms: u64,
    /// Number of members.
    pub members: usize,
}

/// An approved member of an author's audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudienceMember {
    /// The member.
    pub member: PostingId,
    /// When the author approved it, ms since epoch.
    pub approved_at_ms: u64,
}

pub(super) fn check_circle_name(name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() {
        return Err(StoreError::InvalidArgument("circle name must not be empty"));
    }
    if name.len() > MAX_LABEL_BYTES {
        return Err(StoreError::TooLarge {
            what: "circle name",
            max: MAX_LABEL_BYTES,
            got: name.len(),
        });
    }
    Ok(())
}

/// A posting identity's seed belongs to its id and its label fits.
pub(super) fn check_posting_identity(identity: &PostingIdentity) -> Result<(), StoreError> {
    if SigningKey::from_seed(&identity.secret_seed).public() != identity.posting_id.0 {
        return Err(StoreError::InvalidArgument(
            "secret seed does not belong to the posting id",
        ));
    }
    if identity.display_name.len() > MAX_LABEL_BYTES {
        return Err(StoreError::InvalidArgument("display name is too long"));
    }
    Ok(())
}

/// [`Store::set_default_posting_identity`] in an open write transaction.
pub(super) fn set_default_in(tx: &Transaction<'_>, id: PostingId) -> Result<(), StoreError> {
    let held: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM posting_identities WHERE posting_id = ?1)",
        [&id.0[..]],
        |r| r.get(0),
    )?;
    if !held {
        return Err(StoreError::NotFound {
            what: "posting identity",
        });
    }
    tx.execute(
        "INSERT INTO default_posting_identity (singleton, posting_id) VALUES (1, ?1)
         ON CONFLICT (singleton) DO UPDATE SET posting_id = excluded.posting_id",
        [&id.0[..]],
    )?;
    Ok(())
}

/// The upsert of [`Store::upsert_profile`] in an open write transaction.
fn upsert_profile_in(tx: &Transaction<'_>, profile: &SignedProfile) -> Result<Upsert, StoreError> {
    let body = profile.body();
    let held: Option<(Vec<u8>, Vec<u8>)> = tx
        .query_row(
            "SELECT profile, signature FROM profiles WHERE posting_id = ?1",
            [&body.posting_id.0[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((bytes, sig)) = held {
        if bytes == profile.bytes() {
            return Ok(Upsert::Same);
        }
        // A held row that no longer decodes is replaced.
        if let Ok(held) = decode_signed::<PublicProfile>("profile", &bytes, &sig) {
            if body.updated_at_ms <= held.body().updated_at_ms {
                return Ok(Upsert::Stale);
            }
        }
    }
    tx.execute(
        "INSERT INTO profiles (posting_id, updated_at_ms, profile, signature)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (posting_id) DO UPDATE SET
           updated_at_ms = excluded.updated_at_ms,
           profile = excluded.profile,
           signature = excluded.signature",
        params![
            &body.posting_id.0[..],
            to_sql_u64(body.updated_at_ms),
            profile.bytes(),
            &profile.signature()[..],
        ],
    )?;
    Ok(Upsert::Updated)
}

fn circle_id(tx: &Transaction<'_>, name: &str) -> Result<i64, StoreError> {
    tx.query_row(
        "SELECT circle_id FROM circles WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .optional()?
    .ok_or(StoreError::NotFound { what: "circle" })
}

fn posting_ids(
    tx: &Transaction<'_>,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<PostingId>, StoreError> {
    let mut stmt = tx.prepare_cached(sql)?;
    let mut rows = stmt.query(p)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(PostingId(id32("posting id", blob(row, 0)?)?));
    }
    Ok(out)
}

/// Reads a full posting identity (with seed) from a row of
/// `posting_id, secret_seed, display_name, created_at_ms, ephemeral`. The
/// seed is copied straight from SQLite's buffer into a zeroizing array and
/// checked against the public key.
pub(super) fn identity_from_row(row: &Row<'_>) -> Result<PostingIdentity, StoreError> {
    let posting_id = PostingId(id32("posting id", blob(row, 0)?)?);
    let raw = blob(row, 1)?;
    if raw.len() != 32 {
        return Err(StoreError::corrupt(
            "posting seed",
            format!("{} bytes, expected 32", raw.len()),
        ));
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(raw);
    if SigningKey::from_seed(&seed).public() != posting_id.0 {
        return Err(StoreError::corrupt(
            "posting seed",
            "does not belong to its posting id",
        ));
    }
    Ok(PostingIdentity {
        posting_id,
        secret_seed: seed,
        display_name: row.get(2)?,
        created_at_ms: from_sql_u64("created_at_ms", row.get(3)?)?,
        ephemeral: row.get(4)?,
    })
}

impl Store {
    // -----------------------------------------------------------------------
    // Posting identities
    // -----------------------------------------------------------------------

    /// Stores a posting identity (persona or ephemeral DM id) with its
    /// secret seed. Returns `false` if it was already held (nothing
    /// changed). The first identity stored becomes the default.
    pub fn add_posting_identity(&self, identity: &PostingIdentity) -> Result<bool, StoreError> {
        check_posting_identity(identity)?;
        self.write(|tx| {
            let added = tx.execute(
                "INSERT OR IGNORE INTO posting_identities
                   (posting_id, secret_seed, display_name, created_at_ms, ephemeral)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &identity.posting_id.0[..],
                    &identity.secret_seed[..],
                    identity.display_name,
                    to_sql_u64(identity.created_at_ms),
                    identity.ephemeral,
                ],
            )? == 1;
            tx.execute(
                "INSERT OR IGNORE INTO default_posting_identity (singleton, posting_id)
                 VALUES (1, ?1)",
                [&identity.posting_id.0[..]],
            )?;
            Ok(added)
        })
    }

    /// Every held posting identity, oldest first, without secrets.
    pub fn posting_identities(&self) -> Result<Vec<PostingIdentityInfo>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT i.posting_id, i.display_name, i.created_at_ms, i.ephemeral,
                        d.posting_id IS NOT NULL
                   FROM posting_identities AS i
                   LEFT JOIN default_posting_identity AS d ON d.posting_id = i.posting_id
                  ORDER BY i.created_at_ms, i.posting_id",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(PostingIdentityInfo {
                    posting_id: PostingId(id32("posting id", blob(r, 0)?)?),
                    display_name: r.get(1)?,
                    created_at_ms: from_sql_u64("created_at_ms", r.get(2)?)?,
                    ephemeral: r.get(3)?,
                    is_default: r.get(4)?,
                });
            }
            Ok(out)
        })
    }

    /// A held posting identity with its secret seed (its `Debug` does not
    /// print the seed).
    pub fn posting_identity(&self, id: PostingId) -> Result<Option<PostingIdentity>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT posting_id, secret_seed, display_name, created_at_ms, ephemeral
                   FROM posting_identities WHERE posting_id = ?1",
            )?;
            let mut rows = stmt.query([&id.0[..]])?;
            rows.next()?.map(identity_from_row).transpose()
        })
    }

    /// Makes a held posting identity the default ([`StoreError::NotFound`]
    /// if it is not held).
    pub fn set_default_posting_identity(&self, id: PostingId) -> Result<(), StoreError> {
        self.write(|tx| set_default_in(tx, id))
    }

    /// The default posting identity with its seed, if any is held.
    pub fn default_posting_identity(&self) -> Result<Option<PostingIdentity>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT i.posting_id, i.secret_seed, i.display_name, i.created_at_ms, i.ephemeral
                   FROM default_posting_identity AS d
                   JOIN posting_identities AS i ON i.posting_id = d.posting_id",
            )?;
            let mut rows = stmt.query([])?;
            rows.next()?.map(identity_from_row).transpose()
        })
    }

    /// Forgets a posting identity and its seed (overwritten on disk,
    /// `secure_delete`). If it was the default, there is no default until
    /// one is set. Returns whether it was held.
    pub fn remove_posting_identity(&self, id: PostingId) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM posting_identities WHERE posting_id = ?1",
                [&id.0[..]],
            )? == 1)
        })
    }

    // -----------------------------------------------------------------------
    // Profiles
    // -----------------------------------------------------------------------

    /// Stores a received profile if it is newer than the held one.
    ///
    /// The signature is verified first ([`StoreError::Invalid`]), and the
    /// signed bytes are read back with the bounded reader (a profile over a
    /// field limit is [`StoreError::Invalid`]). Then: no profile held, or a
    /// higher `updatedAtMs` → [`Upsert::Updated`]; the same bytes →
    /// [`Upsert::Same`]; lower, or equal with other bytes (the first one
    /// seen is kept) → [`Upsert::Stale`].
    ///
    /// # Bounded
    ///
    /// Profiles the node has a reason to keep (its own posting ids, followed
    /// ids, circle members, audience members and pending requesters) are
    /// kept. Every other profile is a cache of at most
    /// [`MAX_CACHED_PROFILES`] profiles and [`MAX_CACHED_PROFILE_BYTES`]
    /// bytes: each upsert (even `Same` or `Stale`) marks the profile as
    /// seen, and the least recently seen beyond either bound are evicted. A
    /// flood of profiles from fresh keys therefore cannot grow the store.
    pub fn upsert_profile(&self, profile: &SignedProfile) -> Result<Upsert, StoreError> {
        profile
            .verify()
            .map_err(|error| IngestError::BadSignature {
                what: "profile",
                error,
            })?;
        distsoc_protocol::codec::from_canonical::<PublicProfile>(
            "profile",
            profile.bytes(),
            usize::MAX,
        )
        .map_err(IngestError::from)?;
        let body = profile.body();
        self.write(|tx| {
            let outcome = upsert_profile_in(tx, profile)?;
            touch(tx, "profiles", "posting_id", &body.posting_id.0)?;
            if outcome == Upsert::Updated {
                evict_cached_profiles(tx)?;
            }
            Ok(outcome)
        })
    }

    /// How many profiles are held, and their bytes (profile + signature).
    pub fn profile_usage(&self) -> Result<(usize, usize), StoreError> {
        self.read(|tx| {
            let (n, b): (i64, i64) = tx.query_row(
                "SELECT count(*), COALESCE(SUM(length(profile) + length(signature)), 0)
                   FROM profiles",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok((
                usize::try_from(n).unwrap_or(0),
                usize::try_from(b).unwrap_or(0),
            ))
        })
    }

    /// The held profile of a posting identity (with its anchors list).
    pub fn get_profile(&self, id: PostingId) -> Result<Option<SignedProfile>, StoreError> {
        self.read(|tx| {
            let held: Option<(Vec<u8>, Vec<u8>)> = tx
                .query_row(
                    "SELECT profile, signature FROM profiles WHERE posting_id = ?1",
                    [&id.0[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            held.map(|(b, s)| decode_signed::<PublicProfile>("profile", &b, &s))
                .transpose()
        })
    }

    /// The anchors named by the held profile(s) of the identity on network
    /// id `node`: the profile whose posting id is `node` (an identity that
    /// has not split its keys), then those that name `node` as their
    /// `networkId`. In the profiles' order of preference, without
    /// duplicates.
    pub fn profile_anchors_of(&self, node: NodeId) -> Result<Vec<NodeId>, StoreError> {
        let mut held: Vec<SignedProfile> =
            self.get_profile(PostingId(node.0))?.into_iter().collect();
        held.extend(
            self.profiles()?
                .into_iter()
                .filter(|p| p.body().network_id == Some(node) && p.body().posting_id.0 != node.0),
        );
        let mut out: Vec<NodeId> = Vec::new();
        for p in &held {
            for a in &p.body().anchors {
                if !out.contains(a) {
                    out.push(*a);
                }
            }
        }
        Ok(out)
    }

    /// Every held profile, by posting id.
    pub fn profiles(&self) -> Result<Vec<SignedProfile>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT profile, signature, posting_id FROM profiles ORDER BY posting_id",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                match decode_signed::<PublicProfile>("profile", blob(r, 0)?, blob(r, 1)?) {
                    Ok(p) => out.push(p),
                    Err(e) => self.skip_unreadable("profile", blob(r, 2)?, &e),
                }
            }
            Ok(out)
        })
    }

    // -----------------------------------------------------------------------
    // Follows (private: never leave this store except as pull ids)
    // -----------------------------------------------------------------------

    /// Follows a posting identity from the default persona. Returns `false`
    /// if that persona already follows it.
    pub fn follow(&self, id: PostingId, now_ms: u64) -> Result<bool, StoreError> {
        let persona = self.default_persona_id()?;
        self.follow_as(id, persona, now_ms)
    }

    /// Follows a posting identity from `persona` (one of this store's
    /// posting identities). Returns `false` if `persona` already follows it.
    pub fn follow_as(
        &self,
        id: PostingId,
        persona: PostingId,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "INSERT OR IGNORE INTO follows (posting_id, persona, followed_at_ms)
                 VALUES (?1, ?2, ?3)",
                params![&id.0[..], &persona.0[..], to_sql_u64(now_ms)],
            )? == 1)
        })
    }

    /// Unfollows from every persona. Returns how many personas followed it.
    pub fn unfollow(&self, id: PostingId) -> Result<usize, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM follows WHERE posting_id = ?1", [&id.0[..]])?))
    }

    /// Unfollows from `persona` only. Returns whether it followed.
    pub fn unfollow_as(&self, id: PostingId, persona: PostingId) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM follows WHERE posting_id = ?1 AND persona = ?2",
                [&id.0[..], &persona.0[..]],
            )? == 1)
        })
    }

    /// Everyone followed by any persona, once each, in the order they were
    /// first followed: the ids pull sync asks for.
    pub fn follows(&self) -> Result<Vec<PostingId>, StoreError> {
        self.read(|tx| {
            posting_ids(
                tx,
                "SELECT posting_id FROM follows GROUP BY posting_id
                  ORDER BY min(followed_at_ms), posting_id",
                [],
            )
        })
    }

    /// Everyone `persona` follows, in the order they were followed.
    pub fn follows_of(&self, persona: PostingId) -> Result<Vec<PostingId>, StoreError> {
        self.read(|tx| {
            posting_ids(
                tx,
                "SELECT posting_id FROM follows WHERE persona = ?1
                  ORDER BY followed_at_ms, posting_id",
                [&persona.0[..]],
            )
        })
    }

    /// Every follow with its persona and time, oldest first.
    pub fn follow_entries(&self) -> Result<Vec<FollowEntry>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT posting_id, persona, followed_at_ms FROM follows
                  ORDER BY followed_at_ms, posting_id, persona",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(FollowEntry {
                    posting_id: PostingId(id32("posting id", blob(r, 0)?)?),
                    persona: PostingId(id32("persona", blob(r, 1)?)?),
                    followed_at_ms: from_sql_u64("followed_at_ms", r.get(2)?)?,
                });
            }
            Ok(out)
        })
    }

    /// Whether any persona follows `id`.
    pub fn is_following(&self, id: PostingId) -> Result<bool, StoreError> {
        self.read(|tx| {
            Ok(tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM follows WHERE posting_id = ?1)",
                [&id.0[..]],
                |r| r.get(0),
            )?)
        })
    }

    /// The default persona's posting id ([`StoreError::Corrupt`] when the
    /// store has no default posting identity: `Node::init` always makes
    /// one).
    fn default_persona_id(&self) -> Result<PostingId, StoreError> {
        self.default_posting_identity()?
            .map(|p| p.posting_id)
            .ok_or(StoreError::Corrupt {
                what: "default_posting_identity",
                reason: "no default posting identity to follow from".into(),
            })
    }

    /// The persona last used to post to circle `name`, if it still exists.
    pub fn circle_last_persona(&self, name: &str) -> Result<Option<PostingId>, StoreError> {
        self.read(|tx| {
            let v: Option<Option<Vec<u8>>> = tx
                .query_row(
                    "SELECT last_persona FROM circles WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(v.flatten()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .map(PostingId))
        })
    }

    /// Records `persona` as the one last used to post to circle `name`.
    pub fn set_circle_last_persona(
        &self,
        name: &str,
        persona: PostingId,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE circles SET last_persona = ?2 WHERE name = ?1",
                params![name, &persona.0[..]],
            )?;
            Ok(())
        })
    }

    // -----------------------------------------------------------------------
    // Circles
    // -----------------------------------------------------------------------

    /// Creates an empty circle. Names are unique (exact match):
    /// [`StoreError::AlreadyExists`]; an empty or over-long name is
    /// [`StoreError::InvalidArgument`].
    pub fn create_circle(&self, name: &str, now_ms: u64) -> Result<(), StoreError> {
        check_circle_name(name)?;
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO circles (name, created_at_ms) VALUES (?1, ?2)",
                params![name, to_sql_u64(now_ms)],
            )?;
            if n == 0 {
                return Err(StoreError::AlreadyExists { what: "circle" });
            }
            Ok(())
        })
    }

    /// Renames a circle ([`StoreError::NotFound`] /
    /// [`StoreError::AlreadyExists`]).
    pub fn rename_circle(&self, old: &str, new: &str) -> Result<(), StoreError> {
        check_circle_name(new)?;
        self.write(|tx| {
            let id = circle_id(tx, old)?;
            if old == new {
                return Ok(());
            }
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM circles WHERE name = ?1)",
                [new],
                |r| r.get(0),
            )?;
            if taken {
                return Err(StoreError::AlreadyExists { what: "circle" });
            }
            tx.execute(
                "UPDATE circles SET name = ?2 WHERE circle_id = ?1",
                params![id, new],
            )?;
            Ok(())
        })
    }

    /// Deletes a circle and its member list. Returns whether it existed.
    pub fn delete_circle(&self, name: &str) -> Result<bool, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM circles WHERE name = ?1", [name])? == 1))
    }

    /// Adds a member ([`StoreError::NotFound`] if there is no such circle).
    /// Returns `false` if already a member.
    pub fn add_circle_member(
        &self,
        name: &str,
        member: PostingId,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            let id = circle_id(tx, name)?;
            Ok(tx.execute(
                "INSERT OR IGNORE INTO circle_members (circle_id, member, added_at_ms)
                 VALUES (?1, ?2, ?3)",
                params![id, &member.0[..], to_sql_u64(now_ms)],
            )? == 1)
        })
    }

    /// Removes a member ([`StoreError::NotFound`] if there is no such
    /// circle). Returns whether it was a member.
    pub fn remove_circle_member(&self, name: &str, member: PostingId) -> Result<bool, StoreError> {
        self.write(|tx| {
            let id = circle_id(tx, name)?;
            Ok(tx.execute(
                "DELETE FROM circle_members WHERE circle_id = ?1 AND member = ?2",
                params![id, &member.0[..]],
            )? == 1)
        })
    }

    /// Every circle, by name.
    pub fn circles(&self) -> Result<Vec<CircleInfo>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT c.name, c.created_at_ms,
                        (SELECT count(*) FROM circle_members AS m WHERE m.circle_id = c.circle_id)
                   FROM circles AS c ORDER BY c.name",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let members: i64 = r.get(2)?;
                out.push(CircleInfo {
                    name: r.get(0)?,
                    created_at_ms: from_sql_u64("created_at_ms", r.get(1)?)?,
                    members: usize::try_from(members)
                        .map_err(|e| StoreError::corrupt("circle size", e))?,
                });
            }
            Ok(out)
        })
    }

    /// A circle's members, in the order they were added
    /// ([`StoreError::NotFound`] if there is no such circle).
    pub fn circle_members(&self, name: &str) -> Result<Vec<PostingId>, StoreError> {
        self.read(|tx| {
            let id = circle_id(tx, name)?;
            posting_ids(
                tx,
                "SELECT member FROM circle_members WHERE circle_id = ?1
                  ORDER BY added_at_ms, member",
                [id],
            )
        })
    }

    // -----------------------------------------------------------------------
    // Audience (per author: pending requests and approved members)
    // -----------------------------------------------------------------------

    /// Records a received audience request (to one of our authors) as
    /// pending. The signature is verified first ([`StoreError::Invalid`]).
    /// A new request beyond [`MAX_PENDING_AUDIENCE_REQUESTS`] in total or
    /// [`MAX_PENDING_AUDIENCE_REQUESTS_PER_REQUESTER`] from its requester is
    /// [`StoreError::Full`] (nothing written).
    /// A newer request (`createdAtMs`) from the same requester replaces the
    /// pending one. Returns `false` if nothing changed (an older or equal
    /// request, or the requester is already a member).
    pub fn add_audience_request(
        &self,
        request: &Signed<AudienceRequestBody>,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        request
            .verify()
            .map_err(|error| IngestError::BadSignature {
                what: "audienceRequest",
                error,
            })?;
        let body = request.body();
        self.write(|tx| {
            let member: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM audience_members WHERE author = ?1 AND member = ?2)",
                params![&body.author.0[..], &body.requester.0[..]],
                |r| r.get(0),
            )?;
            if member {
                return Ok(false);
            }
            let held: Option<(Vec<u8>, Vec<u8>)> = tx
                .query_row(
                    "SELECT request, signature FROM audience_requests
                      WHERE author = ?1 AND requester = ?2",
                    params![&body.author.0[..], &body.requester.0[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match held {
                Some((bytes, sig)) => {
                    let held =
                        decode_signed::<AudienceRequestBody>("audience request", &bytes, &sig)?;
                    if body.created_at_ms <= held.body().created_at_ms {
                        return Ok(false);
                    }
                }
                None => {
                    // A new pending request: bounded in total and per
                    // requester, checked before anything is written.
                    let (total, mine): (i64, i64) = tx.query_row(
                        "SELECT count(*), COALESCE(SUM(requester = ?1), 0) FROM audience_requests",
                        [&body.requester.0[..]],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?;
                    if usize::try_from(total).unwrap_or(usize::MAX) >= MAX_PENDING_AUDIENCE_REQUESTS
                    {
                        return Err(StoreError::Full {
                            what: "pending audience requests",
                            max: MAX_PENDING_AUDIENCE_REQUESTS,
                        });
                    }
                    if usize::try_from(mine).unwrap_or(usize::MAX)
                        >= MAX_PENDING_AUDIENCE_REQUESTS_PER_REQUESTER
                    {
                        return Err(StoreError::Full {
                            what: "pending audience requests from this requester",
                            max: MAX_PENDING_AUDIENCE_REQUESTS_PER_REQUESTER,
                        });
                    }
                }
            }
            tx.execute(
                "INSERT INTO audience_requests
                   (author, requester, created_at_ms, request, signature, received_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (author, requester) DO UPDATE SET
                   created_at_ms = excluded.created_at_ms,
                   request = excluded.request,
                   signature = excluded.signature,
                   received_at_ms = excluded.received_at_ms",
                params![
                    &body.author.0[..],
                    &body.requester.0[..],
                    to_sql_u64(body.created_at_ms),
                    request.bytes(),
                    &request.signature()[..],
                    to_sql_u64(now_ms),
                ],
            )?;
            Ok(true)
        })
    }

    /// Pending audience requests to `author`, oldest first.
    pub fn audience_requests(
        &self,
        author: PostingId,
    ) -> Result<Vec<Signed<AudienceRequestBody>>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT request, signature FROM audience_requests WHERE author = ?1
                  ORDER BY created_at_ms, requester",
            )?;
            let mut rows = stmt.query([&author.0[..]])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(decode_signed::<AudienceRequestBody>(
                    "audience request",
                    blob(r, 0)?,
                    blob(r, 1)?,
                )?);
            }
            Ok(out)
        })
    }

    /// Approves `member` into `author`'s audience (whether or not a request
    /// is pending; the pending request, if any, is removed). Returns `false`
    /// if already a member.
    pub fn approve_audience_member(
        &self,
        author: PostingId,
        member: PostingId,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM audience_requests WHERE author = ?1 AND requester = ?2",
                params![&author.0[..], &member.0[..]],
            )?;
            Ok(tx.execute(
                "INSERT OR IGNORE INTO audience_members (author, member, approved_at_ms)
                 VALUES (?1, ?2, ?3)",
                params![&author.0[..], &member.0[..], to_sql_u64(now_ms)],
            )? == 1)
        })
    }

    /// Drops a pending request without approving it. Returns whether one
    /// was pending.
    pub fn deny_audience_request(
        &self,
        author: PostingId,
        requester: PostingId,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM audience_requests WHERE author = ?1 AND requester = ?2",
                params![&author.0[..], &requester.0[..]],
            )? == 1)
        })
    }

    /// Removes an approved member. Returns whether it was a member.
    pub fn remove_audience_member(
        &self,
        author: PostingId,
        member: PostingId,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM audience_members WHERE author = ?1 AND member = ?2",
                params![&author.0[..], &member.0[..]],
            )? == 1)
        })
    }

    /// `author`'s approved audience, in the order approved.
    pub fn audience_members(&self, author: PostingId) -> Result<Vec<AudienceMember>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT member, approved_at_ms FROM audience_members WHERE author = ?1
                  ORDER BY approved_at_ms, member",
            )?;
            let mut rows = stmt.query([&author.0[..]])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(AudienceMember {
                    member: PostingId(id32("audience member", blob(r, 0)?)?),
                    approved_at_ms: from_sql_u64("approved_at_ms", r.get(1)?)?,
                });
            }
            Ok(out)
        })
    }

    /// Whether `member` is in `author`'s approved audience.
    pub fn is_audience_member(
        &self,
        author: PostingId,
        member: PostingId,
    ) -> Result<bool, StoreError> {
        self.read(|tx| {
            Ok(tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM audience_members WHERE author = ?1 AND member = ?2)",
                params![&author.0[..], &member.0[..]],
                |r| r.get(0),
            )?)
        })
    }
}
