//! Targeting conditions with GrowthBook's (Mongo-style) condition semantics.
//!
//! A condition is a JSON object. Its keys are either the logical operators `$or`, `$nor`, `$and`
//! and `$not`, or dotted attribute paths (`"user.plan"`) whose values are tested against the
//! visitor's attributes. Every key must pass. An attribute's value is either a literal (compared
//! with GrowthBook's loose, JavaScript-flavoured equality) or an *operator object*, an object
//! whose keys all start with `$`, such as `{"$gte": 18, "$lt": 65}`.
//!
//! The semantics follow the GrowthBook JavaScript SDK's `evalCondition`, including its
//! JavaScript coercions, so that a condition written for GrowthBook targets the same visitors
//! here:
//!
//! * A missing attribute reads as `null` (GrowthBook's path lookup returns `null`), so
//!   `{"plan": null}`, `{"plan": {"$exists": false}}` and `{"plan": {"$type": "null"}}` all match
//!   a visitor without a `plan`, and `$type: "undefined"` never matches a JSON attribute.
//! * A string literal matches the attribute converted to a string the way JavaScript does
//!   (`{"age": "30"}` matches `30`, `{"tags": "a,b"}` matches `["a", "b"]`); a number literal
//!   matches the attribute converted to a number (`{"age": 30}` matches `"30"`, and `{"n": 0}`
//!   matches a missing `n` because `null` converts to `0`); a boolean literal matches a non-null
//!   attribute of that truthiness; `null` matches only `null`/missing; an array or an object that is
//!   not an operator object is compared structurally.
//! * `$lt`, `$lte`, `$gt` and `$gte` follow JavaScript's relational comparison: two strings compare
//!   lexicographically (by UTF-16 code units), anything else compares numerically after
//!   conversion, and `NaN` never compares.
//! * `$eq`/`$ne` are JavaScript strict (in)equality; `$in`/`$nin` test membership by strict
//!   equality, intersecting when the attribute is an array; `$ini`, `$nini`, `$alli` and `$regexi`
//!   are the case-insensitive variants.
//! * `$vgt`, `$vgte`, `$vlt`, `$vlte`, `$veq` and `$vne` compare versions: a leading `v` and any
//!   build metadata (`+...`) are ignored, parts split on `.` and `-` are compared numerically when
//!   numeric, and a release sorts after its pre-releases (`1.0.0-rc.1` < `1.0.0`).
//! * An empty `$or` or `$and` passes; an empty `$nor` fails (it negates the empty `$or`).
//!
//! Where this module knowingly differs from GrowthBook:
//!
//! * **Rejected at load time.** GrowthBook evaluates an unknown operator, an invalid regex or an
//!   operand of the wrong type to `false` at run time (logging to the console). [`Condition::compile`]
//!   rejects them with a [`ConditionError`] instead, so a typo cannot silently exclude everyone.
//!   This covers operands that could never match (`$in` without an array, `$regex` without a
//!   string, `$type` with an unknown type name, `$eq` with an array, `$size` with a string, ...),
//!   `$or`/`$and`/`$nor` used inside an attribute's operator object, a value operator such as
//!   `$in` used as an attribute name, and the saved-group operators `$inGroup`/`$notInGroup`,
//!   which Cohort does not support.
//! * **Paths do not walk into arrays.** GrowthBook's JavaScript SDK resolves `"tags.0"` to the first
//!   element of `tags` (and `"tags.length"` to its length); its Python SDK, like this module, only
//!   walks through objects, so such paths read as missing.
//! * **Key order.** GrowthBook compares object literals by their JSON serialisation, which depends on
//!   key order; this module compares objects structurally, ignoring key order.
//! * **Regex dialect.** `$regex` patterns are compiled with `regex-lite`, whose syntax matches
//!   JavaScript's for the common subset. Look-around and backreferences are not supported (the
//!   condition is rejected), as are a few JavaScript-only forms (`[^]`, `\0`, `\cX`, an
//!   unclosed `{`); `.` matches `\r`; `\s` is ASCII-only; `$regexi` folds ASCII case only; and
//!   matching is by code point rather than UTF-16 code unit.
//! * **Nesting.** Conditions nested more than 32 levels deep (each logical operator, attribute,
//!   value operator and level of a literal array or object counts) are rejected, so that
//!   evaluation depth is bounded.
//! * **Paths.** GrowthBook's JavaScript lookup also finds inherited JavaScript properties such as
//!   `constructor`; here only the attributes' own keys exist.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::pattern::Pattern;

/// The deepest nesting [`Condition::compile`] accepts: every logical operator, attribute, value
/// operator and level of a literal array or object counts as one level.
const MAX_DEPTH: usize = 32;

/// How deep [`js_to_string`] follows nested arrays in an attribute before giving up. JSON parsed by
/// `serde_json` is at most 128 levels deep; this only guards against hand-built values.
const MAX_STRINGIFY_DEPTH: usize = 256;

/// What a missing attribute reads as (GrowthBook's path lookup yields `null`).
static NULL: Value = Value::Null;

/// A condition compiled once at config load; evaluation never re-parses or re-compiles regexes.
#[derive(Debug, Clone)]
pub struct Condition {
    root: Node,
    /// How many attribute slots this condition's paths were numbered into (with every condition
    /// compiled into the same [`AttributeSlots`] before it): the size of the cache it needs.
    slot_count: usize,
}

/// Why a condition was rejected at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    /// Where inside the condition, as a JSON path suffix that can be appended to the condition's
    /// own path: `""` for the root, `".country"`, `".$or[1]"`, `".browser.$regex"`,
    /// `".tags.$elemMatch.$gt"`. Keys that are not plain identifiers are printed as `["key"]`.
    pub path: String,
    /// What is wrong, for a person: e.g. "unknown operator `$foo`".
    pub reason: String,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConditionError {}

impl Condition {
    /// Compiles a JSON condition. An empty object `{}` matches everything.
    ///
    /// Unlike GrowthBook, which evaluates unknown operators, invalid regexes and nonsensical
    /// operands to `false` at run time, these are rejected here with a [`ConditionError`] naming
    /// where the problem is (see the module documentation for the full list).
    pub fn compile(condition: &Value) -> Result<Condition, ConditionError> {
        Condition::compile_into(condition, &mut AttributeSlots::default())
    }

    /// Compiles a condition whose attribute paths share numbering with other conditions of the
    /// same tenant, so that one request's [`Attributes`] serves them all.
    pub(crate) fn compile_into(condition: &Value, slots: &mut AttributeSlots) -> Result<Condition, ConditionError> {
        let root = Compiler { slots }.node(condition, &Where::Root, 0, true)?;
        Ok(Condition {
            root,
            slot_count: slots.len(),
        })
    }

    /// Evaluates against an attributes object (any JSON value; non-objects behave as "no
    /// attributes"). Never panics.
    pub fn matches(&self, attributes: &Value) -> bool {
        self.matches_attributes(&Attributes::new(attributes, self.slot_count))
    }

    /// Evaluates against one request's attributes, reusing the lookups and conversions earlier
    /// conditions of the request already made.
    pub(crate) fn matches_attributes(&self, attributes: &Attributes<'_>) -> bool {
        eval_node(&self.root, Scope::Request(attributes))
    }

