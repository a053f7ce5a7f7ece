//! Delivering a process's commands to aggregates.

use async_trait::async_trait;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Repository, RepositoryError};
use crate::store::{EventStore, Metadata};

/// How a routed command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The aggregate accepted it (or had already accepted the same command id before).
    Accepted,
    /// The aggregate rejected it with a domain error; delivered back to the process as
    /// [`Input::Rejected`](crate::process::Input::Rejected).
    Rejected(String),
}

/// Routing failed for a reason outside the domain (the store is down): retried with backoff, then handled by the
/// process's failure policy like a projection's.
#[derive(Debug, thiserror::Error)]
#[error("routing command {command_id} failed: {source}")]
pub struct RouteError {
    /// The command.
    pub command_id: Uuid,
    /// Why.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// The id and metadata a routed command carries: its deterministic id, the causing event's id as causation id,
/// and the process's correlation id.
#[derive(Clone, Debug)]
pub struct CommandContext {
    /// The command's deterministic id.
    pub command_id: Uuid,
    /// Metadata for the events it produces.
    pub metadata: Metadata,
}

impl CommandContext {
    /// Executes `command` on aggregate `id` through `repository` as this command
    /// ([`Repository::execute_as`]): a command id seen before is not executed again.
    ///
    /// # Errors
    /// [`RouteError`] for anything but a domain rejection.
    pub async fn execute<A: Aggregate, S: EventStore>(
        &self,
        repository: &Repository<A, S>,
        id: &str,
        command: &A::Command,
    ) -> Result<Outcome, RouteError> {
        match repository
            .execute_as(id, self.command_id, command, self.metadata.clone())
            .await
        {
            Ok(_) => Ok(Outcome::Accepted),
            Err(RepositoryError::Rejected { source, .. }) => {
                Ok(Outcome::Rejected(source.to_string()))
            }
            Err(other) => Err(RouteError {
                command_id: self.command_id,
                source: Box::new(other),
            }),
        }
    }
}

/// Sends a process's commands to the right aggregates, usually with [`CommandContext::execute`].
///
/// ```
/// # use es_core::{Aggregate, DomainEvent};
/// # #[derive(Default, Clone)] struct Stock;
/// # #[derive(DomainEvent)] #[event(aggregate = Stock)] enum StockEvent { Reserved }
/// # #[derive(Debug, thiserror::Error)] #[error("no stock")] struct NoStock;
/// # impl Aggregate for Stock {
/// #     const CATEGORY: &'static str = "stock"; type Event = StockEvent; type Command = u32; type Error = NoStock;
/// #     fn handle(&self, _: &u32) -> Result<Vec<StockEvent>, NoStock> { Ok(vec![StockEvent::Reserved]) }
/// #     fn apply(self, _: &StockEvent) -> Self { self }
/// # }
/// use es_core::Repository;
/// use es_core::process::{CommandContext, CommandRouter, Outcome, RouteError};
/// use es_memory::InMemoryEventStore;
///
/// enum ShopCommand { Reserve { sku: String, quantity: u32 } }
///
/// struct Router { stock: Repository<Stock, InMemoryEventStore> }
///
/// #[async_trait::async_trait]
/// impl CommandRouter for Router {
///     type Command = ShopCommand;
///     async fn route(&self, command: &ShopCommand, context: &CommandContext) -> Result<Outcome, RouteError> {
///         match command {
///             ShopCommand::Reserve { sku, quantity } => context.execute(&self.stock, sku, quantity).await,
///         }
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), RouteError> {
/// let router = Router { stock: Repository::new(InMemoryEventStore::new()) };
/// let context = CommandContext { command_id: uuid::Uuid::now_v7(), metadata: Default::default() };
/// let reserve = ShopCommand::Reserve { sku: "book".into(), quantity: 1 };
/// assert_eq!(router.route(&reserve, &context).await?, Outcome::Accepted);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait CommandRouter: Send + Sync + 'static {
    /// The commands it routes.
    type Command: Send + Sync;

    /// Delivers `command`.
    ///
    /// # Errors
    /// [`RouteError`] when delivery failed outside the domain.
    async fn route(
        &self,
        command: &Self::Command,
        context: &CommandContext,
    ) -> Result<Outcome, RouteError>;
}
