//! The catalogue of every environment variable the sidecar reads: its name, the table of
//! `docs/sidecar.md` it is listed in, its default, its bounds, whether it is a secret (and so may
//! come from `<NAME>_FILE`), and what it means.
//!
//! The readers take a [`Variable`], never a bare name, so a variable cannot be read without being
//! here, and the default they apply is the one the page shows ([`DefaultValue`]). The page's
//! tables are generated from [`ALL`] (`cargo test -p gatehouse-tests --test doc_env`).
//!
//! Names shared with the operator, which renders them, are those of [`gatehouse_crds::env`].

use std::fmt;
use std::time::Duration;

use gatehouse_crds::consts::DEFAULT_SESSION_TTL;
use gatehouse_crds::env;
use gatehouse_crds::rules::{
    DurationBounds, IO_TIMEOUT, REVALIDATE_GRACE, REVALIDATE_INTERVAL, REVOCATION_STALENESS,
};

/// The table of `docs/sidecar.md` a variable is listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// The OIDC providers (`OKTA_*`, `ENTRA_*`, `OIDC_*`) and `AUTH_EXCLUSIVE_PROVIDER`.
    Providers,
    /// SAML (`SAML_*`).
    Saml,
    /// The sidecar's own settings (`GATEHOUSE_*`).
    General,
}

/// What a variable's readers use when it is unset (or empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// Nothing: start-up stops without it.
    Required,
    /// Nothing: the setting is off, or the variable only matters with others.
    Unset,
    /// This text, read as if it had been set.
    Text(&'static str),
    /// This many bytes.
    Bytes(u64),
    /// Computed from other values by the reader; described in words for the page.
    Derived(&'static str),
}

impl DefaultValue {
    /// The text a reader uses in place of an unset value, if there is one.
    pub fn text(&self) -> Option<&'static str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The default as the page's `default` column shows it (markdown).
    pub fn shown(&self) -> String {
        match self {
            Self::Required => "required".to_owned(),
            Self::Unset => "unset".to_owned(),
            Self::Text(text) => format!("`{text}`"),
            Self::Bytes(bytes) => format!("`{}`", byte_size_text(*bytes)),
            Self::Derived(words) => (*words).to_owned(),
        }
    }
}

/// The range a variable's value may take, as its reader checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounds {
    /// No range (or none a reader checks beyond the value's form).
    None,
    /// A duration within these bounds.
    Duration(DurationBounds),
    /// A whole number from `min` to `max`.
    Count {
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
}

impl Bounds {
    /// `1s–1h`, for the page; `None` without bounds.
    pub fn shown(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Duration(bounds) => Some(format!("{}–{}", bounds.min_text, bounds.max_text)),
            Self::Count { min, max } => Some(format!("{min}–{max}")),
        }
    }
}

/// One environment variable the sidecar reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    /// Its name.
    pub name: &'static str,
    /// The table it is listed in.
    pub table: Table,
    /// What is used when it is unset.
    pub default: DefaultValue,
    /// The range its value may take.
    pub bounds: Bounds,
    /// Whether it is a secret: never shown, and also read from the file `<NAME>_FILE` names.
    pub secret: bool,
    /// What it means (markdown); `{bounds}` stands for [`Bounds::shown`].
    pub meaning: &'static str,
}

/// The text a meaning writes for the variable's bounds.
pub const BOUNDS_PLACEHOLDER: &str = "{bounds}";

impl Variable {
    const fn new(table: Table, name: &'static str, meaning: &'static str) -> Self {
        Self {
            name,
            table,
            default: DefaultValue::Unset,
            bounds: Bounds::None,
            secret: false,
            meaning,
        }
    }

    const fn with_default(self, default: DefaultValue) -> Self {
        Self { default, ..self }
    }

    const fn required(self) -> Self {
        self.with_default(DefaultValue::Required)
    }

