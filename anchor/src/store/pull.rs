//! The candidate search of a pull, shared by both backends.
//!
//! A pull's candidates are the union of *streams*, each an index range scan
//! in seq order: the requester's own rows (public and encrypted), the
//! public rows of each requested author, the rows of each requested
//! recipient. The page is the first `limit` seqs of the union. Reading
//! `limit` rows from every stream is always enough, but costs
//! streams × limit rows: a new follower of 100 authors (cursor 0) read
//! ~20,000 index rows for a page of 200.
//!
//! [`PullRounds`] reads a few rows per stream instead and widens only when
//! needed. After a round, let `bound` be the smallest last seq among the
//! streams that returned as many rows as asked (they may continue); the
//! other streams are exhausted. Every candidate up to `bound` has been
//! read, so if there are at least `limit` of them, they are the page.
//! Otherwise the next round reads four times as many rows per stream, up
//! to `limit` (where every stream's first `limit` rows are read, which is
//! always enough). A page of 200 over 100 authors then reads ~800 rows in
//! one round.
//!
//! Near the head there is a cheaper way: every row after the cursor, read
//! in seq order from the primary key (and the recipient rows from their
//! seq index), filtered here by [`Candidates`]. A pull that is up to date
//! reads nothing, one a thousand posts behind reads a thousand short rows
//! with a few statements instead of one index probe per stream. The scan
//! is bounded ([`scan_window`]): if more rows follow the cursor than the
//! window, the backend falls back to the streams.
//!
//! A backend reads a whole page in one go ([`PullRows`]): the post and
//! tombstone candidates, their merge into one page ([`cut_page`]), then the
//! rows of the page.

use std::collections::BTreeSet;

use super::TombstoneRow;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::social::MAX_PULL_DELETES;

/// The rows of one pull page, as a backend reads them.
#[derive(Debug)]
pub(crate) struct PullRows {
    /// `(seq, canonical SyncPost bytes)` of the page's posts, in seq order
    /// (a post deleted meanwhile is left out).
    pub(crate) posts: Vec<(u64, Vec<u8>)>,
    /// The page's tombstones, in seq order.
    pub(crate) tombs: Vec<TombstoneRow>,
    /// The last seq examined (the requester's next cursor).
    pub(crate) next_seq: u64,
    /// The page stopped at its limit.
    pub(crate) more: bool,
}

/// Which candidates make a page: see [`cut_page`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PageCut {
    pub(crate) post_seqs: Vec<u64>,
    pub(crate) tomb_seqs: Vec<u64>,
    pub(crate) next_seq: u64,
    pub(crate) more: bool,
}

/// One cursor over posts and tombstones: merges the first `limit + 1`
/// candidates of each (each list is complete up to its own last seq, so the
/// first `limit + 1` of the merge are too), keeps `limit`, and never more
/// than [`MAX_PULL_DELETES`] tombstones.
pub(crate) fn cut_page(posts: Vec<u64>, tombs: Vec<u64>, since_seq: u64, limit: usize) -> PageCut {
    let limit = limit.max(1);
    let mut merged: Vec<(u64, bool)> = posts
        .into_iter()
        .map(|s| (s, false))
        .chain(tombs.into_iter().map(|s| (s, true)))
        .collect();
    merged.sort_unstable();
    merged.dedup();
    let mut more = merged.len() > limit;
    merged.truncate(limit);
    let mut n_tombs = 0usize;
    let mut cut = merged.len();
    for (i, (_, is_tomb)) in merged.iter().enumerate() {
        if *is_tomb {
            if n_tombs == MAX_PULL_DELETES {
                cut = i;
                more = true;
                break;
            }
            n_tombs += 1;
        }
    }
    merged.truncate(cut);
    PageCut {
        post_seqs: merged.iter().filter(|m| !m.1).map(|m| m.0).collect(),
        tomb_seqs: merged.iter().filter(|m| m.1).map(|m| m.0).collect(),
        next_seq: merged.last().map_or(since_seq, |m| m.0),
        more,
    }
}

