mod steps {
    use stage::stage;
    const EDGES: [f64; 2] = [1.0, 5.0];
    #[doc(hidden)]
    #[allow(non_camel_case_types)]
    struct __stage_item_EDGES {}
    impl ::stage::__private::Tracked for __stage_item_EDGES {
        const INFO: &'static ::stage::__private::TrackInfo = &::stage::__private::TrackInfo {
            name: "EDGES",
            module_path: ::core::module_path!(),
            code_hash: ::stage::__private::Digest([
                175u8, 104u8, 214u8, 95u8, 202u8, 184u8, 18u8, 255u8, 121u8, 141u8, 13u8,
                221u8, 13u8, 89u8, 72u8, 206u8, 253u8, 212u8, 148u8, 109u8, 62u8, 220u8,
                233u8, 18u8, 147u8, 158u8, 121u8, 127u8, 172u8, 154u8, 98u8, 186u8,
            ]),
            uses: &[],
        };
    }
    const UNUSED: u8 = 0;
    #[doc(hidden)]
    #[allow(non_camel_case_types)]
    struct __stage_item_UNUSED {}
    impl ::stage::__private::Tracked for __stage_item_UNUSED {
        const INFO: &'static ::stage::__private::TrackInfo = &::stage::__private::TrackInfo {
            name: "UNUSED",
            module_path: ::core::module_path!(),
            code_hash: ::stage::__private::Digest([
                132u8, 13u8, 146u8, 10u8, 25u8, 11u8, 251u8, 62u8, 173u8, 61u8, 46u8,
                228u8, 142u8, 71u8, 177u8, 238u8, 103u8, 176u8, 204u8, 205u8, 192u8,
                237u8, 23u8, 100u8, 254u8, 98u8, 148u8, 130u8, 144u8, 130u8, 198u8, 23u8,
            ]),
            uses: &[],
        };
    }
    fn bin(x: f64) -> usize {
        EDGES.iter().filter(|e| x >= **e).count()
    }
    #[doc(hidden)]
    #[allow(non_camel_case_types)]
    struct __stage_item_bin {}
    impl ::stage::__private::Tracked for __stage_item_bin {
        const INFO: &'static ::stage::__private::TrackInfo = &::stage::__private::TrackInfo {
            name: "bin",
            module_path: ::core::module_path!(),
            code_hash: ::stage::__private::Digest([
                109u8, 98u8, 243u8, 55u8, 41u8, 210u8, 184u8, 159u8, 243u8, 21u8, 16u8,
                157u8, 78u8, 70u8, 56u8, 34u8, 19u8, 236u8, 153u8, 126u8, 20u8, 18u8,
                80u8, 24u8, 154u8, 75u8, 73u8, 11u8, 59u8, 58u8, 68u8, 19u8,
            ]),
            uses: &[::stage::__private::track_info_of::<__stage_item_EDGES>],
        };
    }
    #[stage(cache = bincode)]
    #[__stage_pipeline(
        items = [__stage_item_bin],
        known = [EDGES,
        UNUSED,
        bin,
        binned,
        stage]
    )]
    pub fn binned(xs: Vec<f64>) -> Vec<usize> {
        xs.iter().map(|&x| bin(x)).collect()
    }
}
