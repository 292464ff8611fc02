//! The Prometheus text format 0.0.4 and OpenMetrics 1.0: encoding (for `/metrics`) and parsing
//! (what scrape targets expose).

pub mod encode;
pub mod parse;
