//! Fuzz target `redirect`: see [`gatehouse_fuzz::redirect`].
gatehouse_fuzz::target_main!(redirect);
