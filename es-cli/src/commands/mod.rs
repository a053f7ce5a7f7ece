//! One module per command group; each prints its result and returns how it ended.

pub(crate) mod control;
pub(crate) mod dead_letters;
pub(crate) mod events;
pub(crate) mod processes;
pub(crate) mod projections;
pub(crate) mod schema;
pub(crate) mod streams;
