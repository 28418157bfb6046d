//! The writer thread: one batch of write jobs per transaction, answered
//! after the commit (see the module docs of [`super`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::super::wake::{QueueKey, Registry};
use super::super::StoreError;

/// One write request: runs inside the batch transaction, is answered after
/// the commit.
///
/// `run` may be called more than once: when another job of the batch
/// fails, the transaction is rolled back and every job runs again, each in
/// its own savepoint. A job must therefore redo all of its work on each
/// call (its writes of an earlier call are gone) and keep only the
/// outcome of the last one.
pub(super) trait WriteJob: Send {
    /// Runs the job; `Some(queues to wake)` on success, `None` if it failed
    /// (the batch then rolls back what it wrote).
    fn run(&mut self, conn: &Connection) -> Option<Vec<QueueKey>>;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), &Arc<StoreError>>);
}

pub(super) type JobResult<R> = Result<(R, Vec<QueueKey>), StoreError>;

pub(super) struct Job<R, F> {
    pub(super) f: F,
    pub(super) result: Option<Result<R, StoreError>>,
    pub(super) reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<R, F> WriteJob for Job<R, F>
where
    R: Send,
    F: Fn(&Connection) -> JobResult<R> + Send,
{
    fn run(&mut self, conn: &Connection) -> Option<Vec<QueueKey>> {
        match catch_unwind(AssertUnwindSafe(|| (self.f)(conn))) {
            Ok(Ok((r, wake))) => {
                self.result = Some(Ok(r));
                Some(wake)
            }
            Ok(Err(e)) => {
                self.result = Some(Err(e));
                None
            }
            Err(_) => {
                self.result = Some(Err(StoreError::corrupt(
                    "sqlite writer",
                    "a write request panicked",
                )));
                None
            }
        }
    }

    fn finish(self: Box<Self>, commit: Result<(), &Arc<StoreError>>) {
        let this = *self;
        let out = job_outcome(this.result, commit);
        // The caller may have gone away (cancelled request): the write
        // stands either way.
        let _ = this.reply.send(out);
    }
}

/// What a writer job answers: its own error, else the batch's commit
/// error, else its result (a job that never ran is an internal fault).
pub(super) fn job_outcome<R>(
    result: Option<Result<R, StoreError>>,
    commit: Result<(), &Arc<StoreError>>,
) -> Result<R, StoreError> {
    match (result, commit) {
        (Some(Err(e)), _) => Err(e),
        (Some(Ok(r)), Ok(())) => Ok(r),
        (_, Err(e)) => Err(StoreError::Batch(Arc::clone(e))),
        (None, Ok(())) => Err(StoreError::corrupt("sqlite writer", "job not run")),
    }
}

/// A committed (or failed) batch on its way to [`answer_loop`].
pub(super) struct Answers {
    jobs: Vec<Box<dyn WriteJob>>,
    commit: Result<(), Arc<StoreError>>,
}

pub(super) fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Box<dyn WriteJob>>,
    registry: Arc<Registry>,
    max_batch: usize,
    answers: Option<mpsc::UnboundedSender<Answers>>,
) {
    let mut jobs: Vec<Box<dyn WriteJob>> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let commit = commit_batch(&conn, &mut jobs, &registry);
        match &answers {
            Some(tx) => {
                let batch = std::mem::replace(&mut jobs, Vec::with_capacity(max_batch));
                if let Err(mpsc::error::SendError(a)) = tx.send(Answers {
                    jobs: batch,
                    commit,
                }) {
                    // The runtime that answered is gone: answer from here.
                    answer(a.jobs, a.commit.as_ref().map(|_| ()));
                }
            }
            None => answer(jobs.drain(..), commit.as_ref().map(|_| ())),
        }
    }
    tracing::debug!("sqlite writer stopped");
}

/// Answers the jobs of each batch the writer sends, on the runtime: one
/// wake-up of the runtime per batch (this task's), after which each
/// caller's task is woken from a runtime thread, without the cross-thread
/// hand-off per job that answering from the writer thread costs.
pub(super) async fn answer_loop(mut rx: mpsc::UnboundedReceiver<Answers>) {
    while let Some(a) = rx.recv().await {
        answer(a.jobs, a.commit.as_ref().map(|_| ()));
    }
}

/// Answers `jobs` with the fate of their batch.
pub(super) fn answer(
    jobs: impl IntoIterator<Item = Box<dyn WriteJob>>,
    commit: Result<(), &Arc<StoreError>>,
) {
    for j in jobs {
        j.finish(commit);
    }
}

/// Runs one batch in one transaction and answers its jobs on this thread
/// ([`commit_batch`], then [`answer`]).
///
/// First without savepoints: every job in order, then `COMMIT`. If a job
/// fails, the transaction is rolled back and the batch runs again from the
/// start with each job in its own savepoint, so the failing job rolls back
/// alone and the others commit as if it had not been there. A savepoint
/// per job on every batch would cost a copy of every page a job changes
/// (SQLite's statement journal), which the common all-succeed batch does
/// not need.
#[cfg(test)]
pub(super) fn run_batch(conn: &Connection, jobs: &mut Vec<Box<dyn WriteJob>>, registry: &Registry) {
    let commit = commit_batch(conn, jobs, registry);
    answer(jobs.drain(..), commit.as_ref().map(|_| ()));
}

/// Runs one batch in one transaction (as `run_batch`, which also
/// answers) and wakes the waiters of the queues it wrote; the jobs keep
/// their outcomes for [`answer`].
pub(super) fn commit_batch(
    conn: &Connection,
    jobs: &mut [Box<dyn WriteJob>],
    registry: &Registry,
) -> Result<(), Arc<StoreError>> {
    let mut wake = Vec::new();
    let outcome = run_jobs(conn, jobs, &mut wake, false).and_then(|all_ok| {
        if all_ok {
            return Ok(());
        }
        // SQLite may already have rolled the transaction back itself
        // (an I/O or full-disk error).
        if !conn.is_autocommit() {
            exec(conn, "ROLLBACK")?;
        }
        wake.clear();
        run_jobs(conn, jobs, &mut wake, true).map(|_| ())
    });
    let commit = match outcome {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, jobs = jobs.len(), "sqlite write batch failed");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(Arc::new(e))
        }
    };
    if commit.is_ok() {
        wake.sort_unstable();
        wake.dedup();
        for k in &wake {
            registry.wake(k);
        }
    }
    commit
}

/// Runs a transaction statement (prepared once, like every other).
pub(super) fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// One pass over a batch in a new transaction. Without savepoints it stops
/// at the first failing job and answers `Ok(false)` with the transaction
/// still open (the caller rolls it back); otherwise it commits and answers
/// `Ok(true)`. With a savepoint per job, a failing job's savepoint is
/// rolled back and the pass goes on.
pub(super) fn run_jobs(
    conn: &Connection,
    jobs: &mut [Box<dyn WriteJob>],
    wake: &mut Vec<QueueKey>,
    savepoints: bool,
) -> Result<bool, StoreError> {
    exec(conn, "BEGIN IMMEDIATE")?;
    for j in jobs.iter_mut() {
        if savepoints {
            exec(conn, "SAVEPOINT job")?;
        }
        match j.run(conn) {
            Some(keys) => {
                if savepoints {
                    exec(conn, "RELEASE job")?;
                }
                wake.extend(keys);
            }
            None if savepoints => {
                exec(conn, "ROLLBACK TO job")?;
                exec(conn, "RELEASE job")?;
            }
            None => return Ok(false),
        }
    }
    exec(conn, "COMMIT")?;
    Ok(true)
}
