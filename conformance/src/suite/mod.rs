//! The black-box wire conformance suite.
//!
//! * [`model`] — the data every report is built from;
//! * [`frame`] — the crate's one frame reader (wire replies and `frames.json`);
//! * [`wire`] — the schema's codes and limits, schema readers, request builders and hostile-byte helpers;
//! * [`client`] — its own QUIC client;
//! * [`ctx`] — what a case runs with;
//! * [`registry`] and [`cases`] — every case with its stable id;
//! * [`runner`] — filtering, capability discovery, verdicts, expected failures;
//! * [`report`] — console, JSON and JUnit output ([`html`] renders HTML);
//! * [`trace`] and [`decode`] — the frames each case sent and received, decoded;
//! * [`fixtures`] — the identities a target must know (`fixtures` command);
//! * [`offline`] — the golden vectors checked offline.

pub mod cases;
pub mod client;
pub mod ctx;
pub mod decode;
pub mod fixtures;
pub mod frame;
pub mod html;
pub mod model;
pub mod offline;
pub mod registry;
pub mod report;
pub mod runner;
pub mod trace;
pub mod wire;
pub mod xfail;
