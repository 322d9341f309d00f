//! Optimal track ↔ detection assignment with a cost limit (the Hungarian method).
//!
//! ByteTrack solves each association stage with `lap.lapjv(cost, extend_cost=True,
//! cost_limit=thresh)`: a minimum-cost matching in which a pair may only be matched when its
//! cost is below the limit, and any row or column may stay unmatched. The same problem is
//! solved here by giving the `n × m` cost matrix `n` extra "stay unmatched" columns, each
//! costing the limit for every row, and running the O(n²·(m+n)) shortest-augmenting-path
//! Hungarian algorithm with potentials. Leaving `k` pairs matched costs
//! `Σ matched + (n − k)·limit`, which orders solutions exactly as lapjv's
//! `Σ matched + (n + m − 2k)·limit/2` does. Pairs that are not allowed (IoU under the
//! threshold, different classes) get a cost above the limit, so they are never chosen.
//!
//! Why not greedy-by-IoU: greedy is nearly as good when objects are apart, but when boxes
//! overlap (people crossing, groups) it can take a locally best pair that forces a worse
//! global assignment (an ID swap). With ~10 tracks the optimal solve costs a few
//! microseconds, so there is no reason to accept that.

/// Cost of a pair that must not be matched (anything above every limit in use).
pub(crate) const FORBIDDEN: f64 = 1.0e6;

/// Reusable buffers for [`Assigner::solve`]; no allocation once warmed up.
#[derive(Debug, Default)]
pub(crate) struct Assigner {
    /// Row-major `rows × (cols + rows)` extended cost matrix.
    cost: Vec<f64>,
    u: Vec<f64>,
    v: Vec<f64>,
    /// `p[j]`: 1-based row assigned to 1-based column `j` (0: none).
    p: Vec<usize>,
    way: Vec<usize>,
    minv: Vec<f64>,
    used: Vec<bool>,
}

impl Assigner {
    /// Solves a `rows × cols` problem where `cost(r, c)` gives each pair's cost; a pair is
    /// matched only if its cost is below `limit`. Appends `(row, col)` pairs to `out`.
    pub(crate) fn solve(
        &mut self,
        rows: usize,
        cols: usize,
        limit: f64,
        mut cost: impl FnMut(usize, usize) -> f64,
        out: &mut Vec<(usize, usize)>,
    ) {
        if rows == 0 || cols == 0 {
            return;
        }
        let width = cols + rows;
        self.cost.clear();
        for r in 0..rows {
            for c in 0..cols {
                let x = cost(r, c);
                self.cost.push(if x < limit { x } else { FORBIDDEN });
            }
            self.cost.extend(std::iter::repeat_n(limit, rows));
        }
        self.hungarian(rows, width);
        for j in 1..=cols {
            let i = self.p[j];
            if i != 0 && self.cost[(i - 1) * width + (j - 1)] < limit {
                out.push((i - 1, j - 1));
            }
        }
    }

    /// Minimum-cost assignment of every row to a distinct column (`rows <= width`), in
    /// `self.p`. Classic potentials formulation, 1-based with a virtual row/column 0.
    fn hungarian(&mut self, rows: usize, width: usize) {
        let (n, m) = (rows, width);
        reset(&mut self.u, n + 1, 0.0);
        reset(&mut self.v, m + 1, 0.0);
        reset(&mut self.p, m + 1, 0);
        reset(&mut self.way, m + 1, 0);
        for i in 1..=n {
            self.p[0] = i;
            let mut j0 = 0;
            reset(&mut self.minv, m + 1, f64::INFINITY);
            reset(&mut self.used, m + 1, false);
            loop {
                self.used[j0] = true;
                let i0 = self.p[j0];
                let mut delta = f64::INFINITY;
                let mut j1 = 0;
                let row = &self.cost[(i0 - 1) * m..i0 * m];
                for j in 1..=m {
                    if self.used[j] {
                        continue;
                    }
                    let cur = row[j - 1] - self.u[i0] - self.v[j];
                    if cur < self.minv[j] {
                        self.minv[j] = cur;
                        self.way[j] = j0;
                    }
                    if self.minv[j] < delta {
                        delta = self.minv[j];
                        j1 = j;
                    }
                }
                for j in 0..=m {
                    if self.used[j] {
                        self.u[self.p[j]] += delta;
                        self.v[j] -= delta;
                    } else {
                        self.minv[j] -= delta;
                    }
                }
                j0 = j1;
                if self.p[j0] == 0 {
                    break;
                }
            }
            while j0 != 0 {
                let j1 = self.way[j0];
                self.p[j0] = self.p[j1];
                j0 = j1;
            }
        }
    }
}

