//! `es`: operate an event store on PostgreSQL from the command line, or serve its admin page (`es serve`).
//!
//! Every command takes `--database-url` (or `DATABASE_URL`), `--schema` (the store's schema, `es` by default) and
//! `--json` (JSON instead of tables). `es --help` lists the commands and the exit codes; `es COMMAND --help`
//! explains one. Control commands (pause, resume, rebuild, reset, redrive, discard) are written to the store and
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
use crate::commands::{dead_letters, events, projections, sagas, schema, streams};
use crate::failure::Failure;

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
    match cli.command {
        Command::Migrate => schema::migrate(&App::connect(global).await?).await,
        Command::Schema(SchemaCommand::Check) => schema::check(&App::connect(global).await?).await,
        Command::Streams(StreamsCommand::List {
            category,
            after,
            limit,
        }) => {
            let app = App::open(global).await?;
            streams::list(&app, category.as_deref(), after.as_deref(), limit).await
        }
        Command::Stream(StreamCommand::Show {
            id,
            from,
            limit,
            payloads,
        }) => {
            streams::show(
                &App::open(global).await?,
                &id,
                from,
                limit,
                payloads.payloads,
            )
            .await
        }
        Command::Events(EventsCommand::Tail {
            from,
            limit,
            follow,
            payloads,
        }) => {
            let app = App::open(global).await?;
            events::tail(&app, from, limit, follow, payloads.payloads).await
        }
        Command::Projections(command) => projections::run(&App::open(global).await?, command).await,
        Command::DeadLetters(command) => {
            dead_letters::run(&App::open(global).await?, command).await
        }
        Command::Sagas(command) => sagas::run(&App::open(global).await?, command).await,
        Command::Serve(args) => serve::run(App::open(global).await?, args).await,
    }
}