/// Most rows a scan after the cursor reads from one table before the
/// backend uses the streams instead: 8 rows per stream (a stream costs an
/// index probe, a scanned row a short read), at least 64, at most 4,096.
pub(crate) fn scan_window(streams: usize) -> usize {
    streams.saturating_mul(8).clamp(64, 4_096)
}

/// The candidate rule of a pull, applied to scanned rows: the requester's
/// own rows whatever their visibility, public rows by an author in the ids,
/// rows with a recipient (other than their author) in the ids — the same
/// rows the streams return.
#[derive(Debug)]
pub(crate) struct Candidates<'a> {
    requester: &'a NodeId,
    /// Sorted and deduplicated.
    ids: &'a [[u8; 32]],
    found: BTreeSet<u64>,
}

impl<'a> Candidates<'a> {
    /// `ids` must be sorted and deduplicated.
    pub(crate) fn new(requester: &'a NodeId, ids: &'a [[u8; 32]]) -> Self {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
        Self {
            requester,
            ids,
            found: BTreeSet::new(),
        }
    }

    /// A row of the posts (or tombstones) table.
    pub(crate) fn row(&mut self, seq: u64, author: &[u8], encrypted: bool) {
        if author == self.requester.0 || (!encrypted && self.has(author)) {
            self.found.insert(seq);
        }
    }

    /// A row of the recipients table.
    pub(crate) fn recipient(&mut self, seq: u64, recipient: &[u8], author: &[u8]) {
        if recipient != author && self.has(recipient) {
            self.found.insert(seq);
        }
    }

    fn has(&self, id: &[u8]) -> bool {
        self.ids.binary_search_by(|x| x[..].cmp(id)).is_ok()
    }

    /// The first `limit` candidates, in seq order.
    pub(crate) fn first(self, limit: usize) -> Vec<u64> {
        self.found.into_iter().take(limit).collect()
    }
}

/// Rows per stream in the first round: twice the page spread over the
/// streams, at least this many.
const MIN_FIRST_ROUND: usize = 4;

/// The state of one candidate search: feed each stream of a round with
/// [`PullRounds::add`], then [`PullRounds::finish_round`].
#[derive(Debug)]
pub(crate) struct PullRounds {
    limit: usize,
    per: usize,
    found: BTreeSet<u64>,
    bound: Option<u64>,
}

impl PullRounds {
    /// A search for the first `limit` candidates over `streams` streams.
    pub(crate) fn new(limit: usize, streams: usize) -> Self {
        let limit = limit.max(1);
        let per = limit
            .saturating_mul(2)
            .div_ceil(streams.max(1))
            .max(MIN_FIRST_ROUND)
            .min(limit);
        Self {
            limit,
            per,
            found: BTreeSet::new(),
            bound: None,
        }
    }

    /// Rows to read from each stream this round.
    pub(crate) fn per_stream(&self) -> usize {
        self.per
    }

    /// One stream's rows of this round (at most [`PullRounds::per_stream`]).
    pub(crate) fn add(&mut self, seqs: impl IntoIterator<Item = u64>) {
        let mut n = 0usize;
        let mut last = None;
        for s in seqs {
            self.found.insert(s);
            last = Some(last.map_or(s, |l: u64| l.max(s)));
            n += 1;
        }
        // A full stream may continue past its last row (except in the
        // last round, where its first `limit` rows are all that can count).
        if n >= self.per && self.per < self.limit {
            if let Some(l) = last {
                self.bound = Some(self.bound.map_or(l, |b| b.min(l)));
            }
        }
    }

