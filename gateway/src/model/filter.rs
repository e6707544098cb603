//! Filters on subscriptions and integrations: which events create
//! deliveries. A filter is matched against `{"type", "shopId", "payload"}`;
//! its keys are dotted paths (`payload.total`), its values equality or
//! operator objects (`$eq $ne $gt $gte $lt $lte $in $nin $exists`),
//! combined with `$and`, `$or` and `$not`:
//!
//! ```json
//! {"type": "order_created", "payload.total": {"$gte": 100},
//!  "$or": [{"payload.currency": "EUR"}, {"shopId": {"$in": ["s1", "s2"]}}]}
//! ```
//!
//! Parsed once ([`Filter::parse`], which names the part that is wrong) and
//! evaluated at ingest, inside the transaction that creates the deliveries.

use serde_json::Value;
use std::cmp::Ordering;

/// A parsed filter, with the JSON it was written as (what reads return).
/// Two filters are equal when they were written the same.
#[derive(Debug, Clone)]
pub struct Filter {
    source: Value,
    root: Node,
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Filter {}

#[derive(Debug, Clone)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Field { path: Vec<String>, test: Test },
}

#[derive(Debug, Clone)]
enum Test {
    Eq(Value),
    Ne(Value),
    Compare(Ordering, bool, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
}

/// Why a filter was refused: where (`filter.payload.total.$gt`) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct FilterError {
    /// The part of the filter, as a dotted path starting at `filter`.
    pub at: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The most nodes a filter may have: filters are evaluated per event and
/// route, inside the writer's transaction.
const MAX_NODES: usize = 256;
/// The deepest a filter may nest.
const MAX_DEPTH: usize = 16;
/// The roots a path may start with.
const ROOTS: [&str; 3] = ["type", "shopId", "payload"];

impl Filter {
    /// Parses `value`, naming the part that is wrong.
    pub fn parse(value: &Value) -> Result<Self, FilterError> {
        let mut parser = Parser { nodes: 0 };
        let root = parser.node(value, "filter", 0)?;
        Ok(Self {
            source: value.clone(),
            root,
        })
    }

    /// The filter as it was written.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Whether the event (`type`, `shopId`, and its payload, parsed only
    /// if the filter looks at it) matches.
    pub fn matches(&self, event: &FilterInput<'_>) -> bool {
        self.root.matches(event)
    }
}

/// What a filter sees of an event.
#[derive(Debug)]
pub struct FilterInput<'a> {
    event_type: &'a str,
    shop_id: Option<&'a str>,
    payload: &'a str,
    parsed: std::cell::OnceCell<Value>,
}

impl<'a> FilterInput<'a> {
    /// An event's type, shop and payload (JSON text, parsed on first use).
    pub fn new(event_type: &'a str, shop_id: Option<&'a str>, payload: &'a str) -> Self {
        Self {
            event_type,
            shop_id,
            payload,
            parsed: std::cell::OnceCell::new(),
        }
    }

    /// The value at `path`, or `None` when it is absent.
    fn get(&self, path: &[String]) -> Option<Value> {
        let (root, rest) = path.split_first()?;
        match root.as_str() {
            "type" if rest.is_empty() => Some(Value::String(self.event_type.to_owned())),
            "shopId" if rest.is_empty() => self.shop_id.map(|s| Value::String(s.to_owned())),
            "payload" => {
                let payload = self
                    .parsed
                    .get_or_init(|| serde_json::from_str(self.payload).unwrap_or(Value::Null));
                rest.iter()
                    .try_fold(payload, |v, key| match v {
                        Value::Object(map) => map.get(key),
                        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                        _ => None,
                    })
                    .cloned()
            }
            _ => None,
        }
    }
}

impl Node {
    fn matches(&self, event: &FilterInput<'_>) -> bool {
        match self {
            Self::All(nodes) => nodes.iter().all(|n| n.matches(event)),
            Self::Any(nodes) => nodes.iter().any(|n| n.matches(event)),
            Self::Not(node) => !node.matches(event),
            Self::Field { path, test } => test.holds(event.get(path).as_ref()),
        }
    }
}

