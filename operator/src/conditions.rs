//! Kubernetes-style status conditions: `type`, `status`, `reason`, `message`,
//! `observedGeneration`, and a `lastTransitionTime` that moves only when `status` does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Condition types written by the operator.
pub const READY: &str = "Ready";
pub const SECRETS_RESOLVED: &str = "SecretsResolved";
pub const VALID: &str = "Valid";
/// Written for SAML configs: `True` while the config accepts signature algorithms that are
/// deprecated as insecure (`spec.saml.allowSha1`), `False` otherwise. An abnormal-true condition,
/// like a node's `MemoryPressure`: `True` is what needs attention.
pub const INSECURE_ALGORITHMS_ALLOWED: &str = "InsecureAlgorithmsAllowed";
/// Written for configs in TokenReview mode (`spec.machineAuth.kubernetes.mode`): whether the
/// sidecar's ServiceAccount is bound to `system:auth-delegator`.
pub const TOKEN_REVIEW_BOUND: &str = "TokenReviewBound";

/// A condition as it should be now; [`merge`] fixes its transition time.
pub fn new(
    type_: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

/// `next` with each condition's `lastTransitionTime` taken from `previous` when its status did
/// not change, and `now` when it did (or it is new).
pub fn merge(previous: &[Condition], next: Vec<Condition>, now: Timestamp) -> Vec<Condition> {
    next.into_iter()
        .map(|mut c| {
            c.last_transition_time = match previous.iter().find(|p| p.type_ == c.type_) {
                Some(p) if p.status == c.status => p.last_transition_time.clone(),
                _ => Time(now),
            };
            c
        })
        .collect()
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_with_status() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let t1: Timestamp = "2026-01-01T01:00:00Z".parse().expect("time");
        let first = merge(
            &[],
            vec![new(READY, false, "SecretsUnresolved", "a", Some(1))],
            t0,
        );
        assert_eq!(first[0].last_transition_time, Time(t0));
        // Same status, other message and generation: time kept.
        let same = merge(
            &first,
            vec![new(READY, false, "InvalidSpec", "b", Some(2))],
            t1,
        );
        assert_eq!(same[0].last_transition_time, Time(t0));
        assert_eq!(same[0].reason, "InvalidSpec");
        // Status flips: time moves.
        let flipped = merge(
            &same,
            vec![new(READY, true, "Reconciled", "c", Some(2))],
            t1,
        );
        assert_eq!(flipped[0].last_transition_time, Time(t1));
        assert_eq!(
            find(&flipped, READY).map(|c| c.status.as_str()),
            Some("True")
        );
    }
}
