//! What the mailbox shares between the backends: the fetch query as they
//! receive it, audit rows as stored, and the checks and column helpers of
//! queues.

use super::*;

/// One fetch, as the backends receive it.
#[derive(Debug, Clone)]
pub(crate) struct FetchQuery {
    pub(crate) recipient: NodeId,
    pub(crate) channel: Option<ChannelId>,
    pub(crate) ack_through: u64,
    pub(crate) max_messages: usize,
    pub(crate) max_bytes: usize,
    pub(crate) now_ms: u64,
    /// The `receive` audit row to write in the fetch's own transaction
    /// when the page is not empty; its detail is set to `"{n} messages"`.
    pub(crate) audit: Option<AuditRow>,
}

/// An audit event as stored: the actor already redacted.
#[derive(Debug, Clone)]
pub(crate) struct AuditRow {
    pub(crate) at_ms: u64,
    pub(crate) kind: AuditKind,
    pub(crate) actor: [u8; REDACTED_ID_LEN],
    pub(crate) channel: Option<ChannelId>,
    pub(crate) detail: String,
}

impl AuditRow {
    /// `e` with its actor redacted under `salt` and its detail cleaned.
    pub(crate) fn new(salt: &[u8; 32], e: AuditEvent) -> Self {
        AuditRow {
            at_ms: e.at_ms,
            kind: e.kind,
            actor: redact(salt, &e.actor),
            channel: e.channel,
            detail: clean_detail(&e.detail),
        }
    }

    /// This `receive` row for a page of `n` messages (detail
    /// `"{n} messages"`); none for an empty page.
    pub(crate) fn for_page(&self, n: usize) -> Option<AuditRow> {
        (n > 0).then(|| AuditRow {
            detail: format!("{n} messages"),
            ..self.clone()
        })
    }
}

pub(crate) fn clean_detail(d: &str) -> String {
    d.chars()
        .take(MAX_AUDIT_DETAIL_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub(crate) fn check_message(m: &NewMessage) -> Result<(), StoreError> {
    if m.payload.is_empty() {
        return Err(StoreError::InvalidArgument("empty payload".into()));
    }
    if m.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(StoreError::TooLarge {
            what: "mailbox payload",
            max: MAX_PAYLOAD_BYTES,
            got: m.payload.len(),
        });
    }
    Ok(())
}

/// The channel-mode authorization of an enqueue: `channel` is the stored
/// row for `m.channel` (None if unknown).
pub(crate) fn check_member(m: &NewMessage, channel: Option<&Channel>) -> Result<(), StoreError> {
    if m.channel.is_none() {
        return Ok(());
    }
    match channel {
        Some(c) if c.other(&m.sender) == Some(m.recipient) => Ok(()),
        Some(c) if c.is_member(&m.sender) => Err(StoreError::Unauthorized(
            "recipient is not the other member",
        )),
        _ => Err(StoreError::Unauthorized("not a member of this channel")),
    }
}

pub(crate) fn random_channel_id() -> ChannelId {
    let mut id = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
    ChannelId(id)
}

/// The stored channel column: empty for the legacy mailbox.
pub(crate) fn channel_col(c: Option<&ChannelId>) -> &[u8] {
    match c {
        Some(c) => &c.0,
        None => &[],
    }
}

pub(crate) fn channel_from_col(b: &[u8]) -> Result<Option<ChannelId>, StoreError> {
    if b.is_empty() {
        Ok(None)
    } else {
        ChannelId::from_slice(b)
            .map(Some)
            .map_err(|e| StoreError::corrupt("channel id", e))
    }
}

/// Takes rows of a queue (id order, `(id, payload_len)`) while they fit:
/// at most `max_messages`, at most `max_bytes` of payload but always the
/// first. Returns how many to take.
pub(crate) fn fetch_cut(lens: &[(u64, usize)], max_messages: usize, max_bytes: usize) -> usize {
    let mut bytes = 0usize;
    let mut n = 0usize;
    for &(_, len) in lens.iter().take(max_messages) {
        if n > 0 && bytes.saturating_add(len) > max_bytes {
            break;
        }
        bytes = bytes.saturating_add(len);
        n += 1;
    }
    n
}
