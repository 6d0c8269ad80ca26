//! PinSketch (Dodis, Ostrovsky, Reyzin and Smith, 2004; the BCH set sketches of Bitcoin's
//! `minisketch`) over GF(2³²): a set of nonzero 32-bit keys is summarised by its odd power sums
//! s₁, s₃, …, s₂꜀₋₁ (`c` words, the *capacity*). Power sums add under symmetric difference, so the
//! xor of two sides' sketches is the sketch of the keys only one side holds; Berlekamp–Massey
//! turns it into the polynomial whose roots are those keys, as long as there are fewer than `c`.
//!
//! No root finding: each side evaluates the polynomial at its own keys (Horner, one product per
//! degree) to find its part of the difference, divides those roots out, and hands the quotient to
//! the other side, whose keys are its roots. This costs a product per own key and degree instead
//! of factoring over the field, and keeps this module a few arithmetic routines.
//!
//! Decoding is *checked*: with `c` words (2c power sums) a difference of d < c keys gives a
//! polynomial of degree d; more than c − 1 keys give one of degree ≥ c − 1 but for a 2⁻⁶⁴ chance,
//! which reads as "over capacity".

/// Carry-less product of two 32-bit words.
fn clmul(a: u32, b: u32) -> u64 {
    let a = u64::from(a);
    (0..32).fold(0, |acc, i| {
        acc ^ ((a << i) & (u64::from((b >> i) & 1)).wrapping_neg())
    })
}

/// Reduces a carry-less product (below x⁶⁴) modulo the field's modulus, x³² + x⁷ + x³ + x² + 1
/// (minisketch's choice): x³² is x⁷ + x³ + x² + 1, applied twice.
fn reduce(r: u64) -> u32 {
    let fold = |hi: u64| hi ^ (hi << 2) ^ (hi << 3) ^ (hi << 7);
    let t = fold(r >> 32);
    (r ^ t ^ fold(t >> 32)) as u32
}

/// The product in GF(2³²).
pub fn mul(a: u32, b: u32) -> u32 {
    reduce(clmul(a, b))
}

/// Multiplying by one fixed element, by a table of its products with every 4-bit word (two
/// lookups a byte instead of 32 steps): for Horner's rule and power sums, where one factor stays.
#[derive(Clone, Copy)]
pub struct By([u64; 16]);

impl By {
    /// The multiplier by `b`.
    pub fn new(b: u32) -> By {
        let mut t = [0u64; 16];
        for bit in 0..4 {
            t[1 << bit] = u64::from(b) << bit;
        }
        for n in 3..16 {
            // A sum of its lowest set bit's entry and the rest's.
            t[n] = t[n & (n - 1)] ^ t[n & n.wrapping_neg()];
        }
        By(t)
    }

    /// `a · b`.
    pub fn mul(&self, a: u32) -> u32 {
        let mut r = 0u64;
        for k in 0..8 {
            r ^= self.0[((a >> (4 * k)) & 15) as usize] << (4 * k);
        }
        reduce(r)
    }
}

/// `a^(2³² − 2)`, the inverse of a nonzero `a`.
fn inverse(a: u32) -> u32 {
    // 2³² − 2 = 0b1…10: square-and-multiply over 31 ones and a final square.
    let mut r = a;
    for _ in 0..30 {
        r = mul(mul(r, r), a);
    }
    mul(r, r)
}

/// A 32-bit key from a hash (zero, which no power sum sees, becomes one).
pub fn key(h: u32) -> u32 {
    h.max(1)
}

/// Adds `key` to the sketch `s` (its odd power sums, as many as `s` holds).
pub fn add(s: &mut [u32], key: u32) {
    let square = By::new(mul(key, key));
    let mut p = key;
    for w in s.iter_mut() {
        *w ^= p;
        p = square.mul(p);
    }
}

