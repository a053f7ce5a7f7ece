//! Document projections: a read model that is a set of JSON documents the framework stores, keyed by id — one per
//! stream (like an aggregate's state, for reading) or one per id an event names (loans per member). The
//! projection says which document an event changes and how; the [`DocumentWorker`] loads the documents a batch
//! touches in one read, folds the batch into them and writes the changed ones with the checkpoint in one
//! transaction (one statement per batch), so a document is exactly as far as the checkpoint says. Rebuild and
//! reset empty the documents: the framework owns them. [`Documents`] reads them back, typed: by id, many ids, or
//! a page filtered on a declared field.
//!
//! ```
//! use std::time::Duration;
//! use es_core::projection::document::{DocumentProjection, DocumentWorker, Documents, Filter};
//! use es_core::projection::ProjectionOptions;
//! use es_core::{DomainEvent, EventStore, ExpectedVersion, NewEvent, ProjectionRunner, RecordedEvent, StreamId};
//! use es_memory::InMemoryEventStore;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(DomainEvent)]
//! #[event(category = "loan")]
//! enum LoanEvent { Lent { member: String, book: String }, Returned { member: String, book: String } }
//!
//! /// The books each member has out: one document per member, whatever loan stream the event is in.
//! #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
//! struct MemberLoans { member: String, books: Vec<String>, count: usize }
//!
//! struct LoansPerMember;
//!
//! impl DocumentProjection for LoansPerMember {
//!     type Event = LoanEvent;
//!     type Document = MemberLoans;
//!     fn name(&self) -> &str { "loans-per-member" }
//!     fn document_id(&self, event: &LoanEvent, _: &RecordedEvent) -> Option<String> {
//!         match event { LoanEvent::Lent { member, .. } | LoanEvent::Returned { member, .. } => Some(member.clone()) }
//!     }
//!     fn apply(&self, doc: Option<MemberLoans>, event: &LoanEvent, _: &RecordedEvent) -> Option<MemberLoans> {
//!         let mut doc = doc.unwrap_or_default();
//!         match event {
//!             LoanEvent::Lent { member, book } => { doc.member = member.clone(); doc.books.push(book.clone()) }
//!             LoanEvent::Returned { book, .. } => doc.books.retain(|b| b != book),
//!         }
//!         doc.count = doc.books.len();
//!         Some(doc)
//!     }
//!     fn indexed_fields(&self) -> &[&str] { &["count"] }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = InMemoryEventStore::new();
//! let running = ProjectionRunner::new(store.clone())
//!     .with(DocumentWorker::new(LoansPerMember, store.clone(), ProjectionOptions::default()))
//!     .start();
//! let lent = |member: &str, book: &str| {
//!     NewEvent::from_domain(&LoanEvent::Lent { member: member.into(), book: book.into() }, Default::default())
//! };
//! store.append(&StreamId::new("loan-1")?, ExpectedVersion::Any, vec![lent("ada", "dune")?]).await?;
//! let at = store.append(&StreamId::new("loan-2")?, ExpectedVersion::Any, vec![lent("ada", "emma")?]).await?;
//! running.wait_for("loans-per-member", at.last_position, Duration::from_secs(5)).await?;
//!
//! let loans = Documents::<MemberLoans, _>::new(store.clone(), "loans-per-member");
//! assert_eq!(loans.get("ada").await?.map(|d| d.books), Some(vec!["dune".to_owned(), "emma".to_owned()]));
//! let busy = loans.list(Filter::field("count", 2), None, 10).await?;
//! assert_eq!(busy.len(), 1);
//! running.shutdown().await;
//! # Ok(()) }
//! ```

mod projection;
mod reader;
mod store;
mod worker;

pub use projection::DocumentProjection;
pub use reader::{DocumentError, Documents};
pub use store::{DocumentChange, DocumentStore, Filter, valid_field, version_key};
pub use worker::DocumentWorker;
