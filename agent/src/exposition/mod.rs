//! Exposition formats: parsing what scrape targets expose.

pub mod parse;
