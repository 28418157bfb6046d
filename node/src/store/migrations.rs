//! Versioned schema migrations.
//!
//! The schema version is `PRAGMA user_version`: the number of entries of
//! [`MIGRATIONS`] applied. On open, each missing migration runs in its own
//! `BEGIN IMMEDIATE` transaction together with the `user_version` bump, so a
//! crash leaves the database at a whole version, and two processes opening
//! the same file at once cannot both apply a migration (the second re-reads
//! the version under the write lock and finds nothing to do). A database
//! whose version is higher than `MIGRATIONS.len()` was written by a newer
//! build and is refused ([`StoreError::TooNew`]) without being touched.
//!
//! Rules for adding a migration: append, never edit a released entry; keep
//! each entry valid SQL for `execute_batch`; carry data forward in SQL (the
//! migration runs without the Rust types). `node/tests/fixtures/store-v1.sqlite`
//! is a version-1 database that the tests upgrade to the current version.
//!
//! | version | what |
//! |---|---|
//! | 1 | initial schema: posting identities, posts (+ author and time indexes), post recipients, tombstones, profiles, follows, circles, peers, pull cursors, `author_recent_posts`, blobs |
//! | 2 | recipient match (identity rollout phase 3): `post_recipients.seq` backfilled from `posts`, index `(recipient, seq)`; audience requests and members |
//! | 3 | deposit cursors: how far our own posts were deposited at each anchor |
//! | 4 | `profiles.seen_order`, `author_recent_posts.seen_order` (+ indexes): least-recently-seen order of the bounded caches; `undecryptable_dms`: DMs this node could not open, kept before they are acknowledged |
//! | 5 | `tombstones.encrypted` and `tombstone_recipients`: a delete is relayed to exactly the requesters its post was served to |
//! | 6 | `dm_archive`: the local DM archive, sealed at rest |
//! | 7 | follows belong to a persona (`follows.persona`; existing follows go to the default persona); `circles.last_persona`: the persona last used to post to a circle |
//! | 8 | `dm_threads`: rotating DM id chains, per peer and direction |
//! | 9 | `dm_persona_threads`: the DM threads of a persona other than the network key's, each under a thread id of its own |
//! | 10 | `dm_groups`, `dm_group_messages`: DM group threads, their members and messages (text sealed at rest) |
//! | 11 | `dm_archive.deposited`: whether a row is in an archive post yet (existing rows: not yet); `counters('archive_restored_seq')`: how far our own posts were scanned for archive chunks |
//! | 12 | `dm_group_messages.deposited`: whether a group message is in an archive post yet (existing rows: not yet) |

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The schema migrations, in order; entry `i` takes the database from
/// version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    V1_INITIAL,
    V2_RECIPIENT_INDEX_AND_AUDIENCE,
    V3_DEPOSIT_CURSORS,
    V4_PROFILE_CACHE_ORDER,
    V5_TOMBSTONE_RECIPIENTS,
    V6_DM_ARCHIVE,
    V7_PERSONA_FOLLOWS,
    V8_DM_THREADS,
    V9_DM_PERSONA_THREADS,
    V10_DM_GROUPS,
    V11_ARCHIVE_DEPOSIT,
    V12_GROUP_ARCHIVE_DEPOSIT,
];

/// Version 12: group messages in the archive deposit (`schema/README.md`
/// §9.1): a `dm_group_messages` row is `deposited` once an archive post
/// carries it (rows restored from one are); existing rows are not, so the
/// first deposit after the upgrade carries every group thread.
const V12_GROUP_ARCHIVE_DEPOSIT: &str = r#"
ALTER TABLE dm_group_messages ADD COLUMN deposited INTEGER NOT NULL DEFAULT 0
    CHECK (deposited IN (0, 1));
CREATE INDEX dm_group_messages_pending ON dm_group_messages (id) WHERE deposited = 0;
"#;

