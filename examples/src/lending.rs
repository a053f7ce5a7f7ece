//! A library-lending service, the same code on every store: two aggregates ([`Book`], [`Member`]), a process
//! manager ([`LoanRecorder`]) that records each loan on the member (refused past [`LOAN_LIMIT`]: the book is
//! taken back), and a document projection ([`LoansPerMember`]) written once for memory, PostgreSQL and SQLite.

use async_trait::async_trait;
use es_core::process::{
    CommandContext, CommandRouter, Input, Outcome, ProcessManager, Reaction, RouteError,
};
use es_core::projection::document::DocumentProjection;
use es_core::{Aggregate, DomainEvent, EventStore, RecordedEvent, Repository};
use serde::{Deserialize, Serialize};

/// How many books a member may have out at once.
pub const LOAN_LIMIT: usize = 3;

/// A book of the library.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    /// `None` until added.
    pub title: Option<String>,
    /// The member who has it.
    pub lent_to: Option<String>,
}

/// What happens to a book.
#[derive(Clone, Debug, PartialEq, Eq, DomainEvent, Serialize, Deserialize)]
#[event(aggregate = Book)]
pub enum BookEvent {
    /// Added to the catalogue.
    Added {
        /// Its title.
        title: String,
    },
    /// Lent to a member.
    Lent {
        /// The member.
        member: String,
    },
    /// Back on the shelf.
    Returned {
        /// The member who had it.
        member: String,
    },
}

/// What a book is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BookCommand {
    /// Add it.
    Add {
        /// Its title.
        title: String,
    },
    /// Lend it to `member`.
    Lend {
        /// The member.
        member: String,
    },
    /// Take it back.
    Return,
}

/// Why a book refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// Not in the catalogue.
    #[error("no such book")]
    Unknown,
    /// Already in the catalogue.
    #[error("the book is in the catalogue already")]
    AlreadyAdded,
    /// Someone has it.
    #[error("the book is lent to {0}")]
    Out(String),
    /// Nobody has it.
    #[error("the book is on the shelf")]
    OnTheShelf,
}

impl Aggregate for Book {
    const CATEGORY: &'static str = "book";
    type Event = BookEvent;
    type Command = BookCommand;
    type Error = BookError;

    fn handle(&self, command: &BookCommand) -> Result<Vec<BookEvent>, BookError> {
        match (command, &self.title, &self.lent_to) {
            (BookCommand::Add { .. }, Some(_), _) => Err(BookError::AlreadyAdded),
            (BookCommand::Add { title }, None, _) => Ok(vec![BookEvent::Added {
                title: title.clone(),
            }]),
            (_, None, _) => Err(BookError::Unknown),
            (BookCommand::Lend { .. }, _, Some(member)) => Err(BookError::Out(member.clone())),
            (BookCommand::Lend { member }, _, None) => Ok(vec![BookEvent::Lent {
                member: member.clone(),
            }]),
            (BookCommand::Return, _, None) => Err(BookError::OnTheShelf),
            (BookCommand::Return, _, Some(member)) => Ok(vec![BookEvent::Returned {
                member: member.clone(),
            }]),
        }
    }

    fn apply(mut self, event: &BookEvent) -> Self {
        match event {
            BookEvent::Added { title } => self.title = Some(title.clone()),
            BookEvent::Lent { member } => self.lent_to = Some(member.clone()),
            BookEvent::Returned { .. } => self.lent_to = None,
        }
        self
    }
}

/// A member of the library.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Member {
    /// `None` until joined.
    pub name: Option<String>,
    /// The books they have out.
    pub loans: Vec<String>,
}

/// What happens to a member.
#[derive(Clone, Debug, PartialEq, Eq, DomainEvent, Serialize, Deserialize)]
#[event(aggregate = Member)]
pub enum MemberEvent {
    /// Joined the library.
    Joined {
        /// Their name.
        name: String,
    },
    /// Took a book out.
    LoanRecorded {
        /// The book.
        book: String,
    },
    /// Brought it back.
    ReturnRecorded {
        /// The book.
        book: String,
    },
}

