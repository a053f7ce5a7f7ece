//! An order process manager: reserve stock, charge payment, ship. A failed payment releases the stock and cancels the order
//! (compensation); a payment that does not answer within [`PAYMENT_DEADLINE`] cancels it too.
//!
//! Three aggregates ([`Order`], [`Stock`], [`Payment`]) know nothing of each other; [`OrderProcess`] coordinates them,
//! and [`ShopRouter`] delivers its commands.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Duration;
use es_core::process::{
    CommandContext, CommandRouter, Input, Outcome, ProcessManager, Reaction, RouteError,
};
use es_core::{Aggregate, DomainEvent, EventStore, RecordedEvent, Repository};
use serde::{Deserialize, Serialize};

/// How long the process manager waits for the payment provider.
pub const PAYMENT_DEADLINE: Duration = Duration::seconds(30);

/// An order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Order {
    /// `None` until placed.
    pub placed: Option<OrderPlaced>,
    /// Shipped or cancelled: final.
    pub status: OrderStatus,
}

/// An order's status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Placed, not final yet.
    #[default]
    Open,
    /// Shipped.
    Shipped,
    /// Cancelled, with why.
    Cancelled(String),
}

/// The facts of a placed order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// The order.
    pub order_id: String,
    /// What.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// For how much, in cents.
    pub amount: u64,
}

/// What happens to an order.
#[derive(Clone, Debug, PartialEq, Eq, DomainEvent)]
#[event(aggregate = Order)]
pub enum OrderEvent {
    /// Placed.
    OrderPlaced(OrderPlaced),
    /// Shipped.
    OrderShipped {
        /// The order.
        order_id: String,
    },
    /// Cancelled.
    OrderCancelled {
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
    },
}

/// What can be asked of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderCommand {
    /// Place it.
    Place(OrderPlaced),
    /// Ship it.
    Ship,
    /// Cancel it.
    Cancel {
        /// Why.
        reason: String,
    },
}

/// Why an order refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Place twice.
    #[error("the order is already placed")]
    AlreadyPlaced,
    /// Anything before placing.
    #[error("the order is not placed")]
    NotPlaced,
    /// Anything after shipping or cancelling.
    #[error("the order is already {0:?}")]
    Final(OrderStatus),
}

impl Aggregate for Order {
    const CATEGORY: &'static str = "order";
    type Event = OrderEvent;
    type Command = OrderCommand;
    type Error = OrderError;

    fn handle(&self, command: &OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        let placed = match (command, &self.placed) {
            (OrderCommand::Place(order), None) => {
                return Ok(vec![OrderEvent::OrderPlaced(order.clone())]);
            }
            (OrderCommand::Place(_), Some(_)) => return Err(OrderError::AlreadyPlaced),
            (_, None) => return Err(OrderError::NotPlaced),
            (_, Some(placed)) => placed,
        };
        if self.status != OrderStatus::Open {
            return Err(OrderError::Final(self.status.clone()));
        }
        let order_id = placed.order_id.clone();
        Ok(vec![match command {
            OrderCommand::Ship => OrderEvent::OrderShipped { order_id },
            OrderCommand::Cancel { reason } => OrderEvent::OrderCancelled {
                order_id,
                reason: reason.clone(),
            },
            OrderCommand::Place(_) => return Err(OrderError::AlreadyPlaced),
        }])
    }

    fn apply(mut self, event: &OrderEvent) -> Self {
        match event {
            OrderEvent::OrderPlaced(placed) => self.placed = Some(placed.clone()),
            OrderEvent::OrderShipped { .. } => self.status = OrderStatus::Shipped,
            OrderEvent::OrderCancelled { reason, .. } => {
                self.status = OrderStatus::Cancelled(reason.clone())
            }
        }
        self
    }
}

/// The stock of one SKU: available units and reservations per order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stock {
    /// Units not reserved.
    pub available: u32,
    /// Units reserved per order.
    pub reserved: BTreeMap<String, u32>,
}

