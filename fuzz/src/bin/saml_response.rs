//! Fuzz target `saml_response`: see [`gatehouse_fuzz::saml_response`].
gatehouse_fuzz::target_main!(saml_response);
