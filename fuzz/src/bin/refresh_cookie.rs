//! Fuzz target `refresh_cookie`: see [`gatehouse_fuzz::refresh_cookie`].
gatehouse_fuzz::target_main!(refresh_cookie);
