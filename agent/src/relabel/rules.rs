//! Compiled rule lists and their evaluation (Prometheus `relabel.ProcessBuilder` semantics).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::LazyLock;

use md5::{Digest, Md5};
use regex::CaptureLocations;
use thread_local::ThreadLocal;

use super::case;
use super::config::{Action, DEFAULT_REPLACEMENT, DEFAULT_SEPARATOR, RelabelConfig};
use super::pattern::{self, PatternError};
use super::template::Template;
use crate::model::{Label, Labels, LabelsBuilder, Symbol, intern};

/// Which label names are valid: decides load-time checks of `target_label`/`replacement` and
/// whether a templated `target_label` that expands to a name is used at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameValidation {
    /// Prometheus 3 default: any non-empty UTF-8 string.
    #[default]
    Utf8,
    /// Prometheus 2: `[a-zA-Z_][a-zA-Z0-9_]*`.
    Legacy,
}

impl NameValidation {
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => is_legacy_label_name(name),
        }
    }

    /// A `target_label` or labelmap `replacement` that may contain `$` references.
    fn is_valid_name_with_vars(self, name: &str) -> bool {
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => LEGACY_NAME_WITH_VARS
                .as_ref()
                .is_some_and(|re| re.is_match(name)),
        }
    }
}

fn is_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Prometheus's legacy check for names with `$` variables (Go `\w` is ASCII).
static LEGACY_NAME_WITH_VARS: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$")
        .ok()
});

/// A rule that Prometheus would refuse to load, with the rule's position in its list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relabel rule {index} (action {action}): {kind}")]
pub struct RelabelError {
    /// 0-based position of the rule in the list given to [`Rules::compile`].
    pub index: usize,
    pub action: Action,
    pub kind: RuleError,
}

/// What is wrong with a rule. Messages carry the meaning of Prometheus's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{0:?} is not a valid label name in 'source_labels'")]
    InvalidSourceLabel(String),
    #[error("invalid 'regex' {pattern:?}: {source}")]
    InvalidRegex {
        pattern: String,
        source: PatternError,
    },
    #[error("relabel configuration for hashmod requires non-zero modulus")]
    HashModZeroModulus,
    #[error("relabel configuration for {0} action requires 'target_label' value")]
    MissingTargetLabel(Action),
    #[error("{target:?} is invalid 'target_label' for {action} action")]
    InvalidTargetLabel { target: String, action: Action },
    #[error("'replacement' can not be set for {0} action")]
    ReplacementNotAllowed(Action),
    #[error("{0:?} is invalid 'replacement' for labelmap action")]
    InvalidLabelMapReplacement(String),
    #[error("{0} action requires only 'source_labels' and 'target_label', and no other fields")]
    EqualActionExtraFields(Action),
    #[error("{0} action requires only 'regex', and no other fields")]
    LabelFilterExtraFields(Action),
}

/// How a rule's regex is matched. The common Prometheus patterns skip the regex engine.
#[derive(Debug)]
enum Matcher {
    /// `(.*)` (the default) or `.*`: matches everything; group 1 (if any) is the whole value.
    Any {
        capturing: bool,
    },
    /// `(.+)` or `.+`: matches any non-empty value.
    NonEmpty {
        capturing: bool,
    },
    /// A pattern without metacharacters: string equality.
    Literal(Box<str>),
    Regex(Box<RegexMatcher>),
}

/// A matcher with what templates need to resolve group references.
struct CompiledMatcher {
    matcher: Matcher,
    group_count: usize,
    names: Vec<(String, usize)>,
}

#[derive(Debug)]
struct RegexMatcher {
    regex: regex::Regex,
    /// Per-thread capture slots, so matching with groups does not allocate.
    locations: ThreadLocal<RefCell<CaptureLocations>>,
}

