//! Sending a control request and turning its answer into output and an exit code.

use std::time::Duration;

use es_core::control::{ControlAnswer, ControlCommand};

use crate::app::App;
use crate::failure::Failure;
use crate::output::json;
use es_core::control::OperatorStore;

/// Runs `work` (a command's whole work) for at most `bound`: past it, [`Failure::TimedOut`] (exit code 4) saying
/// that what was asked may still be carried out.
pub(crate) async fn within(
    bound: Duration,
    what: &str,
    work: impl std::future::Future<Output = Result<(), Failure>>,
) -> Result<(), Failure> {
    match tokio::time::timeout(bound, work).await {
        Ok(done) => done,
        Err(_) => Err(Failure::TimedOut(format!(
            "{what}: not done within the timeout of {}s; what was asked may still be carried out",
            bound.as_secs_f64()
        ))),
    }
}

/// Sends `command` for `projection`, prints the answer, and fails unless it was carried out; the whole of it within
/// `timeout`.
pub(crate) async fn send<S: OperatorStore>(
    app: &App<S>,
    projection: &str,
    command: ControlCommand,
    timeout: Duration,
) -> Result<(), Failure> {
    let what = format!("{projection}: {command}");
    within(
        timeout,
        &what,
        send_unbounded(app, projection, command, timeout),
    )
    .await
}

async fn send_unbounded<S: OperatorStore>(
    app: &App<S>,
    projection: &str,
    command: ControlCommand,
    timeout: Duration,
) -> Result<(), Failure> {
    let what = command.to_string();
    if app.operator.projection(projection).await?.is_none() {
        return Err(Failure::NotFound(format!(
            "no runner reports a projection named `{projection}`"
        )));
    }
    let answer = app.operator.send(projection, command, timeout).await?;
    if app.json {
        json(&answer)?;
    }
    match answer {
        ControlAnswer::Done { detail } => {
            if !app.json {
                println!("{projection}: {what}: {detail}");
            }
            Ok(())
        }
        ControlAnswer::Rejected { reason } => Err(Failure::Rejected(reason)),
        timed_out => Err(Failure::TimedOut(format!(
            "{projection}: {what}: {timed_out}"
        ))),
    }
}
