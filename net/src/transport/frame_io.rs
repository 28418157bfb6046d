//! Reading and writing the one frame of a stream direction, with bounded
//! memory and time. Shared by the dispatcher (requests in) and the client
//! side (replies in).
//!
//! Reading happens in two phases:
//!
//! 1. **Header.** At most [`MAX_HEADER_BYTES`] bytes are read into a small
//!    buffer until [`peek_frame_len`] knows the code and the declared frame
//!    length (or refuses the header: unknown code, too many segments, over the
//!    code's cap — before any of the body is read). The caller's `accept`
//!    predicate is applied to the code as soon as the first byte is in.
//! 2. **Body.** The bytes go through a [`FrameDecoder`] until the frame is
//!    complete, and reading continues until the peer finishes its side:
//!    anything after the frame is [`FrameError::TrailingBytes`]. With a
//!    [`FrameBudget`], memory is charged *as bytes arrive*, never for bytes
//!    that were only declared: before a chunk is buffered, the frame's
//!    charge is raised (per connection, per remote IP, then per endpoint) to
//!    cover the decoder's buffer, which starts at 64 KiB and doubles, capped
//!    at the declared length.
//!
//! Every read waits at most `idle` for the next bytes. With a budget, the
//! whole frame (header, body and end of stream) must also arrive within its
//! **deadline**, counted from the first read: `floor + declared / min_rate`
//! (the header alone within `floor`). A peer that trickles a large frame can
//! therefore hold neither memory it has not sent nor a stream for long.

use std::sync::Arc;
use std::time::Duration;

use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::frame::{peek_frame_len, Frame, FrameDecoder, FrameError, MAX_HEADER_BYTES};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::Instant;

/// Bytes written per call when sending a frame, so that the idle timeout
/// measures progress rather than the whole transfer.
const WRITE_CHUNK: usize = 64 * 1024;

/// First charge of a frame's body: the decoder's initial buffer (64 KiB).
const INITIAL_CHARGE: usize = 64 * 1024;

/// One shared pool of frame memory, and how much of it one frame may take.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    pub(crate) semaphore: Arc<Semaphore>,
    pub(crate) capacity: usize,
}

impl Pool {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }
}

/// How many bytes of frames a connection, a remote IP and the whole
/// endpoint may hold at once, and how fast a frame must arrive. A frame's
/// charge grows as its bytes arrive and is kept until its handler returns.
#[derive(Debug, Clone)]
pub(crate) struct FrameBudget {
    pub(crate) conn: Pool,
    pub(crate) ip: Pool,
    pub(crate) global: Pool,
    /// Longest wait for budget before the stream is refused (`unavailable`).
    pub(crate) wait: Duration,
    /// Time allowed for any frame (and for a header alone).
    pub(crate) deadline_floor: Duration,
    /// Bytes per second a frame must arrive at, beyond the floor.
    pub(crate) min_rate: u64,
}

/// Budget held by one frame; released on drop.
#[derive(Debug, Default)]
pub(crate) struct Reservation {
    held: Option<[OwnedSemaphorePermit; 3]>,
    bytes: usize,
}

impl Reservation {
    fn add(&mut self, more: [OwnedSemaphorePermit; 3], n: usize) {
        match &mut self.held {
            Some(held) => {
                for (h, m) in held.iter_mut().zip(more) {
                    h.merge(m);
                }
            }
            None => self.held = Some(more),
        }
        self.bytes += n;
    }
}

impl FrameBudget {
    /// The time a frame of `declared` bytes has to arrive completely.
    pub(crate) fn deadline(&self, declared: usize) -> Duration {
        let rate = self.min_rate.max(1);
        let extra_ms = (declared as u64).saturating_mul(1000) / rate;
        self.deadline_floor + Duration::from_millis(extra_ms)
    }

    /// Raises `r` to `bytes`, waiting at most `self.wait`; `false` if the
    /// budget could not be had in time (or can never cover `bytes`).
    async fn grow(&self, r: &mut Reservation, bytes: usize) -> bool {
        let Some(more) = bytes.checked_sub(r.bytes).filter(|&n| n > 0) else {
            return true;
        };
        let pools = [&self.conn, &self.ip, &self.global];
        if pools.iter().any(|p| bytes > p.capacity) {
            return false;
        }
        let Ok(permits) = u32::try_from(more) else {
            return false;
        };
        // Without waiting first (the common case), so that a frame never
        // queues behind a waiter when the budget has room.
        let try_all = || -> Result<[OwnedSemaphorePermit; 3], TryAcquireError> {
            Ok([
                self.conn
                    .semaphore
                    .clone()
                    .try_acquire_many_owned(permits)?,
                self.ip.semaphore.clone().try_acquire_many_owned(permits)?,
                self.global
                    .semaphore
                    .clone()
                    .try_acquire_many_owned(permits)?,
            ])
        };
        if let Ok(got) = try_all() {
            r.add(got, more);
            return true;
        }
        let acquire = async {
            // Fixed order (connection, IP, endpoint): no lock-order cycle.
            Some([
                self.conn
                    .semaphore
                    .clone()
                    .acquire_many_owned(permits)
                    .await
                    .ok()?,
                self.ip
                    .semaphore
                    .clone()
                    .acquire_many_owned(permits)
                    .await
                    .ok()?,
                self.global
                    .semaphore
                    .clone()
                    .acquire_many_owned(permits)
                    .await
                    .ok()?,
            ])
        };
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Some(got)) => {
                r.add(got, more);
                true
            }
            _ => false,
        }
    }
}

