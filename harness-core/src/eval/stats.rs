//! The statistics behind results and comparisons: the Wilson interval, the exact McNemar test,
//! the paired bootstrap, percentiles and the power of a paired comparison. Pure functions of
//! counts and slices; `docs/eval.md` states their assumptions.

/// The z value of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of `passed` successes in `n` trials at 95%: `(low, high)`, both in
/// `[0, 1]`. `(0, 1)` when `n` is 0: nothing is known.
pub fn wilson(passed: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let p = passed as f64 / n;
    let z2 = Z95 * Z95;
    let centre = p + z2 / (2.0 * n);
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let denom = 1.0 + z2 / n;
    (
        ((centre - half) / denom).max(0.0),
        ((centre + half) / denom).min(1.0),
    )
}

/// `ln C(n, k)`, through `ln Γ` (exact to about 1e-12 relative for the sizes evaluation meets).
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// `P(X = k)` for `X ~ Binomial(n, p)`.
pub fn binomial_pmf(n: u64, k: u64, p: f64) -> f64 {
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return if k == 0 { 1.0 } else { 0.0 };
    }
    if p >= 1.0 {
        return if k == n { 1.0 } else { 0.0 };
    }
    (ln_choose(n, k) + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()).exp()
}

/// `P(X ≤ k)` for `X ~ Binomial(n, 1/2)`, summed exactly.
fn half_cdf(n: u64, k: u64) -> f64 {
    (0..=k.min(n)).map(|i| binomial_pmf(n, i, 0.5)).sum()
}

/// The exact (binomial) McNemar test of paired pass/fail outcomes: `b` pairs that passed before
/// and fail now, `c` that failed before and pass now. Returns the two-sided p-value: under the
/// null hypothesis each discordant pair is equally likely to go either way. 1 when there is no
/// discordant pair.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    (2.0 * half_cdf(n, b.min(c))).min(1.0)
}

/// The `q`-quantile (0 ≤ q ≤ 1) of `sorted` by the nearest-rank method; `None` when empty.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// What a paired bootstrap found about the mean of paired differences (new − base).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bootstrap {
    /// The observed mean difference.
    pub mean: f64,
    /// The 2.5th percentile of the resampled means.
    pub low: f64,
    /// The 97.5th percentile of the resampled means.
    pub high: f64,
    /// Two-sided p-value: twice the smaller share of resampled means on either side of zero
    /// (percentile bootstrap; at best `1 / resamples`).
    pub p_value: f64,
    /// How many resamples.
    pub resamples: u32,
}

/// The paired bootstrap of `diffs` (one difference per paired case): `resamples` resamples of
/// the cases with replacement, seeded so a comparison is reproducible. `None` when empty.
///
/// Differences usually take few distinct values (pass/fail scores give −1, 0 and 1): then each
/// resample only counts how often each value is drawn, which is the same resample, cheaper.
pub fn paired_bootstrap(diffs: &[f64], resamples: u32, seed: u64) -> Option<Bootstrap> {
    if diffs.is_empty() || resamples == 0 {
        return None;
    }
    let n = diffs.len();
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut means: Vec<f64> = match categories(diffs) {
        Some((values, cats)) => (0..resamples)
            .map(|_| resample_categories(&mut rng, &values, &cats) / n as f64)
            .collect(),
        None => (0..resamples)
            .map(|_| (0..n).map(|_| diffs[rng.usize(..n)]).sum::<f64>() / n as f64)
            .collect(),
    };
    means.sort_by(f64::total_cmp);
    let below = means.iter().filter(|m| **m < 0.0).count() as f64;
    let above = means.iter().filter(|m| **m > 0.0).count() as f64;
    let r = resamples as f64;
    let p_value = if below == 0.0 && above == 0.0 {
        1.0
    } else {
        (2.0 * below.min(above).max(1.0) / r).min(1.0)
    };
    Some(Bootstrap {
        mean,
        low: percentile(&means, 0.025).unwrap_or(mean),
        high: percentile(&means, 0.975).unwrap_or(mean),
        p_value,
        resamples,
    })
}

/// The sum of one resample of `cats.len()` draws: counts per category (two independent counter
/// sets, so consecutive draws of the same category do not wait on each other), then one
/// multiply-add per category.
fn resample_categories(rng: &mut fastrand::Rng, values: &[f64], cats: &[u8]) -> f64 {
    let n = cats.len();
    let mut counts = [[0u32; 64]; 2];
    let mut draws = Draws::new(n);
    let mut i = 0;
    while i + 2 <= n {
        let (a, b) = draws.two(rng);
        counts[0][cats[a] as usize] += 1;
        counts[1][cats[b] as usize] += 1;
        i += 2;
    }
    if i < n {
        counts[0][cats[rng.usize(..n)] as usize] += 1;
    }
    values
        .iter()
        .enumerate()
        .map(|(k, v)| (counts[0][k] + counts[1][k]) as f64 * v)
        .sum()
}

