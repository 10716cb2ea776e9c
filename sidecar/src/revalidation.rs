//! When an OIDC session is due for re-validation at its IdP, and when it has gone too long
//! without one.
//!
//! A session that can be re-validated (its IdP gave a refresh token at sign-in) records when the
//! IdP last vouched for it ([`Session::validated_at`]). It is *fresh* for
//! `GATEHOUSE_REVALIDATE_INTERVAL` after that, then *due*: still served, while a refresh is
//! attempted. While the IdP cannot be reached it stays due for `GATEHOUSE_REVALIDATE_GRACE`;
//! after that it is *past grace* and refused (fail closed) until a refresh succeeds.
//!
//! Sessions without `validated_at` (SAML, no refresh token, or signed in while re-validation was
//! off) are never due: nothing could re-validate them.
//!
//! A request whose session is due is served at once and starts a *flight* ([`Revalidator`]):
//! the refresh-token grant at the IdP, in the background, one at a time per session on this
//! replica. Requests never wait for it, and the flight leaves only once the app has answered
//! that request (or after [`DEPARTURE_WAIT`]), so its own work does not delay it ([`Departure`]).
//! Its outcome:
//! - **refreshed**: the IdP vouched again. A new ID token, if it sent one, is verified and its
//!   claims mapped through the sign-in pipeline (role, profile, attributes), written to the
//!   SsoUser, and used for the session at once on this replica; the browser gets the renewed
//!   cookies on its next response from this replica ([`Renewal`]).
//! - **ended**: the IdP refused the grant (`invalid_grant`: user disabled, grant revoked or
//!   expired). The session ends as a logout does: at once here, on every replica through the
//!   SsoUser's `status.revokedSessions`, its open connections cut.
//! - **denied**: the refreshed claims map to no role, the user is suspended, or the token names
//!   another subject. Ended the same way.
//! - **unavailable**: the IdP could not be asked or gave no usable answer. The session is kept
//!   and the flight retried after [`RETRY_SECS`] (or the interval, when shorter), until the
//!   grace runs out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderMap;

use crate::providers::ExchangeError;
use crate::providers::jwks::verify_id_token;
use gatehouse_directory::UserDirectory;
use gatehouse_directory::renewals::{Lease, SharedRenewal};

use crate::ending::SessionEnder;
use crate::metrics::{Metrics, RevalidationOutcome};
use crate::providers::Providers;
use crate::sessions::Sessions;
use gatehouse_auth::collections::RandomKeyMap;
use gatehouse_auth::cookie::{CookieNames, RefreshGrant, Session};
use gatehouse_auth::revalidation::{Revalidation, Standing};
use gatehouse_auth::signin::Occasion;
use gatehouse_auth::signin::{self, VerifiedIdentity};
use gatehouse_auth::token::{Expected, Nonce, now_unix};

/// Seconds before an IdP that could not be asked is asked again about the same session.
pub const RETRY_SECS: i64 = 30;
/// Most sessions with a flight or a renewal remembered at once (per replica).
const FLIGHTS_CAPACITY: usize = 50_000;

/// A finished re-validation, waiting to reach its browser: the session as the IdP vouched for
/// it now, and its sealed cookies.
#[derive(Debug)]
pub struct Renewal {
    /// The renewed session (new `validated_at`; role and profile as the IdP now says).
    pub session: Arc<Session>,
    /// Sealed value of the renewed session cookie.
    pub session_cookie: String,
    /// Sealed value of a new refresh cookie, when the IdP rotated the refresh token.
    pub refresh_cookie: Option<String>,
}

impl Renewal {
    /// Adds the renewed cookies to a response's headers, at `now`.
    pub fn set_cookies(&self, headers: &mut HeaderMap, cookies: &CookieNames, now: i64) {
        let ttl = self.session.expires_at.saturating_sub(now);
        headers.append(
            http::header::SET_COOKIE,
            cookies.set(&cookies.session, &self.session_cookie, ttl),
        );
        if let Some(refresh) = &self.refresh_cookie {
            headers.append(
                http::header::SET_COOKIE,
                cookies.set(&cookies.refresh, refresh, ttl),
            );
        }
    }

    /// Whether this renewal replaces `session` (the same session, validated earlier).
    fn renews(&self, session: &Session) -> bool {
        self.session.sid == session.sid && self.session.validated_at > session.validated_at
    }
}

/// Whether the IdP is being asked about a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flight {
    /// Not now.
    Idle,
    /// The IdP is being asked.
    Running,
    /// The IdP could not be asked; not before this time (Unix seconds) again.
    RetryAt(i64),
}

/// What this replica knows of one session's re-validation. Kept until the session expires.
#[derive(Debug)]
struct Record {
    flight: Flight,
    /// The latest refresh grant: from the request that started the first flight (or the open
    /// connection that registered it), then as the IdP rotated it. A request's cookie may
    /// still hold a token the IdP has since replaced.
    grant: Option<RefreshGrant>,
    /// The latest renewal, handed to the session's requests until the browser has it.
    renewal: Option<Arc<Renewal>>,
    /// When the session expires (Unix seconds): the record goes then.
    expires_at: i64,
}

/// The re-validation flights of this replica: at most one per session, never awaited by a
/// request.
#[derive(Debug)]
pub struct Revalidator {
    settings: Revalidation,
    records: Mutex<RandomKeyMap<String, Record>>,
}

/// What a request (or open connection) of a session is to this replica.
#[derive(Debug, Default)]
pub struct Due {
    /// The latest renewal of the session, which the request goes on as: its browser (or
    /// client) still sends the cookie the renewal replaced.
    pub renewal: Option<Arc<Renewal>>,
    /// A flight to start, marked running, with this grant.
    pub start: Option<RefreshGrant>,
    /// The session is due and nothing here can re-validate it: the request brought no refresh
    /// cookie of its own and this replica knows no grant of it. It is refused.
    pub unvouched: bool,
}

