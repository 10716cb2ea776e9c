//! Fuzz target `claims`: see [`gatehouse_fuzz::claims`].
gatehouse_fuzz::target_main!(claims);