/// Uniform indices below `n` (< 2³²), two from each 64-bit random number by Lemire's
/// multiply-shift with rejection, so exactly uniform.
struct Draws {
    n: u64,
    threshold: u32,
}

impl Draws {
    fn new(n: usize) -> Self {
        let n32 = n.min(u32::MAX as usize) as u32;
        Draws {
            n: n32 as u64,
            threshold: n32.wrapping_neg() % n32.max(1),
        }
    }

    fn one(&self, half: u32, rng: &mut fastrand::Rng) -> usize {
        let m = half as u64 * self.n;
        if (m as u32) < self.threshold {
            return rng.usize(..self.n as usize);
        }
        (m >> 32) as usize
    }

    fn two(&mut self, rng: &mut fastrand::Rng) -> (usize, usize) {
        let r = rng.u64(..);
        (self.one(r as u32, rng), self.one((r >> 32) as u32, rng))
    }
}

/// The distinct values of `diffs` and each one's index, when there are at most 64.
fn categories(diffs: &[f64]) -> Option<(Vec<f64>, Vec<u8>)> {
    let mut values: Vec<f64> = Vec::new();
    let mut cats = Vec::with_capacity(diffs.len());
    for d in diffs {
        let i = match values.iter().position(|v| v.to_bits() == d.to_bits()) {
            Some(i) => i,
            None if values.len() < 64 => {
                values.push(*d);
                values.len() - 1
            }
            None => return None,
        };
        cats.push(i as u8);
    }
    Some((values, cats))
}

/// The power of the exact two-sided McNemar test at level `alpha` to detect a drop of `drop`
/// (a share, 0.15 for 15 points) over `n` paired cases when a share `discordant` of the pairs
/// changes outcome. Exact for `n ≤ 400` (the sum over the number of discordant pairs), a normal
/// approximation beyond. The drop must be in the declared direction to count.
pub fn mcnemar_power(n: u64, drop: f64, discordant: f64, alpha: f64) -> f64 {
    if n > 400 {
        let psi = discordant.clamp(drop.abs(), 1.0);
        return if drop <= 0.0 || psi <= 0.0 {
            0.0
        } else {
            power_normal(n as f64, drop, psi, alpha)
        };
    }
    power_exact(n, drop, discordant, &critical_values(n, alpha))
}

fn power_exact(n: u64, drop: f64, discordant: f64, critical: &[Option<u64>]) -> f64 {
    let psi = discordant.clamp(drop.abs(), 1.0);
    if n == 0 || psi <= 0.0 || drop <= 0.0 {
        return 0.0;
    }
    // Share of discordant pairs that are regressions (passed before, fail now).
    let q = (0.5 + drop / (2.0 * psi)).min(1.0);
    let mut power = 0.0;
    for k in 1..=n {
        let pk = binomial_pmf(n, k, psi);
        if pk < 1e-12 {
            continue;
        }
        if let Some(b_min) = critical[k as usize] {
            power += pk * upper_tail(k, b_min, q);
        }
    }
    power.min(1.0)
}

/// `P(X ≥ from)` for `X ~ Binomial(k, q)`, by the pmf's recurrence from `from` up.
fn upper_tail(k: u64, from: u64, q: f64) -> f64 {
    if q >= 1.0 {
        return 1.0;
    }
    let mut pmf = binomial_pmf(k, from, q);
    let mut sum = pmf;
    let ratio = q / (1.0 - q);
    for b in from..k {
        pmf *= (k - b) as f64 / (b + 1) as f64 * ratio;
        sum += pmf;
    }
    sum.min(1.0)
}

/// For each number of discordant pairs `k` in `0..=n`: the smallest number of regressions `b`
/// the exact two-sided test calls significant at `alpha` (`None` when even `b = k` is not).
fn critical_values(n: u64, alpha: f64) -> Vec<Option<u64>> {
    (0..=n)
        .map(|k| {
            // p(b) = 2 P(X ≤ k − b): the largest m = k − b with 2·CDF(m) < alpha.
            let mut cdf = 0.0;
            let mut best = None;
            for m in 0..=k / 2 {
                cdf += binomial_pmf(k, m, 0.5);
                if 2.0 * cdf < alpha && k - m > m {
                    best = Some(k - m);
                } else {
                    break;
                }
            }
            best
        })
        .collect()
}

/// Connor's normal approximation of McNemar power.
fn power_normal(n: f64, drop: f64, psi: f64, alpha: f64) -> f64 {
    let z_a = normal_quantile(1.0 - alpha / 2.0);
    let num = drop * n.sqrt() - z_a * psi.sqrt();
    let den = (psi - drop * drop).max(1e-12).sqrt();
    normal_cdf(num / den)
}