/// What happens to stock.
#[derive(Clone, Debug, PartialEq, Eq, DomainEvent)]
#[event(aggregate = Stock)]
pub enum StockEvent {
    /// Units arrived.
    Restocked {
        /// How many.
        quantity: u32,
    },
    /// Units set aside for an order.
    StockReserved {
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
    /// A reservation given back.
    StockReleased {
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
}

/// What can be asked of stock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StockCommand {
    /// Add units.
    Restock {
        /// How many.
        quantity: u32,
    },
    /// Reserve units for an order.
    Reserve {
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
    /// Give an order's reservation back (nothing if it has none).
    Release {
        /// The order.
        order_id: String,
    },
}

/// Why stock refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    /// Not enough units.
    #[error("insufficient stock: {available} available, {requested} requested")]
    Insufficient {
        /// Units available.
        available: u32,
        /// Units asked for.
        requested: u32,
    },
}

impl Aggregate for Stock {
    const CATEGORY: &'static str = "stock";
    type Event = StockEvent;
    type Command = StockCommand;
    type Error = StockError;

    fn handle(&self, command: &StockCommand) -> Result<Vec<StockEvent>, StockError> {
        match command {
            StockCommand::Restock { quantity } => Ok(vec![StockEvent::Restocked {
                quantity: *quantity,
            }]),
            StockCommand::Reserve { quantity, .. } if *quantity > self.available => {
                Err(StockError::Insufficient {
                    available: self.available,
                    requested: *quantity,
                })
            }
            StockCommand::Reserve { order_id, quantity } => Ok(vec![StockEvent::StockReserved {
                order_id: order_id.clone(),
                quantity: *quantity,
            }]),
            StockCommand::Release { order_id } => Ok(self
                .reserved
                .get(order_id)
                .map(|quantity| StockEvent::StockReleased {
                    order_id: order_id.clone(),
                    quantity: *quantity,
                })
                .into_iter()
                .collect()),
        }
    }

    fn apply(mut self, event: &StockEvent) -> Self {
        match event {
            StockEvent::Restocked { quantity } => self.available += quantity,
            StockEvent::StockReserved {
                order_id, quantity, ..
            } => {
                self.available -= quantity;
                self.reserved.insert(order_id.clone(), *quantity);
            }
            StockEvent::StockReleased { order_id, quantity } => {
                self.available += quantity;
                self.reserved.remove(order_id);
            }
        }
        self
    }
}

/// The payment of one order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payment {
    /// The order it pays for, once requested.
    pub order_id: Option<String>,
    /// Requested, in cents; `None` before.
    pub requested: Option<u64>,
    /// Answered: `Some(true)` charged, `Some(false)` failed.
    pub answered: Option<bool>,
}

/// What happens to a payment.
#[derive(Clone, Debug, PartialEq, Eq, DomainEvent)]
#[event(aggregate = Payment)]
pub enum PaymentEvent {
    /// Sent to the provider.
    PaymentRequested {
        /// The order.
        order_id: String,
        /// Cents.
        amount: u64,
    },
    /// The provider charged it.
    PaymentCharged {
        /// The order.
        order_id: String,
    },
    /// The provider refused it.
    PaymentFailed {
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
    },
}

/// What can be asked of a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentCommand {
    /// Ask the provider.
    Request {
        /// The order.
        order_id: String,
        /// Cents.
        amount: u64,
    },
    /// The provider's answer: charged.
    Confirm,
    /// The provider's answer: refused.
    Decline {
        /// Why.
        reason: String,
    },
}

/// Why a payment refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// An answer before a request.
    #[error("no payment was requested")]
    NotRequested,
    /// A second answer.
    #[error("the payment was already answered")]
    AlreadyAnswered,
}

impl Aggregate for Payment {
    const CATEGORY: &'static str = "payment";
    type Event = PaymentEvent;
    type Command = PaymentCommand;
    type Error = PaymentError;

    fn handle(&self, command: &PaymentCommand) -> Result<Vec<PaymentEvent>, PaymentError> {
        let order_id = match (command, &self.order_id, self.answered) {
            (PaymentCommand::Request { order_id, amount }, None, _) => {
                return Ok(vec![PaymentEvent::PaymentRequested {
                    order_id: order_id.clone(),
                    amount: *amount,
                }]);
            }
            (PaymentCommand::Request { .. }, Some(_), _) => return Ok(Vec::new()),
            (_, None, _) => return Err(PaymentError::NotRequested),
            (_, _, Some(_)) => return Err(PaymentError::AlreadyAnswered),
            (_, Some(order_id), None) => order_id.clone(),
        };
        Ok(vec![match command {
            PaymentCommand::Decline { reason } => PaymentEvent::PaymentFailed {
                order_id,
                reason: reason.clone(),
            },
            _ => PaymentEvent::PaymentCharged { order_id },
        }])
    }