/// The sketch of capacity `c` of `keys`.
pub fn sketch(keys: impl Iterator<Item = u32>, c: usize) -> Vec<u32> {
    let mut s = vec![0; c];
    let keys: Vec<u32> = keys.collect();
    let mut fours = keys.chunks_exact(4);
    // Four keys at a time: their products are independent, so the processor overlaps them.
    for four in &mut fours {
        let by: [By; 4] = std::array::from_fn(|k| By::new(mul(four[k], four[k])));
        let mut p: [u32; 4] = std::array::from_fn(|k| four[k]);
        for w in s.iter_mut() {
            *w ^= p[0] ^ p[1] ^ p[2] ^ p[3];
            p = std::array::from_fn(|k| by[k].mul(p[k]));
        }
    }
    for k in fours.remainder() {
        add(&mut s, *k);
    }
    s
}

/// The polynomial whose roots are the keys of the difference sketched by `s` (the xor of two
/// sides' sketches), monic, coefficients from the highest power down without the leading one;
/// `None` when the difference holds `s.len()` − 1 keys or more (or the sketch is no set's).
pub fn decode(s: &[u32]) -> Option<Vec<u32>> {
    let c = s.len();
    // All 2c power sums: the even ones are squares of the odd (the field has characteristic 2).
    let mut sums = vec![0u32; 2 * c];
    for i in 0..2 * c {
        let power = i + 1;
        sums[i] = if !power.is_multiple_of(2) {
            s[i / 2]
        } else {
            let half = sums[power / 2 - 1];
            mul(half, half)
        };
    }
    // Berlekamp–Massey: the shortest recurrence (connection polynomial `conn`) of the sums.
    let (mut conn, mut prev) = (vec![1u32], vec![1u32]);
    let (mut len, mut shift, mut last) = (0usize, 1usize, 1u32);
    for n in 0..2 * c {
        let mut d = sums[n];
        for i in 1..=len.min(conn.len() - 1) {
            d ^= mul(conn[i], sums[n - i]);
        }
        if d == 0 {
            shift += 1;
            continue;
        }
        let f = mul(d, inverse(last));
        let before = conn.clone();
        if conn.len() < prev.len() + shift {
            conn.resize(prev.len() + shift, 0);
        }
        for (i, p) in prev.iter().enumerate() {
            conn[i + shift] ^= mul(f, *p);
        }
        if 2 * len <= n {
            len = n + 1 - len;
            prev = before;
            last = d;
            shift = 1;
        } else {
            shift += 1;
        }
    }
    conn.resize(len + 1, 0);
    // Over capacity, or no set's sketch: zero is no key, so the constant term must not vanish.
    if len >= c.max(1) || (len > 0 && conn[len] == 0) {
        return None;
    }
    // The roots of the connection polynomial are the keys' inverses; its reverse has the keys.
    Some(conn[1..].to_vec())
}

/// The value at `x` of the monic polynomial with coefficients `poly` (from the highest power
/// down, the leading one left out).
pub fn eval(poly: &[u32], x: u32) -> u32 {
    let by = By::new(x);
    poly.iter().fold(1, |acc, c| by.mul(acc) ^ c)
}