/// What a member is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberCommand {
    /// Join.
    Join {
        /// Their name.
        name: String,
    },
    /// Record a loan of `book`.
    RecordLoan {
        /// The book.
        book: String,
    },
    /// Record `book` returned.
    RecordReturn {
        /// The book.
        book: String,
    },
}

/// Why a member refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// Not a member.
    #[error("not a member")]
    NotAMember,
    /// Already a member.
    #[error("already a member")]
    AlreadyJoined,
    /// At the limit.
    #[error("already {LOAN_LIMIT} books out")]
    LimitReached,
}

impl Aggregate for Member {
    const CATEGORY: &'static str = "member";
    type Event = MemberEvent;
    type Command = MemberCommand;
    type Error = MemberError;

    fn handle(&self, command: &MemberCommand) -> Result<Vec<MemberEvent>, MemberError> {
        match (command, &self.name) {
            (MemberCommand::Join { .. }, Some(_)) => Err(MemberError::AlreadyJoined),
            (MemberCommand::Join { name }, None) => {
                Ok(vec![MemberEvent::Joined { name: name.clone() }])
            }
            (_, None) => Err(MemberError::NotAMember),
            (MemberCommand::RecordLoan { .. }, _) if self.loans.len() >= LOAN_LIMIT => {
                Err(MemberError::LimitReached)
            }
            (MemberCommand::RecordLoan { book }, _) => {
                Ok(vec![MemberEvent::LoanRecorded { book: book.clone() }])
            }
            (MemberCommand::RecordReturn { book }, _) if self.loans.contains(book) => {
                Ok(vec![MemberEvent::ReturnRecorded { book: book.clone() }])
            }
            (MemberCommand::RecordReturn { .. }, _) => Ok(vec![]),
        }
    }

    fn apply(mut self, event: &MemberEvent) -> Self {
        match event {
            MemberEvent::Joined { name } => self.name = Some(name.clone()),
            MemberEvent::LoanRecorded { book } => self.loans.push(book.clone()),
            MemberEvent::ReturnRecorded { book } => self.loans.retain(|b| b != book),
        }
        self
    }
}

/// What the process manager sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LendingCommand {
    /// To the member: record the loan.
    RecordLoan {
        /// The member.
        member: String,
        /// The book.
        book: String,
    },
    /// To the member: record the return.
    RecordReturn {
        /// The member.
        member: String,
        /// The book.
        book: String,
    },
    /// To the book: take it back (the member refused the loan).
    TakeBack {
        /// The book.
        book: String,
    },
}

/// Records each loan and return on the member; a member past the limit refuses, and the book is taken back. The
/// book's id comes from the input's origin (its stream), not from the event.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoanRecorder;

impl ProcessManager for LoanRecorder {
    type Event = BookEvent;
    type State = Option<String>; // the book, once its first loan arrived
    type Command = LendingCommand;

    fn name(&self) -> &str {
        "loan-recorder"
    }

    fn correlate(&self, event: &BookEvent, record: &RecordedEvent) -> Option<String> {
        match event {
            BookEvent::Added { .. } => None,
            BookEvent::Lent { .. } | BookEvent::Returned { .. } => {
                record.stream_id.aggregate_id().map(str::to_owned)
            }
        }
    }

    fn apply(&self, book: Option<String>, input: &Input<BookEvent>) -> Option<String> {
        match input {
            Input::Event { origin, .. } => origin.stream.aggregate_id().map(str::to_owned),
            _ => book,
        }
    }

    fn react(&self, book: &Option<String>, input: &Input<BookEvent>) -> Reaction<LendingCommand> {
        let Some(book) = book.clone() else {
            return Reaction::none();
        };
        match input {
            Input::Event {
                event: BookEvent::Lent { member },
                ..
            } => Reaction::none().send(LendingCommand::RecordLoan {
                member: member.clone(),
                book,
            }),
            Input::Event {
                event: BookEvent::Returned { member },
                ..
            } => Reaction::none().send(LendingCommand::RecordReturn {
                member: member.clone(),
                book,
            }),
            Input::Rejected { .. } => Reaction::none().send(LendingCommand::TakeBack { book }),
            _ => Reaction::none(),
        }
    }
}