    /// True for the condition `{}`, which matches every visitor.
    pub fn is_always_true(&self) -> bool {
        self.root.clauses.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// One request's attributes
// ---------------------------------------------------------------------------------------------

/// Numbers the attribute paths that conditions test at the top level of the attributes, so that a
/// request looks each path up, and converts its value, at most once however many experiments test
/// it (paths inside `$elemMatch` test array elements and are not numbered).
#[derive(Debug, Default)]
pub(crate) struct AttributeSlots {
    /// Keyed by the dotted path as written: the same text is the same path.
    by_path: HashMap<String, u32>,
}

impl AttributeSlots {
    fn slot(&mut self, dotted_path: &str) -> u32 {
        if let Some(&slot) = self.by_path.get(dotted_path) {
            return slot;
        }
        let next = self.by_path.len() as u32;
        self.by_path.insert(dotted_path.to_owned(), next);
        next
    }

    /// How many distinct paths have been numbered.
    pub(crate) fn len(&self) -> usize {
        self.by_path.len()
    }
}

/// One request's attributes with a cache per numbered path: the value found there and, when a
/// condition first needs them, its JavaScript string, lower-cased string, number and padded version.
/// Built once per request (one allocation), shared by every experiment's condition.
pub(crate) struct Attributes<'a> {
    root: &'a Value,
    slots: Vec<Resolved<'a>>,
}

#[derive(Default)]
struct Resolved<'a> {
    value: OnceCell<&'a Value>,
    string: OnceCell<Cow<'a, str>>,
    lower: OnceCell<String>,
    /// [`string_hash`] of a string value, and of its lower case.
    hash: OnceCell<u64>,
    lower_hash: OnceCell<u64>,
    number: OnceCell<f64>,
    /// The padded version and whether it is within the Basic Multilingual Plane.
    version: OnceCell<(String, bool)>,
}

impl<'a> Attributes<'a> {
    /// An empty cache for `slot_count` numbered paths over `root`.
    pub(crate) fn new(root: &'a Value, slot_count: usize) -> Attributes<'a> {
        Attributes {
            root,
            slots: std::iter::repeat_with(Resolved::default).take(slot_count).collect(),
        }
    }

    fn resolve(&self, slot: u32, path: &[String]) -> Subject<'_, 'a> {
        match self.slots.get(slot as usize) {
            Some(resolved) => {
                resolved.value.get_or_init(|| lookup(self.root, path));
                Subject::Cached(resolved)
            }
            // A condition compiled against other slots than this cache's: correct, uncached.
            None => Subject::Plain(lookup(self.root, path)),
        }
    }
}

/// Where a condition's attribute paths are looked up.
#[derive(Clone, Copy)]
enum Scope<'s, 'a> {
    /// The request's attributes, through its cache.
    Request(&'s Attributes<'a>),
    /// An array element under `$elemMatch`.
    Element(&'a Value),
}

/// The value a test looks at, with its conversions cached when it is a request attribute.
#[derive(Clone, Copy)]
enum Subject<'s, 'a> {
    Plain(&'a Value),
    Cached(&'s Resolved<'a>),
}

impl<'s, 'a: 's> Subject<'s, 'a> {
    fn value(self) -> &'a Value {
        match self {
            Subject::Plain(value) => value,
            Subject::Cached(resolved) => resolved.value.get().copied().unwrap_or(&NULL),
        }
    }

    /// JavaScript `String(value)`.
    fn js_string(self) -> Cow<'s, str> {
        match self {
            Subject::Plain(value) => js_to_string(value, 0),
            Subject::Cached(resolved) => {
                let value = self.value();
                Cow::Borrowed(resolved.string.get_or_init(|| js_to_string(value, 0)))
            }
        }
    }

