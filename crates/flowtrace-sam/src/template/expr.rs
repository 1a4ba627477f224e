//! Unresolved CloudFormation values: literals, lists, maps and intrinsic functions, read from
//! both the short (`!Ref`) and the long (`Ref:`, `Fn::GetAtt:`) forms.

use std::collections::BTreeMap;

use serde_yaml_ng::Value as Yaml;

use super::TemplateError;

/// A template value as written: literals, lists, maps and unresolved intrinsic functions.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Expr {
    /// YAML `null` (or an empty value).
    Null,
    /// A boolean literal.
    Bool(bool),
    /// A number literal, as written.
    Number(String),
    /// A string literal.
    String(String),
    /// A list.
    List(Vec<Expr>),
    /// A mapping that is not an intrinsic function.
    Map(BTreeMap<String, Expr>),
    /// `!Ref name`: a parameter, a pseudo parameter or a resource.
    Ref(String),
    /// `!GetAtt LogicalId.Attribute`.
    GetAtt {
        /// The resource.
        logical_id: String,
        /// The attribute (`Arn`, `StreamArn`, ...).
        attribute: String,
    },
    /// `!Sub template` or `!Sub [template, {Name: value}]`.
    Sub {
        /// The template string with `${...}` placeholders.
        template: String,
        /// The explicit variables of the two-element form.
        variables: BTreeMap<String, Expr>,
    },
    /// `!Join [delimiter, list]`.
    Join {
        /// The delimiter.
        delimiter: String,
        /// The list (a literal list or a list-valued expression).
        items: Box<Expr>,
    },
    /// `!Select [index, list]`.
    Select {
        /// The index.
        index: Box<Expr>,
        /// The list.
        list: Box<Expr>,
    },
    /// `!Split [delimiter, string]`.
    Split {
        /// The delimiter.
        delimiter: String,
        /// The string to split.
        source: Box<Expr>,
    },
    /// `!If [condition, then, else]`.
    If {
        /// The condition's name.
        condition: String,
        /// The value when the condition holds.
        then: Box<Expr>,
        /// The value otherwise.
        otherwise: Box<Expr>,
    },
    /// `!Not [condition]`.
    Not(Box<Expr>),
    /// `!Equals [a, b]`.
    Equals(Box<Expr>, Box<Expr>),
    /// `!And [...]`.
    And(Vec<Expr>),
    /// `!Or [...]`.
    Or(Vec<Expr>),
    /// `!Condition name` (or `{Condition: name}`) inside a condition.
    Condition(String),
    /// `!FindInMap [map, top-level key, second-level key]`.
    FindInMap {
        /// The mapping's name.
        map: Box<Expr>,
        /// The top-level key.
        top: Box<Expr>,
        /// The second-level key.
        second: Box<Expr>,
    },
    /// `!GetAZs region`: three availability zones of the region.
    GetAzs(Box<Expr>),
    /// `!Base64 value`.
    Base64(Box<Expr>),
    /// An intrinsic function this crate does not evaluate (`Fn::ImportValue`, `Fn::Cidr`, an
    /// unknown tag): reading it is fine, resolving it is an error.
    Unsupported {
        /// The function's long name (`Fn::ImportValue`) or tag (`!Foo`).
        function: String,
        /// Its argument.
        argument: Box<Expr>,
    },
}

impl Expr {
    /// The string of a string literal (numbers and booleans as written), else `None`.
    pub fn as_literal(&self) -> Option<String> {
        match self {
            Self::String(s) | Self::Number(s) => Some(s.clone()),
            Self::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The logical id of a `!Ref LogicalId`, else `None`.
    pub fn ref_target(&self) -> Option<&str> {
        match self {
            Self::Ref(name) => Some(name),
            _ => None,
        }
    }

    /// The member `key` of a map, else `None`.
    pub fn get(&self, key: &str) -> Option<&Expr> {
        match self {
            Self::Map(map) => map.get(key),
            _ => None,
        }
    }

    /// The logical ids and parameters this value refers to (`Ref`, `GetAtt`, `Sub` names).
    pub fn references(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&mut |e| match e {
            Self::Ref(name) => out.push(name.clone()),
            Self::GetAtt { logical_id, .. } => out.push(logical_id.clone()),
            Self::Sub { template, variables } => {
                if let Ok(parts) = parse_sub(template) {
                    for part in parts {
                        if let SubPart::Var(name) = part {
                            let base = name.split('.').next().unwrap_or(&name).to_owned();
                            if !variables.contains_key(&name) {
                                out.push(base);
                            }
                        }
                    }
                }
            }
            _ => {}
        });
        out.sort();
        out.dedup();
        out
    }

    /// Calls `f` on this value and every value inside it.
    pub(crate) fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Self::List(items) | Self::And(items) | Self::Or(items) => items.iter().for_each(|e| e.walk(f)),
            Self::Map(map) => map.values().for_each(|e| e.walk(f)),
            Self::Sub { variables, .. } => variables.values().for_each(|e| e.walk(f)),
            Self::Join { items, .. } => items.walk(f),
            Self::Select { index, list } => {
                index.walk(f);
                list.walk(f);
            }
            Self::Split { source, .. } => source.walk(f),
            Self::If { then, otherwise, .. } => {
                then.walk(f);
                otherwise.walk(f);
            }
            Self::Not(e) | Self::GetAzs(e) | Self::Base64(e) => e.walk(f),
            Self::Equals(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Self::FindInMap { map, top, second } => {
                map.walk(f);
                top.walk(f);
                second.walk(f);
            }
            Self::Unsupported { argument, .. } => argument.walk(f),
            Self::Null
            | Self::Bool(_)
            | Self::Number(_)
            | Self::String(_)
            | Self::Ref(_)
            | Self::GetAtt { .. }
            | Self::Condition(_) => {}
        }
    }

