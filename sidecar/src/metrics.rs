//! Prometheus metrics (served on the admin port). Labels are bounded: handler, status class,
//! provider id, outcome, reason — never a user, subject, email or path.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::judge::Refusal;

/// Which part of the sidecar answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// Proxied to the app (or refused for lack of a session).
    Proxy,
    /// The sidecar's own pages and endpoints.
    Auth,
}

/// How a re-validation flight ended (`gatehouse_revalidations_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevalidationOutcome {
    /// The IdP vouched again.
    Refreshed,
    /// The IdP refused the grant (`invalid_grant`): the session ended.
    Ended,
    /// The refreshed identity may not have a session (no role, suspended, another subject).
    Denied,
    /// The IdP could not be asked, or its answer not used: asked again later.
    Unavailable,
    /// The IdP refused a grant another replica had already rotated; the session goes on from
    /// that replica's renewal.
    Superseded,
}

impl RevalidationOutcome {
    /// Every outcome, in label order.
    pub const ALL: [Self; 5] = [
        Self::Refreshed,
        Self::Ended,
        Self::Denied,
        Self::Unavailable,
        Self::Superseded,
    ];

    /// The metric label (also the audit line's `outcome`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Refreshed => "refreshed",
            Self::Ended => "ended",
            Self::Denied => "denied",
            Self::Unavailable => "unavailable",
            Self::Superseded => "superseded",
        }
    }
}

