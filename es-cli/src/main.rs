//! `es`: operate an event store on PostgreSQL or in a SQLite file from the command line, or serve its admin page
//! (`es serve`).
//!
//! Every command takes `--database-url` (or `DATABASE_URL`) and `--schema` (the store's schema, `es` by default),
//! or `--sqlite FILE` (or `ES_SQLITE`), and `--json` (JSON instead of tables). `es --help` lists the commands and
//! the exit codes; `es COMMAND --help` explains one. Control commands (pause, resume, rebuild, reset, redrive, discard) are written to the store and
//! carried out by whichever process runs the projection (see `es_core::control`).

mod app;
mod cli;
mod commands;
mod failure;
mod output;
mod serve;
mod views;

use std::process::ExitCode;

use clap::Parser;

use crate::app::App;
use crate::cli::{Cli, Command, EventsCommand, SchemaCommand, StreamCommand, StreamsCommand};
use crate::commands::{dead_letters, events, processes, projections, schema, streams};
use crate::failure::Failure;
use es_core::control::OperatorStore;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("es: {failure}");
            failure.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let global = &cli.global;
    let migrate = matches!(cli.command, Command::Migrate);
    match &global.sqlite {
        Some(file) => dispatch(App::sqlite(file, global, migrate).await?, cli.command).await,
        None => dispatch(App::postgres(global).await?, cli.command).await,
    }
}

/// Runs `command` on `app`'s store; every command but `migrate` and `schema check` first checks its tables.
async fn dispatch<S: OperatorStore>(app: App<S>, command: Command) -> Result<(), Failure> {
    match command {
        Command::Migrate => return schema::migrate(&app).await,
        Command::Schema(SchemaCommand::Check) => return schema::check(&app).await,
        _ => {}
    }
    let app = app.checked().await?;
    match command {
        Command::Migrate | Command::Schema(SchemaCommand::Check) => Ok(()),
        Command::Streams(StreamsCommand::List {
            category,
            after,
            limit,
        }) => streams::list(&app, category.as_deref(), after.as_deref(), limit).await,
        Command::Stream(StreamCommand::Show {
            id,
            from,
            limit,
            payloads,
        }) => streams::show(&app, &id, from, limit, payloads.payloads).await,
        Command::Events(EventsCommand::Tail {
            from,
            limit,
            follow,
            payloads,
        }) => events::tail(&app, from, limit, follow, payloads.payloads).await,
        Command::Projections(command) => projections::run(&app, command).await,
        Command::DeadLetters(command) => dead_letters::run(&app, command).await,
        Command::Processes(command) => processes::run(&app, command).await,
        Command::Serve(args) => serve::run(app, args).await,
    }
}
