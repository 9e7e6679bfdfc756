//! Variable scopes, propagation and mappings.
use super::*;

impl State {
    /// Scope chain from `key` up to its process instance (innermost first).
    pub(super) fn chain(&self, key: i64) -> Vec<i64> {
        let mut out = vec![key];
        let mut cur = key;
        while let Some(p) = self.elems.get(&cur).and_then(|e| e.flow_scope) {
            out.push(p);
            cur = p;
        }
        out
    }

    /// Variables visible from the scope `key` (inner scopes shadow outer ones).
    pub fn visible(&self, key: i64) -> Map<String, Json> {
        let mut out = Map::new();
        for k in self.chain(key).into_iter().rev() {
            if let Some(v) = self.vars.get(&k) {
                for (n, val) in v {
                    out.insert(n.clone(), val.clone());
                }
            }
        }
        out
    }

    pub(super) fn set_local(&mut self, key: i64, vars: Map<String, Json>) {
        let scope = self.vars.entry(key).or_default();
        for (k, v) in vars {
            scope.insert(k, v);
        }
    }

    /// Zeebe's propagation: each variable goes to the nearest scope (from `start` up) where it
    /// exists, else to the root of the chain (the process instance).
    pub(super) fn propagate(&mut self, start: i64, vars: Map<String, Json>) {
        let chain = self.chain(start);
        for (name, value) in vars {
            let target = chain
                .iter()
                .copied()
                .find(|k| self.vars.get(k).is_some_and(|m| m.contains_key(&name)))
                .unwrap_or(*chain.last().expect("chain"));
            self.vars.entry(target).or_default().insert(name, value);
        }
    }

    pub fn set_variables(&mut self, ei_key: i64, vars: Map<String, Json>, local: bool) -> R<i64> {
        if !self.elems.get(&ei_key).is_some_and(|e| e.state.is_active()) {
            return Err(CommandError::NotFound(format!(
                "Expected to update variables for element with key '{ei_key}', but no such element was found"
            )));
        }
        if local {
            self.set_local(ei_key, vars);
        } else {
            self.propagate(ei_key, vars);
        }
        Ok(self.next_key())
    }

    pub(super) fn eval(&self, expr: &str, scope: i64) -> Result<Json, FeelError> {
        feel::evaluate(expr, &self.visible(scope), self.now)
    }

    /// Evaluates mappings into a variable document; targets may be paths (`a.b`).
    pub(super) fn eval_mappings(
        &self,
        mappings: &[Mapping],
        scope: i64,
        extra: &Map<String, Json>,
    ) -> Result<Map<String, Json>, FeelError> {
        let mut ctx = self.visible(scope);
        for (k, v) in extra {
            ctx.insert(k.clone(), v.clone());
        }
        let mut out = Map::new();
        for m in mappings {
            let value = feel::evaluate(&m.source, &ctx, self.now)?;
            let parts: Vec<&str> = m.target.split('.').collect();
            set_path(&mut out, &parts, value.clone());
            set_path(&mut ctx, &parts, value);
        }
        Ok(out)
    }
}