/// `poly` divided by (x − root), for a root of it (the monic quotient, in the same form).
pub fn divide(poly: &[u32], root: u32) -> Vec<u32> {
    let by = By::new(root);
    let mut q = Vec::with_capacity(poly.len().saturating_sub(1));
    let mut acc = 1;
    for c in &poly[..poly.len().saturating_sub(1)] {
        acc = by.mul(acc) ^ c;
        q.push(acc);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The modulus without its x³².
    const MODULUS: u64 = 0x8d;

    /// Polynomials over GF(2) as bits: the remainder of `a` by `m`.
    fn rem(mut a: u64, m: u64) -> u64 {
        let dm = 63 - m.leading_zeros();
        while a != 0 && 63 - a.leading_zeros() >= dm {
            a ^= m << (63 - a.leading_zeros() - dm);
        }
        a
    }

    #[test]
    fn the_modulus_is_irreducible() {
        // x^(2³²) ≡ x, and gcd(x^(2¹⁶) − x, m) = 1: no factor of degree 1, 2, 4, 8 or 16.
        let square = |a: u32| mul(a, a);
        let mut x = 2u32;
        for _ in 0..32 {
            x = square(x);
        }
        assert_eq!(x, 2);
        let mut y = 2u32;
        for _ in 0..16 {
            y = square(y);
        }
        let (mut a, mut b) = ((1u64 << 32) | MODULUS, u64::from(y ^ 2));
        while b != 0 {
            (a, b) = (b, rem(a, b));
        }
        assert_eq!(a, 1);
    }

    #[test]
    fn field_laws_hold_and_the_table_agrees() {
        let xs = [1u32, 2, 3, 0x8d, 0xdead_beef, u32::MAX, 0x8000_0000, 12345];
        for a in xs {
            assert_eq!(mul(a, inverse(a)), 1, "{a:#x}");
            for b in xs {
                assert_eq!(By::new(b).mul(a), mul(a, b));
                assert_eq!(mul(a, b), mul(b, a));
                for c in xs {
                    assert_eq!(mul(a, b ^ c), mul(a, b) ^ mul(a, c));
                    assert_eq!(mul(mul(a, b), c), mul(a, mul(b, c)));
                }
            }
        }
    }

    /// Keys of `a` only and of `b` only, found as the protocol finds them: `b` decodes the xor of
    /// the sketches, finds its own roots, divides them out; `a` finds the quotient's roots.
    fn reconcile(a: &[u32], b: &[u32], c: usize) -> Option<(Vec<u32>, Vec<u32>)> {
        let (sa, sb) = (sketch(a.iter().copied(), c), sketch(b.iter().copied(), c));
        let x: Vec<u32> = sa.iter().zip(&sb).map(|(p, q)| p ^ q).collect();
        let mut poly = decode(&x)?;
        let mut b_only = Vec::new();
        for k in b {
            if eval(&poly, *k) == 0 {
                poly = divide(&poly, *k);
                b_only.push(*k);
            }
        }
        let a_only: Vec<u32> = a.iter().copied().filter(|k| eval(&poly, *k) == 0).collect();
        (a_only.len() == poly.len()).then_some((a_only, b_only))
    }

    proptest! {
        #[test]
        fn a_difference_under_capacity_is_found_exactly(
            shared in prop::collection::hash_set(1u32.., 0..200),
            only_a in prop::collection::hash_set(1u32.., 0..12),
            only_b in prop::collection::hash_set(1u32.., 0..12),
        ) {
            let only_a: Vec<u32> = only_a.into_iter().filter(|k| !shared.contains(k) && !only_b.contains(k)).collect();
            let only_b: Vec<u32> = only_b.into_iter().filter(|k| !shared.contains(k)).collect();
            let a: Vec<u32> = shared.iter().chain(&only_a).copied().collect();
            let b: Vec<u32> = shared.iter().chain(&only_b).copied().collect();
            let c = only_a.len() + only_b.len() + 1;
            let (mut fa, mut fb) = reconcile(&a, &b, c).expect("under capacity");
            let (mut ea, mut eb) = (only_a.clone(), only_b.clone());
            fa.sort_unstable(); fb.sort_unstable(); ea.sort_unstable(); eb.sort_unstable();
            prop_assert_eq!((fa, fb), (ea, eb));
        }

        #[test]
        fn a_difference_over_capacity_is_refused(
            keys in prop::collection::hash_set(1u32.., 10..60),
            c in 2usize..10,
        ) {
            let keys: Vec<u32> = keys.into_iter().collect();
            prop_assume!(keys.len() >= c);
            prop_assert!(decode(&sketch(keys.iter().copied(), c)).is_none());
        }
    }

    #[test]
    fn equal_sets_decode_to_nothing() {
        let keys: Vec<u32> = (1..1000).collect();
        let s = sketch(keys.iter().copied(), 8);
        let x: Vec<u32> = s.iter().map(|w| w ^ w).collect();
        assert_eq!(decode(&x), Some(vec![]));
    }
}
