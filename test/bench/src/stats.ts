/**
 * How far one row's samples are from another's, with 95 % confidence intervals. The samples are
 * paired: sample i of each row was taken in the same round of the interleaved loop, so drift in
 * the machine's speed cancels out of each difference.
 */

export interface Interval {
  estimate: number
  low: number
  high: number
}

export interface Difference {
  /** Mean of the paired differences, with Student's t interval. */
  mean: Interval
  /** Median of the paired differences, with the distribution-free (sign test) interval. */
  median: Interval
  pairs: number
}

/** `a[i] - b[i]` for every round both have. */
export function pairedDifference(a: number[], b: number[]): Difference {
  const n = Math.min(a.length, b.length)
  const d: number[] = []
  for (let i = 0; i < n; i++) d.push((a[i] as number) - (b[i] as number))
  return { mean: meanInterval(d), median: medianInterval(d), pairs: n }
}

export function meanInterval(samples: number[]): Interval {
  const n = samples.length
  let sum = 0
  for (const x of samples) sum += x
  const mean = sum / n
  if (n < 2) return { estimate: mean, low: Number.NaN, high: Number.NaN }
  let squares = 0
  for (const x of samples) squares += (x - mean) ** 2
  const half = tQuantile975(n - 1) * Math.sqrt(squares / (n - 1) / n)
  return { estimate: mean, low: mean - half, high: mean + half }
}

/**
 * The median with the interval between the k-th smallest and k-th largest sample, k the largest
 * count with P(Binomial(n, 1/2) < k) <= 2.5 %: it holds whatever the distribution, outliers
 * included, which a loaded machine's process starts have. Needs 6 samples or more.
 */
export function medianInterval(samples: number[]): Interval {
  const sorted = [...samples].sort((x, y) => x - y)
  const n = sorted.length
  const middle =
    n % 2 === 1 ? sorted[(n - 1) / 2] : ((sorted[n / 2 - 1] ?? 0) + (sorted[n / 2] ?? 0)) / 2
  let k = 0
  let below = 0 // P(X < k + 1) as k grows
  let term = 0.5 ** n // P(X = 0)
  for (let i = 0; i < n; i++) {
    below += term
    if (below > 0.025) break
    k = i + 1
    term = (term * (n - i)) / (i + 1)
  }
  if (k === 0) return { estimate: middle ?? Number.NaN, low: Number.NaN, high: Number.NaN }
  return {
    estimate: middle as number,
    low: sorted[k - 1] as number,
    high: sorted[n - k] as number,
  }
}

/** Student's t, 97.5th percentile: exact below 30 degrees of freedom, Cornish-Fisher above. */
export function tQuantile975(df: number): number {
  const table = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16,
    2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052,
    2.048, 2.045,
  ]
  if (df < 1) return Number.NaN
  if (df <= table.length) return table[df - 1] as number
  const z = 1.959964
  return (
    z +
    (z ** 3 + z) / (4 * df) +
    (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2) +
    (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3)
  )
}
