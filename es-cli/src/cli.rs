//! The command line: every command, its arguments and its help.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use es_core::{EventId, Position};

/// Operate an event store on PostgreSQL or in a SQLite file: browse streams and events, watch and control projections, handle dead
/// letters, look at process managers, migrate and check the schema, or serve the admin page.
#[derive(Debug, Parser)]
#[command(name = "es", version, about, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  failed: the database could not be reached or answered with an error
  2  bad usage (an unknown command or argument)
  3  rejected: the projection's instance refused the request (the reason is printed)
  4  timed out: not done within --timeout, which bounds the whole command (a request nobody took was withdrawn;
     one taken, or a rebuild still replaying, goes on)
  5  not found: no such stream, projection, dead letter or process manager instance
  6  the schema check found problems

Examples:
  es --schema bank projections status
  es --schema bank projections rebuild balances
  es --schema bank dead-letters list balances
  es --schema bank events tail --follow";

/// Options of every command.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The database, as a URL: postgres://user@host:5432/db. Its password is never printed.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// A SQLite file holding the store, instead of PostgreSQL (it wins over --database-url).
    #[arg(long, env = "ES_SQLITE", global = true)]
    pub(crate) sqlite: Option<std::path::PathBuf>,
    /// The schema the store's tables are in (PostgreSQL).
    #[arg(long, env = "ES_SCHEMA", default_value = "es", global = true)]
    pub(crate) schema: String,
    /// Print JSON instead of tables (on every command that reads).
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the schema and its tables, or bring them up to date (safe to run from several places at once).
    Migrate,
    /// List streams.
    #[command(subcommand)]
    Streams(StreamsCommand),
    /// Show one stream's events.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Read the global stream of events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Watch and control projections (read models), wherever they run.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Events projections gave up on: list, show, handle again (redrive) or drop (discard).
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLettersCommand),
    /// Process managers' instances (the earlier name, `sagas`, still works).
    #[command(subcommand, alias = "sagas")]
    Processes(ProcessesCommand),
    /// Check the store's schema.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Serve the admin page and its JSON API (on localhost unless told otherwise).
    Serve(ServeArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum StreamsCommand {
    /// List streams by id, with their version and last write.
    List {
        /// Only streams of this category (the part of the id before the first `-`: `account` for `account-42`).
        #[arg(long)]
        category: Option<String>,
        /// Start after this stream id (for paging).
        #[arg(long)]
        after: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StreamCommand {
    /// Show a stream's events in order.
    Show {
        /// The stream id, e.g. `account-42`.
        id: String,
        /// From this version (1 is the first event).
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        payloads: Payloads,
    },
}

#[derive(Debug, Args)]
pub(crate) struct Payloads {
    /// Print the events' payloads and metadata too (they can hold personal data).
    #[arg(long)]
    pub(crate) payloads: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Print the newest events of the global stream, or those after a position; `--follow` waits for new ones.
    Tail {
        /// Print the events after this position (as printed: `COMMIT/PREPARE`, e.g. `812/40`), instead of the newest.
        #[arg(long)]
        from: Option<Position>,
        /// How many of the newest events to print (without `--from`), or at most how many (with it).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Keep printing new events as they are committed, until interrupted (Ctrl-C).
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        payloads: Payloads,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectionsCommand {
    /// Every projection (or one): state, instance running it, checkpoint, lag, dead letters.
    Status {
        /// Only this projection.
        name: Option<String>,
    },
    /// Wait, with a progress bar, until a projection has caught up with the head of the store.
    Wait {
        /// The projection.
        name: String,
        #[command(flatten)]
        timeout: Timeout,
    },
    /// Stop a projection reading events (it stays paused across restarts and takeovers until resumed).
    Pause {
        /// The projection.
        name: String,
        #[command(flatten)]
        timeout: Timeout,
    },
    /// Let a paused projection read on.
    Resume {
        /// The projection.
        name: String,
        #[command(flatten)]
        timeout: Timeout,
    },
    /// Empty a projection's read model and replay every event into it, showing progress until it caught up.
    Rebuild {
        /// The projection.
        name: String,
        /// Answer once the replay started, without waiting for it to catch up.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        timeout: Timeout,
    },
    /// Move a projection's checkpoint: it handles the events after that position next (skipping or repeating).
    Reset {
        /// The projection.
        name: String,
        /// The new checkpoint (`COMMIT/PREPARE`, as `events tail` prints positions).
        #[arg(long)]
        to: Position,
        #[command(flatten)]
        timeout: Timeout,
    },
}

/// How long to wait for an answer.
#[derive(Debug, Args)]
pub(crate) struct Timeout {
    /// Give up after this many seconds: the whole command, waits included (exit code 4 past it).
    #[arg(long = "timeout", value_name = "SECONDS", default_value_t = 30)]
    seconds: u64,
}

impl Timeout {
    pub(crate) fn duration(&self) -> Duration {
        Duration::from_secs(self.seconds)
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeadLettersCommand {
    /// List dead letters: of one projection, or of every projection that reports.
    List {
        /// Only this projection's.
        projection: Option<String>,
    },
    /// Show one dead letter, with its error (and its event's payload with `--payloads`).
    Show {
        /// The projection.
        projection: String,
        /// The event's id.
        event_id: EventId,
        #[command(flatten)]
        payloads: Payloads,
    },
    /// Handle a dead letter's event again (after fixing the cause); with `--all`, every dead letter in order.
    Redrive {
        /// The projection.
        projection: String,
        /// The event's id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        event_id: Option<EventId>,
        /// Redrive every dead letter of the projection.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        timeout: Timeout,
    },
    /// Drop a dead letter without handling its event.
    Discard {
        /// The projection.
        projection: String,
        /// The event's id.
        event_id: EventId,
        #[command(flatten)]
        timeout: Timeout,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProcessesCommand {
    /// List process manager instances with their version and pending timers.
    List {
        /// Only this process manager's.
        #[arg(long)]
        process: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one process manager instance: its state, handled inputs and timers.
    Show {
        /// The process manager.
        process: String,
        /// The instance.
        instance: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SchemaCommand {
    /// Check that every migration of this build is applied (and none unknown to it), and list the stored event
    /// types and schema versions. Whether they decode into your code's types is `SchemaCheck` in your build.
    Check,
}

/// `es serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Where to listen. Keep it on localhost, or put it behind your authentication.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// The token that actions (redrive, discard, pause, resume, rebuild, reset) need, sent as
    /// `Authorization: Bearer TOKEN` or typed into the page. Without one, the page is read-only.
    #[arg(long, env = "ES_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Show events' and dead letters' payloads (they can hold personal data; hidden by default).
    #[arg(long)]
    pub(crate) show_payloads: bool,
}
