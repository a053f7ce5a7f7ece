//! Invariants across aggregates, the two ways: a bank transfer that debits one account and credits another or
//! neither (a multi-stream append, [`transfer`]), and usernames unique across every user (a decision over the
//! events tagged with the username, [`ClaimUsername`]). The `consistency` example runs both on any store.

use es_core::aggregate::DecisionModel;
use es_core::store::{Query, QueryItem};
use es_core::{DomainEvent, StreamId};
use serde::{Deserialize, Serialize};

use crate::bank::{Account, AccountError, AccountEvent};

/// The decision of a transfer of `amount` from the first account to the second, for
/// [`Repository::execute_many`](es_core::Repository::execute_many): a withdrawal and a deposit, or the error that
/// refuses both.
///
/// # Errors
/// [`AccountError`] of either account (not open, closed, insufficient funds, a zero amount).
pub fn transfer(
    amount: u64,
    accounts: &[&Account],
) -> Result<Vec<Vec<AccountEvent>>, AccountError> {
    let [from, to] = accounts else {
        return Err(AccountError::NotOpen);
    };
    for account in [from, to] {
        if account.owner.is_none() {
            return Err(AccountError::NotOpen);
        }
        if account.closed {
            return Err(AccountError::Closed);
        }
    }
    if amount == 0 {
        return Err(AccountError::ZeroAmount);
    }
    if amount > from.balance {
        return Err(AccountError::InsufficientFunds {
            balance: from.balance,
            requested: amount,
        });
    }
    Ok(vec![
        vec![AccountEvent::Withdrawn { amount }],
        vec![AccountEvent::Deposited { amount }],
    ])
}

/// What happens to a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
#[event(category = "user")]
pub enum UserEvent {
    /// A user registered under a username: tagged `username:<name>`.
    Registered {
        /// The user's id.
        user: String,
        /// The name, unique across users.
        #[tag]
        username: String,
    },
}

/// Register `user` under `username`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterUser {
    /// The user's id (its stream is `user-<id>`).
    pub user: String,
    /// The name wanted.
    pub username: String,
}

/// Why a registration is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Someone has the name.
    #[error("username `{0}` is taken")]
    Taken(String),
    /// The user id does not make a stream id.
    #[error("invalid user id `{0}`")]
    InvalidUser(String),
}

/// Whether a username is free: the boundary is every `Registered` event tagged with it, whatever the user's stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimUsername {
    /// Who holds it, if anyone.
    pub holder: Option<String>,
}

impl DecisionModel for ClaimUsername {
    type Event = UserEvent;
    type Command = RegisterUser;
    type Error = UsernameError;

    fn query(command: &RegisterUser) -> Query {
        Query::new().item(
            QueryItem::types(["Registered"]).and_tags([format!("username:{}", command.username)]),
        )
    }

    fn initial(_: &RegisterUser) -> Self {
        Self::default()
    }

    fn apply(self, event: &UserEvent) -> Self {
        let UserEvent::Registered { user, .. } = event;
        Self {
            holder: Some(user.clone()),
        }
    }

    fn decide(&self, command: &RegisterUser) -> Result<Vec<(StreamId, UserEvent)>, UsernameError> {
        if self.holder.is_some() {
            return Err(UsernameError::Taken(command.username.clone()));
        }
        let stream = StreamId::new(format!("user-{}", command.user))
            .map_err(|_| UsernameError::InvalidUser(command.user.clone()))?;
        Ok(vec![(
            stream,
            UserEvent::Registered {
                user: command.user.clone(),
                username: command.username.clone(),
            },
        )])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use es_core::Aggregate;

    use super::*;
    use crate::bank::AccountEvent as E;

    fn opened(owner: &str, deposits: u64) -> Vec<E> {
        let mut events = vec![E::Opened {
            owner: owner.into(),
        }];
        if deposits > 0 {
            events.push(E::Deposited { amount: deposits });
        }
        events
    }

    /// Given the accounts' events, when the transfer is decided, then each account's events (or the error).
    fn when_transfer(from: Vec<E>, to: Vec<E>, amount: u64) -> Result<Vec<Vec<E>>, AccountError> {
        let fold = |events: Vec<E>| events.iter().fold(Account::default(), Account::apply);
        let (from, to) = (fold(from), fold(to));
        transfer(amount, &[&from, &to])
    }

    #[test]
    fn a_transfer_debits_one_account_and_credits_the_other() {
        assert_eq!(
            when_transfer(opened("ada", 100), opened("bob", 0), 30),
            Ok(vec![
                vec![E::Withdrawn { amount: 30 }],
                vec![E::Deposited { amount: 30 }]
            ])
        );
    }

    #[test]
    fn a_transfer_above_the_balance_changes_neither_account() {
        assert_eq!(
            when_transfer(opened("ada", 10), opened("bob", 0), 30),
            Err(AccountError::InsufficientFunds {
                balance: 10,
                requested: 30
            })
        );
    }

    #[test]
    fn a_transfer_to_a_closed_account_is_refused() {
        let mut closed = opened("bob", 0);
        closed.push(E::Closed);
        assert_eq!(
            when_transfer(opened("ada", 100), closed, 30),
            Err(AccountError::Closed)
        );
    }

    /// Given the boundary's events, when a registration is decided, then its events (or the error).
    fn when_register(
        given: &[UserEvent],
        user: &str,
        username: &str,
    ) -> Result<Vec<(StreamId, UserEvent)>, UsernameError> {
        let command = RegisterUser {
            user: user.into(),
            username: username.into(),
        };
        given
            .iter()
            .fold(ClaimUsername::initial(&command), ClaimUsername::apply)
            .decide(&command)
    }

    #[test]
    fn a_free_username_is_registered_in_the_users_stream_with_its_tag() {
        let decided = when_register(&[], "7", "ada").unwrap();
        assert_eq!(decided.len(), 1);
        assert_eq!(decided[0].0.as_str(), "user-7");
        assert_eq!(decided[0].1.tags(), ["username:ada"]);
    }

    #[test]
    fn a_taken_username_is_refused() {
        let taken = UserEvent::Registered {
            user: "1".into(),
            username: "ada".into(),
        };
        assert_eq!(
            when_register(&[taken], "7", "ada"),
            Err(UsernameError::Taken("ada".into()))
        );
    }

    #[test]
    fn the_boundary_is_the_username_tag() {
        let query = ClaimUsername::query(&RegisterUser {
            user: "7".into(),
            username: "ada".into(),
        });
        assert!(query.matches("Registered", &["username:ada".into()]));
        assert!(!query.matches("Registered", &["username:bob".into()]));
    }
}
