//! The expected-failures file (as rustls does for BoGo): TOML,
//!
//! ```toml
//! [[case]]
//! id = "FRM-2-004"
//! reason = "truncated tables are answered with a reset (issue #12)"
//! ```
//!
//! A listed case that fails does not fail the run but is shown with its
//! reason; a listed case that passes is called out so the entry gets pruned.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// Why the file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum XfailError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("invalid expected-failures file {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    case: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    reason: String,
}

/// Case ids expected to fail, with the reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpectedFailures {
    /// Id → reason.
    pub entries: BTreeMap<String, String>,
}

impl ExpectedFailures {
    /// Parses the TOML text (`path` is only for messages). Ids must be
    /// well formed and listed once.
    pub fn parse(text: &str, path: &str) -> Result<Self, XfailError> {
        let invalid = |reason: String| XfailError::Invalid {
            path: path.to_string(),
            reason,
        };
        let file: File = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut entries = BTreeMap::new();
        for e in file.case {
            if !super::registry::id_is_well_formed(&e.id) {
                return Err(invalid(format!("malformed case id {:?}", e.id)));
            }
            if e.reason.trim().is_empty() {
                return Err(invalid(format!("{}: empty reason", e.id)));
            }
            if entries.insert(e.id.clone(), e.reason).is_some() {
                return Err(invalid(format!("{} is listed twice", e.id)));
            }
        }
        Ok(Self { entries })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, XfailError> {
        let text = std::fs::read_to_string(path).map_err(|source| XfailError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The reason `id` is expected to fail, if it is listed.
    #[must_use]
    pub fn reason(&self, id: &str) -> Option<&str> {
        self.entries.get(id).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let x = ExpectedFailures::parse(
            "[[case]]\nid = \"FRM-2-004\"\nreason = \"known\"\n\n[[case]]\nid = \"HS-1-001\"\nreason = \"b\"\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(x.reason("FRM-2-004"), Some("known"));
        assert_eq!(x.reason("FRM-2-005"), None);
        assert!(ExpectedFailures::parse("", "x").unwrap().entries.is_empty());
        assert!(ExpectedFailures::parse("[[case]]\nid = \"bad\"\nreason = \"r\"\n", "x").is_err());
        assert!(
            ExpectedFailures::parse("[[case]]\nid = \"HS-1-001\"\nreason = \"\"\n", "x").is_err()
        );
        assert!(ExpectedFailures::parse("[[case]]\nid = \"HS-1-001\"\nreason = \"a\"\n[[case]]\nid = \"HS-1-001\"\nreason = \"b\"\n", "x").is_err());
        assert!(ExpectedFailures::parse(
            "[[case]]\nid = \"HS-1-001\"\nreason = \"a\"\nextra = 1\n",
            "x"
        )
        .is_err());
    }
}