    /// The lower-cased string of a string value (`$ini`, `$nini`).
    fn lower(self, s: &'s str) -> Cow<'s, str> {
        match self {
            Subject::Plain(_) => Cow::Owned(s.to_lowercase()),
            Subject::Cached(resolved) => Cow::Borrowed(resolved.lower.get_or_init(|| s.to_lowercase())),
        }
    }

    /// JavaScript `Number(value)`.
    fn number(self) -> f64 {
        match self {
            Subject::Plain(value) => to_number(value),
            Subject::Cached(resolved) => *resolved.number.get_or_init(|| to_number(self.value())),
        }
    }

    /// [`string_hash`] of `s`, the value's own string (`$in`).
    fn hash(self, s: &str) -> u64 {
        match self {
            Subject::Plain(_) => string_hash(s),
            Subject::Cached(resolved) => *resolved.hash.get_or_init(|| string_hash(s)),
        }
    }

    /// [`string_hash`] of `lower`, the value's lower-cased string (`$ini`).
    fn lower_hash(self, lower: &str) -> u64 {
        match self {
            Subject::Plain(_) => string_hash(lower),
            Subject::Cached(resolved) => *resolved.lower_hash.get_or_init(|| string_hash(lower)),
        }
    }

    /// GrowthBook's padded version string of the value, and whether it stays within the Basic
    /// Multilingual Plane (then versions compare as bytes).
    fn version(self) -> (Cow<'s, str>, bool) {
        let pad = |value: &Value| {
            let padded = padded_version(value);
            let bmp = bmp_only(&padded);
            (padded, bmp)
        };
        match self {
            Subject::Plain(value) => {
                let (padded, bmp) = pad(value);
                (Cow::Owned(padded), bmp)
            }
            Subject::Cached(resolved) => {
                let value = self.value();
                let (padded, bmp) = resolved.version.get_or_init(|| pad(value));
                (Cow::Borrowed(padded), *bmp)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled tree
// ---------------------------------------------------------------------------------------------

/// A condition object: every clause must pass.
#[derive(Debug, Clone)]
struct Node {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone)]
enum Clause {
    /// Passes if the list is empty or any condition passes.
    Or(Vec<Node>),
    /// Fails if the list is empty or any condition passes.
    Nor(Vec<Node>),
    /// Passes if every condition passes.
    And(Vec<Node>),
    /// Passes if the condition fails.
    Not(Box<Node>),
    /// Tests the value at a dotted attribute path; `slot` numbers request-level paths.
    Attr {
        path: Vec<String>,
        slot: Option<u32>,
        test: Test,
    },
}

/// A condition on a single value (GrowthBook's "condition value").
#[derive(Debug, Clone)]
enum Test {
    /// The value converted to a string equals `text` (or, case-insensitively, `folded`).
    Str { text: String, folded: String },
    /// The value converted to a number equals this.
    Num(f64),
    /// The value is not null and has this truthiness.
    Bool(bool),
    /// The value is null (or missing).
    Null,
    /// Structural equality with an array or a non-operator object.
    Literal(Value),
    /// Every operator passes.
    Ops(Vec<Op>),
}

#[derive(Debug, Clone)]
enum Op {
    Version {
        cmp: VersionCmp,
        padded: String,
        /// `padded` is within the Basic Multilingual Plane.
        bmp: bool,
    },
    Eq(Value),
    Ne(Value),
    Compare {
        cmp: RelCmp,
        operand: Prim<'static>,
    },
    Exists(bool),
    In {
        items: InSet,
        fold: bool,
        negate: bool,
    },
    Not(Box<Test>),
    Size(Box<Test>),
    ElemMatch(Box<ElemTest>),
    All {
        items: Vec<Test>,
        fold: bool,
    },
    Regex(Pattern),
    Type(JsType),
}

#[derive(Debug, Clone)]
enum ElemTest {
    /// `$elemMatch` with an operator object: test each element as a value.
    Value(Test),
    /// `$elemMatch` with a condition: test each element as an attributes object.
    Condition(Node),
}

/// The operand of `$in`/`$nin`, sorted for binary search: membership is JavaScript strict
/// equality, so arrays and objects in the list never match and are dropped.
#[derive(Debug, Clone, Default)]
struct InSet {
    /// Sorted by [`string_hash`], then text: a lookup compares hashes (the request's is computed
    /// once per attribute) and only a hash match compares text.
    strings: Vec<(u64, Box<str>)>,
    /// Without NaN (never strictly equal to anything), `-0` stored as `0` (`-0 === 0`).
    numbers: Vec<f64>,
    null: bool,
    truth: bool,
    falsehood: bool,
}

impl InSet {
    fn new(items: &[Value], fold: bool) -> InSet {
        let mut set = InSet::default();
        for item in items {
            match item {
                Value::Null => set.null = true,
                Value::Bool(true) => set.truth = true,
                Value::Bool(false) => set.falsehood = true,
                Value::Number(n) if !number(n).is_nan() => set.numbers.push(number(n) + 0.0),
                Value::String(s) if fold => {
                    let lower = s.to_lowercase();
                    set.strings.push((string_hash(&lower), lower.into()));
                }
                Value::String(s) => set.strings.push((string_hash(s), s.as_str().into())),
                _ => {}
            }
        }
        set.strings.sort_unstable();
        set.strings.dedup();
        set.numbers.sort_unstable_by(f64::total_cmp);
        set.numbers.dedup();
        set
    }

    fn contains_str(&self, s: &str) -> bool {
        self.contains_hashed(s, string_hash(s))
    }

    /// Membership of `s`, whose [`string_hash`] is `hash`.
    fn contains_hashed(&self, s: &str, hash: u64) -> bool {
        let first = self.strings.partition_point(|(h, _)| *h < hash);
        self.strings[first..]
            .iter()
            .take_while(|(h, _)| *h == hash)
            .any(|(_, item)| item.as_ref() == s)
    }

    /// Strict membership of a scalar; a string is looked up as given.
    fn contains(&self, value: &Value) -> bool {
        match value {
            Value::Null => self.null,
            Value::Bool(true) => self.truth,
            Value::Bool(false) => self.falsehood,
            Value::Number(n) => {
                let n = number(n) + 0.0;
                !n.is_nan() && self.numbers.binary_search_by(|item| item.total_cmp(&n)).is_ok()
            }
            Value::String(s) => self.contains_str(s),
            Value::Array(_) | Value::Object(_) => false,
        }
    }

    /// Case-insensitive membership of a string without allocating (array elements under `$ini`).
    fn contains_lowercase_of(&self, s: &str) -> bool {
        self.strings.iter().any(|(_, item)| lowercase_equals(s, item))
    }
}

#[derive(Debug, Clone, Copy)]
enum VersionCmp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, Copy)]
enum RelCmp {
    Lt,
    Lte,
    Gt,
    Gte,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsType {
    String,
    Number,
    Boolean,
    Array,
    Object,
    Null,
    Undefined,
}

/// A JavaScript primitive, as produced by `ToPrimitive` for relational comparison. Booleans and
/// `null` are already converted to numbers (they are only ever used numerically there).
#[derive(Debug, Clone)]
enum Prim<'a> {
    Str(Cow<'a, str>),
    Num(f64),
}

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

const LOGICAL_OPERATORS: &[&str] = &["$or", "$nor", "$and", "$not"];

/// Every operator GrowthBook knows inside an attribute's operator object.
const VALUE_OPERATORS: &[&str] = &[
    "$eq",
    "$ne",
    "$lt",
    "$lte",
    "$gt",
    "$gte",
    "$in",
    "$nin",
    "$ini",
    "$nini",
    "$all",
    "$alli",
    "$size",
    "$elemMatch",
    "$exists",
    "$type",
    "$regex",
    "$regexi",
    "$veq",
    "$vne",
    "$vgt",
    "$vgte",
    "$vlt",
    "$vlte",
    "$inGroup",
    "$notInGroup",
];

/// Where the compiler is inside a condition. Rendered only when an error names it, so that
/// compiling a valid condition builds no path strings.
#[derive(Clone, Copy)]
enum Where<'p> {
    Root,
    Key(&'p Where<'p>, &'p str),
    Index(&'p Where<'p>, usize),
}

impl Where<'_> {
    fn render(&self) -> String {
        match self {
            Where::Root => String::new(),
            Where::Key(parent, key) => key_path(&parent.render(), key),
            Where::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

fn err(path: &Where<'_>, reason: impl Into<String>) -> ConditionError {
    ConditionError {
        path: path.render(),
        reason: reason.into(),
    }
}

/// Appends an object key to an error path: `.key` when readable as is, `["key"]` otherwise.
fn key_path(parent: &str, key: &str) -> String {
    let mut chars = key.chars();
    let plain = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-' | '.'));
    if plain {
        format!("{parent}.{key}")
    } else {
        let quoted = serde_json::to_string(key).unwrap_or_else(|_| format!("\"{key}\""));
        format!("{parent}[{quoted}]")
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_depth(path: &Where<'_>, depth: usize) -> Result<(), ConditionError> {
    if depth > MAX_DEPTH {
        Err(err(
            path,
            format!("condition is nested too deeply (more than {MAX_DEPTH} levels)"),
        ))
    } else {
        Ok(())
    }
}

/// GrowthBook's "operator object": a non-empty object whose keys all start with `$`.
fn is_operator_object(map: &Map<String, Value>) -> bool {
    !map.is_empty() && map.keys().all(|k| k.starts_with('$'))
}

/// Compiles condition JSON, numbering request-level attribute paths into `slots`.
struct Compiler<'r> {
    slots: &'r mut AttributeSlots,
}

impl Compiler<'_> {
    /// `request_level`: the node tests the request's attributes (not an array element under
    /// `$elemMatch`), so its paths get cache slots.
    fn node(
        &mut self,
        value: &Value,
        path: &Where<'_>,
        depth: usize,
        request_level: bool,
    ) -> Result<Node, ConditionError> {
        check_depth(path, depth)?;
        let Value::Object(map) = value else {
            return Err(err(
                path,
                format!(
                    "expected a condition object (such as {{\"country\": \"US\"}}), found {}",
                    describe(value)
                ),
            ));
        };
        let mut clauses = Vec::with_capacity(map.len());
        for (key, operand) in map {
            let here = Where::Key(path, key);
            let clause = match key.as_str() {
                "$or" | "$nor" | "$and" => {
                    let Value::Array(items) = operand else {
                        return Err(err(
                            &here,
                            format!("`{key}` expects an array of conditions, found {}", describe(operand)),
                        ));
                    };
                    let nodes = items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| self.node(item, &Where::Index(&here, i), depth + 1, request_level))
                        .collect::<Result<Vec<_>, _>>()?;
                    match key.as_str() {
                        "$or" => Clause::Or(nodes),
                        "$nor" => Clause::Nor(nodes),
                        _ => Clause::And(nodes),
                    }
                }
                "$not" => {
                    if !operand.is_object() {
                        return Err(err(
                            &here,
                            format!("`$not` expects a condition object, found {}", describe(operand)),
                        ));
                    }
                    Clause::Not(Box::new(self.node(operand, &here, depth + 1, request_level)?))
                }
                op if VALUE_OPERATORS.contains(&op) => {
                    return Err(err(
                        &here,
                        format!(
                            "`{op}` is a value operator and cannot stand in place of an attribute \
                         name; write {{\"attribute\": {{\"{op}\": ...}}}}"
                        ),
                    ));
                }
                // Any other key, including other `$`-prefixed ones (GrowthBook treats `$groups` as an
                // attribute), is a dotted attribute path.
                _ => {
                    let path: Vec<String> = key.split('.').map(str::to_owned).collect();
                    Clause::Attr {
                        slot: request_level.then(|| self.slots.slot(key)),
                        path,
                        test: self.test(operand, &here, depth + 1)?,
                    }
                }
            };
            clauses.push(clause);
        }
        Ok(Node { clauses })
    }

    fn test(&mut self, value: &Value, path: &Where<'_>, depth: usize) -> Result<Test, ConditionError> {
        compile_test(self, value, path, depth)
    }
}

/// Checks that a literal array/object does not push the condition past [`MAX_DEPTH`].
fn check_literal_depth(value: &Value, path: &Where<'_>, depth: usize) -> Result<(), ConditionError> {
    check_depth(path, depth)?;
    match value {
        Value::Array(items) => items.iter().try_for_each(|v| check_literal_depth(v, path, depth + 1)),
        Value::Object(map) => map.values().try_for_each(|v| check_literal_depth(v, path, depth + 1)),
        _ => Ok(()),
    }
}

fn compile_test(
    compiler: &mut Compiler<'_>,
    value: &Value,
    path: &Where<'_>,
    depth: usize,
) -> Result<Test, ConditionError> {
    check_depth(path, depth)?;
    Ok(match value {
        Value::String(s) => Test::Str {
            text: s.clone(),
            folded: s.to_lowercase(),
        },
        Value::Number(n) => Test::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => Test::Bool(*b),
        Value::Null => Test::Null,
        Value::Object(map) if is_operator_object(map) => {
            let ops = map
                .iter()
                .map(|(op, operand)| compile_op(compiler, op, operand, &Where::Key(path, op), depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Test::Ops(ops)
        }
        Value::Array(_) | Value::Object(_) => {
            check_literal_depth(value, path, depth)?;
            Test::Literal(value.clone())
        }
    })
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

fn compile_op(
    compiler: &mut Compiler<'_>,
    op: &str,
    operand: &Value,
    path: &Where<'_>,
    depth: usize,
) -> Result<Op, ConditionError> {
    check_depth(path, depth)?;
    let found = describe(operand);
    Ok(match op {
        "$eq" | "$ne" => {
            if !is_scalar(operand) {
                return Err(err(
                    path,
                    format!(
                        "`{op}` compares with a single string, number, boolean or null, found \
                         {found}; to compare a whole array or object, use it directly as the \
                         attribute's value"
                    ),
                ));
            }
            if op == "$eq" {
                Op::Eq(operand.clone())
            } else {
                Op::Ne(operand.clone())
            }
        }
        "$lt" | "$lte" | "$gt" | "$gte" => {
            if !is_scalar(operand) {
                return Err(err(path, format!("`{op}` expects a number or a string, found {found}")));
            }
            let cmp = match op {
                "$lt" => RelCmp::Lt,
                "$lte" => RelCmp::Lte,
                "$gt" => RelCmp::Gt,
                _ => RelCmp::Gte,
            };
            let operand = match to_primitive(operand, 0) {
                Prim::Str(s) => Prim::Str(Cow::Owned(s.into_owned())),
                Prim::Num(n) => Prim::Num(n),
            };
            Op::Compare { cmp, operand }
        }
        "$veq" | "$vne" | "$vgt" | "$vgte" | "$vlt" | "$vlte" => {
            if !matches!(operand, Value::String(_) | Value::Number(_)) {
                return Err(err(
                    path,
                    format!("`{op}` expects a version string such as \"1.2.3\", found {found}"),
                ));
            }
            let cmp = match op {
                "$veq" => VersionCmp::Eq,
                "$vne" => VersionCmp::Ne,
                "$vgt" => VersionCmp::Gt,
                "$vgte" => VersionCmp::Gte,
                "$vlt" => VersionCmp::Lt,
                _ => VersionCmp::Lte,
            };
            let padded = padded_version(operand);
            Op::Version {
                cmp,
                bmp: bmp_only(&padded),
                padded,
            }
        }
        "$exists" => {
            if !is_scalar(operand) {
                return Err(err(path, format!("`$exists` expects true or false, found {found}")));
            }
            Op::Exists(truthy(operand))
        }
        "$in" | "$nin" | "$ini" | "$nini" => {
            let Value::Array(items) = operand else {
                return Err(err(path, format!("`{op}` expects an array, found {found}")));
            };
            let fold = op == "$ini" || op == "$nini";
            Op::In {
                items: InSet::new(items, fold),
                fold,
                negate: op == "$nin" || op == "$nini",
            }
        }
        "$all" | "$alli" => {
            let Value::Array(items) = operand else {
                return Err(err(path, format!("`{op}` expects an array, found {found}")));
            };
            let items = items
                .iter()
                .enumerate()
                .map(|(i, item)| compiler.test(item, &Where::Index(path, i), depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Op::All {
                items,
                fold: op == "$alli",
            }
        }
        "$not" => Op::Not(Box::new(compiler.test(operand, path, depth + 1)?)),
        "$size" => {
            let ok = match operand {
                Value::Number(_) => true,
                Value::Object(map) => is_operator_object(map),
                _ => false,
            };
            if !ok {
                return Err(err(
                    path,
                    format!(
                        "`$size` expects a number or an operator object such as {{\"$gt\": 2}}, \
                         found {found}"
                    ),
                ));
            }
            Op::Size(Box::new(compiler.test(operand, path, depth + 1)?))
        }
        "$elemMatch" => {
            let Value::Object(map) = operand else {
                return Err(err(
                    path,
                    format!(
                        "`$elemMatch` expects an operator object or a condition object, found \
                         {found}"
                    ),
                ));
            };
            let test = if is_operator_object(map) {
                ElemTest::Value(compiler.test(operand, path, depth + 1)?)
            } else {
                ElemTest::Condition(compiler.node(operand, path, depth + 1, false)?)
            };
            Op::ElemMatch(Box::new(test))
        }
        "$regex" | "$regexi" => {
            let Value::String(pattern) = operand else {
                return Err(err(
                    path,
                    format!("`{op}` expects a regular expression string, found {found}"),
                ));
            };
            let regex = Pattern::new(pattern, op == "$regexi").map_err(|e| err(path, format!("invalid regex: {e}")))?;
            Op::Regex(regex)
        }
        "$type" => {
            let Value::String(name) = operand else {
                return Err(err(path, format!("`$type` expects a type name string, found {found}")));
            };
            let ty = match name.as_str() {
                "string" => JsType::String,
                "number" => JsType::Number,
                "boolean" => JsType::Boolean,
                "array" => JsType::Array,
                "object" => JsType::Object,
                "null" => JsType::Null,
                "undefined" => JsType::Undefined,
                _ => {
                    return Err(err(
                        path,
                        format!(
                            "unknown type name `{name}` (expected one of string, number, \
                             boolean, array, object, null, undefined)"
                        ),
                    ));
                }
            };
            Op::Type(ty)
        }
        "$inGroup" | "$notInGroup" => {
            return Err(err(
                path,
                format!("unknown operator `{op}`: saved groups are not supported"),
            ));
        }
        _ if LOGICAL_OPERATORS.contains(&op) => {
            // `$not` is handled above; this is `$or`, `$nor` or `$and`.
            return Err(err(
                path,
                format!(
                    "unknown operator `{op}` in an attribute's operator object: `{op}` combines \
                     whole conditions, so use it at the condition level"
                ),
            ));
        }
        _ => return Err(err(path, format!("unknown operator `{op}`"))),
    })
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

fn eval_node(node: &Node, scope: Scope<'_, '_>) -> bool {
    node.clauses.iter().all(|clause| eval_clause(clause, scope))
}

fn eval_any(nodes: &[Node], scope: Scope<'_, '_>) -> bool {
    nodes.is_empty() || nodes.iter().any(|n| eval_node(n, scope))
}

fn eval_clause(clause: &Clause, scope: Scope<'_, '_>) -> bool {
    match clause {
        Clause::Or(nodes) => eval_any(nodes, scope),
        Clause::Nor(nodes) => !eval_any(nodes, scope),
        Clause::And(nodes) => nodes.iter().all(|n| eval_node(n, scope)),
        Clause::Not(node) => !eval_node(node, scope),
        Clause::Attr { path, slot, test } => {
            let subject = match (scope, slot) {
                (Scope::Request(attributes), Some(slot)) => attributes.resolve(*slot, path),
                (Scope::Request(attributes), None) => Subject::Plain(lookup(attributes.root, path)),
                (Scope::Element(element), _) => Subject::Plain(lookup(element, path)),
            };
            eval_test(test, subject, false)
        }
    }
}

/// GrowthBook's `getPath`, restricted to objects: anything missing reads as `null`.
fn lookup<'a>(attributes: &'a Value, path: &[String]) -> &'a Value {
    let mut current = attributes;
    for part in path {
        match current {
            Value::Object(map) => match map.get(part) {
                Some(next) => current = next,
                None => return &NULL,
            },
            _ => return &NULL,
        }
    }
    current
}

/// `fold`: compare strings case-insensitively (the elements tested by `$alli`).
fn eval_test<'s, 'a: 's>(test: &Test, subject: Subject<'s, 'a>, fold: bool) -> bool {
    let value = subject.value();
    match test {
        Test::Str { text, folded } => {
            let s = subject.js_string();
            if fold {
                lowercase_equals(&s, folded)
            } else {
                s == text.as_str()
            }
        }
        Test::Num(n) => subject.number() == *n,
        Test::Bool(b) => !value.is_null() && truthy(value) == *b,
        Test::Null => value.is_null(),
        Test::Literal(literal) => json_equal(value, literal),
        Test::Ops(ops) => ops.iter().all(|op| eval_op(op, subject)),
    }
}

fn eval_op<'s, 'a: 's>(op: &Op, subject: Subject<'s, 'a>) -> bool {
    let value = subject.value();
    match op {
        Op::Version { cmp, padded, bmp } => {
            let (actual, actual_bmp) = subject.version();
            let ord = if *bmp && actual_bmp {
                actual.as_bytes().cmp(padded.as_bytes())
            } else {
                utf16_cmp(&actual, padded)
            };
            match cmp {
                VersionCmp::Eq => ord == Ordering::Equal,
                VersionCmp::Ne => ord != Ordering::Equal,
                VersionCmp::Gt => ord == Ordering::Greater,
                VersionCmp::Gte => ord != Ordering::Less,
                VersionCmp::Lt => ord == Ordering::Less,
                VersionCmp::Lte => ord != Ordering::Greater,
            }
        }
        Op::Eq(expected) => strict_equal(value, expected),
        Op::Ne(expected) => !strict_equal(value, expected),
        Op::Compare { cmp, operand } => {
            let actual = match value {
                Value::Null => Prim::Num(0.0),
                Value::Bool(b) => Prim::Num(if *b { 1.0 } else { 0.0 }),
                Value::Number(n) => Prim::Num(number(n)),
                Value::String(_) | Value::Array(_) | Value::Object(_) => Prim::Str(subject.js_string()),
            };
            let ord = js_compare(&actual, operand);
            match cmp {
                RelCmp::Lt => ord == Some(Ordering::Less),
                RelCmp::Lte => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                RelCmp::Gt => ord == Some(Ordering::Greater),
                RelCmp::Gte => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
            }
        }
        Op::Exists(expected) => value.is_null() != *expected,
        Op::In { items, fold, negate } => {
            let found = match value {
                Value::Array(elements) => elements.iter().any(|element| match element {
                    Value::String(s) if *fold => items.contains_lowercase_of(s),
                    _ => items.contains(element),
                }),
                Value::String(s) if *fold => {
                    let lower = subject.lower(s);
                    items.contains_hashed(&lower, subject.lower_hash(&lower))
                }
                Value::String(s) => items.contains_hashed(s, subject.hash(s)),
                _ => items.contains(value),
            };
            found != *negate
        }
        Op::Not(test) => !eval_test(test, subject, false),
        Op::Size(test) => match value {
            Value::Array(elements) => eval_test(test, Subject::Plain(&Value::from(elements.len())), false),
            _ => false,
        },
        Op::ElemMatch(elem) => match value {
            // Falsy elements (0, "", false, null) are skipped, as GrowthBook's JavaScript SDK
            // once did (it now skips only null). Kept so running experiments keep their audience
            // (docs/config.md, "Deliberate differences from GrowthBook").
            Value::Array(elements) => elements.iter().any(|el| {
                truthy(el)
                    && match elem.as_ref() {
                        ElemTest::Value(test) => eval_test(test, Subject::Plain(el), false),
                        ElemTest::Condition(node) => eval_node(node, Scope::Element(el)),
                    }
            }),
            _ => false,
        },
        Op::All { items, fold } => match value {
            Value::Array(elements) => items
                .iter()
                .all(|test| elements.iter().any(|el| eval_test(test, Subject::Plain(el), *fold))),
            _ => false,
        },
        Op::Regex(regex) => regex.is_match(&subject.js_string()),
        Op::Type(ty) => js_type(value) == *ty,
    }
}

/// A fast hash of a string (multiply-rotate over 8-byte words, as rustc's FxHash): only ever
/// compared with hashes made by this function, never stored or sent.
pub(crate) fn string_hash(s: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(K);
    let mut chunks = s.as_bytes().chunks_exact(8);
    let mut hash = mix(0, s.len() as u64);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        hash = mix(hash, u64::from_le_bytes(word));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        hash = mix(hash, u64::from_le_bytes(word));
    }
    hash
}

/// `s.to_lowercase() == folded`, without allocating unless `s` has a capital sigma (whose lower
/// case depends on its neighbours, which only `str::to_lowercase` knows).
fn lowercase_equals(s: &str, folded: &str) -> bool {
    if s.contains('Σ') {
        return s.to_lowercase() == folded;
    }
    s.chars().flat_map(char::to_lowercase).eq(folded.chars())
}

// ---------------------------------------------------------------------------------------------
// JavaScript value semantics
// ---------------------------------------------------------------------------------------------

fn number(n: &serde_json::Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

/// JavaScript truthiness.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => {
            let n = number(n);
            n != 0.0 && !n.is_nan()
        }
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn js_type(value: &Value) -> JsType {
    match value {
        Value::Null => JsType::Null,
        Value::Bool(_) => JsType::Boolean,
        Value::Number(_) => JsType::Number,
        Value::String(_) => JsType::String,
        Value::Array(_) => JsType::Array,
        Value::Object(_) => JsType::Object,
    }
}

/// JavaScript `===` between JSON values: arrays and objects are never identical to one another.
fn strict_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => number(x) == number(y),
        (Value::String(x), Value::String(y)) => x == y,
        _ => false,
    }
}

/// Structural equality, as GrowthBook's comparison of JSON serialisations but ignoring key order.
/// Recursion is bounded by the depth of the compiled literal.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => strict_equal(a, b),
    }
}

/// JavaScript `String(value)`.
fn js_to_string(value: &Value, depth: usize) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed("null"),
        Value::Bool(true) => Cow::Borrowed("true"),
        Value::Bool(false) => Cow::Borrowed("false"),
        Value::Number(n) => Cow::Owned(js_number_to_string(number(n))),
        Value::Object(_) => Cow::Borrowed("[object Object]"),
        Value::Array(items) => {
            if depth >= MAX_STRINGIFY_DEPTH {
                return Cow::Borrowed("");
            }
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                // `Array.prototype.join` writes null (and undefined) as an empty string.
                if !item.is_null() {
                    out.push_str(&js_to_string(item, depth + 1));
                }
            }
            Cow::Owned(out)
        }
    }
}