impl Matcher {
    fn compile(pattern: Option<&str>) -> Result<CompiledMatcher, PatternError> {
        let simple = |matcher, group_count| CompiledMatcher {
            matcher,
            group_count,
            names: Vec::new(),
        };
        let Some(pattern) = pattern else {
            return Ok(simple(Matcher::Any { capturing: true }, 1));
        };
        match pattern {
            "(.*)" => return Ok(simple(Matcher::Any { capturing: true }, 1)),
            ".*" => return Ok(simple(Matcher::Any { capturing: false }, 0)),
            "(.+)" => return Ok(simple(Matcher::NonEmpty { capturing: true }, 1)),
            ".+" => return Ok(simple(Matcher::NonEmpty { capturing: false }, 0)),
            _ => {}
        }
        if !pattern.contains(|c| r"\.+*?()|[]{}^$".contains(c)) {
            return Ok(simple(Matcher::Literal(pattern.into()), 0));
        }
        let compiled = pattern::compile(pattern)?;
        Ok(CompiledMatcher {
            matcher: Matcher::Regex(Box::new(RegexMatcher {
                regex: compiled.regex,
                locations: ThreadLocal::new(),
            })),
            group_count: compiled.group_count,
            names: compiled.names,
        })
    }

    fn is_match(&self, hay: &str) -> bool {
        match self {
            Matcher::Any { .. } => true,
            Matcher::NonEmpty { .. } => !hay.is_empty(),
            Matcher::Literal(lit) => **lit == *hay,
            Matcher::Regex(m) => m.regex.is_match(hay),
        }
    }

    /// Runs `f` with the match's groups when `hay` matches. `whole` tells `f` whether the
    /// match covers all of `hay` (always, unless the pattern escapes the anchoring).
    fn with_captures<'h, R>(
        &self,
        hay: &'h str,
        f: impl FnOnce(&dyn Fn(usize) -> Option<&'h str>, bool) -> R,
    ) -> Option<R> {
        let whole_and_first =
            |capturing: bool| move |i: usize| (i == 0 || (capturing && i == 1)).then_some(hay);
        match self {
            Matcher::Any { capturing } => Some(f(&whole_and_first(*capturing), true)),
            Matcher::NonEmpty { capturing } => {
                (!hay.is_empty()).then(|| f(&whole_and_first(*capturing), true))
            }
            Matcher::Literal(lit) => (**lit == *hay).then(|| f(&whole_and_first(false), true)),
            Matcher::Regex(m) => {
                let cell = m
                    .locations
                    .get_or(|| RefCell::new(m.regex.capture_locations()));
                let mut fresh;
                let mut borrowed;
                let locs: &mut CaptureLocations = match cell.try_borrow_mut() {
                    Ok(b) => {
                        borrowed = b;
                        &mut borrowed
                    }
                    Err(_) => {
                        fresh = m.regex.capture_locations();
                        &mut fresh
                    }
                };
                let found = m.regex.captures_read(locs, hay)?;
                let whole = found.start() == 0 && found.end() == hay.len();
                let locs = &*locs;
                Some(f(&|i| locs.get(i).map(|(s, e)| &hay[s..e]), whole))
            }
        }
    }

    /// Go's `ReplaceAllString(hay, template)` into `out`; false when nothing matched.
    fn replace_all_into(&self, hay: &str, template: &Template, out: &mut String) -> bool {
        let done = self.with_captures(hay, |group, whole| {
            if whole {
                template.expand_into(out, group);
            }
            whole
        });
        match (done, self) {
            (None, _) => false,
            (Some(true), _) => true,
            (Some(false), Matcher::Regex(m)) => {
                // The pattern broke out of the `^(?s:…)$` wrapping (e.g. `a)|(b`), so it can
                // match several pieces of the name: replace each, keep the text between.
                let mut last = 0;
                for caps in m.regex.captures_iter(hay) {
                    let Some(whole) = caps.get(0) else { continue };
                    out.push_str(&hay[last..whole.start()]);
                    template.expand_into(out, |i| caps.get(i).map(|g| g.as_str()));
                    last = whole.end();
                }
                out.push_str(&hay[last..]);
                true
            }
            (Some(false), _) => true,
        }
    }
}

/// One compiled rule.
#[derive(Debug)]
struct Rule {
    action: Action,
    sources: Box<[Box<str>]>,
    separator: Box<str>,
    matcher: Matcher,
    /// Prometheus's replace fast path applies: default regex and no `$` in either template.
    replace_fast_path: bool,
    target: Template,
    /// `target_label` as a name, when it needs no expansion.
    target_name: Option<Symbol>,
    replacement: Template,
    /// `replacement` when it needs no expansion.
    replacement_value: Option<Symbol>,
    /// A replace whose result is the single source label's value unchanged (`$1` with `(.*)`,
    /// the operator's `replace(src=[X], tgt=Y)`): the value's symbol is reused, no interning.
    copies_source: bool,
    modulus: u64,
    scheme: NameValidation,
}

