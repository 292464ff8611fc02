//! relabel
