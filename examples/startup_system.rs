//! Start-up child: the system allocator, untracked (the baseline). Run by
//! `cargo run --release --example startup`.

fn main() {
    memassert_examples::startup::child(|body| body());
}
