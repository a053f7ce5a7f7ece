//! [`transactional_worker!`](crate::transactional_worker): a store's worker type is the shared worker.

/// Implements [`ProjectionWorker`](crate::backend::ProjectionWorker) for a store's own worker type (which keeps its
/// name and its builder methods) by handing every call to the [`TransactionalWorker`](crate::backend::TransactionalWorker)
/// in one of its fields.
///
/// ```
/// # #![allow(dead_code)]
/// use es_core::backend::{TransactionalBackend, TransactionalWorker};
///
/// /// A store's worker: its builder methods are its own, its behaviour the shared worker's.
/// pub struct MyWorker<B> {
///     inner: TransactionalWorker<B>,
/// }
///
/// es_core::transactional_worker!(MyWorker<B: TransactionalBackend>, inner);
/// ```
#[macro_export]
macro_rules! transactional_worker {
    ($worker:ident<$p:ident: $bound:path>, $field:ident) => {
        #[$crate::async_trait]
        impl<$p: $bound> $crate::backend::ProjectionWorker for $worker<$p> {
            fn name(&self) -> &str {
                $crate::backend::ProjectionWorker::name(&self.$field)
            }

            fn options(&self) -> &$crate::projection::ProjectionOptions {
                $crate::backend::ProjectionWorker::options(&self.$field)
            }

            async fn acquire(
                &mut self,
            ) -> Result<$crate::backend::Acquired, $crate::backend::WorkerError> {
                $crate::backend::ProjectionWorker::acquire(&mut self.$field).await
            }

            fn heartbeat_interval(&self) -> Option<::std::time::Duration> {
                $crate::backend::ProjectionWorker::heartbeat_interval(&self.$field)
            }

            async fn heartbeat(&mut self) -> Result<(), $crate::backend::WorkerError> {
                $crate::backend::ProjectionWorker::heartbeat(&mut self.$field).await
            }

            async fn release(&mut self) {
                $crate::backend::ProjectionWorker::release(&mut self.$field).await;
            }

            fn feed_filter(&self) -> $crate::store::FeedFilter {
                $crate::backend::ProjectionWorker::feed_filter(&self.$field)
            }

            fn wants(&self, stream: &str, event_type: &str) -> bool {
                $crate::backend::ProjectionWorker::wants(&self.$field, stream, event_type)
            }

            async fn checkpoint(
                &mut self,
            ) -> Result<Option<$crate::store::Position>, $crate::backend::WorkerError> {
                $crate::backend::ProjectionWorker::checkpoint(&mut self.$field).await
            }

            async fn apply(
                &mut self,
                events: &[$crate::store::RecordedEvent],
                from: Option<$crate::store::Position>,
                to: $crate::store::Position,
            ) -> Result<(), $crate::backend::ApplyError> {
                $crate::backend::ProjectionWorker::apply(&mut self.$field, events, from, to).await
            }

            async fn park(
                &mut self,
                letter: $crate::projection::DeadLetter,
                from: Option<$crate::store::Position>,
            ) -> Result<(), $crate::backend::WorkerError> {
                $crate::backend::ProjectionWorker::park(&mut self.$field, letter, from).await
            }

            async fn reset(
                &mut self,
                from: Option<$crate::store::Position>,
                to: Option<$crate::store::Position>,
            ) -> Result<(), $crate::backend::WorkerError> {
                $crate::backend::ProjectionWorker::reset(&mut self.$field, from, to).await
            }

            async fn dead_letters(
                &mut self,
            ) -> Result<Vec<$crate::projection::DeadLetter>, $crate::backend::WorkerError> {
                $crate::backend::ProjectionWorker::dead_letters(&mut self.$field).await
            }

            async fn discard(
                &mut self,
                letter: &$crate::projection::DeadLetter,
            ) -> Result<(), $crate::backend::WorkerError> {
                $crate::backend::ProjectionWorker::discard(&mut self.$field, letter).await
            }

            async fn redrive(
                &mut self,
                letter: &$crate::projection::DeadLetter,
                event: &$crate::store::RecordedEvent,
            ) -> Result<(), $crate::backend::ApplyError> {
                $crate::backend::ProjectionWorker::redrive(&mut self.$field, letter, event).await
            }

            async fn replace_dead_letter(
                &mut self,
                letter: $crate::projection::DeadLetter,
            ) -> Result<(), $crate::backend::WorkerError> {
                $crate::backend::ProjectionWorker::replace_dead_letter(&mut self.$field, letter)
                    .await
            }
        }
    };
}