/// The charge that covers a frame of `total` bytes once `received` of them
/// are in, given the current charge: the decoder's buffer (64 KiB, then
/// doubling, at most `total`).
fn charge_for(received: usize, charged: usize, total: usize) -> usize {
    if received <= charged {
        return charged;
    }
    received
        .max(charged.saturating_mul(2))
        .max(INITIAL_CHARGE)
        .min(total)
}

/// Raises the frame's charge to cover `received` of its `total` bytes
/// (nothing to do without a budget).
async fn charge(
    budget: Option<&FrameBudget>,
    r: &mut Option<Reservation>,
    received: usize,
    total: usize,
) -> bool {
    match (budget, r.as_mut()) {
        (Some(budget), Some(r)) => {
            let wanted = charge_for(received, r.bytes, total);
            budget.grow(r, wanted).await
        }
        _ => true,
    }
}

/// Why no frame was read.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// The bytes are not an acceptable frame. `code` is the message code if
    /// the first byte is a known code (the `requestCode` of an error reply).
    Frame {
        error: FrameError,
        code: Option<MessageCode>,
    },
    /// The code is known but refused by the caller's predicate.
    Refused(MessageCode),
    /// No bytes arrived for the idle period.
    Idle,
    /// The frame did not arrive completely within its deadline.
    Deadline,
    /// The frame's bytes could not be charged to the budget in time.
    NoBudget(MessageCode),
    /// The stream or the connection failed (reset, connection lost).
    Stream(String),
}

/// Reads the one frame of `recv`, then waits for the end of the stream.
///
/// `accept` is applied to the code as soon as it is known; the decoder
/// enforces the code's cap. With a `budget`, the frame's bytes are charged
/// as they arrive and the frame must arrive within its deadline; the
/// reservation is returned with the frame.
pub(crate) async fn read_frame(
    recv: &mut quinn::RecvStream,
    accept: impl Fn(MessageCode) -> bool,
    idle: Duration,
    budget: Option<&FrameBudget>,
) -> Result<(Frame, Option<Reservation>), ReadFailure> {
    let started = Instant::now();
    // Phase 1: the header, into a buffer of at most MAX_HEADER_BYTES.
    let mut deadline = budget.map(|b| started + b.deadline_floor);
    let mut head: Vec<u8> = Vec::with_capacity(64);
    let (code, total) = loop {
        if let Some(&first) = head.first() {
            if let Some(code) = MessageCode::from_u8(first) {
                if !accept(code) {
                    return Err(ReadFailure::Refused(code));
                }
            }
        }
        match peek_frame_len(&head) {
            Err(error) => {
                let code = head.first().and_then(|&b| MessageCode::from_u8(b));
                return Err(ReadFailure::Frame { error, code });
            }
            Ok(Some(known)) => break known,
            Ok(None) => {}
        }
        let room = MAX_HEADER_BYTES.saturating_sub(head.len());
        if room == 0 {
            // Unreachable: a header never exceeds MAX_HEADER_BYTES.
            return Err(ReadFailure::Frame {
                error: FrameError::Malformed("frame header too long".into()),
                code: head.first().and_then(|&b| MessageCode::from_u8(b)),
            });
        }
        match read_chunk(recv, room, idle, deadline).await? {
            Some(chunk) => head.extend_from_slice(&chunk.bytes),
            None => {
                // End of stream inside the header: let the decoder name it.
                let mut decoder = FrameDecoder::new();
                let error = match decoder.push(&head) {
                    Err(error) => error,
                    Ok(_) => match decoder.finish() {
                        Err(error) => error,
                        Ok(()) => FrameError::Truncated { needed: 1 },
                    },
                };
                return Err(ReadFailure::Frame {
                    error,
                    code: decoder.code(),
                });
            }
        }
    };

    // Phase 2: the body, charged as it arrives, within the frame's deadline.
    deadline = budget.map(|b| started + b.deadline(total));
    let mut reservation = budget.map(|_| Reservation::default());
    let mut received = head.len();
    if !charge(budget, &mut reservation, received, total).await {
        return Err(ReadFailure::NoBudget(code));
    }
    let frame_error = |error| ReadFailure::Frame {
        error,
        code: Some(code),
    };
    let mut decoder = FrameDecoder::new();
    let mut frame = decoder.push(&head).map_err(frame_error)?;
    drop(head);
    loop {
        match read_chunk(recv, usize::MAX, idle, deadline).await? {
            Some(chunk) => {
                // Bytes beyond the frame are refused by the decoder below;
                // they are never charged beyond the declared length.
                received = received.saturating_add(chunk.bytes.len()).min(total);
                if !charge(budget, &mut reservation, received, total).await {
                    return Err(ReadFailure::NoBudget(code));
                }
                if let Some(done) = decoder.push(&chunk.bytes).map_err(frame_error)? {
                    frame = Some(done);
                }
            }
            None => {
                decoder.finish().map_err(frame_error)?;
                return match frame {
                    Some(frame) => Ok((frame, reservation)),
                    // finish() succeeded, so a frame was returned.
                    None => Err(frame_error(FrameError::Truncated { needed: 0 })),
                };
            }
        }
    }
}

