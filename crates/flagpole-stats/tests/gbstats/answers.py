"""gbstats 0.8.0's answers for flagpole-stats' conformance fixtures.

    answers.py generate --seed 16 --random 120 --edge edge_cases.json --out fixtures.json
        Draws random aggregates (seeded), adds the hand-written edge cases, and writes them
        with gbstats' answers: the committed fixtures.json (`cargo xtask gbstats
        --regenerate`).
    answers.py recompute --fixtures fixtures.json --out target/gbstats/fixtures.json
        Recomputes the answers for the committed inputs with the installed gbstats: what CI
        compares Flagpole with (`cargo xtask gbstats`, part of `cargo xtask test`).

Per case and per treatment arm (arm 0 is control), for relative and absolute lifts:
TwoSidedTTest, SequentialTwoSidedTTest and EffectBayesianABTest as gbstats' own runner
(gbstats.py `get_configured_test`) configures them, and check_srm over all arms.

gbstats has no one-sided sequential test, so `one_sided` is not gbstats: it is the
half-normal mixture e-value of flagpole-stats' `sequential::one_sided`, integrated here
numerically from its definition with scipy.integrate.quad (a check of the closed form
2*Phi(u)*exp(u^2/2)/sqrt(N rho^2 + 1), from the same effect estimate gbstats computes).
"""

import argparse
import importlib.metadata
import json
import math
import sys
import warnings

import numpy as np
import scipy
from scipy import integrate, optimize, stats

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import ProportionStatistic, RatioStatistic, SampleMeanStatistic
from gbstats.utils import check_srm

GBSTATS = "0.8.0"
DEFAULT_SETTINGS = {
    "alpha": 0.05,
    "tuning": 5000.0,
    "prior": {"mean": 0.0, "variance": 1.0, "proper": False},
    "prior_scale": "relative",
    "inverse": False,
}


# --- gbstats' answers -------------------------------------------------------------------


def statistic(agg):
    kind = agg["kind"]
    if kind == "mean":
        return SampleMeanStatistic(n=agg["n"], sum=agg["sum"], sum_squares=agg["sum_squares"])
    if kind == "proportion":
        return ProportionStatistic(n=agg["n"], sum=agg["sum"])
    if kind == "ratio":
        return RatioStatistic(
            n=agg["n"],
            m_statistic=component(agg["numerator"], agg["n"]),
            d_statistic=component(agg["denominator"], agg["n"]),
            m_d_sum_of_products=agg["sum_of_products"],
        )
    raise ValueError(f"unknown aggregate kind {kind}")


def component(c, n):
    if c["kind"] == "mean":
        return SampleMeanStatistic(n=n, sum=c["sum"], sum_squares=c["sum_squares"])
    return ProportionStatistic(n=n, sum=c["sum"])


def frequentist_answer(res):
    if res.error_message:
        return {"error": res.error_message}
    return {
        "lift": res.expected,
        "stddev": res.uplift.stddev,
        "interval": list(res.ci),
        "p_value": res.p_value,
    }


def bayesian_answer(make_test):
    try:
        res = make_test().compute_result()
    except ZeroDivisionError:
        # gbstats 0.8.0 divides by the control mean to rescale the prior (a relative lift
        # with a prior in the metric's unit), or by the rescaled prior variance, which is
        # 0 (an absolute lift with a relative prior), when the control mean is 0.
        return {"exception": "ZeroDivisionError"}
    if res.error_message:
        return {"error": res.error_message}
    return {
        "lift": res.expected,
        "stddev": res.uplift.stddev,
        "interval": list(res.ci),
        "chance_to_win": res.chance_to_win,
        "risk": list(res.risk),
    }


def ln_half_normal_mixture(s, n, rho):
    """ln of  integral_0^inf exp(l*s - l^2*n/2) * 2*phi(l; 0, rho) dl,  by quadrature.

    With l = v / sqrt(P), P = n + 1/rho^2, the Gaussian factors combine into
    exp(u*v - v^2/2) with u = s/sqrt(P); the integral is taken around its peak, shifted
    by the peak's height so it cannot overflow.
    """
    p = n + 1 / rho**2
    u = s / math.sqrt(p)
    peak = max(u, 0.0)
    shift = peak * u - peak**2 / 2
    value, _ = integrate.quad(
        lambda v: math.exp(u * v - v * v / 2 - shift),
        0,
        peak + 40,
        points=[peak],
        epsabs=0,
        epsrel=1e-13,
        limit=200,
    )
    return shift + math.log(value) - 0.5 * math.log(p) + math.log(2) - math.log(rho * math.sqrt(2 * math.pi))


def one_sided_answer(lift, stddev, n, alpha, rho, boundary):
    out = {}
    for side, sign in (("greater", 1.0), ("less", -1.0)):
        s = sign * lift * math.sqrt(n) / stddev
        out[side] = {
            "p_value": min(1.0, math.exp(-ln_half_normal_mixture(s, n, rho))),
            "bound": lift - sign * boundary * stddev / math.sqrt(n),
        }
    return out


