//! The relay conformance suite against NATS JetStream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

tests::relay_conformance_tests!(tests::brokers::Kind::Nats);
