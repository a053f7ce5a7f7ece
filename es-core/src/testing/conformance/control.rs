//! The [`ControlStore`] contract, and the operator's listing of process instances, as executable cases; run by
//! [`control_store_conformance_tests!`](crate::control_store_conformance_tests).

use chrono::{Duration, Utc};

use crate::control::{ControlAnswer, ControlCommand, ControlStore, ProjectionReport, RequestState};
use crate::process::{ProcessRecord, ProcessStore, Timer, TimerChanges};
use crate::store::{EventId, Position};

fn later() -> chrono::DateTime<Utc> {
    Utc::now() + Duration::seconds(60)
}

/// A request is pending, taken once by one instance, answered once.
pub async fn a_request_is_claimed_once_and_answered_once<S: ControlStore>(store: S) {
    let request = store
        .submit("balances", ControlCommand::Rebuild, later())
        .await
        .expect("submit");
    assert_eq!(request.projection, "balances");
    assert_eq!(request.command, ControlCommand::Rebuild);
    assert_eq!(
        store.request_state(request.id).await.expect("state"),
        Some(RequestState::Pending)
    );
    let taken = store
        .claim("balances", "a", Utc::now())
        .await
        .expect("claim");
    assert_eq!(taken, vec![request.clone()], "the pending request is taken");
    assert!(
        store
            .claim("balances", "b", Utc::now())
            .await
            .expect("claim")
            .is_empty(),
        "a taken request is never handed out again"
    );
    assert_eq!(
        store.request_state(request.id).await.expect("state"),
        Some(RequestState::Claimed {
            instance: "a".into()
        })
    );
    let done = ControlAnswer::Done {
        detail: "rebuilt".into(),
    };
    store
        .answer(request.id, done.clone())
        .await
        .expect("answer");
    store
        .answer(
            request.id,
            ControlAnswer::Rejected {
                reason: "late".into(),
            },
        )
        .await
        .expect("answer again");
    assert_eq!(
        store.request_state(request.id).await.expect("state"),
        Some(RequestState::Answered { answer: done }),
        "the first answer stays"
    );
    assert_eq!(
        store
            .request_state(request.id + 1_000)
            .await
            .expect("state"),
        None
    );
}

/// Requests are taken oldest first, only for their projection, and keep their commands exactly.
pub async fn requests_are_claimed_per_projection_in_order<S: ControlStore>(store: S) {
    let id = EventId::new();
    let commands = [
        ControlCommand::Pause,
        ControlCommand::ResetTo {
            position: Position::new(i64::MAX as u64, 3),
        },
        ControlCommand::Redrive { event_id: Some(id) },
        ControlCommand::Discard { event_id: id },
    ];
    for command in &commands {
        store
            .submit("a", command.clone(), later())
            .await
            .expect("submit");
    }
    store
        .submit("b", ControlCommand::Resume, later())
        .await
        .expect("submit");
    let taken = store.claim("a", "x", Utc::now()).await.expect("claim");
    let got: Vec<ControlCommand> = taken.iter().map(|r| r.command.clone()).collect();
    assert_eq!(got, commands.to_vec(), "oldest first, commands round-trip");
    assert!(taken.windows(2).all(|w| w[0].id < w[1].id));
    let b = store.claim("b", "x", Utc::now()).await.expect("claim");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].command, ControlCommand::Resume);
}

/// A request nobody took before it expired is answered timed out, not carried out later.
pub async fn an_expired_request_times_out_instead_of_being_claimed<S: ControlStore>(store: S) {
    let request = store
        .submit(
            "balances",
            ControlCommand::Pause,
            Utc::now() - Duration::seconds(1),
        )
        .await
        .expect("submit");
    assert!(
        store
            .claim("balances", "a", Utc::now())
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(
        store.request_state(request.id).await.expect("state"),
        Some(RequestState::Answered {
            answer: ControlAnswer::TimedOut { claimed_by: None }
        })
    );
}

/// Withdrawing a pending request answers it; a claimed one stays with its instance; an unknown one is `None`.
pub async fn withdraws_only_what_no_instance_took<S: ControlStore>(store: S) {
    let pending = store
        .submit("p", ControlCommand::Rebuild, later())
        .await
        .expect("submit");
    let withdrawn = store.withdraw(pending.id).await.expect("withdraw");
    assert_eq!(
        withdrawn,
        Some(RequestState::Answered {
            answer: ControlAnswer::TimedOut { claimed_by: None }
        })
    );
    assert!(
        store
            .claim("p", "a", Utc::now())
            .await
            .expect("claim")
            .is_empty(),
        "a withdrawn request is not taken"
    );
    let taken = store
        .submit("p", ControlCommand::Rebuild, later())
        .await
        .expect("submit");
    store.claim("p", "a", Utc::now()).await.expect("claim");
    assert_eq!(
        store.withdraw(taken.id).await.expect("withdraw"),
        Some(RequestState::Claimed {
            instance: "a".into()
        })
    );
    assert_eq!(
        store.withdraw(taken.id + 1_000).await.expect("withdraw"),
        None
    );
}

/// Of several instances claiming at once, each request goes to exactly one.
pub async fn racing_claims_take_each_request_once<S: ControlStore + Clone + 'static>(store: S) {
    for _ in 0..20 {
        store
            .submit("p", ControlCommand::Resume, later())
            .await
            .expect("submit");
    }
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.claim("p", &format!("i{n}"), Utc::now()).await })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(
            task.await
                .expect("task")
                .expect("claim")
                .into_iter()
                .map(|r| r.id),
        );
    }
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(
        (before, ids.len()),
        (20, 20),
        "every request taken exactly once"
    );
}

