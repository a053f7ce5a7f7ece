//! The [`CheckpointStore`] contract as executable cases; run by
//! [`checkpoint_store_conformance_tests!`](crate::checkpoint_store_conformance_tests).

use crate::projection::CheckpointStore;
use crate::store::{Position, StoreError};

fn p(commit: u64, prepare: u64) -> Position {
    Position::new(commit, prepare)
}

#[track_caller]
fn assert_conflict(
    result: Result<(), StoreError>,
    expected: Option<Position>,
    actual: Option<Position>,
) {
    match result {
        Err(StoreError::CheckpointConflict {
            expected: e,
            actual: a,
            ..
        }) => {
            assert_eq!(
                (e, a),
                (expected, actual),
                "conflict names the wrong positions"
            );
        }
        other => panic!("expected a checkpoint conflict, got {other:?}"),
    }
}

/// A reader that never saved loads `None`.
pub async fn a_reader_without_checkpoint_loads_none<S: CheckpointStore>(store: S) {
    assert_eq!(store.load_checkpoint("balances").await.expect("load"), None);
}

/// A checkpoint is created from `None` and moved from its current position; positions round-trip exactly.
pub async fn saves_and_moves_a_checkpoint_by_compare_and_set<S: CheckpointStore>(store: S) {
    store
        .save_checkpoint("balances", None, p(5, 7))
        .await
        .expect("create");
    assert_eq!(
        store.load_checkpoint("balances").await.expect("load"),
        Some(p(5, 7))
    );
    let big = p(i64::MAX as u64, i64::MAX as u64 - 1);
    store
        .save_checkpoint("balances", Some(p(5, 7)), big)
        .await
        .expect("move");
    assert_eq!(
        store.load_checkpoint("balances").await.expect("load"),
        Some(big)
    );
}

/// A move from a position the checkpoint is no longer at is refused, naming where it is.
pub async fn refuses_a_checkpoint_move_from_a_stale_position<S: CheckpointStore>(store: S) {
    store
        .save_checkpoint("balances", None, p(5, 5))
        .await
        .expect("create");
    store
        .save_checkpoint("balances", Some(p(5, 5)), p(9, 9))
        .await
        .expect("move");
    assert_conflict(
        store
            .save_checkpoint("balances", Some(p(5, 5)), p(7, 7))
            .await,
        Some(p(5, 5)),
        Some(p(9, 9)),
    );
    assert_eq!(
        store.load_checkpoint("balances").await.expect("load"),
        Some(p(9, 9))
    );
}

/// Creating (expecting `None`) a checkpoint that exists is refused; moving a missing one too.
pub async fn refuses_to_create_a_checkpoint_that_exists<S: CheckpointStore>(store: S) {
    assert_conflict(
        store
            .save_checkpoint("balances", Some(p(1, 1)), p(2, 2))
            .await,
        Some(p(1, 1)),
        None,
    );
    store
        .save_checkpoint("balances", None, p(3, 3))
        .await
        .expect("create");
    assert_conflict(
        store.save_checkpoint("balances", None, p(4, 4)).await,
        None,
        Some(p(3, 3)),
    );
}

/// A deleted checkpoint loads `None` and can be created again; deleting a missing one is fine.
pub async fn deletes_a_checkpoint<S: CheckpointStore>(store: S) {
    store
        .delete_checkpoint("balances")
        .await
        .expect("delete missing");
    store
        .save_checkpoint("balances", None, p(3, 3))
        .await
        .expect("create");
    store.delete_checkpoint("balances").await.expect("delete");
    assert_eq!(store.load_checkpoint("balances").await.expect("load"), None);
    store
        .save_checkpoint("balances", None, p(1, 1))
        .await
        .expect("create again");
}

/// Names do not share checkpoints.
pub async fn checkpoints_are_kept_per_name<S: CheckpointStore>(store: S) {
    store
        .save_checkpoint("a", None, p(1, 1))
        .await
        .expect("create");
    store
        .save_checkpoint("b", None, p(2, 2))
        .await
        .expect("create");
    assert_eq!(
        store.load_checkpoint("a").await.expect("load"),
        Some(p(1, 1))
    );
    assert_eq!(
        store.load_checkpoint("b").await.expect("load"),
        Some(p(2, 2))
    );
}

/// Of several instances moving the same checkpoint from the same position at once, exactly one wins.
pub async fn only_one_of_racing_checkpoint_moves_wins<S: CheckpointStore + Clone + 'static>(
    store: S,
) {
    store
        .save_checkpoint("balances", None, p(1, 1))
        .await
        .expect("create");
    let tasks: Vec<_> = (2..10u64)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .save_checkpoint("balances", Some(p(1, 1)), p(n, n))
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => wins += 1,
            Err(StoreError::CheckpointConflict { .. }) => {}
            Err(other) => panic!("a racing move failed with {other}"),
        }
    }
    assert_eq!(wins, 1);
}
