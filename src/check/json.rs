//! Whether a JSON document contains another: the check of `exec` steps' `expect: {json: …}`.
//! Objects match by key (the document may have more keys), arrays in any order (each
//! expected item matched by a different item of the document), numbers by value, every
//! other value by equality.

use serde_json::Value;

/// `Ok` when `doc` contains `want`; else the first difference, as `path: expected X, got Y`.
pub fn contains(doc: &Value, want: &Value) -> Result<(), String> {
    at(doc, want, "$")
}

fn at(doc: &Value, want: &Value, path: &str) -> Result<(), String> {
    match (want, doc) {
        (Value::Object(w), Value::Object(d)) => {
            for (k, wv) in w {
                let here = format!("{path}.{k}");
                match d.get(k) {
                    Some(dv) => at(dv, wv, &here)?,
                    None => return Err(format!("{here}: expected {}, missing", short(wv))),
                }
            }
            Ok(())
        }
        (Value::Array(w), Value::Array(d)) => {
            // Each expected item takes the first unused item that contains it; a greedy
            // choice, exact for the usual case of items that match at most one.
            let mut used = vec![false; d.len()];
            for (i, wv) in w.iter().enumerate() {
                let found = d
                    .iter()
                    .enumerate()
                    .find(|(j, dv)| !used[*j] && at(dv, wv, path).is_ok());
                match found {
                    Some((j, _)) => used[j] = true,
                    None => {
                        return Err(format!(
                        "{path}[{i}]: expected an item containing {}, none of the {} items does",
                        short(wv),
                        d.len()
                    ))
                    }
                }
            }
            Ok(())
        }
        (Value::Number(w), Value::Number(d)) if w.as_f64() == d.as_f64() => Ok(()),
        (w, d) if w == d => Ok(()),
        (w, d) => Err(format!("{path}: expected {}, got {}", short(w), short(d))),
    }
}

/// A value in a message: its JSON, cut at 80 characters.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() <= 80 {
        return text;
    }
    let cut: String = text.chars().take(77).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::contains;
    use serde_json::json;

    #[test]
    fn objects_match_by_key_and_may_have_more() {
        let doc = json!({"a": 1, "b": {"c": "x", "d": [1, 2]}});
        assert!(contains(&doc, &json!({"b": {"c": "x"}})).is_ok());
        let err = contains(&doc, &json!({"b": {"c": "y"}})).unwrap_err();
        assert_eq!(err, r#"$.b.c: expected "y", got "x""#);
        let err = contains(&doc, &json!({"z": 1})).unwrap_err();
        assert_eq!(err, "$.z: expected 1, missing");
    }

    #[test]
    fn arrays_match_in_any_order_each_item_once() {
        let doc = json!([{"n": "r2", "s": "Full"}, {"n": "r3", "s": "Init"}]);
        assert!(contains(&doc, &json!([{"n": "r3"}, {"n": "r2", "s": "Full"}])).is_ok());
        assert!(contains(&doc, &json!([{"s": "Full"}, {"s": "Full"}])).is_err());
        assert!(contains(&doc, &json!([])).is_ok());
        let err = contains(&doc, &json!([{"n": "r3", "s": "Full"}])).unwrap_err();
        assert!(
            err.starts_with("$[0]: expected an item containing"),
            "{err}"
        );
    }

    #[test]
    fn numbers_by_value_and_types_matter() {
        assert!(contains(&json!(1.0), &json!(1)).is_ok());
        assert!(contains(&json!("1"), &json!(1)).is_err());
        assert!(contains(&json!(null), &json!({})).is_err());
        assert!(contains(&json!([1]), &json!({"0": 1})).is_err());
    }
}
