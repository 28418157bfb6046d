//! The black-box wire conformance suite.
//!
//! See [`model`] for the data every report is built from.

pub mod html;
pub mod model;
pub mod offline;
