use std::fmt;

/// A configuration problem, located as precisely as the input allows: file, line, column and
/// the key path (`cgroup.interval`, `scrape_configs[2].relabel_configs[0].regex`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Box<Located>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Key path, empty for the document itself.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl ConfigError {
    /// The located details, when the error is about the content rather than reading the file.
    pub fn located(&self) -> Option<&Located> {
        match self {
            Self::Invalid(l) => Some(l),
            Self::Read { .. } => None,
        }
    }
}
