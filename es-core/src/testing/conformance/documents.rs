//! The [`DocumentStore`] contract as executable cases; run by
//! [`document_store_conformance_tests!`](crate::document_store_conformance_tests).

use serde_json::{Value, json};

use crate::projection::CheckpointStore;
use crate::projection::document::{DocumentChange, DocumentStore, Filter};
use crate::store::{Position, StoreError};

fn put(id: &str, document: Value) -> DocumentChange {
    DocumentChange {
        id: id.to_owned(),
        document: Some(document),
    }
}

fn delete(id: &str) -> DocumentChange {
    DocumentChange {
        id: id.to_owned(),
        document: None,
    }
}

fn at(n: u64) -> Position {
    Position::new(n, n)
}

async fn ids<S: DocumentStore>(
    store: &S,
    projection: &str,
    filter: Filter,
    after: Option<&str>,
    limit: usize,
) -> Vec<String> {
    let page = store
        .list_documents(projection, &filter, after, limit)
        .await
        .expect("list documents");
    page.into_iter().map(|(id, _)| id).collect()
}

/// A batch's documents and the checkpoint are written together; a commit whose checkpoint moved writes nothing.
pub async fn commits_documents_with_the_checkpoint<S: DocumentStore + CheckpointStore>(store: S) {
    store
        .prepare_documents("loans", &[])
        .await
        .expect("prepare");
    let batch = [
        put("ada", json!({ "count": 1 })),
        put("bob", json!({ "count": 2 })),
    ];
    store
        .commit_documents("loans", &batch, Some((None, at(3))))
        .await
        .expect("commit");
    assert_eq!(
        store.load_checkpoint("loans").await.expect("checkpoint"),
        Some(at(3))
    );
    let mut loaded = store
        .load_documents("loans", &["bob".into(), "ada".into(), "cy".into()])
        .await
        .expect("load");
    loaded.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        loaded,
        [
            ("ada".to_owned(), json!({ "count": 1 })),
            ("bob".to_owned(), json!({ "count": 2 }))
        ]
    );

    let stale = store
        .commit_documents(
            "loans",
            &[put("ada", json!({ "count": 9 }))],
            Some((None, at(4))),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::CheckpointConflict { .. })),
        "{stale:?}"
    );
    let ada = store
        .load_documents("loans", &["ada".into()])
        .await
        .expect("load");
    assert_eq!(
        ada,
        [("ada".to_owned(), json!({ "count": 1 }))],
        "a refused commit writes no document"
    );
    assert_eq!(
        store.load_checkpoint("loans").await.expect("checkpoint"),
        Some(at(3))
    );
}

/// A change replaces a document or deletes it; a commit without a checkpoint (a redriven event) leaves it alone.
pub async fn replaces_and_deletes_documents<S: DocumentStore + CheckpointStore>(store: S) {
    store
        .commit_documents(
            "loans",
            &[put("ada", json!({ "n": 1 })), put("bob", json!({ "n": 1 }))],
            Some((None, at(1))),
        )
        .await
        .expect("commit");
    store
        .commit_documents(
            "loans",
            &[put("ada", json!({ "n": 2 })), delete("bob")],
            Some((Some(at(1)), at(2))),
        )
        .await
        .expect("commit");
    store
        .commit_documents("loans", &[put("cy", json!({ "n": 3 }))], None)
        .await
        .expect("commit without checkpoint");
    assert_eq!(
        ids(&store, "loans", Filter::all(), None, 10).await,
        ["ada", "cy"]
    );
    assert_eq!(
        store
            .load_documents("loans", &["ada".into()])
            .await
            .expect("load")[0]
            .1,
        json!({ "n": 2 })
    );
    assert_eq!(
        store.load_checkpoint("loans").await.expect("checkpoint"),
        Some(at(2))
    );
}

