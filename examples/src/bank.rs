//! A bank account: the aggregate the `bank` example runs.
//!
//! An account is opened for an owner, takes deposits and withdrawals (never below zero), and can be closed once
//! empty. Amounts are in cents.
//!
//! Its history holds one schema change: release 0.1 wrote `Opened { holder }`; `Opened` is now at version 2 and
//! says `owner`. [`UPCASTERS`] turns old events into new ones as they are read; nothing stored is rewritten.

use es_core::aggregate::Snapshotting;
use es_core::evolution::Upcaster;
use es_core::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// The account's state, folded from its events. Stored as is in snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The owner; `None` until opened.
    pub owner: Option<String>,
    /// The balance in cents.
    pub balance: u64,
    /// Closed accounts take no more commands.
    pub closed: bool,
}

/// What can happen to an account.
#[derive(Clone, Debug, PartialEq, Eq, DomainEvent)]
#[event(aggregate = Account, upcasters = UPCASTERS)]
pub enum AccountEvent {
    /// The account was opened. Version 1 (release 0.1) named the owner `holder`.
    #[event(version = 2)]
    Opened {
        /// Who owns it.
        owner: String,
    },
    /// Money came in.
    Deposited {
        /// Cents.
        amount: u64,
    },
    /// Money went out.
    Withdrawn {
        /// Cents.
        amount: u64,
    },
    /// The account was closed.
    Closed,
}

/// What a caller can ask of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountCommand {
    /// Open the account for `owner`.
    Open {
        /// Who owns it.
        owner: String,
    },
    /// Put money in.
    Deposit {
        /// Cents, more than zero.
        amount: u64,
    },
    /// Take money out.
    Withdraw {
        /// Cents, more than zero, at most the balance.
        amount: u64,
    },
    /// Close the account; it must be empty.
    Close,
}

/// Why an account refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Open on an account that is already open.
    #[error("the account is already open")]
    AlreadyOpen,
    /// Any command but open on an account never opened.
    #[error("the account is not open")]
    NotOpen,
    /// Any command on a closed account.
    #[error("the account is closed")]
    Closed,
    /// A deposit or withdrawal of zero.
    #[error("the amount must be more than zero")]
    ZeroAmount,
    /// A withdrawal above the balance.
    #[error("insufficient funds: balance {balance}, requested {requested}")]
    InsufficientFunds {
        /// The balance.
        balance: u64,
        /// The amount asked for.
        requested: u64,
    },
    /// Close with money left.
    #[error("cannot close an account holding {balance}")]
    NotEmpty {
        /// The balance.
        balance: u64,
    },
}

impl Aggregate for Account {
    const CATEGORY: &'static str = "account";
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = AccountError;

    fn handle(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand as C;
        use AccountEvent as E;
        match (command, &self.owner) {
            (C::Open { owner }, None) => {
                return Ok(vec![E::Opened {
                    owner: owner.clone(),
                }]);
            }
            (C::Open { .. }, Some(_)) => return Err(AccountError::AlreadyOpen),
            (_, None) => return Err(AccountError::NotOpen),
            _ if self.closed => return Err(AccountError::Closed),
            _ => {}
        }
        match *command {
            C::Deposit { amount: 0 } | C::Withdraw { amount: 0 } => Err(AccountError::ZeroAmount),
            C::Deposit { amount } => Ok(vec![E::Deposited { amount }]),
            C::Withdraw { amount } if amount > self.balance => {
                Err(AccountError::InsufficientFunds {
                    balance: self.balance,
                    requested: amount,
                })
            }
            C::Withdraw { amount } => Ok(vec![E::Withdrawn { amount }]),
            C::Close if self.balance > 0 => Err(AccountError::NotEmpty {
                balance: self.balance,
            }),
            C::Close => Ok(vec![E::Closed]),
            C::Open { .. } => Err(AccountError::AlreadyOpen),
        }
    }

    fn apply(mut self, event: &AccountEvent) -> Self {
        match event {
            AccountEvent::Opened { owner } => self.owner = Some(owner.clone()),
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
            AccountEvent::Closed => self.closed = true,
        }
        self
    }
}

