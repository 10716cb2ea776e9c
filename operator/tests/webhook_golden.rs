//! Golden files: each AdmissionReview v1 request under `tests/inject_golden/` gets exactly the
//! committed answer, injected pod and Event. Regenerate after an intended change with
//! `GATEHOUSE_UPDATE_GOLDEN=1 cargo test -p gatehouse-operator --test webhook_golden` and review
//! the diff.

mod webhook_common;

use std::path::Path;

use base64::Engine as _;
use gatehouse_operator::webhook::admission::{self, Decision};
use gatehouse_operator::webhook::registration::{self, Registration};
use serde_json::{Value, json};
use webhook_common::{UPDATE_ENV, cases, configs, defaults, golden_dir, request, store};

/// The answer as JSON, with the patch (bytes on the wire) decoded so the file can be read.
fn readable_review(decision: &Decision) -> Value {
    let mut value = decision.wire_json();
    if let Some(patch) = value["response"].get("patch").and_then(Value::as_str) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .expect("patch is base64");
        value["response"]["patch"] = serde_json::from_slice(&bytes).expect("patch bytes are JSON");
    }
    value
}

/// The pod the API server would store: the request's object with the patch applied.
fn injected_pod(case: &str, decision: &Decision) -> Option<Value> {
    let response = decision.review.response.as_ref()?;
    let patch: json_patch::Patch =
        serde_json::from_slice(response.patch.as_ref()?).expect("RFC 6902 patch");
    let request: Value = serde_json::from_slice(&request(case)).expect("request JSON");
    let mut pod = request["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch)
        .unwrap_or_else(|e| panic!("{case}: patch does not apply: {e}"));
    Some(pod)
}

fn event(decision: &Decision) -> Option<Value> {
    let denial = decision.denial.as_ref()?;
    Some(json!({
        "namespace": denial.namespace,
        "type": "Warning",
        "reason": denial.refusal.reason(),
        "note": denial.refusal.to_string(),
        "regarding": denial.regarding,
        "related": denial.related,
    }))
}

/// Compare `actual` with the file, or write it when regenerating. `None`: the file must not exist.
fn check(path: &Path, actual: Option<&Value>, failures: &mut Vec<String>) {
    let update = std::env::var_os(UPDATE_ENV).is_some();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match actual {
        Some(actual) => {
            let text = serde_json::to_string_pretty(actual).expect("json") + "\n";
            if update {
                std::fs::write(path, text).expect("write golden file");
                return;
            }
            match std::fs::read_to_string(path) {
                Ok(expected) => {
                    let expected: Value =
                        serde_json::from_str(&expected).expect("golden file is JSON");
                    if &expected != actual {
                        failures.push(format!("{name} differs; now:\n{text}"));
                    }
                }
                Err(_) => failures.push(format!("{name} is missing; expected:\n{text}")),
            }
        }
        None => {
            if path.exists() {
                if update {
                    std::fs::remove_file(path).expect("remove stale golden file");
                } else {
                    failures.push(format!("{name} exists but this case produces none"));
                }
            }
        }
    }
}

#[test]
fn golden_admission_reviews() {
    let (store, _writer) = store(configs());
    let mut failures = Vec::new();
    for case in cases() {
        let decision = admission::review(&request(&case), &store, &defaults(&case));
        let dir = golden_dir();
        check(
            &dir.join(format!("{case}.response.json")),
            Some(&readable_review(&decision)),
            &mut failures,
        );
        check(
            &dir.join(format!("{case}.pod.json")),
            injected_pod(&case, &decision).as_ref(),
            &mut failures,
        );
        check(
            &dir.join(format!("{case}.event.json")),
            event(&decision).as_ref(),
            &mut failures,
        );
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended: {UPDATE_ENV}=1 cargo test -p gatehouse-operator --test webhook_golden",
        failures.join("\n\n")
    );
}

#[test]
fn golden_registration() {
    let object = serde_json::to_value(registration::mutating_webhook_configuration(
        &Registration::new("gatehouse-system"),
    ))
    .expect("json");
    let mut object = object;
    object["apiVersion"] = json!("admissionregistration.k8s.io/v1");
    object["kind"] = json!("MutatingWebhookConfiguration");
    let mut failures = Vec::new();
    check(
        &golden_dir().join("mutatingwebhookconfiguration.json"),
        Some(&object),
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What each case must show, independent of the files: a regenerated file that lost one of these
/// properties fails here.
#[test]
fn golden_cases_have_the_expected_verdicts() {
    let (store, _writer) = store(configs());
    let expected = [
        ("already-injected", true, false),
        ("config-missing", false, false),
        ("config-missing-dry-run", false, false),
        ("config-not-ready", false, false),
        ("deployment-pod", true, true),
        ("host-network", false, false),
        ("init-containers", true, true),
        ("job-pod", true, true),
        ("legacy-job-pod", false, false),
        ("legacy-plain-pod", true, true),
        ("multiple-containers", true, true),
        ("not-labelled", true, false),
        ("override-allowed", true, true),
        ("override-refused", false, false),
        ("plain-pod", true, true),
        ("port-conflict", false, false),
    ];
    assert_eq!(
        cases(),
        expected
            .iter()
            .map(|(c, _, _)| c.to_string())
            .collect::<Vec<_>>(),
        "every golden case is listed here"
    );
    for (case, allowed, patched) in expected {
        let decision = admission::review(&request(case), &store, &defaults(case));
        let response = decision.review.response.as_ref().expect("response");
        let uid = serde_json::from_slice::<Value>(&request(case)).expect("json")["request"]["uid"]
            .clone();
        assert_eq!(json!(response.uid), uid, "{case}: the uid is echoed");
        assert_eq!(response.allowed, allowed, "{case}: allowed");
        assert_eq!(response.patch.is_some(), patched, "{case}: patched");
        if !allowed {
            assert_eq!(response.result.code, 403, "{case}");
            assert!(
                response.result.message.contains("\"team-a\""),
                "{case}: names the namespace: {}",
                response.result.message
            );
        }
        // Refusals leave an Event, except dry runs.
        assert_eq!(
            decision.denial.is_some(),
            !allowed && !case.ends_with("dry-run"),
            "{case}: event"
        );
    }
    // A dry run is answered exactly like the real request.
    let real = admission::review(
        &request("config-missing"),
        &store,
        &defaults("config-missing"),
    );
    let dry = admission::review(
        &request("config-missing-dry-run"),
        &store,
        &defaults("config-missing"),
    );
    let (real, dry) = (
        real.review.response.expect("r"),
        dry.review.response.expect("r"),
    );
    assert_eq!(
        (real.allowed, real.result.message),
        (dry.allowed, dry.result.message)
    );
}

#[test]
fn a_patched_pod_sent_again_gets_no_second_sidecar() {
    let (store, _writer) = store(configs());
    for case in [
        "plain-pod",
        "init-containers",
        "job-pod",
        "legacy-plain-pod",
        "multiple-containers",
    ] {
        let decision = admission::review(&request(case), &store, &defaults(case));
        let pod = injected_pod(case, &decision).expect("patched");
        let mut again: Value = serde_json::from_slice(&request(case)).expect("json");
        again["request"]["object"] = pod;
        let body = serde_json::to_vec(&again).expect("json");
        let second = admission::review(&body, &store, &defaults(case));
        let response = second.review.response.expect("response");
        assert!(
            response.allowed && response.patch.is_none(),
            "{case}: second pass patches nothing"
        );
    }
}

#[test]
fn malformed_reviews_are_answered_not_crashed_on() {
    let (store, _writer) = store(configs());
    for body in [
        &b"not json"[..],
        br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#,
    ] {
        let decision = admission::review(body, &store, &defaults("plain"));
        let response = decision.review.response.expect("response");
        assert!(!response.allowed);
    }
}

#[test]
fn the_patch_is_base64_on_the_wire_as_the_api_server_requires() {
    let (store, _writer) = store(configs());
    let decision = admission::review(&request("plain-pod"), &store, &defaults("plain-pod"));
    let patch = decision
        .review
        .response
        .as_ref()
        .and_then(|r| r.patch.clone())
        .expect("patch");
    let wire = decision.wire_json();
    assert_eq!(wire["response"]["patchType"], "JSONPatch");
    assert_eq!(
        wire["response"]["patch"],
        json!(base64::engine::general_purpose::STANDARD.encode(&patch))
    );
    assert_eq!(wire["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(wire["kind"], "AdmissionReview");
}
