//! Which variables an instruction sees, as BuildKit scopes them.
//!
//! - `ARG`s before the first `FROM` are global: `FROM` lines see them, and a stage sees one only
//!   where it declares it again (`ARG NAME` without a value takes the global's value). BuildKit's
//!   automatic platform arguments (`TARGETARCH`, `BUILDPLATFORM`, ...) are global too.
//! - In a stage, `ARG NAME[=default]` sets `NAME` to the build argument given for it, else to its
//!   default (expanded where it stands); `ENV` sets its pairs, all expanded with the variables
//!   before the instruction. The last assignment wins.
//! - A stage built `FROM` an earlier stage starts with that stage's variables; any other stage
//!   starts with its base image's environment, which this reader cannot see: a name nothing in
//!   the file set is [`Var::Unknown`] there (BuildKit also sets `PATH` for `scratch`).

use std::collections::BTreeMap;

use super::lex::{self, Unresolved, Var};
use super::{Dockerfile, Instruction};

/// BuildKit's automatic platform arguments, whose values depend on the engine.
pub const PLATFORM_ARGS: [&str; 8] = [
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// What a variable set in the file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// This value.
    Known(String),
    /// Something this reader cannot tell.
    Unknown,
}

/// The build arguments a reader knows.
#[derive(Debug, Clone, Copy)]
pub enum BuildArgs<'a> {
    /// Exactly these are passed (a build): an `ARG` not among them takes its default.
    Given(&'a BTreeMap<String, String>),
    /// Not known (lint, revisions): an `ARG` takes its default, one without a default is unknown.
    Defaults,
}

impl BuildArgs<'_> {
    fn given(&self, name: &str) -> Option<&str> {
        match self {
            BuildArgs::Given(map) => map.get(name).map(String::as_str),
            BuildArgs::Defaults => None,
        }
    }
}

/// The variables visible at one point of a Dockerfile.
#[derive(Debug, Clone)]
pub struct Scope {
    vars: BTreeMap<String, Value>,
    /// What a name nothing set holds: unset in the global scope, unknown in a stage.
    otherwise: Var,
    escape: char,
}

impl Scope {
    fn new(otherwise: Var, escape: char) -> Self {
        Scope {
            vars: BTreeMap::new(),
            otherwise,
            escape,
        }
    }

    /// The value of `name` here.
    pub fn get(&self, name: &str) -> Var {
        match self.vars.get(name) {
            Some(Value::Known(v)) => Var::Set(v.clone()),
            Some(Value::Unknown) => Var::Unknown,
            None => self.otherwise.clone(),
        }
    }

    /// `word` unquoted and expanded here ([`lex::expand`]).
    pub fn expand(&self, word: &str) -> Result<String, Unresolved> {
        lex::expand(word, self.escape, &|name| self.get(name))
    }

    fn value_of(&self, word: &str) -> Value {
        match self.expand(word) {
            Ok(v) => Value::Known(v),
            Err(_) => Value::Unknown,
        }
    }

    fn set(&mut self, name: String, value: Value) {
        self.vars.insert(name, value);
    }
}

/// One build stage: its `FROM` and the instructions up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// 0-based position among the stages.
    pub index: usize,
    /// `AS name`, lower-case.
    pub name: Option<String>,
    /// Index of its `FROM` in [`Dockerfile::instructions`].
    pub from: usize,
    /// Index after its last instruction.
    pub end: usize,
    /// Its base as the global scope expands it (`None` when that depends on something unknown).
    pub base: Option<String>,
    /// The earlier stage it is built from, when it is.
    pub parent: Option<usize>,
}

impl Dockerfile {
    /// The stages, their bases expanded with the global `ARG`s' defaults.
    pub fn stages(&self) -> Vec<Stage> {
        self.stages_with(BuildArgs::Defaults)
    }

