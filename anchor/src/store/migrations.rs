//! Versioned schema migrations, one list per backend.
//!
//! The schema version is the number of entries of the list applied.
//!
//! * **SQLite** keeps it in `PRAGMA user_version`. Each missing migration
//!   runs in its own `BEGIN IMMEDIATE` transaction together with the
//!   version bump, re-reading the version under the write lock, so a crash
//!   leaves a whole version and two processes opening one file cannot both
//!   apply a migration.
//! * **PostgreSQL** keeps it in `anchor_schema_version`. Each missing
//!   migration runs in its own transaction that first takes a
//!   transaction-scoped advisory lock ([`PG_MIGRATION_LOCK`]), then creates
//!   the version table if needed and re-reads the version: two anchor
//!   processes starting at once serialize, and the second finds nothing to
//!   do. DDL is transactional in PostgreSQL, so a failed migration leaves
//!   nothing behind.
//!
//! A database whose version is above the list's length was written by a
//! newer build and is refused (`StoreError::TooNew`) without being touched.
//!
//! Rules: append, never edit a released entry; keep the two lists
//! equivalent (same tables, columns and indexes, in each dialect, unless
//! a backend's storage calls for another key, as in version 7, an empty
//! entry on the other backend); carry data forward in SQL.
//!
//! | version | what |
//! |---|---|
//! | 1 | meta (audit salt), channels, messages (queue, dedup and expiry indexes), audit log, check-ins, posts and post recipients, counters |
//! | 2 | operator state shared by every anchor on the database: bans, settings (mailbox retention) |
//! | 3 | index `posts (received_at_ms)` for post retention |
//! | 4 | indexes `channels (member_a, id)` and `channels (member_b, id)` for paged `ListChannels` (replacing `channels (member_b)`) |
//! | 5 | tombstones (authors' delete records served by pull) and the recipients of each deleted post |
//! | 6 | `checkins.verified_at_ms`: when the addresses were verified by a dial-back; only verified check-ins are served |
//! | 7 | PostgreSQL only: `messages` keyed by queue, primary key `messages_by_queue (recipient, channel, id)` replacing the key on `id` and the separate queue index (one index fewer per message); SQLite unchanged (its `id` is the rowid `AUTOINCREMENT` needs) |

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// SQLite migrations; entry `i` takes the database from version `i` to
/// `i + 1`.
pub(crate) const SQLITE: &[&str] = &[
    SQLITE_V1, SQLITE_V2, SQLITE_V3, SQLITE_V4, SQLITE_V5, SQLITE_V6, SQLITE_V7,
];

/// PostgreSQL migrations, the same schema in PostgreSQL's dialect.
pub(crate) const POSTGRES: &[&str] = &[
    POSTGRES_V1,
    POSTGRES_V2,
    POSTGRES_V3,
    POSTGRES_V4,
    POSTGRES_V5,
    POSTGRES_V6,
    POSTGRES_V7,
];

/// The advisory lock key (one `bigint`) held while migrating PostgreSQL:
/// the bytes `"dsanchrm"`.
pub(crate) const PG_MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"dsanchrm");

pub(crate) fn sqlite_supported() -> u32 {
    u32::try_from(SQLITE.len()).unwrap_or(u32::MAX)
}

pub(crate) fn postgres_supported() -> u32 {
    u32::try_from(POSTGRES.len()).unwrap_or(u32::MAX)
}

/// Version 4 (SQLite): a page of a member's channels in channel-id order
/// is a range scan of one of these per member column (`ListChannels`
/// pagination); `(member_b, id)` makes `(member_b)` redundant.
const SQLITE_V4: &str = "
CREATE INDEX channels_by_member_a_id ON channels (member_a, id);
CREATE INDEX channels_by_member_b_id ON channels (member_b, id);
DROP INDEX channels_by_member_b;
";

/// Version 4 (PostgreSQL): see [`SQLITE_V4`].
const POSTGRES_V4: &str = "
CREATE INDEX channels_by_member_a_id ON channels (member_a, id);
CREATE INDEX channels_by_member_b_id ON channels (member_b, id);
DROP INDEX channels_by_member_b;
";
/// Version 5 (SQLite): tombstones. One row per author's delete record held
/// (the signed record, so it can be served by pull), with a `seq` drawn from
/// the `post_seq` counter so that one pull cursor covers posts and deletes.
/// `encrypted` and `tombstone_recipients` keep who the deleted post was
/// served to (its recipients when it was deleted), so the delete reaches
/// exactly the pulls that would have matched the post. A post with a
/// tombstone by its author is never stored again.
const SQLITE_V5: &str = r#"
CREATE TABLE tombstones (
    seq            INTEGER PRIMARY KEY,
    post_id        BLOB NOT NULL CHECK (length(post_id) = 32),
    author         BLOB NOT NULL CHECK (length(author) = 32),
    encrypted      INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
    received_at_ms INTEGER NOT NULL,
    record         BLOB NOT NULL,
    signature      BLOB NOT NULL,
    UNIQUE (post_id, author)
) STRICT;
CREATE INDEX tombstones_by_author_seq ON tombstones (author, encrypted, seq);

