//! The case registry: every case with its stable id, requirement, level,
//! role, capability and kind, and the function that runs it.
//!
//! Ids are `AREA-SECTION-NNN` (SECTION = the section of schema/README.md the
//! requirement comes from). An id is never changed or reused; new ids are
//! appended to `conformance/cases.txt`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::ctx::{CaseError, Ctx, Outcome};
use super::model::{CaseInfo, Kind, Level, Role};

/// The future a case returns.
pub type CaseFuture<'a> = Pin<Box<dyn Future<Output = Result<Outcome, CaseError>> + Send + 'a>>;

/// The function that runs a case.
pub type CaseFn = Arc<dyn for<'a> Fn(&'a mut Ctx) -> CaseFuture<'a> + Send + Sync>;

/// One registered case.
#[derive(Clone)]
pub struct Case {
    /// Its static description.
    pub info: CaseInfo,
    /// Its body.
    pub run: CaseFn,
    /// The least time the case needs, when one of the spec's own timers
    /// makes it longer than the run's per-case bound (e.g. the 10 s of a
    /// `seq` gap); the runner gives it `max(this, case_timeout)`.
    pub needs: Option<std::time::Duration>,
}

impl Case {
    /// Declares that the case needs at least `d` (a spec timer it waits
    /// out), whatever the run's per-case bound.
    #[must_use]
    pub fn needs(mut self, d: std::time::Duration) -> Self {
        self.needs = Some(d);
        self
    }
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The static part of a case, before its body is attached.
#[derive(Clone, Debug)]
pub struct Def {
    /// Stable id.
    pub id: &'static str,
    /// MUST / SHOULD / MAY.
    pub level: Level,
    /// Positive / negative / limit.
    pub kind: Kind,
    /// Role under test.
    pub role: Role,
    /// Capability needed.
    pub capability: Option<&'static str>,
    /// One-line title.
    pub title: String,
    /// Where the requirement is written.
    pub spec_ref: &'static str,
    /// The requirement, quoted.
    pub requirement: &'static str,
}

impl Def {
    /// Attaches the body.
    pub fn run<F>(self, f: F) -> Case
    where
        F: for<'a> Fn(&'a mut Ctx) -> CaseFuture<'a> + Send + Sync + 'static,
    {
        let area = self.id.split('-').next().unwrap_or_default().to_string();
        Case {
            info: CaseInfo {
                id: self.id.to_string(),
                area,
                title: self.title,
                requirement: self.requirement.to_string(),
                spec_ref: self.spec_ref.to_string(),
                level: self.level,
                role: self.role,
                capability: self.capability.map(str::to_string),
                kind: self.kind,
            },
            run: Arc::new(f),
            needs: None,
        }
    }
}

/// Every case, in registry (report) order.
#[must_use]
pub fn all() -> Vec<Case> {
    super::cases::all()
}

/// Whether `id` has the form `AREA-SECTION-NNN`: 2–6 capital letters, a
/// section number (digits, optionally dotted), three digits.
#[must_use]
pub fn id_is_well_formed(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    let [area, section, number] = parts.as_slice() else {
        return false;
    };
    let area_ok = (2..=6).contains(&area.len()) && area.bytes().all(|b| b.is_ascii_uppercase());
    let section_ok = !section.is_empty()
        && section
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let number_ok = number.len() == 3 && number.bytes().all(|b| b.is_ascii_digit());
    area_ok && section_ok && number_ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_well_formed_unique_and_listed() {
        let cases = all();
        let mut seen = HashSet::new();
        for c in &cases {
            assert!(id_is_well_formed(&c.info.id), "malformed id {}", c.info.id);
            assert!(seen.insert(c.info.id.clone()), "duplicate id {}", c.info.id);
            assert!(
                !c.info.requirement.is_empty() && !c.info.title.is_empty(),
                "{}",
                c.info.id
            );
            assert!(c.info.id.starts_with(&format!("{}-", c.info.area)));
        }
        let listed = include_str!("../../cases.txt");
        let mut listed_ids = HashSet::new();
        for line in listed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            // `ID retired`: withdrawn, reserved, not in the registry.
            let (line, retired) = match line.strip_suffix(" retired") {
                Some(id) => (id.trim(), true),
                None => (line, false),
            };
            assert!(id_is_well_formed(line), "malformed id in cases.txt: {line}");
            assert!(listed_ids.insert(line), "duplicate id in cases.txt: {line}");
            assert_eq!(
                seen.contains(line),
                !retired,
                "{line}: listed in cases.txt {}",
                if retired {
                    "as retired but still in the registry"
                } else {
                    "but missing from the registry"
                }
            );
        }
        for id in &seen {
            assert!(
                listed_ids.contains(id.as_str()),
                "{id} is not appended to conformance/cases.txt"
            );
        }
    }

    #[test]
    fn id_format() {
        assert!(id_is_well_formed("MBX-4.2-007"));
        assert!(id_is_well_formed("FRM-2-004"));
        assert!(!id_is_well_formed("FRM-2-04"));
        assert!(!id_is_well_formed("frm-2-004"));
        assert!(!id_is_well_formed("FRM--004"));
        assert!(!id_is_well_formed("FRM-2.-004"));
        assert!(!id_is_well_formed("FRM-2-004-1"));
    }
}
