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
//! 2. **Body.** Optionally, the declared length is reserved from a
//!    [`FrameBudget`] (per connection, then per endpoint); then the bytes go
//!    through a [`FrameDecoder`] until the frame is complete, and reading
//!    continues until the peer finishes its side: anything after the frame
//!    is [`FrameError::TrailingBytes`].
//!
//! Every read waits at most `idle` for the next bytes.

use std::sync::Arc;
use std::time::Duration;

use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::frame::{peek_frame_len, Frame, FrameDecoder, FrameError, MAX_HEADER_BYTES};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes written per call when sending a frame, so that the idle timeout
/// measures progress rather than the whole transfer.
const WRITE_CHUNK: usize = 64 * 1024;

/// How many bytes of decoded frames a connection (and the whole endpoint) may
/// hold at once. A stream reserves its frame's declared length once the
/// header is known and keeps it until its handler returns.
#[derive(Debug, Clone)]
pub(crate) struct FrameBudget {
    conn: Arc<Semaphore>,
    conn_capacity: usize,
    global: Arc<Semaphore>,
    global_capacity: usize,
    /// Longest wait for budget before the stream is refused (`unavailable`).
    wait: Duration,
}

/// Budget held by one frame; released on drop.
#[derive(Debug)]
pub(crate) struct Reservation {
    _conn: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

impl FrameBudget {
    pub(crate) fn new(
        conn_capacity: usize,
        global: Arc<Semaphore>,
        global_capacity: usize,
        wait: Duration,
    ) -> Self {
        Self {
            conn: Arc::new(Semaphore::new(conn_capacity)),
            conn_capacity,
            global,
            global_capacity,
            wait,
        }
    }

    /// Reserves `bytes`, waiting at most `self.wait` in total; `None` if the
    /// budget could not be had in time (or can never cover `bytes`).
    async fn reserve(&self, bytes: usize) -> Option<Reservation> {
        if bytes > self.conn_capacity || bytes > self.global_capacity {
            return None;
        }
        let permits = u32::try_from(bytes).ok()?;
        let acquire = async {
            // Fixed order (connection, then endpoint): no lock-order cycle.
            let conn = self.conn.clone().acquire_many_owned(permits).await.ok()?;
            let global = self.global.clone().acquire_many_owned(permits).await.ok()?;
            Some(Reservation {
                _conn: conn,
                _global: global,
            })
        };
        tokio::time::timeout(self.wait, acquire)
            .await
            .ok()
            .flatten()
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
    /// The frame's declared size could not be reserved in time.
    NoBudget(MessageCode),
    /// The stream or the connection failed (reset, connection lost).
    Stream(String),
}

/// Reads the one frame of `recv`, then waits for the end of the stream.
///
/// `accept` is applied to the code as soon as it is known; the decoder
/// enforces the code's cap. With a `budget`, the declared frame length is
/// reserved before the body is buffered, and the reservation is returned with
/// the frame.
pub(crate) async fn read_frame(
    recv: &mut quinn::RecvStream,
    accept: impl Fn(MessageCode) -> bool,
    idle: Duration,
    budget: Option<&FrameBudget>,
) -> Result<(Frame, Option<Reservation>), ReadFailure> {
    // Phase 1: the header, into a buffer of at most MAX_HEADER_BYTES.
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
        match read_chunk(recv, room, idle).await? {
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

    // Phase 2: reserve the declared size, then decode.
    let reservation = match budget {
        Some(budget) => Some(
            budget
                .reserve(total)
                .await
                .ok_or(ReadFailure::NoBudget(code))?,
        ),
        None => None,
    };
    let frame_error = |error| ReadFailure::Frame {
        error,
        code: Some(code),
    };
    let mut decoder = FrameDecoder::new();
    let mut frame = decoder.push(&head).map_err(frame_error)?;
    drop(head);
    loop {
        match read_chunk(recv, usize::MAX, idle).await? {
            Some(chunk) => {
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
async fn read_chunk(
    recv: &mut quinn::RecvStream,
    max: usize,
    idle: Duration,
) -> Result<Option<quinn::Chunk>, ReadFailure> {
    match tokio::time::timeout(idle, recv.read_chunk(max, true)).await {
        Err(_) => Err(ReadFailure::Idle),
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