impl Test {
    fn holds(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Self::Exists(wanted), v) => v.is_some() == *wanted,
            (Self::Ne(expected), v) => v.is_none_or(|v| !same(v, expected)),
            (Self::Nin(set), v) => v.is_none_or(|v| !set.iter().any(|e| same(v, e))),
            (_, None) => false,
            (Self::Eq(expected), Some(v)) => same(v, expected),
            (Self::In(set), Some(v)) => set.iter().any(|e| same(v, e)),
            (Self::Compare(order, or_equal, bound), Some(v)) => match compare(v, bound) {
                Some(Ordering::Equal) => *or_equal,
                Some(o) => o == *order,
                None => false,
            },
        }
    }
}

/// Equality, with numbers compared by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => compare(a, b) == Some(Ordering::Equal),
        _ => a == b,
    }
}

/// Numbers with numbers, strings with strings; nothing else is ordered.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            // Integers exactly (both signed, both unsigned, or one negative
            // and one past i64); anything else as f64.
            let int = |n: &serde_json::Number| {
                n.as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
            };
            if let (Some(x), Some(y)) = (int(x), int(y)) {
                return Some(x.cmp(&y));
            }
            x.as_f64()?.partial_cmp(&y.as_f64()?)
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

struct Parser {
    nodes: usize,
}

impl Parser {
    fn error(at: &str, problem: impl Into<String>) -> FilterError {
        FilterError {
            at: at.to_owned(),
            problem: problem.into(),
        }
    }

    fn count(&mut self, at: &str, depth: usize) -> Result<(), FilterError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Self::error(
                at,
                format!("a filter may have at most {MAX_NODES} conditions"),
            ));
        }
        if depth > MAX_DEPTH {
            return Err(Self::error(
                at,
                format!("a filter may nest at most {MAX_DEPTH} deep"),
            ));
        }
        Ok(())
    }

    /// An object of conditions, all of which must hold.
    fn node(&mut self, value: &Value, at: &str, depth: usize) -> Result<Node, FilterError> {
        self.count(at, depth)?;
        let Value::Object(map) = value else {
            return Err(Self::error(at, "must be an object of conditions"));
        };
        let mut all = Vec::with_capacity(map.len());
        for (key, value) in map {
            let here = format!("{at}.{key}");
            all.push(match key.as_str() {
                "$and" => Node::All(self.list(value, &here, depth)?),
                "$or" => Node::Any(self.list(value, &here, depth)?),
                "$not" => Node::Not(Box::new(self.node(value, &here, depth + 1)?)),
                op if op.starts_with('$') => {
                    return Err(Self::error(
                        &here,
                        "unknown operator (use $and, $or, $not at this level)",
                    ));
                }
                path => self.field(path, value, &here, depth)?,
            });
        }
        Ok(match all.len() {
            1 => all.pop().expect("one"),
            _ => Node::All(all),
        })
    }

    fn list(&mut self, value: &Value, at: &str, depth: usize) -> Result<Vec<Node>, FilterError> {
        let Value::Array(items) = value else {
            return Err(Self::error(at, "must be an array of filters"));
        };
        if items.is_empty() {
            return Err(Self::error(at, "must not be empty"));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.node(item, &format!("{at}.{i}"), depth + 1))
            .collect()
    }

    fn field(
        &mut self,
        path: &str,
        value: &Value,
        at: &str,
        depth: usize,
    ) -> Result<Node, FilterError> {
        let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
        if parts.iter().any(String::is_empty) || !ROOTS.contains(&parts[0].as_str()) {
            return Err(Self::error(
                at,
                "a path starts with `type`, `shopId` or `payload` (e.g. `payload.total`)",
            ));
        }
        match value {
            Value::Object(ops) if ops.keys().all(|k| k.starts_with('$')) && !ops.is_empty() => {
                let mut tests = Vec::with_capacity(ops.len());
                for (op, operand) in ops {
                    self.count(at, depth + 1)?;
                    tests.push(Node::Field {
                        path: parts.clone(),
                        test: operator(op, operand, &format!("{at}.{op}"))?,
                    });
                }
                Ok(match tests.len() {
                    1 => tests.pop().expect("one"),
                    _ => Node::All(tests),
                })
            }
            Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => Err(Self::error(
                at,
                "mixes operators and fields; use only operators ({\"$gt\": 1}) or a value",
            )),
            other => Ok(Node::Field {
                path: parts,
                test: Test::Eq(other.clone()),
            }),
        }
    }
}