impl Snapshotting for Account {
    const SNAPSHOT_VERSION: u32 = 1;
    type Snapshot = Account;

    fn to_snapshot(&self) -> Account {
        self.clone()
    }

    fn from_snapshot(snapshot: Account) -> Self {
        snapshot
    }
}

/// The account's schema history: `Opened` v1 `{ "holder": .. }` → v2 `{ "owner": .. }`. Named on [`AccountEvent`],
/// so every read of it (loads, projections, the relay) runs it.
pub const UPCASTERS: &[Upcaster] = &[Upcaster::new("Opened", 1, |mut payload| {
    if let Some(fields) = payload.as_object_mut()
        && let Some(holder) = fields.remove("holder")
    {
        fields.insert("owner".to_owned(), holder);
    }
    payload
})];

/// The bank's PostgreSQL store at `url`, in schema `bank` (or `BANK_SCHEMA`), migrated; with the schema's name.
///
/// # Errors
/// [`PgSetupError`](es_postgres::PgSetupError) naming the server or the migration that failed.
pub async fn connect_postgres(
    url: &str,
) -> Result<(es_postgres::PgEventStore, String), es_postgres::PgSetupError> {
    let schema = std::env::var("BANK_SCHEMA").unwrap_or_else(|_| "bank".to_owned());
    let store = es_postgres::PgEventStore::builder()
        .schema(&schema)
        .connect(url)
        .await?;
    store.migrate().await?;
    Ok((store, schema))
}

#[cfg(test)]
mod tests {
    use es_core::testing::given;

    use super::*;
    use AccountCommand as C;
    use AccountEvent as E;

    fn opened() -> AccountEvent {
        E::Opened {
            owner: "Ada".into(),
        }
    }

    #[test]
    fn opens_a_new_account() {
        given::<Account>([])
            .when(C::Open {
                owner: "Ada".into(),
            })
            .then([opened()]);
    }

    #[test]
    fn refuses_to_open_twice() {
        given::<Account>([opened()])
            .when(C::Open {
                owner: "Bob".into(),
            })
            .then_error(AccountError::AlreadyOpen);
    }

    #[test]
    fn refuses_deposits_before_opening() {
        given::<Account>([])
            .when(C::Deposit { amount: 5 })
            .then_error(AccountError::NotOpen);
    }

    #[test]
    fn withdraws_up_to_the_balance() {
        let state = given::<Account>([opened(), E::Deposited { amount: 100 }])
            .when(C::Withdraw { amount: 100 })
            .then([E::Withdrawn { amount: 100 }]);
        assert_eq!(state.balance, 0);
    }

    #[test]
    fn rejects_withdrawal_beyond_the_balance() {
        given::<Account>([opened(), E::Deposited { amount: 100 }])
            .when(C::Withdraw { amount: 101 })
            .then_error(AccountError::InsufficientFunds {
                balance: 100,
                requested: 101,
            });
    }

    #[test]
    fn rejects_zero_amounts() {
        given::<Account>([opened()])
            .when(C::Deposit { amount: 0 })
            .then_error(AccountError::ZeroAmount);
    }

    #[test]
    fn reads_accounts_opened_by_release_0_1() {
        let old = serde_json::json!({ "holder": "Grace" });
        let event: AccountEvent = es_core::evolution::decode_payload("Opened", 1, &old).unwrap();
        assert_eq!(
            event,
            E::Opened {
                owner: "Grace".into()
            }
        );
    }

    #[test]
    fn closes_only_when_empty_and_then_refuses_everything() {
        given::<Account>([opened(), E::Deposited { amount: 1 }])
            .when(C::Close)
            .then_error(AccountError::NotEmpty { balance: 1 });
        given::<Account>([opened()])
            .when(C::Close)
            .then([E::Closed]);
        given::<Account>([opened(), E::Closed])
            .when(C::Deposit { amount: 1 })
            .then_error_matches(|e| matches!(e, AccountError::Closed));
    }
}
