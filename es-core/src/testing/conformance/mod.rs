//! The store conformance suites: the store contracts as executable cases.
//!
//! Run them for a backend with [`store_conformance_tests!`](crate::store_conformance_tests),
//! [`snapshot_store_conformance_tests!`](crate::snapshot_store_conformance_tests) and
//! [`checkpoint_store_conformance_tests!`](crate::checkpoint_store_conformance_tests) and
//! [`control_store_conformance_tests!`](crate::control_store_conformance_tests) and
//! [`operator_store_conformance_tests!`](crate::operator_store_conformance_tests) and
//! [`consistency_race_tests!`](crate::consistency_race_tests), which make one test per case.
//! Each case takes a fresh, empty store and panics with a message naming what the store got wrong.

pub mod checkpoints;
pub mod consistency;
pub mod control;
pub mod documents;
pub mod events;
pub mod operator;
pub mod snapshots;
