//! Fuzz target `scim_patch`: see [`gatehouse_fuzz::scim_patch`].
gatehouse_fuzz::target_main!(scim_patch);
