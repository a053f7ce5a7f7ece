//! Domain code shared by the runnable examples (`examples/*.rs`) and the integration tests.

pub mod bank;
pub mod consistency;
pub mod inventory;
pub mod lending;
pub mod read_model;
pub mod service;
pub mod shop;
pub mod store_choice;
