struct Grid;

trait Cells {
    fn cells(&self) -> u32;
}

#[stage::track]
impl Cells for &Grid {
    fn cells(&self) -> u32 {
        4
    }
}

fn main() {}
