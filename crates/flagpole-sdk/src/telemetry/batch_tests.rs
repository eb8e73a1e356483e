//! Cutting batches within the limits, merging counters, sealing and splitting.

use flagpole_core::wire::{EvalCount, Exposure, MAX_BATCH_ITEMS, TrackedEvent};

use super::*;
use crate::telemetry::buffer::Taken;

const BIG: usize = flagpole_core::wire::MAX_BATCH_BYTES;

fn count(flag: &str, n: u64, start_ms: i64) -> EvalCount {
    EvalCount {
        flag: flag.into(),
        flag_version: 1,
        variant: Some("on".into()),
        reason: "FALLTHROUGH".into(),
        start_ms,
        end_ms: start_ms + 10,
        count: n,
        ..EvalCount::default()
    }
}

fn exposures(n: usize) -> Vec<Exposure> {
    (0..n)
        .map(|i| Exposure {
            flag: "f".into(),
            variant: "on".into(),
            context_key: format!("user-{i}"),
            at_ms: 1,
            ..Exposure::default()
        })
        .collect()
}

fn taken(exposures: Vec<Exposure>, events: Vec<TrackedEvent>, dropped: u64) -> Taken {
    Taken {
        exposures,
        events,
        dropped,
    }
}

fn drain(outbox: &mut Outbox) -> Vec<Pending> {
    std::iter::from_fn(|| outbox.pop()).collect()
}

#[test]
fn batches_stay_within_the_item_and_byte_limits() {
    let mut outbox = Outbox::new("sdk/1", "app", "1.0");
    outbox.fill(vec![], taken(exposures(12_001), vec![], 0), BIG);
    let batches = drain(&mut outbox);
    let sizes: Vec<usize> = batches.iter().map(|p| p.batch.len()).collect();
    assert_eq!(sizes, [MAX_BATCH_ITEMS, MAX_BATCH_ITEMS, 2_001]);
    assert_eq!(batches.iter().map(|p| p.held_items).sum::<usize>(), 12_001);
    for p in &batches {
        assert_eq!(
            (p.batch.sdk.as_str(), p.batch.app.as_str()),
            ("sdk/1", "app")
        );
    }

    let mut outbox = Outbox::new("sdk/1", "", "");
    let max = 16 * 1024;
    outbox.fill(vec![], taken(exposures(1_000), vec![], 0), max);
    let batches = drain(&mut outbox);
    assert!(batches.len() > 1);
    for p in &batches {
        let len = serde_json::to_string(&p.batch).unwrap().len();
        assert!(len <= max, "{len} > {max}");
    }
    let ids: std::collections::HashSet<_> = batches.iter().map(|p| p.batch.id.clone()).collect();
    assert_eq!(ids.len(), batches.len(), "every batch has its own id");
    assert!(
        uuid::Uuid::parse_str(&batches[0].batch.id)
            .unwrap()
            .get_version_num()
            == 7
    );
}

#[test]
fn counts_merge_into_an_open_batch_but_never_into_a_sealed_one() {
    let mut outbox = Outbox::new("sdk/1", "", "");
    outbox.fill(
        vec![count("a", 3, 100), count("b", 1, 100)],
        Taken::default(),
        BIG,
    );
    let id = outbox.front().unwrap().batch.id.clone();

    // Refused (busy): still open, so the next flush's counts merge into it.
    outbox.fill(vec![count("a", 4, 110)], taken(vec![], vec![], 2), BIG);
    assert_eq!(outbox.len(), 1);
    let front = outbox.front().unwrap();
    assert_eq!(front.batch.id, id, "an open batch keeps its id");
    assert_eq!(front.batch.counts.len(), 2);
    let a = &front.batch.counts[0];
    assert_eq!((a.count, a.start_ms, a.end_ms), (7, 100, 120));
    assert_eq!(front.batch.dropped, 2);

    // Sent without an answer: it goes again unchanged; new counts start another batch.
    outbox.set_front_sealed(true);
    let before = outbox.front().unwrap().batch.clone();
    outbox.fill(vec![count("a", 5, 120)], Taken::default(), BIG);
    assert_eq!(outbox.len(), 2);
    let batches = drain(&mut outbox);
    assert_eq!(batches[0].batch, before);
    assert_eq!(batches[1].batch.counts[0].count, 5);
    assert_ne!(batches[1].batch.id, id);
}

#[test]
fn an_empty_flush_adds_nothing() {
    let mut outbox = Outbox::new("sdk/1", "", "");
    outbox.fill(vec![], Taken::default(), BIG);
    assert_eq!(outbox.len(), 0);
}

#[test]
fn too_large_batches_split_in_halves_with_new_ids() {
    let mut outbox = Outbox::new("sdk/1", "", "");
    outbox.fill(vec![count("a", 1, 1)], taken(exposures(4), vec![], 3), BIG);
    let id = outbox.front().unwrap().batch.id.clone();
    assert!(outbox.split_front().is_none());
    let halves = drain(&mut outbox);
    assert_eq!(halves.len(), 2);
    assert_eq!(
        (halves[0].batch.len(), halves[1].batch.len()),
        (2, 3),
        "five items, split at half"
    );
    assert_eq!(halves[0].batch.counts.len(), 1);
    assert_eq!((halves[0].batch.dropped, halves[1].batch.dropped), (3, 0));
    assert_eq!((halves[0].held_items, halves[1].held_items), (1, 3));
    assert!(halves.iter().all(|h| h.batch.id != id));

    let mut outbox = Outbox::new("sdk/1", "", "");
    outbox.fill(vec![], taken(exposures(1), vec![], 0), BIG);
    let single = outbox.split_front().expect("one item cannot be split");
    assert_eq!(single.held_items, 1);
    assert_eq!(outbox.len(), 0);
}
