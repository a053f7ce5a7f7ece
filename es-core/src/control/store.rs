//! Where control requests and reports live: the store every process shares.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::control::{ControlAnswer, ControlCommand, ProjectionReport};
use crate::store::StoreError;

/// A control request as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// Its id, given by the store.
    pub id: u64,
    /// The projection it is for.
    pub projection: String,
    /// What to do.
    pub command: ControlCommand,
    /// When it was written.
    pub requested_at: DateTime<Utc>,
    /// After this, no instance takes it any more.
    pub expires_at: DateTime<Utc>,
}

/// Where a request is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RequestState {
    /// Written; no instance has taken it yet.
    Pending,
    /// Taken by `instance`, which is carrying it out.
    Claimed {
        /// The instance.
        instance: String,
    },
    /// Finished.
    Answered {
        /// How.
        answer: ControlAnswer,
    },
}

impl RequestState {
    /// The state of a stored request from its two columns: its answer, else who took it, else pending.
    ///
    /// ```
    /// use es_core::control::RequestState;
    /// assert_eq!(RequestState::of(None, None), RequestState::Pending);
    /// assert_eq!(RequestState::of(Some("a".into()), None), RequestState::Claimed { instance: "a".into() });
    /// ```
    pub fn of(claimed_by: Option<String>, answer: Option<ControlAnswer>) -> Self {
        match (answer, claimed_by) {
            (Some(answer), _) => Self::Answered { answer },
            (None, Some(instance)) => Self::Claimed { instance },
            (None, None) => Self::Pending,
        }
    }
}

/// Stores control requests, their answers, the runners' reports and which projections are paused. Implemented by
/// every backend; on PostgreSQL any process connected to the database reads and writes the same rows.
///
/// ```
/// use chrono::{Duration, Utc};
/// use es_core::control::{ControlCommand, ControlStore, RequestState};
/// use es_memory::InMemoryEventStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let request = store.submit("balances", ControlCommand::Pause, Utc::now() + Duration::seconds(10)).await?;
/// let taken = store.claim("balances", "worker-1", Utc::now()).await?;
/// assert_eq!(taken, vec![request.clone()]);
/// assert_eq!(store.request_state(request.id).await?, Some(RequestState::Claimed { instance: "worker-1".into() }));
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// Writes a request for `projection`, to be taken before `expires_at`.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn submit(
        &self,
        projection: &str,
        command: ControlCommand,
        expires_at: DateTime<Utc>,
    ) -> Result<ControlRequest, StoreError>;

    /// Takes every pending request for `projection` on behalf of `instance`, oldest first; a request taken once is
    /// never handed out again. Pending requests that expired by `now` are answered
    /// [`ControlAnswer::TimedOut`] instead.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn claim(
        &self,
        projection: &str,
        instance: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<ControlRequest>, StoreError>;

    /// Answers request `id`. Answering an unknown or already answered request changes nothing.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn answer(&self, id: u64, answer: ControlAnswer) -> Result<(), StoreError>;

    /// Where request `id` is; `None` when there is no such request.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn request_state(&self, id: u64) -> Result<Option<RequestState>, StoreError>;

    /// Withdraws request `id` if no instance took it yet (answering it `TimedOut { claimed_by: None }`); returns
    /// where it is afterwards (`None`: no such request).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn withdraw(&self, id: u64) -> Result<Option<RequestState>, StoreError>;

    /// Writes `reports`, replacing each earlier report of the same projection and instance.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn report(&self, reports: &[ProjectionReport]) -> Result<(), StoreError>;

    /// Every report, by projection then instance.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn reports(&self) -> Result<Vec<ProjectionReport>, StoreError>;

    /// Marks `projection` paused or not; its runners follow the mark.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn set_paused(&self, projection: &str, paused: bool) -> Result<(), StoreError>;

    /// The projections marked paused, sorted.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn paused(&self) -> Result<Vec<String>, StoreError>;
}