/// A report replaces the same instance's earlier one; pause marks are set and cleared.
pub async fn reports_replace_per_instance_and_pauses_toggle<S: ControlStore>(store: S) {
    let report = |instance: &str, state: &str| ProjectionReport {
        projection: "balances".into(),
        instance: instance.into(),
        state: state.into(),
        detail: None,
        checkpoint: Some(Position::new(4, 9)),
        last_event_at: None,
        reported_at: Utc::now(),
    };
    store
        .report(&[report("a", "running"), report("b", "standby")])
        .await
        .expect("report");
    let mut later = report("a", "failed");
    later.detail = Some("event 4/9 failed".into());
    store
        .report(std::slice::from_ref(&later))
        .await
        .expect("report");
    let reports = store.reports().await.expect("reports");
    assert_eq!(reports.len(), 2, "one report per instance: {reports:?}");
    let a = reports.iter().find(|r| r.instance == "a").expect("a");
    assert_eq!(
        (a.state.as_str(), a.detail.as_deref()),
        ("failed", Some("event 4/9 failed"))
    );
    assert_eq!(a.checkpoint, Some(Position::new(4, 9)));
    assert!(store.paused().await.expect("paused").is_empty());
    store.set_paused("balances", true).await.expect("pause");
    store
        .set_paused("balances", true)
        .await
        .expect("pause twice");
    store.set_paused("orders", true).await.expect("pause");
    assert_eq!(
        store.paused().await.expect("paused"),
        vec!["balances", "orders"]
    );
    store.set_paused("balances", false).await.expect("resume");
    assert_eq!(store.paused().await.expect("paused"), vec!["orders"]);
}

/// Process instances are listed by process then instance, filtered and limited, with their timers earliest first.
pub async fn lists_process_instances_with_their_timers<S: ProcessStore>(store: S) {
    let record = |n: u64| ProcessRecord {
        state: serde_json::json!({ "step": n }),
        version: 1,
        handled: vec![format!("event:{n}")],
    };
    let soon = Utc::now() + Duration::seconds(5);
    let timers = TimerChanges {
        set: vec![
            Timer {
                name: "remind".into(),
                at: soon + Duration::seconds(5),
            },
            Timer {
                name: "expire".into(),
                at: soon,
            },
        ],
        remove: vec![],
    };
    store
        .save_process("shipping", "o-2", None, record(2), TimerChanges::default())
        .await
        .expect("save");
    store
        .save_process("shipping", "o-1", None, record(1), timers)
        .await
        .expect("save");
    store
        .save_process("billing", "o-9", None, record(9), TimerChanges::default())
        .await
        .expect("save");
    let all = store.list_processes(None, 10).await.expect("list");
    let keys: Vec<(&str, &str)> = all
        .iter()
        .map(|p| (p.process.as_str(), p.instance.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![("billing", "o-9"), ("shipping", "o-1"), ("shipping", "o-2")]
    );
    let shipping = store
        .list_processes(Some("shipping"), 1)
        .await
        .expect("list");
    assert_eq!(shipping.len(), 1);
    assert_eq!(shipping[0].record, record(1));
    let names: Vec<&str> = shipping[0].timers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["expire", "remind"]);
    assert_eq!(
        shipping[0].timers[0].at.timestamp_millis(),
        soon.timestamp_millis(),
        "timer deadlines round-trip"
    );
}
