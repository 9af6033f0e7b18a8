//! Start-up child: dhat-rs's testing profiler around the body. Run by
//! `cargo run --release --example startup`.

#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

fn main() {
    memassert_examples::startup::child(|body| {
        let profiler = dhat::Profiler::builder().testing().build();
        body();
        let stats = dhat::HeapStats::get();
        assert_eq!(stats.curr_blocks, 0);
        drop(profiler);
    });
}