/// One chunk of at most `max` bytes, or `None` at the end of the stream.
/// Waits at most `idle`, and never past `deadline`.
async fn read_chunk(
    recv: &mut quinn::RecvStream,
    max: usize,
    idle: Duration,
    deadline: Option<Instant>,
) -> Result<Option<quinn::Chunk>, ReadFailure> {
    let idle_at = Instant::now() + idle;
    let (until, failure) = match deadline {
        Some(d) if d < idle_at => (d, ReadFailure::Deadline),
        _ => (idle_at, ReadFailure::Idle),
    };
    match tokio::time::timeout_at(until, recv.read_chunk(max, true)).await {
        Err(_) => Err(failure),
        Ok(Err(e)) => Err(ReadFailure::Stream(e.to_string())),
        Ok(Ok(chunk)) => Ok(chunk),
    }
}

/// Why a frame could not be written.
#[derive(Debug)]
pub(crate) enum WriteFailure {
    /// The peer stopped the stream (it no longer wants the data).
    Stopped,
    /// No progress for the idle period.
    Idle,
    /// The stream or connection failed.
    Stream(String),
}

/// Writes `bytes` and finishes the stream; each write of at most 64 KiB waits
/// at most `idle`.
pub(crate) async fn write_frame(
    send: &mut quinn::SendStream,
    bytes: &[u8],
    idle: Duration,
) -> Result<(), WriteFailure> {
    for chunk in bytes.chunks(WRITE_CHUNK) {
        match tokio::time::timeout(idle, send.write_all(chunk)).await {
            Err(_) => return Err(WriteFailure::Idle),
            Ok(Err(quinn::WriteError::Stopped(_))) => return Err(WriteFailure::Stopped),
            Ok(Err(e)) => return Err(WriteFailure::Stream(e.to_string())),
            Ok(Ok(())) => {}
        }
    }
    send.finish()
        .map_err(|e| WriteFailure::Stream(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn charge_follows_received_bytes_not_declared_ones() {
        let total = 16 * MIB;
        // Ten bytes of a declared 16 MiB frame: the initial buffer only.
        assert_eq!(charge_for(10, 0, total), INITIAL_CHARGE);
        assert_eq!(
            charge_for(INITIAL_CHARGE, INITIAL_CHARGE, total),
            INITIAL_CHARGE
        );
        // Then doubling, like the decoder's buffer, never past the total.
        assert_eq!(
            charge_for(INITIAL_CHARGE + 1, INITIAL_CHARGE, total),
            2 * INITIAL_CHARGE
        );
        assert_eq!(charge_for(5 * MIB, 4 * MIB, total), 8 * MIB);
        assert_eq!(charge_for(15 * MIB, 8 * MIB, total), total);
        // A small frame is charged its size.
        assert_eq!(charge_for(9, 0, 100), 100);
    }

    #[test]
    fn deadline_is_floor_plus_size_over_rate() {
        let budget = FrameBudget {
            conn: Pool::new(MIB),
            ip: Pool::new(MIB),
            global: Pool::new(MIB),
            wait: Duration::from_secs(10),
            deadline_floor: Duration::from_secs(5),
            min_rate: 32 * 1024,
        };
        assert_eq!(budget.deadline(0), Duration::from_secs(5));
        assert_eq!(budget.deadline(16 * MIB), Duration::from_secs(5 + 512));
    }

    #[tokio::test]
    async fn growth_is_refused_beyond_a_pool_and_released_on_drop() {
        let budget = FrameBudget {
            conn: Pool::new(MIB),
            ip: Pool::new(MIB / 2),
            global: Pool::new(MIB),
            wait: Duration::from_millis(50),
            deadline_floor: Duration::from_secs(5),
            min_rate: 1,
        };
        let mut r = Reservation::default();
        assert!(budget.grow(&mut r, 1000).await);
        assert!(budget.grow(&mut r, MIB / 2).await);
        assert_eq!(budget.ip.semaphore.available_permits(), 0);
        // More than the IP's pool can ever give.
        assert!(!budget.grow(&mut r, MIB / 2 + 1).await);
        let mut other = Reservation::default();
        // Held by `r`: times out.
        assert!(!budget.grow(&mut other, 1).await);
        drop(r);
        assert_eq!(budget.ip.semaphore.available_permits(), MIB / 2);
        assert!(budget.grow(&mut other, 1).await);
    }
}
