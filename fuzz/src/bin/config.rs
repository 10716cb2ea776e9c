//! Fuzz target `config`: see [`gatehouse_fuzz::config`].
gatehouse_fuzz::target_main!(config);
