pub const BUCKETS: [f64; 2] = [0.0, 10.0];
#[doc(hidden)]
#[allow(non_camel_case_types)]
pub struct BUCKETS {}
impl ::stage::__private::Tracked for BUCKETS {
    const INFO: &'static ::stage::__private::TrackInfo = &::stage::__private::TrackInfo {
        name: "BUCKETS",
        module_path: ::core::module_path!(),
        code_hash: ::stage::__private::Digest([
            5u8, 209u8, 91u8, 142u8, 40u8, 163u8, 121u8, 43u8, 216u8, 149u8, 202u8, 61u8,
            58u8, 88u8, 97u8, 163u8, 76u8, 132u8, 27u8, 11u8, 123u8, 26u8, 135u8, 134u8,
            183u8, 69u8, 255u8, 97u8, 68u8, 153u8, 143u8, 9u8,
        ]),
        uses: &[],
    };
}
