//! `es serve`: the admin page and its JSON API.

use crate::app::App;
use crate::cli::ServeArgs;
use crate::failure::Failure;

pub(crate) async fn run(_app: App, _args: ServeArgs) -> Result<(), Failure> {
    Err(Failure::Usage("not yet".into()))
}
