//! What serde said about a payload, without the payload's values.
//!
//! serde's messages quote what they found (`invalid type: string "4111 1111 1111 1111", expected u64`), so a decode
//! error's text would carry payload values into dead letters, logs, the admin page and the CLI, where payloads are
//! hidden by default. The texts of [`DecodeError`](crate::store::DecodeError) and of corrupt rows are built with
//! [`serde_summary`]: the kind of mistake, the field named by the type (not by the data) and where in the payload.
//! serde's whole message stays on the error's [`source`](std::error::Error::source) for code that wants it; read
//! the value itself where payloads are shown (`es stream show --payloads`, the admin page started with payloads).

use serde_json::error::Category;

/// serde's message about `error` without the values it may quote from the payload.
///
/// ```
/// use es_core::store::serde_summary;
///
/// let error = serde_json::from_str::<u64>(r#""4111 1111 1111 1111""#).unwrap_err();
/// assert!(error.to_string().contains("4111"));
/// let summary = serde_summary(&error);
/// assert!(!summary.contains("4111"));
/// assert_eq!(summary, "invalid type (value not shown) at line 1 column 21");
/// ```
pub fn serde_summary(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let at = format!(" at line {} column {}", error.line(), error.column());
    let message = message.strip_suffix(&at).unwrap_or(&message);
    let safe = match error.classify() {
        // serde_json's own fixed texts ("expected value", "trailing characters", "EOF while parsing").
        Category::Syntax | Category::Eof => message.to_owned(),
        Category::Io => "the payload could not be read".to_owned(),
        // Fields the type names, never values.
        Category::Data
            if message.starts_with("missing field") || message.starts_with("duplicate field") =>
        {
            message.to_owned()
        }
        // "invalid type: ...", "invalid value: ...", "unknown variant `...`", a custom message: its first words.
        Category::Data => {
            let end = message.find([':', '`', '"', '\'']).unwrap_or(message.len());
            format!(
                "{} (value not shown)",
                message[..end].trim_end_matches([' ', ','])
            )
        }
    };
    format!("{safe}{at}")
}

#[cfg(test)]
mod tests {
    use super::serde_summary;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Posted {
        amount: i64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        amount: i64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    enum Kind {
        Open,
    }

    fn summary<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        serde_summary(&serde_json::from_str::<T>(json).unwrap_err())
    }

    #[test]
    fn values_found_in_the_payload_are_not_quoted() {
        let secret = "s3cr3t-v4lue";
        for text in [
            summary::<Posted>(&format!(r#"{{"amount": "{secret}"}}"#)),
            summary::<Kind>(&format!(r#""{secret}""#)),
            summary::<Strict>(&format!(r#"{{"amount": 1, "{secret}": 2}}"#)).replace("amount", ""),
            summary::<u8>("4000000000"),
        ] {
            assert!(!text.contains(secret), "{text}");
            assert!(!text.contains("4000000000"), "{text}");
            assert!(text.contains("at line 1 column"), "{text}");
        }
    }

    #[test]
    fn fields_named_by_the_type_and_syntax_errors_are_kept() {
        assert_eq!(
            summary::<Posted>("{}"),
            "missing field `amount` at line 1 column 2"
        );
        assert_eq!(
            summary::<Posted>("{"),
            "EOF while parsing an object at line 1 column 1"
        );
        assert_eq!(
            summary::<Posted>(r#"{"amount": "x"}"#),
            "invalid type (value not shown) at line 1 column 14"
        );
    }
}
