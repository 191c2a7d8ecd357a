//! What the `#[stage]` attribute knows at compile time about a stage or a tracked helper.

use crate::Digest;

/// Static description of a stage, written by `#[stage]`.
#[derive(Debug)]
pub struct StageInfo {
    /// The function's name.
    pub name: &'static str,
    /// `module_path!()` where the function is defined.
    pub module_path: &'static str,
    /// Display name (`name = "..."`), or the function's name.
    pub display: &'static str,
    /// Hash of the attribute and the function's tokens.
    pub code_hash: Digest,
    /// The `version = "..."` salt.
    pub version: Option<&'static str>,
    /// Tracked helpers listed in `uses = [...]`.
    pub uses: &'static [fn() -> &'static TrackInfo],
    /// Ancestors bound by the attribute, in attribute order.
    pub ancestors: &'static [AncestorInfo],
    /// Raw inputs bound by the attribute.
    pub raw: &'static [RawInfo],
    /// Names of the free parameters, in signature order.
    pub params: &'static [&'static str],
    /// The output type, as written.
    pub output: &'static str,
    /// The cache format: `parquet`, `bincode` or `memory`.
    pub cache: &'static str,
    /// Source file of the function.
    pub file: &'static str,
    /// Line of the function in `file`.
    pub line: u32,
}

impl StageInfo {
    /// `module::path::name`: what identifies the stage in keys, errors and the cache.
    #[must_use]
    pub fn path(&self) -> String {
        format!("{}::{}", self.module_path, self.name)
    }
}

/// An ancestor binding `param = stage(args)`.
#[derive(Debug)]
pub struct AncestorInfo {
    /// The parameter that receives the ancestor's output.
    pub param: &'static str,
    /// The ancestor.
    pub stage: fn() -> &'static StageInfo,
    /// The arguments, as written (empty when none).
    pub args: &'static str,
}

/// A raw input binding `param = "path"`.
#[derive(Debug)]
pub struct RawInfo {
    /// The parameter that receives the path.
    pub param: &'static str,
    /// The path, relative to the current directory.
    pub path: &'static str,
}

/// Static description of a helper marked `#[stage::track]`.
#[derive(Debug)]
pub struct TrackInfo {
    /// The helper's name.
    pub name: &'static str,
    /// `module_path!()` of the helper.
    pub module_path: &'static str,
    /// Hash of the helper's tokens.
    pub code_hash: Digest,
    /// Tracked helpers it lists in its own `uses = [...]`.
    pub uses: &'static [fn() -> &'static TrackInfo],
}

impl TrackInfo {
    /// `module::path::name` of the helper.
    #[must_use]
    pub fn path(&self) -> String {
        format!("{}::{}", self.module_path, self.name)
    }
}

/// Every helper reachable from `uses`, each once, sorted by path.
pub(crate) fn tracked_closure(uses: &[fn() -> &'static TrackInfo]) -> Vec<&'static TrackInfo> {
    let mut seen: Vec<&'static TrackInfo> = Vec::new();
    let mut todo: Vec<&'static TrackInfo> = uses.iter().map(|f| f()).collect();
    while let Some(info) = todo.pop() {
        if seen
            .iter()
            .any(|s| std::ptr::eq(*s, info) || s.path() == info.path())
        {
            continue;
        }
        seen.push(info);
        todo.extend(info.uses.iter().map(|f| f()));
    }
    seen.sort_by_key(|info| info.path());
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: TrackInfo = TrackInfo {
        name: "a",
        module_path: "m",
        code_hash: Digest([1; 32]),
        uses: &[b],
    };
    static B: TrackInfo = TrackInfo {
        name: "b",
        module_path: "m",
        code_hash: Digest([2; 32]),
        uses: &[a],
    };
    fn a() -> &'static TrackInfo {
        &A
    }
    fn b() -> &'static TrackInfo {
        &B
    }

    #[test]
    fn closure_is_transitive_and_survives_cycles() {
        let all = tracked_closure(&[a]);
        let names: Vec<_> = all.iter().map(|t| t.path()).collect();
        assert_eq!(names, ["m::a", "m::b"]);
    }
}