    fn apply(mut self, event: &PaymentEvent) -> Self {
        match event {
            PaymentEvent::PaymentRequested { order_id, amount } => {
                self.order_id = Some(order_id.clone());
                self.requested = Some(*amount);
            }
            PaymentEvent::PaymentCharged { .. } => self.answered = Some(true),
            PaymentEvent::PaymentFailed { .. } => self.answered = Some(false),
        }
        self
    }
}

/// The events the process manager reads (the same stored types as the aggregates write).
#[derive(Clone, Debug, PartialEq, Eq, DomainEvent)]
pub enum OrderProcessEvent {
    /// An order was placed.
    OrderPlaced(OrderPlaced),
    /// Its stock was reserved.
    StockReserved {
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
    /// Its payment went through.
    PaymentCharged {
        /// The order.
        order_id: String,
    },
    /// Its payment failed.
    PaymentFailed {
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
    },
}

/// The commands the process manager sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShopCommand {
    /// Reserve stock for the order.
    Reserve {
        /// The SKU.
        sku: String,
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
    /// Give the order's stock back (compensation).
    Release {
        /// The SKU.
        sku: String,
        /// The order.
        order_id: String,
    },
    /// Ask for the payment.
    Charge {
        /// The order.
        order_id: String,
        /// Cents.
        amount: u64,
    },
    /// Ship the order.
    Ship {
        /// The order.
        order_id: String,
    },
    /// Cancel the order.
    Cancel {
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
    },
}

/// Where one order's process manager stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Nothing seen yet.
    #[default]
    New,
    /// Waiting for the stock reservation.
    Reserving,
    /// Waiting for the payment provider.
    Charging,
    /// Done: shipped.
    Shipped,
    /// Done: cancelled.
    Cancelled,
}

/// One order's process manager state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderProcessState {
    /// The order, once placed.
    pub order: Option<OrderPlaced>,
    /// Where it stands.
    pub stage: Stage,
}

/// The order process manager.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrderProcess;

/// The name of the payment timer.
pub const PAYMENT_TIMER: &str = "payment-deadline";

impl ProcessManager for OrderProcess {
    type Event = OrderProcessEvent;
    type State = OrderProcessState;
    type Command = ShopCommand;

    fn name(&self) -> &str {
        "order-process"
    }

    fn correlate(&self, event: &OrderProcessEvent, _: &RecordedEvent) -> Option<String> {
        Some(match event {
            OrderProcessEvent::OrderPlaced(placed) => placed.order_id.clone(),
            OrderProcessEvent::StockReserved { order_id, .. }
            | OrderProcessEvent::PaymentCharged { order_id }
            | OrderProcessEvent::PaymentFailed { order_id, .. } => order_id.clone(),
        })
    }

    fn apply(
        &self,
        mut state: OrderProcessState,
        input: &Input<OrderProcessEvent>,
    ) -> OrderProcessState {
        state.stage = match (input, &state.stage) {
            (_, Stage::Shipped | Stage::Cancelled) => return state,
            (
                Input::Event {
                    event: OrderProcessEvent::OrderPlaced(placed),
                    ..
                },
                Stage::New,
            ) => {
                state.order = Some(placed.clone());
                Stage::Reserving
            }
            (
                Input::Event {
                    event: OrderProcessEvent::StockReserved { .. },
                    ..
                },
                Stage::Reserving,
            ) => Stage::Charging,
            (
                Input::Event {
                    event: OrderProcessEvent::PaymentCharged { .. },
                    ..
                },
                Stage::Charging,
            ) => Stage::Shipped,
            (
                Input::Event {
                    event: OrderProcessEvent::PaymentFailed { .. },
                    ..
                },
                Stage::Charging,
            )
            | (Input::TimerFired { .. }, Stage::Charging)
            | (Input::Rejected { .. }, Stage::Reserving) => Stage::Cancelled,
            (_, stage) => stage.clone(),
        };
        state
    }

