//! OpenMetrics family rules Prometheus does not enforce, checked in strict mode only.
//!
//! A family is a `# TYPE`/`# HELP`/`# UNIT` header plus the samples that follow it; a sample
//! whose name does not start with the current family's name opens a new family of unknown
//! type. Families must not interleave (a closed family may not reappear), metadata comes once
//! and before the samples, and each sample name carries a suffix its type allows.

use std::collections::HashSet;

use super::Series;
use super::error::{ParseError, ParseErrorKind};
use super::lex::Cursor;
use crate::model::MetricType;

#[derive(Default)]
pub(crate) struct FamilyValidator {
    current: Option<Family>,
    closed: HashSet<String>,
}

struct Family {
    name: String,
    kind: MetricType,
    has_samples: bool,
    seen_help: bool,
    seen_type: bool,
    seen_unit: bool,
}

impl Family {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            kind: MetricType::Unknown,
            has_samples: false,
            seen_help: false,
            seen_type: false,
            seen_unit: false,
        }
    }
}

/// Sample-name suffixes a family type allows (`""` is the bare family name).
fn suffixes(kind: MetricType) -> &'static [&'static str] {
    match kind {
        MetricType::Counter => &["_total", "_created"],
        MetricType::Histogram => &["_bucket", "_count", "_sum", "_created"],
        MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
        MetricType::Summary => &["", "_count", "_sum", "_created"],
        MetricType::Info => &["_info"],
        MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[""],
    }
}

const ALL_SUFFIXES: &[&str] = &[
    "", "_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info",
];

impl FamilyValidator {
    /// Switches to family `name`, closing the current one; reopening a closed family is the
    /// interleaving OpenMetrics forbids.
    fn open(&mut self, c: &Cursor<'_>, at: usize, name: &str) -> Result<(), ParseError> {
        if self.closed.contains(name) {
            return Err(c.err(at, ParseErrorKind::InterleavedFamily(name.to_owned())));
        }
        if let Some(old) = self.current.take() {
            self.closed.insert(old.name);
        }
        self.current = Some(Family::new(name));
        Ok(())
    }

    pub fn metadata(
        &mut self,
        c: &Cursor<'_>,
        at: usize,
        name: &str,
        keyword: &'static str,
    ) -> Result<(), ParseError> {
        if self.current.as_ref().is_none_or(|f| f.name != name) {
            self.open(c, at, name)?;
        }
        let Some(f) = self.current.as_mut() else {
            return Ok(());
        };
        if f.has_samples {
            return Err(c.err(at, ParseErrorKind::MetadataAfterSamples(name.to_owned())));
        }
        let seen = match keyword {
            "HELP" => &mut f.seen_help,
            "TYPE" => &mut f.seen_type,
            _ => &mut f.seen_unit,
        };
        if *seen {
            return Err(c.err(
                at,
                ParseErrorKind::DuplicateMetadata {
                    what: keyword,
                    family: name.to_owned(),
                },
            ));
        }
        *seen = true;
        Ok(())
    }

    pub fn set_kind(&mut self, kind: MetricType) {
        if let Some(f) = self.current.as_mut() {
            f.kind = kind;
        }
    }

    pub fn series(&mut self, c: &Cursor<'_>, at: usize, s: &Series<'_>) -> Result<(), ParseError> {
        let name: &str = &s.name;
        // Same family when the name is the family name plus a suffix; a suffix of the wrong
        // type is an error, anything else opens a new family of unknown type.
        let belongs = self.current.as_ref().is_some_and(|f| {
            name.strip_prefix(f.name.as_str())
                .is_some_and(|rest| ALL_SUFFIXES.contains(&rest))
        });
        if !belongs {
            self.open(c, at, name)?;
        }
        let Some(f) = self.current.as_mut() else {
            return Ok(());
        };
        f.has_samples = true;
        let suffix = &name[f.name.len()..];
        if !suffixes(f.kind).contains(&suffix) {
            return Err(c.err(
                at,
                ParseErrorKind::SampleNotInFamily {
                    name: name.to_owned(),
                    family: f.name.clone(),
                    kind: f.kind.openmetrics(),
                },
            ));
        }
        let invalid = |msg: String| Err(c.err(at, ParseErrorKind::InvalidFamilySample(msg)));
        match (f.kind, suffix) {
            (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket")
                if s.labels.get("le").is_none() =>
            {
                invalid(format!("histogram bucket {name:?} has no \"le\" label"))
            }
            (MetricType::Summary, "") if s.labels.get("quantile").is_none() => {
                invalid(format!("summary sample {name:?} has no \"quantile\" label"))
            }
            (MetricType::StateSet, _) if s.labels.get(&f.name).is_none() => invalid(format!(
                "stateset sample {name:?} has no {:?} label",
                f.name
            )),
            (MetricType::StateSet, _) if s.value != 0.0 && s.value != 1.0 => invalid(format!(
                "stateset sample {name:?} has value {}, not 0 or 1",
                s.value
            )),
            (MetricType::Info, _) if s.value != 1.0 => {
                invalid(format!("info sample {name:?} has value {}, not 1", s.value))
            }
            (MetricType::Counter, "_total") if s.value.is_nan() || s.value < 0.0 => {
                invalid(format!(
                    "counter total {name:?} is {}, not a non-negative number",
                    s.value
                ))
            }
            _ => Ok(()),
        }
    }

    pub fn finish(&mut self, _c: &Cursor<'_>) -> Result<(), ParseError> {
        Ok(())
    }
}
