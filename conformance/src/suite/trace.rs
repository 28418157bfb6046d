//! What a case sent and received, for the reports: every stream direction
//! the suite's client writes or reads while a case runs is recorded
//! ([`FrameRecord`]: hex of the first [`MAX_FRAME_BYTES`], the message name,
//! the message decoded with the schema bindings).
//!
//! The runner runs each case inside [`Trace::scope`]; the client
//! ([`super::client`]) finds the case's trace in a task-local and records
//! into it, so a case body records without doing anything. A task a case
//! spawns (the mesh tester's stream server) records when spawned with
//! [`spawn`]. What is kept is bounded: the first and the last
//! [`MAX_FRAMES_PER_CASE`]` / 2` frames; the others are only counted.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::frame::RawFrame;
use super::model::{Direction, FrameRecord, MAX_FRAMES_PER_CASE, MAX_FRAME_BYTES};

/// Frames longer than this are named but not decoded (decoding a 16 MiB
/// over-cap probe would only be cut anyway).
const MAX_DECODE_BYTES: usize = 256 * 1024;

/// The decoded text of a message is cut at this many bytes.
pub const MAX_DECODED_BYTES: usize = 4096;

tokio::task_local! {
    static CURRENT: Trace;
}

#[derive(Debug)]
struct Log {
    start: Instant,
    conns: u32,
    head: Vec<FrameRecord>,
    tail: VecDeque<FrameRecord>,
    omitted: u64,
}

/// The frame log of one case (cheap to clone: shared).
#[derive(Clone, Debug)]
pub struct Trace(Arc<Mutex<Log>>);

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

impl Trace {
    /// An empty log whose clock starts now.
    #[must_use]
    pub fn new() -> Self {
        Trace(Arc::new(Mutex::new(Log {
            start: Instant::now(),
            conns: 0,
            head: Vec::new(),
            tail: VecDeque::new(),
            omitted: 0,
        })))
    }

    /// The trace of the case running on this task, if any.
    #[must_use]
    pub fn current() -> Option<Trace> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `f` with this trace as the task's current one.
    pub async fn scope<F: Future>(self, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Numbers a new connection of the case (1, 2, …).
    #[must_use]
    pub fn next_conn(&self) -> u32 {
        let mut log = self.log();
        log.conns += 1;
        log.conns
    }

    /// Records one stream direction: `bytes` (all of them; only the first
    /// [`MAX_FRAME_BYTES`] are kept) or, with `note`, how it ended instead.
    pub fn record(
        &self,
        dir: Direction,
        conn: Option<u32>,
        stream: Option<u64>,
        bytes: &[u8],
        note: Option<String>,
    ) {
        let at_ms = {
            let log = self.log();
            u64::try_from(log.start.elapsed().as_millis()).unwrap_or(u64::MAX)
        };
        let (message, decoded) = if bytes.is_empty() {
            (String::from("no bytes"), None)
        } else {
            describe(bytes)
        };
        let keep = &bytes[..bytes.len().min(MAX_FRAME_BYTES)];
        let record = FrameRecord {
            dir,
            conn,
            stream,
            at_ms,
            len: bytes.len() as u64,
            hex: hex::encode(keep),
            message,
            decoded,
            note,
        };
        let mut log = self.log();
        let half = MAX_FRAMES_PER_CASE / 2;
        if log.head.len() < half {
            log.head.push(record);
        } else {
            log.tail.push_back(record);
            if log.tail.len() > MAX_FRAMES_PER_CASE - half {
                log.tail.pop_front();
                log.omitted += 1;
            }
        }
    }

    /// The kept frames in order, and how many were left out.
    #[must_use]
    pub fn frames(&self) -> (Vec<FrameRecord>, u64) {
        let log = self.log();
        let mut v = log.head.clone();
        v.extend(log.tail.iter().cloned());
        (v, log.omitted)
    }
}

/// Records into the current case's trace, if there is one.
pub fn record(
    dir: Direction,
    conn: Option<u32>,
    stream: Option<u64>,
    bytes: &[u8],
    note: Option<String>,
) {
    if let Some(t) = Trace::current() {
        t.record(dir, conn, stream, bytes, note);
    }
}

/// `tokio::spawn` that carries the current case's trace into the task.
pub fn spawn<F>(f: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match Trace::current() {
        Some(t) => tokio::spawn(CURRENT.scope(t, f)),
        None => tokio::spawn(f),
    }
}

/// The message name and code of `bytes` (`Hello (0x00)`) and, when the
/// frame reads and walks, its decoded text; or why it is not one frame.
#[must_use]
pub fn describe(bytes: &[u8]) -> (String, Option<String>) {
    if bytes.len() > MAX_DECODE_BYTES {
        let code = bytes[0];
        let name = distsoc_schema::limits::message_code(code).map_or("unknown code", |c| c.name);
        return (
            format!("{name} (0x{code:02x}), {} bytes: not decoded", bytes.len()),
            None,
        );
    }
    match RawFrame::parse(bytes) {
        Err(e) => {
            let code = bytes[0];
            let name =
                distsoc_schema::limits::message_code(code).map_or("unknown code", |c| c.name);
            (format!("{name} (0x{code:02x}): not one frame: {e}"), None)
        }
        Ok(f) => {
            let message = format!("{} (0x{:02x})", f.name, f.code);
            if let Err(e) = f.validate() {
                return (format!("{message}: does not walk: {e}"), None);
            }
            match super::decode::text(&f, MAX_DECODED_BYTES) {
                Ok(text) => (message, Some(text)),
                Err(e) => (format!("{message}: does not decode: {e}"), None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::suite::ctx::req;

    #[tokio::test]
    async fn records_bounded_and_decoded() {
        let t = Trace::new();
        t.clone()
            .scope(async {
                let frame = req::bootstrap(2, 5);
                record(Direction::Sent, Some(1), Some(0), &frame, None);
                record(Direction::Received, Some(1), Some(0), &[0x0f, 1, 2], None);
                record(
                    Direction::Sent,
                    Some(1),
                    Some(4),
                    &vec![0x15; 3 * MAX_FRAME_BYTES],
                    None,
                );
                for _ in 0..100 {
                    record(Direction::Received, None, None, &[], Some("reset".into()));
                }
            })
            .await;
        let (frames, omitted) = t.frames();
        assert_eq!(frames.len(), MAX_FRAMES_PER_CASE);
        assert_eq!(omitted, 103 - MAX_FRAMES_PER_CASE as u64);
        assert_eq!(frames[0].message, "BootstrapRequest (0x03)");
        let decoded = frames[0].decoded.as_deref().unwrap();
        assert!(decoded.contains("want = 5"), "{decoded}");
        assert!(frames[1].message.contains("unknown code (0x0f)"));
        assert_eq!(frames[2].len, 3 * MAX_FRAME_BYTES as u64);
        assert_eq!(frames[2].hex.len(), 2 * MAX_FRAME_BYTES);
        assert_eq!(frames[23].note.as_deref(), Some("reset"));
        // Outside a scope nothing is recorded and nothing fails.
        record(Direction::Sent, None, None, b"x", None);
    }
}
