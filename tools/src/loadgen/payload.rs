//! Self-describing mailbox payloads: run id, sender, sequence and send time,
//! so the receiver can measure latency and spot duplicates.

use std::time::{SystemTime, UNIX_EPOCH};

use super::stats::micros;
use super::{MAGIC, PAYLOAD_FORMAT, PAYLOAD_HEADER_LEN};

// ---------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) run_id: u64,
    pub(super) sender: u32,
    pub(super) recipient: u32,
    pub(super) seq: u64,
    pub(super) sent_us: u64,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fill(h: &Header, out: &mut [u8]) {
    let mut state = h.run_id
        ^ (u64::from(h.sender) << 32 | u64::from(h.recipient)).rotate_left(17)
        ^ h.seq.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    for chunk in out.chunks_mut(8) {
        let v = splitmix(&mut state).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// A payload of `len` (≥ [`PAYLOAD_HEADER_LEN`]) bytes for `h`.
pub(super) fn make_payload(h: &Header, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(PAYLOAD_HEADER_LEN)];
    p[..4].copy_from_slice(&MAGIC);
    p[4] = PAYLOAD_FORMAT;
    p[8..16].copy_from_slice(&h.run_id.to_le_bytes());
    p[16..20].copy_from_slice(&h.sender.to_le_bytes());
    p[20..24].copy_from_slice(&h.recipient.to_le_bytes());
    p[24..32].copy_from_slice(&h.seq.to_le_bytes());
    p[32..40].copy_from_slice(&h.sent_us.to_le_bytes());
    fill(h, &mut p[PAYLOAD_HEADER_LEN..]);
    p
}

/// Sets the send time of a payload made by [`make_payload`].
pub(super) fn stamp(p: &mut [u8], sent_us: u64) {
    p[32..40].copy_from_slice(&sent_us.to_le_bytes());
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// The header of a loadgen payload whose filler is intact.
pub(super) fn parse_payload(p: &[u8]) -> Option<Header> {
    if p.len() < PAYLOAD_HEADER_LEN || p[..4] != MAGIC || p[4] != PAYLOAD_FORMAT {
        return None;
    }
    let h = Header {
        run_id: le_u64(&p[8..]),
        sender: le_u32(&p[16..]),
        recipient: le_u32(&p[20..]),
        seq: le_u64(&p[24..]),
        sent_us: le_u64(&p[32..]),
    };
    let mut expect = vec![0u8; p.len() - PAYLOAD_HEADER_LEN];
    fill(&h, &mut expect);
    (expect == p[PAYLOAD_HEADER_LEN..]).then_some(h)
}

pub(super) fn client_message_id(run_id: u64, sender: usize, seq: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    let mut state = run_id ^ (sender as u64).rotate_left(40) ^ seq.wrapping_mul(31);
    id[..8].copy_from_slice(&splitmix(&mut state).to_le_bytes());
    id[8..].copy_from_slice(&splitmix(&mut state).to_le_bytes());
    id
}

pub(super) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, micros)
}

pub(super) fn now_ms() -> u64 {
    now_us() / 1000
}
