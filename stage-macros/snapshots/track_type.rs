pub struct Grid {
    step: f64,
}
#[doc(hidden)]
#[allow(non_camel_case_types)]
pub struct __stage_tracked_Grid {}
impl ::stage::__private::Tracked for __stage_tracked_Grid {
    const INFO: &'static ::stage::__private::TrackInfo = &::stage::__private::TrackInfo {
        name: "Grid",
        module_path: ::core::module_path!(),
        code_hash: ::stage::__private::Digest([
            234u8, 249u8, 201u8, 153u8, 143u8, 104u8, 145u8, 143u8, 189u8, 152u8, 19u8,
            236u8, 6u8, 195u8, 173u8, 29u8, 163u8, 83u8, 164u8, 84u8, 49u8, 79u8, 241u8,
            237u8, 214u8, 206u8, 70u8, 172u8, 82u8, 7u8, 110u8, 115u8,
        ]),
        uses: &[],
    };
}
