impl model::Grid {
    fn cell(&self, x: f64) -> i64 {
        (x / self.step) as i64
    }
}
const _: () = {
    #[doc(hidden)]
    #[allow(non_camel_case_types)]
    struct __stage_impl {}
    impl ::stage::__private::Tracked for __stage_impl {
        const INFO: &'static ::stage::__private::TrackInfo = &::stage::__private::TrackInfo {
            name: "impl model::Grid { cell }",
            module_path: ::core::module_path!(),
            code_hash: ::stage::__private::Digest([
                151u8, 75u8, 172u8, 181u8, 104u8, 130u8, 119u8, 233u8, 200u8, 117u8,
                229u8, 20u8, 54u8, 98u8, 152u8, 158u8, 169u8, 52u8, 136u8, 22u8, 199u8,
                169u8, 92u8, 177u8, 118u8, 17u8, 220u8, 248u8, 224u8, 240u8, 54u8, 247u8,
            ]),
            uses: &[],
        };
    }
    ::stage::__private::inventory::submit! {
        ::stage::__private::TrackedImpl { of : ::stage::__private::track_info_of:: <
        model::__stage_tracked_Grid >, info : ::stage::__private::track_info_of:: <
        __stage_impl >, }
    }
};
