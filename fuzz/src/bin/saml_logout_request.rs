//! Fuzz target `saml_logout_request`: see [`gatehouse_fuzz::saml_logout_request`].
gatehouse_fuzz::target_main!(saml_logout_request);