/// Scratch space reused across rules and calls on one thread.
#[derive(Default)]
struct Scratch {
    joined: String,
    target: String,
    value: String,
    snapshot: Vec<Label>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// An ordered, compiled list of relabel rules. Compile once, share (it is `Send + Sync`), and
/// apply to as many label sets as needed.
#[derive(Debug, Default)]
pub struct Rules {
    rules: Box<[Rule]>,
}

impl Rules {
    /// Validates and compiles `configs` the way Prometheus 3 loads them (UTF-8 label names).
    pub fn compile(configs: &[RelabelConfig]) -> Result<Rules, RelabelError> {
        Rules::compile_with(configs, NameValidation::default())
    }

    /// Like [`compile`](Self::compile) with an explicit label-name validation scheme.
    pub fn compile_with(
        configs: &[RelabelConfig],
        scheme: NameValidation,
    ) -> Result<Rules, RelabelError> {
        let rules = configs
            .iter()
            .enumerate()
            .map(|(index, cfg)| {
                Rule::compile(cfg, scheme).map_err(|kind| RelabelError {
                    index,
                    action: cfg.action,
                    kind,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rules {
            rules: rules.into_boxed_slice(),
        })
    }

    /// No rules: applying is a no-op that keeps everything.
    pub fn empty() -> Rules {
        Rules::default()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Runs the rules in order on `labels`. Returns false as soon as a rule drops the set;
    /// otherwise `labels` holds the result (empty values already removed).
    pub fn apply(&self, labels: &mut LabelsBuilder) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.apply_with(labels, &mut scratch),
            // Only reachable if a rule re-entered relabeling on this thread; stay correct.
            Err(_) => self.apply_with(labels, &mut Scratch::default()),
        })
    }

    fn apply_with(&self, labels: &mut LabelsBuilder, scratch: &mut Scratch) -> bool {
        let keep = self.rules.iter().all(|rule| rule.apply(labels, scratch));
        // Do not keep symbols alive from the scratch space (the interner frees unused ones).
        scratch.snapshot.clear();
        keep
    }

    /// Convenience: relabels a copy of `labels`; `None` when dropped.
    pub fn process(&self, labels: &Labels) -> Option<Labels> {
        if self.rules.is_empty() {
            return Some(labels.clone());
        }
        let mut builder = labels.builder();
        self.apply(&mut builder).then(|| builder.build())
    }
}

impl Rule {
    fn compile(cfg: &RelabelConfig, scheme: NameValidation) -> Result<Rule, RuleError> {
        let action = cfg.action;
        let sources = cfg.source_labels.as_deref().unwrap_or_default();
        if let Some(bad) = sources.iter().find(|s| !scheme.is_valid_label_name(s)) {
            return Err(RuleError::InvalidSourceLabel(bad.clone()));
        }
        let CompiledMatcher {
            matcher,
            group_count,
            names,
        } = Matcher::compile(cfg.regex.as_deref()).map_err(|source| RuleError::InvalidRegex {
            pattern: cfg.regex.clone().unwrap_or_default(),
            source,
        })?;
        validate(cfg, scheme)?;

        let target_text = cfg.target_label.as_str();
        // Only replace expands `target_label`; the other actions use it verbatim.
        let target = if action == Action::Replace {
            Template::parse(target_text, group_count, &names)
        } else {
            Template::parse(&target_text.replace('$', "$$"), 0, &[])
        };
        let target_name = target.as_literal().map(intern);
        let replacement = Template::parse(&cfg.replacement, group_count, &names);
        let replacement_value = replacement.as_literal().map(intern);
        // Groups 0 and 1 of `(.*)`/`(.+)`, and group 0 of the other plain matchers, are the
        // whole input value.
        let whole_value_group = matches!(
            (&matcher, replacement.as_single_group()),
            (
                Matcher::Any { capturing: true } | Matcher::NonEmpty { capturing: true },
                Some(0 | 1)
            ) | (
                Matcher::Any { .. } | Matcher::NonEmpty { .. } | Matcher::Literal(_),
                Some(0)
            )
        );
        let copies_source = action == Action::Replace
            && sources.len() == 1
            && target_name.is_some()
            && whole_value_group;
        Ok(Rule {
            action,
            sources: sources.iter().map(|s| s.as_str().into()).collect(),
            separator: cfg.separator.as_str().into(),
            matcher,
            replace_fast_path: cfg.regex.is_none() && !target.has_dollar && !replacement.has_dollar,
            target,
            target_name,
            replacement,
            replacement_value,
            copies_source,
            modulus: cfg.modulus,
            scheme,
        })
    }