    fn react(
        &self,
        state: &OrderProcessState,
        input: &Input<OrderProcessEvent>,
    ) -> Reaction<ShopCommand> {
        let Some(order) = &state.order else {
            return Reaction::none();
        };
        let order_id = order.order_id.clone();
        let release = || ShopCommand::Release {
            sku: order.sku.clone(),
            order_id: order_id.clone(),
        };
        let cancel = |reason: &str| ShopCommand::Cancel {
            order_id: order_id.clone(),
            reason: reason.to_owned(),
        };
        match (input, &state.stage) {
            (
                Input::Event {
                    event: OrderProcessEvent::OrderPlaced(_),
                    ..
                },
                Stage::Reserving,
            ) => Reaction::none().send(ShopCommand::Reserve {
                sku: order.sku.clone(),
                order_id: order_id.clone(),
                quantity: order.quantity,
            }),
            (
                Input::Event {
                    event: OrderProcessEvent::StockReserved { .. },
                    at,
                    ..
                },
                Stage::Charging,
            ) => Reaction::none()
                .send(ShopCommand::Charge {
                    order_id: order_id.clone(),
                    amount: order.amount,
                })
                .set_timer(PAYMENT_TIMER, *at + PAYMENT_DEADLINE),
            (
                Input::Event {
                    event: OrderProcessEvent::PaymentCharged { .. },
                    ..
                },
                Stage::Shipped,
            ) => Reaction::none()
                .cancel_timer(PAYMENT_TIMER)
                .send(ShopCommand::Ship {
                    order_id: order_id.clone(),
                }),
            (
                Input::Event {
                    event: OrderProcessEvent::PaymentFailed { reason, .. },
                    ..
                },
                Stage::Cancelled,
            ) => Reaction::none()
                .cancel_timer(PAYMENT_TIMER)
                .send(release())
                .send(cancel(&format!("payment failed: {reason}"))),
            (Input::TimerFired { .. }, Stage::Cancelled) => Reaction::none()
                .send(release())
                .send(cancel("payment did not answer in time")),
            (Input::Rejected { error, .. }, Stage::Cancelled) => {
                Reaction::none().send(cancel(error))
            }
            _ => Reaction::none(),
        }
    }
}

/// Delivers the process manager's commands to the three aggregates.
#[derive(Clone, Debug)]
pub struct ShopRouter<S> {
    /// Orders.
    pub orders: Repository<Order, S>,
    /// Stock, by SKU.
    pub stock: Repository<Stock, S>,
    /// Payments, by order.
    pub payments: Repository<Payment, S>,
}

impl<S: EventStore + Clone> ShopRouter<S> {
    /// Repositories over `store`.
    pub fn new(store: S) -> Self {
        Self {
            orders: Repository::new(store.clone()).with_max_attempts(20),
            stock: Repository::new(store.clone()).with_max_attempts(20),
            payments: Repository::new(store).with_max_attempts(20),
        }
    }
}