    /// The first `limit` candidates in order if this round settles them;
    /// otherwise `None`, and the next round reads more rows per stream.
    pub(crate) fn finish_round(&mut self) -> Option<Vec<u64>> {
        let settled = match self.bound {
            None => self.found.iter().copied().take(self.limit).collect(),
            Some(b) => {
                let upto: Vec<u64> = self.found.range(..=b).copied().take(self.limit).collect();
                if upto.len() < self.limit {
                    self.per = self.per.saturating_mul(4).min(self.limit);
                    self.found.clear();
                    self.bound = None;
                    return None;
                }
                upto
            }
        };
        Some(settled)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// Runs the rounds over in-memory streams; also counts rows read.
    fn search(streams: &[Vec<u64>], since: u64, limit: usize) -> (Vec<u64>, usize) {
        let mut r = PullRounds::new(limit, streams.len());
        let mut read = 0;
        loop {
            let per = r.per_stream();
            for s in streams {
                let rows: Vec<u64> = s.iter().copied().filter(|&x| x > since).take(per).collect();
                read += rows.len();
                r.add(rows);
            }
            if let Some(out) = r.finish_round() {
                return (out, read);
            }
        }
    }

    fn naive(streams: &[Vec<u64>], since: u64, limit: usize) -> Vec<u64> {
        let all: BTreeSet<u64> = streams
            .iter()
            .flatten()
            .copied()
            .filter(|&x| x > since)
            .collect();
        all.into_iter().take(limit.max(1)).collect()
    }

    proptest! {
        #[test]
        fn same_page_as_reading_every_row(
            raw in prop::collection::vec(prop::collection::btree_set(0u64..2_000, 0..300), 0..12),
            since in 0u64..1_000,
            limit in 1usize..250,
        ) {
            let streams: Vec<Vec<u64>> = raw.into_iter().map(|s| s.into_iter().collect()).collect();
            prop_assert_eq!(search(&streams, since, limit).0, naive(&streams, since, limit));
        }
    }

    /// The scan after the cursor finds what the streams find.
    #[test]
    fn scan_finds_what_the_streams_find() {
        let me = NodeId([1; 32]);
        let mut ids = vec![[2u8; 32], [3; 32], [1; 32]];
        ids.sort_unstable();
        // (seq, author, encrypted, recipients)
        let rows: Vec<(u64, u8, bool, Vec<u8>)> = vec![
            (1, 1, true, vec![9]),    // own encrypted: yes
            (2, 2, false, vec![]),    // public by an id: yes
            (3, 2, true, vec![9]),    // encrypted by an id, not to us: no
            (4, 9, true, vec![3]),    // to an id: yes
            (5, 9, false, vec![]),    // public by a stranger: no
            (6, 3, true, vec![3]),    // to its own author only: no
            (7, 9, true, vec![9, 1]), // to the requester: yes
        ];
        let mut c = Candidates::new(&me, &ids);
        for (seq, a, enc, rs) in &rows {
            c.row(*seq, &[*a; 32], *enc);
            for r in rs {
                c.recipient(*seq, &[*r; 32], &[*a; 32]);
            }
        }
        assert_eq!(c.first(10), vec![1, 2, 4, 7]);
    }

    #[test]
    fn a_page_keeps_at_most_max_pull_deletes_tombstones() {
        let tombs: Vec<u64> = (1..=300).collect();
        let cut = cut_page(vec![1_000], tombs, 0, 400);
        assert_eq!(cut.tomb_seqs.len(), MAX_PULL_DELETES);
        assert!(cut.post_seqs.is_empty());
        assert!(cut.more);
        assert_eq!(cut.next_seq, MAX_PULL_DELETES as u64);
        let cut = cut_page(vec![2, 4], vec![3], 1, 2);
        assert_eq!(
            (cut.post_seqs, cut.tomb_seqs, cut.next_seq, cut.more),
            (vec![2], vec![3], 3, true)
        );
        let cut = cut_page(vec![], vec![], 7, 2);
        assert_eq!((cut.next_seq, cut.more), (7, false));
    }

    /// 100 authors posting round robin, a page of 201 from the start: one
    /// round of a few rows each, not 100 × 201.
    #[test]
    fn a_new_follower_reads_a_few_rows_per_author() {
        let streams: Vec<Vec<u64>> = (0..100u64)
            .map(|a| (0..1_000u64).map(|k| 1 + a + k * 1_000).collect())
            .collect();
        let (page, read) = search(&streams, 0, 201);
        assert_eq!(page, naive(&streams, 0, 201));
        assert!(read <= 100 * 8, "{read} rows read");
    }
}