    /// The stages, their bases expanded with `args`.
    pub fn stages_with(&self, args: BuildArgs) -> Vec<Stage> {
        let mut stages = Vec::new();
        self.walk(args, |stage, ins, _| {
            if let Some(stage) = stage
                && ins.keyword == "FROM"
            {
                stages.push(stage.clone());
            }
        });
        stages
    }

    /// The final stage (the image), if there is a `FROM`.
    pub fn final_stage(&self) -> Option<Stage> {
        self.stages().pop()
    }

    /// Visits every instruction with the stage it is in (`None` before the first `FROM`) and the
    /// variables it sees: for a `FROM`, the global scope; for any other, its stage's scope as it
    /// stands before the instruction.
    pub fn walk<'a>(
        &'a self,
        args: BuildArgs,
        mut visit: impl FnMut(Option<&Stage>, &'a Instruction, &Scope),
    ) {
        let escape = self.escape();
        let mut global = Scope::new(Var::Unset, escape);
        for name in PLATFORM_ARGS {
            let value = match args.given(name) {
                Some(v) => Value::Known(v.to_owned()),
                None => Value::Unknown,
            };
            global.set(name.to_owned(), value);
        }
        let ends: Vec<usize> = {
            let froms: Vec<usize> = self
                .instructions
                .iter()
                .enumerate()
                .filter(|(_, i)| i.keyword == "FROM")
                .map(|(k, _)| k)
                .collect();
            froms
                .iter()
                .skip(1)
                .copied()
                .chain([self.instructions.len()])
                .collect()
        };
        let mut stages: Vec<(Stage, Scope)> = Vec::new();
        let mut current: Option<(Stage, Scope)> = None;
        for (k, ins) in self.instructions.iter().enumerate() {
            if ins.keyword == "FROM" {
                if let Some(done) = current.take() {
                    stages.push(done);
                }
                let (image, name) = ins.from_parts();
                let base = global.expand(&image).ok();
                let parent = base.as_ref().and_then(|b| {
                    let b = b.to_ascii_lowercase();
                    stages
                        .iter()
                        .position(|(s, _)| s.name.as_deref() == Some(b.as_str()))
                });
                let scope = match parent {
                    Some(p) => stages[p].1.clone(),
                    None => Scope::new(Var::Unknown, escape),
                };
                let stage = Stage {
                    index: stages.len(),
                    name,
                    from: k,
                    end: ends[stages.len()],
                    base,
                    parent,
                };
                visit(Some(&stage), ins, &global);
                current = Some((stage, scope));
                continue;
            }
            match current.as_mut() {
                None => {
                    visit(None, ins, &global);
                    if ins.keyword == "ARG" {
                        for (name, default) in ins.arg_declarations() {
                            let value = match (args.given(&name), default, args) {
                                (Some(v), _, _) => Value::Known(v.to_owned()),
                                (None, Some(d), _) => global.value_of(&d),
                                // Declared without a value: unset when not given.
                                (None, None, BuildArgs::Given(_)) => continue,
                                (None, None, BuildArgs::Defaults) => Value::Unknown,
                            };
                            global.set(name, value);
                        }
                    }
                }
                Some((stage, scope)) => {
                    visit(Some(stage), ins, scope);
                    match ins.keyword.as_str() {
                        "ARG" => {
                            for (name, default) in ins.arg_declarations() {
                                let value = match (args.given(&name), default) {
                                    (Some(v), _) => Value::Known(v.to_owned()),
                                    (None, Some(d)) => scope.value_of(&d),
                                    (None, None) => match global.vars.get(&name) {
                                        Some(v) => v.clone(),
                                        // No value: the base image's, if any.
                                        None => continue,
                                    },
                                };
                                scope.set(name, value);
                            }
                        }
                        "ENV" => {
                            // Every pair sees the variables from before the instruction.
                            let set: Vec<(String, Value)> = ins
                                .pairs()
                                .into_iter()
                                .filter_map(|(k, v)| {
                                    Some((scope.expand(&k).ok()?, scope.value_of(&v)))
                                })
                                .collect();
                            for (key, value) in set {
                                scope.set(key, value);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(line, word)` -> the word expanded where that line stands.
    fn expanded_at(
        text: &str,
        args: BuildArgs,
        line: usize,
        word: &str,
    ) -> Result<String, Unresolved> {
        let df = Dockerfile::parse(text);
        let mut out = None;
        df.walk(args, |_, ins, scope| {
            if ins.line == line {
                out = Some(scope.expand(word));
            }
        });
        out.expect("an instruction on that line")
    }

    #[test]
    fn global_args_reach_from_lines_and_stages_only_where_declared_again() {
        let text = "ARG BASE=rust TAG\nARG IMAGE=${BASE}:1\nFROM $IMAGE AS build\nRUN echo\nARG TAG\nRUN echo\nARG BASE\nRUN echo\n";
        let d = BuildArgs::Defaults;
        assert_eq!(expanded_at(text, d, 3, "$IMAGE").unwrap(), "rust:1");
        // Not declared in the stage: the base image's environment decides.
        assert_eq!(
            expanded_at(text, d, 4, "$BASE"),
            Err(Unresolved::Unknown("BASE".into()))
        );
        assert_eq!(expanded_at(text, d, 8, "$BASE").unwrap(), "rust");
        // `TAG` has no default: whatever a build passes.
        assert_eq!(
            expanded_at(text, d, 6, "$TAG"),
            Err(Unresolved::Unknown("TAG".into()))
        );
        let given = BTreeMap::from([("TAG".to_owned(), "9".to_owned())]);
        let g = BuildArgs::Given(&given);
        assert_eq!(expanded_at(text, g, 6, "$TAG").unwrap(), "9");
        assert_eq!(expanded_at(text, g, 3, "x${TAG}x").unwrap(), "x9x");
        let none = BTreeMap::new();
        assert_eq!(
            expanded_at(text, BuildArgs::Given(&none), 3, "x${TAG}x").unwrap(),
            "xx",
            "a global without a value is unset in FROM"
        );
        assert!(matches!(
            expanded_at(text, d, 3, "$TARGETARCH"),
            Err(Unresolved::Unknown(_))
        ));
    }

    #[test]
    fn stage_args_and_env_follow_buildkit() {
        let text = "FROM scratch AS a\nARG V=1\nENV E=$V-x F=$E\nENV V=2\nARG W=${V}0\nRUN echo\nFROM a AS b\nRUN echo\nFROM other\nRUN echo\n";
        let d = BuildArgs::Defaults;
        // One `ENV` expands all its pairs with the variables before it.
        assert_eq!(
            expanded_at(text, d, 4, "$E/$F"),
            Err(Unresolved::Unknown("F".into()))
        );
        assert_eq!(expanded_at(text, d, 4, "$E").unwrap(), "1-x");
        assert_eq!(expanded_at(text, d, 6, "$V $W").unwrap(), "2 20");
        let given = BTreeMap::from([("V".to_owned(), "7".to_owned())]);
        assert_eq!(
            expanded_at(text, BuildArgs::Given(&given), 4, "$E").unwrap(),
            "7-x"
        );
        // A stage built from another inherits its variables; another base does not.
        assert_eq!(expanded_at(text, d, 8, "$E").unwrap(), "1-x");
        assert!(expanded_at(text, d, 10, "$E").is_err());
        let stages = Dockerfile::parse(text).stages();
        assert_eq!(stages.len(), 3);
        assert_eq!(stages[1].parent, Some(0));
        assert_eq!(stages[2].parent, None);
        assert_eq!((stages[0].from, stages[0].end), (0, 6));
        assert_eq!(
            Dockerfile::parse(text)
                .final_stage()
                .unwrap()
                .base
                .as_deref(),
            Some("other")
        );
    }
}