def mixture_boundary(n, alpha, rho):
    """The standardised sum at which the e-value reaches 1/alpha (it increases with s)."""
    target = -math.log(alpha)
    f = lambda s: ln_half_normal_mixture(s, n, rho) - target
    hi = 1.0
    while f(hi) < 0:
        hi *= 2
    return optimize.brentq(f, 0, hi, xtol=1e-14, rtol=1e-15, maxiter=500)


def answers(case):
    settings = {**DEFAULT_SETTINGS, **case.get("settings", {})}
    arms = case["arms"]
    prior = GaussianPrior(**settings["prior"])
    alpha = settings["alpha"]
    out = {"srm_p": check_srm([a["n"] for a in arms], case["weights"]), "comparisons": []}
    for i in range(1, len(arms)):
        comparison = {"arm": i}
        n = arms[0]["n"] + arms[i]["n"]
        boundary = None
        for difference in ("relative", "absolute"):
            control, treatment = statistic(arms[0]), statistic(arms[i])
            freq = TwoSidedTTest(
                control, treatment, FrequentistConfig(difference_type=difference, alpha=alpha)
            ).compute_result()
            seq_test = SequentialTwoSidedTTest(
                statistic(arms[0]),
                statistic(arms[i]),
                SequentialConfig(
                    difference_type=difference,
                    alpha=alpha,
                    sequential_tuning_parameter=settings["tuning"],
                ),
            )
            bayes = lambda: EffectBayesianABTest(
                statistic(arms[0]),
                statistic(arms[i]),
                EffectBayesianConfig(
                    difference_type=difference,
                    alpha=alpha,
                    inverse=settings["inverse"],
                    prior_effect=prior,
                    prior_type=settings["prior_scale"],
                ),
            )
            result = {
                "frequentist": frequentist_answer(freq),
                "sequential": frequentist_answer(seq_test.compute_result()),
                "bayesian": bayesian_answer(bayes),
            }
            if not freq.error_message:
                if boundary is None:
                    boundary = mixture_boundary(n, alpha, seq_test.rho)
                result["one_sided"] = one_sided_answer(
                    freq.expected, freq.uplift.stddev, n, alpha, seq_test.rho, boundary
                )
            comparison[difference] = result
        out["comparisons"].append(comparison)
    return out


# --- random inputs ----------------------------------------------------------------------


def moments_of_units(values):
    return float(values.sum()), float((values * values).sum())


def random_mean_arm(rng, n, mu, sd):
    """Σx and Σx² of n units: simulated unit by unit when that is cheap, otherwise drawn
    from their sampling distributions (mean normal, variance scaled χ²)."""
    if n <= 20_000:
        x = rng.gamma(shape=(mu / sd) ** 2, scale=sd**2 / mu, size=n)  # skewed, positive
        return moments_of_units(x)
    mean = rng.normal(mu, sd / math.sqrt(n))
    var = sd**2 * rng.chisquare(n - 1) / (n - 1)
    return n * mean, (n - 1) * var + n * mean**2


def random_ratio_arm(rng, n, numerator_kind, mu_b, r, cv_a, corr):
    mu_a = r * mu_b
    if numerator_kind == "proportion":
        # Units with b sessions each convert with a probability that grows with b.
        b = 1 + rng.poisson(mu_b - 1, size=n).astype(float)
        a = (rng.random(n) < np.clip(r * b / mu_b / 2, 0, 1)).astype(float)
        return {
            "kind": "ratio",
            "n": n,
            "numerator": {"kind": "proportion", "sum": float(a.sum())},
            "denominator": {"kind": "mean", "sum": float(b.sum()), "sum_squares": float((b * b).sum())},
            "sum_of_products": float((a * b).sum()),
        }
    sd_a, sd_b = mu_a * cv_a, mu_b * 0.5
    cov = np.array([[sd_a**2, corr * sd_a * sd_b], [corr * sd_a * sd_b, sd_b**2]])
    if n <= 20_000:
        ab = rng.multivariate_normal([mu_a, mu_b], cov, size=n)
        a, b = ab[:, 0], ab[:, 1]
        sa, saa = moments_of_units(a)
        sb, sbb = moments_of_units(b)
        sab = float((a * b).sum())
    else:
        mean = rng.multivariate_normal([mu_a, mu_b], cov / n)
        s = stats.wishart.rvs(df=n - 1, scale=cov / (n - 1), random_state=rng)
        sa, sb = n * mean[0], n * mean[1]
        saa = (n - 1) * s[0, 0] + n * mean[0] ** 2
        sbb = (n - 1) * s[1, 1] + n * mean[1] ** 2
        sab = (n - 1) * s[0, 1] + n * mean[0] * mean[1]
    return {
        "kind": "ratio",
        "n": n,
        "numerator": {"kind": "mean", "sum": sa, "sum_squares": saa},
        "denominator": {"kind": "mean", "sum": sb, "sum_squares": sbb},
        "sum_of_products": sab,
    }


