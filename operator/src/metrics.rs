//! Prometheus metrics of the operator. Labels are bounded: controller, result (an error's
//! `metric_label`), watch, kind — never an object name.
//!
//! Each metric's HELP text is the one statement of what it means: the table of the operator's
//! metrics in `docs/operations.md` is generated from this registry.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::controllers;

type Labels = Vec<(&'static str, &'static str)>;

/// The operator's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciliations: Family<Labels, Counter<u64, AtomicU64>>,
    duration: Family<Labels, Histogram>,
    leader: Gauge<i64, AtomicI64>,
    undecodable: Family<Labels, Counter<u64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gatehouse_operator");
        let reconciliations = Family::<Labels, Counter<u64, AtomicU64>>::default();
        registry.register(
            "reconciliations",
            format!(
                "Reconciliations, by controller ({}, {}, {}) and result (ok, or the category of \
                 the error it ended with, as in its log line)",
                controllers::sso_config::CONTROLLER,
                controllers::sso_user::CONTROLLER,
                controllers::self_repair::CONTROLLER,
            ),
            reconciliations.clone(),
        );
        let duration = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 12))
        });
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation, by controller",
            duration.clone(),
        );
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        let undecodable = Family::<Labels, Counter<u64, AtomicU64>>::default();
        registry.register(
            "undecodable_objects",
            "Objects a watch received but could not decode (skipped, the watch goes on; the \
             SsoConfig shows Ready=False, reason Undecodable), by watch (a controller or the \
             webhook) and kind",
            undecodable.clone(),
        );
        Metrics {
            registry,
            reconciliations,
            duration,
            leader,
            undecodable,
        }
    }
}

impl Metrics {
    /// Count one reconciliation of `controller` that ended with `result` and took `seconds`.
    pub fn reconciled(&self, controller: &'static str, result: &'static str, seconds: f64) {
        self.reconciliations
            .get_or_create(&vec![("controller", controller), ("result", result)])
            .inc();
        self.duration
            .get_or_create(&vec![("controller", controller)])
            .observe(seconds);
    }

    /// Count one object that `watch` received and could not decode as `kind`.
    pub fn undecodable(&self, watch: &'static str, kind: &'static str) {
        self.undecodable
            .get_or_create(&vec![("watch", watch), ("kind", kind)])
            .inc();
    }

    /// Record whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exposed_with_bounded_labels() {
        let m = Metrics::default();
        m.reconciled("ssoconfig", "ok", 0.01);
        m.reconciled("ssoconfig", "secrets_unresolved", 0.02);
        m.set_leader(true);
        let text = m.encode();
        assert!(
            text.contains(
                "gatehouse_operator_reconciliations_total{controller=\"ssoconfig\",result=\"ok\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("gatehouse_operator_leader 1"), "{text}");
    }
}
