//! `es projections status|wait|pause|resume|rebuild|reset`.

use std::time::{Duration, Instant};

use es_core::control::{ControlCommand, OverviewState, ProjectionOverview};
use indicatif::{ProgressBar, ProgressStyle};

use crate::app::App;
use crate::cli::ProjectionsCommand;
use crate::commands::control::{send, within};
use crate::failure::Failure;
use crate::output::{json, or_dash, table};
use crate::views::position;
use es_core::control::OperatorStore;

/// How often progress is read while waiting.
const PROGRESS_POLL: Duration = Duration::from_millis(200);

pub(crate) async fn run<S: OperatorStore>(
    app: &App<S>,
    command: ProjectionsCommand,
) -> Result<(), Failure> {
    match command {
        ProjectionsCommand::Status { name } => status(app, name.as_deref()).await,
        ProjectionsCommand::Wait { name, timeout } => {
            let bound = timeout.duration();
            let waited = wait_caught_up(app, &name, Some(bound));
            within(bound, &format!("{name}: wait"), waited).await
        }
        ProjectionsCommand::Pause { name, timeout } => {
            send(app, &name, ControlCommand::Pause, timeout.duration()).await
        }
        ProjectionsCommand::Resume { name, timeout } => {
            send(app, &name, ControlCommand::Resume, timeout.duration()).await
        }
        ProjectionsCommand::Rebuild {
            name,
            no_wait,
            timeout,
        } => {
            // The timeout bounds the whole command: the answer and the wait for the replay to catch up.
            let bound = timeout.duration();
            let rebuilt = async {
                send(app, &name, ControlCommand::Rebuild, bound).await?;
                match no_wait {
                    true => Ok(()),
                    false => wait_caught_up(app, &name, None).await,
                }
            };
            within(bound, &format!("{name}: rebuild"), rebuilt).await
        }
        ProjectionsCommand::Reset { name, to, timeout } => {
            send(
                app,
                &name,
                ControlCommand::ResetTo { position: to },
                timeout.duration(),
            )
            .await
        }
    }
}

async fn status<S: OperatorStore>(app: &App<S>, name: Option<&str>) -> Result<(), Failure> {
    let mut projections = app.operator.projections().await?;
    if let Some(name) = name {
        projections.retain(|p| p.name == name);
        if projections.is_empty() {
            return Err(Failure::NotFound(format!(
                "no runner reports a projection named `{name}`"
            )));
        }
    }
    if app.json {
        return json(&projections);
    }
    let rows: Vec<Vec<String>> = projections.iter().map(row).collect();
    table(
        &[
            "PROJECTION",
            "STATE",
            "ACTIVE",
            "CHECKPOINT",
            "HEAD",
            "LAG",
            "LAG(s)",
            "DEAD",
            "DETAIL",
        ],
        &rows,
        "no projections reported (runners report once they run with a control plane)",
    );
    if name.is_some() {
        for projection in &projections {
            println!();
            let instances: Vec<Vec<String>> = projection
                .instances
                .iter()
                .map(|i| {
                    vec![
                        i.report.instance.clone(),
                        i.report.state.clone(),
                        position(i.report.checkpoint),
                        i.report.reported_at.to_rfc3339(),
                        if i.stale {
                            "stale".to_owned()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect();
            table(
                &["INSTANCE", "STATE", "CHECKPOINT", "REPORTED", ""],
                &instances,
                "no instances",
            );
        }
    }
    Ok(())
}

fn row(p: &ProjectionOverview) -> Vec<String> {
    let state = match p.paused && p.state != OverviewState::Paused {
        true => format!("{} (pause marked)", p.state),
        false => p.state.to_string(),
    };
    vec![
        p.name.clone(),
        state,
        or_dash(p.active.as_ref()),
        position(p.checkpoint),
        position(p.head),
        p.lag_events.to_string(),
        format!("{:.1}", p.lag_seconds),
        p.dead_letters.to_string(),
        detail(p),
    ]
}

/// The instance's error or holder, and the transaction holding back the global order, if any.
fn detail(p: &ProjectionOverview) -> String {
    let held = p.held_back.as_ref().map(|h| {
        format!(
            "{} events held back by pid {} ({}, open {}s)",
            h.events,
            or_dash(h.pid),
            h.state.as_deref().unwrap_or("?"),
            h.age.map_or(0, |a| a.as_secs())
        )
    });
    [p.detail.clone(), held]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
}

/// Shows a progress bar until projection `name` has no lag; fails when it stops running or `timeout` passes.
pub(crate) async fn wait_caught_up<S: OperatorStore>(
    app: &App<S>,
    name: &str,
    timeout: Option<Duration>,
) -> Result<(), Failure> {
    let started = Instant::now();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events, {per_sec}, eta {eta}")
            .map_err(|e| Failure::Io(e.to_string()))?
            .progress_chars("=> "),
    );
    bar.set_message(name.to_owned());
    let mut total = 0;
    loop {
        let view = app.operator.projection(name).await?.ok_or_else(|| {
            Failure::NotFound(format!("no runner reports a projection named `{name}`"))
        })?;
        total = total.max(view.lag_events);
        bar.set_length(total);
        bar.set_position(total - view.lag_events);
        if view.lag_events == 0 {
            bar.finish_and_clear();
            if app.json {
                return json(&view);
            }
            println!(
                "{name}: caught up at checkpoint {}",
                position(view.checkpoint)
            );
            return Ok(());
        }
        if view.state.needs_attention() {
            bar.abandon();
            return Err(Failure::Rejected(format!(
                "{name} is {} with {} events to go{}",
                view.state,
                view.lag_events,
                view.detail.map(|d| format!(": {d}")).unwrap_or_default()
            )));
        }
        if timeout.is_some_and(|t| started.elapsed() > t) {
            bar.abandon();
            return Err(Failure::TimedOut(format!(
                "{name} is still {} events behind ({}); it goes on",
                view.lag_events, view.state
            )));
        }
        tokio::time::sleep(PROGRESS_POLL).await;
    }
}
