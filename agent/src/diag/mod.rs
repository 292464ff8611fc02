//! Diagnostics for people: commands that explain what the agent sees.

pub mod relabel;
