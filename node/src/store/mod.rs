//! The node's embedded SQLite store.
//!
//! What it does: keeps everything a user node holds between runs — posting
//! identities (with their secret seeds), posts and their recipient index,
//! delete tombstones, profiles, follows, circles, peers and pull cursors,
//! `author_recent_posts` lists, blobs and audience lists — behind a typed,
//! synchronous API. Ids are the protocol id types; times are milliseconds
//! passed in by the caller (the store never reads the clock).
//!
//! What it does not do: decide protocol rules. Validity of posts, deletes and
//! visibility updates ([`SyncPost::validate`],
//! [`SyncPost::apply_update`], `validate_for`), the pull filter
//! ([`distsoc_protocol::sync::PullFilter`]) and the `author_recent_posts` seq
//! rule ([`distsoc_protocol::recent::decide`]) are `distsoc-protocol`'s; the
//! store calls them and does the I/O around them.
//!
//! # Sharing and threading
//!
//! [`Store`] is a [`rusqlite::Connection`] behind a [`std::sync::Mutex`]
//! inside an [`Arc`]: it is `Send + Sync`, and cloning it is cheap (all clones
//! share the one connection). Every call blocks the calling thread for the
//! duration of one SQLite transaction; the async node calls it through
//! `tokio::task::spawn_blocking`. Two *processes* (the node and the CLI) may
//! open the same file: SQLite's WAL mode lets readers run alongside one
//! writer, writers take the write lock up front (`BEGIN IMMEDIATE`) and wait
//! up to [`BUSY_TIMEOUT`] for each other.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`. With WAL,
//! `synchronous = NORMAL` is already safe against *corruption* and against a
//! crash of the process (a commit is in the WAL, in the OS page cache, before
//! it returns), but the WAL is only fsynced at checkpoints, so an OS crash or
//! power loss can roll back the last transactions that were reported as
//! committed. That is not acceptable here: a post the user was told is
//! published (and that may already be on peers) and, worse, a freshly
//! generated posting seed whose profile peers may already hold, would be lost
//! for good. `FULL` fsyncs the WAL once per commit (not twice, as a rollback
//! journal would), so the price is one fsync per transaction; bulk ingest
//! (a pull page) goes through [`Store::insert_posts`], one transaction for the
//! whole page.
//!
//! `secure_delete` is on: deleted posts, revoked keys and removed posting
//! seeds are overwritten in the database file rather than left in free pages.
//!
//! # Files
//!
//! The database file is created with mode 0600 before SQLite opens it (it
//! holds posting-key seeds); SQLite creates the `-wal` and `-shm` files with
//! the database file's mode. An existing file with a looser mode is tightened
//! to 0600 on open.
//!
//! # Schema and migrations
//!
//! The schema is versioned with `PRAGMA user_version`; see [`migrations`].
//! [`Store::open`] applies the missing migrations, each in one transaction,
//! and refuses a database written by a newer build ([`StoreError::TooNew`]).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use distsoc_net::datadir::{prepare_file, tighten_sidecars};
use distsoc_protocol::codec::{self, Struct};
use distsoc_protocol::error::{ErrorCode, StorageFault, ToWireError, WireCode};
use distsoc_protocol::messages::content::{IngestError, SyncPost};
use distsoc_protocol::messages::signed::{Signed, SignedBody};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

mod archive;
mod dm_groups;
mod dm_threads;
mod kept;
pub mod migrations;
mod network;
mod posts;
mod restore;
mod social;

pub use archive::{archive_key, ArchivedDm, PendingDm, MAX_HISTORY};
pub use dm_groups::{DmGroupInfo, GroupDm, GroupThreadId, PendingGroupDm};
pub use dm_threads::DmChain;
pub use kept::{KeptDm, MAX_KEPT_DMS, MAX_KEPT_DM_BYTES};
pub use network::{
    PeerRecord, MAX_CACHED_RECENT_LISTS, MAX_CACHED_RECENT_LIST_BYTES, MAX_PEER_ADDRESSES,
};
pub use posts::{DeleteOutcome, Inserted, PullPage, StoredDelete, VisibilityOutcome};
pub use restore::SocialState;
pub use social::{
    AudienceMember, CircleInfo, FollowEntry, PostingIdentityInfo, Upsert, MAX_CACHED_PROFILES,
    MAX_CACHED_PROFILE_BYTES, MAX_PENDING_AUDIENCE_REQUESTS,
    MAX_PENDING_AUDIENCE_REQUESTS_PER_REQUESTER,
};

