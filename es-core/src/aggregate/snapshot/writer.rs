//! How the repository reads and writes snapshots for an aggregate that opted in.

use std::marker::PhantomData;

use async_trait::async_trait;

use crate::aggregate::snapshot::{
    Snapshot, SnapshotDue, SnapshotPolicy, SnapshotStore, Snapshotting,
};
use crate::store::{StreamId, Version};

/// Snapshot reading and writing for one aggregate type, behind a trait object so that `Repository` needs no
/// `Snapshotting` bound unless snapshots are turned on.
#[async_trait]
pub(crate) trait Snapshotter<A>: Send + Sync {
    /// The newest usable snapshot of `stream` at or before `at_most`. Unusable ones (another schema version,
    /// undecodable, a store error) are logged and skipped: the events are the source of truth.
    async fn load(&self, stream: &StreamId, at_most: Option<Version>) -> Option<(A, Version)>;

    /// The snapshot to write after a command, if the policy says one is due and the state encodes (a failure
    /// is logged: a snapshot is an optimisation and must not fail the command that triggered it).
    fn prepare(&self, stream: &StreamId, state: &A, due: &SnapshotDue) -> Option<Snapshot>;

    /// Writes `snapshot`; failures are logged, never returned.
    async fn save(&self, snapshot: Snapshot);
}

pub(crate) struct StoreSnapshotter<A, T> {
    pub(crate) store: T,
    pub(crate) policy: SnapshotPolicy,
    pub(crate) aggregate: PhantomData<fn() -> A>,
}

#[async_trait]
impl<A: Snapshotting, T: SnapshotStore> Snapshotter<A> for StoreSnapshotter<A, T> {
    async fn load(&self, stream: &StreamId, at_most: Option<Version>) -> Option<(A, Version)> {
        let snapshot = match self.store.load_snapshot(stream, A::SNAPSHOT_TYPE).await {
            Ok(snapshot) => snapshot?,
            Err(error) => {
                tracing::warn!(%stream, %error, "cannot read snapshot; folding all events");
                return None;
            }
        };
        if snapshot.schema_version != A::SNAPSHOT_VERSION {
            tracing::debug!(%stream, stored = snapshot.schema_version, current = A::SNAPSHOT_VERSION,
                "ignoring snapshot of another schema version");
            return None;
        }
        if at_most.is_some_and(|limit| snapshot.version > limit) {
            return None;
        }
        match serde_json::from_value::<A::Snapshot>(snapshot.state) {
            Ok(state) => Some((A::from_snapshot(state), snapshot.version)),
            Err(error) => {
                tracing::warn!(%stream, version = %snapshot.version, %error,
                    "ignoring snapshot that does not decode; folding all events");
                None
            }
        }
    }

    fn prepare(&self, stream: &StreamId, state: &A, due: &SnapshotDue) -> Option<Snapshot> {
        if !self.policy.is_due(due) {
            return None;
        }
        let state = match serde_json::to_value(state.to_snapshot()) {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%stream, %error, "cannot encode snapshot; skipped");
                return None;
            }
        };
        Some(Snapshot {
            stream_id: stream.clone(),
            snapshot_type: A::SNAPSHOT_TYPE.to_owned(),
            schema_version: A::SNAPSHOT_VERSION,
            version: due.version,
            state,
        })
    }

    async fn save(&self, snapshot: Snapshot) {
        let (stream, version) = (snapshot.stream_id.clone(), snapshot.version);
        if let Err(error) = self.store.save_snapshot(snapshot).await {
            tracing::warn!(%stream, %version, %error, "cannot write snapshot; the command stands");
        }
    }
}
