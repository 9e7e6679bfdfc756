//! Typed models of the target APIs' responses. Every model accepts unknown fields, every enum
//! keeps unknown values as `Unknown(String)` instead of failing, and most fields default when
//! absent: a newer Camunda or Elasticsearch must not break a recovery.
pub mod elasticsearch;
pub mod management;
pub mod rest;

/// Declares a string enum with known values and an `Unknown(String)` variant that keeps any
/// other value. Serializes back to the wire string; `as_str` gives it too.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of c8dr does not know; the wire string is kept.
            Unknown(String),
        }

        impl $name {
            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Unknown(s) => s.as_str(),
                }
            }

            /// Parses a wire value; unknown values become `Unknown`.
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $( $wire => $name::$variant, )+
                    other => $name::Unknown(other.to_string()),
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::Unknown(String::new())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                // Any JSON value is accepted: strings map to variants, anything else (null,
                // numbers) is kept as its JSON text in `Unknown`.
                let value = serde_json::Value::deserialize(deserializer)?;
                Ok(match value {
                    serde_json::Value::String(s) => $name::from_wire(&s),
                    other => $name::Unknown(other.to_string()),
                })
            }
        }
    };
}
pub(crate) use open_enum;

/// Deserializes a key that 8.8 sends as a string but older versions sent as a number; `null`
/// becomes the empty string.
pub(crate) fn key_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    use serde::Deserialize;
    let value = serde_json::Value::deserialize(deserializer)?;
    match value {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Null => Ok(String::new()),
        other => Err(serde::de::Error::custom(format!("expected a key (string or number), got {other}"))),
    }
}

/// Like [`key_string`] for optional keys.
pub(crate) fn opt_key_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let s = key_string(deserializer)?;
    Ok(if s.is_empty() { None } else { Some(s) })
}

/// Deserializes a number that may arrive as a JSON string (Elasticsearch `_cat` APIs do that);
/// absent, null or unparseable values become `None`.
pub(crate) fn lenient_u64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    use serde::Deserialize;
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    open_enum! {
        /// Test enum.
        pub enum Color { Red => "RED", Blue => "BLUE" }
    }

    #[test]
    fn open_enum_keeps_unknown_values() {
        let c: Vec<Color> = serde_json::from_str(r#"["RED","GREEN",null,3]"#).unwrap();
        assert_eq!(
            c,
            vec![Color::Red, Color::Unknown("GREEN".into()), Color::Unknown("null".into()), Color::Unknown("3".into())]
        );
        assert_eq!(serde_json::to_string(&Color::Blue).unwrap(), r#""BLUE""#);
        assert_eq!(serde_json::to_string(&Color::Unknown("X".into())).unwrap(), r#""X""#);
        assert_eq!(Color::from_wire("BLUE").as_str(), "BLUE");
    }
}
