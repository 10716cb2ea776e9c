//! Reading a session from a request: the cookie keys (rotating without a restart), unsealing
//! (cached), and the sessions this replica ended (logout, back-channel logout).

use std::sync::{Arc, RwLock};

use gatehouse_auth::collections::ExpiringSet;
use gatehouse_auth::cookie::{Binding, CookieNames, KeyRing, Session, UnsealCache};
use http::HeaderMap;

/// Logged-out sessions remembered at once (per replica).
const LOGGED_OUT_CAPACITY: usize = 50_000;
/// Identity-provider sessions ended by back-channel logout, remembered at once (per replica).
const ENDED_IDP_SESSIONS_CAPACITY: usize = 50_000;
/// Used logout token ids (`jti`) remembered at once (per replica).
const USED_LOGOUT_TOKENS_CAPACITY: usize = 20_000;
/// Unsealed session cookies cached at once.
const UNSEAL_CACHE_CAPACITY: usize = 4096;

/// The cookie keys, and reading a session from a request: unsealing (cached), and the sessions
/// ended by logout.
#[derive(Debug)]
pub struct Sessions {
    keys: RwLock<Arc<KeyRing>>,
    unsealed: UnsealCache,
    /// What cookies are bound to.
    pub binding: Binding,
    /// Cookie names.
    pub cookies: CookieNames,
    /// Sessions ended by logout, until their expiry.
    pub logged_out: ExpiringSet,
    /// Identity-provider sessions ended by back-channel logout, until the sessions they could name
    /// expire: keyed by provider, `sid` and (when the logout token named one) subject, never by a
    /// bare `sid` ([`Sessions::end_idp_session`]). This replica's own record; other replicas learn
    /// it from the SsoUser.
    ended_idp_sessions: ExpiringSet,
    /// Logout token ids (`jti`) taken, by provider ([`Sessions::take_logout_token`]).
    used_logout_tokens: ExpiringSet,
}

impl Sessions {
    /// The sessions of an app whose cookies are bound to `binding`, sealed with `keys`.
    pub fn new(keys: KeyRing, binding: Binding, cookies: CookieNames) -> Self {
        Self {
            keys: RwLock::new(Arc::new(keys)),
            unsealed: UnsealCache::new(UNSEAL_CACHE_CAPACITY),
            binding,
            cookies,
            logged_out: ExpiringSet::new(LOGGED_OUT_CAPACITY),
            ended_idp_sessions: ExpiringSet::new(ENDED_IDP_SESSIONS_CAPACITY),
            used_logout_tokens: ExpiringSet::new(USED_LOGOUT_TOKENS_CAPACITY),
        }
    }

