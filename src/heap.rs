//! The Wasm heap's live bytes, counted by the global allocator (stats_alloc wrapping the system
//! allocator), so the config cache's budget holds what compiled tenants really take in the
//! isolate rather than an estimate. Natively (the crate's own tests) nothing is counted.

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static HEAP: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed.
pub fn live_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        // stats_alloc adds a reallocation's growth to `bytes_allocated` and its shrinking to
        // `bytes_deallocated` (and both again to `bytes_reallocated`, not counted here).
        let stats = HEAP.stats();
        stats.bytes_allocated.saturating_sub(stats.bytes_deallocated)
    }
    #[cfg(not(target_arch = "wasm32"))]
    0
}

/// Runs `make` and returns what it made with the bytes still allocated after it that were not
/// before: what the made value holds, its temporaries freed. The worker is single-threaded, so
/// nothing else allocates meanwhile.
pub fn retained<T>(make: impl FnOnce() -> T) -> (T, usize) {
    let before = live_bytes();
    let made = make();
    (made, live_bytes().saturating_sub(before))
}
