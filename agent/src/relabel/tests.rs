//! Conformance tests: relabeling as Prometheus does it.
