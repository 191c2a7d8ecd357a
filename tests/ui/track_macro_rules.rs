#[stage::track]
macro_rules! double {
    ($x:expr) => {
        $x * 2
    };
}

fn main() {}
