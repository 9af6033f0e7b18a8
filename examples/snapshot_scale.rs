//! `take_snapshot()` + `statistics(Key::Line)` over 1M live blocks from 100
//! sites (100 lines): how long it takes (issue target: under 1 s), with
//! each distinct frame symbolized once.
//!
//! Run with `cargo run --release --example snapshot_scale`.

use std::time::Instant;

use memassert::Key;

memassert::install!();

const PER_SITE: usize = 10_000;

/// Runs `make` (one allocation site: the closure's line) `PER_SITE` times.
#[inline(always)]
fn push(out: &mut Vec<Box<[u8]>>, make: impl Fn() -> Box<[u8]>) {
    for _ in 0..PER_SITE {
        out.push(make());
    }
}

fn main() {
    let mut blocks: Vec<Box<[u8]>> = Vec::with_capacity(100 * PER_SITE);
    memassert::start(1);
    push(&mut blocks, || vec![0u8; 16].into_boxed_slice());
    push(&mut blocks, || vec![1u8; 17].into_boxed_slice());
    push(&mut blocks, || vec![2u8; 18].into_boxed_slice());
    push(&mut blocks, || vec![3u8; 19].into_boxed_slice());
    push(&mut blocks, || vec![4u8; 20].into_boxed_slice());
    push(&mut blocks, || vec![5u8; 21].into_boxed_slice());
    push(&mut blocks, || vec![6u8; 22].into_boxed_slice());
    push(&mut blocks, || vec![7u8; 23].into_boxed_slice());
    push(&mut blocks, || vec![8u8; 24].into_boxed_slice());
    push(&mut blocks, || vec![9u8; 25].into_boxed_slice());
    push(&mut blocks, || vec![10u8; 26].into_boxed_slice());
    push(&mut blocks, || vec![11u8; 27].into_boxed_slice());
    push(&mut blocks, || vec![12u8; 28].into_boxed_slice());
    push(&mut blocks, || vec![13u8; 29].into_boxed_slice());
    push(&mut blocks, || vec![14u8; 30].into_boxed_slice());
    push(&mut blocks, || vec![15u8; 31].into_boxed_slice());
    push(&mut blocks, || vec![16u8; 32].into_boxed_slice());
    push(&mut blocks, || vec![17u8; 33].into_boxed_slice());
    push(&mut blocks, || vec![18u8; 34].into_boxed_slice());
    push(&mut blocks, || vec![19u8; 35].into_boxed_slice());
    push(&mut blocks, || vec![20u8; 36].into_boxed_slice());
    push(&mut blocks, || vec![21u8; 37].into_boxed_slice());
    push(&mut blocks, || vec![22u8; 38].into_boxed_slice());
    push(&mut blocks, || vec![23u8; 39].into_boxed_slice());
    push(&mut blocks, || vec![24u8; 40].into_boxed_slice());
    push(&mut blocks, || vec![25u8; 41].into_boxed_slice());
    push(&mut blocks, || vec![26u8; 42].into_boxed_slice());
    push(&mut blocks, || vec![27u8; 43].into_boxed_slice());
    push(&mut blocks, || vec![28u8; 44].into_boxed_slice());
    push(&mut blocks, || vec![29u8; 45].into_boxed_slice());
    push(&mut blocks, || vec![30u8; 46].into_boxed_slice());
    push(&mut blocks, || vec![31u8; 47].into_boxed_slice());
    push(&mut blocks, || vec![32u8; 48].into_boxed_slice());
    push(&mut blocks, || vec![33u8; 49].into_boxed_slice());
    push(&mut blocks, || vec![34u8; 50].into_boxed_slice());
    push(&mut blocks, || vec![35u8; 51].into_boxed_slice());
    push(&mut blocks, || vec![36u8; 52].into_boxed_slice());
    push(&mut blocks, || vec![37u8; 53].into_boxed_slice());
    push(&mut blocks, || vec![38u8; 54].into_boxed_slice());
    push(&mut blocks, || vec![39u8; 55].into_boxed_slice());
    push(&mut blocks, || vec![40u8; 56].into_boxed_slice());
    push(&mut blocks, || vec![41u8; 57].into_boxed_slice());
    push(&mut blocks, || vec![42u8; 58].into_boxed_slice());
    push(&mut blocks, || vec![43u8; 59].into_boxed_slice());
    push(&mut blocks, || vec![44u8; 60].into_boxed_slice());
    push(&mut blocks, || vec![45u8; 61].into_boxed_slice());
    push(&mut blocks, || vec![46u8; 62].into_boxed_slice());
    push(&mut blocks, || vec![47u8; 63].into_boxed_slice());
    push(&mut blocks, || vec![48u8; 64].into_boxed_slice());
    push(&mut blocks, || vec![49u8; 65].into_boxed_slice());
    push(&mut blocks, || vec![50u8; 66].into_boxed_slice());
    push(&mut blocks, || vec![51u8; 67].into_boxed_slice());
    push(&mut blocks, || vec![52u8; 68].into_boxed_slice());
    push(&mut blocks, || vec![53u8; 69].into_boxed_slice());
    push(&mut blocks, || vec![54u8; 70].into_boxed_slice());
    push(&mut blocks, || vec![55u8; 71].into_boxed_slice());
    push(&mut blocks, || vec![56u8; 72].into_boxed_slice());
    push(&mut blocks, || vec![57u8; 73].into_boxed_slice());
    push(&mut blocks, || vec![58u8; 74].into_boxed_slice());
    push(&mut blocks, || vec![59u8; 75].into_boxed_slice());
    push(&mut blocks, || vec![60u8; 76].into_boxed_slice());
    push(&mut blocks, || vec![61u8; 77].into_boxed_slice());
    push(&mut blocks, || vec![62u8; 78].into_boxed_slice());
    push(&mut blocks, || vec![63u8; 79].into_boxed_slice());
    push(&mut blocks, || vec![64u8; 80].into_boxed_slice());
    push(&mut blocks, || vec![65u8; 81].into_boxed_slice());
    push(&mut blocks, || vec![66u8; 82].into_boxed_slice());
    push(&mut blocks, || vec![67u8; 83].into_boxed_slice());
    push(&mut blocks, || vec![68u8; 84].into_boxed_slice());
    push(&mut blocks, || vec![69u8; 85].into_boxed_slice());
    push(&mut blocks, || vec![70u8; 86].into_boxed_slice());
    push(&mut blocks, || vec![71u8; 87].into_boxed_slice());
    push(&mut blocks, || vec![72u8; 88].into_boxed_slice());
    push(&mut blocks, || vec![73u8; 89].into_boxed_slice());
    push(&mut blocks, || vec![74u8; 90].into_boxed_slice());
    push(&mut blocks, || vec![75u8; 91].into_boxed_slice());
    push(&mut blocks, || vec![76u8; 92].into_boxed_slice());
    push(&mut blocks, || vec![77u8; 93].into_boxed_slice());
    push(&mut blocks, || vec![78u8; 94].into_boxed_slice());
    push(&mut blocks, || vec![79u8; 95].into_boxed_slice());
    push(&mut blocks, || vec![80u8; 96].into_boxed_slice());
    push(&mut blocks, || vec![81u8; 97].into_boxed_slice());
    push(&mut blocks, || vec![82u8; 98].into_boxed_slice());
    push(&mut blocks, || vec![83u8; 99].into_boxed_slice());
    push(&mut blocks, || vec![84u8; 100].into_boxed_slice());
    push(&mut blocks, || vec![85u8; 101].into_boxed_slice());
    push(&mut blocks, || vec![86u8; 102].into_boxed_slice());
    push(&mut blocks, || vec![87u8; 103].into_boxed_slice());
    push(&mut blocks, || vec![88u8; 104].into_boxed_slice());
    push(&mut blocks, || vec![89u8; 105].into_boxed_slice());
    push(&mut blocks, || vec![90u8; 106].into_boxed_slice());
    push(&mut blocks, || vec![91u8; 107].into_boxed_slice());
    push(&mut blocks, || vec![92u8; 108].into_boxed_slice());
    push(&mut blocks, || vec![93u8; 109].into_boxed_slice());
    push(&mut blocks, || vec![94u8; 110].into_boxed_slice());
    push(&mut blocks, || vec![95u8; 111].into_boxed_slice());
    push(&mut blocks, || vec![96u8; 112].into_boxed_slice());
    push(&mut blocks, || vec![97u8; 113].into_boxed_slice());
    push(&mut blocks, || vec![98u8; 114].into_boxed_slice());
    push(&mut blocks, || vec![99u8; 115].into_boxed_slice());
    let started = Instant::now();
    let snapshot = memassert::take_snapshot();
    let taken = started.elapsed();
    let stats = snapshot.statistics(Key::Line);
    let total = started.elapsed();
    memassert::stop();
    println!(
        "{} live blocks, {} lines: take_snapshot {:.0} ms, + statistics(Key::Line) {:.0} ms in all",
        snapshot.traces().len(),
        stats.len(),
        taken.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3
    );
    println!("largest: {}", stats[0]);
    drop(blocks);
}
