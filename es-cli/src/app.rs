//! The store a command works on, opened from the global options.

use es_core::control::Operator;
use es_postgres::PgEventStore;

use crate::cli::Global;
use crate::failure::Failure;

/// The store and the operator's view of it.
pub(crate) struct App {
    pub(crate) store: PgEventStore,
    pub(crate) operator: Operator<PgEventStore>,
    pub(crate) json: bool,
}

impl App {
    /// Connects to the store (without checking its tables).
    pub(crate) async fn connect(global: &Global) -> Result<Self, Failure> {
        let url = global.database_url.as_deref().ok_or_else(|| {
            Failure::Usage(
                "no database: pass --database-url postgres://... or set DATABASE_URL".to_owned(),
            )
        })?;
        let store = PgEventStore::builder()
            .schema(global.schema.clone())
            .max_connections(4)
            .connect(url)
            .await?;
        Ok(Self {
            operator: Operator::new(store.clone()),
            store,
            json: global.json,
        })
    }

    /// Connects, and checks the store's tables exist; warns (on stderr) when migrations are pending.
    pub(crate) async fn open(global: &Global) -> Result<Self, Failure> {
        let app = Self::connect(global).await?;
        let status = app.store.migration_status().await?;
        if status.applied.is_empty() {
            return Err(Failure::NotFound(format!(
                "schema `{}` holds no event store; create it with `es --schema {} migrate`",
                global.schema, global.schema
            )));
        }
        if !status.pending.is_empty() {
            eprintln!(
                "warning: {} migration(s) of this build are not applied to schema `{}`; run `es migrate`",
                status.pending.len(),
                global.schema
            );
        }
        Ok(app)
    }
}