#[async_trait]
impl<S: EventStore + Clone + 'static> CommandRouter for ShopRouter<S> {
    type Command = ShopCommand;

    async fn route(
        &self,
        command: &ShopCommand,
        context: &CommandContext,
    ) -> Result<Outcome, RouteError> {
        match command {
            ShopCommand::Reserve {
                sku,
                order_id,
                quantity,
            } => {
                let reserve = StockCommand::Reserve {
                    order_id: order_id.clone(),
                    quantity: *quantity,
                };
                context.execute(&self.stock, sku, &reserve).await
            }
            ShopCommand::Release { sku, order_id } => {
                context
                    .execute(
                        &self.stock,
                        sku,
                        &StockCommand::Release {
                            order_id: order_id.clone(),
                        },
                    )
                    .await
            }
            ShopCommand::Charge { order_id, amount } => {
                let request = PaymentCommand::Request {
                    order_id: order_id.clone(),
                    amount: *amount,
                };
                context.execute(&self.payments, order_id, &request).await
            }
            ShopCommand::Ship { order_id } => {
                context
                    .execute(&self.orders, order_id, &OrderCommand::Ship)
                    .await
            }
            ShopCommand::Cancel { order_id, reason } => {
                context
                    .execute(
                        &self.orders,
                        order_id,
                        &OrderCommand::Cancel {
                            reason: reason.clone(),
                        },
                    )
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use es_core::process::Origin;
    use es_core::testing::process_given;
    use es_core::{Position, StreamId, Version};

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + Duration::seconds(seconds)
    }

    fn placed() -> OrderPlaced {
        OrderPlaced {
            order_id: "o-1".into(),
            sku: "book".into(),
            quantity: 2,
            amount: 3_000,
        }
    }

    fn event(event: OrderProcessEvent, seconds: i64) -> Input<OrderProcessEvent> {
        let stream = StreamId::new("order-o-1").expect("a valid stream id");
        Input::Event {
            event,
            at: at(seconds),
            origin: Origin::new(stream, Version::new(1), Position::new(1, 1)),
        }
    }

    fn reserved() -> Input<OrderProcessEvent> {
        event(
            OrderProcessEvent::StockReserved {
                order_id: "o-1".into(),
                quantity: 2,
            },
            10,
        )
    }

    #[test]
    fn happy_path_reserves_charges_with_a_deadline_then_ships() {
        process_given(&OrderProcess, [])
            .when(event(OrderProcessEvent::OrderPlaced(placed()), 0))
            .then(Reaction::none().send(ShopCommand::Reserve {
                sku: "book".into(),
                order_id: "o-1".into(),
                quantity: 2,
            }));
        process_given(
            &OrderProcess,
            [event(OrderProcessEvent::OrderPlaced(placed()), 0)],
        )
        .when(reserved())
        .then(
            Reaction::none()
                .send(ShopCommand::Charge {
                    order_id: "o-1".into(),
                    amount: 3_000,
                })
                .set_timer(PAYMENT_TIMER, at(10) + PAYMENT_DEADLINE),
        );
        let state = process_given(
            &OrderProcess,
            [
                event(OrderProcessEvent::OrderPlaced(placed()), 0),
                reserved(),
            ],
        )
        .when(event(
            OrderProcessEvent::PaymentCharged {
                order_id: "o-1".into(),
            },
            20,
        ))
        .then(
            Reaction::none()
                .cancel_timer(PAYMENT_TIMER)
                .send(ShopCommand::Ship {
                    order_id: "o-1".into(),
                }),
        );
        assert_eq!(state.stage, Stage::Shipped);
    }

    #[test]
    fn a_failed_payment_releases_the_stock_and_cancels_the_order() {
        let state = process_given(
            &OrderProcess,
            [
                event(OrderProcessEvent::OrderPlaced(placed()), 0),
                reserved(),
            ],
        )
        .when(event(
            OrderProcessEvent::PaymentFailed {
                order_id: "o-1".into(),
                reason: "card declined".into(),
            },
            20,
        ))
        .then(
            Reaction::none()
                .cancel_timer(PAYMENT_TIMER)
                .send(ShopCommand::Release {
                    sku: "book".into(),
                    order_id: "o-1".into(),
                })
                .send(ShopCommand::Cancel {
                    order_id: "o-1".into(),
                    reason: "payment failed: card declined".into(),
                }),
        );
        assert_eq!(state.stage, Stage::Cancelled);
    }

    #[test]
    fn a_payment_that_does_not_answer_in_time_cancels_the_order() {
        process_given(
            &OrderProcess,
            [
                event(OrderProcessEvent::OrderPlaced(placed()), 0),
                reserved(),
            ],
        )
        .when(Input::TimerFired {
            name: PAYMENT_TIMER.into(),
            at: at(40),
        })
        .then(
            Reaction::none()
                .send(ShopCommand::Release {
                    sku: "book".into(),
                    order_id: "o-1".into(),
                })
                .send(ShopCommand::Cancel {
                    order_id: "o-1".into(),
                    reason: "payment did not answer in time".into(),
                }),
        );
        // A late answer after the cancellation does nothing.
        let timed_out = Input::TimerFired {
            name: PAYMENT_TIMER.into(),
            at: at(40),
        };
        process_given(
            &OrderProcess,
            [
                event(OrderProcessEvent::OrderPlaced(placed()), 0),
                reserved(),
                timed_out,
            ],
        )
        .when(event(
            OrderProcessEvent::PaymentCharged {
                order_id: "o-1".into(),
            },
            50,
        ))
        .then(Reaction::none());
    }

    #[test]
    fn out_of_stock_cancels_the_order() {
        let rejected = Input::Rejected {
            step: 0,
            error: "insufficient stock: 1 available, 2 requested".into(),
            at: at(1),
        };
        process_given(
            &OrderProcess,
            [event(OrderProcessEvent::OrderPlaced(placed()), 0)],
        )
        .when(rejected)
        .then(Reaction::none().send(ShopCommand::Cancel {
            order_id: "o-1".into(),
            reason: "insufficient stock: 1 available, 2 requested".into(),
        }));
    }
}
