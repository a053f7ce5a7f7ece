//! `es dead-letters list|show|redrive|discard`.

use es_core::control::ControlCommand;

use crate::app::App;
use crate::cli::DeadLettersCommand;
use crate::commands::control::send;
use crate::failure::Failure;
use crate::output::{json, table};
use crate::views::DeadLetterView;
use es_core::control::OperatorStore;

pub(crate) async fn run<S: OperatorStore>(
    app: &App<S>,
    command: DeadLettersCommand,
) -> Result<(), Failure> {
    match command {
        DeadLettersCommand::List { projection } => list(app, projection).await,
        DeadLettersCommand::Show {
            projection,
            event_id,
            payloads,
        } => show(app, &projection, event_id, payloads.payloads).await,
        DeadLettersCommand::Redrive {
            projection,
            event_id,
            all: _,
            timeout,
        } => {
            send(
                app,
                &projection,
                ControlCommand::Redrive { event_id },
                timeout.duration(),
            )
            .await
        }
        DeadLettersCommand::Discard {
            projection,
            event_id,
            timeout,
        } => {
            send(
                app,
                &projection,
                ControlCommand::Discard { event_id },
                timeout.duration(),
            )
            .await
        }
    }
}

async fn list<S: OperatorStore>(app: &App<S>, projection: Option<String>) -> Result<(), Failure> {
    let letters = app.operator.dead_letters_of(projection.as_deref()).await?;
    if app.json {
        let views: Vec<DeadLetterView> = letters
            .into_iter()
            .map(|l| DeadLetterView::of(l, None))
            .collect();
        return json(&views);
    }
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|l| {
            vec![
                l.projection.clone(),
                l.event_id.to_string(),
                l.position.to_string(),
                format!("{} v{}", l.stream_id, l.version),
                l.event_type.clone(),
                l.attempts.to_string(),
                l.failed_at.to_rfc3339(),
                l.error.clone(),
            ]
        })
        .collect();
    table(
        &[
            "PROJECTION",
            "EVENT",
            "POSITION",
            "STREAM",
            "TYPE",
            "ATTEMPTS",
            "FAILED AT",
            "ERROR",
        ],
        &rows,
        "no dead letters",
    );
    Ok(())
}

async fn show<S: OperatorStore>(
    app: &App<S>,
    projection: &str,
    event_id: es_core::EventId,
    payloads: bool,
) -> Result<(), Failure> {
    let view = crate::views::dead_letter(app, projection, event_id, payloads)
        .await?
        .ok_or_else(|| {
            Failure::NotFound(format!(
                "projection `{projection}` has no dead letter for event {event_id}"
            ))
        })?;
    if app.json {
        return json(&view);
    }
    let l = &view.letter;
    println!("projection  {}", l.projection);
    println!(
        "event       {} ({} v{} at {})",
        l.event_id, l.stream_id, l.version, l.position
    );
    println!("type        {}", l.event_type);
    println!("attempts    {}", l.attempts);
    println!("failed at   {}", l.failed_at.to_rfc3339());
    println!("error       {}", l.error);
    if let Some(payload) = &view.payload {
        println!("payload     {payload}");
    }
    Ok(())
}
