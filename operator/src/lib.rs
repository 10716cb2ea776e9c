//! Gatehouse operator library.
#![forbid(unsafe_code)]