def random_case(rng, index):
    kind = rng.choice(["proportion", "mean", "ratio"], p=[0.4, 0.35, 0.25])
    k = int(rng.choice([2, 3, 4, 5], p=[0.55, 0.25, 0.12, 0.08]))
    if rng.random() < 0.6:
        weights = [1.0 / k] * k
    else:
        weights = [round(float(w), 2) + 0.01 for w in rng.dirichlet([3.0] * k)]
    # Units: from a handful to millions (Welch's degrees of freedom in the millions too).
    total = int(10 ** rng.uniform(0.8, 6.5 if kind != "ratio" else 5.5)) + 2 * k
    ns = rng.multinomial(total, np.array(weights) / sum(weights))
    if rng.random() < 0.15:  # a sample ratio mismatch: one arm loses some of its units
        j = int(rng.integers(k))
        ns[j] = int(ns[j] * rng.uniform(0.85, 0.99))
    ns = [max(int(n), 2) for n in ns]
    effects = rng.normal(0, 0.08, size=k)
    effects[0] = 0
    if kind == "proportion":
        p0 = rng.uniform(0.01, 0.5)
        arms = [
            {"kind": "proportion", "n": n, "sum": float(rng.binomial(n, min(0.99, p0 * (1 + e))))}
            for n, e in zip(ns, effects)
        ]
    elif kind == "mean":
        mu0 = 10 ** rng.uniform(-1, 2)
        sd = mu0 * rng.uniform(0.3, 3)
        arms = []
        for n, e in zip(ns, effects):
            s, ss = random_mean_arm(rng, n, mu0 * (1 + e), sd)
            arms.append({"kind": "mean", "n": n, "sum": s, "sum_squares": ss})
    else:
        numerator_kind = "proportion" if rng.random() < 0.3 else "mean"
        mu_b, r = rng.uniform(1.5, 5), rng.uniform(0.05, 2)
        cv_a, corr = rng.uniform(0.3, 2), rng.uniform(0, 0.8)
        arms = [
            random_ratio_arm(rng, n, numerator_kind, mu_b, r * (1 + e), cv_a, corr)
            for n, e in zip(ns, effects)
        ]
    settings = {}
    if rng.random() < 0.3:
        settings["alpha"] = float(rng.choice([0.01, 0.1, 0.2]))
    if rng.random() < 0.3:
        settings["tuning"] = float(rng.choice([500.0, 20_000.0, 100_000.0]))
    if rng.random() < 0.4:
        settings["prior"] = {
            "mean": round(float(rng.normal(0, 0.05)), 4),
            "variance": round(float(rng.uniform(0.03, 0.5)) ** 2, 6),
            "proper": True,
        }
    if rng.random() < 0.25:
        settings["prior_scale"] = "absolute"
    if rng.random() < 0.25:
        settings["inverse"] = True
    return {
        "name": f"random-{index:03}",
        "arms": arms,
        "weights": weights,
        "settings": settings,
    }


# --- files ------------------------------------------------------------------------------


def header():
    return (
        f"gbstats {importlib.metadata.version('gbstats')}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, by crates/flagpole-stats/tests/gbstats/answers.py"
    )


def write(path, cases):
    for case in cases:
        case["expected"] = answers(case)
    # One case per line: a regenerated file diffs by case.
    lines = [json.dumps(c, allow_nan=False) for c in cases]
    with open(path, "w") as f:
        f.write('{"generated_by": ' + json.dumps(header()) + ', "cases": [\n')
        f.write(",\n".join(lines))
        f.write("\n]}\n")


def main():
    # SequentialTwoSidedTTest.p_value computes exp(large) for huge effects (numpy warns
    # of the overflow, and the p-value is then exactly 0, which is right).
    warnings.filterwarnings("ignore", "overflow encountered in exp", RuntimeWarning)
    version = importlib.metadata.version("gbstats")
    if version != GBSTATS:
        sys.exit(f"answers.py: gbstats {GBSTATS} is required, found {version}")
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--random", type=int, required=True)
    gen.add_argument("--edge", required=True)
    gen.add_argument("--out", required=True)
    rec = sub.add_parser("recompute")
    rec.add_argument("--fixtures", required=True)
    rec.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.command == "generate":
        with open(args.edge) as f:
            cases = json.load(f)["cases"]
        rng = np.random.default_rng(args.seed)
        cases += [random_case(rng, i) for i in range(args.random)]
        # Through JSON and back: gbstats must see plain floats, exactly as `recompute`
        # will (numpy floats round differently, and divide by zero without raising).
        cases = json.loads(json.dumps(cases))
    else:
        with open(args.fixtures) as f:
            cases = [
                {k: v for k, v in c.items() if k != "expected"} for c in json.load(f)["cases"]
            ]
    write(args.out, cases)
    print(f"answers.py: {len(cases)} cases, {header()} -> {args.out}")


if __name__ == "__main__":
    main()
