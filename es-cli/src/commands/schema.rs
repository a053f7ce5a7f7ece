//! `es migrate`, `es schema check`.

use serde::Serialize;

use crate::app::App;
use crate::failure::Failure;
use crate::output::{json, table};
use es_core::control::OperatorStore;

pub(crate) async fn migrate<S: OperatorStore>(app: &App<S>) -> Result<(), Failure> {
    let before = app.store.migration_status().await?;
    app.store.migrate().await?;
    let applied = before.pending.len();
    if app.json {
        return json(
            &serde_json::json!({ "store": app.store.location(), "applied": before.pending }),
        );
    }
    match applied {
        0 => println!("{} is up to date", app.store.location()),
        n => println!("{}: applied {n} migration(s)", app.store.location()),
    }
    Ok(())
}

#[derive(Serialize)]
struct Check {
    store: String,
    migrations: es_core::control::MigrationStatus,
    event_types: Vec<EventType>,
    ok: bool,
}

#[derive(Serialize)]
struct EventType {
    event_type: String,
    schema_version: u32,
    count: u64,
}

pub(crate) async fn check<S: OperatorStore>(app: &App<S>) -> Result<(), Failure> {
    let migrations = app.store.migration_status().await?;
    let event_types: Vec<EventType> = match migrations.applied.is_empty() {
        true => Vec::new(),
        false => app
            .store
            .stored_event_types()
            .await?
            .into_iter()
            .map(|t| EventType {
                event_type: t.event_type,
                schema_version: t.schema_version,
                count: t.count,
            })
            .collect(),
    };
    let check = Check {
        store: app.store.location(),
        ok: migrations.is_current(),
        migrations,
        event_types,
    };
    if app.json {
        json(&check)?;
    } else {
        let m = &check.migrations;
        println!(
            "{}: {} migration(s) applied, {} pending, {} unknown to this build",
            check.store,
            m.applied.len(),
            m.pending.len(),
            m.unknown.len()
        );
        for pending in &m.pending {
            println!(
                "  pending  {} {} (run `es migrate`)",
                pending.version, pending.description
            );
        }
        for unknown in &m.unknown {
            println!(
                "  unknown  {} {} (a newer build migrated this store)",
                unknown.version, unknown.description
            );
        }
        println!();
        let rows: Vec<Vec<String>> = check
            .event_types
            .iter()
            .map(|t| {
                vec![
                    t.event_type.clone(),
                    t.schema_version.to_string(),
                    t.count.to_string(),
                ]
            })
            .collect();
        table(
            &["EVENT TYPE", "SCHEMA VERSION", "EVENTS"],
            &rows,
            "no events stored",
        );
    }
    match check.ok {
        true => Ok(()),
        false => Err(Failure::SchemaProblems),
    }
}