/// The standard normal CDF (Abramowitz–Stegun 7.1.26 through erf; |error| < 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-(x * x) / 2.0).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// The standard normal quantile, by bisection on [`normal_cdf`].
pub fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0_f64, 10.0_f64);
    for _ in 0..80 {
        let mid = (lo + hi) / 2.0;
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// The smallest drop, in whole points, that `n` paired cases detect with `power` at `alpha`
/// when a share `discordant` of pairs changes outcome; `None` when not even 100 points would.
/// (Power grows with the drop, so this is a binary search.)
pub fn min_detectable_drop(n: u64, discordant: f64, alpha: f64, power: f64) -> Option<u32> {
    let critical = (n <= 400).then(|| critical_values(n, alpha));
    let at = |pts: u32| {
        let drop = pts as f64 / 100.0;
        match &critical {
            Some(c) => power_exact(n, drop, discordant, c),
            None => mcnemar_power(n, drop, discordant, alpha),
        }
    };
    if at(100) < power {
        return None;
    }
    let (mut lo, mut hi) = (0u32, 100u32);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if at(mid) >= power {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // 81 of 263 (Wilson 1927 via Newcombe 1998): 0.2553 to 0.3662.
        let (lo, hi) = wilson(81, 263);
        assert!(
            (lo - 0.2553).abs() < 1e-3 && (hi - 0.3662).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0), (0.0, 1.0));
        let (lo, hi) = wilson(10, 10);
        assert!(
            lo > 0.69 && lo < 0.73 && (hi - 1.0).abs() < 1e-12,
            "{lo} {hi}"
        );
    }

    #[test]
    fn mcnemar_is_the_exact_binomial_test() {
        // b = 1, c = 6: 2 × P(X ≤ 1 | 7, ½) = 2 × 8/128.
        assert!((mcnemar_exact(1, 6) - 0.125).abs() < 1e-12);
        assert!((mcnemar_exact(6, 1) - 0.125).abs() < 1e-12);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        // 10 regressions, none back: 2 / 1024.
        assert!((mcnemar_exact(10, 0) - 2.0 / 1024.0).abs() < 1e-12);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.95), Some(95.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_mean() {
        let diffs: Vec<f64> = (0..200)
            .map(|i| if i % 5 == 0 { -1.0 } else { 0.0 })
            .collect();
        let a = paired_bootstrap(&diffs, 2000, 7).unwrap();
        assert_eq!(a, paired_bootstrap(&diffs, 2000, 7).unwrap());
        assert!((a.mean + 0.2).abs() < 1e-12);
        assert!(a.low < -0.2 && a.high > -0.2 && a.high < 0.0, "{a:?}");
        assert!(a.p_value <= 0.001, "{a:?}");
        // More than 64 distinct values: resampled value by value.
        let spread: Vec<f64> = (0..200).map(|i| (i as f64 - 120.0) / 1000.0).collect();
        let b = paired_bootstrap(&spread, 1000, 3).unwrap();
        assert!(b.low < -0.02 && b.high > -0.02 && b.high < 0.0, "{b:?}");
        let zero = paired_bootstrap(&[0.0; 50], 500, 1).unwrap();
        assert_eq!(zero.p_value, 1.0);
    }

    #[test]
    fn power_grows_with_cases_and_drop() {
        let small = mcnemar_power(50, 0.15, 0.2, 0.05);
        let large = mcnemar_power(200, 0.15, 0.2, 0.05);
        assert!(small < 0.8 && large > 0.8, "{small} {large}");
        assert!(mcnemar_power(200, 0.05, 0.2, 0.05) < large);
        // Exact and approximate agree near the switch.
        let exact = mcnemar_power(400, 0.08, 0.2, 0.05);
        let approx = power_normal(400.0, 0.08, 0.2, 0.05);
        assert!((exact - approx).abs() < 0.05, "{exact} {approx}");
        let mdd = min_detectable_drop(200, 0.2, 0.05, 0.8).unwrap();
        assert!((8..=15).contains(&mdd), "{mdd}");
    }

    #[test]
    fn critical_values_match_the_exact_test() {
        let c = critical_values(30, 0.05);
        for (k, b) in c.iter().enumerate() {
            let k = k as u64;
            match b {
                Some(b) => {
                    assert!(mcnemar_exact(*b, k - b) < 0.05, "k={k} b={b}");
                    assert!(
                        *b == k / 2 + 1 || mcnemar_exact(b - 1, k - b + 1) >= 0.05,
                        "k={k}"
                    );
                }
                None => assert!(mcnemar_exact(k, 0) >= 0.05, "k={k}"),
            }
        }
        // 6 of 6 discordant pairs one way: p = 2/64 < 0.05; 5 of 5: 2/32 ≥ 0.05.
        assert_eq!((c[5], c[6]), (None, Some(6)));
    }

    #[test]
    fn draws_are_uniform_indices() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut d = Draws::new(3);
        let mut seen = [0u32; 3];
        for _ in 0..30_000 {
            let (a, b) = d.two(&mut rng);
            seen[a] += 1;
            seen[b] += 1;
        }
        assert!(
            seen.iter().all(|c| (19_000..21_000).contains(c)),
            "{seen:?}"
        );
    }

    #[test]
    fn normal_functions_agree_with_tables() {
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_quantile(0.975) - Z95).abs() < 1e-5);
    }
}
