//! The fuzz targets without AFL: every seed (`corpus/<target>/`) and every crash kept from a fuzzing
//! run (`regressions/<target>/`, which `cargo xtask fuzz` fills) through the same functions the
//! fuzzer runs. A crash found by fuzzing stays a failing test here until it is fixed.

use std::path::{Path, PathBuf};

use gatehouse_auth::cookie::{Attempt, RefreshGrant, Session};
use gatehouse_auth::logout_token::{LogoutExpected, UnverifiedLogoutToken};
use gatehouse_auth::saml::verify::{Expected as SamlExpected, verify_response, verify_xml};
use gatehouse_auth::token::{Expected, Nonce, UnverifiedIdToken};
use gatehouse_fuzz::TARGETS;
use gatehouse_fuzz::fixtures::{
    CLIENT_ID, ISSUER, NONCE, NOW, REFRESH_SID, SAML_ACS, SAML_IDP, SAML_REQUESTS, SAML_SP, SKEW,
    binding, key_set, rings, saml_certs,
};

/// Regressions whose fix is pending: (target, file). Each is replayed by its own ignored test
/// below, which is un-ignored with the fix; every other seed and regression replays in
/// [`every_seed_and_regression_replays`].
const PENDING: [(&str, &str); 0] = [];

fn fuzz_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn is_pending(target: &str, file: &Path) -> bool {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    PENDING
        .iter()
        .any(|(t, f)| *t == target && name.as_deref() == Some(*f))
}

