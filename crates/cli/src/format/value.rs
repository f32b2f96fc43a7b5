//! An ordered JSON-like value for templates: keeps object keys in the order the API sent them
//! (serde_json's `Value` sorts them) and prints like Go's `fmt` does.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A template value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A key that is not there (Go prints `<no value>`).
    Missing,
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<Value>),
    Obj(Vec<(String, Value)>),
}

impl Value {
    /// Builds an object from string pairs.
    pub(crate) fn str_obj<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        Value::Obj(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::Str(v)))
                .collect(),
        )
    }

    /// Converts any serializable value, keeping struct field order.
    pub(crate) fn from_serialize<T: Serialize>(v: &T) -> Result<Self, serde_json::Error> {
        let text = serde_json::to_string(v)?;
        serde_json::from_str(&text)
    }

    /// Field lookup; `Missing` when absent.
    pub(crate) fn field(&self, name: &str) -> Value {
        match self {
            // Exact key first; then Go's field name spelling (`ID` for `Id`, `APIVersion`
            // for `ApiVersion`), which only differs in case.
            Value::Obj(pairs) => pairs
                .iter()
                .find(|(k, _)| k == name)
                .or_else(|| pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Missing),
            _ => Value::Missing,
        }
    }

    /// Go template truthiness.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Value::Missing | Value::Null => false,
            Value::Bool(b) => *b,
            Value::Num(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::Str(s) => !s.is_empty(),
            Value::Arr(a) => !a.is_empty(),
            Value::Obj(o) => !o.is_empty(),
        }
    }

    /// JSON text the way Go's `json.Marshal` writes it (HTML characters escaped).
    pub(crate) fn to_go_json(&self) -> String {
        let s = serde_json::to_string(self).unwrap_or_default();
        go_escape_html(&s)
    }
}

/// Hidden method tables (`Label()`) used by templates; never printed.
fn is_hidden(key: &str) -> bool {
    key.ends_with("()")
}

/// Go's json encoder escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings.
pub(crate) fn go_escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

impl fmt::Display for Value {
    /// Go's `%v`: slices as `[a b]`, maps as `map[k:v]` with sorted keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Missing => f.write_str("<no value>"),
            Value::Null => f.write_str("<nil>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Num(n) => write!(f, "{n}"),
            Value::Str(s) => f.write_str(s),
            Value::Arr(a) => {
                f.write_str("[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Obj(o) => {
                let mut sorted: Vec<&(String, Value)> =
                    o.iter().filter(|(k, _)| !is_hidden(k)).collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                f.write_str("map[")?;
                for (i, (k, v)) in sorted.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Missing | Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Num(n) => n.serialize(s),
            Value::Str(v) => s.serialize_str(v),
            Value::Arr(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Obj(o) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in o.iter().filter(|(k, _)| !is_hidden(k)) {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Num(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Num(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map(Value::Num)
            .unwrap_or(Value::Null))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Deserialize::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            out.push((k, v));
        }
        Ok(Value::Obj(out))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}