    /// The source label values joined by the separator; missing labels contribute "".
    fn source_value<'a>(&self, labels: &'a LabelsBuilder, joined: &'a mut String) -> &'a str {
        match &*self.sources {
            [] => "",
            [one] => labels.get(one).unwrap_or(""),
            many => {
                joined.clear();
                for (i, name) in many.iter().enumerate() {
                    if i > 0 {
                        joined.push_str(&self.separator);
                    }
                    joined.push_str(labels.get(name).unwrap_or(""));
                }
                joined
            }
        }
    }

    /// Applies the rule; false means the label set is dropped.
    fn apply(&self, labels: &mut LabelsBuilder, scratch: &mut Scratch) -> bool {
        let Scratch {
            joined,
            target: target_buf,
            value: value_buf,
            snapshot,
        } = scratch;
        match self.action {
            Action::Keep => self.matcher.is_match(self.source_value(labels, joined)),
            Action::Drop => !self.matcher.is_match(self.source_value(labels, joined)),
            Action::KeepEqual | Action::DropEqual => {
                let val = self.source_value(labels, joined);
                let current = self
                    .target_name
                    .as_ref()
                    .and_then(|t| labels.get(t))
                    .unwrap_or("");
                (current == val) == (self.action == Action::KeepEqual)
            }
            Action::Replace => {
                self.replace(labels, joined, target_buf, value_buf);
                true
            }
            Action::Lowercase | Action::Uppercase => {
                value_buf.clear();
                let val = self.source_value(labels, joined);
                if self.action == Action::Lowercase {
                    case::push_lower(value_buf, val);
                } else {
                    case::push_upper(value_buf, val);
                }
                if let Some(target) = &self.target_name {
                    set_value(labels, target, value_buf);
                }
                true
            }
            Action::HashMod => {
                let val = self.source_value(labels, joined);
                let sum = Md5::digest(val.as_bytes());
                let mut low = [0u8; 8];
                low.copy_from_slice(&sum[8..16]);
                let bucket = u64::from_be_bytes(low) % self.modulus.max(1);
                value_buf.clear();
                let _ = write!(value_buf, "{bucket}");
                if let Some(target) = &self.target_name {
                    set_value(labels, target, value_buf);
                }
                true
            }
            Action::LabelMap => {
                snapshot.clear();
                snapshot.extend(labels.iter().cloned());
                for label in snapshot.iter() {
                    target_buf.clear();
                    if self
                        .matcher
                        .replace_all_into(&label.name, &self.replacement, target_buf)
                    {
                        // Prometheus sets the new name without validating it.
                        if labels.get(target_buf) != Some(label.value.as_str()) {
                            labels.set_symbols(intern(target_buf), label.value.clone());
                        }
                    }
                }
                snapshot.clear();
                true
            }
            Action::LabelDrop => {
                labels.retain(|l| !self.matcher.is_match(&l.name));
                true
            }
            Action::LabelKeep => {
                labels.retain(|l| self.matcher.is_match(&l.name));
                true
            }
        }
    }

