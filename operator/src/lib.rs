//! Gatehouse operator library.
#![forbid(unsafe_code)]
pub mod inject;
pub mod webhook;
