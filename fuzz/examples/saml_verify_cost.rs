//! The SAML Response verification alone, in a loop, for profiling the ACS (issue 27): the
//! genuine seed with a signed Response and a signed Assertion, checked as the sidecar checks
//! it. `cargo build --release -p gatehouse-fuzz --example saml_verify_cost`, then
//! `perf record --call-graph dwarf target/release/examples/saml_verify_cost 300` (see
//! docs/benchmarks.md, "SAML ACS profile"). Prints the mean time per verification.

use gatehouse_auth::saml::verify::verify_xml;
use gatehouse_fuzz::saml::expected;

const SEED: &str = include_str!("../corpus/saml_response/gen-both-signed.xml");

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let expected = expected();
    if let Err(e) = verify_xml(SEED, &expected) {
        eprintln!("the genuine seed was refused: {e}");
        std::process::exit(1);
    }
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        if verify_xml(SEED, &expected).is_err() {
            eprintln!("the genuine seed was refused");
            std::process::exit(1);
        }
    }
    println!(
        "{} bytes: {:?} per verification ({rounds} rounds)",
        SEED.len(),
        started.elapsed() / rounds.max(1)
    );
}