/// Version 10: DM group threads (`store::dm_groups`, `schema/README.md`
/// §9.1 "Group threads"): per thread (16-byte id) its members (32-byte ids,
/// concatenated) as the message signed at `updated_at_ms` named them; and
/// every group message sent or received and opened, with its sender,
/// direction and signed time, the text sealed at rest under the archive
/// key. `dedup` (BLAKE3) keeps a message fetched twice from being kept
/// twice.
const V10_DM_GROUPS: &str = r#"
CREATE TABLE dm_groups (
    thread        BLOB PRIMARY KEY CHECK (length(thread) = 16),
    members       BLOB NOT NULL CHECK (length(members) % 32 = 0),
    updated_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE dm_group_messages (
    id           INTEGER PRIMARY KEY,
    thread       BLOB NOT NULL CHECK (length(thread) = 16),
    sender       BLOB NOT NULL CHECK (length(sender) = 32),
    outgoing     INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
    sent_at_ms   INTEGER NOT NULL,
    stored_at_ms INTEGER NOT NULL,
    dedup        BLOB NOT NULL UNIQUE CHECK (length(dedup) = 32),
    sealed       BLOB NOT NULL
) STRICT;
CREATE INDEX dm_group_messages_by_thread ON dm_group_messages (thread, sent_at_ms, id);
"#;

/// Version 9: DMs to and from a persona other than the network key's own
/// (`crate::dm_persona`) are kept apart from the node's: each (persona,
/// peer) pair has a 32-byte thread id of its own, derived from the two,
/// under which its archive rows and rotating chains are filed (in
/// `dm_archive.peer` and `dm_threads.peer`). This table maps a thread id
/// back to its persona and peer, for display.
const V9_DM_PERSONA_THREADS: &str = r#"
CREATE TABLE dm_persona_threads (
    thread        BLOB PRIMARY KEY CHECK (length(thread) = 32),
    persona       BLOB NOT NULL CHECK (length(persona) = 32),
    peer          BLOB NOT NULL CHECK (length(peer) = 32),
    created_at_ms INTEGER NOT NULL,
    UNIQUE (persona, peer)
) STRICT, WITHOUT ROWID;
"#;

/// Version 11: the archive deposit (`schema/README.md` §9.1). A row is
/// `deposited` once an archive post carries it (rows restored from one
/// are); existing rows are not, so the first deposit after the upgrade
/// carries the whole archive. `archive_restored_seq` is the local `seq`
/// through which our own posts were looked at for archive chunks.
const V11_ARCHIVE_DEPOSIT: &str = r#"
ALTER TABLE dm_archive ADD COLUMN deposited INTEGER NOT NULL DEFAULT 0
    CHECK (deposited IN (0, 1));
CREATE INDEX dm_archive_pending ON dm_archive (archive_id) WHERE deposited = 0;
INSERT INTO counters (name, value) VALUES ('archive_restored_seq', 0);
"#;

/// Version 7: follows belong to a persona (identity rollout phase 5). The
/// same posting id may be followed from several personas, so the key
/// becomes `(posting_id, persona)`. Existing follows move to the default
/// persona (or, in a store without one, the oldest persona; a store with no
/// posting identity at all has no one to follow from and keeps none).
/// Deleting a persona deletes its follows. `circles.last_persona` is the
/// persona last used to post to the circle: the default for the next post
/// there.
const V7_PERSONA_FOLLOWS: &str = r#"
CREATE TABLE follows_v7 (
    posting_id     BLOB NOT NULL CHECK (length(posting_id) = 32),
    persona        BLOB NOT NULL
        REFERENCES posting_identities (posting_id) ON DELETE CASCADE,
    followed_at_ms INTEGER NOT NULL,
    PRIMARY KEY (posting_id, persona)
) STRICT, WITHOUT ROWID;
INSERT INTO follows_v7 (posting_id, persona, followed_at_ms)
SELECT f.posting_id, p.persona, f.followed_at_ms
  FROM follows f,
       (SELECT COALESCE(
            (SELECT posting_id FROM default_posting_identity),
            (SELECT posting_id FROM posting_identities WHERE ephemeral = 0
              ORDER BY created_at_ms, posting_id LIMIT 1)) AS persona) p
 WHERE p.persona IS NOT NULL;
DROP TABLE follows;
ALTER TABLE follows_v7 RENAME TO follows;
CREATE INDEX follows_by_persona ON follows (persona, followed_at_ms);
ALTER TABLE circles ADD COLUMN last_persona BLOB
    REFERENCES posting_identities (posting_id) ON DELETE SET NULL;
"#;

/// Version 8: the rotating DM id chains (`store::dm_threads`, `schema/README.md`
/// §9.1). Per peer and direction (`outgoing` 1: our chain, the seed of our
/// next message; 0: the peer's chain, the first seed of the receive
/// window), the chain position `n`, the signed time of the message that set
/// it, and the seed sealed at rest under the archive key. Older seeds are
/// never kept: the row is overwritten as the chain moves.
const V8_DM_THREADS: &str = r#"
CREATE TABLE dm_threads (
    peer        BLOB NOT NULL CHECK (length(peer) = 32),
    outgoing    INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
    n           INTEGER NOT NULL CHECK (n >= 1),
    at_ms       INTEGER NOT NULL,
    sealed_seed BLOB NOT NULL CHECK (length(sealed_seed) = 60),
    PRIMARY KEY (peer, outgoing)
) STRICT, WITHOUT ROWID;
"#;

/// Version 6: the local DM archive (`store::archive`): every DM sent and
/// every DM received and opened, its text sealed at rest under a key
/// derived from the network key, with its peer, direction and time. `dedup`
/// (BLAKE3 of the sealed payload on the wire) keeps a message fetched twice
/// (an acknowledgement lost) from being archived twice.
const V6_DM_ARCHIVE: &str = r#"
CREATE TABLE dm_archive (
    archive_id   INTEGER PRIMARY KEY,
    peer         BLOB NOT NULL CHECK (length(peer) = 32),
    outgoing     INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
    sent_at_ms   INTEGER NOT NULL,
    stored_at_ms INTEGER NOT NULL,
    dedup        BLOB NOT NULL UNIQUE CHECK (length(dedup) = 32),
    sealed       BLOB NOT NULL
) STRICT;
CREATE INDEX dm_archive_by_peer ON dm_archive (peer, sent_at_ms, archive_id);
"#;

/// Version 4: the order in which profiles and recent-post lists were last
/// seen (pushed, pulled or set), so that those the node has no reason to
/// keep form a bounded
/// cache evicted least recently seen first (existing rows start at 0,
/// oldest); and the DMs this node fetched but could not open, kept with
/// their payload before the anchor is told to delete them.
const V4_PROFILE_CACHE_ORDER: &str = r#"
ALTER TABLE profiles ADD COLUMN seen_order INTEGER NOT NULL DEFAULT 0;
CREATE INDEX profiles_by_seen_order ON profiles (seen_order);
ALTER TABLE author_recent_posts ADD COLUMN seen_order INTEGER NOT NULL DEFAULT 0;
CREATE INDEX author_recent_posts_by_seen_order ON author_recent_posts (seen_order);

CREATE TABLE undecryptable_dms (
    payload_hash   BLOB PRIMARY KEY CHECK (length(payload_hash) = 32),
    anchor         BLOB NOT NULL CHECK (length(anchor) = 32),
    channel        BLOB,
    message_id     INTEGER NOT NULL,
    sender         BLOB NOT NULL CHECK (length(sender) = 32),
    received_at_ms INTEGER NOT NULL,
    kept_at_ms     INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    payload        BLOB NOT NULL
) STRICT, WITHOUT ROWID;
"#;

/// Version 5: a delete is relayed by pull to exactly the requesters the
/// deleted post was sent to, so a tombstone remembers whether the post was
/// encrypted and who its recipients were when it was deleted (a tombstone
/// recorded without the post counts as public: served by its author's id).
const V5_TOMBSTONE_RECIPIENTS: &str = r#"
ALTER TABLE tombstones ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0
    CHECK (encrypted IN (0, 1));
CREATE TABLE tombstone_recipients (
    seq       INTEGER NOT NULL REFERENCES tombstones (seq) ON DELETE CASCADE,
    recipient BLOB NOT NULL CHECK (length(recipient) = 32),
    author    BLOB NOT NULL CHECK (length(author) = 32),
    PRIMARY KEY (recipient, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX tombstone_recipients_by_seq ON tombstone_recipients (seq);
"#;

/// Version 3: per anchor, the local `seq` through which our own posts were
/// deposited there (`PushPost`, store-and-forward for offline recipients).
const V3_DEPOSIT_CURSORS: &str = r#"
CREATE TABLE deposit_cursors (
    anchor      BLOB PRIMARY KEY CHECK (length(anchor) = 32),
    through_seq INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"#;

/// Version 1: the initial schema.
///
/// Every id is a 32-byte BLOB; every time is INTEGER ms. `posts.seq` is the
/// local store order (the pull cursor), drawn from `counters('seq')`, which
/// tombstones share so that one cursor covers posts and deletes.
const V1_INITIAL: &str = r#"
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO counters (name, value) VALUES ('seq', 0);

CREATE TABLE posting_identities (
    posting_id    BLOB PRIMARY KEY CHECK (length(posting_id) = 32),
    secret_seed   BLOB NOT NULL CHECK (length(secret_seed) = 32),
    display_name  TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    ephemeral     INTEGER NOT NULL CHECK (ephemeral IN (0, 1))
) STRICT;

CREATE TABLE default_posting_identity (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    posting_id BLOB NOT NULL
        REFERENCES posting_identities (posting_id) ON DELETE CASCADE
) STRICT;

CREATE TABLE posts (
    post_id        BLOB PRIMARY KEY CHECK (length(post_id) = 32),
    seq            INTEGER NOT NULL UNIQUE,
    author         BLOB NOT NULL CHECK (length(author) = 32),
    created_at_ms  INTEGER NOT NULL,
    encrypted      INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
    received_at_ms INTEGER NOT NULL,
    sync_post      BLOB NOT NULL
) STRICT;
CREATE INDEX posts_by_created ON posts (created_at_ms, post_id);
CREATE INDEX posts_by_author_created ON posts (author, created_at_ms, post_id);
CREATE INDEX posts_by_author_seq ON posts (author, seq, encrypted);

CREATE TABLE post_recipients (
    post_id   BLOB NOT NULL REFERENCES posts (post_id) ON DELETE CASCADE,
    recipient BLOB NOT NULL CHECK (length(recipient) = 32),
    PRIMARY KEY (post_id, recipient)
) STRICT, WITHOUT ROWID;

CREATE TABLE tombstones (
    post_id       BLOB NOT NULL CHECK (length(post_id) = 32),
    author        BLOB NOT NULL CHECK (length(author) = 32),
    deleted_at_ms INTEGER NOT NULL,
    seq           INTEGER NOT NULL UNIQUE,
    record        BLOB NOT NULL,
    signature     BLOB NOT NULL,
    PRIMARY KEY (post_id, author)
) STRICT;
CREATE INDEX tombstones_by_author_seq ON tombstones (author, seq);

CREATE TABLE profiles (
    posting_id    BLOB PRIMARY KEY CHECK (length(posting_id) = 32),
    updated_at_ms INTEGER NOT NULL,
    profile       BLOB NOT NULL,
    signature     BLOB NOT NULL
) STRICT;

CREATE TABLE follows (
    posting_id     BLOB PRIMARY KEY CHECK (length(posting_id) = 32),
    followed_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE circles (
    circle_id     INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE CHECK (length(name) > 0),
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE circle_members (
    circle_id   INTEGER NOT NULL REFERENCES circles (circle_id) ON DELETE CASCADE,
    member      BLOB NOT NULL CHECK (length(member) = 32),
    added_at_ms INTEGER NOT NULL,
    PRIMARY KEY (circle_id, member)
) STRICT, WITHOUT ROWID;

CREATE TABLE peers (
    node_id      BLOB PRIMARY KEY CHECK (length(node_id) = 32),
    addresses    TEXT NOT NULL,
    is_anchor    INTEGER NOT NULL CHECK (is_anchor IN (0, 1)),
    last_seen_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX peers_by_last_seen ON peers (last_seen_ms);

CREATE TABLE pull_cursors (
    node_id   BLOB PRIMARY KEY CHECK (length(node_id) = 32),
    since_seq INTEGER NOT NULL
) STRICT;

CREATE TABLE author_recent_posts (
    author        BLOB PRIMARY KEY CHECK (length(author) = 32),
    updated_at_ms INTEGER NOT NULL,
    list          BLOB NOT NULL,
    signature     BLOB NOT NULL
) STRICT;

CREATE TABLE blobs (
    blob_id      BLOB PRIMARY KEY CHECK (length(blob_id) = 32),
    data         BLOB NOT NULL,
    stored_at_ms INTEGER NOT NULL
) STRICT;
"#;

/// Version 2: recipient match (identity rollout phase 3) and audience lists.
///
/// Pull finds encrypted posts by recipient. So that its cost depends on the
/// posts addressed to the requester *after its cursor* rather than on the
/// store, `post_recipients` carries the post's `seq` (kept equal to
/// `posts.seq` by the store) and is indexed by `(recipient, seq)`. Existing
/// rows are backfilled from `posts`.
const V2_RECIPIENT_INDEX_AND_AUDIENCE: &str = r#"
ALTER TABLE post_recipients ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE post_recipients
   SET seq = COALESCE(
       (SELECT p.seq FROM posts AS p WHERE p.post_id = post_recipients.post_id), 0);
CREATE INDEX post_recipients_by_recipient ON post_recipients (recipient, seq);

CREATE TABLE audience_requests (
    author         BLOB NOT NULL CHECK (length(author) = 32),
    requester      BLOB NOT NULL CHECK (length(requester) = 32),
    created_at_ms  INTEGER NOT NULL,
    request        BLOB NOT NULL,
    signature      BLOB NOT NULL,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (author, requester)
) STRICT, WITHOUT ROWID;

CREATE TABLE audience_members (
    author         BLOB NOT NULL CHECK (length(author) = 32),
    member         BLOB NOT NULL CHECK (length(member) = 32),
    approved_at_ms INTEGER NOT NULL,
    PRIMARY KEY (author, member)
) STRICT, WITHOUT ROWID;
"#;

/// The newest schema version this build knows.
pub fn supported_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// `PRAGMA user_version` of `conn`.
pub(crate) fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        what: "user_version",
        reason: format!("negative schema version {v}"),
    })
}

/// Brings `conn` to [`supported_version`], one transaction per migration.
/// Returns the version reached.
pub(crate) fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    migrate_to(conn, supported_version())
}

/// Applies migrations up to `target` (at most [`supported_version`]). The
/// test fixture generator uses it to build an old-version database.
pub(crate) fn migrate_to(conn: &mut Connection, target: u32) -> Result<u32, StoreError> {
    let supported = supported_version();
    let target = target.min(supported);
    loop {
        // Check without the write lock first: the common case is "up to date".
        let found = user_version(conn)?;
        if found > supported {
            return Err(StoreError::TooNew { found, supported });
        }
        if found >= target {
            return Ok(found);
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the write lock: another process may have migrated.
        let version = user_version(&tx)?;
        if version > supported {
            return Err(StoreError::TooNew {
                found: version,
                supported,
            });
        }
        if version < target {
            let sql = usize::try_from(version)
                .ok()
                .and_then(|i| MIGRATIONS.get(i))
                .ok_or(StoreError::Corrupt {
                    what: "user_version",
                    reason: format!("no migration from version {version}"),
                })?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version + 1)?;
        }
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut st = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type IN ('table', 'index') ORDER BY name",
            )
            .unwrap();
        st.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn each_migration_applies_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        assert_eq!(migrate_to(&mut conn, 1).unwrap(), 1);
        let v1 = tables(&conn);
        assert!(v1.contains(&"posts".to_string()));
        assert!(!v1.contains(&"post_recipients_by_recipient".to_string()));
        assert!(!v1.contains(&"audience_requests".to_string()));
        assert_eq!(migrate(&mut conn).unwrap(), supported_version());
        let v2 = tables(&conn);
        for t in [
            "post_recipients_by_recipient",
            "audience_requests",
            "audience_members",
        ] {
            assert!(v2.contains(&t.to_string()), "{t} missing");
        }
        // Idempotent.
        assert_eq!(migrate(&mut conn).unwrap(), supported_version());
    }

    #[test]
    fn newer_version_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", supported_version() + 3)
            .unwrap();
        match migrate(&mut conn) {
            Err(StoreError::TooNew { found, supported }) => {
                assert_eq!(found, supported_version() + 3);
                assert_eq!(supported, supported_version());
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
        assert!(tables(&conn).is_empty());
    }

    #[test]
    fn failed_migration_leaves_version_unchanged() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 1).unwrap();
        // Sabotage: a table migration 2 creates already exists.
        conn.execute_batch("CREATE TABLE audience_members (x INTEGER)")
            .unwrap();
        assert!(migrate(&mut conn).is_err());
        assert_eq!(user_version(&conn).unwrap(), 1);
        // The ALTER TABLE of the failed migration was rolled back too.
        let cols: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('post_recipients') WHERE name = 'seq'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cols, 0);
    }
}