impl Due {
    /// The session a flight starts from: the latest renewal this replica holds (role and
    /// profile as the IdP last said), else the request's own session. Never the older cookie
    /// when a renewal exists, or a refresh without an ID token would bring back its role.
    pub fn flies_from<'a>(&'a self, session: &'a Session) -> &'a Session {
        self.renewal.as_ref().map_or(session, |r| &r.session)
    }
}

impl Revalidator {
    /// The flights of a replica with `settings`.
    pub fn new(settings: Revalidation) -> Self {
        Self {
            settings,
            records: Mutex::new(RandomKeyMap::default()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> Revalidation {
        self.settings
    }

    /// Seconds before an IdP that could not be asked is asked again about the same session:
    /// [`RETRY_SECS`], or the interval when shorter.
    pub fn retry_secs(&self) -> i64 {
        self.settings
            .interval
            .map_or(RETRY_SECS, |i| seconds(i).clamp(1, RETRY_SECS))
    }

    /// Whether sessions are re-validated at all.
    pub fn is_on(&self) -> bool {
        self.settings.interval.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RandomKeyMap<String, Record>> {
        match self.records.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Where `session` stands at `now`, counting a renewal this replica holds for it (a cookie
    /// the browser has not replaced yet, an open connection's session). Reads the records only
    /// for a session that is not fresh by its own cookie.
    pub fn standing(&self, session: &Session, now: i64) -> Standing {
        let own = self.settings.standing(session, now);
        if own == Standing::Fresh {
            return own;
        }
        match self
            .lock()
            .get(&session.sid)
            .and_then(|r| r.renewal.clone())
        {
            Some(renewal) if renewal.renews(session) => {
                self.settings.standing(&renewal.session, now)
            }
            _ => own,
        }
    }

    /// For a request (or open connection) of `session` at `now`: the latest renewal of it, and
    /// whether to start a flight (marked running here, so no other request starts one) because
    /// the session, or the renewal standing in for it, is due. `grant` reads the request's
    /// refresh cookie, only when a flight would start and this replica knows no grant of the
    /// session yet.
    pub fn on_request(
        &self,
        session: &Session,
        now: i64,
        grant: impl FnOnce() -> Option<RefreshGrant>,
    ) -> Due {
        self.on_request_shared(session, now, false, grant)
    }

    /// [`Revalidator::on_request`] for a session another replica may be asking the IdP about
    /// (`leased_elsewhere`: then no flight starts here).
    pub fn on_request_shared(
        &self,
        session: &Session,
        now: i64,
        leased_elsewhere: bool,
        grant: impl FnOnce() -> Option<RefreshGrant>,
    ) -> Due {
        let own = self.settings.standing(session, now);
        if own == Standing::Fresh {
            return Due::default();
        }
        let mut records = self.lock();
        let Some(record) = records.get_mut(&session.sid) else {
            if own != Standing::Due {
                return Due::default();
            }
            // Nothing to re-validate with: the refresh cookie was withheld, or the IdP gave
            // none. A due session the IdP cannot be asked about is refused.
            let Some(grant) = grant() else {
                return Due {
                    unvouched: true,
                    ..Due::default()
                };
            };
            if leased_elsewhere {
                return Due::default();
            }
            if !Self::make_room(&mut records, now) {
                return Due::default();
            }
            records.insert(
                session.sid.clone(),
                Record {
                    flight: Flight::Running,
                    grant: Some(grant.clone()),
                    renewal: None,
                    expires_at: session.expires_at,
                },
            );
            return Due {
                renewal: None,
                start: Some(grant),
                unvouched: false,
            };
        };
        // An old cookie goes on as its latest renewal (role and profile as the IdP last said),
        // even past its own grace, and is due when the renewal is.
        let renewal = record.renewal.clone().filter(|r| r.renews(session));
        let standing = renewal
            .as_ref()
            .map_or(own, |r| self.settings.standing(&r.session, now));
        let may_fly = !leased_elsewhere
            && match record.flight {
                Flight::Idle => true,
                Flight::Running => false,
                Flight::RetryAt(at) => now >= at,
            };
        let mut start = None;
        let mut unvouched = false;
        if standing == Standing::Due && may_fly {
            if record.grant.is_none() {
                record.grant = grant();
            }
            start = record.grant.clone();
            if start.is_some() {
                record.flight = Flight::Running;
            } else {
                unvouched = true;
            }
        }
        Due {
            renewal,
            start,
            unvouched,
        }
    }

    /// Remembers the grant of a session with an open connection, so that the connection's
    /// checks ([`crate::live`]) can re-validate it when no request comes.
    pub fn remember(&self, session: &Session, grant: RefreshGrant, now: i64) {
        let mut records = self.lock();
        if let Some(record) = records.get_mut(&session.sid) {
            record.grant.get_or_insert(grant);
        } else if Self::make_room(&mut records, now) {
            records.insert(
                session.sid.clone(),
                Record {
                    flight: Flight::Idle,
                    grant: Some(grant),
                    renewal: None,
                    expires_at: session.expires_at,
                },
            );
        }
    }

    /// Drops the records of expired sessions when full; whether there is room for one more.
    fn make_room(records: &mut RandomKeyMap<String, Record>, now: i64) -> bool {
        if records.len() < FLIGHTS_CAPACITY {
            return true;
        }
        records.retain(|_, r| r.flight == Flight::Running || r.expires_at > now);
        if records.len() >= FLIGHTS_CAPACITY {
            tracing::warn!(
                sessions = records.len(),
                "too many sessions being re-validated at once; this one waits"
            );
            return false;
        }
        true
    }

    /// The renewal ready for `session`, if its flight has landed; never starts one.
    pub fn ready(&self, session: &Session, now: i64) -> Option<Arc<Renewal>> {
        if self.settings.standing(session, now) == Standing::Fresh {
            return None;
        }
        self.lock()
            .get(&session.sid)
            .and_then(|r| r.renewal.clone())
            .filter(|r| r.renews(session))
    }

    /// The `validated_at` of the latest this replica knows of session `sid`: its renewal, if
    /// any; `None` when it holds none.
    pub fn known_validated_at(&self, sid: &str) -> Option<i64> {
        self.lock()
            .get(sid)
            .and_then(|r| r.renewal.as_ref())
            .and_then(|r| r.session.validated_at)
    }

    /// Takes over a renewal another replica made (shared through the SsoUser): the session's
    /// requests go on as it, and the next flight uses its grant. Kept only when newer than what
    /// this replica holds.
    pub fn adopt(&self, renewal: Arc<Renewal>, grant: RefreshGrant, now: i64) {
        let mut records = self.lock();
        let sid = renewal.session.sid.clone();
        if let Some(record) = records.get_mut(&sid) {
            if record
                .renewal
                .as_ref()
                .is_some_and(|r| r.session.validated_at >= renewal.session.validated_at)
            {
                return;
            }
            record.renewal = Some(renewal);
            record.grant = Some(grant);
            if record.flight != Flight::Running {
                record.flight = Flight::Idle;
            }
        } else if Self::make_room(&mut records, now) {
            let expires_at = renewal.session.expires_at;
            records.insert(
                sid,
                Record {
                    flight: Flight::Idle,
                    grant: Some(grant),
                    renewal: Some(renewal),
                    expires_at,
                },
            );
        }
    }

    /// Records how the flight of session `sid` ended: renewed (with the grant to use next),
    /// to be retried at a time, or ended (the record goes).
    fn land(&self, sid: &str, landing: Landing) {
        let mut records = self.lock();
        match landing {
            Landing::Renewed(renewal, grant) => {
                if let Some(record) = records.get_mut(sid) {
                    record.flight = Flight::Idle;
                    record.renewal = Some(renewal);
                    record.grant = Some(grant);
                }
            }
            Landing::Idle => {
                if let Some(record) = records.get_mut(sid) {
                    record.flight = Flight::Idle;
                }
            }
            Landing::RetryAt(at) => {
                if let Some(record) = records.get_mut(sid) {
                    record.flight = Flight::RetryAt(at);
                }
            }
            Landing::Ended => {
                records.remove(sid);
            }
        }
    }
}

/// What a request's re-validation step ([`Flights::revalidate`]) gives it.
#[derive(Debug)]
pub struct Step {
    /// The latest renewal of the session: the request goes on as renewed and its response
    /// carries the renewed cookies.
    pub renewal: Option<Arc<Renewal>>,
    /// The session (or its renewal) is due: a flight, marked running, to send off.
    pub departure: Option<Departure>,
    /// The session is due and cannot be vouched for (no refresh cookie, no grant known here):
    /// the request is refused ([`Due::unvouched`]).
    pub unvouched: bool,
}

/// A flight marked running and not yet sent off. The request that found its session due sends
/// it off once the app has answered, or after [`DEPARTURE_WAIT`] when the app takes longer, so
/// the flight's own work (on a runtime thread the request shares) is not added to that
/// request's latency. Dropped unsent, it leaves then: a flight marked running always flies, or
/// no other request of the session could start one.
#[must_use = "a departure leaves when dropped; keep it until the request is answered"]
pub struct Departure {
    // Boxed: it is kept across the gate's await, in a future that is moved several times.
    flight: Option<Box<(Arc<Flights>, Session, RefreshGrant)>>,
}

/// Why a due session without a refresh cookie (or a grant this replica knows) is refused: a
/// `gatehouse_sessions_refused_total` reason and the audit line's
/// ([`crate::judge::Refusal::RevalidationUnvouched`]).
pub use crate::metrics::UNVOUCHED;

/// Longest a flight waits for the app's answer to the request that found it due.
pub const DEPARTURE_WAIT: Duration = Duration::from_millis(50);

impl Departure {
    /// Sends the flight off (in the background).
    pub fn leave_now(mut self) {
        self.send_off();
    }

    fn send_off(&mut self) {
        if let Some(flight) = self.flight.take() {
            let (flights, session, grant) = *flight;
            Self::leave(flights, session, grant);
        }
    }

    fn leave(flights: Arc<Flights>, session: Session, grant: RefreshGrant) {
        // No runtime: the process is shutting down, and nothing would see the flight land.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { flights.fly(session, grant).await });
        }
    }
}

impl std::fmt::Debug for Departure {
    // Never the grant: it holds the refresh token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Departure")
            .field("sid", &self.flight.as_ref().map(|flight| &flight.1.sid))
            .finish_non_exhaustive()
    }
}

impl Drop for Departure {
    fn drop(&mut self) {
        self.send_off();
    }
}

/// How a flight ended, for [`Revalidator::land`].
enum Landing {
    Renewed(Arc<Renewal>, RefreshGrant),
    /// Nothing to record: another replica's renewal was taken over.
    Idle,
    RetryAt(i64),
    Ended,
}

/// The re-validation service: starts flights for due sessions and lands them. Holds what a
/// flight needs — the flights' records, the cookie keys, the providers and the HTTP client
/// for them, the user directory, the metrics and the session ender — built once.
#[derive(Debug)]
pub struct Flights {
    /// One record per session: flight state, latest grant, latest renewal.
    pub revalidator: Arc<Revalidator>,
    /// Cookie keys and names (refresh cookies are read and renewals sealed).
    pub sessions: Arc<Sessions>,
    /// The providers whose token endpoints are asked.
    pub providers: Arc<Providers>,
    /// HTTP client for the identity providers.
    pub http: reqwest::Client,
    /// Tolerated clock skew for refreshed ID tokens.
    pub skew: Duration,
    /// The SsoConfig's name (`GATEHOUSE_CONFIG`): part of its users' SsoUser names.
    pub config_name: String,
    /// `GATEHOUSE_ATTRIBUTE_MAPPINGS`: claims copied to the SsoUser.
    pub attribute_mappings: Vec<(String, String)>,
    /// The access rules: a renewed session keeps the groups and claims they name, as the IdP
    /// sends them now.
    pub access: Option<Arc<gatehouse_auth::access::Policy>>,
    /// Where a re-validated role is written.
    pub directory: Arc<UserDirectory>,
    /// Where outcomes are counted.
    pub metrics: Arc<Metrics>,
    /// Ends a session the IdP no longer vouches for.
    pub ender: SessionEnder,
    /// This replica's name in the shared leases (`status.sessionRenewals`).
    pub replica: String,
}

impl Flights {
    /// The re-validation step of a request with a valid `session`: a renewal ready for it, or
    /// a flight to send off when the session is due and the request brought its refresh
    /// cookie. Never waits.
    pub fn revalidate(self: &Arc<Self>, session: &Session, headers: &HeaderMap, now: i64) -> Step {
        let leased_elsewhere = self.follow_shared(session, now);
        let due = self
            .revalidator
            .on_request_shared(session, now, leased_elsewhere, || {
                self.refresh_grant(session, headers)
            });
        // The session a flight starts from is cloned only when one starts, never for the (many)
        // requests of fresh sessions.
        let departure = due.start.as_ref().map(|grant| Departure {
            flight: Some(Box::new((
                Arc::clone(self),
                due.flies_from(session).clone(),
                grant.clone(),
            ))),
        });
        Step {
            renewal: due.renewal,
            departure,
            unvouched: due.unvouched,
        }
    }

    /// Takes over the renewal another replica shared for `session`, when it is newer than what
    /// this replica knows; and whether another replica holds the lease on asking the IdP about
    /// it now (then this one does not ask). Reads the watch cache only for a session that is
    /// not fresh by its own cookie.
    fn follow_shared(&self, session: &Session, now: i64) -> bool {
        if self.revalidator.settings().standing(session, now) == Standing::Fresh {
            return false;
        }
        let Some(shared) = self.directory.shared_renewal(session) else {
            return false;
        };
        let known = self
            .revalidator
            .known_validated_at(&session.sid)
            .max(session.validated_at)
            .unwrap_or(0);
        if shared.validated_at > known {
            self.adopt_shared(&shared, now);
        }
        shared
            .lease_holder
            .as_deref()
            .is_some_and(|h| h != self.replica)
            && shared
                .lease_until
                .as_ref()
                .is_some_and(|t| t.0.as_second() > now)
    }

    /// Opens a shared renewal and takes it over; whether it could be opened.
    fn adopt_shared(&self, shared: &gatehouse_crds::SessionRenewal, now: i64) -> bool {
        let (Some(sealed_session), Some(sealed_grant)) = (&shared.session, &shared.grant) else {
            return false;
        };
        let keys = self.sessions.keys();
        let binding = &self.sessions.binding;
        let Some(renewed) = Session::unseal_shared(&keys, binding, sealed_session, &shared.id, now)
        else {
            return false;
        };
        let Some(grant) = RefreshGrant::unseal_shared(&keys, binding, sealed_grant, &shared.id)
        else {
            return false;
        };
        let renewal = Renewal {
            session_cookie: renewed.seal(&keys, binding),
            refresh_cookie: grant.seal(&keys, binding),
            session: Arc::new(renewed),
        };
        self.revalidator.adopt(Arc::new(renewal), grant, now);
        true
    }

    /// [`Flights::revalidate`] for a session with an open connection and no request: the flight
    /// uses the grant this replica already knows ([`Revalidator::remember`]), and leaves at
    /// once.
    /// `Err` with the reason when the connection's session is due and cannot be vouched for.
    pub fn revalidate_connection(
        self: &Arc<Self>,
        session: &Session,
        now: i64,
    ) -> Result<(), &'static str> {
        let leased_elsewhere = self.follow_shared(session, now);
        let due = self
            .revalidator
            .on_request_shared(session, now, leased_elsewhere, || None);
        if due.unvouched {
            return Err(UNVOUCHED);
        }
        if let Some(grant) = &due.start {
            Departure::leave(
                Arc::clone(self),
                due.flies_from(session).clone(),
                grant.clone(),
            );
        }
        Ok(())
    }

    /// Keeps the refresh grant a connection's request brought, so the connection's session can
    /// be re-validated while no other request comes ([`Flights::revalidate_connection`]).
    pub fn remember_refresh_grant(&self, session: &Session, headers: &HeaderMap, now: i64) {
        if session.validated_at.is_none() || !self.revalidator.is_on() {
            return;
        }
        if let Some(grant) = self.refresh_grant(session, headers) {
            self.revalidator.remember(session, grant, now);
        }
    }

    /// The request's `Cookie` header that carries the refresh cookie, when `session` can be
    /// re-validated: kept (a reference-counted copy) in case the response turns out to be a
    /// stream, which may outlive every other request of the session.
    pub fn refresh_cookie_header(
        &self,
        session: &Session,
        headers: &HeaderMap,
    ) -> Option<http::HeaderValue> {
        if session.validated_at.is_none() || !self.revalidator.is_on() {
            return None;
        }
        let name = self.sessions.cookies.refresh.as_bytes();
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .find(|v| memchr::memmem::find(v.as_bytes(), name).is_some())
            .cloned()
    }

    /// The request's refresh cookie, unsealed, if it belongs to `session`.
    fn refresh_grant(&self, session: &Session, headers: &HeaderMap) -> Option<RefreshGrant> {
        let keys = self.sessions.keys();
        gatehouse_auth::cookie::cookies(headers)
            .filter(|(name, _)| *name == self.sessions.cookies.refresh)
            .find_map(|(_, value)| {
                RefreshGrant::unseal(&keys, &self.sessions.binding, value, &session.sid)
            })
    }

    /// One flight: asks the IdP, then acts on its answer.
    async fn fly(self: Arc<Self>, session: Session, grant: RefreshGrant) {
        let known = session.validated_at.unwrap_or(0);
        // One replica at a time asks the IdP about a session, with the latest grant.
        match self
            .directory
            .take_renewal_lease(&session, &self.replica, known)
            .await
        {
            Ok(Lease::Taken) => {}
            Ok(Lease::Superseded(shared)) => {
                let now = now_unix();
                let landing = if self.adopt_shared(&shared, now) {
                    Landing::Idle
                } else {
                    Landing::RetryAt(now + self.revalidator.retry_secs())
                };
                self.revalidator.land(&session.sid, landing);
                return;
            }
            Ok(Lease::Busy { until }) => {
                self.revalidator
                    .land(&session.sid, Landing::RetryAt(until.max(now_unix() + 1)));
                return;
            }
            Ok(Lease::NoSuchUser) => {
                // The user is gone: its sessions are refused; asking the IdP would only
                // re-create it.
                self.revalidator.land(&session.sid, Landing::Ended);
                return;
            }
            Err(e) => {
                tracing::warn!(user = %session.user, error = %e, "re-validation lease not taken (Kubernetes API); asking again later");
                self.revalidator.land(
                    &session.sid,
                    Landing::RetryAt(now_unix() + self.revalidator.retry_secs()),
                );
                return;
            }
        }
        let mut outcome = self.ask_idp(&session, &grant).await;
        if matches!(outcome, FlightOutcome::Ended("grant_refused"))
            && self.renewed_elsewhere(&session, known).await
        {
            // Another replica refreshed after this flight's grant was read: not a refusal.
            outcome = FlightOutcome::Superseded;
        }
        let now = now_unix();
        let (counted, reason, role) = match &outcome {
            FlightOutcome::Refreshed(r) => (
                RevalidationOutcome::Refreshed,
                "none",
                r.session.role.as_str(),
            ),
            FlightOutcome::Ended(reason) => (RevalidationOutcome::Ended, *reason, "none"),
            FlightOutcome::Denied(reason) => (RevalidationOutcome::Denied, *reason, "none"),
            FlightOutcome::Unavailable(reason) => (
                RevalidationOutcome::Unavailable,
                *reason,
                session.role.as_str(),
            ),
            FlightOutcome::Superseded => (
                RevalidationOutcome::Superseded,
                "renewed_by_another_replica",
                session.role.as_str(),
            ),
        };
        self.metrics.revalidation(counted);
        crate::audit::revalidation(
            &session.provider,
            counted.label(),
            reason,
            &session.user,
            role,
        );
        match outcome {
            FlightOutcome::Refreshed(refreshed) => {
                let Refreshed {
                    session: renewed,
                    grant,
                    refresh_cookie,
                } = *refreshed;
                self.share(&renewed, &grant).await;
                let renewal = Renewal {
                    session_cookie: renewed.seal(&self.sessions.keys(), &self.sessions.binding),
                    session: Arc::new(renewed),
                    refresh_cookie,
                };
                self.revalidator
                    .land(&session.sid, Landing::Renewed(Arc::new(renewal), grant));
            }
            FlightOutcome::Superseded => {
                self.revalidator.land(&session.sid, Landing::Idle);
            }
            FlightOutcome::Ended(_) | FlightOutcome::Denied(_) => {
                self.revalidator.land(&session.sid, Landing::Ended);
                self.ender.end(&session, now).await;
            }
            FlightOutcome::Unavailable(_) => {
                self.directory
                    .release_renewal_lease(&session, &self.replica)
                    .await;
                self.revalidator.land(
                    &session.sid,
                    Landing::RetryAt(now + self.revalidator.retry_secs()),
                );
            }
        }
    }

    /// Shares a renewal with the other replicas (and gives up the lease); a failure is logged:
    /// they then refresh from what they know, which the IdP may refuse.
    async fn share(&self, renewed: &Session, grant: &RefreshGrant) {
        let keys = self.sessions.keys();
        let binding = &self.sessions.binding;
        let Some(sealed_grant) = grant.seal_shared(&keys, binding) else {
            return;
        };
        let shared = SharedRenewal {
            sid: renewed.sid.clone(),
            validated_at: renewed.validated_at.unwrap_or(0),
            session: renewed.seal_shared(&keys, binding),
            grant: sealed_grant,
            until: renewed.expires_at,
        };
        if let Err(e) = self
            .directory
            .record_renewal(&renewed.user, shared, &self.replica)
            .await
        {
            tracing::warn!(user = %renewed.user, error = %e, "re-validation not shared with the other replicas");
        }
    }

    /// After the IdP refused a grant: whether another replica renewed the session after
    /// `known` (then the grant was rotated away, and the session lives on from that renewal,
    /// which this replica takes over).
    async fn renewed_elsewhere(&self, session: &Session, known: i64) -> bool {
        match self.directory.read_renewal(session).await {
            Ok(Some(shared)) if shared.validated_at > known => {
                self.adopt_shared(&shared, now_unix())
            }
            _ => false,
        }
    }

    /// The refresh-token grant for `session`, and what the IdP's answer makes of it.
    async fn ask_idp(&self, session: &Session, grant: &RefreshGrant) -> FlightOutcome {
        let Some(provider) = self.providers.get(&session.provider) else {
            return FlightOutcome::Unavailable("provider_removed");
        };
        let Some(discovered) = provider.discovered() else {
            return FlightOutcome::Unavailable("provider_unavailable");
        };
        let tokens = match provider.refresh(&self.http, &grant.token).await {
            Ok(tokens) => tokens,
            Err(ExchangeError::Refused { error, .. }) if error == "invalid_grant" => {
                return FlightOutcome::Ended("grant_refused");
            }
            Err(e) => {
                tracing::warn!(provider = %provider.id(), user = %session.user, error = %e, "re-validation at the identity provider failed; the session is kept until its grace ends");
                return FlightOutcome::Unavailable(match e {
                    ExchangeError::Refused { .. } => "idp_error",
                    _ => "idp_unreachable",
                });
            }
        };
        let now = now_unix();
        // A rotated refresh token replaces the old one, here and in the browser's cookie.
        let (grant, refresh_cookie) = match tokens.refresh_token.filter(|t| *t != grant.token) {
            Some(token) => {
                let rotated = RefreshGrant {
                    token,
                    ..grant.clone()
                };
                let sealed = rotated.seal(&self.sessions.keys(), &self.sessions.binding);
                (rotated, sealed)
            }
            None => (grant.clone(), None),
        };
        let mut renewed = Session {
            validated_at: Some(now),
            ..session.clone()
        };
        // Without a new ID token the IdP still vouched (it honoured the grant); the role stays.
        let Some(raw) = tokens.id_token else {
            return FlightOutcome::refreshed(renewed, grant, refresh_cookie);
        };
        let expected = Expected {
            issuer: &provider.config.issuer,
            client_id: &provider.config.client_id,
            nonce: Nonce::Repeated(&grant.nonce),
            skew: self.skew,
        };
        let mut token = match verify_id_token(&raw, &discovered.jwks, &expected).await {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(provider = %provider.id(), user = %session.user, reason = e.reason(), "the identity provider's refreshed ID token was refused");
                return FlightOutcome::Unavailable(e.reason());
            }
        };
        if token.subject != session.subject {
            return FlightOutcome::Denied("subject_changed");
        }
        // A group overage is read from Microsoft Graph again, with the refreshed access token:
        // a session whose groups were unknown learns them here, one whose groups were known
        // has them refreshed (or unknown, failing closed, when Graph does not answer now).
        let overage = crate::graph::complete_groups(
            &self.http,
            provider,
            &mut token.claims,
            tokens.access_token.as_deref(),
        )
        .await
        .held_to(self.access.as_deref());
        if let Some(outcome) = overage.outcome() {
            self.metrics.group_overage(outcome);
        }
        let groups_unknown = overage.unknown();
        let userinfo = crate::userinfo::complete(
            &self.http,
            discovered.endpoints.userinfo.as_ref(),
            tokens.access_token.as_deref(),
            &token.claims,
            &token.subject,
            &self.attribute_mappings,
            provider.id(),
        )
        .await;
        let mut identity =
            VerifiedIdentity::oidc(&provider.identity, &provider.config.issuer, token, userinfo);
        identity.groups_unknown = groups_unknown;
        if let Some(reason) = groups_unknown {
            crate::audit::groups_unknown(provider.id(), "revalidation", reason, &session.user);
            if provider
                .config
                .roles
                .reads_claim(&provider.config.groups_claim)
            {
                return FlightOutcome::Unavailable("groups_unavailable");
            }
        }
        let (mut record, role) = match signin::map_user(
            &self.config_name,
            &identity,
            &provider.config.roles,
            &self.attribute_mappings,
        ) {
            Ok(mapped) => mapped,
            Err(unmapped) => return FlightOutcome::Denied(unmapped.denial.reason()),
        };
        let Ok((groups, claims, facts)) =
            crate::pipeline::rule_facts(self.access.as_deref(), &identity)
        else {
            return FlightOutcome::Denied("access_claims_too_large");
        };
        record.occasion = Occasion::Revalidation;
        let written = match self.directory.admit(&record).await {
            Ok(admission) => self.directory.provision(&record, admission).await,
            Err(e) => Err(e),
        };
        match written {
            Ok(_) => {}
            Err(e) if e.is_denial() => return FlightOutcome::Denied(e.reason()),
            Err(e) => {
                tracing::warn!(user = %session.user, error = %e, "re-validated role could not be written to the SsoUser; asking again later");
                return FlightOutcome::Unavailable(e.reason());
            }
        }
        renewed.role = role;
        renewed.email = identity.email;
        renewed.name = identity.name;
        renewed.username = identity.preferred_username;
        renewed.groups = groups;
        renewed.claims = claims;
        renewed.facts = facts;
        renewed.groups_unknown = identity.groups_unknown.is_some();
        FlightOutcome::refreshed(renewed, grant, refresh_cookie)
    }
}

/// A successful refresh: the renewed session, the grant to use next time, and a new sealed
/// refresh cookie when the IdP rotated the token.
struct Refreshed {
    session: Session,
    grant: RefreshGrant,
    refresh_cookie: Option<String>,
}

/// How a flight ended.
enum FlightOutcome {
    /// The IdP vouched again.
    Refreshed(Box<Refreshed>),
    /// The IdP refused the grant.
    Ended(&'static str),
    /// The user may no longer have a session.
    Denied(&'static str),
    /// The IdP could not be asked, or its answer not used.
    Unavailable(&'static str),
    /// The IdP refused a grant another replica had already rotated: the session goes on from
    /// that replica's renewal.
    Superseded,
}

impl FlightOutcome {
    fn refreshed(session: Session, grant: RefreshGrant, refresh_cookie: Option<String>) -> Self {
        FlightOutcome::Refreshed(Box::new(Refreshed {
            session,
            grant,
            refresh_cookie,
        }))
    }
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Due {
        fn is_nothing(&self) -> bool {
            self.renewal.is_none() && self.start.is_none()
        }
    }

    fn session(validated_at: Option<i64>) -> Session {
        Session {
            sid: "s".into(),
            user: "u".into(),
            subject: "sub".into(),
            provider: "oidc".into(),
            email: None,
            name: None,
            username: None,
            role: gatehouse_auth::claims::Role::Member,
            issued_at: 0,
            expires_at: 1_000_000,
            user_uid: None,
            idp_sid: None,
            validated_at,
            groups: Vec::new(),
            claims: None,
            facts: None,
            groups_unknown: false,
        }
    }

    const EVERY_15M: Revalidation = Revalidation {
        interval: Some(Duration::from_secs(900)),
        grace: Duration::from_secs(3600),
    };

    #[test]
    fn a_session_is_fresh_then_due_then_past_grace() {
        let s = session(Some(1000));
        assert_eq!(EVERY_15M.standing(&s, 1000), Standing::Fresh);
        assert_eq!(EVERY_15M.standing(&s, 1899), Standing::Fresh);
        assert_eq!(EVERY_15M.standing(&s, 1900), Standing::Due);
        assert_eq!(EVERY_15M.standing(&s, 1900 + 3599), Standing::Due);
        assert_eq!(EVERY_15M.standing(&s, 1900 + 3600), Standing::PastGrace);
    }

    #[test]
    fn sessions_nothing_can_revalidate_and_revalidation_off_are_always_fresh() {
        assert_eq!(
            EVERY_15M.standing(&session(None), i64::MAX),
            Standing::Fresh
        );
        let off = Revalidation {
            interval: None,
            ..EVERY_15M
        };
        assert_eq!(off.standing(&session(Some(0)), i64::MAX), Standing::Fresh);
    }

    fn grant() -> Option<RefreshGrant> {
        Some(RefreshGrant {
            sid: "s".into(),
            token: "rt".into(),
            nonce: "n".into(),
        })
    }

    fn renewal(of: &Session, at: i64) -> Arc<Renewal> {
        Arc::new(Renewal {
            session: Arc::new(Session {
                validated_at: Some(at),
                ..of.clone()
            }),
            session_cookie: "sealed".into(),
            refresh_cookie: None,
        })
    }

    fn rotated() -> RefreshGrant {
        RefreshGrant {
            token: "rt-2".into(),
            ..grant().expect("grant")
        }
    }

    #[test]
    fn one_flight_per_session_started_only_when_due_and_with_a_refresh_cookie() {
        let flights = Revalidator::new(EVERY_15M);
        let s = session(Some(1000));
        // Fresh: the refresh cookie is not even read.
        let due = flights.on_request(&s, 1100, || panic!("read the cookie of a fresh session"));
        assert!(due.is_nothing());
        // Due without a refresh cookie: nothing to ask with, and nothing recorded.
        assert!(flights.on_request(&s, 1900, || None).is_nothing());
        // Due with one: one flight; the requests after it do not start another.
        assert!(flights.on_request(&s, 1900, grant).start.is_some());
        assert!(flights.on_request(&s, 1901, grant).is_nothing());
        assert!(flights.on_request(&s, 1902, grant).is_nothing());
    }

    #[test]
    fn a_landed_renewal_is_handed_to_the_old_cookie_until_the_browser_has_the_new_one() {
        let flights = Revalidator::new(EVERY_15M);
        let s = session(Some(1000));
        assert!(flights.on_request(&s, 1900, grant).start.is_some());
        assert!(flights.ready(&s, 1900).is_none(), "still running");
        flights.land(&s.sid, Landing::Renewed(renewal(&s, 1950), rotated()));
        let Some(r) = flights.on_request(&s, 1960, grant).renewal else {
            panic!("the old cookie gets the renewal");
        };
        assert_eq!(r.session.validated_at, Some(1950));
        assert!(flights.ready(&s, 1960).is_some());
        // The renewed cookie is fresh: nothing to do for it.
        assert!(flights.on_request(&r.session, 1960, grant).is_nothing());
        assert!(flights.ready(&r.session, 1960).is_none());
        // Another session of the same user is not renewed by it.
        let other = Session {
            sid: "t".into(),
            ..s.clone()
        };
        assert!(flights.on_request(&other, 1960, grant).start.is_some());
    }

    #[test]
    fn the_next_flight_uses_the_rotated_token_not_the_one_an_old_cookie_still_holds() {
        let flights = Revalidator::new(EVERY_15M);
        let s = session(Some(1000));
        assert!(flights.on_request(&s, 1900, grant).start.is_some());
        flights.land(&s.sid, Landing::Renewed(renewal(&s, 1950), rotated()));
        // The renewal is due in its turn; a request still carrying the first cookies comes.
        let Some(next) = flights.on_request(&s, 1950 + 900, grant).start else {
            panic!("a renewal that is due again starts the next flight");
        };
        assert_eq!(next.token, "rt-2");
    }

    /// Hardening issue, defect 8: a flight started by a request with the old cookie flies from
    /// the latest renewal, so a refresh without an ID token cannot bring back the old role.
    #[test]
    fn a_flight_found_by_an_old_cookie_flies_from_the_latest_renewal() {
        let flights = Revalidator::new(EVERY_15M);
        let admin = Session {
            role: gatehouse_auth::claims::Role::Admin,
            ..session(Some(1000))
        };
        assert!(flights.on_request(&admin, 1900, grant).start.is_some());
        let downgraded = Arc::new(Renewal {
            session: Arc::new(Session {
                validated_at: Some(1950),
                role: gatehouse_auth::claims::Role::Member,
                ..admin.clone()
            }),
            session_cookie: "sealed".into(),
            refresh_cookie: None,
        });
        flights.land(&admin.sid, Landing::Renewed(downgraded, rotated()));
        // The renewal is due in turn; the browser still sends the admin cookie.
        let due = flights.on_request(&admin, 1950 + 900, grant);
        assert!(due.start.is_some(), "the renewal is due: a flight starts");
        let base = due.flies_from(&admin);
        assert_eq!(base.role, gatehouse_auth::claims::Role::Member);
        assert_eq!(base.validated_at, Some(1950));
    }

    /// Hardening issue, defect 11: a renewal another replica shared is taken over (the old
    /// cookie goes on as it, the next flight uses its rotated grant), an older one is not, and
    /// no flight starts while another replica holds the lease.
    #[test]
    fn a_shared_renewal_is_taken_over_and_a_lease_elsewhere_starts_no_flight() {
        let flights = Revalidator::new(EVERY_15M);
        let s = session(Some(1000));
        assert!(
            flights
                .on_request_shared(&s, 1900, true, grant)
                .is_nothing(),
            "another replica is asking the IdP"
        );
        flights.adopt(renewal(&s, 1950), rotated(), 1950);
        assert_eq!(flights.known_validated_at(&s.sid), Some(1950));
        let due = flights.on_request(&s, 1960, || panic!("no cookie needed"));
        assert_eq!(
            due.renewal
                .expect("goes on as the renewal")
                .session
                .validated_at,
            Some(1950)
        );
        assert!(due.start.is_none(), "fresh again: no flight");
        // An older renewal arriving late changes nothing.
        flights.adopt(renewal(&s, 1940), grant().expect("a grant"), 1960);
        assert_eq!(flights.known_validated_at(&s.sid), Some(1950));
        // When it is due, the flight uses the rotated grant, not the cookie's.
        let due = flights.on_request(&s, 1950 + 900, grant);
        assert_eq!(due.start, Some(rotated()));
    }

    #[test]
    fn an_old_cookie_goes_on_as_its_renewal_even_past_its_own_grace_and_is_due_with_it() {
        let flights = Revalidator::new(EVERY_15M);
        let s = Session {
            role: gatehouse_auth::claims::Role::Admin,
            ..session(Some(1000))
        };
        assert!(flights.on_request(&s, 1900, grant).start.is_some());
        // The IdP now gives a lesser role.
        let downgraded = Arc::new(Renewal {
            session: Arc::new(Session {
                validated_at: Some(1950),
                role: gatehouse_auth::claims::Role::Member,
                ..s.clone()
            }),
            session_cookie: "sealed".into(),
            refresh_cookie: None,
        });
        flights.land(&s.sid, Landing::Renewed(downgraded, rotated()));
        // A client that ignores Set-Cookie keeps sending the first cookie, past its own grace
        // (1000 + 900 + 3600): it goes on as the renewal, with the lesser role, and when the
        // renewal is due (1950 + 900) the next flight starts with the rotated token.
        let own_past_grace = 5600;
        assert_eq!(EVERY_15M.standing(&s, own_past_grace), Standing::PastGrace);
        let due = flights.on_request(&s, own_past_grace, grant);
        let renewal = due.renewal.expect("the old cookie goes on as its renewal");
        assert_eq!(renewal.session.role, gatehouse_auth::claims::Role::Member);
        assert_eq!(due.start.expect("the renewal is due").token, "rt-2");
        // While that flight runs, the old cookie still goes on as the renewal, and no second
        // flight starts.
        let during = flights.on_request(&s, own_past_grace + 1, grant);
        assert!(during.renewal.is_some());
        assert!(during.start.is_none());
    }

    #[test]
    fn a_renewal_this_replica_holds_keeps_the_old_cookie_and_open_connections_within_grace() {
        let flights = Revalidator::new(EVERY_15M);
        let s = session(Some(1000));
        let past_grace = 1000 + 900 + 3600;
        assert_eq!(flights.standing(&s, past_grace), Standing::PastGrace);
        assert!(flights.on_request(&s, 1900, grant).start.is_some());
        flights.land(&s.sid, Landing::Renewed(renewal(&s, 1950), rotated()));
        assert_eq!(flights.standing(&s, past_grace), Standing::Due);
        assert_eq!(flights.standing(&s, 1960), Standing::Fresh);
        // An ended flight forgets the session: its own cookie counts again.
        flights.land(&s.sid, Landing::Ended);
        assert_eq!(flights.standing(&s, past_grace), Standing::PastGrace);
    }

    #[test]
    fn an_open_connection_re_validates_with_the_grant_it_was_opened_with() {
        let flights = Revalidator::new(EVERY_15M);
        let s = session(Some(1000));
        // The connection's request came while the session was fresh.
        flights.remember(&s, grant().expect("grant"), 1100);
        assert!(flights.on_request(&s, 1500, || None).is_nothing());
        // Due, and no request brings a cookie: the remembered grant is used.
        let Some(used) = flights.on_request(&s, 1900, || None).start else {
            panic!("the connection's session is re-validated");
        };
        assert_eq!(used.token, "rt");
    }

    #[test]
    fn an_unreachable_idp_is_asked_again_after_the_retry_delay() {
        let flights = Revalidator::new(EVERY_15M);
        assert_eq!(flights.retry_secs(), RETRY_SECS);
        let s = session(Some(1000));
        assert!(flights.on_request(&s, 1900, grant).start.is_some());
        flights.land(&s.sid, Landing::RetryAt(1900 + RETRY_SECS));
        assert!(
            flights
                .on_request(&s, 1900 + RETRY_SECS - 1, grant)
                .is_nothing()
        );
        assert!(
            flights
                .on_request(&s, 1900 + RETRY_SECS, grant)
                .start
                .is_some()
        );
        // A short interval retries sooner.
        let every_2s = Revalidator::new(Revalidation {
            interval: Some(Duration::from_secs(2)),
            grace: Duration::from_secs(10),
        });
        assert_eq!(every_2s.retry_secs(), 2);
    }

    #[test]
    fn far_future_values_do_not_overflow() {
        let s = session(Some(i64::MAX - 10));
        assert_eq!(EVERY_15M.standing(&s, i64::MAX - 10), Standing::Fresh);
        assert_eq!(EVERY_15M.standing(&s, i64::MAX), Standing::PastGrace);
    }
}
