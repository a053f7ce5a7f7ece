//! The write transactions every table module runs.

/// Runs `$body` (with `$conn` the transaction's connection, returning `Result<T, Failure>`) in a write
/// transaction of `$store` and commits it: `Result<T, StoreError>`.
macro_rules! in_write {
    ($store:expr, $operation:expr, |$conn:ident| $body:block) => {
        async {
            let operation: &'static str = $operation;
            let mut tx = $store
                .begin()
                .await
                .map_err($crate::error::backend(operation))?;
            let result = async {
                let $conn: &mut ::sqlx::SqliteConnection = &mut tx;
                let result: Result<_, $crate::store::Failure> = $body;
                result
            }
            .await;
            $crate::SqliteEventStore::commit(tx, operation, result).await
        }
        .await
    };
}

/// Like [`in_write!`], keeping the body's failure: `Result<T, Failure>`.
macro_rules! in_transaction {
    ($store:expr, |$conn:ident| $body:block) => {
        async {
            let mut tx = $store.begin().await?;
            let value = async {
                let $conn: &mut ::sqlx::SqliteConnection = &mut tx;
                let result: Result<_, $crate::store::Failure> = $body;
                result
            }
            .await?;
            tx.commit().await?;
            Ok::<_, $crate::store::Failure>(value)
        }
        .await
    };
}
