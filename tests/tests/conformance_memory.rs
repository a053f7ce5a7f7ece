//! The store conformance suite against the in-memory store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

es_core::store_conformance_tests!(|| async { es_memory::InMemoryEventStore::new() });
es_core::snapshot_store_conformance_tests!(|| async { es_memory::InMemoryEventStore::new() });
es_core::checkpoint_store_conformance_tests!(|| async { es_memory::InMemoryEventStore::new() });
es_core::control_store_conformance_tests!(|| async { es_memory::InMemoryEventStore::new() });
es_core::operator_store_conformance_tests!(|| async { es_memory::InMemoryEventStore::new() });
es_core::document_store_conformance_tests!(|| async { es_memory::InMemoryEventStore::new() });

mod consistency_races {
    es_core::consistency_race_tests!(|| async { es_memory::InMemoryEventStore::new() }, 20);
}