/// JavaScript `ToPrimitive` for relational comparison, with booleans and null already numeric.
fn to_primitive(value: &Value, depth: usize) -> Prim<'_> {
    match value {
        Value::Null => Prim::Num(0.0),
        Value::Bool(b) => Prim::Num(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => Prim::Num(number(n)),
        Value::String(_) | Value::Array(_) | Value::Object(_) => Prim::Str(js_to_string(value, depth)),
    }
}

/// JavaScript `Number(value)`.
fn to_number(value: &Value) -> f64 {
    match value {
        Value::Null => 0.0,
        Value::Bool(b) => {
            if *b {
                1.0
            } else {
                0.0
            }
        }
        Value::Number(n) => number(n),
        Value::String(s) => string_to_number(s),
        Value::Array(_) => string_to_number(&js_to_string(value, 0)),
        Value::Object(_) => f64::NAN,
    }
}

/// JavaScript's abstract relational comparison: `None` when either side is `NaN`.
fn js_compare(a: &Prim<'_>, b: &Prim<'_>) -> Option<Ordering> {
    match (a, b) {
        (Prim::Str(x), Prim::Str(y)) => Some(utf16_cmp(x, y)),
        _ => prim_number(a).partial_cmp(&prim_number(b)),
    }
}

fn prim_number(p: &Prim<'_>) -> f64 {
    match p {
        Prim::Str(s) => string_to_number(s),
        Prim::Num(n) => *n,
    }
}

