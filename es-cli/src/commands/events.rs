//! `es events tail [--from POSITION] [--follow]`.

use std::io::Write;

use es_core::Position;
use futures::StreamExt;

use crate::app::App;
use crate::commands::streams::{print_event, print_events};
use crate::failure::Failure;
use crate::views::EventView;
use es_core::control::OperatorStore;

pub(crate) async fn tail<S: OperatorStore>(
    app: &App<S>,
    from: Option<Position>,
    limit: usize,
    follow: bool,
    payloads: bool,
) -> Result<(), Failure> {
    let after = match from {
        Some(position) => position,
        None => app.store.before_newest(limit).await?,
    };
    if !follow {
        let events = app.store.read_all(after, limit).await?;
        return print_events(app, &events, payloads);
    }
    let mut events = app.store.subscribe_all(after);
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(event) = next else { return Ok(()) };
        let view = EventView::of(&event?, payloads);
        if app.json {
            // One JSON object per line, so a script can read them as they come.
            let line = serde_json::to_string(&view).map_err(|e| Failure::Io(e.to_string()))?;
            println!("{line}");
        } else {
            print_event(&view);
        }
        std::io::stdout()
            .flush()
            .map_err(|e| Failure::Io(e.to_string()))?;
    }
}
