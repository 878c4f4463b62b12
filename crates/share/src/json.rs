//! JSON text with object keys in sorted order whatever serde_json's
//! `preserve_order` feature (yara-x turns it on in a whole-workspace build):
//! the writers' bytes depend on their input only.

use serde_json::Value;

/// Pretty text (two-space indent, as serde_json's pretty printer), with a
/// final newline.
pub fn pretty(v: &Value) -> Vec<u8> {
    let mut out = String::new();
    write(v, Some(0), &mut out);
    out.push('\n');
    out.into_bytes()
}

/// Compact text, keys sorted: for strings as JSON Canonicalization
/// (RFC 8785) writes them, which is what STIX's deterministic SCO ids hash.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write(v, None, &mut out);
    out
}

fn string(s: &str, out: &mut String) {
    // serde_json escapes `"`, `\` and the control characters (short forms
    // for \b \f \n \r \t, \u00xx lower-case otherwise), nothing else:
    // RFC 8785's rule. Serialising a str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

fn newline(indent: usize, out: &mut String) {
    out.push('\n');
    for _ in 0..indent {
        out.push_str("  ");
    }
}

fn write(v: &Value, indent: Option<usize>, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if let Some(n) = indent {
                    newline(n + 1, out);
                }
                write(item, indent.map(|n| n + 1), out);
            }
            if let Some(n) = indent {
                newline(n, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if let Some(n) = indent {
                    newline(n + 1, out);
                }
                string(k, out);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write(&map[k], indent.map(|n| n + 1), out);
            }
            if let Some(n) = indent {
                newline(n, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_and_text_matches_serde_json_pretty() {
        let v = json!({"b": [1, {"z": null, "a": true}], "a": "x\"\\\u{1}é", "c": [], "d": {}});
        let want = "{\n  \"a\": \"x\\\"\\\\\\u0001é\",\n  \"b\": [\n    1,\n    {\n      \"a\": true,\n      \"z\": null\n    }\n  ],\n  \"c\": [],\n  \"d\": {}\n}\n";
        assert_eq!(String::from_utf8(pretty(&v)).unwrap(), want);
        // Parsing it back gives the same value.
        let back: Value = serde_json::from_slice(&pretty(&v)).unwrap();
        assert_eq!(back, v);
        assert_eq!(
            canonical(&v),
            "{\"a\":\"x\\\"\\\\\\u0001é\",\"b\":[1,{\"a\":true,\"z\":null}],\"c\":[],\"d\":{}}"
        );
    }
}
