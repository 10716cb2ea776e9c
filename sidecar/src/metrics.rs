//! Prometheus metrics (served on the admin port). Labels are bounded: handler, status class,
//! provider id, outcome, reason — never a user, subject, email or path.
//!
//! Each metric's HELP text is the one statement of what it means: the table of metrics in
//! `docs/sidecar.md` is generated from this registry ([`Metrics::with_every_series`]).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::error::SignInError;
use gatehouse_directory::kubernetes::SessionRefusal;

/// Why a request's session was refused: the one vocabulary of
/// `gatehouse_sessions_refused_total{reason}` — the user directory's refusals and the
/// re-validation's. The docs' table of these reasons (`docs/troubleshooting.md`) is generated
/// from [`Refusal::ALL`] and [`Refusal::explanation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user directory refused it.
    Directory(SessionRefusal),
    /// Due for re-validation, and nothing can vouch for it ([`UNVOUCHED`]).
    RevalidationUnvouched,
    /// Past its re-validation grace.
    RevalidationOverdue,
}

/// `gatehouse_sessions_refused_total`'s reason for a session past its re-validation grace.
pub const OVERDUE: &str = "revalidation_overdue";
/// `gatehouse_sessions_refused_total`'s reason for a due session nothing can vouch for (no
/// refresh cookie, no grant).
pub const UNVOUCHED: &str = "revalidation_unvouched";

impl Refusal {
    /// Every refusal, in the docs' order. Keep it in step with [`Refusal::explanation`], whose
    /// match (over the directory's refusals too) fails to compile on a new variant.
    pub const ALL: [Refusal; 11] = [
        Refusal::Directory(SessionRefusal::Deleted),
        Refusal::Directory(SessionRefusal::Replaced),
        Refusal::Directory(SessionRefusal::Suspended),
        Refusal::Directory(SessionRefusal::SessionsRevoked),
        Refusal::Directory(SessionRefusal::SessionEnded),
        Refusal::Directory(SessionRefusal::Stale),
        Refusal::Directory(SessionRefusal::NotSynced),
        Refusal::Directory(SessionRefusal::Undecodable),
        Refusal::Directory(SessionRefusal::Unconfirmed),
        Refusal::RevalidationUnvouched,
        Refusal::RevalidationOverdue,
    ];

