//! Small statistics helpers.

use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Events per second.
pub(crate) fn rate(events: usize, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The `p`-th percentile (0..=100) of `samples` in milliseconds.
pub(crate) fn percentile_ms(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)].as_secs_f64() * 1000.0
}

/// Runs `n` operations over `tasks` tasks (task `t` runs `op(t, i)` for its share of `i`), each awaited before the
/// next; returns operations per second.
pub(crate) async fn spread<F, Fut>(n: usize, tasks: usize, op: F) -> Result<f64, Error>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), Error>> + Send,
{
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                for i in 0..n / tasks {
                    op(task, i).await?;
                }
                Ok::<_, Error>(())
            })
        })
        .collect();
    for handle in handles {
        handle.await??;
    }
    Ok(rate(n / tasks * tasks, started.elapsed()))
}
