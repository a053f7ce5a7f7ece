//! A warehouse item: the second tutorial's aggregate (`cargo run --example inventory`).
//!
//! Stock is received, reserved for orders (never more than is on hand), and released when an order is cancelled.
//! Release 1 stored `Received { qty }`; today it is `Received { quantity, lot }`, brought up to date by
//! [`UPCASTERS`], which the event type names: every read of it (loads, projections, the relay) uses them.

use es_core::aggregate::Snapshotting;
use es_core::evolution::Upcaster;
use es_core::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An item's stock, folded from its events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Units in the warehouse.
    pub on_hand: u64,
    /// Units promised to orders, not yet shipped.
    pub reserved: u64,
}

impl Item {
    /// Units that can still be reserved.
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved)
    }
}

/// What happens to an item.
#[derive(Clone, Debug, PartialEq, Eq, DomainEvent)]
#[event(aggregate = Item, upcasters = UPCASTERS)]
pub enum ItemEvent {
    /// Stock arrived. Version 1 stored `{ "qty": n }` and had no lot.
    #[event(version = 2)]
    Received {
        /// Units.
        quantity: u64,
        /// The delivery's lot number.
        lot: String,
    },
    /// Units were promised to an order.
    Reserved {
        /// The order.
        order: String,
        /// Units.
        quantity: u64,
    },
    /// An order gave its units back.
    Released {
        /// The order.
        order: String,
        /// Units.
        quantity: u64,
    },
}

/// The item's schema history: `Received` v1 `{ "qty": n }` → v2 `{ "quantity": n, "lot": "unknown" }`.
pub const UPCASTERS: &[Upcaster] = &[Upcaster::new("Received", 1, received_v1_to_v2)];

fn received_v1_to_v2(mut payload: Value) -> Value {
    payload["quantity"] = payload["qty"].take();
    payload["lot"] = json!("unknown");
    payload
}

/// What can be asked of an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemCommand {
    /// Book in a delivery.
    Receive {
        /// Units.
        quantity: u64,
        /// Lot number.
        lot: String,
    },
    /// Promise units to an order.
    Reserve {
        /// The order.
        order: String,
        /// Units.
        quantity: u64,
    },
    /// Give an order's units back.
    Release {
        /// The order.
        order: String,
        /// Units.
        quantity: u64,
    },
}

/// Why an item refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// Quantities are positive.
    #[error("a quantity must be at least 1")]
    ZeroQuantity,
    /// Not enough unreserved stock.
    #[error("only {available} available, {requested} requested")]
    OutOfStock {
        /// Units that could be reserved.
        available: u64,
        /// Units asked for.
        requested: u64,
    },
    /// More released than is reserved.
    #[error("only {reserved} reserved, {requested} released")]
    NotReserved {
        /// Units reserved.
        reserved: u64,
        /// Units asked to release.
        requested: u64,
    },
}

impl Aggregate for Item {
    const CATEGORY: &'static str = "item";
    type Event = ItemEvent;
    type Command = ItemCommand;
    type Error = ItemError;

    fn handle(&self, command: &ItemCommand) -> Result<Vec<ItemEvent>, ItemError> {
        match command {
            ItemCommand::Receive { quantity: 0, .. }
            | ItemCommand::Reserve { quantity: 0, .. }
            | ItemCommand::Release { quantity: 0, .. } => Err(ItemError::ZeroQuantity),
            ItemCommand::Receive { quantity, lot } => Ok(vec![ItemEvent::Received {
                quantity: *quantity,
                lot: lot.clone(),
            }]),
            ItemCommand::Reserve { quantity, .. } if *quantity > self.available() => {
                Err(ItemError::OutOfStock {
                    available: self.available(),
                    requested: *quantity,
                })
            }
            ItemCommand::Reserve { order, quantity } => Ok(vec![ItemEvent::Reserved {
                order: order.clone(),
                quantity: *quantity,
            }]),
            ItemCommand::Release { quantity, .. } if *quantity > self.reserved => {
                Err(ItemError::NotReserved {
                    reserved: self.reserved,
                    requested: *quantity,
                })
            }
            ItemCommand::Release { order, quantity } => Ok(vec![ItemEvent::Released {
                order: order.clone(),
                quantity: *quantity,
            }]),
        }
    }

    fn apply(mut self, event: &ItemEvent) -> Self {
        match event {
            ItemEvent::Received { quantity, .. } => self.on_hand += quantity,
            ItemEvent::Reserved { quantity, .. } => self.reserved += quantity,
            ItemEvent::Released { quantity, .. } => {
                self.reserved = self.reserved.saturating_sub(*quantity);
            }
        }
        self
    }
}

impl Snapshotting for Item {
    const SNAPSHOT_VERSION: u32 = 1;
    type Snapshot = Item;

    fn to_snapshot(&self) -> Item {
        self.clone()
    }

    fn from_snapshot(snapshot: Item) -> Self {
        snapshot
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use es_core::testing::given;

    fn received(quantity: u64) -> ItemEvent {
        ItemEvent::Received {
            quantity,
            lot: "L1".into(),
        }
    }

    #[test]
    fn reserves_only_what_is_available() {
        let reserve = |quantity| ItemCommand::Reserve {
            order: "o1".into(),
            quantity,
        };
        given::<Item>([received(5)])
            .when(reserve(5))
            .then([ItemEvent::Reserved {
                order: "o1".into(),
                quantity: 5,
            }]);
        given::<Item>([received(5)])
            .when(reserve(6))
            .then_error(ItemError::OutOfStock {
                available: 5,
                requested: 6,
            });
    }

    #[test]
    fn releases_no_more_than_is_reserved() {
        given::<Item>([received(5)])
            .when(ItemCommand::Release {
                order: "o1".into(),
                quantity: 1,
            })
            .then_error(ItemError::NotReserved {
                reserved: 0,
                requested: 1,
            });
    }

    #[test]
    fn reads_deliveries_booked_by_release_1() {
        let event: ItemEvent =
            es_core::evolution::decode_payload("Received", 1, &json!({ "qty": 7 })).unwrap();
        assert_eq!(
            event,
            ItemEvent::Received {
                quantity: 7,
                lot: "unknown".into()
            }
        );
    }
}
