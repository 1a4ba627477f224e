//! Resolving [`Expr`]s: pseudo parameters, parameters, conditions and mappings from the
//! template, physical names and attributes from the caller.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use super::expr::{Expr, SubPart, parse_sub};
use super::{Context, Parameter};

/// The physical values of resources, which only the caller knows (once it has created them).
pub trait Physical {
    /// What `!Ref logical_id` gives for a resource (an ARN, a name, a URL), when known.
    fn reference(&self, logical_id: &str) -> Option<String>;
    /// What `!GetAtt logical_id.attribute` gives, when known.
    fn get_att(&self, logical_id: &str, attribute: &str) -> Option<String>;
}

/// Knows no physical value: resolves only what the template itself can.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPhysical;

impl Physical for NoPhysical {
    fn reference(&self, _logical_id: &str) -> Option<String> {
        None
    }

    fn get_att(&self, _logical_id: &str, _attribute: &str) -> Option<String> {
        None
    }
}

/// Physical values kept in maps, filled in as resources are created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhysicalMap {
    /// `!Ref` values by logical id.
    pub refs: BTreeMap<String, String>,
    /// `!GetAtt` values by (logical id, attribute).
    pub attributes: BTreeMap<(String, String), String>,
}

impl PhysicalMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets what `!Ref logical_id` gives.
    pub fn insert_ref(&mut self, logical_id: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.refs.insert(logical_id.into(), value.into());
        self
    }

    /// Sets what `!GetAtt logical_id.attribute` gives.
    pub fn insert_att(
        &mut self,
        logical_id: impl Into<String>,
        attribute: impl Into<String>,
        value: impl Into<String>,
    ) -> &mut Self {
        self.attributes.insert((logical_id.into(), attribute.into()), value.into());
        self
    }
}

impl Physical for PhysicalMap {
    fn reference(&self, logical_id: &str) -> Option<String> {
        self.refs.get(logical_id).cloned()
    }

    fn get_att(&self, logical_id: &str, attribute: &str) -> Option<String> {
        self.attributes.get(&(logical_id.to_owned(), attribute.to_owned())).cloned()
    }
}

/// Why an expression could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// `!Ref` to a name that is no parameter, pseudo parameter or resource.
    #[error("!Ref {0}: no such parameter, pseudo parameter or resource")]
    UnknownReference(String),
    /// `!Ref` to a resource whose physical value the caller does not (yet) know.
    #[error("!Ref {0}: the resource's physical value is not known")]
    NoPhysicalValue(String),
    /// `!GetAtt` the caller cannot answer.
    #[error("!GetAtt {logical_id}.{attribute}: not known")]
    NoAttribute {
        /// The resource.
        logical_id: String,
        /// The attribute.
        attribute: String,
    },
    /// A parameter without default and without override.
    #[error("parameter {0} has no value: it has no Default and was not overridden")]
    MissingParameter(String),
    /// A condition the template does not define.
    #[error("condition {0} is not defined")]
    UnknownCondition(String),
    /// A mapping key that `!FindInMap` did not find.
    #[error("!FindInMap [{map}, {top}, {second}]: no such entry")]
    NoMapping {
        /// The mapping.
        map: String,
        /// The top-level key.
        top: String,
        /// The second-level key.
        second: String,
    },
    /// An intrinsic function applied to values it does not take.
    #[error("{function}: {message}")]
    Invalid {
        /// The function (`Fn::Select`).
        function: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A value of the wrong kind where a string was expected.
    #[error("expected a string, found {0}")]
    NotAString(&'static str),
    /// An intrinsic function this crate does not evaluate.
    #[error("{0} is not supported")]
    Unsupported(String),
    /// Conditions or `!Sub` variables that refer to themselves, or nesting too deep.
    #[error("too deeply nested or circular: {0}")]
    TooDeep(String),
}

/// A resolved value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    NoValue,
    Str(String),
    List(Vec<String>),
    Bool(bool),
}

