//! Shared fixtures for the integration tests (cgroups, processes, agent handles).

pub mod apiserver;
