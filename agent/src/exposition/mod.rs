//! The Prometheus text format 0.0.4 and OpenMetrics 1.0: parsing what scrape targets expose,
//! encoding what `/metrics` serves.

pub mod encode;
pub mod parse;
