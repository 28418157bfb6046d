//! File keep priority: which stored files to evict first when storage is full
//! (discovery-protocol-v2 §3.5).
//!
//! ```text
//! priority = pin_bonus + relationship × heart_recency × post_age / (peer_copies + 1)
//! ```
//!
//! Own content is never evicted ([`KeepInputs::priority`] returns infinity).
//! The tables are the seed's, with two points made precise:
//!
//! * Heart-count thresholds: the seed's table says ">3 hearts → 3" but its
//!   worked example gives a 3-heart author the score 3; we follow the example:
//!   more than 10 hearts → 5, at least 3 → 3, at least 2 → 2, else 1.
//! * Age windows: the seed lists "1–3 years → 3" and "4–10 years → 1"; we use
//!   3 for ages under 3 years and 1 from 3 years on (no gap). A post never
//!   hearted has heart recency 1 (as in the seed's last example).

/// Bonus added to pinned files: 99,999. Pins still compete with each other.
pub const PIN_BONUS: f64 = 99_999.0;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The storing node's relationship to a file's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relationship {
    /// Our own content: never evicted.
    OwnContent,
    /// We are in the author's audience.
    Audience,
    /// We follow the author.
    Follow,
    /// No relationship; the score comes from the author's hearts from the network.
    Stranger {
        /// Hearts the author has received from our network.
        author_hearts: u32,
    },
}

impl Relationship {
    /// The relationship factor (`None` for own content: infinite).
    pub fn factor(self) -> Option<f64> {
        Some(match self {
            Relationship::OwnContent => return None,
            Relationship::Audience => 10.0,
            Relationship::Follow => 8.0,
            Relationship::Stranger { author_hearts } if author_hearts > 10 => 5.0,
            Relationship::Stranger { author_hearts } if author_hearts >= 3 => 3.0,
            Relationship::Stranger { author_hearts } if author_hearts >= 2 => 2.0,
            Relationship::Stranger { .. } => 1.0,
        })
    }
}

/// Score of an age (post age, or time since the last heart) by the seed's table.
pub fn window_score(age_ms: u64) -> f64 {
    let days = age_ms / DAY_MS;
    match days {
        0..=2 => 100.0,
        3..=13 => 50.0,
        14..=44 => 25.0,
        45..=89 => 12.0,
        90..=364 => 6.0,
        365..=1094 => 3.0,
        _ => 1.0,
    }
}

/// Everything the formula needs about one stored file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeepInputs {
    /// Relationship to the file's author.
    pub relationship: Relationship,
    /// When the post was created (ms since epoch).
    pub created_at_ms: u64,
    /// When the post was last hearted (ms since epoch), if ever.
    pub last_heart_ms: Option<u64>,
    /// Copies of the file known within our 3-hop range (order of magnitude).
    pub peer_copies: u32,
    /// The user pinned the file.
    pub pinned: bool,
}

impl KeepInputs {
    /// The keep priority at `now_ms`; `f64::INFINITY` for own content. Times in
    /// the future count as age 0.
    pub fn priority(&self, now_ms: u64) -> f64 {
        let Some(rel) = self.relationship.factor() else {
            return f64::INFINITY;
        };
        let heart = self
            .last_heart_ms
            .map_or(1.0, |t| window_score(now_ms.saturating_sub(t)));
        let age = window_score(now_ms.saturating_sub(self.created_at_ms));
        let pin = if self.pinned { PIN_BONUS } else { 0.0 };
        pin + rel * heart * age / (f64::from(self.peer_copies) + 1.0)
    }
}

