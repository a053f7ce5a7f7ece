//! `es processes list|show`: process managers' instances.

use crate::app::App;
use crate::cli::ProcessesCommand;
use crate::failure::Failure;
use crate::output::{json, table};
use es_core::control::OperatorStore;

pub(crate) async fn run<S: OperatorStore>(
    app: &App<S>,
    command: ProcessesCommand,
) -> Result<(), Failure> {
    match command {
        ProcessesCommand::List { process, limit } => {
            let instances = app.operator.processes(process.as_deref(), limit).await?;
            if app.json {
                return json(&instances);
            }
            let rows: Vec<Vec<String>> = instances
                .iter()
                .map(|i| {
                    let next = i
                        .timers
                        .first()
                        .map(|t| format!("{} at {}", t.name, t.at.to_rfc3339()));
                    vec![
                        i.process.clone(),
                        i.instance.clone(),
                        i.record.version.to_string(),
                        i.record.handled.len().to_string(),
                        next.unwrap_or_else(|| "-".to_owned()),
                    ]
                })
                .collect();
            table(
                &["PROCESS", "INSTANCE", "VERSION", "HANDLED", "NEXT TIMER"],
                &rows,
                "no process manager instances",
            );
            Ok(())
        }
        ProcessesCommand::Show { process, instance } => {
            let found = app
                .operator
                .process(&process, &instance)
                .await?
                .ok_or_else(|| {
                    Failure::NotFound(format!("no instance `{instance}` of process `{process}`"))
                })?;
            if app.json {
                return json(&found);
            }
            println!("process   {}", found.process);
            println!("instance  {}", found.instance);
            println!("version   {}", found.record.version);
            let state = serde_json::to_string_pretty(&found.record.state)
                .map_err(|e| Failure::Io(e.to_string()))?;
            println!("state     {}", state.replace('\n', "\n          "));
            println!("handled   {}", found.record.handled.join(", "));
            for timer in &found.timers {
                println!("timer     {} at {}", timer.name, timer.at.to_rfc3339());
            }
            Ok(())
        }
    }
}