CREATE TABLE tombstone_recipients (
    recipient BLOB NOT NULL CHECK (length(recipient) = 32),
    seq       INTEGER NOT NULL REFERENCES tombstones (seq) ON DELETE CASCADE,
    author    BLOB NOT NULL CHECK (length(author) = 32),
    PRIMARY KEY (recipient, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX tombstone_recipients_by_seq ON tombstone_recipients (seq);
"#;

/// Version 5 (PostgreSQL): see [`SQLITE_V5`].
const POSTGRES_V5: &str = r#"
CREATE TABLE tombstones (
    seq            BIGINT PRIMARY KEY,
    post_id        BYTEA NOT NULL CHECK (octet_length(post_id) = 32),
    author         BYTEA NOT NULL CHECK (octet_length(author) = 32),
    encrypted      BOOLEAN NOT NULL,
    received_at_ms BIGINT NOT NULL,
    record         BYTEA NOT NULL,
    signature      BYTEA NOT NULL,
    UNIQUE (post_id, author)
);
CREATE INDEX tombstones_by_author_seq ON tombstones (author, encrypted, seq);

CREATE TABLE tombstone_recipients (
    recipient BYTEA NOT NULL CHECK (octet_length(recipient) = 32),
    seq       BIGINT NOT NULL REFERENCES tombstones (seq) ON DELETE CASCADE,
    author    BYTEA NOT NULL CHECK (octet_length(author) = 32),
    PRIMARY KEY (recipient, seq)
);
CREATE INDEX tombstone_recipients_by_seq ON tombstone_recipients (seq);
"#;
/// Version 6 (SQLite): a check-in's addresses are served only once the
/// anchor verified them by dialling back with the NodeId pinned
/// (`verified_at_ms`, ms). Rows from before (unverified) stay NULL, are
/// never served, and age out with the check-in retention.
const SQLITE_V6: &str = "ALTER TABLE checkins ADD COLUMN verified_at_ms INTEGER;";

/// Version 6 (PostgreSQL): see [`SQLITE_V6`].
const POSTGRES_V6: &str = "ALTER TABLE checkins ADD COLUMN verified_at_ms BIGINT;";

/// Version 7 (SQLite): nothing. SQLite's `messages` is a rowid table (the
/// rowid is the `AUTOINCREMENT` id), so its queue order needs the
/// separate `messages_by_queue` index; see [`POSTGRES_V7`].
const SQLITE_V7: &str = "-- version 7 changes only the PostgreSQL schema";

/// Version 7 (PostgreSQL): `messages` keyed by queue. Every read, ack
/// delete and listing goes by `(recipient, channel, id)`; the key on `id`
/// alone was an index that only inserts paid for (ids come from a
/// sequence, unique without it). The queue index becomes the primary
/// key, under its old name `messages_by_queue`: each message costs three
/// index entries instead of four (key, dedup, expiry).
const POSTGRES_V7: &str = "
ALTER TABLE messages DROP CONSTRAINT messages_pkey;
DROP INDEX messages_by_queue;
ALTER TABLE messages ADD CONSTRAINT messages_by_queue PRIMARY KEY (recipient, channel, id);
";

/// Version 3 (SQLite): post retention deletes by receive time.
const SQLITE_V3: &str = "CREATE INDEX posts_by_received ON posts (received_at_ms);";

/// Version 3 (PostgreSQL): see [`SQLITE_V3`].
const POSTGRES_V3: &str = "CREATE INDEX posts_by_received ON posts (received_at_ms);";

/// Version 2 (SQLite): operator state that outlives a restart and is shared
/// by every anchor process on the database. `settings.value` is an integer
/// (today only `mailbox_ttl_ms`).
const SQLITE_V2: &str = r#"
CREATE TABLE bans (
    node         BLOB PRIMARY KEY CHECK (length(node) = 32),
    banned_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Version 2 (PostgreSQL): see [`SQLITE_V2`].
const POSTGRES_V2: &str = r#"
CREATE TABLE bans (
    node         BYTEA PRIMARY KEY CHECK (octet_length(node) = 32),
    banned_at_ms BIGINT NOT NULL
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
"#;

/// Version 1 (SQLite).
///
/// Ids are BLOBs with checked lengths, times INTEGER ms. The channel column
/// of `messages` is empty (`X''`) for the legacy mailbox, so a queue is an
/// ordinary `(recipient, channel)` key. `payload` is the last column so that
/// reading the others never touches its overflow pages.
const SQLITE_V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO counters (name, value) VALUES ('post_seq', 0);

CREATE TABLE channels (
    id            BLOB PRIMARY KEY CHECK (length(id) = 16),
    member_a      BLOB NOT NULL CHECK (length(member_a) = 32),
    member_b      BLOB NOT NULL CHECK (length(member_b) = 32),
    created_at_ms INTEGER NOT NULL,
    CHECK (member_a < member_b),
    UNIQUE (member_a, member_b)
) STRICT, WITHOUT ROWID;
CREATE INDEX channels_by_member_b ON channels (member_b);

CREATE TABLE messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient      BLOB NOT NULL CHECK (length(recipient) = 32),
    channel        BLOB NOT NULL CHECK (length(channel) IN (0, 16)),
    sender         BLOB NOT NULL CHECK (length(sender) = 32),
    client_msg_id  BLOB CHECK (client_msg_id IS NULL OR length(client_msg_id) = 16),
    received_at_ms INTEGER NOT NULL,
    expires_at_ms  INTEGER NOT NULL,
    payload_len    INTEGER NOT NULL,
    payload        BLOB NOT NULL
) STRICT;
CREATE INDEX messages_by_queue ON messages (recipient, channel, id);
CREATE UNIQUE INDEX messages_dedup ON messages (recipient, channel, sender, client_msg_id)
    WHERE client_msg_id IS NOT NULL;
CREATE INDEX messages_by_expiry ON messages (expires_at_ms);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at_ms   INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    actor   BLOB NOT NULL CHECK (length(actor) = 8),
    channel BLOB CHECK (channel IS NULL OR length(channel) = 16),
    detail  TEXT NOT NULL
) STRICT;
CREATE INDEX audit_by_time ON audit_log (at_ms);

CREATE TABLE checkins (
    node         BLOB PRIMARY KEY CHECK (length(node) = 32),
    addrs        TEXT NOT NULL,
    is_anchor    INTEGER NOT NULL CHECK (is_anchor IN (0, 1)),
    last_seen_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX checkins_by_seen ON checkins (last_seen_ms);
CREATE INDEX checkins_anchors_by_seen ON checkins (is_anchor, last_seen_ms);

CREATE TABLE posts (
    seq            INTEGER PRIMARY KEY,
    post_id        BLOB NOT NULL UNIQUE CHECK (length(post_id) = 32),
    author         BLOB NOT NULL CHECK (length(author) = 32),
    encrypted      INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
    created_at_ms  INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    sync_post      BLOB NOT NULL
) STRICT;
CREATE INDEX posts_by_author_seq ON posts (author, encrypted, seq);

CREATE TABLE post_recipients (
    recipient BLOB NOT NULL CHECK (length(recipient) = 32),
    seq       INTEGER NOT NULL REFERENCES posts (seq) ON DELETE CASCADE,
    author    BLOB NOT NULL CHECK (length(author) = 32),
    PRIMARY KEY (recipient, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX post_recipients_by_seq ON post_recipients (seq);
"#;

/// Version 1 (PostgreSQL). Message ids come from the `message_ids`
/// sequence (drawn under per-queue advisory locks, see `postgres.rs`);
/// sealed payloads are incompressible, so they are stored `EXTERNAL`
/// (out of line, no compression attempt).
const POSTGRES_V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('post_seq', 0);

CREATE TABLE channels (
    id            BYTEA PRIMARY KEY CHECK (octet_length(id) = 16),
    member_a      BYTEA NOT NULL CHECK (octet_length(member_a) = 32),
    member_b      BYTEA NOT NULL CHECK (octet_length(member_b) = 32),
    created_at_ms BIGINT NOT NULL,
    CHECK (member_a < member_b),
    UNIQUE (member_a, member_b)
);
CREATE INDEX channels_by_member_b ON channels (member_b);

CREATE SEQUENCE message_ids AS BIGINT;
CREATE TABLE messages (
    id             BIGINT PRIMARY KEY,
    recipient      BYTEA NOT NULL CHECK (octet_length(recipient) = 32),
    channel        BYTEA NOT NULL CHECK (octet_length(channel) IN (0, 16)),
    sender         BYTEA NOT NULL CHECK (octet_length(sender) = 32),
    client_msg_id  BYTEA CHECK (client_msg_id IS NULL OR octet_length(client_msg_id) = 16),
    received_at_ms BIGINT NOT NULL,
    expires_at_ms  BIGINT NOT NULL,
    payload_len    INTEGER NOT NULL,
    payload        BYTEA NOT NULL
);
ALTER TABLE messages ALTER COLUMN payload SET STORAGE EXTERNAL;
CREATE INDEX messages_by_queue ON messages (recipient, channel, id);
CREATE UNIQUE INDEX messages_dedup ON messages (recipient, channel, sender, client_msg_id)
    WHERE client_msg_id IS NOT NULL;
CREATE INDEX messages_by_expiry ON messages (expires_at_ms);

CREATE TABLE audit_log (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms   BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    actor   BYTEA NOT NULL CHECK (octet_length(actor) = 8),
    channel BYTEA CHECK (channel IS NULL OR octet_length(channel) = 16),
    detail  TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit_log (at_ms);

CREATE TABLE checkins (
    node         BYTEA PRIMARY KEY CHECK (octet_length(node) = 32),
    addrs        TEXT NOT NULL,
    is_anchor    BOOLEAN NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
CREATE INDEX checkins_by_seen ON checkins (last_seen_ms);
CREATE INDEX checkins_anchors_by_seen ON checkins (is_anchor, last_seen_ms);

CREATE TABLE posts (
    seq            BIGINT PRIMARY KEY,
    post_id        BYTEA NOT NULL UNIQUE CHECK (octet_length(post_id) = 32),
    author         BYTEA NOT NULL CHECK (octet_length(author) = 32),
    encrypted      BOOLEAN NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    sync_post      BYTEA NOT NULL
);
CREATE INDEX posts_by_author_seq ON posts (author, encrypted, seq);

CREATE TABLE post_recipients (
    recipient BYTEA NOT NULL CHECK (octet_length(recipient) = 32),
    seq       BIGINT NOT NULL REFERENCES posts (seq) ON DELETE CASCADE,
    author    BYTEA NOT NULL CHECK (octet_length(author) = 32),
    PRIMARY KEY (recipient, seq)
);
CREATE INDEX post_recipients_by_seq ON post_recipients (seq);
"#;

/// `PRAGMA user_version` of an SQLite database.
pub(crate) fn sqlite_user_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::corrupt("user_version", v))
}

/// Applies the missing SQLite migrations.
pub(crate) fn migrate_sqlite(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = sqlite_supported();
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = sqlite_user_version(&tx)?;
        if found > supported {
            return Err(StoreError::TooNew { found, supported });
        }
        let Some(sql) = SQLITE.get(found as usize) else {
            tx.commit()?;
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
        tracing::info!(version = found + 1, "sqlite store migrated");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn sqlite_migrations_apply_and_are_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_sqlite(&mut conn).unwrap();
        assert_eq!(sqlite_user_version(&conn).unwrap(), sqlite_supported());
        migrate_sqlite(&mut conn).unwrap();
        assert_eq!(sqlite_user_version(&conn).unwrap(), sqlite_supported());
    }

    #[test]
    fn sqlite_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        match migrate_sqlite(&mut conn) {
            Err(StoreError::TooNew { found: 99, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn both_dialects_define_the_same_tables_and_indexes() {
        fn names(sql: &str) -> Vec<String> {
            let mut v: Vec<String> = sql
                .split(';')
                .filter_map(|stmt| {
                    let s = stmt.split_whitespace().collect::<Vec<_>>();
                    match s.as_slice() {
                        ["CREATE", "TABLE", name, ..] => Some(format!("t:{name}")),
                        ["CREATE", "INDEX", name, ..] => Some(format!("i:{name}")),
                        ["CREATE", "UNIQUE", "INDEX", name, ..] => Some(format!("i:{name}")),
                        _ => None,
                    }
                })
                .collect();
            v.sort();
            v
        }
        assert_eq!(SQLITE.len(), POSTGRES.len());
        for (s, p) in SQLITE.iter().zip(POSTGRES) {
            assert_eq!(names(s), names(p));
        }
    }
}
