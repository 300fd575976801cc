//! The drift alarm against a model that starts renaming a field after 20 calls: the alarm fires
//! within the window, validation stops every bad answer in the meantime, and the alarm re-arms
//! once the model behaves again.

use std::sync::{Arc, Mutex};

use harness_core::observe::drift::{
    DriftAlarm, DriftConfig, DriftEvent, DriftSignal, Threshold, Transition,
};
use harness_core::testing::fixtures::{FnProvider, ticket_json, triage};
use harness_core::{ChatRequest, ErrorKind, Harness, Resolution};

fn ticket_number(request: &ChatRequest) -> u32 {
    request
        .messages
        .iter()
        .find_map(|m| m.content.strip_prefix("Ticket: "))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

fn config() -> DriftConfig {
    DriftConfig {
        window: 20,
        max_age: None,
        min_calls: 5,
        invalid_output: Some(Threshold {
            fire_at: 0.5,
            rearm_below: 0.25,
        }),
        low_confidence: Some(Threshold {
            fire_at: 0.5,
            rearm_below: 0.25,
        }),
    }
}

/// Events the hook saw, each with the ticket number being processed when it fired.
type EventLog = Arc<Mutex<Vec<(u32, DriftEvent)>>>;

fn alarm_with_log() -> (Arc<DriftAlarm>, EventLog, Arc<Mutex<u32>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let current = Arc::new(Mutex::new(0u32));
    let (log, at) = (events.clone(), current.clone());
    let alarm = DriftAlarm::new(config()).on_drift(move |e| {
        log.lock().unwrap().push((*at.lock().unwrap(), e.clone()));
    });
    (Arc::new(alarm), events, current)
}

#[tokio::test]
async fn renamed_fields_fire_the_alarm_and_never_pass_validation() {
    // Tickets 20..40 get answers whose `category` is renamed to `kind`, reasks included.
    let model = FnProvider::new(|request: &ChatRequest, _| {
        let n = ticket_number(request);
        Ok(if (20..40).contains(&n) {
            r#"{"kind":"billing","priority":2,"confidence":0.9}"#.to_owned()
        } else {
            ticket_json("billing", 2, 0.9)
        })
    });
    let (alarm, events, current) = alarm_with_log();
    let harness = Harness::builder()
        .provider("fn", model)
        .observer(alarm.clone())
        .build()
        .unwrap();

    for n in 0..60u32 {
        *current.lock().unwrap() = n;
        let result = triage(&harness, &n.to_string()).await;
        if (20..40).contains(&n) {
            // Stopped by validation: after the reask, the contract says fail.
            let err = result.expect_err("a renamed field must never be accepted");
            assert_eq!(err.kind(), ErrorKind::InvalidOutput);
            assert!(
                err.validation_errors()
                    .iter()
                    .any(|e| e.message.contains("category") || e.message.contains("kind")),
                "{:?}",
                err.validation_errors()
            );
        } else {
            let outcome = result.unwrap();
            assert!(
                matches!(&outcome.resolution, Resolution::Answer(t) if t.category == "billing")
            );
        }
    }

    let events = events.lock().unwrap();
    let seen: Vec<(u32, Transition)> = events.iter().map(|(n, e)| (*n, e.transition)).collect();
    // A full window of 20 good calls: the 10th bad call (ticket 29) takes the rate to 50 %.
    // After the model recovers, 16 good calls bring it below 25 % (ticket 55).
    assert_eq!(seen, [(29, Transition::Fired), (55, Transition::Recovered)]);
    let fired = &events[0].1;
    assert_eq!(fired.task, "triage");
    assert_eq!(fired.signal, DriftSignal::InvalidOutput);
    assert_eq!(fired.calls, 20);
    assert_eq!(fired.rate, 0.5);
    assert_eq!(alarm.fired(), 1);
    assert_eq!(alarm.fired_for("triage", DriftSignal::InvalidOutput), 1);
    assert!(!alarm.is_firing("triage", DriftSignal::InvalidOutput));
    assert!(!alarm.is_firing("triage", DriftSignal::LowConfidence));
    println!("{fired}\n{}", events[1].1);
}

#[tokio::test]
async fn falling_confidence_fires_its_own_alarm_and_is_escalated() {
    let model = FnProvider::new(|request: &ChatRequest, _| {
        let n = ticket_number(request);
        Ok(ticket_json("bug", 1, if n >= 10 { 0.3 } else { 0.9 }))
    });
    let (alarm, events, current) = alarm_with_log();
    let harness = Harness::builder()
        .provider("fn", model)
        .observer(alarm.clone())
        .build()
        .unwrap();
    for n in 0..30u32 {
        *current.lock().unwrap() = n;
        let outcome = triage(&harness, &n.to_string()).await.unwrap();
        // Unconfident answers go to a human, never back as answers.
        assert_eq!(outcome.is_answer(), n < 10, "ticket {n}");
    }
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    // 10 good calls then bad ones: the 10th bad (ticket 19) makes 10 of 20.
    assert_eq!(events[0].0, 19);
    assert_eq!(events[0].1.signal, DriftSignal::LowConfidence);
    assert!(alarm.is_firing("triage", DriftSignal::LowConfidence));
    assert!(!alarm.is_firing("triage", DriftSignal::InvalidOutput));
}
