//! Fuzz target `canonical_path`: see [`gatehouse_fuzz::canonical_path`].
gatehouse_fuzz::target_main!(canonical_path);