    /// The metric label (also the log line's `reason`).
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Directory(refusal) => refusal.reason(),
            Refusal::RevalidationUnvouched => UNVOUCHED,
            Refusal::RevalidationOverdue => OVERDUE,
        }
    }

    /// What the reason tells an operator, and what to do: one line of the docs' table of
    /// session refusals (`docs/troubleshooting.md`, generated from this).
    pub fn explanation(self) -> &'static str {
        match self {
            Refusal::Directory(SessionRefusal::Deleted) => {
                "the SsoUser is gone, or no longer carries the label `gatehouse.dev/config: \
                 <config>`: the user was deprovisioned; they may sign in again unless the \
                 SsoConfig only admits pre-declared users"
            }
            Refusal::Directory(SessionRefusal::Replaced) => {
                "an SsoUser of that name exists, but not the one the session was issued for (it \
                 was deleted and created again): the user signs in again"
            }
            Refusal::Directory(SessionRefusal::Suspended) => {
                "the SsoUser has `spec.suspended: true`"
            }
            Refusal::Directory(SessionRefusal::SessionsRevoked) => {
                "the session started at or before the SsoUser's `sessionsNotBefore` (the later of \
                 `spec.sessionsNotBefore`, \"log out everywhere\", and `status.sessionsNotBefore`, \
                 written by a back-channel logout for the whole user). Sessions record their start \
                 to the second, so one started in that same second ends too: sign in again a \
                 second later"
            }
            Refusal::Directory(SessionRefusal::SessionEnded) => {
                "that one session ended and is listed in the SsoUser's `status.revokedSessions`: \
                 logged out at Gatehouse or by the IdP's back-channel logout, or ended by its \
                 re-validation (outcome `ended`: the IdP refused the grant, or `denied`: the \
                 refreshed identity may have no session)"
            }
            Refusal::Directory(SessionRefusal::Stale) => {
                "the SsoUser watch has shown no sign of life for longer than \
                 `GATEHOUSE_REVOCATION_STALENESS`, so revocation cannot be vouched for and every \
                 session is refused (`gatehouse_user_watch_broken_seconds` says for how long): \
                 fix the API server's reachability; sessions come back by themselves"
            }
            Refusal::Directory(SessionRefusal::NotSynced) => {
                "the SsoUser watch has not completed its first list: the sidecar cannot list \
                 SsoUsers (same checks as the sign-in reason `directory_unavailable`)"
            }
            Refusal::Directory(SessionRefusal::Undecodable) => {
                "the user's SsoUser cannot be decoded by this sidecar version, so its suspension \
                 cannot be read (`gatehouse_user_watch_undecodable` counts such objects; the \
                 sidecar log names it): fix the object or upgrade"
            }
            Refusal::Directory(SessionRefusal::Unconfirmed) => {
                "a new user's first request reached a replica whose watch did not have the new \
                 SsoUser yet, and reading it from the API failed, timed out or was over the rate \
                 limit (`gatehouse_user_reads_total{outcome}` says which)"
            }
            Refusal::RevalidationUnvouched => {
                "the session was due for re-validation and nothing could vouch for it: its \
                 requests came without the `gatehouse-refresh` cookie, or the IdP gave no refresh \
                 token at sign-in (Okta: allow the Refresh Token grant). The user signs in again"
            }
            Refusal::RevalidationOverdue => {
                "the session went past `GATEHOUSE_REVALIDATE_GRACE` without its IdP vouching for it \
                 again: re-validation kept failing (`gatehouse_revalidations_total` with outcome \
                 `unavailable`; the reason is in its audit lines). Check that the sidecar reaches \
                 the IdP's token endpoint; the user signs in again"
            }
        }
    }
}

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

    /// What the outcome tells an operator, and what to do: one line of the docs' table of
    /// re-validation outcomes (`docs/troubleshooting.md`, generated from this).
    pub fn explanation(self) -> &'static str {
        match self {
            Self::Refreshed => {
                "the IdP vouched for the session again; a new ID token, when it sent one, was \
                 verified and its role and profile written to the SsoUser. Nothing to do"
            }
            Self::Ended => {
                "the IdP refused the grant (reason `grant_refused`: `invalid_grant`, the user \
                 disabled or deleted at the IdP, the grant revoked or expired): the session ended \
                 as a logout does, on every replica. Many right after another replica's \
                 `refreshed`, on workloads with several replicas, mean the replicas could not \
                 share the re-validation: check that the sidecar may patch `ssousers/status` and \
                 that `status.sessionRenewals` is written"
            }
            Self::Denied => {
                "the refreshed identity may not have a session (the reason says why: a role \
                 reason such as `role_not_mapped`, `user_suspended`, `user_deleted`, or \
                 `subject_changed`): the session ended"
            }
            Self::Unavailable => {
                "the IdP could not be asked, or its answer not used (`idp_unreachable`, \
                 `idp_error`, `provider_unavailable`, a `token_…` reason, `directory_unavailable`): \
                 the session is kept and asked about again 30 s later, until \
                 `GATEHOUSE_REVALIDATE_GRACE` runs out; then it is refused \
                 (`revalidation_overdue`). Check the egress to the IdP's token endpoint"
            }
            Self::Superseded => {
                "the IdP refused a grant another replica had already rotated; the session goes on \
                 from that replica's renewal (reason `renewed_by_another_replica`). Harmless"
            }
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

/// `answer`: `forbidden` (403) or `sign_in` (login redirect or 401); `rule`: the refusing
/// `Deny` rule's name, or `default` (rule names are the SsoConfig's, at most 64).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccessLabels {
    answer: &'static str,
    rule: String,
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
    access_refused: Family<AccessLabels, Counter>,
    sign_in_handling: Histogram,
    user_watch_synced: Gauge,
    user_watch_broken: Gauge<f64, AtomicU64>,
    user_watch_undecodable: Gauge,
    users: Gauge,
    user_reads: Family<OutcomeLabels, Counter>,
    revalidations: Family<OutcomeLabels, Counter>,
    group_overages: Family<OutcomeLabels, Counter>,
}

