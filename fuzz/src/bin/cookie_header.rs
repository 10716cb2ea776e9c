//! Fuzz target `cookie_header`: see [`gatehouse_fuzz::cookie_header`].
gatehouse_fuzz::target_main!(cookie_header);
