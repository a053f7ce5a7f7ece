//! `es serve` in a real browser: headless Chromium over WebDriver opens the admin page, sees a paused
//! projection's lag, redrives a dead letter by clicking, and sees it gone; a screenshot is saved. Plain HTTP checks
//! the page's defences: actions need the token, other Host names are refused, payloads stay hidden.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use es_core::control::{ControlCommand, Operator};
use es_core::projection::{FailurePolicy, ProjectionOptions};
use es_core::{EventStore, ExpectedVersion, NewEvent, ProjectionRunner, StreamId};
use es_postgres::{PgEventStore, PgProjectionWorker};
use tests::child::ChildProcess;
use tests::ledger::{LedgerEvent, POISON, PgLedger, post};
use tests::webdriver::{Browser, http};
use tests::{database_url, fresh_schema};

mod support;

use support::{ES, quick_control};
const TOKEN: &str = "test-token-7d1c";
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn the_admin_page_shows_lag_and_redrives_a_dead_letter_by_clicking() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let schema = fresh_schema();
    let migrated = Command::new(ES)
        .args(["--schema", &schema, "migrate"])
        .env("DATABASE_URL", database_url())
        .status()
        .unwrap();
    assert!(migrated.success());
    let (store, ledger, running, bad) = runtime.block_on(async {
        let store = PgEventStore::builder()
            .schema(schema.clone())
            .connect(&database_url())
            .await
            .unwrap();
        let ledger = PgLedger::create(&store).await;
        let options = ProjectionOptions::default()
            .max_attempts(1)
            .on_failure(FailurePolicy::DeadLetter);
        let running = ProjectionRunner::new(store.clone())
            .with(PgProjectionWorker::new(&store, ledger.clone(), options))
            .control_plane(store.clone(), quick_control("billing-1"))
            .start();
        post(&store, "acct", 40, 4, 5).await;
        let event =
            NewEvent::from_domain(&LedgerEvent::Posted { amount: POISON }, Default::default())
                .unwrap();
        let bad = event.event_id;
        store
            .append(
                &StreamId::new("acct-9").unwrap(),
                ExpectedVersion::Any,
                vec![event],
            )
            .await
            .unwrap();
        // Caught up with one dead letter; then paused, with five events waiting.
        let operator = Operator::new(store.clone());
        let started = Instant::now();
        loop {
            let view = operator.projection("ledger").await.unwrap();
            if view
                .as_ref()
                .is_some_and(|p| p.dead_letters == 1 && p.lag_events == 0 && p.active.is_some())
            {
                break;
            }
            assert!(started.elapsed() < WAIT, "never caught up: {view:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let paused = operator
            .send("ledger", ControlCommand::Pause, WAIT)
            .await
            .unwrap();
        assert!(paused.is_done(), "{paused}");
        post(&store, "acct", 5, 1, 5).await;
        (store, ledger, running, bad)
    });

    let server = ChildProcess::spawn_on(
        ES,
        &[
            "--schema",
            &schema,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token",
            TOKEN,
        ],
        &database_url(),
    );
    let listening = server.line_starting_with("listening on ", WAIT);
    let url = listening.trim_start_matches("listening on ").to_owned();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let host = format!("127.0.0.1:{port}");
    let letter_path = format!("/api/dead-letters/ledger/{bad}");

    // Defences, over plain HTTP.
    let (status, _) = http(
        port,
        "POST",
        &format!("{letter_path}/redrive"),
        &[("Host", &host)],
        "",
    )
    .unwrap();
    assert_eq!(status, 401, "an action without the token is refused");
    let (status, _) = http(
        port,
        "GET",
        "/api/projections",
        &[("Host", "evil.example:80")],
        "",
    )
    .unwrap();
    assert_eq!(status, 421, "a request for another host name is refused");
    let (status, body) = http(port, "GET", &letter_path, &[("Host", &host)], "").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.contains("payload") && body.contains("poisoned"),
        "payloads are hidden by default: {body}"
    );
    let (_, page) = http(port, "GET", "/", &[("Host", &host)], "").unwrap();
    assert!(
        !page.contains(TOKEN) && !page.contains("postgres://"),
        "no secret is rendered"
    );

    // The browser: the lag of the paused projection, then a redrive by clicking.
    let browser = Browser::start();
    browser.open(&url);
    let row = "#projections tr[data-name='ledger']";
    browser.wait_for_text(&format!("{row} td.state"), WAIT, |t| t == "paused");
    browser.wait_for_text(&format!("{row} td.lag"), WAIT, |t| t == "5");
    browser.wait_for_text(&format!("{row} td.active"), WAIT, |t| t == "billing-1");
    let letter = format!("#dead-letters tr[data-event='{bad}']");
    browser.wait_for_text(&format!("{letter} td.error"), WAIT, |t| {
        t.contains("poisoned")
    });

    browser.type_into(&browser.find("#token").unwrap(), TOKEN);
    // A few samples on the lag chart, then a picture of the page as an operator finds it.
    browser.wait_for_attribute(
        &format!("{row} svg.chart polyline"),
        "points",
        WAIT,
        |points| points.split(' ').count() >= 3,
    );
    let screenshots =
        std::env::var("ES_SCREENSHOTS").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").to_owned());
    save(&browser, &format!("{screenshots}/admin-page.png"));

    ledger.poisoned.store(false, Ordering::SeqCst);
    let started = Instant::now();
    loop {
        // The page re-renders every 2 s; a button found just before may be gone by the click.
        let clicked = browser
            .find(&format!("{letter} button.redrive"))
            .is_some_and(|button| browser.click(&button));
        if clicked {
            break;
        }
        assert!(started.elapsed() < WAIT, "could not click Redrive");
    }
    browser.wait_for_text("#message", WAIT, |t| t.contains("dead letter is gone"));
    browser.wait_gone(&letter, WAIT);
    save(&browser, &format!("{screenshots}/admin-page-redriven.png"));

    // The redriven event is in the read model; /metrics shows the projection.
    runtime.block_on(async {
        assert_eq!(ledger.totals(&store).await.counts.get("acct-9"), Some(&1));
    });
    let (_, metrics) = http(port, "GET", "/metrics", &[("Host", &host)], "").unwrap();
    assert!(
        metrics.contains("es_projection_lag_events{projection=\"ledger\"}"),
        "{metrics}"
    );
    drop(browser);
    // SIGTERM (what a service manager sends) ends it gracefully, with exit code 0 (it was 143).
    server.signal("TERM");
    server.finish(WAIT);
    runtime.block_on(running.shutdown());
}

fn save(browser: &Browser, path: &str) {
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(path, png).unwrap();
    eprintln!("screenshot saved to {path}");
}
