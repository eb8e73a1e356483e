//! The distributions against 50-digit mpmath values (`reference/distributions.json`,
//! made by `reference/distributions.py`): every value within 1e-13 relative (or 1e-300
//! absolute, for values that underflow), which is what lets the conformance tests ask
//! for 1e-9 without wondering whose rounding they measure.

use flagpole_stats::distribution::{chi_squared, normal, student_t};

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    #[serde(rename = "fn")]
    function: String,
    x: f64,
    #[serde(default)]
    df: f64,
    want: f64,
}

#[test]
fn distributions_match_mpmath() {
    let reference: Reference =
        serde_json::from_str(include_str!("reference/distributions.json")).expect("parses");
    let mut worst = std::collections::BTreeMap::<&str, f64>::new();
    let mut failures = Vec::new();
    for c in &reference.cases {
        let got = match c.function.as_str() {
            "t_sf" => student_t::sf(c.x, c.df),
            "t_quantile" => student_t::quantile(c.x, c.df),
            "normal_sf" => normal::sf(c.x),
            "normal_cdf" => normal::cdf(c.x),
            "normal_quantile" => normal::quantile(c.x),
            "chi_squared_sf" => chi_squared::sf(c.x, c.df),
            other => panic!("unknown function {other}"),
        };
        let error = (got - c.want).abs();
        let relative = if c.want == 0.0 {
            error
        } else {
            error / c.want.abs()
        };
        let entry = worst.entry(c.function.as_str()).or_default();
        *entry = if relative.is_nan() {
            f64::NAN
        } else {
            entry.max(relative)
        };
        // Written so that NaN fails.
        if !(relative <= 1e-13 || error <= 1e-300) {
            failures.push(format!(
                "{}({}, {}) = {got:e}, mpmath {:e}, relative error {relative:.1e}",
                c.function, c.x, c.df, c.want
            ));
        }
    }
    println!(
        "{} values; worst relative error per function: {worst:?}",
        reference.cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
