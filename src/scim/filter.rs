//! The SCIM filter language (RFC 7644 s3.4.2.2): a lexer and a recursive-descent parser with
//! the RFC's precedence (`not` over `and` over `or`), grouping, value paths
//! (`emails[type eq "work" and value co "@example.org"]`), every operator, and attribute paths
//! with or without their schema URN. Bounded in length and nesting; any input yields a filter or
//! an `invalidFilter` error, never a panic.

use super::error::{ScimError, ScimType};

/// Longest filter accepted, in bytes.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting of parentheses, brackets and `not`.
pub const MAX_DEPTH: usize = 32;

/// An attribute path: `[URI ":"] name ["." sub]`, names lower-cased (they are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN, when given (lower-cased).
    pub uri: Option<String>,
    /// The attribute name (lower-cased).
    pub name: String,
    /// The sub-attribute name (lower-cased).
    pub sub: Option<String>,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// equal
    Eq,
    /// not equal
    Ne,
    /// contains
    Co,
    /// starts with
    Sw,
    /// ends with
    Ew,
    /// greater than
    Gt,
    /// greater than or equal to
    Ge,
    /// less than
    Lt,
    /// less than or equal to
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

/// A comparison value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// null
    Null,
    /// true / false
    Bool(bool),
    /// A JSON number.
    Num(f64),
    /// A JSON string.
    Str(String),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attr pr`
    Present(AttrPath),
    /// `attr op value`
    Compare(AttrPath, Op, Value),
    /// `a and b`
    And(Box<Filter>, Box<Filter>),
    /// `a or b`
    Or(Box<Filter>, Box<Filter>),
    /// `not (a)`
    Not(Box<Filter>),
    /// `attr[filter]`: some value of the multi-valued complex `attr` matches the inner filter
    /// (whose paths are relative to that value).
    ValuePath(AttrPath, Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    LBracket,
    RBracket,
    Word(String),
    Str(String),
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidFilter, detail)
}

fn lex(input: &str) -> Result<Vec<Tok>, ScimError> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '(' => out.push(Tok::Open),
            ')' => out.push(Tok::Close),
            '[' => out.push(Tok::LBracket),
            ']' => out.push(Tok::RBracket),
            '"' => {
                // A JSON string: collect up to the closing quote, honouring escapes, then let
                // serde_json decode the escapes.
                let mut raw = String::from("\"");
                let mut closed = false;
                while let Some((_, d)) = chars.next() {
                    raw.push(d);
                    if d == '\\' {
                        match chars.next() {
                            Some((_, e)) => raw.push(e),
                            None => break,
                        }
                    } else if d == '"' {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(invalid("unterminated string"));
                }
                let s: String = serde_json::from_str(&raw).map_err(|_| invalid("malformed string"))?;
                out.push(Tok::Str(s));
            }
            c if is_word(c) => {
                let mut w = String::from(c);
                while let Some(&(_, d)) = chars.peek() {
                    if !is_word(d) {
                        break;
                    }
                    w.push(d);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
            other => return Err(invalid(format!("unexpected character '{}'", other.escape_default()))),
        }
    }
    Ok(out)
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '_' | '-' | '$' | '+')
}

/// Parses an attribute path (also used for `sortBy`, `attributes` and PATCH paths).
pub fn attr_path(word: &str) -> Option<AttrPath> {
    let lower = word.to_ascii_lowercase();
    let (uri, rest) = if lower.starts_with("urn:") {
        let i = lower.rfind(':')?;
        (Some(lower.get(..i)?.to_owned()), lower.get(i + 1..)?.to_owned())
    } else {
        (None, lower)
    };
    let mut parts = rest.splitn(2, '.');
    let name = parts.next()?.to_owned();
    let sub = parts.next().map(str::to_owned);
    let ok = |s: &str| {
        let mut cs = s.chars();
        // ATTRNAME = ALPHA *(nameChar); "$ref" is the one name starting with '$'.
        matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '$')
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !ok(&name) || sub.as_deref().is_some_and(|s| !ok(s)) {
        return None;
    }
    Some(AttrPath { uri, name, sub })
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn deeper(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH { Err(invalid("filter nested too deeply")) } else { Ok(()) }
    }

    fn or(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        let mut left = self.and(in_value_path)?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and(in_value_path)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        let mut left = self.unary(in_value_path)?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary(in_value_path)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        self.deeper()?;
        let f = self.unary_inner(in_value_path);
        self.depth -= 1;
        f
    }

    fn unary_inner(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        if self.keyword("not") && matches!(self.toks.get(self.pos + 1), Some(Tok::Open)) {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.group(in_value_path)?)));
        }
        if matches!(self.peek(), Some(Tok::Open)) {
            return self.group(in_value_path);
        }
        let word = match self.next() {
            Some(Tok::Word(w)) => w,
            Some(_) => return Err(invalid("expected an attribute name")),
            None => return Err(invalid("the filter ends too early")),
        };
        let path = attr_path(&word).ok_or_else(|| invalid(format!("'{}' is not an attribute path", shown(&word))))?;
        if matches!(self.peek(), Some(Tok::LBracket)) {
            if in_value_path || path.sub.is_some() {
                return Err(invalid("value filters cannot be nested"));
            }
            self.pos += 1;
            self.deeper()?;
            let inner = self.or(true)?;
            self.depth -= 1;
            if self.next() != Some(Tok::RBracket) {
                return Err(invalid("expected ']'"));
            }
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let op_word = match self.next() {
            Some(Tok::Word(w)) => w,
            _ => return Err(invalid(format!("expected an operator after '{}'", shown(&word)))),
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op = Op::parse(&op_word).ok_or_else(|| invalid(format!("unknown operator '{}'", shown(&op_word))))?;
        let value = match self.next() {
            Some(Tok::Str(s)) => Value::Str(s),
            Some(Tok::Word(w)) => match w.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                n => Value::Num(
                    n.parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite() && n.starts_with(|c: char| c.is_ascii_digit() || c == '-'))
                        .ok_or_else(|| invalid(format!("'{}' is not a value (strings are quoted)", shown(n))))?,
                ),
            },
            _ => return Err(invalid("expected a value")),
        };
        Ok(Filter::Compare(path, op, value))
    }

    fn group(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        if self.next() != Some(Tok::Open) {
            return Err(invalid("expected '('"));
        }
        let f = self.or(in_value_path)?;
        if self.next() != Some(Tok::Close) {
            return Err(invalid("expected ')'"));
        }
        Ok(f)
    }
}

/// A value for an error message.
pub fn shown(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// Parses a filter.
pub fn parse(input: &str) -> Result<Filter, ScimError> {
    if input.len() > MAX_LEN {
        return Err(invalid(format!("the filter is longer than {MAX_LEN} bytes")));
    }
    let toks = lex(input)?;
    if toks.is_empty() {
        return Err(invalid("the filter is empty"));
    }
    let mut p = Parser { toks, pos: 0, depth: 0 };
    let f = p.or(false)?;
    if p.pos < p.toks.len() {
        return Err(invalid("unexpected text after the filter"));
    }
    Ok(f)
}

/// Parses the inside of a value filter on its own (a PATCH path's `[...]`).
pub fn parse_value_filter(input: &str) -> Result<Filter, ScimError> {
    let toks = lex(input)?;
    let mut p = Parser { toks, pos: 0, depth: 1 };
    let f = p.or(true)?;
    if p.pos < p.toks.len() {
        return Err(invalid("unexpected text after the value filter"));
    }
    Ok(f)
}

#[cfg(test)]
mod tests;
