//! The `download_images` → `blur` / `edge_enhance` → `collage` graph. Prints each stage's key, computed
//! without running anything: edit one stage's body and run again to see which keys change
//! (that stage's and its descendants'), and which stages are recomputed.
//!
//! ```sh
//! cargo run --example collage
//! ```

use serde::{Deserialize, Serialize};
use stage::stage;

/// A small grayscale image.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Image {
    width: usize,
    pixels: Vec<u8>,
}

impl Image {
    fn at(&self, x: usize, y: usize) -> u8 {
        self.pixels[y * self.width + x]
    }

    fn map(&self, f: impl Fn(usize, usize) -> u8) -> Image {
        let height = self.pixels.len() / self.width;
        let pixels = (0..height)
            .flat_map(|y| (0..self.width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        Image {
            width: self.width,
            pixels,
        }
    }

    /// The 3×3 neighbourhood of (x, y), clamped at the borders.
    fn around(&self, x: usize, y: usize) -> impl Iterator<Item = u8> + '_ {
        let height = self.pixels.len() / self.width;
        (-1isize..=1).flat_map(move |dy| {
            (-1isize..=1).map(move |dx| {
                let cx = x.saturating_add_signed(dx).min(self.width - 1);
                let cy = y.saturating_add_signed(dy).min(height - 1);
                self.at(cx, cy)
            })
        })
    }
}

/// "Downloads" a 64×64 image: a deterministic pattern from `seed` (no network).
#[stage(cache = bincode)]
fn download_images(seed: u8) -> Image {
    let pixels = (0..64 * 64)
        .map(|i: usize| ((i % 64) * 3 ^ (i / 64) * 5) as u8 ^ seed)
        .collect();
    Image { width: 64, pixels }
}

#[stage(image = download_images(seed), cache = bincode)]
fn blur(image: &Image, seed: u8) -> Image {
    image.map(|x, y| (image.around(x, y).map(u32::from).sum::<u32>() / 9) as u8)
}

#[stage(image = download_images(seed), cache = bincode)]
fn edge_enhance(image: &Image, seed: u8) -> Image {
    image.map(|x, y| {
        let sum: i32 = image.around(x, y).map(i32::from).sum();
        (9 * i32::from(image.at(x, y)) * 2 - sum).clamp(0, 255) as u8
    })
}

/// Puts both side by side.
#[stage(left = blur(seed), right = edge_enhance(seed), cache = bincode)]
fn collage(left: &Image, right: &Image, seed: u8) -> Image {
    let rows = left
        .pixels
        .chunks(left.width)
        .zip(right.pixels.chunks(right.width));
    Image {
        width: left.width + right.width,
        pixels: rows.flat_map(|(l, r)| l.iter().chain(r)).copied().collect(),
    }
}

fn main() -> Result<(), stage::Error> {
    let seed = 42;
    println!("keys (computed without running anything):");
    for (name, key) in [
        (
            "download_images",
            stage::inspect::key::<download_images>((seed,))?,
        ),
        ("blur", stage::inspect::key::<blur>((seed,))?),
        (
            "edge_enhance",
            stage::inspect::key::<edge_enhance>((seed,))?,
        ),
        ("collage", stage::inspect::key::<collage>((seed,))?),
    ] {
        println!("  {name:<16} {}", key.short());
    }
    let (image, log) = stage::observe(|| collage(seed));
    let image = image?;
    let checksum = image
        .pixels
        .iter()
        .fold(0u32, |acc, &p| acc.rotate_left(5) ^ u32::from(p));
    println!(
        "collage: {}×{} pixels, checksum {checksum:08x}",
        image.width,
        image.pixels.len() / image.width
    );
    print!("{log}");
    Ok(())
}
