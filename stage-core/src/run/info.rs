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
    /// Tracked items listed in `uses = [...]`, then the items of its pipeline module it
    /// names.
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

    /// Every tracked item whose code is part of the stage's key: those of `uses`, the
    /// items of its `#[stage::pipeline]` module it names, what they name in turn, and the
    /// tracked impls of each type among them; sorted by path.
    #[must_use]
    pub fn tracked(&self) -> Vec<&'static TrackInfo> {
        tracked_closure(self.uses)
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

/// A tracked `impl` block, registered against the tracked type it implements: tracking
/// the type brings its tracked impls, wherever they are defined.
#[derive(Debug)]
pub struct TrackedImpl {
    /// The tracked type (or trait) the impl is for.
    pub of: fn() -> &'static TrackInfo,
    /// The impl block itself.
    pub info: fn() -> &'static TrackInfo,
}

inventory::collect!(TrackedImpl);

/// Every item reachable from `uses` (with the tracked impls of each type reached), each
/// once, sorted by path.
pub(crate) fn tracked_closure(uses: &[fn() -> &'static TrackInfo]) -> Vec<&'static TrackInfo> {
    let impls: Vec<&TrackedImpl> = inventory::iter::<TrackedImpl>.into_iter().collect();
    closure_with(uses, &impls)
}

fn closure_with(
    uses: &[fn() -> &'static TrackInfo],
    impls: &[&TrackedImpl],
) -> Vec<&'static TrackInfo> {
    // The same item can reach us through different addresses (a `const` is inlined where
    // it is used): its path and code hash identify it.
    let same = |a: &TrackInfo, b: &TrackInfo| {
        std::ptr::eq(a, b) || (a.code_hash == b.code_hash && a.path() == b.path())
    };
    let mut seen: Vec<&'static TrackInfo> = Vec::new();
    let mut todo: Vec<&'static TrackInfo> = uses.iter().map(|f| f()).collect();
    while let Some(info) = todo.pop() {
        if seen.iter().any(|s| same(s, info)) {
            continue;
        }
        seen.push(info);
        todo.extend(info.uses.iter().map(|f| f()));
        todo.extend(
            impls
                .iter()
                .filter(|i| same((i.of)(), info))
                .map(|i| (i.info)()),
        );
    }
    seen.sort_by(|a, b| {
        a.path()
            .cmp(&b.path())
            .then(a.code_hash.0.cmp(&b.code_hash.0))
    });
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

    static GRID: TrackInfo = TrackInfo {
        name: "Grid",
        module_path: "m",
        code_hash: Digest([3; 32]),
        uses: &[],
    };
    static GRID_IMPL: TrackInfo = TrackInfo {
        name: "impl Grid { width }",
        module_path: "m",
        code_hash: Digest([4; 32]),
        uses: &[a],
    };
    fn grid() -> &'static TrackInfo {
        &GRID
    }
    fn grid_impl() -> &'static TrackInfo {
        &GRID_IMPL
    }

    fn paths(all: &[&TrackInfo]) -> Vec<String> {
        all.iter().map(|t| t.path()).collect()
    }

    #[test]
    fn closure_is_transitive_and_survives_cycles() {
        assert_eq!(paths(&tracked_closure(&[a])), ["m::a", "m::b"]);
    }

    #[test]
    fn a_type_brings_its_impls_and_what_they_use() {
        let impls = [TrackedImpl {
            of: grid,
            info: grid_impl,
        }];
        assert_eq!(
            paths(&closure_with(&[grid], &impls.iter().collect::<Vec<_>>())),
            ["m::Grid", "m::a", "m::b", "m::impl Grid { width }"]
        );
        assert_eq!(
            paths(&closure_with(&[b], &impls.iter().collect::<Vec<_>>())),
            ["m::a", "m::b"]
        );
    }
}
