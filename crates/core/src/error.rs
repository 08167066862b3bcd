//! Config errors that say where (a JSON path) and what.

/// A tenant config was rejected. Nothing of it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the offending value, e.g. `experiments[2].variants[1].weight`; empty for the
    /// document itself.
    pub path: String,
    /// What is wrong with it.
    pub kind: ConfigErrorKind,
}

/// The ways a tenant config can be wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// Not JSON, a wrong type, a missing or unknown field (the parser's message).
    Syntax(String),
    /// `schema` is not one this engine reads.
    UnsupportedSchema(String),
    /// An experiment's variant weights do not add up to 10000 basis points.
    WeightsSum {
        /// What they add up to.
        sum: u64,
    },
    /// A key appears twice where keys must be unique.
    DuplicateKey(String),
    /// Two experiments claim overlapping buckets of one layer.
    LayerOverlap {
        /// Key of the experiment already holding part of the range.
        other: String,
        /// Its range.
        other_range: [u32; 2],
    },
    /// A basis-point value outside `[0, 10000]`.
    OutOfRange {
        /// The rejected value.
        value: u64,
    },
    /// A path pattern that cannot be compiled.
    InvalidPathPattern(String),
    /// A targeting condition that cannot be compiled (bad operator, bad regex, ...).
    InvalidCondition(String),
    /// A `winner` that is not one of the experiment's variants.
    UnknownWinner(String),
    /// A reference to a layer that `layers` does not declare.
    UnknownLayer(String),
    /// Any other invalid value, with the reason.
    Invalid(String),
}

impl std::fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigErrorKind::Syntax(message) => f.write_str(message),
            ConfigErrorKind::UnsupportedSchema(found) => {
                write!(
                    f,
                    "unsupported schema {found}; this engine reads schema {}",
                    crate::config::SUPPORTED_SCHEMA
                )
            }
            ConfigErrorKind::WeightsSum { sum } => {
                write!(f, "weights sum to {sum}, expected 10000")
            }
            ConfigErrorKind::DuplicateKey(key) => write!(f, "duplicate key `{key}`"),
            ConfigErrorKind::LayerOverlap { other, other_range } => write!(
                f,
                "range overlaps experiment `{other}`, which owns [{}, {}) of the layer",
                other_range[0], other_range[1]
            ),
            ConfigErrorKind::OutOfRange { value } => {
                write!(f, "{value} is out of range: basis points must be within 0..=10000")
            }
            ConfigErrorKind::InvalidPathPattern(reason) => {
                write!(f, "invalid path pattern: {reason}")
            }
            ConfigErrorKind::InvalidCondition(reason) => {
                write!(f, "invalid targeting condition: {reason}")
            }
            ConfigErrorKind::UnknownWinner(key) => {
                write!(f, "winner `{key}` is not a variant of this experiment")
            }
            ConfigErrorKind::UnknownLayer(key) => {
                write!(f, "layer `{key}` is not declared in `layers`")
            }
            ConfigErrorKind::Invalid(reason) => f.write_str(reason),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.path, self.kind)
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, kind: ConfigErrorKind) -> ConfigError {
        ConfigError {
            path: path.into(),
            kind,
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::new(path, ConfigErrorKind::Invalid(reason.into()))
    }
}