    const fn text_default(self, text: &'static str) -> Self {
        self.with_default(DefaultValue::Text(text))
    }

    const fn within(self, bounds: Bounds) -> Self {
        Self { bounds, ..self }
    }

    const fn duration_within(self, bounds: DurationBounds) -> Self {
        self.within(Bounds::Duration(bounds))
    }

    const fn secret(self) -> Self {
        Self {
            secret: true,
            ..self
        }
    }

    /// [`Self::meaning`] with its bounds written in.
    pub fn meaning_text(&self) -> String {
        match self.bounds.shown() {
            Some(bounds) => self.meaning.replace(BOUNDS_PLACEHOLDER, &bounds),
            None => self.meaning.to_owned(),
        }
    }

    /// The variable naming the file a secret may be read from instead.
    pub fn file_variable(&self) -> String {
        format!("{}_FILE", self.name)
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

const fn provider(name: &'static str, meaning: &'static str) -> Variable {
    Variable::new(Table::Providers, name, meaning)
}

const fn saml(name: &'static str, meaning: &'static str) -> Variable {
    Variable::new(Table::Saml, name, meaning)
}

const fn general(name: &'static str, meaning: &'static str) -> Variable {
    Variable::new(Table::General, name, meaning)
}

/// `n` as the page writes sizes: in `Gi`, `Mi` or `Ki` when it is a whole number of them.
fn byte_size_text(n: u64) -> String {
    for (shift, suffix) in [(30, "Gi"), (20, "Mi"), (10, "Ki")] {
        if n != 0 && n.trailing_zeros() >= shift {
            return format!("{}{suffix}", n >> shift);
        }
    }
    n.to_string()
}

/// The groups claim (SAML: attribute) read when the provider's is unset.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";

// Providers. All of a provider's four variables enable it; some but not all is an error.

pub const OKTA_CLIENT_ID: Variable = provider(
    env::OKTA_CLIENT_ID,
    "Okta: the app's client id; with `OKTA_CLIENT_SECRET`, `OKTA_ISSUER` and `OKTA_ORG_ID`, enables Okta (role from `userType` / `user_type`)",
);
pub const OKTA_CLIENT_SECRET: Variable =
    provider(env::OKTA_CLIENT_SECRET, "Okta: the app's client secret").secret();
pub const OKTA_ISSUER: Variable = provider(
    env::OKTA_ISSUER,
    "Okta: the issuer URL, as the ID tokens' `iss` writes it",
);
pub const OKTA_ORG_ID: Variable = provider(
    env::OKTA_ORG_ID,
    "Okta: organisation forwarded as `X-Forwarded-Org`",
);
pub const OKTA_GROUPS_CLAIM: Variable = provider(
    env::OKTA_GROUPS_CLAIM,
    "Okta: claim name or dotted path holding the user's groups (array of strings, or one string), for access rules and `status.groups`",
)
.text_default(DEFAULT_GROUPS_CLAIM);

pub const ENTRA_CLIENT_ID: Variable = provider(
    env::ENTRA_CLIENT_ID,
    "Entra ID: the app's client id; with `ENTRA_CLIENT_SECRET`, `ENTRA_TENANT_ID` and `ENTRA_ORG_ID`, enables Entra ID (role from `roles`)",
);
pub const ENTRA_CLIENT_SECRET: Variable = provider(
    env::ENTRA_CLIENT_SECRET,
    "Entra ID: the app's client secret",
)
.secret();
pub const ENTRA_TENANT_ID: Variable =
    provider(env::ENTRA_TENANT_ID, "Entra ID: the directory (tenant) id");
pub const ENTRA_ORG_ID: Variable = provider(
    env::ENTRA_ORG_ID,
    "Entra ID: organisation forwarded as `X-Forwarded-Org`",
);
pub const ENTRA_GROUPS_CLAIM: Variable = provider(
    env::ENTRA_GROUPS_CLAIM,
    "Entra ID: claim holding the user's groups (the app registration's group claims: object ids, or names where configured)",
)
.text_default(DEFAULT_GROUPS_CLAIM);
pub const ENTRA_GRAPH_URL: Variable = provider(
    env::ENTRA_GRAPH_URL,
    "Entra ID: Microsoft Graph, where the groups of a user in more groups than the ID token carries (group overage) are read (https; plain http only to a loopback host; sovereign clouds, tests)",
)
.text_default(gatehouse_auth::overage::DEFAULT_GRAPH_URL);
pub const ENTRA_GROUP_OVERAGE: Variable = provider(
    env::ENTRA_GROUP_OVERAGE,
    "Entra ID: whose token reads an overage user's groups from Graph: `delegated` (the sign-in's access token, `/me/transitiveMemberOf`; delegated `User.Read`) or `application` (the app's own client-credentials token, `/users/{oid}/transitiveMemberOf`; application `GroupMember.Read.All`)",
)
.text_default("delegated");
/// The issuer when [`ENTRA_ISSUER`] is unset, `<tenant>` standing for the tenant id.
pub const DEFAULT_ENTRA_ISSUER: &str = "https://login.microsoftonline.com/<tenant>/v2.0";
pub const ENTRA_ISSUER: Variable = provider(
    env::ENTRA_ISSUER,
    "Entra ID: optional issuer override (sovereign clouds, tests)",
)
.with_default(DefaultValue::Derived(
    "`https://login.microsoftonline.com/<tenant>/v2.0`",
));

pub const OIDC_CLIENT_ID: Variable = provider(
    env::OIDC_CLIENT_ID,
    "generic OIDC provider: the app's client id; with `OIDC_CLIENT_SECRET`, `OIDC_ISSUER` and `OIDC_ORG_ID`, enables it. Providers 2 to 16 read the same variables numbered: `OIDC_2_CLIENT_ID`, `OIDC_2_PROVIDER_ID` (required for them)…",
);
pub const OIDC_CLIENT_SECRET: Variable = provider(
    env::OIDC_CLIENT_SECRET,
    "generic OIDC provider: the app's client secret",
)
.secret();
pub const OIDC_ISSUER: Variable = provider(
    env::OIDC_ISSUER,
    "generic OIDC provider: the issuer URL, as the ID tokens' `iss` writes it",
);
pub const OIDC_ORG_ID: Variable = provider(
    env::OIDC_ORG_ID,
    "generic OIDC provider: organisation forwarded as `X-Forwarded-Org`",
);
pub const OIDC_GROUPS_CLAIM: Variable = provider(
    env::OIDC_GROUPS_CLAIM,
    "generic OIDC provider: claim name or dotted path holding the user's groups",
)
.text_default(DEFAULT_GROUPS_CLAIM);
pub const OIDC_PROVIDER_ID: Variable =
    provider(env::OIDC_PROVIDER_ID, "its path segment").text_default("oidc");
pub const OIDC_PROVIDER_NAME: Variable = provider(env::OIDC_PROVIDER_NAME, "its button label")
    .with_default(DefaultValue::Derived("the id"));
pub const OIDC_ROLE_CLAIM: Variable = provider(
    env::OIDC_ROLE_CLAIM,
    "claim name or dotted path holding a string or an array of strings",
);
pub const OIDC_ROLE_MAP: Variable = provider(
    env::OIDC_ROLE_MAP,
    r#"rules as JSON, `[{"value":"portal-admins","role":"admin"},…]` (what the operator renders; any value, commas included), or `value=role,…`; roles `admin`, `member`; rules are tried in the order written"#,
);
pub const OIDC_DEFAULT_ROLE: Variable = provider(
    env::OIDC_DEFAULT_ROLE,
    "role for users no rule matches; unset → they are denied",
);

/// Generic OIDC provider `slot`'s (1-based) copy of one of the `OIDC_*` provider variables: the
/// variable itself for the first provider, `OIDC_<slot>_…` for providers 2 to
/// [`env::MAX_OIDC_PROVIDERS`], with the same default, bounds, secrecy and meaning.
pub fn for_oidc_slot(var: Variable, slot: usize) -> Variable {
    if slot <= 1 {
        return var;
    }
    let numbered = env::oidc_slot_var(var.name, slot);
    let name = env::all_rendered_variables()
        .iter()
        .copied()
        .find(|name| *name == numbered)
        .unwrap_or_else(|| panic!("{numbered} is not a variable of the contract"));
    Variable { name, ..var }
}

pub const AUTH_EXCLUSIVE_PROVIDER: Variable = provider(
    env::AUTH_EXCLUSIVE_PROVIDER,
    "only this provider is offered; `/login?providers=all` is the break-glass",
);

// SAML, instead of the providers.

pub const SAML_IDP_METADATA_URL: Variable = saml(
    env::SAML_IDP_METADATA_URL,
    "IdP metadata URL (https; plain http only to a loopback host)",
);
pub const SAML_IDP_METADATA: Variable = saml(
    env::SAML_IDP_METADATA,
    "inline IdP metadata XML instead (exactly one of the two)",
);
pub const SAML_SP_ENTITY_ID: Variable = saml(env::SAML_SP_ENTITY_ID, "SP entity ID").with_default(
    DefaultValue::Derived("`<public URL>/api/auth/saml/metadata`"),
);
pub const SAML_ROLE_ATTRIBUTE: Variable = saml(
    env::SAML_ROLE_ATTRIBUTE,
    "attribute (exact `Name`) holding the role values, one or several",
);
pub const SAML_ROLE_MAP: Variable = saml(
    env::SAML_ROLE_MAP,
    r#"rules `[{"value":…,"role":"admin"|"member"}]` (or `value=role,…`), first match in order wins"#,
);
pub const SAML_DEFAULT_ROLE: Variable = saml(
    env::SAML_DEFAULT_ROLE,
    "role of users no rule matches; unset → denied",
);
pub const SAML_ORG_ID: Variable = saml(
    env::SAML_ORG_ID,
    "organisation forwarded as `X-Forwarded-Org`",
);
pub const SAML_GROUPS_ATTRIBUTE: Variable = saml(
    env::SAML_GROUPS_ATTRIBUTE,
    "attribute (exact `Name`) holding the user's groups, one value per group",
)
.text_default(DEFAULT_GROUPS_CLAIM);
pub const SAML_ALLOW_SHA1: Variable = saml(
    env::SAML_ALLOW_SHA1,
    "`true`: also accept RSA-SHA1 signatures and SHA-1 digests (insecure, for a legacy IdP; `spec.saml.allowSha1`); unset or `false`: SHA-2 only, others refused with `saml_algorithm_refused`",
)
.text_default("false");
pub const SAML_SP_SIGNING_KEY: Variable = saml(
    env::SAML_SP_SIGNING_KEY,
    "the SP's signing key (PEM, PKCS#8 RSA, 2048 bits or more), which signs its answers to the IdP's single logout; with `SAML_SP_SIGNING_CERT`; the operator generates it (unset: answers unsigned, metadata without a key)",
)
.secret();
pub const SAML_SP_SIGNING_CERT: Variable = saml(
    env::SAML_SP_SIGNING_CERT,
    "its certificate (PEM), then any other one to publish in the SP metadata during a rotation",
);

// The sidecar's own settings.

/// `GATEHOUSE_SESSION_TTL`'s range.
pub const SESSION_TTL: DurationBounds = DurationBounds {
    min: Duration::from_secs(60),
    max: Duration::from_secs(90 * 86400),
    min_text: "1m",
    max_text: "90d",
};

/// `GATEHOUSE_CLOCK_SKEW`'s range.
pub const CLOCK_SKEW: DurationBounds = DurationBounds {
    min: Duration::ZERO,
    max: Duration::from_secs(600),
    min_text: "0s",
    max_text: "10m",
};

/// `GATEHOUSE_MAX_REQUEST_BODY` when unset: 64 MiB, room for ordinary uploads.
pub const DEFAULT_MAX_REQUEST_BODY: u64 = 64 << 20;

pub const GATEHOUSE_PUBLIC_URL: Variable = general(
    env::GATEHOUSE_PUBLIC_URL,
    "origin users reach the app at (`https://app.example.com`)",
)
.required();
pub const GATEHOUSE_COOKIE_SECRET: Variable = general(
    env::GATEHOUSE_COOKIE_SECRET,
    "comma-separated base64 32-byte keys; the first seals, all unseal",
)
.required()
.secret();
pub const GATEHOUSE_UPSTREAM: Variable =
    general(env::GATEHOUSE_UPSTREAM, "the app (plain HTTP, same pod)")
        .text_default("http://127.0.0.1:8080");
pub const GATEHOUSE_LISTEN: Variable =
    general(env::GATEHOUSE_LISTEN, "public listener").text_default("0.0.0.0:4180");
pub const GATEHOUSE_ADMIN_LISTEN: Variable = general(
    env::GATEHOUSE_ADMIN_LISTEN,
    "`/healthz`, `/readyz`, `/metrics`",
)
.text_default("0.0.0.0:9090");
pub const GATEHOUSE_SESSION_TTL: Variable = general(
    env::GATEHOUSE_SESSION_TTL,
    "session lifetime (humantime: `30m`, `12h`, `7d`; {bounds}; rendered from `spec.session.ttl`, whose own bounds are narrower)",
)
.text_default(DEFAULT_SESSION_TTL)
.duration_within(SESSION_TTL);
pub const GATEHOUSE_CONFIG: Variable = general(
    env::GATEHOUSE_CONFIG,
    "the SsoConfig's name (sessions are bound to it)",
)
.text_default("gatehouse");
pub const GATEHOUSE_NAMESPACE: Variable = general(
    env::GATEHOUSE_NAMESPACE,
    "its namespace (sessions are bound to it)",
)
.text_default("default");
pub const GATEHOUSE_CONFIG_UID: Variable = general(
    env::GATEHOUSE_CONFIG_UID,
    "the SsoConfig's UID (sessions are bound to it when set)",
);
pub const GATEHOUSE_PROVISIONING: Variable = general(
    env::GATEHOUSE_PROVISIONING,
    "`off` (no Kubernetes at all) or `kubernetes` (SsoUsers: provisioning and revocation)",
)
.text_default("off");
pub const GATEHOUSE_PROVISIONING_MODE: Variable = general(
    env::GATEHOUSE_PROVISIONING_MODE,
    "(kubernetes provisioning) `jit`, `preDeclared` (only users with an SsoUser may sign in) or `scim` (the identity provider pushes users over SCIM; only they and declared users may sign in)",
)
.text_default("jit");
pub const SCIM_TOKEN: Variable = general(
    env::SCIM_TOKEN,
    "(`GATEHOUSE_PROVISIONING_MODE=scim`, required there and refused otherwise) the bearer token the identity provider sends to the SCIM endpoint `<GATEHOUSE_PUBLIC_URL>/api/auth/scim/v2`; at least 16 characters",
)
.secret();
pub const SCIM_PREVIOUS_TOKEN: Variable = general(
    env::SCIM_PREVIOUS_TOKEN,
    "(`GATEHOUSE_PROVISIONING_MODE=scim`) the token being rotated out, still accepted; a `SCIM_PREVIOUS_TOKEN_FILE` that does not exist means none",
)
.secret();
pub const GATEHOUSE_ATTRIBUTE_MAPPINGS: Variable = general(
    env::GATEHOUSE_ATTRIBUTE_MAPPINGS,
    "`claim=attribute,…`: ID-token claims (SAML: attribute names) copied to the SsoUser's `status.attributes`",
);
pub const GATEHOUSE_AUTH_MODE: Variable =
    general(env::GATEHOUSE_AUTH_MODE, "`required` or `optional`").text_default("required");
pub const GATEHOUSE_APP_LOGIN_PATH: Variable = general(
    env::GATEHOUSE_APP_LOGIN_PATH,
    "path of the app's own login page",
);
pub const GATEHOUSE_SKIP_AUTH: Variable = general(
    env::GATEHOUSE_SKIP_AUTH,
    "comma-separated path prefixes that need no session",
);
pub const GATEHOUSE_PROVISION_HOOK: Variable = general(
    env::GATEHOUSE_PROVISION_HOOK,
    "app path that receives the user as JSON on each sign-in",
);
pub const GATEHOUSE_MACHINE_AUTH: Variable = general(
    env::GATEHOUSE_MACHINE_AUTH,
    "machine clients' token issuers (`spec.machineAuth`) as JSON in the SsoConfig's shape; unset: no bearer token is a credential ([access rules](access.md#machine-clients))",
);
pub const GATEHOUSE_ACCESS: Variable = general(
    env::GATEHOUSE_ACCESS,
    "the access rules (`spec.access`) as JSON in the SsoConfig's shape; unset: every signed-in user with a role reaches every path; set: each request is decided by the rules ([access rules](access.md))",
);
pub const GATEHOUSE_REVOCATION_STALENESS: Variable = general(
    env::GATEHOUSE_REVOCATION_STALENESS,
    "(kubernetes provisioning) how long the SsoUser watch may be broken before every session is refused ({bounds}; `spec.session.revocationStaleness`)",
)
.text_default("5m")
.duration_within(REVOCATION_STALENESS);
pub const GATEHOUSE_REVALIDATE_INTERVAL: Variable = general(
    env::GATEHOUSE_REVALIDATE_INTERVAL,
    "(OIDC) how often a session is re-validated at the IdP with its refresh token ({bounds}, `0s`: never; `spec.session.revalidateInterval`): a due session's request is served at once and starts the refresh in the background; `invalid_grant` or a role the IdP no longer gives ends the session on every replica, a new role or attributes apply at once. Sign-in asks for `offline_access` where the provider lists it; a session that asked and got no refresh token, or a due request without the refresh cookie, is refused when due; several replicas share each re-validation on the SsoUser (`status.sessionRenewals`)",
)
.text_default("15m")
.duration_within(REVALIDATE_INTERVAL);
pub const GATEHOUSE_REVALIDATE_GRACE: Variable = general(
    env::GATEHOUSE_REVALIDATE_GRACE,
    "(OIDC) how long a session due for re-validation is kept while the IdP cannot be reached, counted from when it became due; after that the session is refused and its open connections are cut ({bounds}; `spec.session.revalidateGrace`)",
)
.text_default("1h")
.duration_within(REVALIDATE_GRACE);
pub const GATEHOUSE_ENV_DIR: Variable = general(
    env::GATEHOUSE_ENV_DIR,
    "(set by injection) the env Secret mounted as files: secrets are read from there, and a changed non-secret value restarts the sidecar to apply it",
);
pub const GATEHOUSE_WORKER_THREADS: Variable = general(
    "GATEHOUSE_WORKER_THREADS",
    "ours: unset runs one event-loop thread (cheapest per request on a small share of CPU); `N` ({bounds}) runs a multi-threaded runtime with `N` workers (read before the rest of the configuration)",
)
.within(Bounds::Count {
    min: MIN_WORKER_THREADS,
    max: MAX_WORKER_THREADS,
});
/// Smallest accepted `GATEHOUSE_WORKER_THREADS` (read by [`crate::runtime`]).
pub const MIN_WORKER_THREADS: usize = 1;
/// Largest accepted `GATEHOUSE_WORKER_THREADS`.
pub const MAX_WORKER_THREADS: usize = 64;
pub const GATEHOUSE_CLOCK_SKEW: Variable = general(
    "GATEHOUSE_CLOCK_SKEW",
    "ours: tolerated clock skew for ID token `exp`/`iat`/`nbf` and SAML `NotBefore`/`NotOnOrAfter` ({bounds})",
)
.text_default("60s")
.duration_within(CLOCK_SKEW);
pub const GATEHOUSE_MAX_REQUEST_BODY: Variable = general(
    env::GATEHOUSE_MAX_REQUEST_BODY,
    "largest request body sent on to the app (`spec.upstream.maxRequestBody`), in bytes or with a `Ki`, `Mi` or `Gi` suffix; a larger one is answered 413",
)
.with_default(DefaultValue::Bytes(DEFAULT_MAX_REQUEST_BODY));
pub const GATEHOUSE_REQUEST_BODY_TIMEOUT: Variable = general(
    env::GATEHOUSE_REQUEST_BODY_TIMEOUT,
    "longest pause between two pieces of a request body ({bounds}; `spec.timeouts.requestBody`); a stalled upload is answered 408",
)
.text_default("60s")
.duration_within(IO_TIMEOUT);
pub const GATEHOUSE_SEND_TIMEOUT: Variable = general(
    env::GATEHOUSE_SEND_TIMEOUT,
    "longest a response may wait for the client to read ({bounds}; `spec.timeouts.send`); a client that stops reading is disconnected",
)
.text_default("60s")
.duration_within(IO_TIMEOUT);
pub const GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT: Variable = general(
    env::GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT,
    "longest wait for the app's response head once a request is sent ({bounds}; like nginx's `proxy_read_timeout`; `spec.timeouts.upstreamResponse`); unset waits as long as the client does (long polling); when it runs out the client gets 504",
)
.duration_within(IO_TIMEOUT);
pub const GATEHOUSE_LOG_FORMAT: Variable = general(
    "GATEHOUSE_LOG_FORMAT",
    "ours: `text` or `json` log lines on stderr",
)
.text_default("text");

/// Every variable, in the order of the page's tables.
pub const ALL: &[Variable] = &[
    OKTA_CLIENT_ID,
    OKTA_CLIENT_SECRET,
    OKTA_ISSUER,
    OKTA_ORG_ID,
    OKTA_GROUPS_CLAIM,
    ENTRA_CLIENT_ID,
    ENTRA_CLIENT_SECRET,
    ENTRA_TENANT_ID,
    ENTRA_ORG_ID,
    ENTRA_GROUPS_CLAIM,
    ENTRA_ISSUER,
    ENTRA_GRAPH_URL,
    ENTRA_GROUP_OVERAGE,
    OIDC_CLIENT_ID,
    OIDC_CLIENT_SECRET,
    OIDC_ISSUER,
    OIDC_ORG_ID,
    OIDC_GROUPS_CLAIM,
    OIDC_PROVIDER_ID,
    OIDC_PROVIDER_NAME,
    OIDC_ROLE_CLAIM,
    OIDC_ROLE_MAP,
    OIDC_DEFAULT_ROLE,
    AUTH_EXCLUSIVE_PROVIDER,
    SAML_IDP_METADATA_URL,
    SAML_IDP_METADATA,
    SAML_SP_ENTITY_ID,
    SAML_ROLE_ATTRIBUTE,
    SAML_ROLE_MAP,
    SAML_DEFAULT_ROLE,
    SAML_ORG_ID,
    SAML_GROUPS_ATTRIBUTE,
    SAML_ALLOW_SHA1,
    SAML_SP_SIGNING_KEY,
    SAML_SP_SIGNING_CERT,
    GATEHOUSE_PUBLIC_URL,
    GATEHOUSE_COOKIE_SECRET,
    GATEHOUSE_UPSTREAM,
    GATEHOUSE_LISTEN,
    GATEHOUSE_ADMIN_LISTEN,
    GATEHOUSE_SESSION_TTL,
    GATEHOUSE_CONFIG,
    GATEHOUSE_NAMESPACE,
    GATEHOUSE_CONFIG_UID,
    GATEHOUSE_PROVISIONING,
    GATEHOUSE_PROVISIONING_MODE,
    SCIM_TOKEN,
    SCIM_PREVIOUS_TOKEN,
    GATEHOUSE_ATTRIBUTE_MAPPINGS,
    GATEHOUSE_AUTH_MODE,
    GATEHOUSE_APP_LOGIN_PATH,
    GATEHOUSE_SKIP_AUTH,
    GATEHOUSE_PROVISION_HOOK,
    GATEHOUSE_ACCESS,
    GATEHOUSE_MACHINE_AUTH,
    GATEHOUSE_REVOCATION_STALENESS,
    GATEHOUSE_REVALIDATE_INTERVAL,
    GATEHOUSE_REVALIDATE_GRACE,
    GATEHOUSE_ENV_DIR,
    GATEHOUSE_WORKER_THREADS,
    GATEHOUSE_CLOCK_SKEW,
    GATEHOUSE_MAX_REQUEST_BODY,
    GATEHOUSE_REQUEST_BODY_TIMEOUT,
    GATEHOUSE_SEND_TIMEOUT,
    GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT,
    GATEHOUSE_LOG_FORMAT,
];

/// The catalogued variable called `name`.
pub fn find(name: &str) -> Option<&'static Variable> {
    ALL.iter().find(|v| v.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_tables_contiguous() {
        let mut names: Vec<&str> = ALL.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a variable is listed twice");
        let tables: Vec<Table> = ALL.iter().map(|v| v.table).collect();
        let mut runs = tables.clone();
        runs.dedup();
        assert_eq!(runs, [Table::Providers, Table::Saml, Table::General]);
    }

    #[test]
    fn a_meaning_writes_its_bounds_exactly_when_there_are_some() {
        for var in ALL {
            let placeholders = var.meaning.matches(BOUNDS_PLACEHOLDER).count();
            let expected = usize::from(var.bounds != Bounds::None);
            assert_eq!(placeholders, expected, "{}: {}", var.name, var.meaning);
        }
    }

    #[test]
    fn every_default_is_within_its_bounds() {
        for var in ALL {
            let Some(text) = var.default.text() else {
                continue;
            };
            if let Bounds::Duration(bounds) = var.bounds {
                let value = humantime::parse_duration(text).expect(var.name);
                assert!(bounds.contains(value), "{}: {text}", var.name);
            }
        }
    }

    #[test]
    fn sizes_are_shown_in_the_largest_unit_they_fill() {
        assert_eq!(GATEHOUSE_MAX_REQUEST_BODY.default.shown(), "`64Mi`");
        assert_eq!(byte_size_text(1 << 30), "1Gi");
        assert_eq!(byte_size_text(3 << 10), "3Ki");
        assert_eq!(byte_size_text(1536), "1536");
    }

    #[test]
    fn the_contracts_secrets_are_the_catalogues() {
        let mut ours: Vec<&str> = ALL.iter().filter(|v| v.secret).map(|v| v.name).collect();
        let mut contract = gatehouse_crds::env::SECRET_VARIABLES.to_vec();
        contract.sort_unstable();
        ours.sort_unstable();
        assert_eq!(ours, contract);
    }

    #[test]
    fn derived_defaults_say_what_the_readers_compute() {
        assert_eq!(
            ENTRA_ISSUER.default.shown(),
            format!("`{DEFAULT_ENTRA_ISSUER}`")
        );
        let urls = gatehouse_crds::SamlUrls::for_origin("<public URL>", None);
        assert_eq!(
            SAML_SP_ENTITY_ID.default.shown(),
            format!("`{}`", urls.entity_id)
        );
    }
}
