//! `es-bench`: the framework's figures, each next to the raw limit of the same machine measured in the same run,
//! so that the ratios hold on a noisy machine.
//!
//! ```text
//! cargo run --release -p es-bench -- [--quick] [--only memory|sqlite|postgres|brokers|scale] [--database-url URL]
//!     [--nats-url URL] [--kafka BROKERS] [--rabbitmq URL] [--json PATH]
//! ```
//! `--database-url` (else `DATABASE_URL`, else the local server on 127.0.0.1:5432 without TLS); `--nats-url` (else
//! `NATS_URL`, else 127.0.0.1:4222); `--kafka` (else `KAFKA_BROKERS`; Kafka is not measured without either);
//! `--rabbitmq` (else `RABBITMQ_URL`, else guest on 127.0.0.1:5672). The bench works in schemas of its own
//! (`es_bench_<pid>*`) and broker streams, topics and queues of its own, and drops them when done; the SQLite figures use files in a temporary directory of their own,
//! removed when done.

mod commands;
mod consistency;
mod live;
mod load;
mod postgres;
mod processes;
mod projections;
mod relay;
mod report;
mod scale;
mod sqlite;
mod stats;
mod telemetry;

use std::process::ExitCode;

/// What to run, and how big.
#[derive(Debug)]
pub(crate) struct Options {
    /// Appends per append figure.
    pub(crate) appends: usize,
    /// Samples per latency figure.
    pub(crate) latency_samples: usize,
    /// Events in the store for catch-up figures.
    pub(crate) catch_up_events: usize,
    /// Events stored for the operator-read figures (`scale`).
    pub(crate) scale_events: usize,
    pub(crate) database_url: String,
    pub(crate) nats_url: String,
    pub(crate) kafka_brokers: Option<String>,
    pub(crate) rabbitmq_url: String,
    json: Option<String>,
    /// Only this section (`memory`, `sqlite`, `postgres`, `brokers`, `scale`); all when `None`.
    only: Option<String>,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut options = Self {
            appends: 4_000,
            latency_samples: 300,
            catch_up_events: 100_000,
            scale_events: 10_000_000,
            database_url: std::env::var("DATABASE_URL").unwrap_or_else(|_| {
                "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".to_owned()
            }),
            nats_url: std::env::var("NATS_URL")
                .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned()),
            kafka_brokers: std::env::var("KAFKA_BROKERS").ok(),
            rabbitmq_url: std::env::var("RABBITMQ_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
            json: None,
            only: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => {
                    options.appends = 400;
                    options.latency_samples = 30;
                    options.catch_up_events = 10_000;
                    options.scale_events = 200_000;
                }
                "--database-url" => {
                    options.database_url = args.next().ok_or("--database-url needs a URL")?
                }
                "--nats-url" => options.nats_url = args.next().ok_or("--nats-url needs a URL")?,
                "--kafka" => {
                    options.kafka_brokers = Some(args.next().ok_or("--kafka needs brokers")?)
                }
                "--rabbitmq" => {
                    options.rabbitmq_url = args.next().ok_or("--rabbitmq needs a URL")?
                }
                "--json" => options.json = Some(args.next().ok_or("--json needs a path")?),
                "--only" => {
                    let section = args
                        .next()
                        .ok_or("--only needs memory, sqlite, postgres, brokers or scale")?;
                    if !["memory", "sqlite", "postgres", "brokers", "scale"]
                        .contains(&section.as_str())
                    {
                        return Err(format!("unknown section `{section}`"));
                    }
                    options.only = Some(section);
                }
                "--help" | "-h" => return Err(String::new()),
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        Ok(options)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("es-bench: {message}");
            }
            eprintln!(
                "usage: es-bench [--quick] [--only memory|sqlite|postgres|brokers|scale] [--database-url URL] \
                 [--nats-url URL] [--kafka BROKERS] [--rabbitmq URL] [--json PATH]"
            );
            return ExitCode::from(2);
        }
    };
    match run(&options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("es-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: &Options) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut figures = Vec::new();
    let runs = |section: &str| options.only.as_deref().is_none_or(|only| only == section);
    if runs("memory") {
        figures.extend(commands::memory(options.appends * 5).await?);
        let memory = es_memory::InMemoryEventStore::new();
        figures.extend(consistency::figures(&memory, "memory", options.appends * 5).await?);
        figures.extend(load::memory().await?);
        figures.extend(projections::memory(options.catch_up_events).await?);
        figures.extend(telemetry::overhead(options.appends * 5, options.catch_up_events).await?);
    }
    if runs("sqlite") {
        figures.extend(sqlite::run(options).await?);
    }
    if runs("postgres") {
        figures.extend(postgres::run(options, &options.database_url).await?);
    }
    if runs("brokers") {
        figures.extend(relay::run(options).await?);
    }
    if runs("scale") {
        figures.extend(scale::run(&options.database_url, options.scale_events).await?);
    }
    report::print_table(&figures);
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(&figures)?)?;
    }
    Ok(())
}
