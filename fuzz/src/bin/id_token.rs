//! Fuzz target `id_token`: see [`gatehouse_fuzz::id_token`].
gatehouse_fuzz::target_main!(id_token);
