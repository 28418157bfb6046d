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

use std::collections::BTreeSet;

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