    /// The names of the conditions this value uses (`!If`, `!Condition`).
    pub(crate) fn condition_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&mut |e| match e {
            Self::If { condition, .. } | Self::Condition(condition) => out.push(condition.clone()),
            _ => {}
        });
        out
    }

    /// Reads a YAML value; `at` names where it is, for error messages.
    pub(crate) fn from_yaml(value: &Yaml, at: &str) -> Result<Self, TemplateError> {
        match value {
            Yaml::Null => Ok(Self::Null),
            Yaml::Bool(b) => Ok(Self::Bool(*b)),
            Yaml::Number(n) => Ok(Self::Number(n.to_string())),
            Yaml::String(s) => Ok(Self::String(s.clone())),
            Yaml::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| Self::from_yaml(item, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()
                .map(Self::List),
            Yaml::Mapping(mapping) => {
                if mapping.len() == 1
                    && let Some((Yaml::String(key), arg)) = mapping.iter().next()
                    && (key == "Ref" || key.starts_with("Fn::") || (key == "Condition" && arg.is_string()))
                {
                    return intrinsic(key, arg, at);
                }
                let mut map = BTreeMap::new();
                for (key, item) in mapping {
                    let key =
                        scalar_key(key).ok_or_else(|| TemplateError::invalid(at, "a mapping key is not a string"))?;
                    let inner = Self::from_yaml(item, &format!("{at}.{key}"))?;
                    map.insert(key, inner);
                }
                Ok(Self::Map(map))
            }
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let tag = tag.trim_start_matches('!');
                let function = match tag {
                    "Ref" | "Condition" => tag.to_owned(),
                    other => format!("Fn::{other}"),
                };
                intrinsic(&function, &tagged.value, at)
            }
        }
    }
}