/// How long a write waits for another connection (or process) holding the
/// write lock before failing with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest canonical `SyncPost` the store accepts, bytes: the post (256 KiB),
/// its visibility (256 KiB), header (256 KiB) and visibility update
/// (260 KiB) all at their limits stay below it. It equals the `PushPost`
/// frame cap, so anything that can arrive in one push can be stored.
pub const MAX_STORED_SYNC_POST_BYTES: usize = 2 * 1024 * 1024;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (I/O error, constraint violation, busy after
    /// [`BUSY_TIMEOUT`], ...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Creating the database file or setting its permissions failed.
    #[error("database file: {0}")]
    Io(#[from] std::io::Error),
    /// Stored bytes did not decode, or a stored value is out of range: the
    /// database was modified outside this code or damaged.
    #[error("corrupt {what} in the store: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it is unusable.
        reason: String,
    },
    /// The database was written by a newer build: its schema version is
    /// higher than the number of migrations this build knows. Its contents
    /// and journal mode were not changed (only a file mode looser than 0600
    /// is tightened).
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    TooNew {
        /// `PRAGMA user_version` of the file.
        found: u32,
        /// The newest version this build knows (`MIGRATIONS.len()`).
        supported: u32,
    },
    /// A value exceeds its size limit (a blob over 256 KiB, a `SyncPost`
    /// over [`MAX_STORED_SYNC_POST_BYTES`]).
    #[error("{what} is {got} bytes, over the limit of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit, bytes.
        max: usize,
        /// The actual size, bytes.
        got: usize,
    },
    /// A bounded collection is full (pending audience requests); nothing
    /// was written. Retry after the owner has dealt with what is pending.
    #[error("{what} are full (at most {max})")]
    Full {
        /// What is full.
        what: &'static str,
        /// Its bound.
        max: usize,
    },
    /// The named thing (a circle, a posting identity) does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: &'static str,
    },
    /// A thing with that unique name already exists (e.g. a circle name).
    #[error("{what} already exists")]
    AlreadyExists {
        /// What already exists.
        what: &'static str,
    },
    /// An argument was rejected before touching the database (e.g. an empty
    /// circle name).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A received object failed the protocol's checks (bad signature, not by
    /// the post's author, ...). The [`IngestError`]'s [`WireCode`] is the
    /// wire error code to answer with.
    #[error(transparent)]
    Invalid(#[from] IngestError),
}

/// `retryAfterMs` when a bounded collection (pending audience requests) is
/// full ([`StoreError::Full`]): the node's owner has to act first, which
/// takes minutes, not ms.
pub const FULL_RETRY_AFTER_MS: u32 = 60_000;

/// The [`StorageFault`] of a SQLite error: busy or locked past
/// [`BUSY_TIMEOUT`], an I/O error, a full disk or a file that cannot be
/// opened are transient; anything else (corruption, a constraint broken by a
/// bug, misuse) is broken. The anchor classifies its SQLite errors by the
/// same rule (`distsoc_anchor::store`).
pub fn sqlite_fault(e: &rusqlite::Error) -> StorageFault {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(
            C::DatabaseBusy | C::DatabaseLocked | C::SystemIoFailure | C::DiskFull | C::CannotOpen,
        ) => StorageFault::Transient,
        _ => StorageFault::Broken,
    }
}

impl StoreError {
    /// The [`StorageFault`] if this is a failure of the store itself (not a
    /// refusal of the caller's input).
    pub fn storage_fault(&self) -> Option<StorageFault> {
        match self {
            StoreError::Sqlite(e) => Some(sqlite_fault(e)),
            StoreError::Io(_) => Some(StorageFault::Transient),
            StoreError::Corrupt { .. } | StoreError::TooNew { .. } => Some(StorageFault::Broken),
            StoreError::TooLarge { .. }
            | StoreError::Full { .. }
            | StoreError::NotFound { .. }
            | StoreError::AlreadyExists { .. }
            | StoreError::InvalidArgument(_)
            | StoreError::Invalid(_) => None,
        }
    }