    /// The current cookie key ring.
    pub fn keys(&self) -> Arc<KeyRing> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the key ring (rotation from a mounted Secret).
    pub fn set_keys(&self, ring: KeyRing) {
        match self.keys.write() {
            Ok(mut k) => *k = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
        // A removed key must stop admitting the sessions it sealed.
        self.unsealed.clear();
    }

    /// The session cookie of a request, unsealed, unexpired and not logged out.
    pub fn read(&self, headers: &HeaderMap, now: i64) -> Option<Arc<Session>> {
        let keys = self.keys();
        let session = gatehouse_auth::cookie::cookies(headers)
            .filter(|(name, _)| *name == self.cookies.session)
            .find_map(|(_, value)| {
                self.unsealed
                    .get_or_unseal(&keys, &self.binding, value, now)
            })?;
        (!self.is_ended(&session, now)).then_some(session)
    }

    /// Whether this replica ended `session` (logout, or a back-channel logout from its provider
    /// naming its IdP session, and its subject when the token named one).
    pub fn is_ended(&self, session: &Session, now: i64) -> bool {
        if self.logged_out.contains(&session.sid, now) {
            return true;
        }
        let Some(sid) = session.idp_sid.as_deref() else {
            return false;
        };
        !self.ended_idp_sessions.is_empty()
            && [None, Some(session.subject.as_str())]
                .into_iter()
                .any(|subject| {
                    self.ended_idp_sessions
                        .contains(&idp_session_key(&session.provider, sid, subject), now)
                })
    }

    /// Ends, on this replica until `until`, the sessions signed in at `provider` through its
    /// session `sid`: with `subject` (the logout token's `sub`), only that subject's; without,
    /// every subject's. A `sid` is the provider's own name, unique at that issuer only, so another
    /// provider's token never names this provider's sessions.
    pub fn end_idp_session(
        &self,
        provider: &str,
        sid: &str,
        subject: Option<&str>,
        until: i64,
        now: i64,
    ) {
        self.ended_idp_sessions
            .insert(&idp_session_key(provider, sid, subject), until, now);
    }

    /// Takes logout token `jti` of `provider`, remembered until `until`; false when it is already
    /// taken (a replay, or another delivery of the same token still being handled). The check and
    /// the insert are one step, so concurrent deliveries of one token act once.
    pub fn take_logout_token(&self, provider: &str, jti: &str, until: i64, now: i64) -> bool {
        self.used_logout_tokens
            .insert(&key(&[Some(provider), Some(jti)]), until, now)
    }

    /// Gives back logout token `jti` of `provider` whose logout could not be recorded, so that
    /// the identity provider's retry of it is taken (see `routes/backchannel.rs`).
    pub fn release_logout_token(&self, provider: &str, jti: &str) {
        self.used_logout_tokens
            .remove(&key(&[Some(provider), Some(jti)]));
    }
}

/// The key of IdP session `sid` of `provider`, of `subject` or (`None`) of anyone.
fn idp_session_key(provider: &str, sid: &str, subject: Option<&str>) -> String {
    key(&[Some(provider), Some(sid), subject])
}

/// One key of several parts: each present part length-prefixed, an absent one `-`, so no choice
/// of `sid`, subject or `jti` (all chosen by an identity provider) spells another part's key.
fn key(parts: &[Option<&str>]) -> String {
    use std::fmt::Write as _;
    let mut key = String::with_capacity(parts.iter().flatten().map(|p| p.len() + 4).sum());
    for part in parts {
        match part {
            Some(p) => {
                let _ = write!(key, "{}:{p}", p.len());
            }
            None => key.push('-'),
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_auth::claims::Role;

    const NOW: i64 = 1_800_000_000;

    fn sessions() -> Sessions {
        Sessions::new(
            KeyRing::parse("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").expect("ring"),
            Binding::new("team-a", "portal", "https://app.test", None),
            CookieNames::new(true),
        )
    }

    fn session(provider: &str, subject: &str, idp_sid: Option<&str>) -> Session {
        Session {
            sid: format!("own-{provider}-{subject}"),
            user: format!("{provider}-0123456789abcdef"),
            subject: subject.into(),
            provider: provider.into(),
            email: None,
            name: None,
            username: None,
            role: Role::Member,
            issued_at: NOW,
            expires_at: NOW + 3600,
            user_uid: None,
            idp_sid: idp_sid.map(str::to_owned),
            validated_at: None,
            groups: Vec::new(),
            claims: None,
            facts: None,
            groups_unknown: false,
        }
    }

    #[test]
    fn an_ended_idp_session_is_scoped_to_its_provider_and_subject() {
        let s = sessions();
        let ada_okta = session("okta", "ada", Some("sid-1"));
        let bob_okta = session("okta", "bob", Some("sid-1"));
        let ada_partner = session("partner", "ada", Some("sid-1"));
        let no_sid = session("okta", "ada", None);

        s.end_idp_session("okta", "sid-1", Some("bob"), NOW + 60, NOW);
        assert!(s.is_ended(&bob_okta, NOW));
        assert!(!s.is_ended(&ada_okta, NOW), "another subject");
        assert!(!s.is_ended(&ada_partner, NOW), "another provider");
        assert!(!s.is_ended(&no_sid, NOW));

        s.end_idp_session("partner", "sid-1", None, NOW + 60, NOW);
        assert!(s.is_ended(&ada_partner, NOW));
        assert!(!s.is_ended(&ada_okta, NOW), "another provider, any subject");

        s.end_idp_session("okta", "sid-1", None, NOW + 60, NOW);
        assert!(s.is_ended(&ada_okta, NOW), "no subject: every subject");
        assert!(
            !s.is_ended(&ada_okta, NOW + 60),
            "until the sessions expire"
        );
    }

    #[test]
    fn no_sid_or_subject_spells_another_key() {
        // Ids are chosen by identity providers: a separator inside one must not move a boundary.
        let keys = [
            idp_session_key("okta", "a\nb", Some("c")),
            idp_session_key("okta", "a", Some("b\nc")),
            idp_session_key("okta", "a\nb\nc", None),
            idp_session_key("okta", "a", None),
            idp_session_key("okta", "a", Some("")),
            idp_session_key("okta", "a-", None),
            idp_session_key("okta", "1:a", None),
            idp_session_key("okt", "a:okta", None),
            idp_session_key("okta\n", "a", None),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let s = sessions();
        s.end_idp_session("okta", "a:3:bob", None, NOW + 60, NOW);
        assert!(!s.is_ended(&session("okta", "bob", Some("a")), NOW));
    }

    #[test]
    fn a_logout_token_is_taken_once_and_given_back_when_its_logout_failed() {
        let s = sessions();
        assert!(s.take_logout_token("okta", "j1", NOW + 360, NOW));
        assert!(!s.take_logout_token("okta", "j1", NOW + 360, NOW), "replay");
        assert!(
            s.take_logout_token("partner", "j1", NOW + 360, NOW),
            "jtis are per provider"
        );
        s.release_logout_token("okta", "j1");
        assert!(s.take_logout_token("okta", "j1", NOW + 360, NOW), "retry");
    }
}
