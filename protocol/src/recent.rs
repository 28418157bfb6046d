//! The `author_recent_posts` sequence rule (discovery-protocol-v2 Q2, DESIGN
//! decision 10).
//!
//! Every `AuthorRecentPosts` list carries a `seq` that the author increases
//! with each new list. A holder that has a verified list with `seq = h` and is
//! offered a verified list with `seq = n`:
//!
//! | case            | decision                                            |
//! |-----------------|-----------------------------------------------------|
//! | nothing held    | [`RecentDecision::Accept`]                          |
//! | `n > h`         | [`RecentDecision::Accept`]: replace                 |
//! | `n < h`         | [`RecentDecision::Stale`]: keep ours, answer `stale`|
//! | `n == h`, same bytes | [`RecentDecision::Duplicate`]: nothing to do   |
//! | `n == h`, other bytes | [`RecentDecision::Conflict`]: keep ours (first seen wins); the author equivocated |
//!
//! A list is "stale" for refresh purposes when its `updatedAtMs` is more than
//! [`REFRESH_AFTER_MS`] old: the holder then pulls a fresher one.

/// Age after which a holder refreshes an author's list: one hour.
pub const REFRESH_AFTER_MS: u64 = 60 * 60 * 1000;

/// What to do with an offered list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecentDecision {
    /// Store it (replacing the held one, if any).
    Accept,
    /// Lower seq than held: keep the held one.
    Stale,
    /// Same seq and same content as held.
    Duplicate,
    /// Same seq, different content: keep the held one, flag the author.
    Conflict,
}

/// A list as the rule sees it: its seq and the BLAKE3 of its canonical bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentVersion {
    /// `AuthorRecentPosts.seq`.
    pub seq: u64,
    /// BLAKE3-256 of the list's canonical bytes.
    pub hash: [u8; 32],
}

/// Applies the seq rule. Both lists must already be signature-verified and by
/// the same author.
pub fn decide(held: Option<RecentVersion>, offered: RecentVersion) -> RecentDecision {
    match held {
        None => RecentDecision::Accept,
        Some(h) if offered.seq > h.seq => RecentDecision::Accept,
        Some(h) if offered.seq < h.seq => RecentDecision::Stale,
        Some(h) if offered.hash == h.hash => RecentDecision::Duplicate,
        Some(_) => RecentDecision::Conflict,
    }
}

/// The seq an author uses for its next list.
pub fn next_seq(previous: Option<u64>) -> u64 {
    previous.map_or(1, |s| s.saturating_add(1))
}

/// Whether a list last updated at `updated_at_ms` should be refreshed at `now_ms`.
pub fn needs_refresh(updated_at_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(updated_at_ms) > REFRESH_AFTER_MS
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(seq: u64, h: u8) -> RecentVersion {
        RecentVersion { seq, hash: [h; 32] }
    }

    #[test]
    fn table() {
        assert_eq!(decide(None, v(0, 1)), RecentDecision::Accept);
        assert_eq!(decide(Some(v(45, 1)), v(50, 2)), RecentDecision::Accept);
        assert_eq!(decide(Some(v(50, 2)), v(45, 1)), RecentDecision::Stale);
        assert_eq!(decide(Some(v(50, 2)), v(50, 2)), RecentDecision::Duplicate);
        assert_eq!(decide(Some(v(50, 2)), v(50, 3)), RecentDecision::Conflict);
        assert_eq!(next_seq(None), 1);
        assert_eq!(next_seq(Some(u64::MAX)), u64::MAX);
        assert!(!needs_refresh(0, REFRESH_AFTER_MS));
        assert!(needs_refresh(0, REFRESH_AFTER_MS + 1));
        assert!(!needs_refresh(10, 0));
    }

    proptest! {
        /// Whatever order lists arrive in, a holder ends with the highest seq
        /// (first seen among equals) — a lower seq never replaces a higher one.
        #[test]
        fn converges_to_highest_seq(seqs in proptest::collection::vec((0u64..20, 0u8..3), 1..30)) {
            let mut held: Option<RecentVersion> = None;
            for (s, h) in &seqs {
                if decide(held, v(*s, *h)) == RecentDecision::Accept {
                    held = Some(v(*s, *h));
                }
            }
            let max = seqs.iter().map(|(s, _)| *s).max().unwrap_or(0);
            let first = seqs.iter().find(|(s, _)| *s == max).map(|(_, h)| *h).unwrap_or(0);
            prop_assert_eq!(held, Some(v(max, first)));
        }
    }
}