    fn corrupt(what: &'static str, reason: impl fmt::Display) -> Self {
        StoreError::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }
}

impl WireCode for StoreError {
    /// A storage failure by [`StorageFault`]; a full collection is
    /// `rateLimited` (retry after [`FULL_RETRY_AFTER_MS`]); the rest are
    /// refusals of the caller's input. `AlreadyExists` only answers the
    /// node's own user (a circle name), never a peer: `internal`.
    fn error_code(&self) -> ErrorCode {
        if let Some(fault) = self.storage_fault() {
            return fault.error_code();
        }
        match self {
            StoreError::TooLarge { .. } => ErrorCode::TooLarge,
            StoreError::Full { .. } => ErrorCode::RateLimited,
            StoreError::NotFound { .. } => ErrorCode::NotFound,
            StoreError::InvalidArgument(_) => ErrorCode::Malformed,
            StoreError::Invalid(e) => e.error_code(),
            StoreError::AlreadyExists { .. }
            | StoreError::Sqlite(_)
            | StoreError::Io(_)
            | StoreError::Corrupt { .. }
            | StoreError::TooNew { .. } => ErrorCode::Internal,
        }
    }
}

impl ToWireError for StoreError {
    fn retry_after_ms(&self) -> u32 {
        match (self, self.storage_fault()) {
            (_, Some(fault)) => fault.retry_after_ms(),
            (StoreError::Full { .. }, None) => FULL_RETRY_AFTER_MS,
            _ => 0,
        }
    }
}

/// The node's store: one SQLite connection, shared.
///
/// Cheap to clone (an [`Arc`]); `Send + Sync`. See the [module
/// docs](self) for threading, durability and file permissions.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Stored rows skipped by reads because they no longer decode.
    skipped: Arc<AtomicU64>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

impl Store {
    /// Opens (creating if needed) the database at `path`: creates the file
    /// with mode 0600, sets WAL mode, `synchronous = FULL`, foreign keys and
    /// the busy timeout, then applies the missing migrations.
    ///
    /// Fails with [`StoreError::TooNew`] if the file was written by a newer
    /// build. The parent directory must exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref();
        prepare_file(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let store = Self::setup(conn, true)?;
        tighten_sidecars(path)?;
        Ok(store)
    }

