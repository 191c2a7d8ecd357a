fn total(n: u32) -> ::core::result::Result<u32, ::stage::Error> {
    ::stage::__private::call::<total>((n,))
}
#[doc(hidden)]
#[allow(non_camel_case_types)]
struct total {}
::stage::__private::inventory::submit! {
    ::stage::__private::Registered(::stage::__private::info_of:: < total >)
}
#[allow(unused_variables, clippy::all, clippy::pedantic)]
impl ::stage::__private::Stage for total {
    type Output = u32;
    type Value = u32;
    type Args = (u32,);
    type Codec = ::stage::__private::Bincode;
    const INFO: &'static ::stage::__private::StageInfo = &::stage::__private::StageInfo {
        name: "total",
        module_path: ::core::module_path!(),
        display: "total",
        code_hash: ::stage::__private::Digest([
            144u8, 75u8, 247u8, 42u8, 110u8, 192u8, 187u8, 71u8, 135u8, 248u8, 237u8,
            183u8, 142u8, 113u8, 223u8, 118u8, 130u8, 147u8, 106u8, 64u8, 94u8, 39u8,
            29u8, 150u8, 205u8, 125u8, 203u8, 65u8, 192u8, 142u8, 233u8, 96u8,
        ]),
        version: ::core::option::Option::None,
        uses: &[::stage::__private::track_info_of::<scale>],
        ancestors: &[
            ::stage::__private::AncestorInfo {
                param: "xs",
                stage: ::stage::__private::info_of::<
                    <numbers as ::stage::__private::AsStage>::Stage,
                >,
                args: "n",
            },
        ],
        raw: &[],
        params: &["n"],
        output: "u32",
        cache: "bincode",
        file: ::core::file!(),
        line: ::core::line!(),
    };
    fn params(
        __stage_args: &Self::Args,
        __stage_cx: &mut ::stage::__private::Params<'_>,
    ) -> ::core::result::Result<(), ::stage::Error> {
        let (n,) = __stage_args;
        __stage_cx.param(::core::stringify!(n), n)?;
        ::core::result::Result::Ok(())
    }
    fn inputs(
        __stage_args: &Self::Args,
        __stage_cx: &mut ::stage::__private::Plan<'_>,
    ) -> ::core::result::Result<(), ::stage::Error> {
        let (n,) = __stage_args;
        __stage_cx
            .ancestor::<
                <numbers as ::stage::__private::AsStage>::Stage,
            >("xs", (::core::clone::Clone::clone(n),))?;
        ::core::result::Result::Ok(())
    }
    fn compute(
        __stage_args: Self::Args,
        __stage_inputs: &::stage::__private::Inputs<'_>,
    ) -> ::core::result::Result<Self::Output, ::stage::__private::BoxError> {
        fn __stage_body(xs: &Vec<u32>, n: u32) -> u32 {
            xs.iter().map(|&x| scale(x)).sum()
        }
        let (n,) = __stage_args;
        let xs: &Vec<u32> = __stage_inputs
            .get::<<numbers as ::stage::__private::Stage>::Value>(0usize)?;
        ::core::result::Result::Ok(__stage_body(xs, n))
    }
}
