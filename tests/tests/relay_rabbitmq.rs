//! The relay conformance suite against RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

tests::relay_conformance_tests!(tests::brokers::Kind::Rabbit);
