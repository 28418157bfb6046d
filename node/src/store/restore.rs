//! The identity's social state as a whole: read for an export bundle, and
//! written back in one transaction on import (`crate::bundle`).

use distsoc_protocol::ids::PostingId;
use distsoc_protocol::messages::identity::{BundleCircle, BundleFollow, PostingIdentity};
use rusqlite::params;

use super::{blob, from_sql_u64, id32, to_sql_u64, Store, StoreError};

/// Everything about an identity the store holds that an export carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialState {
    /// Every posting identity with its seed, oldest first.
    pub identities: Vec<PostingIdentity>,
    /// The default posting identity, if one is set.
    pub default: Option<PostingId>,
    /// The follows with their personas, oldest first (a follow without a
    /// persona is restored to the default).
    pub follows: Vec<BundleFollow>,
    /// The circles by name, members in the order they were added.
    pub circles: Vec<BundleCircle>,
}

impl Store {
    /// Reads the whole [`SocialState`] in one read transaction (a consistent
    /// snapshot).
    pub fn social_state(&self) -> Result<SocialState, StoreError> {
        self.read(|tx| {
            let mut identities = Vec::new();
            let mut stmt = tx.prepare_cached(
                "SELECT posting_id, secret_seed, display_name, created_at_ms, ephemeral
                   FROM posting_identities ORDER BY created_at_ms, posting_id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                identities.push(super::social::identity_from_row(r)?);
            }
            let default = tx
                .query_row(
                    "SELECT posting_id FROM default_posting_identity WHERE singleton = 1",
                    [],
                    |r| r.get::<_, Vec<u8>>(0),
                )
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?
                .map(|b| id32("default posting id", &b).map(PostingId))
                .transpose()?;
            let mut follows = Vec::new();
            let mut stmt = tx.prepare_cached(
                "SELECT posting_id, followed_at_ms, persona FROM follows
                  ORDER BY followed_at_ms, posting_id, persona",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                follows.push(BundleFollow {
                    posting_id: PostingId(id32("posting id", blob(r, 0)?)?),
                    followed_at_ms: from_sql_u64("followed_at_ms", r.get(1)?)?,
                    persona: Some(PostingId(id32("persona", blob(r, 2)?)?)),
                });
            }
            let mut circles: Vec<(i64, BundleCircle)> = Vec::new();
            let mut stmt = tx.prepare_cached(
                "SELECT circle_id, name, created_at_ms FROM circles ORDER BY name",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                circles.push((
                    r.get(0)?,
                    BundleCircle {
                        name: r.get(1)?,
                        created_at_ms: from_sql_u64("created_at_ms", r.get(2)?)?,
                        members: Vec::new(),
                    },
                ));
            }
            let mut stmt = tx.prepare_cached(
                "SELECT member FROM circle_members WHERE circle_id = ?1
                  ORDER BY added_at_ms, member",
            )?;
            for (id, circle) in &mut circles {
                let mut rows = stmt.query([*id])?;
                while let Some(r) = rows.next()? {
                    circle.members.push(PostingId(id32("member", blob(r, 0)?)?));
                }
            }
            Ok(SocialState {
                identities,
                default,
                follows,
                circles: circles.into_iter().map(|(_, c)| c).collect(),
            })
        })
    }

    /// Writes `state` into this store in one transaction: the posting
    /// identities (one already held keeps its row; the bundle's label and
    /// time win), the default, the follows and the circles (a circle of the
    /// same name gets the bundle's members added). Every seed is checked
    /// against its posting id and every label against its limit first;
    /// on any error nothing is written.
    pub fn restore_social_state(&self, state: &SocialState) -> Result<(), StoreError> {
        for p in &state.identities {
            super::social::check_posting_identity(p)?;
        }
        for c in &state.circles {
            super::social::check_circle_name(&c.name)?;
        }
        self.write(|tx| {
            for p in &state.identities {
                tx.execute(
                    "INSERT INTO posting_identities
                       (posting_id, secret_seed, display_name, created_at_ms, ephemeral)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (posting_id) DO UPDATE SET
                       display_name = excluded.display_name,
                       created_at_ms = excluded.created_at_ms,
                       ephemeral = excluded.ephemeral",
                    params![
                        &p.posting_id.0[..],
                        &p.secret_seed[..],
                        p.display_name,
                        to_sql_u64(p.created_at_ms),
                        p.ephemeral,
                    ],
                )?;
            }
            if let Some(d) = state.default {
                super::social::set_default_in(tx, d)?;
            }
            for f in &state.follows {
                tx.execute(
                    "INSERT OR IGNORE INTO follows (posting_id, persona, followed_at_ms)
                     VALUES (?1, COALESCE(?2, (SELECT posting_id FROM default_posting_identity)), ?3)",
                    params![
                        &f.posting_id.0[..],
                        f.persona.as_ref().map(|p| &p.0[..]),
                        to_sql_u64(f.followed_at_ms)
                    ],
                )?;
            }
            for c in &state.circles {
                tx.execute(
                    "INSERT OR IGNORE INTO circles (name, created_at_ms) VALUES (?1, ?2)",
                    params![c.name, to_sql_u64(c.created_at_ms)],
                )?;
                let id: i64 = tx.query_row(
                    "SELECT circle_id FROM circles WHERE name = ?1",
                    [&c.name],
                    |r| r.get(0),
                )?;
                // Members keep their order: added one millisecond apart
                // from the circle's creation.
                for (k, m) in c.members.iter().enumerate() {
                    tx.execute(
                        "INSERT OR IGNORE INTO circle_members (circle_id, member, added_at_ms)
                         VALUES (?1, ?2, ?3)",
                        params![
                            id,
                            &m.0[..],
                            to_sql_u64(c.created_at_ms.saturating_add(k as u64))
                        ],
                    )?;
                }
            }
            Ok(())
        })
    }
}
