//! Coverage-guided fuzz targets for every input an attacker controls, on the stable toolchain.
//!
//! Each target is a plain function `fn(&[u8])` that calls the real parser and asserts the
//! invariants it keeps (a failed assertion or a panic is a crash). The binaries in `src/bin/`
//! run them under AFL++ (`cargo xtask fuzz`, which builds them with `cargo afl` and the `afl`
//! feature); without that feature each binary replays the files it is given, or stdin, once, so
//! the workspace builds, tests and lints this crate with no AFL installed. `tests/corpus.rs` runs
//! every seed (`corpus/<target>/`) and every crash kept as a regression (`regressions/<target>/`)
//! through the same functions.
//!
//! | target | input | invariants |
//! | --- | --- | --- |
//! | `session_cookie`, `attempt_cookie`, `refresh_cookie` | a cookie value, and a plaintext | [`cookies`] |
//! | `key_ring` | `GATEHOUSE_COOKIE_SECRET` | [`cookies::key_ring`] |
//! | `cookie_header` | `Cookie` header values, one per line | [`cookies::cookie_header`] |
//! | `id_token`, `logout_token` | a compact JWS, and claims signed here | [`tokens`] |
//! | `jwks` | a JWKS document | [`tokens::jwks`] |
//! | `claims` | verified claims (role mapping, attributes) | [`tokens::claims`] |
//! | `saml_response` | SAML Response XML, or its base64 form value | [`saml::saml_response`] |
//! | `saml_logout_request` | the IdP's single logout query, or LogoutRequest XML | [`saml::saml_logout_request`] |
//! | `canonical_path` | a request path (line 2: a skip-auth prefix) | [`paths::canonical_path`] |
//! | `redirect` | an `rd=` value | [`paths::redirect`] |
//! | `config` | `NAME=VALUE` lines of the sidecar's environment | [`config::config`] |
//! | `graph_page` | a Microsoft Graph `transitiveMemberOf` page | [`graph::graph_page`] |
//! | `scim_patch` | a SCIM PATCH or POST body, a filter, an attribute list | [`scim::scim_patch`] |
#![forbid(unsafe_code)]

pub mod config;
pub mod cookies;
pub mod fixtures;
pub mod graph;
pub mod paths;
pub mod saml;
pub mod scim;
pub mod tokens;

pub use config::config;
pub use cookies::{attempt_cookie, cookie_header, key_ring, refresh_cookie, session_cookie};
pub use graph::graph_page;
pub use paths::{canonical_path, redirect};
pub use saml::{saml_logout_request, saml_response};
pub use scim::scim_patch;
pub use tokens::{claims, id_token, jwks, logout_token};

/// A fuzz target: a parser's invariants on one input.
pub type Target = fn(&[u8]);

/// Every target by name (the name of its binary and of its corpus directory).
pub const TARGETS: [(&str, Target); 16] = [
    ("session_cookie", session_cookie),
    ("attempt_cookie", attempt_cookie),
    ("refresh_cookie", refresh_cookie),
    ("key_ring", key_ring),
    ("cookie_header", cookie_header),
    ("id_token", id_token),
    ("logout_token", logout_token),
    ("jwks", jwks),
    ("claims", claims),
    ("saml_response", saml_response),
    ("saml_logout_request", saml_logout_request),
    ("canonical_path", canonical_path),
    ("redirect", redirect),
    ("config", config),
    ("graph_page", graph_page),
    ("scim_patch", scim_patch),
];

/// Without AFL: runs `target` once on each file named on the command line, or on stdin when
/// none is, so a crash file can be replayed under a debugger:
/// `cargo run -p gatehouse-fuzz --bin redirect -- fuzz/regressions/redirect/<file>`.
pub fn replay(name: &str, target: Target) {
    let files: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    if files.is_empty() {
        let mut data = Vec::new();
        if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut data) {
            eprintln!("{name}: reading stdin: {e}");
            std::process::exit(2);
        }
        target(&data);
        eprintln!("{name}: stdin: ok");
        return;
    }
    for file in files {
        match std::fs::read(&file) {
            Ok(data) => {
                target(&data);
                eprintln!("{name}: {}: ok", file.display());
            }
            Err(e) => {
                eprintln!("{name}: {}: {e}", file.display());
                std::process::exit(2);
            }
        }
    }
}

/// The `main` of a target binary: the AFL++ persistent loop with the `afl` feature, else
/// [`replay`].
#[macro_export]
macro_rules! target_main {
    ($target:ident) => {
        #[cfg(feature = "afl")]
        fn main() {
            afl::fuzz!(|data: &[u8]| {
                $crate::$target(data);
            });
        }

        #[cfg(not(feature = "afl"))]
        fn main() {
            $crate::replay(stringify!($target), $crate::$target);
        }
    };
}
