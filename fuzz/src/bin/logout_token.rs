//! Fuzz target `logout_token`: see [`gatehouse_fuzz::logout_token`].
gatehouse_fuzz::target_main!(logout_token);