/// Delivers the process manager's commands.
#[derive(Clone, Debug)]
pub struct LendingRouter<S> {
    /// The books.
    pub books: Repository<Book, S>,
    /// The members.
    pub members: Repository<Member, S>,
}

impl<S: EventStore + Clone> LendingRouter<S> {
    /// Repositories over `store`.
    pub fn new(store: S) -> Self {
        Self {
            books: Repository::new(store.clone()),
            members: Repository::new(store),
        }
    }
}

#[async_trait]
impl<S: EventStore + Clone + 'static> CommandRouter for LendingRouter<S> {
    type Command = LendingCommand;

    async fn route(
        &self,
        command: &LendingCommand,
        context: &CommandContext,
    ) -> Result<Outcome, RouteError> {
        match command {
            LendingCommand::RecordLoan { member, book } => {
                context
                    .execute(
                        &self.members,
                        member,
                        &MemberCommand::RecordLoan { book: book.clone() },
                    )
                    .await
            }
            LendingCommand::RecordReturn { member, book } => {
                context
                    .execute(
                        &self.members,
                        member,
                        &MemberCommand::RecordReturn { book: book.clone() },
                    )
                    .await
            }
            LendingCommand::TakeBack { book } => {
                context
                    .execute(&self.books, book, &BookCommand::Return)
                    .await
            }
        }
    }
}

/// One member's loans, as readers see them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLoans {
    /// The books they have out, in the order taken.
    pub books: Vec<String>,
    /// How many.
    pub count: usize,
}

/// Loans per member: one document per member stream, written once for every store.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoansPerMember;

impl DocumentProjection for LoansPerMember {
    type Event = MemberEvent;
    type Document = MemberLoans;

    fn name(&self) -> &str {
        "loans-per-member"
    }

    fn document_id(&self, _: &MemberEvent, record: &RecordedEvent) -> Option<String> {
        record.stream_id.aggregate_id().map(str::to_owned)
    }

    fn apply(
        &self,
        loans: Option<MemberLoans>,
        event: &MemberEvent,
        _: &RecordedEvent,
    ) -> Option<MemberLoans> {
        let mut loans = loans.unwrap_or_default();
        match event {
            MemberEvent::Joined { .. } => {}
            MemberEvent::LoanRecorded { book } => loans.books.push(book.clone()),
            MemberEvent::ReturnRecorded { book } => loans.books.retain(|b| b != book),
        }
        loans.count = loans.books.len();
        Some(loans)
    }

    fn indexed_fields(&self) -> &[&str] {
        &["count"]
    }
}

#[cfg(test)]
mod tests {
    use es_core::testing::given;

    use super::*;

    fn joined() -> MemberEvent {
        MemberEvent::Joined { name: "Ada".into() }
    }

    #[test]
    fn a_member_takes_up_to_the_limit() {
        let loans = (0..LOAN_LIMIT).map(|n| MemberEvent::LoanRecorded {
            book: format!("b{n}"),
        });
        given::<Member>(std::iter::once(joined()).chain(loans))
            .when(MemberCommand::RecordLoan {
                book: "one-more".into(),
            })
            .then_error(MemberError::LimitReached);
        given::<Member>([joined()])
            .when(MemberCommand::RecordLoan {
                book: "dune".into(),
            })
            .then([MemberEvent::LoanRecorded {
                book: "dune".into(),
            }]);
    }

    #[test]
    fn a_lent_book_is_not_lent_again() {
        let added = BookEvent::Added {
            title: "Dune".into(),
        };
        given::<Book>([
            added.clone(),
            BookEvent::Lent {
                member: "ada".into(),
            },
        ])
        .when(BookCommand::Lend {
            member: "bob".into(),
        })
        .then_error(BookError::Out("ada".into()));
        given::<Book>([
            added,
            BookEvent::Lent {
                member: "ada".into(),
            },
        ])
        .when(BookCommand::Return)
        .then([BookEvent::Returned {
            member: "ada".into(),
        }]);
    }
}
