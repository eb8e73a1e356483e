//! Compiling what a rule or a flag's default serves: one variant, or a rollout whose
//! weights name distinct variants and sum to 100%.

use super::flag::VariantIndex;
use super::{LINEAR_MAX, span_from};
use crate::attribute::{AttrRef, Names};
use crate::error::{Path, Sink};
use crate::model::{Serve, TOTAL_WEIGHT};
use crate::snapshot::{CompiledServe, FastSet};

/// Compiles `serve`, finding variants by key in `variants` (which reports unknown
/// ones) and appending a rollout's slices to `slices`. `None` if anything was reported.
pub(super) fn compile(
    serve: &Serve,
    path: &Path<'_>,
    variants: &VariantIndex<'_>,
    names: &mut Names,
    sink: &mut Sink<'_>,
    slices: &mut Vec<(u32, usize)>,
) -> Option<CompiledServe> {
    match serve {
        Serve::Variant(v) => variants
            .resolve(sink, &path.field("variant"), v)
            .map(CompiledServe::Variant),
        Serve::Rollout(r) => {
            let bucket_by = if r.bucket_by.is_empty() {
                AttrRef::Key
            } else {
                match AttrRef::parse(&r.bucket_by, names) {
                    Ok(a) => a,
                    Err(msg) => {
                        sink.push(path.field("rollout.bucket_by"), msg);
                        return None;
                    }
                }
            };
            if r.weights.is_empty() {
                sink.push(
                    format!("{path}.rollout.weights"),
                    "at least one weight is required",
                );
                return None;
            }
            // Few weights per rollout: repeats are found by scanning the earlier ones (the
            // same key is the same variant), unless there are many.
            let mut seen: Option<FastSet<usize>> =
                (r.weights.len() > LINEAR_MAX).then(FastSet::default);
            let slices_start = slices.len();
            let mut total: u64 = 0;
            let mut ok = true;
            let rollout = path.field("rollout");
            for (wi, w) in r.weights.iter().enumerate() {
                // Counted before the variant is resolved, so an unknown variant is reported
                // once, not again as a bogus "weights must sum" error.
                total += u64::from(w.weight);
                let weight = rollout.at("weights", wi);
                let Some(v) = variants.resolve(sink, &weight.field("variant"), &w.variant) else {
                    ok = false;
                    continue;
                };
                let repeated = match &mut seen {
                    Some(seen) => !seen.insert(v),
                    None => r.weights[..wi].iter().any(|p| p.variant == w.variant),
                };
                if repeated {
                    sink.push(
                        weight.field("variant"),
                        format!("variant `{}` appears twice", w.variant),
                    );
                    ok = false;
                }
                if w.weight > 0 {
                    slices.push((total.min(u64::from(TOTAL_WEIGHT)) as u32, v));
                }
            }
            if total != u64::from(TOTAL_WEIGHT) {
                sink.push(
                    format!("{path}.rollout.weights"),
                    format!("weights must sum to {TOTAL_WEIGHT} (100%), got {total}"),
                );
                return None;
            }
            ok.then(|| CompiledServe::Rollout {
                bucket_by,
                slices: span_from(slices_start, slices.len()),
            })
        }
    }
}
