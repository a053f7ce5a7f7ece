//! The store a command works on, opened from the global options.

use es_core::control::Operator;
use es_postgres::PgEventStore;
use es_sqlite::SqliteEventStore;

use crate::cli::Global;
use crate::failure::Failure;
use es_core::control::OperatorStore;

/// The store and the operator's view of it.
pub(crate) struct App<S> {
    pub(crate) store: S,
    pub(crate) operator: Operator<S>,
    pub(crate) json: bool,
}

impl<S: OperatorStore> App<S> {
    fn new(store: S, global: &Global) -> Self {
        Self {
            operator: Operator::new(store.clone()),
            store,
            json: global.json,
        }
    }

    /// Checks the store's tables exist; warns (on stderr) when migrations are pending.
    pub(crate) async fn checked(self) -> Result<Self, Failure> {
        let status = self.store.migration_status().await?;
        let location = self.store.location();
        if status.applied.is_empty() {
            return Err(Failure::NotFound(format!(
                "{location} holds no event store; create it with `es migrate`"
            )));
        }
        if !status.pending.is_empty() {
            eprintln!(
                "warning: {} migration(s) of this build are not applied to {location}; run `es migrate`",
                status.pending.len(),
            );
        }
        Ok(self)
    }
}

impl App<PgEventStore> {
    /// Connects to the store on PostgreSQL (without checking its tables).
    pub(crate) async fn postgres(global: &Global) -> Result<Self, Failure> {
        let url = global.database_url.as_deref().ok_or_else(|| {
            Failure::Usage(
                "no database: pass --database-url postgres://... (or set DATABASE_URL), or --sqlite FILE"
                    .to_owned(),
            )
        })?;
        let store = PgEventStore::builder()
            .schema(global.schema.clone())
            .max_connections(4)
            .connect(url)
            .await?;
        Ok(Self::new(store, global))
    }
}

impl App<SqliteEventStore> {
    /// Opens the store in a SQLite file (migrating it); a file that does not exist is created only when `create`.
    pub(crate) async fn sqlite(
        file: &std::path::Path,
        global: &Global,
        create: bool,
    ) -> Result<Self, Failure> {
        if !create && !file.exists() {
            return Err(Failure::NotFound(format!(
                "no file `{}`; create the store with `es --sqlite {} migrate`",
                file.display(),
                file.display()
            )));
        }
        Ok(Self::new(SqliteEventStore::open(file).await?, global))
    }
}
