//! The numbered provider variables and the secret names of the contract.

use super::*;

#[test]
fn numbered_provider_variables_name_their_slot_and_read_back() {
    assert_eq!(oidc_slot_var(OIDC_CLIENT_ID, 1), "OIDC_CLIENT_ID");
    assert_eq!(oidc_slot_var(OIDC_CLIENT_ID, 2), "OIDC_2_CLIENT_ID");
    assert_eq!(oidc_slot_var(OIDC_ROLE_MAP, 16), "OIDC_16_ROLE_MAP");
    for slot in 2..=MAX_OIDC_PROVIDERS {
        for name in OIDC_PROVIDER_VARIABLES {
            let numbered = oidc_slot_var(name, slot);
            assert_eq!(oidc_slot_of(&numbered), Some(((*name).to_owned(), slot)));
        }
    }
    // Plain names, slot 1 spelled out, leading zeros, slots past the limit and variables
    // that are not per provider are not numbered provider variables.
    for name in [
        "OIDC_CLIENT_ID",
        "OIDC_1_CLIENT_ID",
        "OIDC_02_CLIENT_ID",
        "OIDC_17_CLIENT_ID",
        "OIDC_2_FOO",
        "OKTA_2_CLIENT_ID",
    ] {
        assert_eq!(oidc_slot_of(name), None, "{name}");
    }
}

#[test]
fn every_providers_client_secret_is_a_secret() {
    assert!(is_secret("OIDC_CLIENT_SECRET"));
    assert!(is_secret("OIDC_2_CLIENT_SECRET"));
    assert!(is_secret("OIDC_16_CLIENT_SECRET"));
    assert!(!is_secret("OIDC_2_CLIENT_ID"));
    let all = all_rendered_variables();
    assert_eq!(
        all.len(),
        RENDERED_VARIABLES.len() + (MAX_OIDC_PROVIDERS - 1) * OIDC_PROVIDER_VARIABLES.len()
    );
    assert!(all.contains(&"OIDC_16_GROUPS_CLAIM"));
}

#[test]
fn the_scim_tokens_are_rendered_secrets() {
    for name in [SCIM_TOKEN, SCIM_PREVIOUS_TOKEN] {
        assert!(is_secret(name), "{name}");
        assert!(all_rendered_variables().contains(&name), "{name}");
    }
}
