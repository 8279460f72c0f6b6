//! The embedding layers of the injection head (384 → H → 1, ReLU, or
//! logistic regression when H = 0), trained full-batch with AdamW on the
//! class-weighted, numerically stable logistic loss.
//!
//! Written out by hand over `gemm` (the matrix products) instead of
//! candle's autograd: the same model, optimiser and loss as heads v1–v5
//! were trained with through candle, but every buffer is allocated once.
//! Through candle, each of the 600 epochs allocated a dozen fresh
//! N×H tensors; perf showed about half of a by-author run in page faults
//! and single-threaded element-wise maps, the matrix products a fifth.
//! The initialisation is candle's (`candle_nn::linear`: Kaiming-normal
//! weights, fan-in, ReLU gain; biases uniform in ±1/√fan-in), drawn from a
//! seeded generator, so a run is reproducible.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// AdamW settings (candle's defaults apart from `lr` and `weight_decay`,
/// as the earlier heads were trained).
pub const LR: f32 = 3e-3;
pub const WEIGHT_DECAY: f32 = 1e-3;
const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

/// A trained 384 → H → 1 network: `hidden` is (weights H×D row-major,
/// biases) or `None`; `out` is (weights, bias) over H (or D) inputs.
pub struct Mlp {
    pub hidden: Option<(Vec<f32>, Vec<f32>)>,
    pub out: (Vec<f32>, f32),
    /// The weighted mean loss of the last epoch.
    pub last_loss: f32,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Adam state of one parameter vector.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    fn new(n: usize) -> Self {
        Self { m: vec![0.0; n], v: vec![0.0; n] }
    }

    /// One decoupled-weight-decay Adam step (candle's `AdamW::step`).
    fn step(&mut self, theta: &mut [f32], grad: &[f32], t: i32) {
        let (c1, c2) = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
        for ((p, g), (m, v)) in theta.iter_mut().zip(grad).zip(self.m.iter_mut().zip(self.v.iter_mut())) {
            *m = BETA1 * *m + (1.0 - BETA1) * g;
            *v = BETA2 * *v + (1.0 - BETA2) * g * g;
            let adjusted = (*m / c1) / ((*v / c2).sqrt() + EPS);
            *p = *p * (1.0 - LR * WEIGHT_DECAY) - LR * adjusted;
        }
    }
}

fn kaiming_normal(rng: &mut ChaCha8Rng, n: usize, fan_in: usize) -> Vec<f32> {
    let std = (2.0f32 / fan_in as f32).sqrt();
    (0..n)
        .map(|_| {
            // Box–Muller.
            let (u1, u2): (f32, f32) = (rng.random::<f32>().max(f32::MIN_POSITIVE), rng.random());
            std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect()
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, fan_in: usize) -> Vec<f32> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}

/// `dst (m×n) = lhs (m×k) · rhs (k×n)`, every matrix given by its row and
/// column strides.
#[allow(clippy::too_many_arguments)]
fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    (dst_rs, dst_cs): (usize, usize),
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(m > 0 && n > 0 && k > 0);
    // Distinct destination elements never share an address (the products
    // run on several threads).
    assert!(dst_cs >= 1 && dst_rs >= n * dst_cs);
    assert!(last(m, n, dst_rs, dst_cs) < dst.len());
    assert!(last(m, k, lhs_rs, lhs_cs) < lhs.len());
    assert!(last(k, n, rhs_rs, rhs_cs) < rhs.len());
    // SAFETY: every element the strides reach is inside its slice and no
    // two destination elements share an address (both checked above),
    // `dst` is borrowed mutably and so aliases neither input, and gemm does
    // not read `dst` when `read_dst` is false.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            false,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        )
    }
}

