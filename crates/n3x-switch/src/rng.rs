//! Deterministic random numbers: xoshiro256** seeded through SplitMix64, and a stable
//! hash to derive one stream per link and purpose.
//!
//! Both algorithms are implemented here (a few lines each) so the streams never change
//! with a dependency upgrade, a platform or a compiler: the same lab seed reproduces the
//! same drop sequence everywhere.

/// SplitMix64 step: advances `state` and returns the next output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of a seed and a list of strings (FNV-1a over length-prefixed
/// parts, finished with SplitMix64). Length prefixes keep `("ab", "c")` and `("a", "bc")`
/// apart.
pub fn stable_hash(seed: u64, parts: &[&str]) -> u64 {
    const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01B3;
    let mut h = FNV_OFFSET;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
    };
    eat(&seed.to_le_bytes());
    for part in parts {
        eat(&(part.len() as u64).to_le_bytes());
        eat(part.as_bytes());
    }
    let mut s = h;
    splitmix64(&mut s)
}

/// xoshiro256** (Blackman and Vigna), the generator behind every random draw of a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Seeds the four words of state from SplitMix64, as the authors recommend.
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let s = [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
        Rng { s }
    }

    /// The stream for one purpose of one directed link of one switch.
    pub fn for_link(seed: u64, switch: &str, from: &str, to: &str, purpose: &str) -> Rng {
        Rng::new(stable_hash(seed, &[switch, from, to, purpose]))
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (mean 0, standard deviation 1) by Box-Muller; always two draws.
    pub fn next_normal(&mut self) -> f64 {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED_LINK_STREAM: u64 = 11_290_092_567_277_126_218;

    #[test]
    fn xoshiro_matches_reference_vector() {
        // Reference: the C implementation seeded with state {1, 2, 3, 4}.
        let mut r = Rng { s: [1, 2, 3, 4] };
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(got, vec![11520, 0, 1509978240, 1215971899390074240]);
    }

    #[test]
    fn splitmix_matches_reference_vector() {
        // Reference outputs of splitmix64 seeded with 0.
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn stable_hash_is_stable_and_separates_parts() {
        // Pinned: changing the hash would change every lab's drop sequences.
        assert_eq!(stable_hash(42, &["net", "a", "b"]), stable_hash(42, &["net", "a", "b"]));
        assert_ne!(stable_hash(42, &["ab", "c"]), stable_hash(42, &["a", "bc"]));
        assert_ne!(stable_hash(42, &["net", "a", "b"]), stable_hash(42, &["net", "b", "a"]));
        assert_ne!(stable_hash(1, &["x"]), stable_hash(2, &["x"]));
        assert_eq!(stable_hash(0, &[]), 6_603_144_262_649_002_859, "pinned value changed");
    }

    #[test]
    fn link_streams_are_pinned() {
        // Pinned: a change here changes every lab's drop sequences for a given seed.
        let mut r = Rng::for_link(42, "net", "a", "b", "loss");
        assert_eq!(r.next_u64(), PINNED_LINK_STREAM);
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = Rng::new(7);
        let n = 200_000;
        let u: Vec<f64> = (0..n).map(|_| r.next_f64()).collect();
        let mean = u.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.005, "uniform mean {mean}");
        assert!(u.iter().all(|x| (0.0..1.0).contains(x)));
        let z: Vec<f64> = (0..n).map(|_| r.next_normal()).collect();
        let zm = z.iter().sum::<f64>() / n as f64;
        let zv = z.iter().map(|x| (x - zm) * (x - zm)).sum::<f64>() / n as f64;
        assert!(zm.abs() < 0.01, "normal mean {zm}");
        assert!((zv.sqrt() - 1.0).abs() < 0.01, "normal sd {}", zv.sqrt());
    }
}
