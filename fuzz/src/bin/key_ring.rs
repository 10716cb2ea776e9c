//! Fuzz target `key_ring`: see [`gatehouse_fuzz::key_ring`].
gatehouse_fuzz::target_main!(key_ring);
