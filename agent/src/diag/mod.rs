//! Diagnostics for people: commands that explain what the agent sees.

pub mod check;
pub mod relabel;