/// Outcomes of an Entra ID group overage (`gatehouse_group_overages_total`): `read` (the groups
/// came from Microsoft Graph), or why they could not be read (the
/// `crate::graph::GraphError` reasons; a test there keeps the two in step).
pub const GROUP_OVERAGE_OUTCOMES: [&str; 16] = [
    "read",
    "groups_claim_distributed",
    "graph_no_access_token",
    "graph_app_token_failed",
    "graph_no_object_id",
    "graph_unreachable",
    "graph_timeout",
    "graph_throttled",
    "graph_forbidden",
    "graph_server_error",
    "graph_status",
    "graph_too_large",
    "graph_malformed",
    "graph_foreign_link",
    "graph_too_many_groups",
    "graph_ids_not_rule_names",
];

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
            "Requests answered, by handler (proxy: requests for the app, those refused for lack \
             of a session included; auth: the sidecar's own pages and endpoints) and status class",
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
            "Time from forwarding a request to the app until its response headers",
            proxy_latency.clone(),
        );
        let upstream_errors = Counter::default();
        registry.register(
            "proxy_upstream_errors",
            "Requests the app did not answer: unreachable (answered 502) or slower than \
             GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT (answered 504); a client's own faulty body \
             (413, 408) is not counted",
            upstream_errors.clone(),
        );
        let sign_ins = Family::<SignInLabels, Counter>::default();
        registry.register(
            "sign_ins",
            "Sign-in attempts, by provider id and outcome: success, denied (a verified user was \
             refused), failed (the attempt broke)",
            sign_ins.clone(),
        );
        let not_completed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "sign_in_denials",
            "Sign-ins that did not complete, by reason: users refused (denied) and attempts that \
             failed alike, despite the name (the outcome is in gatehouse_sign_ins_total)",
            not_completed.clone(),
        );
        let provider_ready = Family::<ProviderLabels, Gauge>::default();
        registry.register(
            "provider_ready",
            "1 when the provider's discovery document and keys (SAML: its metadata) are loaded, \
             by provider id",
            provider_ready.clone(),
        );
        let sessions_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "sessions_refused",
            "Requests refused for their session, by reason: the user directory refused it (user \
             deleted, replaced, suspended or undecodable, its sessions revoked, that session \
             ended, the SsoUser watch stale or not synced, a new user's read failed), or its \
             re-validation did (due with no refresh cookie or grant, or past its grace)",
            sessions_refused.clone(),
        );
        let access_refused = Family::<AccessLabels, Counter>::default();
        registry.register(
            "access_refused",
            "Requests the access rules (spec.access) did not let through, by answer (forbidden: \
             403; sign_in: a login redirect or 401, no credentials where some could help, or a \
             refused bearer token) and rule (the refusing Deny rule's name; default when \
             defaultAction decided; no_role for a machine token mapping to no role; a bearer_… \
             reason for a refused token)",
            access_refused.clone(),
        );
        let sign_in_handling = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "sign_in_callback_handling_seconds",
            "Time the sidecar spends on a sign-in callback or SAML ACS request, excluding the round \
             trip to the IdP's token endpoint",
            sign_in_handling.clone(),
        );
        let user_watch_synced = Gauge::default();
        registry.register(
            "user_watch_synced",
            "1 when the SsoUser watch has completed its first list (Kubernetes provisioning only)",
            user_watch_synced.clone(),
        );
        let user_watch_broken = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "user_watch_broken_seconds",
            "How long the SsoUser watch has shown no sign of life, once that is longer than a \
             healthy watch allows (0 when healthy); past GATEHOUSE_REVOCATION_STALENESS every \
             session is refused (Kubernetes provisioning only)",
            user_watch_broken.clone(),
        );
        let user_watch_undecodable = Gauge::default();
        registry.register(
            "user_watch_undecodable",
            "SsoUsers in the watch cache that could not be decoded: their sessions are refused, \
             the watch goes on (Kubernetes provisioning only)",
            user_watch_undecodable.clone(),
        );
        let users = Gauge::default();
        registry.register(
            "users",
            "SsoUsers of this SsoConfig in the watch cache (Kubernetes provisioning only)",
            users.clone(),
        );
        let user_reads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "user_reads",
            "SsoUsers read from the API because the watch cache did not hold the user of a session \
             issued in the last 2 minutes (a user another replica just created), by outcome \
             (rate_limited: refused without a read; Kubernetes provisioning only)",
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
            "Re-validations of sessions at their IdP (the refresh-token grant), by outcome: \
             refreshed, ended (the IdP refused the grant; the session ended), denied (the \
             refreshed identity may not have a session; it ended), unavailable (the IdP could \
             not be asked; asked again until the grace ends), superseded (the IdP refused a \
             grant another replica had already rotated; the session goes on from that \
             replica's renewal)",
            revalidations.clone(),
        );
        for outcome in RevalidationOutcome::ALL {
            let _ = revalidations.get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            });
        }
        let group_overages = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "group_overages",
            "Entra ID group overages (a user in more groups than the ID token carries) at sign-in \
             and re-validation, by outcome: read (the groups were read from Microsoft Graph), or \
             why they could not be (graph_server_error, graph_throttled, graph_timeout, \
             graph_forbidden, …): then the session's groups are unknown and access rules on \
             groups fail closed",
            group_overages.clone(),
        );
        let _ = group_overages.get_or_create(&OutcomeLabels { outcome: "read" });
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
            access_refused,
            sign_in_handling,
            user_watch_synced,
            user_watch_broken,
            user_watch_undecodable,
            users,
            user_reads,
            revalidations,
            group_overages,
        }
    }

    /// Counts one group overage, by outcome (one of [`GROUP_OVERAGE_OUTCOMES`]).
    pub fn group_overage(&self, outcome: &'static str) {
        self.group_overages
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
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

    /// Counts a request the access rules refused: `rule` names the refusing rule (`None`: the
    /// default action, or no credentials where some could help).
    pub fn access_refused(&self, forbidden: bool, rule: Option<&str>) {
        self.access_refused
            .get_or_create(&AccessLabels {
                answer: if forbidden { "forbidden" } else { "sign_in" },
                rule: rule.unwrap_or("default").to_owned(),
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

    /// Metrics with a series (at zero) for every label value the sidecar can record, and
    /// `providers`: what the table of metrics in the docs is generated from. (A running sidecar
    /// creates the series of refusals as they happen, so that a scrape shows the reasons met.)
    pub fn with_every_series(providers: &[&str]) -> Self {
        let metrics = Self::new(providers);
        for refusal in Refusal::ALL {
            let _ = metrics.sessions_refused.get_or_create(&ReasonLabels {
                reason: refusal.label(),
            });
        }
        for error in SignInError::examples() {
            let _ = metrics.not_completed.get_or_create(&ReasonLabels {
                reason: error.metric_label(),
            });
        }
        for outcome in GROUP_OVERAGE_OUTCOMES {
            let _ = metrics
                .group_overages
                .get_or_create(&OutcomeLabels { outcome });
        }
        for answer in ["forbidden", "sign_in"] {
            let _ = metrics.access_refused.get_or_create(&AccessLabels {
                answer,
                rule: "default".to_owned(),
            });
        }
        metrics
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
    fn the_revalidations_help_names_every_outcome() {
        let text = Metrics::new(&[]).encode();
        let help = text
            .lines()
            .find(|l| l.starts_with("# HELP gatehouse_revalidations "))
            .expect("the HELP line");
        for outcome in RevalidationOutcome::ALL {
            assert!(
                help.contains(outcome.label()),
                "{} in {help}",
                outcome.label()
            );
        }
    }

    #[test]
    fn every_refusal_reason_and_sign_in_reason_has_a_series_for_the_docs() {
        let text = Metrics::with_every_series(&["okta"]).encode();
        for refusal in Refusal::ALL {
            let series = format!(
                "gatehouse_sessions_refused_total{{reason=\"{}\"}} 0",
                refusal.label()
            );
            assert!(text.contains(&series), "{series}");
        }
        assert!(text.contains("gatehouse_sign_in_denials_total{reason=\"token_expired\"} 0"));
        assert!(
            !Metrics::new(&["okta"])
                .encode()
                .contains("gatehouse_sessions_refused_total{"),
            "a running sidecar shows the refusals it met, not every reason at zero"
        );
    }

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
