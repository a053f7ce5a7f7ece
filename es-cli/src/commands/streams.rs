//! `es streams list`, `es stream show`.

use es_core::store::StreamRead;
use es_core::{StreamId, Version};

use crate::app::App;
use crate::failure::Failure;
use crate::output::{json, table};
use crate::views::EventView;
use es_core::control::OperatorStore;

pub(crate) async fn list<S: OperatorStore>(
    app: &App<S>,
    category: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> Result<(), Failure> {
    let streams = app.store.streams(category, after, limit).await?;
    if app.json {
        return json(&streams);
    }
    let rows: Vec<Vec<String>> = streams
        .iter()
        .map(|s| {
            vec![
                s.stream_id.clone(),
                s.version.to_string(),
                s.updated_at.to_rfc3339(),
            ]
        })
        .collect();
    table(&["STREAM", "VERSION", "LAST WRITE"], &rows, "no streams");
    Ok(())
}

pub(crate) async fn show<S: OperatorStore>(
    app: &App<S>,
    id: &str,
    from: u64,
    limit: usize,
    payloads: bool,
) -> Result<(), Failure> {
    let stream = StreamId::new(id).map_err(|e| Failure::Usage(e.to_string()))?;
    let read = StreamRead::forward()
        .from(Version::new(from.max(1)))
        .limit(limit);
    let events = app.store.read_stream(&stream, read).await?;
    if events.is_empty()
        && app
            .store
            .read_stream(&stream, StreamRead::forward().limit(1))
            .await?
            .is_empty()
    {
        return Err(Failure::NotFound(format!("stream `{id}` has no events")));
    }
    print_events(app, &events, payloads)
}

/// Prints events as JSON or as a table (with each payload on the line below when asked for).
pub(crate) fn print_events<S: OperatorStore>(
    app: &App<S>,
    events: &[es_core::RecordedEvent],
    payloads: bool,
) -> Result<(), Failure> {
    let views: Vec<EventView> = events.iter().map(|e| EventView::of(e, payloads)).collect();
    if app.json {
        return json(&views);
    }
    if views.is_empty() {
        println!("no events");
    }
    for view in &views {
        print_event(view);
    }
    Ok(())
}

/// One event on one line (its payload indented below it, when shown).
pub(crate) fn print_event(view: &EventView) {
    println!(
        "{:<14} {} v{} {} (schema {}) {} {}",
        view.position.to_string(),
        view.stream_id,
        view.version,
        view.event_type,
        view.schema_version,
        view.event_id,
        view.recorded_at.to_rfc3339()
    );
    if let Some(payload) = &view.payload {
        println!("    payload  {payload}");
    }
    if let Some(metadata) = &view.metadata {
        println!("    metadata {metadata}");
    }
}