fn invalid(function: &'static str, message: impl Into<String>) -> ResolveError {
    ResolveError::Invalid { function, message: message.into() }
}

const MAX_DEPTH: usize = 64;

/// Everything resolution needs from the template, plus the caller's physical values.
pub(crate) struct Resolver<'a> {
    pub(crate) cx: &'a Context,
    pub(crate) parameters: &'a BTreeMap<String, Parameter>,
    pub(crate) conditions: &'a BTreeMap<String, bool>,
    pub(crate) mappings: &'a BTreeMap<String, Expr>,
    pub(crate) resources: &'a BTreeMap<String, String>,
    pub(crate) physical: &'a dyn Physical,
}

impl Resolver<'_> {
    pub(crate) fn string(&self, expr: &Expr) -> Result<Option<String>, ResolveError> {
        match self.eval(expr, 0)? {
            Val::NoValue => Ok(None),
            Val::Str(s) => Ok(Some(s)),
            Val::Bool(b) => Ok(Some(b.to_string())),
            Val::List(_) => Err(ResolveError::NotAString("a list")),
        }
    }

    pub(crate) fn list(&self, expr: &Expr) -> Result<Option<Vec<String>>, ResolveError> {
        match self.eval(expr, 0)? {
            Val::NoValue => Ok(None),
            Val::Str(s) => Ok(Some(vec![s])),
            Val::Bool(b) => Ok(Some(vec![b.to_string()])),
            Val::List(items) => Ok(Some(items)),
        }
    }

    pub(crate) fn json(&self, expr: &Expr, depth: usize) -> Result<Option<Value>, ResolveError> {
        if depth > MAX_DEPTH {
            return Err(ResolveError::TooDeep("a value".to_owned()));
        }
        Ok(Some(match expr {
            Expr::Null => Value::Null,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::String(s) => Value::String(s.clone()),
            Expr::Number(n) => serde_json::from_str::<serde_json::Number>(n)
                .map(Value::Number)
                .unwrap_or_else(|_| Value::String(n.clone())),
            Expr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(value) = self.json(item, depth + 1)? {
                        out.push(value);
                    }
                }
                Value::Array(out)
            }
            Expr::Map(map) => {
                let mut out = serde_json::Map::new();
                for (key, item) in map {
                    if let Some(value) = self.json(item, depth + 1)? {
                        out.insert(key.clone(), value);
                    }
                }
                Value::Object(out)
            }
            Expr::If { condition, then, otherwise } => {
                let chosen = if self.condition(condition)? { then } else { otherwise };
                return self.json(chosen, depth + 1);
            }
            other => match self.eval(other, depth + 1)? {
                Val::NoValue => return Ok(None),
                Val::Str(s) => Value::String(s),
                Val::Bool(b) => Value::Bool(b),
                Val::List(items) => Value::Array(items.into_iter().map(Value::String).collect()),
            },
        }))
    }

    fn condition(&self, name: &str) -> Result<bool, ResolveError> {
        self.conditions.get(name).copied().ok_or_else(|| ResolveError::UnknownCondition(name.to_owned()))
    }

    fn str_of(&self, expr: &Expr, depth: usize, function: &'static str) -> Result<String, ResolveError> {
        match self.eval(expr, depth + 1)? {
            Val::Str(s) => Ok(s),
            Val::Bool(b) => Ok(b.to_string()),
            Val::NoValue => Err(invalid(function, "AWS::NoValue where a string is needed")),
            Val::List(_) => Err(invalid(function, "a list where a string is needed")),
        }
    }

    fn bool_of(&self, expr: &Expr, depth: usize, function: &'static str) -> Result<bool, ResolveError> {
        match self.eval(expr, depth + 1)? {
            Val::Bool(b) => Ok(b),
            Val::Str(s) if s == "true" => Ok(true),
            Val::Str(s) if s == "false" => Ok(false),
            _ => Err(invalid(function, "a value that is not a condition")),
        }
    }

    fn reference(&self, name: &str) -> Result<Val, ResolveError> {
        let cx = self.cx;
        let pseudo = match name {
            "AWS::Region" => Some(cx.region.clone()),
            "AWS::AccountId" => Some(cx.account_id.clone()),
            "AWS::Partition" => Some(cx.partition.clone()),
            "AWS::StackName" => Some(cx.stack_name.clone()),
            "AWS::URLSuffix" => Some(cx.url_suffix.clone()),
            "AWS::StackId" => Some(format!(
                "arn:{}:cloudformation:{}:{}:stack/{}/00000000-0000-0000-0000-000000000000",
                cx.partition, cx.region, cx.account_id, cx.stack_name
            )),
            "AWS::NoValue" => return Ok(Val::NoValue),
            "AWS::NotificationARNs" => return Ok(Val::List(Vec::new())),
            _ => None,
        };
        if let Some(value) = pseudo {
            return Ok(Val::Str(value));
        }
        if let Some(parameter) = self.parameters.get(name) {
            let value = parameter.value.clone().ok_or_else(|| ResolveError::MissingParameter(name.to_owned()))?;
            return Ok(if parameter.is_list() {
                Val::List(if value.is_empty() {
                    Vec::new()
                } else {
                    value.split(',').map(|s| s.trim().to_owned()).collect()
                })
            } else {
                Val::Str(value)
            });
        }
        match self.physical.reference(name) {
            Some(value) => Ok(Val::Str(value)),
            None if self.resources.contains_key(name) => Err(ResolveError::NoPhysicalValue(name.to_owned())),
            None => Err(ResolveError::UnknownReference(name.to_owned())),
        }
    }

    fn get_att(&self, logical_id: &str, attribute: &str) -> Result<Val, ResolveError> {
        match self.physical.get_att(logical_id, attribute) {
            Some(value) => Ok(Val::Str(value)),
            None if self.resources.contains_key(logical_id) => {
                Err(ResolveError::NoAttribute { logical_id: logical_id.to_owned(), attribute: attribute.to_owned() })
            }
            None => Err(ResolveError::UnknownReference(logical_id.to_owned())),
        }
    }

    pub(crate) fn eval(&self, expr: &Expr, depth: usize) -> Result<Val, ResolveError> {
        if depth > MAX_DEPTH {
            return Err(ResolveError::TooDeep("an expression".to_owned()));
        }
        match expr {
            Expr::Null => Ok(Val::NoValue),
            Expr::Bool(b) => Ok(Val::Bool(*b)),
            Expr::Number(s) | Expr::String(s) => Ok(Val::Str(s.clone())),
            Expr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match self.eval(item, depth + 1)? {
                        Val::NoValue => {}
                        Val::Str(s) => out.push(s),
                        Val::Bool(b) => out.push(b.to_string()),
                        Val::List(_) => return Err(ResolveError::NotAString("a list inside a list")),
                    }
                }
                Ok(Val::List(out))
            }
            Expr::Map(_) => Err(ResolveError::NotAString("a mapping")),
            Expr::Ref(name) => self.reference(name),
            Expr::GetAtt { logical_id, attribute } => self.get_att(logical_id, attribute),
            Expr::Sub { template, variables } => {
                let parts = parse_sub(template).map_err(|m| invalid("Fn::Sub", m))?;
                let mut out = String::new();
                for part in parts {
                    match part {
                        SubPart::Text(text) => out.push_str(&text),
                        SubPart::Var(name) => {
                            let value = if let Some(explicit) = variables.get(&name) {
                                self.str_of(explicit, depth, "Fn::Sub")?
                            } else {
                                let resolved = match name.split_once('.') {
                                    Some((id, attr)) if !self.parameters.contains_key(&name) => {
                                        self.get_att(id, attr)?
                                    }
                                    _ => self.reference(&name)?,
                                };
                                match resolved {
                                    Val::Str(s) => s,
                                    Val::Bool(b) => b.to_string(),
                                    Val::List(_) => return Err(invalid("Fn::Sub", format!("${{{name}}} is a list"))),
                                    Val::NoValue => {
                                        return Err(invalid("Fn::Sub", format!("${{{name}}} has no value")));
                                    }
                                }
                            };
                            out.push_str(&value);
                        }
                    }
                }
                Ok(Val::Str(out))
            }
            Expr::Join { delimiter, items } => match self.eval(items, depth + 1)? {
                Val::List(items) => Ok(Val::Str(items.join(delimiter))),
                Val::Str(s) => Ok(Val::Str(s)),
                _ => Err(invalid("Fn::Join", "the second argument is not a list")),
            },
            Expr::Select { index, list } => {
                let index = self.str_of(index, depth, "Fn::Select")?;
                let index: usize = index
                    .trim()
                    .parse()
                    .map_err(|_| invalid("Fn::Select", format!("index {index:?} is not a number")))?;
                let Val::List(items) = self.eval(list, depth + 1)? else {
                    return Err(invalid("Fn::Select", "the second argument is not a list"));
                };
                let len = items.len();
                items
                    .into_iter()
                    .nth(index)
                    .map(Val::Str)
                    .ok_or_else(|| invalid("Fn::Select", format!("index {index} out of a list of {len}")))
            }
            Expr::Split { delimiter, source } => {
                if delimiter.is_empty() {
                    return Err(invalid("Fn::Split", "the delimiter is empty"));
                }
                let source = self.str_of(source, depth, "Fn::Split")?;
                Ok(Val::List(source.split(delimiter.as_str()).map(str::to_owned).collect()))
            }
            Expr::If { condition, then, otherwise } => {
                let chosen = if self.condition(condition)? { then } else { otherwise };
                self.eval(chosen, depth + 1)
            }
            Expr::Not(inner) => Ok(Val::Bool(!self.bool_of(inner, depth, "Fn::Not")?)),
            Expr::Equals(a, b) => {
                let a = self.eval(a, depth + 1)?;
                let b = self.eval(b, depth + 1)?;
                let norm = |v: Val| match v {
                    Val::Bool(b) => Val::Str(b.to_string()),
                    other => other,
                };
                Ok(Val::Bool(norm(a) == norm(b)))
            }
            Expr::And(items) => {
                let mut all = true;
                for item in items {
                    all &= self.bool_of(item, depth, "Fn::And")?;
                }
                Ok(Val::Bool(all))
            }
            Expr::Or(items) => {
                let mut any = false;
                for item in items {
                    any |= self.bool_of(item, depth, "Fn::Or")?;
                }
                Ok(Val::Bool(any))
            }
            Expr::Condition(name) => Ok(Val::Bool(self.condition(name)?)),
            Expr::FindInMap { map, top, second } => {
                let map = self.str_of(map, depth, "Fn::FindInMap")?;
                let top = self.str_of(top, depth, "Fn::FindInMap")?;
                let second = self.str_of(second, depth, "Fn::FindInMap")?;
                let found = self.mappings.get(&map).and_then(|m| m.get(&top)).and_then(|m| m.get(&second));
                match found {
                    Some(value) => self.eval(value, depth + 1),
                    None => Err(ResolveError::NoMapping { map, top, second }),
                }
            }
            Expr::GetAzs(region) => {
                let region = match self.eval(region, depth + 1)? {
                    Val::Str(s) if !s.is_empty() => s,
                    _ => self.cx.region.clone(),
                };
                Ok(Val::List(["a", "b", "c"].iter().map(|z| format!("{region}{z}")).collect()))
            }
            Expr::Base64(inner) => {
                let text = self.str_of(inner, depth, "Fn::Base64")?;
                Ok(Val::Str(base64::engine::general_purpose::STANDARD.encode(text)))
            }
            Expr::Unsupported { function, .. } => Err(ResolveError::Unsupported(function.clone())),
        }
    }
}
