//! A suite of `cargo xtask test` and how it ended: [`crate::test`] runs them, and the container
//! suite ([`crate::containers`]) reports its [`Outcome`] like the others.

use anyhow::Result;

/// How a suite ended.
#[derive(Debug)]
pub enum Outcome {
    Passed,
    Failed(String),
    /// Did not run, and why.
    NotRun(String),
}

/// One step of `cargo xtask test`.
pub struct Suite {
    /// Short name for `--skip`.
    pub key: &'static str,
    pub name: &'static str,
    pub run: Box<dyn Fn() -> Result<Outcome>>,
}

impl std::fmt::Debug for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suite").field("name", &self.name).finish()
    }
}