/// Trains on `x` (N rows of `dim` values, row-major), labels `y` (0/1) and
/// per-row loss weights `w`, for `epochs` full-batch steps; `on_epoch` is
/// called after each.
#[allow(clippy::too_many_arguments)]
pub fn train(
    x: &[f32],
    dim: usize,
    y: &[f32],
    w: &[f32],
    hidden: usize,
    epochs: usize,
    seed: u64,
    mut on_epoch: impl FnMut(),
) -> Mlp {
    let n = y.len();
    assert_eq!(x.len(), n * dim);
    assert_eq!(w.len(), n);
    let total_w: f32 = w.iter().sum();
    assert!(n > 0 && total_w > 0.0, "training needs rows of positive total weight");
    // Each row's share of the mean loss.
    let share: Vec<f32> = w.iter().map(|v| v / total_w).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let fan_out_in = if hidden > 0 { hidden } else { dim };
    // candle_nn::linear draws the weights, then the bias, per layer.
    let mut w1 = if hidden > 0 { kaiming_normal(&mut rng, hidden * dim, dim) } else { Vec::new() };
    let mut b1 = if hidden > 0 { uniform(&mut rng, hidden, dim) } else { Vec::new() };
    let mut w2 = kaiming_normal(&mut rng, fan_out_in, fan_out_in);
    let mut b2 = uniform(&mut rng, 1, fan_out_in);
    let (mut adam_w1, mut adam_b1, mut adam_w2, mut adam_b2) =
        (Adam::new(w1.len()), Adam::new(b1.len()), Adam::new(w2.len()), Adam::new(1));
    // Buffers, allocated once: activations (N×H), their gradients (N×H),
    // the weight gradients.
    let mut act = vec![0f32; n * hidden];
    let mut g_w1 = vec![0f32; w1.len()];
    let mut g_b1 = vec![0f32; b1.len()];
    let mut g_w2 = vec![0f32; w2.len()];
    let mut g_z = vec![0f32; n];
    let mut last_loss = 0.0;
    for t in 1..=epochs as i32 {
        // Forward: act = relu(x·W1ᵀ + b1); z = act·w2 + b2 (or x·w2 + b2).
        if hidden > 0 {
            matmul((n, hidden, dim), &mut act, (hidden, 1), x, (dim, 1), &w1, (1, dim));
        }
        let mut loss = 0.0f64;
        g_w2.iter_mut().for_each(|g| *g = 0.0);
        let mut g_b2 = 0.0f32;
        for i in 0..n {
            let inputs: &[f32] = if hidden > 0 {
                let row = &mut act[i * hidden..(i + 1) * hidden];
                for (a, b) in row.iter_mut().zip(&b1) {
                    *a = (*a + b).max(0.0);
                }
                row
            } else {
                &x[i * dim..(i + 1) * dim]
            };
            let z = b2[0] + dot(inputs, &w2);
            // softplus(z) − y·z, and its derivative sigmoid(z) − y.
            loss += f64::from(share[i] * (z.max(0.0) + (-z.abs()).exp().ln_1p() - y[i] * z));
            let g = share[i] * (1.0 / (1.0 + (-z).exp()) - y[i]);
            g_z[i] = g;
            g_b2 += g;
            for (gw, a) in g_w2.iter_mut().zip(inputs) {
                *gw += g * a;
            }
        }
        last_loss = loss as f32;
        if hidden > 0 {
            // Back through the ReLU: act becomes ∂loss/∂(pre-activation).
            g_b1.iter_mut().for_each(|g| *g = 0.0);
            for i in 0..n {
                let row = &mut act[i * hidden..(i + 1) * hidden];
                for ((a, w), gb) in row.iter_mut().zip(&w2).zip(g_b1.iter_mut()) {
                    *a = if *a > 0.0 { g_z[i] * w } else { 0.0 };
                    *gb += *a;
                }
            }
            // ∂W1 (H×D) = gradᵀ (H×N) · x (N×D).
            matmul((hidden, dim, n), &mut g_w1, (dim, 1), &act, (1, hidden), x, (dim, 1));
            adam_w1.step(&mut w1, &g_w1, t);
            adam_b1.step(&mut b1, &g_b1, t);
        }
        adam_w2.step(&mut w2, &g_w2, t);
        adam_b2.step(&mut b2, &[g_b2], t);
        on_epoch();
    }
    Mlp { hidden: (hidden > 0).then_some((w1, b1)), out: (w2, b2[0]), last_loss }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logit(net: &Mlp, x: &[f32]) -> f32 {
        match &net.hidden {
            Some((w1, b1)) => {
                let hidden = w1.chunks_exact(x.len()).zip(b1).map(|(row, b)| (b + dot(row, x)).max(0.0));
                net.out.1 + hidden.zip(&net.out.0).map(|(a, w)| a * w).sum::<f32>()
            }
            None => net.out.1 + dot(&net.out.0, x),
        }
    }

    /// Two noisy blobs along one direction of a 16-d space: training cuts
    /// the loss by more than 40 %, the network separates them, and the same seed
    /// gives the same network.
    #[test]
    fn learns_a_separable_problem_and_the_loss_falls() {
        let (n, dim) = (400, 16);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let label = (i % 2) as f32;
            for d in 0..dim {
                let centre = if d == 3 { label * 2.0 - 1.0 } else { 0.0 };
                x.push(centre + rng.random_range(-0.8..0.8));
            }
            y.push(label);
        }
        let w = vec![1.0; n];
        for hidden in [0, 8] {
            let first = train(&x, dim, &y, &w, hidden, 1, 3, || {});
            let trained = train(&x, dim, &y, &w, hidden, 300, 3, || {});
            assert!(trained.last_loss < first.last_loss * 0.6, "{hidden}: {} → {}", first.last_loss, trained.last_loss);
            let correct =
                (0..n).filter(|&i| (logit(&trained, &x[i * dim..(i + 1) * dim]) > 0.0) == (y[i] > 0.5)).count();
            assert!(correct >= n * 95 / 100, "hidden {hidden}: {correct} of {n}");
            // Same seed, same network.
            let again = train(&x, dim, &y, &w, hidden, 300, 3, || {});
            assert_eq!(again.out.0, trained.out.0);
        }
    }
}
