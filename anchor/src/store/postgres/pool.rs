//! PostgreSQL: the two connection pools (the mailbox's, with session
//! settings of its own, and the other one).

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::StoreError;

/// What the mailbox's pooled connections (write batches, read-only
/// fetches; [`mailbox_config`]) set for their whole session. Their plans
/// are generic, made once per connection (`plan_cache_mode`): with the
/// default (`auto`) PostgreSQL planned every execution of these statements
/// anew, since the arrays they take make a custom plan look cheaper
/// (planning was a quarter of the cluster's CPU in the mailbox benchmark).
/// And they never scan `messages` sequentially (`enable_seqscan`): every
/// one reads a few queues by key, and a sequential scan, which the planner
/// picks while the table is small, reads every dead row of a table whose
/// rows are deleted as fast as they are inserted (and a generic plan would
/// keep it). Session settings of a pool of their own, not `SET LOCAL` in
/// each transaction: a read-only fetch is then one statement (no `BEGIN`,
/// `SET`s, `COMMIT`), a write batch starts with a plain `BEGIN`, and the
/// other pool (pull, posts, channels) keeps custom plans.
pub(super) const MAILBOX_SESSION_OPTIONS: &str =
    "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off";

/// The connection settings of the mailbox pool: `cfg` with
/// [`MAILBOX_SESSION_OPTIONS`] after the operator's own `options` (if any).
pub(super) fn mailbox_config(cfg: &tokio_postgres::Config) -> tokio_postgres::Config {
    let mut m = cfg.clone();
    let options = match cfg.get_options() {
        Some(o) if !o.trim().is_empty() => format!("{o} {MAILBOX_SESSION_OPTIONS}"),
        _ => MAILBOX_SESSION_OPTIONS.to_owned(),
    };
    m.options(&options);
    m
}

/// `pool_size` split between the mailbox pool and the other one (at
/// least one connection each): (mailbox, other).
pub(super) fn split_pool(pool_size: usize) -> (usize, usize) {
    let mailbox = pool_size.div_ceil(2).max(1);
    (mailbox, pool_size.saturating_sub(mailbox).max(1))
}

/// A pool of at most `max` connections made with `cfg`, created lazily;
/// a checkout, a connect and a recycle each wait at most `ct`.
pub(super) fn build_pool(
    cfg: tokio_postgres::Config,
    max: usize,
    ct: Duration,
) -> Result<Pool, StoreError> {
    let mgr = Manager::from_config(
        cfg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(max.max(1))
        .wait_timeout(Some(ct))
        .create_timeout(Some(ct))
        .recycle_timeout(Some(ct))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::InvalidArgument(format!("postgres pool: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn pool_size_is_split_between_the_mailbox_and_the_rest() {
        assert_eq!(split_pool(16), (8, 8));
        assert_eq!(split_pool(3), (2, 1));
        assert_eq!(split_pool(2), (1, 1));
        assert_eq!(split_pool(1), (1, 1), "at least one each");
        assert_eq!(split_pool(0), (1, 1));
    }

    #[test]
    fn mailbox_connections_keep_the_operators_options() {
        let plain: tokio_postgres::Config = "host=/tmp user=x dbname=y".parse().unwrap();
        assert_eq!(
            mailbox_config(&plain).get_options(),
            Some(MAILBOX_SESSION_OPTIONS)
        );
        assert_eq!(plain.get_options(), None, "the other pool's are unchanged");
        let mut own = plain.clone();
        own.options("-c statement_timeout=5s");
        let m = mailbox_config(&own);
        assert_eq!(
            m.get_options(),
            Some(format!("-c statement_timeout=5s {MAILBOX_SESSION_OPTIONS}").as_str())
        );
        assert_eq!(m.get_hosts(), own.get_hosts());
        assert_eq!(m.get_dbname(), Some("y"));
    }
}