fn operator(op: &str, operand: &Value, at: &str) -> Result<Test, FilterError> {
    let scalar = |operand: &Value| match operand {
        Value::Number(_) | Value::String(_) => Ok(operand.clone()),
        _ => Err(Parser::error(at, "compares with a number or a string")),
    };
    let set = |operand: &Value| match operand {
        Value::Array(items) if items.len() <= MAX_NODES => Ok(items.clone()),
        Value::Array(_) => Err(Parser::error(
            at,
            format!("a list of at most {MAX_NODES} values"),
        )),
        _ => Err(Parser::error(at, "must be an array of values")),
    };
    Ok(match op {
        "$eq" => Test::Eq(operand.clone()),
        "$ne" => Test::Ne(operand.clone()),
        "$gt" => Test::Compare(Ordering::Greater, false, scalar(operand)?),
        "$gte" => Test::Compare(Ordering::Greater, true, scalar(operand)?),
        "$lt" => Test::Compare(Ordering::Less, false, scalar(operand)?),
        "$lte" => Test::Compare(Ordering::Less, true, scalar(operand)?),
        "$in" => Test::In(set(operand)?),
        "$nin" => Test::Nin(set(operand)?),
        "$exists" => match operand {
            Value::Bool(b) => Test::Exists(*b),
            _ => return Err(Parser::error(at, "must be true or false")),
        },
        _ => {
            return Err(Parser::error(
                at,
                "unknown operator (use $eq $ne $gt $gte $lt $lte $in $nin $exists)",
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(payload: &str) -> FilterInput<'_> {
        FilterInput::new("order_created", Some("s1"), payload)
    }

    fn check(filter: Value, payload: &str) -> bool {
        Filter::parse(&filter)
            .expect("parses")
            .matches(&input(payload))
    }

    #[test]
    fn operators() {
        let p = r#"{"total": 120, "currency": "EUR", "tags": ["a"], "n": 12345678901234567890}"#;
        assert!(check(json!({"payload.total": 120}), p));
        assert!(check(json!({"payload.total": 120.0}), p));
        assert!(check(
            json!({"payload.total": {"$gte": 100, "$lt": 200}}),
            p
        ));
        assert!(!check(json!({"payload.total": {"$gt": 120}}), p));
        assert!(check(
            json!({"payload.currency": {"$in": ["EUR", "USD"]}}),
            p
        ));
        assert!(check(json!({"payload.currency": {"$nin": ["USD"]}}), p));
        assert!(check(json!({"payload.missing": {"$exists": false}}), p));
        assert!(check(json!({"payload.missing": {"$ne": 1}}), p));
        assert!(!check(json!({"payload.missing": {"$gt": 1}}), p));
        assert!(check(json!({"payload.tags.0": "a"}), p));
        assert!(check(json!({"type": "order_created", "shopId": "s1"}), p));
        assert!(check(
            json!({"$or": [{"shopId": "s2"}, {"payload.currency": "EUR"}]}),
            p
        ));
        assert!(check(json!({"$not": {"payload.currency": "USD"}}), p));
        assert!(!check(
            json!({"$and": [{"payload.total": 120}, {"shopId": "s2"}]}),
            p
        ));
        assert!(
            !check(json!({"payload.currency": {"$gt": 5}}), p),
            "no order across types"
        );
        assert!(check(
            json!({"payload.n": {"$gt": 12345678901234567000_u64}}),
            p
        ));
    }

    #[test]
    fn errors_name_the_part() {
        let at = |f: Value| Filter::parse(&f).expect_err("refused").at;
        assert_eq!(
            at(json!({"payload.total": {"$gtt": 1}})),
            "filter.payload.total.$gtt"
        );
        assert_eq!(at(json!({"total": 1})), "filter.total");
        assert_eq!(at(json!({"$or": []})), "filter.$or");
        assert_eq!(at(json!({"$or": [{"x": 1}]})), "filter.$or.0.x");
        assert_eq!(at(json!({"payload.a": {"$in": 3}})), "filter.payload.a.$in");
        assert_eq!(
            at(json!({"payload.a": {"$gt": [1]}})),
            "filter.payload.a.$gt"
        );
        assert_eq!(at(json!([1])), "filter");
        assert_eq!(
            at(json!({"payload.a": {"$gt": 1, "b": 2}})),
            "filter.payload.a"
        );
        let deep = (0..20).fold(json!({"type": "x"}), |f, _| json!({"$not": f}));
        assert!(Filter::parse(&deep).is_err());
    }
}
