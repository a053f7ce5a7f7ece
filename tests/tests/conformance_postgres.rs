//! The store conformance suites against PostgreSQL, each test in a schema of its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

es_core::store_conformance_tests!(tests::pg_store);
es_core::snapshot_store_conformance_tests!(tests::pg_store);
es_core::checkpoint_store_conformance_tests!(tests::pg_store);
es_core::control_store_conformance_tests!(tests::pg_store);
es_core::operator_store_conformance_tests!(tests::pg_store);
es_core::document_store_conformance_tests!(tests::pg_store);

mod consistency_races {
    es_core::consistency_race_tests!(tests::pg_store, 20);
}