    fn replace(
        &self,
        labels: &mut LabelsBuilder,
        joined: &mut String,
        target_buf: &mut String,
        value_buf: &mut String,
    ) {
        let val = self.source_value(labels, joined);
        if self.copies_source
            && let (Some(target), [source]) = (&self.target_name, &*self.sources)
        {
            if !self.matcher.is_match(val) || !self.scheme.is_valid_label_name(target) {
                return;
            }
            // The expansion is the source value itself: reuse its symbol.
            let value = labels
                .iter()
                .find(|l| *l.name == **source)
                .map(|l| l.value.clone());
            match value {
                Some(value) => set_symbol(labels, target, &value),
                None => {
                    labels.remove(target);
                }
            }
            return;
        }
        if let (Some(target), Some(value)) = (&self.target_name, &self.replacement_value) {
            // Fast path: nothing to expand. Prometheus writes without matching when the input
            // is empty and the regex is the default; otherwise only on a match.
            let matched = (self.replace_fast_path && val.is_empty()) || self.matcher.is_match(val);
            if matched && self.scheme.is_valid_label_name(target) {
                set_symbol(labels, target, value);
            }
            return;
        }
        let expanded = self.matcher.with_captures(val, |group, _| {
            target_buf.clear();
            self.target.expand_into(target_buf, group);
            value_buf.clear();
            self.replacement.expand_into(value_buf, group);
        });
        if expanded.is_none() || !self.scheme.is_valid_label_name(target_buf) {
            return;
        }
        if value_buf.is_empty() {
            labels.remove(target_buf);
        } else if labels.get(target_buf) != Some(value_buf.as_str()) {
            match &self.target_name {
                Some(target) => labels.set_symbols(target.clone(), intern(value_buf)),
                None => labels.set(target_buf, value_buf),
            };
        }
    }
}

/// Sets `name` to `value` (removing it when empty) without touching the interner if unchanged.
fn set_value(labels: &mut LabelsBuilder, name: &Symbol, value: &str) {
    if value.is_empty() {
        labels.remove(name);
    } else if labels.get(name) != Some(value) {
        labels.set_symbols(name.clone(), intern(value));
    }
}

fn set_symbol(labels: &mut LabelsBuilder, name: &Symbol, value: &Symbol) {
    if value.is_empty() {
        labels.remove(name);
    } else if labels.get(name) != Some(value.as_str()) {
        labels.set_symbols(name.clone(), value.clone());
    }
}

/// Prometheus's `relabel.Config.Validate`, check for check and in the same order.
fn validate(cfg: &RelabelConfig, scheme: NameValidation) -> Result<(), RuleError> {
    use Action::*;
    let action = cfg.action;
    let target = cfg.target_label.as_str();
    let invalid_target = || RuleError::InvalidTargetLabel {
        target: target.to_string(),
        action,
    };
    if action == HashMod && cfg.modulus == 0 {
        return Err(RuleError::HashModZeroModulus);
    }
    if matches!(
        action,
        Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
    ) && target.is_empty()
    {
        return Err(RuleError::MissingTargetLabel(action));
    }
    if action == Replace {
        let valid = if target.contains('$') {
            scheme.is_valid_name_with_vars(target)
        } else {
            scheme.is_valid_label_name(target)
        };
        if !valid {
            return Err(invalid_target());
        }
    }
    let verbatim_target = matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual);
    if verbatim_target && !scheme.is_valid_label_name(target) {
        return Err(invalid_target());
    }
    if verbatim_target && cfg.replacement != DEFAULT_REPLACEMENT {
        return Err(RuleError::ReplacementNotAllowed(action));
    }
    if action == LabelMap && !scheme.is_valid_name_with_vars(&cfg.replacement) {
        return Err(RuleError::InvalidLabelMapReplacement(
            cfg.replacement.clone(),
        ));
    }
    if action == HashMod && !scheme.is_valid_label_name(target) {
        return Err(invalid_target());
    }
    if matches!(action, KeepEqual | DropEqual)
        && (cfg.regex.is_some()
            || cfg.modulus != 0
            || cfg.separator != DEFAULT_SEPARATOR
            || cfg.replacement != DEFAULT_REPLACEMENT)
    {
        // Prometheus compares the regex by identity with the default, so even an explicit
        // `regex: (.*)` counts as set.
        return Err(RuleError::EqualActionExtraFields(action));
    }
    if matches!(action, LabelDrop | LabelKeep)
        && (cfg.source_labels.is_some()
            || !target.is_empty()
            || cfg.modulus != 0
            || cfg.separator != DEFAULT_SEPARATOR
            || cfg.replacement != DEFAULT_REPLACEMENT)
    {
        return Err(RuleError::LabelFilterExtraFields(action));
    }
    Ok(())
}
