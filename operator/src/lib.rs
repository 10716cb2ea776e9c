//! Gatehouse operator: the SsoConfig and SsoUser controllers, the pure pipeline they share with
//! the offline `render` command (validate → resolve Secrets → build the owned objects), leader
//! election, and the command line.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod conditions;
pub mod controllers;
pub mod desired;
pub mod error;
pub mod inject;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod render;
pub mod secrets;
pub mod sp_key;
pub mod telemetry;
pub mod validate;
pub mod webhook;

pub use error::{Error, Result};
