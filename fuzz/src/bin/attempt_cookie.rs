//! Fuzz target `attempt_cookie`: see [`gatehouse_fuzz::attempt_cookie`].
gatehouse_fuzz::target_main!(attempt_cookie);