/// Indices of `files` in eviction order (lowest priority first), leaving out
/// own content, which is never evicted. Ties keep input order.
pub fn eviction_order(files: &[KeepInputs], now_ms: u64) -> Vec<usize> {
    let mut scored: Vec<(usize, f64)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (i, f.priority(now_ms)))
        .filter(|(_, p)| p.is_finite())
        .collect();
    scored.sort_by(|a, b| a.1.total_cmp(&b.1));
    scored.into_iter().map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 10_000 * DAY_MS;

    fn days_ago(d: u64) -> u64 {
        NOW - d * DAY_MS
    }

    fn approx(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.01
    }

    /// The five worked examples of discovery-protocol-v2 §3.5.
    #[test]
    fn seed_examples() {
        let own = KeepInputs {
            relationship: Relationship::OwnContent,
            created_at_ms: days_ago(5000),
            last_heart_ms: None,
            peer_copies: 100,
            pinned: false,
        };
        assert_eq!(own.priority(NOW), f64::INFINITY);

        let audience = KeepInputs {
            relationship: Relationship::Audience,
            created_at_ms: days_ago(1),
            last_heart_ms: Some(days_ago(0)),
            peer_copies: 0,
            pinned: false,
        };
        assert!(approx(audience.priority(NOW), 100_000.0));

        let followed = KeepInputs {
            relationship: Relationship::Follow,
            created_at_ms: days_ago(7),
            last_heart_ms: Some(days_ago(2)),
            peer_copies: 2,
            pinned: false,
        };
        assert!(approx(followed.priority(NOW), 13_333.33));

        let popular = KeepInputs {
            relationship: Relationship::Stranger { author_hearts: 11 },
            created_at_ms: days_ago(1),
            last_heart_ms: Some(days_ago(1)),
            peer_copies: 20,
            pinned: false,
        };
        assert!(approx(popular.priority(NOW), 2_380.95));

        let random = KeepInputs {
            relationship: Relationship::Stranger { author_hearts: 3 },
            created_at_ms: days_ago(180),
            last_heart_ms: Some(days_ago(180)),
            peer_copies: 8,
            pinned: false,
        };
        assert!(approx(random.priority(NOW), 12.0));

        let unknown = KeepInputs {
            relationship: Relationship::Stranger { author_hearts: 0 },
            created_at_ms: days_ago(4000),
            last_heart_ms: None,
            peer_copies: 10,
            pinned: false,
        };
        assert!(approx(unknown.priority(NOW), 1.0 / 11.0));

        let order = eviction_order(&[own, audience, followed, popular, random, unknown], NOW);
        assert_eq!(order, vec![5, 4, 3, 2, 1]);
    }

    #[test]
    fn pins_dominate_but_compete() {
        let base = KeepInputs {
            relationship: Relationship::Stranger { author_hearts: 0 },
            created_at_ms: days_ago(4000),
            last_heart_ms: None,
            peer_copies: 0,
            pinned: true,
        };
        let better = KeepInputs {
            relationship: Relationship::Follow,
            ..base
        };
        assert!(base.priority(NOW) > 99_999.0);
        assert!(better.priority(NOW) > base.priority(NOW));
        assert_eq!(eviction_order(&[better, base], NOW), vec![1, 0]);
    }

    #[test]
    fn window_boundaries() {
        assert_eq!(window_score(0), 100.0);
        assert_eq!(window_score(3 * DAY_MS - 1), 100.0);
        assert_eq!(window_score(3 * DAY_MS), 50.0);
        assert_eq!(window_score(14 * DAY_MS), 25.0);
        assert_eq!(window_score(45 * DAY_MS), 12.0);
        assert_eq!(window_score(90 * DAY_MS), 6.0);
        assert_eq!(window_score(365 * DAY_MS), 3.0);
        assert_eq!(window_score(3 * 365 * DAY_MS), 1.0);
        // A clock in the past of the post does not panic or go negative.
        let f = KeepInputs {
            relationship: Relationship::Follow,
            created_at_ms: NOW + DAY_MS,
            last_heart_ms: Some(NOW + DAY_MS),
            peer_copies: 0,
            pinned: false,
        };
        assert!(approx(f.priority(NOW), 80_000.0));
    }
}
