fn summary() -> ::core::result::Result<u32, ::stage::Error> {
    ::stage::__private::call::<summary>(())
}
#[doc(hidden)]
#[allow(non_camel_case_types)]
struct summary {}
::stage::__private::inventory::submit! {
    ::stage::__private::Registered(::stage::__private::info_of:: < summary >)
}
#[allow(unused_variables, clippy::all, clippy::pedantic)]
impl ::stage::__private::Stage for summary {
    type Output = u32;
    type Value = u32;
    type Args = ();
    type Codec = ::stage::__private::Memory;
    const INFO: &'static ::stage::__private::StageInfo = &::stage::__private::StageInfo {
        name: "summary",
        module_path: ::core::module_path!(),
        display: "summary",
        code_hash: ::stage::__private::Digest([
            30u8, 206u8, 174u8, 164u8, 236u8, 246u8, 164u8, 94u8, 115u8, 176u8, 192u8,
            113u8, 131u8, 238u8, 180u8, 102u8, 129u8, 207u8, 60u8, 63u8, 69u8, 36u8,
            163u8, 89u8, 203u8, 175u8, 255u8, 160u8, 145u8, 9u8, 124u8, 77u8,
        ]),
        version: ::core::option::Option::None,
        uses: &[],
        ancestors: &[],
        raw: &[],
        params: &[],
        output: "u32",
        cache: "memory",
        file: ::core::file!(),
        line: ::core::line!(),
    };
    fn params(
        __stage_args: &Self::Args,
        __stage_cx: &mut ::stage::__private::Params<'_>,
    ) -> ::core::result::Result<(), ::stage::Error> {
        let () = __stage_args;
        ::core::result::Result::Ok(())
    }
    fn inputs(
        __stage_args: &Self::Args,
        __stage_cx: &mut ::stage::__private::Plan<'_>,
    ) -> ::core::result::Result<(), ::stage::Error> {
        let () = __stage_args;
        ::core::result::Result::Ok(())
    }
    fn compute(
        __stage_args: Self::Args,
        __stage_inputs: &::stage::__private::Inputs<'_>,
    ) -> ::core::result::Result<Self::Output, ::stage::__private::BoxError> {
        fn __stage_body() -> u32 {
            log();
            BUCKETS[0] + crate::config::LIMIT
        }
        let () = __stage_args;
        ::core::result::Result::Ok(__stage_body())
    }
}
#[warn(warnings)]
const _: () = {
    #[deprecated(
        note = "`BUCKETS` is not tracked: a change to it will not recompute `summary`; mark it `#[stage::track]` and add it to `uses`, or define the stage in a `#[stage::pipeline]` module (or list it in `untracked = [...]` if no change to it can change a result)"
    )]
    #[allow(non_upper_case_globals)]
    const untracked: () = ();
    let () = untracked;
};
#[warn(warnings)]
const _: () = {
    #[deprecated(
        note = "`crate::config::LIMIT` is not tracked: a change to it will not recompute `summary`; mark it `#[stage::track]` and add it to `uses`, or define the stage in a `#[stage::pipeline]` module (or list it in `untracked = [...]` if no change to it can change a result)"
    )]
    #[allow(non_upper_case_globals)]
    const untracked: () = ();
    let () = untracked;
};