fn reset<T: Copy>(v: &mut Vec<T>, len: usize, x: T) {
    v.clear();
    v.resize(len, x);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solve(m: &[&[f64]], limit: f64) -> Vec<(usize, usize)> {
        let mut a = Assigner::default();
        let mut out = Vec::new();
        let cols = m.first().map_or(0, |r| r.len());
        a.solve(m.len(), cols, limit, |r, c| m[r][c], &mut out);
        out.sort();
        out
    }

    #[test]
    fn finds_the_global_optimum_where_greedy_would_not() {
        // Greedy takes (0,0) at 0.1 and is left with (1,1) at 0.9: total 1.0.
        // Optimal is (0,1) + (1,0) = 0.2 + 0.3 = 0.5.
        let m: &[&[f64]] = &[&[0.1, 0.2], &[0.3, 0.9]];
        assert_eq!(solve(m, 1.0), vec![(0, 1), (1, 0)]);
    }

    #[test]
    fn pairs_at_or_above_the_limit_stay_unmatched() {
        let m: &[&[f64]] = &[&[0.5, 0.95], &[0.99, 0.85]];
        assert_eq!(solve(m, 0.8), vec![(0, 0)]);
        assert_eq!(solve(m, 0.9), vec![(0, 0), (1, 1)]);
    }

    #[test]
    fn rectangular_both_ways_and_empty() {
        let wide: &[&[f64]] = &[&[0.7, 0.1, 0.5]];
        assert_eq!(solve(wide, 1.0), vec![(0, 1)]);
        let tall: &[&[f64]] = &[&[0.7], &[0.1], &[0.5]];
        assert_eq!(solve(tall, 1.0), vec![(1, 0)]);
        assert!(solve(&[], 1.0).is_empty());
    }

    #[test]
    fn brute_force_agreement_on_small_random_problems() {
        let mut state = 0x9e37_79b9u32;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 1000) as f64 / 1000.0
        };
        let limit = 0.6;
        for _ in 0..200 {
            let m: Vec<Vec<f64>> = (0..3).map(|_| (0..3).map(|_| rnd()).collect()).collect();
            let refs: Vec<&[f64]> = m.iter().map(|r| r.as_slice()).collect();
            let got = solve(&refs, limit);
            let score = |pairs: &[(usize, usize)]| -> f64 {
                pairs.iter().map(|&(r, c)| m[r][c]).sum::<f64>() + (3 - pairs.len()) as f64 * limit
            };
            // Brute force over all partial matchings of a 3×3 problem.
            let mut best = f64::INFINITY;
            let perms = [
                [0, 1, 2],
                [0, 2, 1],
                [1, 0, 2],
                [1, 2, 0],
                [2, 0, 1],
                [2, 1, 0],
            ];
            for perm in perms {
                for mask in 0..8u32 {
                    let pairs: Vec<(usize, usize)> = (0..3)
                        .filter(|r| mask & (1 << r) != 0 && m[*r][perm[*r]] < limit)
                        .map(|r| (r, perm[r]))
                        .collect();
                    best = best.min(score(&pairs));
                }
            }
            assert!(got.iter().all(|&(r, c)| m[r][c] < limit));
            assert!((score(&got) - best).abs() < 1e-9, "{m:?}: {got:?}");
        }
    }
}