/// Documents list by id in pages, filtered on a field's value (a string, a number, a boolean).
pub async fn lists_documents_by_field_in_pages<S: DocumentStore + CheckpointStore>(store: S) {
    store
        .prepare_documents("members", &["city", "loans", "blocked"])
        .await
        .expect("prepare");
    store
        .prepare_documents("members", &["city", "loans", "blocked"])
        .await
        .expect("prepare twice");
    let members = [
        put(
            "m1",
            json!({ "city": "Oslo", "loans": 2, "blocked": false }),
        ),
        put("m2", json!({ "city": "Rome", "loans": 0, "blocked": true })),
        put(
            "m3",
            json!({ "city": "Oslo", "loans": 2, "blocked": false }),
        ),
        put(
            "m4",
            json!({ "city": "Oslo", "loans": 1, "blocked": false }),
        ),
    ];
    store
        .commit_documents("members", &members, Some((None, at(1))))
        .await
        .expect("commit");
    assert_eq!(
        ids(&store, "members", Filter::field("city", "Oslo"), None, 2).await,
        ["m1", "m3"]
    );
    assert_eq!(
        ids(
            &store,
            "members",
            Filter::field("city", "Oslo"),
            Some("m3"),
            2
        )
        .await,
        ["m4"]
    );
    assert_eq!(
        ids(&store, "members", Filter::field("loans", 2), None, 10).await,
        ["m1", "m3"]
    );
    assert_eq!(
        ids(&store, "members", Filter::field("blocked", true), None, 10).await,
        ["m2"]
    );
    assert!(
        ids(&store, "members", Filter::field("city", "Lima"), None, 10)
            .await
            .is_empty()
    );
    assert_eq!(
        ids(&store, "members", Filter::all(), Some("m2"), 10).await,
        ["m3", "m4"]
    );
    let refused = store
        .list_documents("members", &Filter::field("city'; --", "x"), None, 10)
        .await;
    assert!(
        refused.is_err(),
        "a field name that could carry SQL is refused"
    );
}

/// A reset empties one projection's documents and checkpoint, and no other's.
pub async fn reset_empties_one_projection<S: DocumentStore + CheckpointStore>(store: S) {
    store
        .commit_documents("a", &[put("x", json!({}))], Some((None, at(1))))
        .await
        .expect("commit");
    store
        .commit_documents("b", &[put("x", json!({ "b": true }))], Some((None, at(1))))
        .await
        .expect("commit");
    store.reset_documents("a").await.expect("reset");
    assert!(ids(&store, "a", Filter::all(), None, 10).await.is_empty());
    assert_eq!(store.load_checkpoint("a").await.expect("checkpoint"), None);
    assert_eq!(
        store
            .load_documents("b", &["x".into()])
            .await
            .expect("load"),
        [("x".to_owned(), json!({ "b": true }))]
    );
    assert_eq!(
        store.load_checkpoint("b").await.expect("checkpoint"),
        Some(at(1))
    );
}

/// The first version registered is live; a switch makes another version live in one step: reads by the
/// projection's name follow it, the other versions' documents and checkpoints are gone, another projection whose
/// name starts the same (`loans_x`) keeps its own, and a read by a version's key reads that version.
pub async fn a_switch_makes_a_version_live_and_retires_the_others<
    S: DocumentStore + CheckpointStore,
>(
    store: S,
) {
    assert_eq!(store.live_documents("loans", 1).await.expect("live"), 1);
    assert_eq!(
        store.live_documents("loans", 2).await.expect("live"),
        1,
        "a second version does not replace the live one by registering"
    );
    for (key, value) in [("loans", 1), ("loans@v2", 2), ("loans_x", 3)] {
        store
            .commit_documents(
                key,
                &[put("m-1", json!({ "v": value }))],
                Some((None, at(7))),
            )
            .await
            .expect("commit");
    }
    let read = async |key: &str| {
        store
            .load_documents(key, &["m-1".into()])
            .await
            .expect("load")
    };
    assert_eq!(read("loans").await, [("m-1".to_owned(), json!({ "v": 1 }))]);
    assert_eq!(
        read("loans@v2").await,
        [("m-1".to_owned(), json!({ "v": 2 }))]
    );

    store.switch_documents("loans", 2).await.expect("switch");
    assert_eq!(store.live_documents("loans", 1).await.expect("live"), 2);
    assert_eq!(read("loans").await, [("m-1".to_owned(), json!({ "v": 2 }))]);
    assert_eq!(
        ids(&store, "loans", Filter::field("v", 2), None, 10).await,
        ["m-1"]
    );
    assert_eq!(
        store.load_checkpoint("loans").await.expect("checkpoint"),
        None
    );
    assert_eq!(
        store.load_checkpoint("loans@v2").await.expect("checkpoint"),
        Some(at(7))
    );
    assert_eq!(
        read("loans_x").await,
        [("m-1".to_owned(), json!({ "v": 3 }))]
    );
    assert_eq!(
        store.load_checkpoint("loans_x").await.expect("checkpoint"),
        Some(at(7))
    );
    // The retired version's worker, reading on from a checkpoint that is gone, commits nothing.
    let stale = store
        .commit_documents(
            "loans",
            &[put("m-2", json!({}))],
            Some((Some(at(7)), at(9))),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::CheckpointConflict { .. })),
        "{stale:?}"
    );
    assert_eq!(read("loans").await, [("m-1".to_owned(), json!({ "v": 2 }))]);
    let m2 = store
        .load_documents("loans", &["m-2".into()])
        .await
        .expect("load");
    assert!(m2.is_empty());
}