const HANDLERS: [&str; 2] = ["proxy", "auth"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    handler: &'static str,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignInLabels {
    provider: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

/// All metrics of one sidecar.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    // Pre-resolved counters per (handler, class): no label hashing on the request path.
    requests: [[Counter; 5]; 2],
    proxy_latency: Histogram,
    upstream_errors: Counter,
    sign_ins: Family<SignInLabels, Counter>,
    not_completed: Family<ReasonLabels, Counter>,
    provider_ready: Family<ProviderLabels, Gauge>,
    sessions_refused: Family<ReasonLabels, Counter>,
    sign_in_handling: Histogram,
    user_watch_synced: Gauge,
    user_watch_broken: Gauge<f64, AtomicU64>,
    user_watch_undecodable: Gauge,
    users: Gauge,
    user_reads: Family<OutcomeLabels, Counter>,
    revalidations: Family<OutcomeLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

impl Metrics {
    /// Registers every metric; `providers` pre-creates the per-provider series at zero.
    pub fn new(providers: &[&str]) -> Self {
        let mut registry = Registry::with_prefix("gatehouse");
        let request_family = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by handler and status class",
            request_family.clone(),
        );
        let requests = std::array::from_fn(|h| {
            std::array::from_fn(|c| {
                request_family
                    .get_or_create(&RequestLabels {
                        handler: HANDLERS[h],
                        class: CLASSES[c],
                    })
                    .clone()
            })
        });
        let proxy_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "proxy_upstream_duration_seconds",
            "Time from forwarding a request to the app's response headers",
            proxy_latency.clone(),
        );
        let upstream_errors = Counter::default();
        registry.register(
            "proxy_upstream_errors",
            "Requests that could not reach the app (answered 502)",
            upstream_errors.clone(),
        );
        let sign_ins = Family::<SignInLabels, Counter>::default();
        registry.register(
            "sign_ins",
            "Sign-in attempts by provider and outcome (success, denied, failed)",
            sign_ins.clone(),
        );
        let not_completed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "sign_in_denials",
            "Sign-ins that did not complete, by reason: users refused (denied) and attempts that failed alike (the outcome is in gatehouse_sign_ins_total)",
            not_completed.clone(),
        );
        let provider_ready = Family::<ProviderLabels, Gauge>::default();
        registry.register(
            "provider_ready",
            "1 when the provider's discovery document and keys are loaded",
            provider_ready.clone(),
        );
        let sessions_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "sessions_refused",
            "Requests whose session the user directory refused (user deleted, replaced or suspended, sessions revoked, watch stale or not synced), by reason",
            sessions_refused.clone(),
        );
        let sign_in_handling = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "sign_in_callback_handling_seconds",
            "Time the sidecar spends on a sign-in callback, excluding the round trip to the IdP's token endpoint",
            sign_in_handling.clone(),
        );
        let user_watch_synced = Gauge::default();
        registry.register(
            "user_watch_synced",
            "1 when the SsoUser watch has completed its first list (kubernetes provisioning)",
            user_watch_synced.clone(),
        );
        let user_watch_broken = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "user_watch_broken_seconds",
            "How long the SsoUser watch has been broken (0 when healthy); past GATEHOUSE_REVOCATION_STALENESS every session is refused",
            user_watch_broken.clone(),
        );
        let user_watch_undecodable = Gauge::default();
        registry.register(
            "user_watch_undecodable",
            "SsoUsers in the watch cache that could not be decoded (their sessions are refused; the watch goes on)",
            user_watch_undecodable.clone(),
        );
        let users = Gauge::default();
        registry.register(
            "users",
            "SsoUsers of this config in the watch cache",
            users.clone(),
        );
        let user_reads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "user_reads",
            "SsoUsers read from the API because the watch cache did not hold the user of a session issued moments ago (found, not_found, failed, timed_out; rate_limited: refused without a read)",
            user_reads.clone(),
        );
        for outcome in gatehouse_directory::read_through::ReadOutcome::ALL {
            let _ = user_reads.get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            });
        }
        let revalidations = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "revalidations",
            "Re-validations of sessions at their IdP (refresh-token grant), by outcome: refreshed, \
             ended (the IdP refused the grant), denied (the refreshed claims map to no role), \
             unavailable (the IdP could not be asked; retried until the grace ends)",
            revalidations.clone(),
        );
        for outcome in RevalidationOutcome::ALL {
            let _ = revalidations.get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            });
        }
        for p in providers {
            for outcome in ["success", "denied", "failed"] {
                let _ = sign_ins.get_or_create(&SignInLabels {
                    provider: (*p).to_owned(),
                    outcome,
                });
            }
            let _ = provider_ready.get_or_create(&ProviderLabels {
                provider: (*p).to_owned(),
            });
        }
        Self {
            registry,
            requests,
            proxy_latency,
            upstream_errors,
            sign_ins,
            not_completed,
            provider_ready,
            sessions_refused,
            sign_in_handling,
            user_watch_synced,
            user_watch_broken,
            user_watch_undecodable,
            users,
            user_reads,
            revalidations,
        }
    }

    /// Counts a read of an SsoUser on a watch-cache miss, by outcome.
    pub fn user_read(&self, outcome: &'static str) {
        self.user_reads
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts one finished re-validation, by outcome.
    pub fn revalidation(&self, outcome: RevalidationOutcome) {
        self.revalidations
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// Counts a request refused for its session.
    pub fn session_refused(&self, refusal: Refusal) {
        self.sessions_refused
            .get_or_create(&ReasonLabels {
                reason: refusal.label(),
            })
            .inc();
    }

    /// Records a callback's own handling time (the IdP round trip excluded).
    pub fn sign_in_handling(&self, seconds: f64) {
        self.sign_in_handling.observe(seconds);
    }

    /// Sets the SsoUser watch gauges (refreshed on every scrape).
    pub fn user_watch(
        &self,
        synced: bool,
        broken_for: std::time::Duration,
        users: usize,
        undecodable: usize,
    ) {
        self.user_watch_synced.set(i64::from(synced));
        self.user_watch_broken.set(broken_for.as_secs_f64());
        self.user_watch_undecodable
            .set(i64::try_from(undecodable).unwrap_or(i64::MAX));
        self.users.set(i64::try_from(users).unwrap_or(i64::MAX));
    }

    /// Counts one answered request.
    pub fn request(&self, handler: Handler, status: http::StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        let h = match handler {
            Handler::Proxy => 0,
            Handler::Auth => 1,
        };
        self.requests[h][class].inc();
    }

    /// Records the upstream round trip.
    pub fn proxy_latency(&self, seconds: f64) {
        self.proxy_latency.observe(seconds);
    }

    /// Counts an upstream failure.
    pub fn upstream_error(&self) {
        self.upstream_errors.inc();
    }

    /// Counts a sign-in attempt; `reason` also counts a denial.
    pub fn sign_in(&self, provider: &str, outcome: &'static str, reason: Option<&'static str>) {
        self.sign_ins
            .get_or_create(&SignInLabels {
                provider: provider.to_owned(),
                outcome,
            })
            .inc();
        if let Some(reason) = reason {
            self.not_completed
                .get_or_create(&ReasonLabels { reason })
                .inc();
        }
    }

    /// Marks a provider ready.
    pub fn provider_ready(&self, provider: &str) {
        self.provider_ready
            .get_or_create(&ProviderLabels {
                provider: provider.to_owned(),
            })
            .set(1);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_bounded_series() {
        let m = Metrics::new(&["okta"]);
        m.request(Handler::Proxy, http::StatusCode::OK);
        m.request(Handler::Proxy, http::StatusCode::BAD_GATEWAY);
        m.request(Handler::Auth, http::StatusCode::FOUND);
        m.sign_in("okta", "denied", Some("role_not_mapped"));
        m.proxy_latency(0.002);
        m.provider_ready("okta");
        m.session_refused(Refusal::Directory(
            gatehouse_directory::kubernetes::SessionRefusal::Deleted,
        ));
        m.sign_in_handling(0.003);
        m.user_watch(true, std::time::Duration::from_millis(1500), 7, 1);
        m.user_read("found");
        let text = m.encode();
        for line in [
            "gatehouse_http_requests_total{handler=\"proxy\",class=\"2xx\"} 1",
            "gatehouse_http_requests_total{handler=\"proxy\",class=\"5xx\"} 1",
            "gatehouse_http_requests_total{handler=\"auth\",class=\"3xx\"} 1",
            "gatehouse_sign_ins_total{provider=\"okta\",outcome=\"denied\"} 1",
            "gatehouse_sign_ins_total{provider=\"okta\",outcome=\"success\"} 0",
            "gatehouse_sign_in_denials_total{reason=\"role_not_mapped\"} 1",
            "gatehouse_provider_ready{provider=\"okta\"} 1",
            "gatehouse_proxy_upstream_duration_seconds_count 1",
            "gatehouse_sessions_refused_total{reason=\"user_deleted\"} 1",
            "gatehouse_sign_in_callback_handling_seconds_count 1",
            "gatehouse_user_watch_synced 1",
            "gatehouse_user_watch_broken_seconds 1.5",
            "gatehouse_user_watch_undecodable 1",
            "gatehouse_users 7",
            "gatehouse_user_reads_total{outcome=\"found\"} 1",
            "gatehouse_user_reads_total{outcome=\"rate_limited\"} 0",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
    }
}
