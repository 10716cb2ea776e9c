//! Gatehouse auth sidecar library.
#![forbid(unsafe_code)]
