//! Update and condition expressions with their placeholders collected as they are written, so
//! that no unused placeholder is ever sent (DynamoDB rejects a request that has one).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Debug, Default)]
pub struct Expr {
    set: Vec<String>,
    remove: Vec<String>,
    conditions: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub fn new() -> Self {
        Self::default()
    }

    /// `#name` for an attribute (every attribute goes through a name placeholder, so reserved
    /// words never matter).
    pub fn name(&mut self, attr: &str) -> String {
        let p = format!("#{attr}");
        self.names.insert(p.clone(), attr.to_string());
        p
    }

    /// `:vN` for a value.
    pub fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }

    pub fn set(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let n = self.name(attr);
        let p = self.value(v);
        self.set.push(format!("{n} = {p}"));
        self
    }

    /// `attr = if_not_exists(attr, 0) + 1`.
    pub fn increment(&mut self, attr: &str) -> &mut Self {
        let n = self.name(attr);
        let zero = self.value(AttributeValue::N("0".into()));
        let one = self.value(AttributeValue::N("1".into()));
        self.set
            .push(format!("{n} = if_not_exists({n}, {zero}) + {one}"));
        self
    }

    pub fn set_opt_n(&mut self, attr: &str, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.set(attr, AttributeValue::N(v.to_string())),
            None => self.remove(attr),
        }
    }

    pub fn set_opt_s(&mut self, attr: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.set(attr, AttributeValue::S(v.to_string())),
            None => self.remove(attr),
        }
    }

    pub fn remove(&mut self, attr: &str) -> &mut Self {
        let n = self.name(attr);
        self.remove.push(n);
        self
    }

    /// Adds a condition clause (ANDed with the others); `f` writes it with placeholders.
    pub fn condition(&mut self, f: impl FnOnce(&mut Self) -> String) -> &mut Self {
        let c = f(self);
        self.conditions.push(format!("({c})"));
        self
    }

    pub fn update_expression(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    pub fn condition_expression(&self) -> Option<String> {
        (!self.conditions.is_empty()).then(|| self.conditions.join(" AND "))
    }

    pub fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_set_remove_and_conditions_with_only_used_placeholders() {
        let mut e = Expr::new();
        e.set("doc", AttributeValue::S("{}".into()))
            .increment("version")
            .set_opt_n("queued_at", None)
            .condition(|e| {
                let v = e.name("version");
                let x = e.value(AttributeValue::N("3".into()));
                format!("{v} = {x}")
            });
        assert_eq!(
            e.update_expression().unwrap(),
            "SET #doc = :v0, #version = if_not_exists(#version, :v1) + :v2 REMOVE #queued_at"
        );
        assert_eq!(e.condition_expression().unwrap(), "(#version = :v3)");
        assert_eq!(e.values().unwrap().len(), 4);
        assert_eq!(e.names().unwrap().len(), 3);
    }
}