/// A YAML mapping key as a string (numbers and booleans as written).
pub(crate) fn scalar_key(key: &Yaml) -> Option<String> {
    match key {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn bad(at: &str, function: &str, expected: &str) -> TemplateError {
    TemplateError::invalid(at, format!("{function} takes {expected}"))
}

fn string_arg(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn seq_arg(value: &Yaml, len: std::ops::RangeInclusive<usize>) -> Option<&[Yaml]> {
    match value {
        Yaml::Sequence(items) if len.contains(&items.len()) => Some(items),
        _ => None,
    }
}

fn boxed(value: &Yaml, at: &str) -> Result<Box<Expr>, TemplateError> {
    Expr::from_yaml(value, at).map(Box::new)
}

fn intrinsic(function: &str, arg: &Yaml, at: &str) -> Result<Expr, TemplateError> {
    let at = &format!("{at} ({function})");
    match function {
        "Ref" => string_arg(arg).map(Expr::Ref).ok_or_else(|| bad(at, function, "a name")),
        "Condition" => string_arg(arg).map(Expr::Condition).ok_or_else(|| bad(at, function, "a condition name")),
        "Fn::GetAtt" => {
            let (logical_id, attribute) = match arg {
                Yaml::String(s) => s.split_once('.').map(|(a, b)| (a.to_owned(), b.to_owned())),
                Yaml::Sequence(items) if items.len() == 2 => string_arg(&items[0]).zip(string_arg(&items[1])),
                _ => None,
            }
            .filter(|(a, b)| !a.is_empty() && !b.is_empty())
            .ok_or_else(|| bad(at, function, "LogicalId.Attribute or [LogicalId, Attribute]"))?;
            Ok(Expr::GetAtt { logical_id, attribute })
        }
        "Fn::Sub" => {
            let (template, variables) = match arg {
                Yaml::String(s) => (s.clone(), BTreeMap::new()),
                Yaml::Sequence(items) if items.len() == 2 => {
                    let template = string_arg(&items[0]).ok_or_else(|| bad(at, function, "a string first"))?;
                    let Yaml::Mapping(vars) = &items[1] else {
                        return Err(bad(at, function, "a mapping of variables second"));
                    };
                    let mut variables = BTreeMap::new();
                    for (key, value) in vars {
                        let key = scalar_key(key).ok_or_else(|| bad(at, function, "string variable names"))?;
                        let value = Expr::from_yaml(value, &format!("{at}.{key}"))?;
                        variables.insert(key, value);
                    }
                    (template, variables)
                }
                _ => return Err(bad(at, function, "a string or [string, {variables}]")),
            };
            parse_sub(&template).map_err(|message| TemplateError::invalid(at, message))?;
            Ok(Expr::Sub { template, variables })
        }
        "Fn::Join" => {
            let items = seq_arg(arg, 2..=2).ok_or_else(|| bad(at, function, "[delimiter, list]"))?;
            let delimiter = string_arg(&items[0]).ok_or_else(|| bad(at, function, "a string delimiter"))?;
            Ok(Expr::Join { delimiter, items: boxed(&items[1], at)? })
        }
        "Fn::Select" => {
            let items = seq_arg(arg, 2..=2).ok_or_else(|| bad(at, function, "[index, list]"))?;
            Ok(Expr::Select { index: boxed(&items[0], at)?, list: boxed(&items[1], at)? })
        }
        "Fn::Split" => {
            let items = seq_arg(arg, 2..=2).ok_or_else(|| bad(at, function, "[delimiter, string]"))?;
            let delimiter = string_arg(&items[0]).ok_or_else(|| bad(at, function, "a string delimiter"))?;
            Ok(Expr::Split { delimiter, source: boxed(&items[1], at)? })
        }
        "Fn::If" => {
            let items = seq_arg(arg, 3..=3).ok_or_else(|| bad(at, function, "[condition, then, else]"))?;
            let condition = string_arg(&items[0]).ok_or_else(|| bad(at, function, "a condition name first"))?;
            Ok(Expr::If { condition, then: boxed(&items[1], at)?, otherwise: boxed(&items[2], at)? })
        }
        "Fn::Not" => {
            let items = seq_arg(arg, 1..=1).ok_or_else(|| bad(at, function, "[condition]"))?;
            Ok(Expr::Not(boxed(&items[0], at)?))
        }
        "Fn::Equals" => {
            let items = seq_arg(arg, 2..=2).ok_or_else(|| bad(at, function, "[a, b]"))?;
            Ok(Expr::Equals(boxed(&items[0], at)?, boxed(&items[1], at)?))
        }
        "Fn::And" | "Fn::Or" => {
            let items = seq_arg(arg, 2..=10).ok_or_else(|| bad(at, function, "2 to 10 conditions"))?;
            let items = items.iter().map(|i| Expr::from_yaml(i, at)).collect::<Result<Vec<_>, _>>()?;
            Ok(if function == "Fn::And" { Expr::And(items) } else { Expr::Or(items) })
        }
        "Fn::FindInMap" => {
            let items = seq_arg(arg, 3..=4).ok_or_else(|| bad(at, function, "[map, key, key]"))?;
            Ok(Expr::FindInMap {
                map: boxed(&items[0], at)?,
                top: boxed(&items[1], at)?,
                second: boxed(&items[2], at)?,
            })
        }
        "Fn::GetAZs" => Ok(Expr::GetAzs(boxed(arg, at)?)),
        "Fn::Base64" => Ok(Expr::Base64(boxed(arg, at)?)),
        other => Ok(Expr::Unsupported { function: other.to_owned(), argument: boxed(arg, at)? }),
    }
}

/// One piece of a `!Sub` template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SubPart {
    /// Literal text (with `${!x}` already turned into `${x}`).
    Text(String),
    /// `${Name}` or `${Name.Attr}`.
    Var(String),
}

/// Splits a `!Sub` template into text and variables.
pub(crate) fn parse_sub(template: &str) -> Result<Vec<SubPart>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("unclosed ${{ in {template:?}"))?;
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            text.push_str("${");
            text.push_str(literal);
            text.push('}');
        } else {
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("empty ${{}} in {template:?}"));
            }
            if !text.is_empty() {
                parts.push(SubPart::Text(std::mem::take(&mut text)));
            }
            parts.push(SubPart::Var(name.to_owned()));
        }
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(SubPart::Text(text));
    }
    Ok(parts)
}