/// Without characters outside the Basic Multilingual Plane (UTF-8 lead byte 0xF0 and up), UTF-16
/// code units are the code points, and UTF-8's byte order is code point order.
fn bmp_only(s: &str) -> bool {
    s.bytes().all(|b| b < 0xF0)
}

/// Compares strings the way JavaScript does: by UTF-16 code units.
fn utf16_cmp(a: &str, b: &str) -> Ordering {
    if bmp_only(a) && bmp_only(b) {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// JavaScript `Number::toString` (shortest round-trip digits, exponent outside 1e-7..1e21).
fn js_number_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if x < 0.0 {
        return format!("-{}", js_number_to_string(-x));
    }
    // `{:e}` gives the fewest digits that round-trip ("1.2345e3", "5e-7"), but when two such
    // digit strings are equally close it may not pick the even one as JavaScript does
    // (85239602610219.125 must print as "85239602610219.12"). Rounding the exact value to that many
    // digits, which Rust does half-to-even, gives JavaScript's choice.
    let shortest = format!("{x:e}");
    let precision = shortest
        .split('e')
        .next()
        .map_or(0, |m| m.bytes().filter(u8::is_ascii_digit).count().saturating_sub(1));
    let sci = format!("{x:.precision$e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    let n = exponent.parse::<i64>().unwrap_or(0) + 1;
    if k <= n && n <= 21 {
        let mut out = digits;
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
        out
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at_checked(n as usize).unwrap_or((&digits, ""));
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        let mut out = "0.".to_owned();
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
        out
    } else {
        let e = n - 1;
        let sign = if e >= 0 { '+' } else { '-' };
        let (first, rest) = digits.split_at_checked(1).unwrap_or(("0", ""));
        if rest.is_empty() {
            format!("{first}e{sign}{}", e.abs())
        } else {
            format!("{first}.{rest}e{sign}{}", e.abs())
        }
    }
}

/// JavaScript's `StrWhiteSpaceChar`: white space and line terminators.
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{a}' | '\u{b}' | '\u{c}' | '\u{d}' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

/// JavaScript `Number(string)`.
fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_whitespace);
    if t.is_empty() {
        return 0.0;
    }
    let bytes = t.as_bytes();
    if let [b'0', prefix, ..] = bytes {
        let radix = match prefix {
            b'x' | b'X' => 16,
            b'o' | b'O' => 8,
            b'b' | b'B' => 2,
            _ => 0,
        };
        if radix != 0 {
            return t.get(2..).map_or(f64::NAN, |digits| parse_radix(digits, radix));
        }
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    if is_decimal_literal(bytes) {
        t.parse::<f64>().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`
fn is_decimal_literal(bytes: &[u8]) -> bool {
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut mantissa_digits = i - int_start;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        mantissa_digits += i - frac_start;
    }
    if mantissa_digits == 0 {
        return false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == bytes.len()
}

/// Parses the digits of a `0x`/`0o`/`0b` literal, rounding to nearest like JavaScript.
fn parse_radix(digits: &str, radix: u32) -> f64 {
    if digits.is_empty() {
        return f64::NAN;
    }
    let bits = radix.trailing_zeros();
    let mut acc: u128 = 0;
    let mut shift: i32 = 0;
    let mut sticky = false;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else {
            return f64::NAN;
        };
        if acc >> (128 - bits) == 0 {
            acc = (acc << bits) | u128::from(d);
        } else {
            // Over 124 significant bits already: later digits only matter for rounding.
            shift = shift.saturating_add(bits as i32);
            sticky |= d != 0;
        }
    }
    let mantissa = (acc | u128::from(sticky)) as f64;
    if shift == 0 {
        mantissa
    } else {
        mantissa * 2f64.powi(shift)
    }
}

/// GrowthBook's `paddedVersionString`: a string whose ordering is the version ordering.
fn padded_version(value: &Value) -> String {
    let input: Cow<'_, str> = match value {
        Value::Number(n) => Cow::Owned(js_number_to_string(number(n))),
        Value::String(s) if !s.is_empty() => Cow::Borrowed(s),
        _ => Cow::Borrowed("0"),
    };
    let mut s: &str = input.strip_prefix('v').unwrap_or(&input);
    // Build metadata: from the first `+` that no line terminator follows (JavaScript's `\+.*$`).
    let tail_start = s
        .char_indices()
        .rev()
        .find(|(_, c)| matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    if let Some(plus) = s[tail_start..].find('+') {
        s = &s[..tail_start + plus];
    }
    let mut parts: Vec<&str> = s.split(['.', '-']).collect();
    // A plain release sorts after its pre-releases: "~" is above every other printable ASCII.
    if parts.len() == 3 {
        parts.push("~");
    }
    let mut out = String::with_capacity(s.len() + 16);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.extend(std::iter::repeat_n(' ', 5usize.saturating_sub(part.len())));
        }
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(condition: Value, attributes: Value) -> bool {
        Condition::compile(&condition)
            .unwrap_or_else(|e| panic!("{condition} should compile: {e}"))
            .matches(&attributes)
    }

    fn compile_err(condition: Value) -> ConditionError {
        match Condition::compile(&condition) {
            Ok(_) => panic!("{condition} should be rejected"),
            Err(e) => e,
        }
    }

    /// The shared vectors (`cohort-vectors`; its loader refuses duplicate names and a case with
    /// both or neither of an expected result and an error), every failure listed at once.
    #[test]
    fn shared_vectors() {
        use cohort_vectors::ConditionExpectation;

        let cases = cohort_vectors::conditions().cases;
        assert!(cases.len() >= 120, "only {} vectors", cases.len());
        let mut failures = Vec::new();
        for case in &cases {
            let name = &case.name;
            let compiled = Condition::compile(&case.condition);
            match &case.expected {
                ConditionExpectation::Evaluates { matches, .. } => match compiled {
                    Ok(c) => {
                        let got = c.matches(&case.attributes);
                        if got != *matches {
                            failures.push(format!("{name}: expected {matches}, got {got}"));
                        }
                    }
                    Err(e) => failures.push(format!("{name}: unexpected compile error {e}")),
                },
                ConditionExpectation::Rejected { error_contains } => match compiled {
                    Ok(_) => failures.push(format!("{name}: compiled, expected `{error_contains}`")),
                    Err(e) if !e.to_string().contains(error_contains.as_str()) => {
                        failures.push(format!("{name}: error `{e}` lacks `{error_contains}`"))
                    }
                    Err(_) => {}
                },
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn empty_condition_is_always_true() {
        let c = Condition::compile(&json!({})).unwrap();
        assert!(c.is_always_true());
        assert!(c.matches(&json!({})));
        assert!(c.matches(&json!(null)));
        assert!(c.matches(&json!("not an object")));
        assert!(!Condition::compile(&json!({"a": 1})).unwrap().is_always_true());
        assert!(!Condition::compile(&json!({"$and": []})).unwrap().is_always_true());
    }

    #[test]
    fn non_object_attributes_are_no_attributes() {
        let c = Condition::compile(&json!({"country": {"$exists": false}})).unwrap();
        for attrs in [json!(null), json!(3), json!("US"), json!([1, 2]), json!(true)] {
            assert!(c.matches(&attrs), "{attrs}");
        }
        assert!(!check(json!({"country": "US"}), json!(["US"])));
    }

    #[test]
    fn error_paths() {
        let cases = [
            (json!({"age": {"$foo": 1}}), ".age.$foo", "unknown operator `$foo`"),
            (
                json!({"$or": [{"a": 1}, {"b": {"$in": 3}}]}),
                ".$or[1].b.$in",
                "`$in` expects an array",
            ),
            (
                json!({"browser": {"$regex": "(unclosed"}}),
                ".browser.$regex",
                "invalid regex",
            ),
            (
                json!({"tags": {"$elemMatch": {"$gt": [1]}}}),
                ".tags.$elemMatch.$gt",
                "`$gt` expects a number or a string",
            ),
            (json!({"$or": {"a": 1}}), ".$or", "`$or` expects an array of conditions"),
            (json!({"$and": [1]}), ".$and[0]", "expected a condition object"),
            (json!({"$not": [1]}), ".$not", "`$not` expects a condition object"),
            (json!([1]), "", "expected a condition object"),
            (
                json!({"user.plan": {"$size": "3"}}),
                ".user.plan.$size",
                "`$size` expects",
            ),
            (
                json!({"odd key": {"$in": 1}}),
                "[\"odd key\"].$in",
                "`$in` expects an array",
            ),
            (
                json!({"t": {"$all": [1, {"$nope": 1}]}}),
                ".t.$all[1].$nope",
                "unknown operator",
            ),
            (json!({"t": {"$not": {"$in": "x"}}}), ".t.$not.$in", "expects an array"),
            (json!({"$in": [1]}), ".$in", "value operator"),
            (json!({"id": {"$inGroup": "g"}}), ".id.$inGroup", "saved groups"),
            (
                json!({"plan": {"$or": [{"$eq": "pro"}]}}),
                ".plan.$or",
                "`$or` combines whole conditions, so use it at the condition level",
            ),
        ];
        for (condition, path, reason) in cases {
            let e = compile_err(condition.clone());
            assert_eq!(e.path, path, "path for {condition}");
            assert!(e.reason.contains(reason), "reason `{}` for {condition}", e.reason);
        }
    }

    /// Errors say what was found instead of what was expected, for every JSON type.
    #[test]
    fn errors_describe_the_value_found() {
        for (operand, found) in [
            (json!(null), "found null"),
            (json!(true), "found a boolean"),
            (json!(1), "found a number"),
            (json!("x"), "found a string"),
            (json!({}), "found an object"),
        ] {
            let e = compile_err(json!({"$or": operand}));
            assert!(e.reason.ends_with(found), "`{}` should end with `{found}`", e.reason);
        }
        assert!(compile_err(json!({"$not": [1]})).reason.ends_with("found an array"));
    }

    /// Stringifying a nested array for a comparison stops at a fixed depth: what lies deeper reads
    /// as empty, so an attribute's nesting cannot make the comparison recurse without bound.
    #[test]
    fn stringification_depth_is_bounded() {
        let nested = |levels: usize| (0..levels).fold(json!("x"), |x, _| json!([x]));
        assert_eq!(js_to_string(&nested(MAX_STRINGIFY_DEPTH), 0), "x");
        assert_eq!(js_to_string(&nested(MAX_STRINGIFY_DEPTH + 1), 0), "");
    }

    #[test]
    fn display_and_error_trait() {
        let e = compile_err(json!({"a": {"$bad": 1}}));
        assert_eq!(e.to_string(), ".a.$bad: unknown operator `$bad`");
        let root = compile_err(json!("x"));
        assert!(!root.to_string().starts_with(':'));
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().contains("$bad"));
    }

    #[test]
    fn nesting_is_capped() {
        let mut deep = json!({"a": 1});
        for _ in 0..40 {
            deep = json!({"$not": deep});
        }
        let e = compile_err(deep);
        assert!(e.reason.contains("nested too deeply"), "{}", e.reason);
        assert!(e.path.starts_with(".$not.$not"));

        let mut ok = json!({"a": 1});
        for _ in 0..25 {
            ok = json!({"$not": ok});
        }
        // An odd number of negations.
        assert!(!check(ok, json!({"a": 1})));

        let mut value = json!({"$eq": 1});
        for _ in 0..40 {
            value = json!({"$not": value});
        }
        assert!(compile_err(json!({"a": value})).reason.contains("nested too deeply"));

        let mut literal = json!(1);
        for _ in 0..40 {
            literal = json!([literal]);
        }
        assert!(compile_err(json!({"a": literal})).reason.contains("nested too deeply"));
    }

    /// Every way a condition nests counts towards the cap, by its exact number of levels: the
    /// deepest nesting of each shape that still compiles, and one more that does not.
    #[test]
    fn every_nesting_shape_is_capped_exactly() {
        type Shape = (&'static str, Value, fn(Value) -> Value, fn(Value) -> Value, usize);
        let shapes: [Shape; 10] = [
            ("$and", json!({"a": 1}), |x| json!({"$and": [x]}), |x| x, 31),
            ("$or", json!({"a": 1}), |x| json!({"$or": [x]}), |x| x, 31),
            ("$not (condition)", json!({"a": 1}), |x| json!({"$not": x}), |x| x, 31),
            (
                "$not (value)",
                json!({"$eq": 1}),
                |x| json!({"$not": x}),
                |x| json!({"a": x}),
                15,
            ),
            (
                "$all",
                json!({"$eq": 1}),
                |x| json!({"$all": [x]}),
                |x| json!({"a": x}),
                15,
            ),
            (
                "$size",
                json!({"$gt": 0}),
                |x| json!({"$size": x}),
                |x| json!({"a": x}),
                15,
            ),
            (
                "$elemMatch (value)",
                json!({"$eq": 1}),
                |x| json!({"$elemMatch": x}),
                |x| json!({"a": x}),
                15,
            ),
            (
                "$elemMatch (condition)",
                json!({"b": 1}),
                |x| json!({"c": {"$elemMatch": x}}),
                |x| x,
                10,
            ),
            ("literal array", json!(1), |x| json!([x]), |x| json!({"a": x}), 31),
            ("literal object", json!(1), |x| json!({"k": x}), |x| json!({"a": x}), 31),
        ];
        let mut wrong = Vec::new();
        for (name, base, wrap, top, deepest) in shapes {
            let nested = |levels: usize| top((0..levels).fold(base.clone(), |x, _| wrap(x)));
            let compiles = |levels: usize| Condition::compile(&nested(levels)).is_ok();
            let found = (0..=64).take_while(|&levels| compiles(levels)).last();
            if found != Some(deepest) {
                wrong.push(format!("{name}: {found:?} levels compile, expected {deepest}"));
                continue;
            }
            let e = compile_err(nested(deepest + 1));
            assert!(e.reason.contains("nested too deeply"), "{name}: {}", e.reason);
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn deep_attributes_do_not_overflow() {
        let mut attr = json!("x");
        for _ in 0..100 {
            attr = json!([attr]);
        }
        let attrs = json!({"a": attr});
        assert!(check(json!({"a": "x"}), attrs.clone()));
        assert!(check(json!({"a": {"$regex": "^x$"}}), attrs.clone()));
        assert!(!check(json!({"a": ["x"]}), attrs));
    }

    #[test]
    fn membership_is_strict_equality_over_a_sorted_list() {
        let long: Vec<Value> = (0..500).map(|i| json!(format!("c{i:03}"))).collect();
        assert!(check(json!({"c": {"$in": long}}), json!({"c": "c499"})));
        assert!(!check(json!({"c": {"$in": long}}), json!({"c": "c500"})));
        // `-0 === 0`; a number never equals its string; arrays and objects in the list never match.
        assert!(check(json!({"n": {"$in": [-0.0]}}), json!({"n": 0})));
        assert!(check(json!({"n": {"$in": [0]}}), json!({"n": -0.0})));
        assert!(!check(json!({"n": {"$in": ["1"]}}), json!({"n": 1})));
        assert!(!check(json!({"a": {"$in": [[1], {"x": 1}]}}), json!({"a": [1]})));
        assert!(check(json!({"a": {"$in": [null, true]}}), json!({})));
        assert!(check(json!({"a": {"$in": [false, 3]}}), json!({"a": [2, false]})));
        assert!(!check(json!({"a": {"$in": [false]}}), json!({"a": true})));
        assert!(check(json!({"a": {"$nin": [2, 2, 1]}}), json!({"a": 3})));
        // Case folding applies to the attribute and to each string element of an array attribute.
        assert!(check(json!({"l": {"$ini": ["DE-de"]}}), json!({"l": "de-DE"})));
        assert!(check(json!({"l": {"$ini": ["ΟΔΟΣ"]}}), json!({"l": ["x", "οδος"]})));
        assert!(check(json!({"l": {"$ini": ["οδος"]}}), json!({"l": "ΟΔΟΣ"})));
        assert!(!check(json!({"l": {"$nini": ["A", 1]}}), json!({"l": ["b", 1]})));
    }

    #[test]
    fn final_sigma_folds_as_str_to_lowercase_does() {
        for (s, folded) in [
            ("ΟΔΟΣ", "οδος"),
            ("ΟΔΟΣ", "οδοσ"),
            ("Σ", "σ"),
            ("ABC", "abc"),
            ("İ", "i̇"),
        ] {
            assert_eq!(
                lowercase_equals(s, folded),
                s.to_lowercase() == folded,
                "{s} vs {folded}"
            );
        }
    }

    #[test]
    fn utf16_order_matches_javascript_with_and_without_the_fast_path() {
        let alphabet = ["a", "~", "\u{e000}", "\u{ffff}", "😀", "é"];
        let strings: Vec<String> = alphabet
            .iter()
            .flat_map(|a| alphabet.iter().map(move |b| format!("{a}{b}")))
            .chain(alphabet.iter().map(|a| a.to_string()))
            .collect();
        for a in &strings {
            for b in &strings {
                assert_eq!(
                    utf16_cmp(a, b),
                    a.encode_utf16().cmp(b.encode_utf16()),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn conditions_of_one_tenant_share_attribute_slots() {
        let mut slots = AttributeSlots::default();
        let first = Condition::compile_into(&json!({"v": {"$vgt": "1.2"}, "c": "DE"}), &mut slots).unwrap();
        let second = Condition::compile_into(
            &json!({"$or": [{"v": {"$vlt": "2"}}], "t": {"$elemMatch": {"k": 1}}}),
            &mut slots,
        )
        .unwrap();
        // `v`, `c` and `t` once each; `k` tests array elements and has no slot.
        assert_eq!(slots.len(), 3);
        assert_eq!((first.slot_count, second.slot_count), (2, 3));
        let attributes = json!({"v": "1.10.0", "c": "DE", "t": [{"k": 1}]});
        let shared = Attributes::new(&attributes, slots.len());
        assert!(first.matches_attributes(&shared));
        assert!(second.matches_attributes(&shared));
        // A cache smaller than the numbering still answers correctly, without caching.
        let too_small = Attributes::new(&attributes, 0);
        assert!(first.matches_attributes(&too_small) && second.matches_attributes(&too_small));
    }

    #[test]
    fn regexes_compile_once_and_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Condition>();
        let c = Condition::compile(&json!({"ua": {"$regex": "Mobile"}})).unwrap();
        let copy = c.clone();
        assert!(copy.matches(&json!({"ua": "Android Mobile"})));
        assert!(!c.matches(&json!({"ua": "Desktop"})));
    }

    #[test]
    fn js_number_formatting() {
        let cases = [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (100.0, "100"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.25e-7, "1.25e-7"),
            (123.456, "123.456"),
            (0.1 + 0.2, "0.30000000000000004"),
            (9007199254740993.0, "9007199254740992"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            // Exact ties between two shortest digit strings go to the even one.
            (85_239_602_610_219.0 + 0.125, "85239602610219.12"),
            (1_233_845_269_586_031.0 + 0.25, "1233845269586031.2"),
            (-(3_968_336_725_335.0 + 0.031_25), "-3968336725335.0312"),
        ];
        for (x, s) in cases {
            assert_eq!(js_number_to_string(x), s, "{x:e}");
        }
    }

    #[test]
    fn js_string_to_number() {
        let cases: [(&str, f64); 20] = [
            ("", 0.0),
            ("  \n\t ", 0.0),
            ("42", 42.0),
            (" 42 ", 42.0),
            ("\u{feff}7\u{a0}", 7.0),
            ("-3.5", -3.5),
            ("+3", 3.0),
            ("1.", 1.0),
            (".5", 0.5),
            ("1e3", 1000.0),
            ("1E-2", 0.01),
            ("0x1F", 31.0),
            ("0X1f", 31.0),
            ("0o17", 15.0),
            ("0b101", 5.0),
            ("007", 7.0),
            ("Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("0x10000000000000000000000000000000001", 2f64.powi(136)),
            ("0x1fffffffffffff8", 144115188075855870.0),
        ];
        for (s, n) in cases {
            assert_eq!(string_to_number(s), n, "{s:?}");
        }
        for s in [
            "abc", "1,000", "1_000", "0x", "-0x10", "1e", "e5", ".", "+", "inf", "NaN", "infinity", "12px", "\u{85}1",
            "0x1g",
        ] {
            assert!(string_to_number(s).is_nan(), "{s:?}");
        }
    }

    #[test]
    fn version_padding() {
        assert_eq!(padded_version(&json!("1.2.3")), "    1-    2-    3-~");
        assert_eq!(padded_version(&json!("v1.2.3+build.7")), "    1-    2-    3-~");
        assert_eq!(padded_version(&json!("1.0.0-beta.2")), "    1-    0-    0-beta-    2");
        assert_eq!(padded_version(&json!(2)), "    2");
        assert_eq!(padded_version(&json!(null)), "    0");
        assert_eq!(padded_version(&json!("")), "    0");
        assert_eq!(padded_version(&json!(true)), "    0");
        assert_eq!(padded_version(&json!("123456.1.1")), "123456-    1-    1-~");
        assert_eq!(padded_version(&json!("1.2+a\n+b")), "    1-2+a\n");
    }

    #[test]
    fn relational_comparison_follows_javascript() {
        // Strings compare by UTF-16 code units: U+FF5E sorts after U+1F600 in UTF-8 but not in UTF-16.
        assert!(check(json!({"s": {"$gt": "\u{1F600}"}}), json!({"s": "\u{FF5E}"})));
        assert!(check(json!({"n": {"$gt": true}}), json!({"n": 2})));
        assert!(check(json!({"n": {"$lt": "1e3"}}), json!({"n": 999})));
        assert!(!check(json!({"n": {"$lt": "abc"}}), json!({"n": 1})));
        assert!(!check(json!({"n": {"$gte": "abc"}}), json!({"n": 1})));
        assert!(check(json!({"n": {"$gt": 4}}), json!({"n": [5]})));
        assert!(check(json!({"n": {"$gt": "a"}}), json!({"n": ["b"]})));
        assert!(!check(json!({"n": {"$gt": 0}}), json!({"n": {"a": 1}})));
        assert!(check(json!({"n": {"$gte": 0, "$lte": 0}}), json!({})));
    }

    #[test]
    fn numbers_compare_as_f64() {
        assert!(check(json!({"n": 1}), json!({"n": 1.0})));
        assert!(check(json!({"n": {"$eq": 1.0}}), json!({"n": 1})));
        assert!(check(json!({"n": [1, {"x": 2.0}]}), json!({"n": [1.0, {"x": 2}]})));
        assert!(check(json!({"n": {"$in": [3.0]}}), json!({"n": 3})));
        assert!(check(json!({"n": {"$eq": -1}}), json!({"n": -1.0})));
        assert!(check(json!({"n": u64::MAX}), json!({"n": 18446744073709551615.0})));
    }

    #[test]
    fn regex_case_insensitivity_is_ascii() {
        assert!(check(json!({"s": {"$regexi": "^abc$"}}), json!({"s": "ABC"})));
        assert!(!check(json!({"s": {"$regex": "^abc$"}}), json!({"s": "ABC"})));
        // An escaped slash (as written in JavaScript regex literals) is accepted.
        assert!(check(json!({"p": {"$regex": "^\\/a\\/b$"}}), json!({"p": "/a/b"})));
        assert!(check(json!({"p": {"$regex": "^/a/b$"}}), json!({"p": "/a/b"})));
        let e = compile_err(json!({"p": {"$regex": "(?=x)"}}));
        assert!(e.reason.starts_with("invalid regex"), "{}", e.reason);
    }

    #[test]
    fn never_panics_on_odd_attributes() {
        let conditions = [
            json!({"a": {"$vgt": "1.0.0"}}),
            json!({"a": {"$gt": 1, "$regex": "x", "$size": 1, "$all": ["x"]}}),
            json!({"a": {"$elemMatch": {"b": {"$exists": true}}}}),
            json!({"a.b.c": "1"}),
            json!({"a": 0}),
            json!({"a": {"$ini": ["X"]}}),
            json!({"a": {"$type": "object"}}),
        ];
        let attributes = [
            json!(null),
            json!({"a": null}),
            json!({"a": [null, 0, "", false, [], {}, [[1]], {"b": null}]}),
            json!({"a": {"b": {"c": [1]}}}),
            json!({"a": "\u{0}\u{FFFF}\u{10FFFF}"}),
            json!({"a": 1e308}),
            json!({"a": -1e-308}),
            json!({"a": u64::MAX}),
            json!({"a": i64::MIN}),
            json!({"a": "0x"}),
            json!({"a": "v+"}),
        ];
        for c in &conditions {
            let compiled = Condition::compile(c).unwrap();
            for a in &attributes {
                let _ = compiled.matches(a);
            }
        }
    }
}
