//! Docker's `filters` parameter, in both encodings clients send.
//!
//! The docker CLI sends the map form `{"label":{"a=b":true}}`; docker-py (and so compose 1.29)
//! sends the legacy list form `{"label":["a=b"]}`. Both mean "key has these values". As in moby,
//! the boolean in the map form is not interpreted: every listed value counts.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::{EngineError, Result};

/// Parsed filters: each key with its set of values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, BTreeSet<String>>,
}

impl Filters {
    /// Parses the JSON text of a `filters` query parameter. An empty string means no filters.
    pub fn parse(json: &str) -> Result<Self> {
        let json = json.trim();
        if json.is_empty() {
            return Ok(Self::default());
        }
        let value: Value =
            serde_json::from_str(json).map_err(|e| EngineError::MalformedFilters {
                reason: e.to_string(),
            })?;
        let Value::Object(map) = value else {
            return Err(malformed("expected a JSON object"));
        };
        let mut fields = BTreeMap::new();
        for (key, values) in map {
            let mut set = BTreeSet::new();
            match values {
                Value::Object(m) => {
                    for (v, flag) in m {
                        if !flag.is_boolean() {
                            return Err(malformed(&format!(
                                "value of '{key}' must map to booleans"
                            )));
                        }
                        set.insert(v);
                    }
                }
                Value::Array(items) => {
                    for item in items {
                        match item {
                            Value::String(s) => {
                                set.insert(s);
                            }
                            _ => {
                                return Err(malformed(&format!(
                                    "values of '{key}' must be strings"
                                )));
                            }
                        }
                    }
                }
                Value::Null => {}
                _ => {
                    return Err(malformed(&format!(
                        "value of '{key}' must be an object or a list"
                    )));
                }
            }
            fields.insert(key, set);
        }
        Ok(Self { fields })
    }

    /// Adds one `key=value` pair (for callers building filters in code).
    pub fn add(&mut self, key: &str, value: &str) {
        self.fields
            .entry(key.to_string())
            .or_default()
            .insert(value.to_string());
    }

    /// True when no filter is set.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// True when `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// The values of `key`, sorted; empty when absent.
    pub fn get(&self, key: &str) -> Vec<String> {
        self.fields
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Fails with `invalid filter '<key>'` for the first key not in `accepted`.
    pub fn validate(&self, accepted: &[&str]) -> Result<()> {
        match self.fields.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(key) => Err(EngineError::UnknownFilter { key: key.clone() }),
            None => Ok(()),
        }
    }

    /// A boolean filter (`dangling=true`): `true`/`1` or `false`/`0`; several values must agree.
    pub fn bool_value(&self, key: &str) -> Result<Option<bool>> {
        let mut result = None;
        for value in self.get(key) {
            let b = match value.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(EngineError::InvalidFilterValue {
                        key: key.into(),
                        value,
                    });
                }
            };
            if result.is_some_and(|r| r != b) {
                return Err(EngineError::InvalidFilterValue {
                    key: key.into(),
                    value,
                });
            }
            result = Some(b);
        }
        Ok(result)
    }

    /// A filter that takes one value (`before=image`); several values are refused.
    pub fn single(&self, key: &str) -> Result<Option<String>> {
        let values = self.get(key);
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.into_iter().next()),
            _ => Err(EngineError::InvalidFilterValue {
                key: key.into(),
                value: values.join(","),
            }),
        }
    }
}

fn malformed(reason: &str) -> EngineError {
    EngineError::MalformedFilters {
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn empty_means_no_filters() {
        assert!(Filters::parse("").unwrap().is_empty());
        assert!(Filters::parse("  ").unwrap().is_empty());
        assert!(Filters::parse("{}").unwrap().is_empty());
    }

    #[test]
    fn map_form() {
        let f =
            Filters::parse(r#"{"label":{"a=b":true,"c":true},"dangling":{"true":true}}"#).unwrap();
        assert_eq!(f.get("label"), vec!["a=b", "c"]);
        assert_eq!(f.bool_value("dangling").unwrap(), Some(true));
        assert!(f.get("reference").is_empty());
    }

    #[test]
    fn legacy_list_form_with_python_spacing() {
        let f = Filters::parse(
            r#"{"label": ["com.docker.compose.project=proj", "com.docker.compose.oneoff=False"]}"#,
        )
        .unwrap();
        assert_eq!(
            f.get("label"),
            vec![
                "com.docker.compose.oneoff=False",
                "com.docker.compose.project=proj"
            ]
        );
    }

    #[test]
    fn both_forms_are_equal() {
        let a = Filters::parse(r#"{"reference":{"bb*":true}}"#).unwrap();
        let b = Filters::parse(r#"{"reference":["bb*"]}"#).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn unknown_key_is_invalid_argument() {
        let f = Filters::parse(r#"{"colour":{"red":true}}"#).unwrap();
        let err = f.validate(&["label", "dangling"]).unwrap_err();
        assert_eq!(err.to_string(), "invalid filter 'colour'");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            Filters::parse(r#"{"label":["x"]}"#)
                .unwrap()
                .validate(&["label"])
                .is_ok()
        );
    }

    #[test]
    fn malformed_json_is_invalid_argument() {
        for bad in [
            "{",
            "[]",
            r#"{"label":"x"}"#,
            r#"{"label":[1]}"#,
            r#"{"label":{"x":1}}"#,
        ] {
            let err = Filters::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn bool_values() {
        let f = Filters::parse(r#"{"dangling":["0"]}"#).unwrap();
        assert_eq!(f.bool_value("dangling").unwrap(), Some(false));
        assert_eq!(f.bool_value("absent").unwrap(), None);
        let f = Filters::parse(r#"{"dangling":["maybe"]}"#).unwrap();
        assert_eq!(
            f.bool_value("dangling").unwrap_err().to_string(),
            "invalid filter 'dangling=maybe'"
        );
        let f = Filters::parse(r#"{"dangling":["true","false"]}"#).unwrap();
        assert!(f.bool_value("dangling").is_err());
    }

    #[test]
    fn single_values() {
        let f = Filters::parse(r#"{"before":["a"],"since":["a","b"]}"#).unwrap();
        assert_eq!(f.single("before").unwrap().as_deref(), Some("a"));
        assert!(f.single("since").is_err());
        assert_eq!(f.single("until").unwrap(), None);
    }
}
