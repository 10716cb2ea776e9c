//! Fuzz target `session_cookie`: see [`gatehouse_fuzz::session_cookie`].
gatehouse_fuzz::target_main!(session_cookie);
