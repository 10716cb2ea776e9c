//! Fuzz target `graph_page`: see [`gatehouse_fuzz::graph_page`].
gatehouse_fuzz::target_main!(graph_page);
