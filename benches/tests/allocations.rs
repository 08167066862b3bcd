//! One evaluation allocates per request, never per experiment: for every targeting shape and pass
//! rate of the matrix (`benches/matrix.rs`), Cohort's `tenant.evaluate(..)` makes as many
//! allocations with 200 experiments as with 20, and at most `BOUND`.
//!
//! The counts come from `stats_alloc`'s instrumented system allocator, which counts every thread:
//! this file holds one test so that no other test allocates while it counts.

use std::alloc::System;
use std::hint::black_box;

use cohort_benches::{Cohort, CohortVisitor, Pass, SIZES, Shape, matrix_workload};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The most allocations (reallocations included) one evaluation may make: the decisions' vector,
/// the request's attribute cache and, for a version test, the attribute's padded version (its
/// parts and the string), made once per request.
const BOUND: usize = 4;

/// Allocations and reallocations of one evaluation of a `size`-experiment tenant in `shape`.
fn allocations(shape: Shape, pass: Pass, size: usize) -> usize {
    let w = matrix_workload(shape, pass, size);
    let cohort = Cohort::new(&w);
    let visitor = CohortVisitor::new(&w.visitor);
    // Also the warm-up: a regex's first search allocates its reusable search cache.
    w.check("cohort", &cohort.assigned(&visitor));
    let region = Region::new(GLOBAL);
    let evaluation = black_box(cohort.evaluate(black_box(&visitor)));
    let stats = region.change();
    drop(evaluation);
    stats.allocations + stats.reallocations
}

#[test]
fn evaluation_allocates_per_request_not_per_experiment() {
    let mut table = format!("{:<12} {:<6} {:>8} {:>8}\n", "shape", "pass", SIZES[0], SIZES[1]);
    let mut failures = Vec::new();
    for shape in Shape::ALL {
        for pass in Pass::ALL {
            let [small, large] = SIZES.map(|size| allocations(shape, pass, size));
            table.push_str(&format!(
                "{:<12} {:<6} {small:>8} {large:>8}\n",
                shape.name(),
                pass.name()
            ));
            if small != large {
                failures.push(format!(
                    "{}/{}: {small} allocations with {} experiments, {large} with {}",
                    shape.name(),
                    pass.name(),
                    SIZES[0],
                    SIZES[1]
                ));
            }
            if small.max(large) > BOUND {
                failures.push(format!(
                    "{}/{}: {} allocations, more than {BOUND}",
                    shape.name(),
                    pass.name(),
                    small.max(large)
                ));
            }
        }
    }
    println!("allocations of one evaluation (bound {BOUND}):\n{table}");
    assert!(failures.is_empty(), "{}\n{table}", failures.join("\n"));
}