    /// A private in-memory database (for tests and tools); same schema and
    /// pragmas, no file.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::setup(Connection::open_in_memory()?, false)
    }

    fn setup(mut conn: Connection, wal: bool) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Room for every statement the store prepares with
        // `prepare_cached` (rusqlite's default keeps 16).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Refuse a newer database before changing anything in it (the
        // journal mode is stored in the file).
        let found = migrations::user_version(&conn)?;
        let supported = migrations::supported_version();
        if found > supported {
            return Err(StoreError::TooNew { found, supported });
        }
        if wal {
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::corrupt(
                    "journal mode",
                    format!("could not switch to WAL (got {mode})"),
                ));
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "secure_delete", true)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        migrations::migrate(&mut conn)?;
        posts::prepare_connection(&conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            skipped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many stored rows reads of this store (all clones) have skipped
    /// because they do not decode or break a limit: rows written by an older
    /// build or damaged on disk. Each skip is also logged (`warn`) with the
    /// row's id and this running total. Such a row never fails a whole feed
    /// or pull page.
    pub fn unreadable_rows_skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Counts and logs one stored row that a read skipped.
    fn skip_unreadable(&self, what: &'static str, id: &[u8], error: &StoreError) {
        let total = self.skipped.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            what,
            id = %hex::encode(id),
            %error,
            skipped_total = total,
            "skipped a stored row that does not decode"
        );
    }

    /// The schema version of the open database (`PRAGMA user_version`);
    /// after [`Store::open`] it is `MIGRATIONS.len()`.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let conn = self.lock();
        migrations::user_version(&conn)
    }

    /// Locks the connection. A panic while it was held (only possible in a
    /// caller's closure in tests) leaves no open transaction behind — rusqlite
    /// rolls back on drop — so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in a read transaction (one consistent snapshot).
    fn read<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` in a write transaction, taking the write lock up front
    /// (`BEGIN IMMEDIATE`, so a second process waits in the busy handler
    /// instead of failing on lock upgrade), and commits if `f` succeeds.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// Conversions shared by the submodules
// ---------------------------------------------------------------------------

/// A `u64` (time in ms, seq) as an SQLite integer. SQLite integers are
/// signed; values above `i64::MAX` (not reachable by any real clock or
/// counter) are clamped, which keeps them ordered last.
fn to_sql_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored non-negative integer back as `u64`.
fn from_sql_u64(what: &'static str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::corrupt(what, format!("negative value {v}")))
}

/// A `usize` limit as an SQL `LIMIT`.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Marks the row of `table` whose `key_col` is `key` as seen just now: its
/// `seen_order` becomes the table's highest (the bounded caches evict the
/// lowest first). `table` and `key_col` are constants of this crate.
fn touch(tx: &Transaction<'_>, table: &str, key_col: &str, key: &[u8]) -> Result<(), StoreError> {
    tx.prepare_cached(&format!(
        "UPDATE {table} SET seen_order = (SELECT COALESCE(MAX(seen_order), 0) + 1 FROM {table})
          WHERE {key_col} = ?1"
    ))?
    .execute([key])?;
    Ok(())
}

/// Evicts cache rows beyond a count and a byte bound. `select_sql` lists the
/// evictable rows as `(key, bytes)`, most recently seen first; `delete_sql`
/// deletes one by key. Returns how many were evicted.
fn evict_lru(
    tx: &Transaction<'_>,
    select_sql: &str,
    delete_sql: &str,
    max_rows: usize,
    max_bytes: usize,
) -> Result<usize, StoreError> {
    let mut victims: Vec<Vec<u8>> = Vec::new();
    {
        let mut stmt = tx.prepare_cached(select_sql)?;
        let mut rows = stmt.query([])?;
        let (mut count, mut bytes) = (0usize, 0usize);
        while let Some(r) = rows.next()? {
            let len = usize::try_from(r.get::<_, i64>(1)?).unwrap_or(usize::MAX);
            count += 1;
            bytes = bytes.saturating_add(len);
            if count > max_rows || bytes > max_bytes {
                victims.push(r.get(0)?);
            }
        }
    }
    let mut del = tx.prepare_cached(delete_sql)?;
    for v in &victims {
        del.execute([v])?;
    }
    Ok(victims.len())
}

/// A BLOB column of a row, borrowed from SQLite's buffer.
fn blob<'a>(row: &'a rusqlite::Row<'_>, idx: usize) -> Result<&'a [u8], StoreError> {
    row.get_ref(idx)?
        .as_blob()
        .map_err(|e| StoreError::corrupt("column", format!("column {idx}: {e}")))
}

/// A stored 32-byte id.
fn id32(what: &'static str, bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| StoreError::corrupt(what, format!("{} bytes, expected 32", bytes.len())))
}

/// Decodes a stored canonical `SyncPost`.
fn decode_sync_post(bytes: &[u8]) -> Result<SyncPost, StoreError> {
    codec::from_canonical::<SyncPost>("syncPost", bytes, MAX_STORED_SYNC_POST_BYTES)
        .map_err(|e| StoreError::corrupt("post", e))
}

/// Rebuilds a signed object from its stored canonical bytes and signature
/// (checks the canonical form and the body's rules, not the signature, which
/// was verified before it was stored).
fn decode_signed<T: SignedBody>(
    what: &'static str,
    bytes: &[u8],
    signature: &[u8],
) -> Result<Signed<T>, StoreError> {
    Signed::<T>::decode(Ok(bytes), Ok(signature)).map_err(|e| StoreError::corrupt(what, e))
}

/// Canonical bytes of a value, checked against a limit.
fn canonical_within<T: Struct>(
    what: &'static str,
    value: &T,
    max: usize,
) -> Result<Vec<u8>, StoreError> {
    let bytes = codec::canonical_of(value);
    if bytes.len() > max {
        return Err(StoreError::TooLarge {
            what,
            max,
            got: bytes.len(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    /// Every variant reaches the wire by the shared rule (the anchor's
    /// store has the same test): storage failures by `StorageFault` with a
    /// generic message, refusals with their text.
    #[test]
    fn errors_map_to_wire_codes() {
        use distsoc_protocol::error::{
            INTERNAL_MESSAGE, STORAGE_RETRY_AFTER_MS, UNAVAILABLE_MESSAGE,
        };
        use rusqlite::ffi;
        let unavailable = [
            StoreError::from(sqlite(ffi::SQLITE_BUSY)),
            StoreError::from(sqlite(ffi::SQLITE_LOCKED)),
            StoreError::from(sqlite(ffi::SQLITE_IOERR)),
            StoreError::from(sqlite(ffi::SQLITE_FULL)),
            StoreError::from(sqlite(ffi::SQLITE_CANTOPEN)),
            StoreError::Io(std::io::Error::other("/home/u/.distsoc/node.db")),
        ];
        for e in unavailable {
            assert_eq!(e.storage_fault(), Some(StorageFault::Transient), "{e}");
            let w = e.to_wire_error();
            assert_eq!(w.code, ErrorCode::Unavailable, "{e}");
            assert_eq!(w.message, UNAVAILABLE_MESSAGE, "{e}");
            assert_eq!(w.retry_after_ms, STORAGE_RETRY_AFTER_MS, "{e}");
        }
        let internal = [
            StoreError::from(sqlite(ffi::SQLITE_CORRUPT)),
            StoreError::from(sqlite(ffi::SQLITE_NOTADB)),
            StoreError::from(sqlite(ffi::SQLITE_CONSTRAINT)),
            StoreError::from(rusqlite::Error::QueryReturnedNoRows),
            StoreError::corrupt("post", "bad bytes"),
            StoreError::TooNew {
                found: 9,
                supported: 1,
            },
        ];
        for e in internal {
            assert_eq!(e.storage_fault(), Some(StorageFault::Broken), "{e}");
            let w = e.to_wire_error();
            assert_eq!(w.code, ErrorCode::Internal, "{e}");
            assert_eq!(w.message, INTERNAL_MESSAGE, "{e}");
            assert_eq!(w.retry_after_ms, 0, "{e}");
        }
        let refusals = [
            (
                StoreError::TooLarge {
                    what: "blob",
                    max: 1,
                    got: 2,
                },
                ErrorCode::TooLarge,
                0,
            ),
            (
                StoreError::Full {
                    what: "audience requests",
                    max: 1,
                },
                ErrorCode::RateLimited,
                FULL_RETRY_AFTER_MS,
            ),
            (
                StoreError::NotFound { what: "circle" },
                ErrorCode::NotFound,
                0,
            ),
            (
                StoreError::InvalidArgument("empty circle name"),
                ErrorCode::Malformed,
                0,
            ),
            (
                StoreError::Invalid(IngestError::Stale {
                    what: "post",
                    held: 2,
                    got: 1,
                }),
                ErrorCode::Stale,
                0,
            ),
        ];
        for (e, code, retry) in refusals {
            assert_eq!(e.storage_fault(), None, "{e}");
            let w = e.to_wire_error();
            assert_eq!(w.code, code, "{e}");
            assert_eq!(w.message, e.to_string());
            assert_eq!(w.retry_after_ms, retry, "{e}");
        }
        // Only ever answers the node's own user; never a reason to a peer.
        let e = StoreError::AlreadyExists { what: "circle" };
        assert_eq!(e.to_wire_error().message, INTERNAL_MESSAGE);
    }

    #[test]
    fn store_is_send_sync_and_clone() {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync::<Store>();
    }

    #[test]
    fn in_memory_store_has_current_schema_and_pragmas() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            migrations::MIGRATIONS.len() as u32
        );
        let conn = store.lock();
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous = FULL");
    }

    #[test]
    fn u64_conversions_clamp_and_reject_negatives() {
        assert_eq!(to_sql_u64(5), 5);
        assert_eq!(to_sql_u64(u64::MAX), i64::MAX);
        assert_eq!(from_sql_u64("x", 7).unwrap(), 7);
        assert!(matches!(
            from_sql_u64("x", -1),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(id32("x", &[0; 31]).is_err());
    }
}
