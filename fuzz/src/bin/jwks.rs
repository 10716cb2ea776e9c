//! Fuzz target `jwks`: see [`gatehouse_fuzz::jwks`].
gatehouse_fuzz::target_main!(jwks);