/// Runs `target` on each file; the files that panicked, with the message.
fn replay(target: fn(&[u8]), files: &[PathBuf]) -> Vec<String> {
    let mut failures = Vec::new();
    for file in files {
        let data = read(file);
        if let Err(panic) = std::panic::catch_unwind(|| target(&data)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    failures
}

#[test]
fn every_seed_and_regression_replays() {
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ has no seed");
        let regressions: Vec<PathBuf> = files(&fuzz_dir().join("regressions").join(name))
            .into_iter()
            .filter(|f| !is_pending(name, f))
            .collect();
        failures.extend(replay(target, &seeds));
        failures.extend(replay(target, &regressions));
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// Replays one regression by name (it is also among [`every_seed_and_regression_replays`]'s;
/// named here so its story is told beside it).
fn replay_regression(target: &str, file: &str) {
    let (_, run) = TARGETS
        .iter()
        .find(|(t, _)| *t == target)
        .expect("a known target");
    let path = fuzz_dir().join("regressions").join(target).join(file);
    let failures = replay(*run, &[path]);
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// `safe_redirect("/a/../%2Fevil.example")` was `/%2Fevil.example`, which decodes to
/// `//evil.example`: the decoded forms were checked before the URL's dot segments were removed,
/// so removing them could bring an encoded slash to the front. Found by AFL++ in
/// `cargo xtask fuzz --time 60` (first as `/a\xf7/../%2Fd`); fixed by judging the result again.
#[test]
fn redirect_dot_segment_moves_encoded_slash_to_front() {
    replay_regression("redirect", "dot-segment-moves-encoded-slash-to-front");
}

/// `safe_redirect("/%2525252F%2525252Fevil.example")` kept it: the sanitizer decoded four
/// times but checked only the first three decoded forms, and the fourth is `///evil.example`.
/// Found by reviewing the target's invariant (every decoded form looks local), not by AFL++;
/// fixed: a value still changing after four decodings is refused.
#[test]
fn redirect_four_times_encoded_slashes() {
    replay_regression("redirect", "four-times-encoded-slashes");
}

/// `OIDC_ROLE_MAP=[{"value":"x","role":"adm\n…"}]` (a JSON `\n` escape in the role) gave a
/// `ConfigError` whose line held a real newline: the role map's JSON error quotes the decoded
/// unknown role, so the value could add lines to the sidecar's start-up log. Found by AFL++ in the
/// config target (`cargo xtask fuzz --time 10`); fixed in ad653a2 (control characters escaped).
#[test]
fn config_role_map_error_stays_one_line() {
    replay_regression("config", "role-map-error-spans-lines");
}

#[test]
fn every_target_has_a_binary_and_every_binary_a_target() {
    let mut binaries: Vec<String> = files(&fuzz_dir().join("src/bin"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
        .collect();
    binaries.sort();
    let mut targets: Vec<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    targets.sort();
    assert_eq!(binaries, targets);
}

/// The generated seeds that are genuine must stay so (a change of the cookie or token format
/// would otherwise leave the fuzzer starting from inputs that fail the first check): regenerate
/// them with `cargo run -p gatehouse-fuzz --example seeds`.
#[test]
fn genuine_seeds_are_still_genuine() {
    let seed = |target: &str, name: &str| {
        let path = fuzz_dir().join("corpus").join(target).join(name);
        String::from_utf8(read(&path)).expect("UTF-8 seed")
    };
    let (r, b) = (rings(), binding());
    for name in ["gen-genuine", "gen-genuine-full"] {
        let value = seed("session_cookie", name);
        assert!(
            Session::unseal(&r.ring, &b, &value, NOW).is_some(),
            "{name}"
        );
    }
    let value = seed("attempt_cookie", "gen-genuine");
    assert!(Attempt::unseal(&r.ring, &b, &value, NOW).is_some());
    let value = seed("refresh_cookie", "gen-genuine");
    assert!(RefreshGrant::unseal(&r.ring, &b, &value, REFRESH_SID).is_some());

    for name in ["gen-genuine", "gen-genuine-azp"] {
        let raw = seed("id_token", name);
        let token = UnverifiedIdToken::parse(&raw).expect("header");
        let keys = key_set().matching(token.header().kid.as_deref(), token.header().alg);
        let expected = Expected {
            issuer: ISSUER,
            client_id: CLIENT_ID,
            nonce: Nonce::Sent(NONCE),
            skew: SKEW,
        };
        token
            .verify(&keys, &expected, NOW)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let raw = seed("logout_token", "gen-genuine");
    let token = UnverifiedLogoutToken::parse(&raw).expect("header");
    let keys = key_set().matching(token.header().kid.as_deref(), token.header().alg);
    let expected = LogoutExpected {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        skew: SKEW,
    };
    token.verify(&keys, &expected, NOW).expect("logout token");

    let saml = SamlExpected {
        idp_entity_id: SAML_IDP,
        certs: saml_certs(),
        sp_entity_id: SAML_SP,
        acs_url: SAML_ACS,
        request_ids: &SAML_REQUESTS,
        skew_secs: 60,
        now: NOW,
    };
    for name in [
        "gen-assertion-signed.xml",
        "gen-response-signed.xml",
        "gen-both-signed.xml",
    ] {
        verify_xml(&seed("saml_response", name), &saml).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    verify_response(&seed("saml_response", "gen-assertion-signed.b64"), &saml)
        .expect("base64 form value");
    for name in ["gen-unsigned.xml", "gen-wrapped.xml"] {
        assert!(
            verify_xml(&seed("saml_response", name), &saml).is_err(),
            "{name}"
        );
    }

    for file in files(&fuzz_dir().join("corpus/config")) {
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let vars = gatehouse_fuzz::config::variables(&read(&file));
        let lookup = |k: &str| vars.get(k).cloned();
        let result = gatehouse_sidecar::Config::from_source(&lookup);
        if name.starts_with("gen-valid") {
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    // The IdP's signed single logout query verifies and reads as the request it signed.
    let raw = seed("saml_logout_request", "gen-genuine-query");
    let query = gatehouse_auth::saml::logout::RedirectQuery::parse(&raw)
        .expect("parses")
        .expect("a SAMLRequest");
    query
        .verify_signature(saml_certs(), false)
        .expect("signed by the fixture IdP");
    let request = gatehouse_auth::saml::logout::parse_logout_request(
        &query.inflate().expect("inflates"),
        &gatehouse_auth::saml::logout::LogoutExpected {
            idp_entity_id: SAML_IDP,
            slo_url: gatehouse_fuzz::fixtures::SAML_SLO,
            skew_secs: 60,
            now: NOW,
        },
    )
    .expect("accepted");
    assert_eq!(request.session_indexes, ["idx-1"]);
}
